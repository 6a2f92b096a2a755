"""Resolve and create paths *inside* a root directory without ever leaving it.

Every lookup starts from a directory fd of the root and goes through ``openat2(2)`` with
``RESOLVE_IN_ROOT`` (symlinks and ".." are resolved as if the root were "/", the way the
container will see them) and ``RESOLVE_NO_MAGICLINKS`` (no /proc/<pid>/fd jumps).  Missing
directories are created one component at a time with ``mkdirat`` relative to the fd of their
verified parent and re-opened with ``RESOLVE_NO_SYMLINKS``, so a symlink swapped in by a racing
process is refused instead of followed.  This is the defence against CVE-2021-30465 (symlink
exchange between resolution and mount(2)) and CVE-2024-45310 (MkdirAll creating files on the
host): callers mount onto ``/proc/self/fd/N`` of the fd returned here, never onto a path string.

All state changes (mkdir, file creation) go through the :class:`Syscalls` seam.
"""

from __future__ import annotations

import errno
import os
import stat

from .._errors import KernelError, SpecError, UnsupportedError
from . import _consts as C
from ._syscalls import Syscalls
from .mounts import clean_path

SCOPED = C.RESOLVE_IN_ROOT | C.RESOLVE_NO_MAGICLINKS
_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
# The kernel answers EAGAIN when a rename or mount raced with a RESOLVE_IN_ROOT ".." walk.
_EAGAIN_RETRIES = 16


def proc_fd(fd: int) -> str:
    """The magic link through which mount(2) reaches exactly the object ``fd`` refers to."""
    return f"/proc/self/fd/{fd}"


def fd_path(fd: int) -> str:
    """Where ``fd`` is in the caller's mount namespace (readlink of its magic link)."""
    try:
        return os.readlink(proc_fd(fd))
    except OSError as exc:
        raise KernelError.from_oserror(exc, "readlink", proc_fd(fd)) from None


