"""The on-disk state of containers: ``<root>/<id>/state.json`` written atomically.

One directory per container, created with mkdir(2) so that of several concurrent creates of
one id exactly one wins (EEXIST for the others). state.json is replaced with write-to-temp +
rename(2), so a reader never sees a half-written file (runc ``saveState``, crun ``status.tmp``).
Mutating commands hold an exclusive flock(2) on the directory ``<root>/<id>`` itself.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select

from .._errors import ContainerExists, ContainerNotFound, KernelError, SpecError, suppressed
from ..linux.proc import read_file
from ..oci import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STATE_FILE = "state.json"
FIFO_NAME = "exec.fifo"
CONFIG_COPY = "config.json"

# runc's rule: ^[\w+-\.]+$ ; we also cap the length so the id fits in a path component and a
# cgroup name, and refuse "." and ".." which are not names at all.
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-")


def _is_id(name: str) -> bool:
    # A set test, not a regular expression: re costs ~3 ms to import on every runtime command.
    return 0 < len(name) <= 128 and _ID_CHARS.issuperset(name) and not name.startswith(".")


def check_id(container_id: str) -> str:
    # A leading "." is refused too: the runtime keeps its own hidden entries in the state root
    # (.seccomp-cache), which must never be mistaken for, or collide with, a container.
    if not _is_id(container_id):
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
            data: dict[str, Any] = _json.loads(read_file(path))
        except FileNotFoundError:
            if os.path.isdir(os.path.dirname(path)):
                # The directory exists but create has not written state yet: "creating".
                return {"id": container_id, "creating": True, "pid": 0}
            raise ContainerNotFound(container_id) from None
        except ValueError:
            return {"id": container_id, "corrupt": True, "pid": 0}
        return data

    def write(self, container_id: str, state: dict[str, Any], *, first: bool = False) -> None:
        """Replace the state atomically. ``first``: the directory was just made and holds no
        state yet, so there is nothing to swap with: a plain rename(2) puts it in."""
        data = _json.dumps(state, compact=True).encode()
        if first:
            write_atomic(self.dir(container_id), STATE_FILE, data)
        else:
            _swap_in(self.dir(container_id), STATE_FILE, data)

    def stage(self, container_id: str, state: dict[str, Any]) -> str:
        """Write ``state`` beside the current one, to be put in by :meth:`commit`; its path.
        Until then readers see the current state; remove() deletes a staged one left over."""
        return _write_temporary(self.dir(container_id), STATE_FILE, _json.dumps(state, compact=True).encode())

    def commit(self, container_id: str, staged: str) -> None:
        _swap(staged, os.path.join(self.dir(container_id), STATE_FILE))

    def remove(self, container_id: str) -> None:
        directory = self.dir(container_id)
        with suppressed(FileNotFoundError):
            # scandir's d_type tells directories apart without a stat(2) per entry.
            with os.scandir(directory) as listing:
                entries = list(listing)
            for entry in entries:
                with suppressed(FileNotFoundError):
                    if entry.is_dir(follow_symlinks=False):
                        os.rmdir(entry.path)  # an empty mount point (host-root stage), never a tree
                    else:
                        os.unlink(entry.path)
            os.rmdir(directory)

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _is_id(n) and os.path.isdir(os.path.join(self.root, n)))

    def locked(self, container_id: str) -> locked_dir:
        return locked_dir(self.dir(container_id), container_id)


def _swap_in(directory: str, name: str, data: bytes) -> None:
    """write_atomic for the state file, which create rewrites several times: swapped in with
    renameat2(RENAME_EXCHANGE) and the old one unlinked, which spares ext4's flush of the new
    data on a rename over an existing file (see _libc.renameat2). Readers still see the old or
    the new file whole; only a crash right after the swap leaves the old one under a hidden
    temporary name, which remove() deletes with the directory."""
    _swap(_write_temporary(directory, name, data), os.path.join(directory, name))


def _swap(tmp: str, target: str) -> None:
    from ..linux import _libc  # the runtime's create has it loaded already

    try:
        _libc.renameat2(tmp, target, _libc.RENAME_EXCHANGE)
    except OSError:
        # ENOENT: the first write, nothing to swap with; EINVAL: a filesystem without
        # RENAME_EXCHANGE. Nothing was swapped either way.
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def write_atomic(directory: str, name: str, data: bytes) -> None:
    """Replace ``directory/name`` whole: readers see the old or the new file, never a part."""
    os.replace(_write_temporary(directory, name, data), os.path.join(directory, name))


def _write_temporary(directory: str, name: str, data: bytes) -> str:
    """``data`` in a hidden file beside ``name``, to be renamed over it; its path."""
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return tmp


class locked_dir:
    """An exclusive flock(2) on ``directory`` while the ``with`` block runs; ContainerNotFound
    when the directory is gone. A class rather than a contextmanager generator: contextlib
    costs every runtime command ~2 ms to import.

    The lock is on the directory itself (flock(2) takes any open file), not on a file in it,
    which cost an inode created at the first ``start`` (~0.07 ms of it on ext4) and one more
    to unlink and evict at ``delete``. Semantics are the same: a waiter
    that gets the lock once ``delete`` removed the directory holds a lock on a dead inode,
    finds no state and reports ContainerNotFound; a container created again under the same id
    gets a new directory, hence a new lock."""

    __slots__ = ("_container_id", "_directory", "_fd")

    def __init__(self, directory: str, container_id: str) -> None:
        self._directory = directory
        self._container_id = container_id
        self._fd = -1

    def __enter__(self) -> None:
        try:
            fd = os.open(self._directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound(self._container_id) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def __exit__(self, *_exc: object) -> None:
        fd, self._fd = self._fd, -1
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


def signal_fifo(state_dir: str, *, wait_for_exec: bool = True) -> bool:
    """Release a created container's init: write one byte to its exec fifo. False if nobody
    reads. ``wait_for_exec``: return only once the init has exec'd its program."""
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
        if wait_for_exec:
            poller = select.poll()
            poller.register(fd, 0)
            while not poller.poll():
                pass
    finally:
        os.close(fd)
    with suppressed(FileNotFoundError):
        os.unlink(path)
    return True
