"""subprocess-style stdio arguments (PIPE, DEVNULL, STDOUT, fds, file objects) -> fds.

:class:`StdioPlan` opens what is needed; the child ends go to the supervisor, the parent
ends stay here; ``close_child_ends`` runs right after the launch so that EOF on a pipe means
the container and its supervisor are gone.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import IO, Any

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
STDOUT = subprocess.STDOUT

StdioArg = int | IO[Any] | None


class StdioPlan:
    def __init__(self, stdin: StdioArg, stdout: StdioArg, stderr: StdioArg) -> None:
        self.child: list[int | None] = [None, None, None]
        self.parent: list[int | None] = [None, None, None]
        self._owned: list[int] = []
        self._piped: set[int] = set()
        try:
            self._setup(0, stdin)
            self._setup(1, stdout)
            if stderr == STDOUT:
                self.child[2] = self.child[1] if self.child[1] is not None else 1
            else:
                self._setup(2, stderr)
        except BaseException:
            self.close_all()
            raise

    def _setup(self, index: int, arg: StdioArg) -> None:
        if arg is None:
            return
        if arg == PIPE:
            read_end, write_end = os.pipe()
            if index == 0:
                self.child[0], self.parent[0] = read_end, write_end
            else:
                self.child[index], self.parent[index] = write_end, read_end
            self._owned.append(self.child[index])  # type: ignore[arg-type]
            self._piped.add(index)
            return
        if arg == DEVNULL:
            fd = os.open(os.devnull, os.O_RDONLY if index == 0 else os.O_WRONLY | os.O_CLOEXEC)
            self.child[index] = fd
            self._owned.append(fd)
            return
        if isinstance(arg, int):
            if arg < 0:
                raise ValueError(f"invalid stdio argument {arg}")
            self.child[index] = arg
            return
        fileno = getattr(arg, "fileno", None)
        if fileno is None:
            raise TypeError(f"stdio argument {arg!r} has no fileno()")
        if index > 0:
            with contextlib.suppress(Exception):
                arg.flush()
        self.child[index] = fileno()

    def parent_was_pipe(self, index: int) -> bool:
        return index in self._piped

    @property
    def child_fds(self) -> tuple[int | None, int | None, int | None]:
        return (self.child[0], self.child[1], self.child[2])

    def close_child_ends(self) -> None:
        for fd in self._owned:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._owned.clear()

    def close_all(self) -> None:
        self.close_child_ends()
        for i, fd in enumerate(self.parent):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
                self.parent[i] = None


__all__ = ["DEVNULL", "PIPE", "STDOUT", "StdioArg", "StdioPlan"]