def openat2_retry(sys: Syscalls, dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """openat2 that retries EAGAIN and turns ENOSYS into a clear UnsupportedError."""
    for _ in range(_EAGAIN_RETRIES):
        try:
            return sys.openat2(dirfd, path, flags | os.O_CLOEXEC, mode, resolve)
        except KernelError as exc:
            if exc.errno == errno.EAGAIN:
                continue
            if exc.errno == errno.ENOSYS:
                raise UnsupportedError("openat2(2) is required (Linux 5.6 or newer)") from None
            raise
    raise KernelError(errno.EAGAIN, "openat2", path, "kept racing with renames")


def open_in_root(sys: Syscalls, root_fd: int, path: str, flags: int = os.O_PATH, *, no_symlinks: bool = False) -> int:
    """Open ``path`` (a container path) below ``root_fd``, following symlinks only inside it."""
    resolve = SCOPED | (C.RESOLVE_NO_SYMLINKS if no_symlinks else 0)
    relative = clean_path(path).lstrip("/") or "."
    return openat2_retry(sys, root_fd, relative, flags, 0, resolve)


def _open_child_dir(sys: Syscalls, parent_fd: int, name: str) -> int:
    # A component we just created (or found): it must be a real directory now, never a symlink.
    return openat2_retry(sys, parent_fd, name, _O_PATH_DIR, 0, SCOPED | C.RESOLVE_NO_SYMLINKS)


def mkdir_all_in_root(sys: Syscalls, root_fd: int, path: str, mode: int = 0o755, *, no_symlinks: bool = False) -> int:
    """Return an O_PATH fd of directory ``path`` below ``root_fd``, creating what is missing."""
    parts = [p for p in clean_path(path).split("/") if p]
    resolve = SCOPED | (C.RESOLVE_NO_SYMLINKS if no_symlinks else 0)
    existing = len(parts)
    while True:
        try:
            fd = openat2_retry(sys, root_fd, "/".join(parts[:existing]) or ".", _O_PATH_DIR, 0, resolve)
            break
        except KernelError as exc:
            if exc.errno != errno.ENOENT or existing == 0:
                raise _explain(exc, path) from None
            existing -= 1
    try:
        for name in parts[existing:]:
            child = _make_and_open_child(sys, fd, name, mode, path)
            sys.close(fd)
            fd = child
    except BaseException:
        sys.close(fd)
        raise
    return fd


def make_child_dir(sys: Syscalls, parent_fd: int, name: str, mode: int = 0o755) -> int:
    """An O_PATH fd of directory ``name`` right below ``parent_fd``, made if missing.

    What mkdir_all_in_root does for one component, without its first lookup of the whole path
    (which fails when the directory is new) and without reopening the parent."""
    if not name or "/" in name or name in (".", ".."):
        raise SpecError(f"{name!r} is not a single path component", field="mounts")
    return _make_and_open_child(sys, parent_fd, name, mode, name)


def _make_and_open_child(sys: Syscalls, parent_fd: int, name: str, mode: int, shown: str) -> int:
    """mkdir(2) ``name`` below ``parent_fd`` unless it exists, then open it (no symlink
    followed); errors name ``shown``."""
    try:
        sys.mkdir(name, mode, dir_fd=parent_fd)
    except KernelError as exc:
        if exc.errno != errno.EEXIST:
            raise
    try:
        return _open_child_dir(sys, parent_fd, name)
    except KernelError as exc:
        raise _explain(exc, shown) from None


def create_file_in_root(sys: Syscalls, root_fd: int, path: str, mode: int = 0o644) -> int:
    """Return an O_PATH fd of the non-directory ``path`` below ``root_fd``, creating an empty file."""
    try:
        return open_in_root(sys, root_fd, path)
    except KernelError as exc:
        if exc.errno != errno.ENOENT:
            raise _explain(exc, path) from None
    cleaned = clean_path(path)
    parent_path, name = cleaned.rsplit("/", 1)
    parent = mkdir_all_in_root(sys, root_fd, parent_path or "/")
    try:
        try:
            # O_EXCL never follows a symlink: a dangling one in the image is refused below.
            wfd = openat2_retry(
                sys,
                parent,
                name,
                os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW,
                mode,
                SCOPED | C.RESOLVE_NO_SYMLINKS,
            )
            sys.close(wfd)
        except KernelError as exc:
            if exc.errno != errno.EEXIST:
                raise
        try:
            return openat2_retry(sys, parent, name, os.O_PATH, 0, SCOPED | C.RESOLVE_NO_SYMLINKS)
        except KernelError as exc:
            raise _explain(exc, path) from None
    finally:
        sys.close(parent)


def ensure_mountpoint(sys: Syscalls, root_fd: int, path: str, *, directory: bool, no_symlinks: bool = False) -> int:
    """Find or create a mount point: a directory, or an empty file when the source is a file."""
    if directory:
        return mkdir_all_in_root(sys, root_fd, path, no_symlinks=no_symlinks)
    if no_symlinks:
        raise SpecError(f"{path}: this mount needs a directory", field="mounts")
    return create_file_in_root(sys, root_fd, path)


def verify_inside(
    fd: int, root_path: str, path: str, *, directory: bool | None = None, where: str | None = None
) -> os.stat_result:
    """Re-check an opened mount target: it must lie under ``root_path`` and be of the right type.

    Defence in depth on top of RESOLVE_IN_ROOT: if anything went wrong (a kernel without the
    fix, a bind mount racing us), the magic link shows the real location before we mount.
    ``where`` is ``fd_path(fd)`` when the caller already read it. Every check on one fd then
    judges the same snapshot: a second readlink is no stronger, since a rename may move the
    object after any readlink, and the mount goes through the fd (the object), never the path.
    """
    if where is None:
        where = fd_path(fd)
    check_inside(where, root_path, path)
    st = os.fstat(fd)
    if directory is True and not stat.S_ISDIR(st.st_mode):
        raise SpecError(f"{path}: mount point is not a directory", field="mounts")
    if directory is False and stat.S_ISDIR(st.st_mode):
        raise SpecError(f"{path}: mount point is a directory but the source is not", field="mounts")
    return st


def check_inside(where: str, root_path: str, path: str) -> None:
    """Refuse ``where`` (the host path an fd for container path ``path`` has) outside the root."""
    root = root_path.rstrip("/") or "/"
    if not (root == "/" or where == root or where.startswith(root + "/")):
        raise SpecError(f"{path} resolved to {where}, outside the container root {root}", field="mounts")


def relative_to_root(fd: int, root_path: str, *, where: str | None = None) -> str:
    """The container path of ``fd`` ("/dev/pts"), given the host path of the root (and, when
    the caller already read it, ``where = fd_path(fd)``)."""
    if where is None:
        where = fd_path(fd)
    root = root_path.rstrip("/")
    if not root:
        return where
    if where == root:
        return "/"
    if where.startswith(root + "/"):
        return where[len(root) :]
    return where


def _explain(exc: KernelError, path: str) -> KernelError:
    if exc.errno == errno.ELOOP:
        return KernelError(errno.ELOOP, "openat2", path, "a symlink is in the way and is not allowed here")
    if exc.errno == errno.EXDEV:
        return KernelError(errno.EXDEV, "openat2", path, "path escapes the container root")
    return exc


__all__ = [
    "SCOPED",
    "check_inside",
    "create_file_in_root",
    "ensure_mountpoint",
    "fd_path",
    "make_child_dir",
    "mkdir_all_in_root",
    "open_in_root",
    "openat2_retry",
    "proc_fd",
    "relative_to_root",
    "verify_inside",
]
