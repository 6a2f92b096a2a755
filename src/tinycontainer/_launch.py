"""Starting a container's supervisor process (:mod:`._supervisor`) with given stdio.

Two launchers share one interface (:class:`Launcher`):

* :class:`ForkLauncher` forks the caller. Fast (about a millisecond from a small process), but
  only safe while the caller has a single thread: a fork copies locks held by other threads
  (the import lock, logging's, an allocator's) in their locked state, and the child would
  deadlock on them (BenchExec issues #435/#656/#875 are this bug).
* :class:`SpawnLauncher` starts a fresh interpreter with :class:`subprocess.Popen` (which forks
  and execs in C, safe with threads). Slower (an interpreter start), used from threaded callers.

:func:`default_launcher` picks one; a warm fork server can implement the same interface and be
installed with :func:`set_default_launcher`.

The child gets the container's stdin/stdout/stderr as its fds 0/1/2 and the channel as fd 3;
everything else is closed, so a supervisor holds no copy of another container's pipes or of
the caller's files (an inherited channel end would hide the caller's death from a supervisor).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Protocol

from . import _channel
from ._supervisor import CHANNEL_FD

StdioFds = tuple[int | None, int | None, int | None]


class Supervisor:
    """The library's side of one supervisor process: its channel and how to reap it."""

    our_child = True  # must be waited for (a zombie otherwise)

    def __init__(self, sock: socket.socket, pid: int, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.sock = sock
        self.pid = pid
        self._popen = popen
        self.returncode: int | None = None

    def send(self, message: dict[str, Any]) -> None:
        _channel.send(self.sock, message)

    def hand_over(self, request: dict[str, Any]) -> Supervisor:
        """Send the supervisor its request; if that fails, end it so nothing is left behind."""
        try:
            self.send(request)
        except BaseException:
            self.kill()
            self.wait()
            self.close()
            raise
        return self

    def recv(self, timeout: float | None = None) -> dict[str, Any] | None:
        return _channel.recv(self.sock, timeout)

    def fileno(self) -> int:
        return self.sock.fileno()

    def poll(self) -> int | None:
        """The supervisor's exit status if it has exited (reaps it), else None."""
        if self.returncode is not None:
            return self.returncode
        if self._popen is not None:
            self.returncode = self._popen.poll()
            return self.returncode
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.returncode = 0
            return 0
        if pid == 0:
            return None
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            code = self.poll()
            if code is not None:
                return code
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.002)

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)

    def close(self) -> None:
        self.sock.close()


class Launcher(Protocol):
    def launch(self, request: dict[str, Any], stdio: StdioFds) -> Supervisor: ...


def _prepare_child_fds(channel: int, stdio: StdioFds) -> None:
    """In the forked child: stdio to 0/1/2, the channel to 3, close the rest."""
    # Move everything out of 0..3 first so one dup2 cannot overwrite a source of another.
    high = [None if fd is None else _dup_high(fd) for fd in stdio]
    chan = _dup_high(channel)
    for target, fd in enumerate(high):
        if fd is not None:
            os.dup2(fd, target, inheritable=True)
    os.dup2(chan, CHANNEL_FD, inheritable=True)
    os.closerange(CHANNEL_FD + 1, _max_fd())


def _dup_high(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64)


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 65536


class ForkLauncher:
    """fork(2) the caller; the child runs :func:`tinycontainer._supervisor.main`."""

    def launch(self, request: dict[str, Any], stdio: StdioFds) -> Supervisor:
        from . import _supervisor, runtime  # noqa: F401 - imported before fork, not in the child

        parent, child = _channel.pair()
        try:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                try:
                    parent.close()
                    _prepare_child_fds(child.fileno(), stdio)
                except BaseException:
                    os._exit(127)
                _supervisor.main(CHANNEL_FD)
        finally:
            child.close()
        return Supervisor(parent, pid).hand_over(request)


def _package_parent() -> str:
    import tinycontainer

    return os.path.dirname(os.path.dirname(os.path.abspath(tinycontainer.__file__)))


class SpawnLauncher:
    """A fresh ``python -I -S`` running the supervisor: no site-packages at start (the pyenv
    interpreter here spends 100-280 ms importing them), only the package's own directory."""

    def launch(self, request: dict[str, Any], stdio: StdioFds) -> Supervisor:
        parent, child = _channel.pair()
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "from tinycontainer._supervisor import main; main(int(sys.argv[2]))"
        )
        try:
            popen = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", code, _package_parent(), str(child.fileno())],
                stdin=stdio[0],
                stdout=stdio[1],
                stderr=stdio[2],
                pass_fds=(child.fileno(),),
                close_fds=True,
            )
        finally:
            child.close()
        return Supervisor(parent, popen.pid, popen).hand_over(request)


class AutoLauncher:
    """Fork while the caller is single-threaded, spawn otherwise."""

    def __init__(self) -> None:
        self.fork = ForkLauncher()
        self.spawn = SpawnLauncher()

    def launch(self, request: dict[str, Any], stdio: StdioFds) -> Supervisor:
        if threading.active_count() == 1:
            return self.fork.launch(request, stdio)
        return self.spawn.launch(request, stdio)


_default: Launcher = AutoLauncher()


def default_launcher() -> Launcher:
    return _default


def set_default_launcher(launcher: Launcher | None) -> None:
    """Install ``launcher`` for every later container (None restores the automatic choice)."""
    global _default
    _default = launcher if launcher is not None else AutoLauncher()


__all__ = [
    "AutoLauncher",
    "ForkLauncher",
    "Launcher",
    "SpawnLauncher",
    "StdioFds",
    "Supervisor",
    "default_launcher",
    "set_default_launcher",
]
