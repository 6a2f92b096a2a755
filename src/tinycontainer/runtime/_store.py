"""The on-disk state of containers: ``<root>/<id>/state.json`` written atomically.

One directory per container, created with mkdir(2) so that of several concurrent creates of
one id exactly one wins (EEXIST for the others). state.json is replaced with write-to-temp +
rename(2), so a reader never sees a half-written file (runc ``saveState``, crun ``status.tmp``).
Mutating commands hold an exclusive flock(2) on ``<root>/<id>/lock``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import select
from collections.abc import Iterator
from typing import Any

from .._errors import ContainerExists, ContainerNotFound, KernelError, SpecError

STATE_FILE = "state.json"
FIFO_NAME = "exec.fifo"
CONFIG_COPY = "config.json"

# runc's rule: ^[\w+-\.]+$ ; we also cap the length so the id fits in a path component and a
# cgroup name, and refuse "." and ".." which are not names at all.
_ID_RE = re.compile(r"^[A-Za-z0-9_+.\-]{1,128}$")


def check_id(container_id: str) -> str:
    # A leading "." is refused too: the runtime keeps its own hidden entries in the state root
    # (.seccomp-cache), which must never be mistaken for, or collide with, a container.
    if not _ID_RE.match(container_id) or container_id.startswith("."):
        raise SpecError(
            f"invalid container id {container_id[:80]!r}: "
            "use 1-128 characters from [A-Za-z0-9_+.-], not starting with '.'"
        )
    return container_id


class Store:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def dir(self, container_id: str) -> str:
        return os.path.join(self.root, check_id(container_id))

    def create_dir(self, container_id: str) -> str:
        path = self.dir(container_id)
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise KernelError.from_oserror(exc, "mkdir", self.root) from None
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            raise ContainerExists(container_id) from None
        except OSError as exc:
            raise KernelError.from_oserror(exc, "mkdir", path) from None
        return path

    def exists(self, container_id: str) -> bool:
        return os.path.isdir(self.dir(container_id))

    def read(self, container_id: str) -> dict[str, Any]:
        path = os.path.join(self.dir(container_id), STATE_FILE)
        try:
            with open(path, "rb") as f:
                data: dict[str, Any] = json.loads(f.read())
        except FileNotFoundError:
            if os.path.isdir(os.path.dirname(path)):
                # The directory exists but create has not written state yet: "creating".
                return {"id": container_id, "creating": True, "pid": 0}
            raise ContainerNotFound(container_id) from None
        except ValueError:
            return {"id": container_id, "corrupt": True, "pid": 0}
        return data

    def write(self, container_id: str, state: dict[str, Any]) -> None:
        write_atomic(self.dir(container_id), STATE_FILE, json.dumps(state, separators=(",", ":")).encode())

    def remove(self, container_id: str) -> None:
        directory = self.dir(container_id)
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(directory):
                path = os.path.join(directory, name)
                with contextlib.suppress(FileNotFoundError):
                    if os.path.isdir(path) and not os.path.islink(path):
                        os.rmdir(path)  # an empty mount point (host-root stage), never a tree
                    else:
                        os.unlink(path)
            os.rmdir(directory)

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(
            n for n in names if _ID_RE.match(n) and not n.startswith(".") and os.path.isdir(os.path.join(self.root, n))
        )

    def locked(self, container_id: str) -> contextlib.AbstractContextManager[None]:
        return locked_dir(self.dir(container_id), container_id)


def write_atomic(directory: str, name: str, data: bytes) -> None:
    """Replace ``directory/name`` whole: readers see the old or the new file, never a part."""
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, os.path.join(directory, name))


@contextlib.contextmanager
def locked_dir(directory: str, container_id: str) -> Iterator[None]:
    """An exclusive flock(2) on ``directory/lock``; ContainerNotFound when the directory is gone."""
    try:
        fd = os.open(os.path.join(directory, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        raise ContainerNotFound(container_id) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def fifo_path(state_dir: str) -> str:
    return os.path.join(state_dir, FIFO_NAME)


def make_fifo(state_dir: str) -> str:
    path = fifo_path(state_dir)
    try:
        os.mkfifo(path, 0o622)
    except OSError as exc:
        raise KernelError.from_oserror(exc, "mkfifo", path) from None
    return path


def signal_fifo(state_dir: str) -> bool:
    """Release a created container's init: write one byte to its exec fifo. False if nobody reads."""
    path = fifo_path(state_dir)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT):
            return False
        raise KernelError.from_oserror(exc, "open", path) from None
    try:
        os.write(fd, b"0")
        # Wait until the init has exec'd the program: it keeps the read end (close-on-exec)
        # until execve(2). A FIFO writer sees POLLERR once no reader is left (pipe_poll in
        # fs/pipe.c); with no events requested, poll(2) reports only that (or POLLHUP).
        poller = select.poll()
        poller.register(fd, 0)
        while not poller.poll():
            pass
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return True
