"""``tcontainer cp``: copy files into and out of a container without ever leaving its root.

docker cp (CVE-2018-15664) and podman cp (CVE-2019-10152) resolved a container path to a host
path string and then opened that string: a process in the container swapping a directory for a
symlink in between made the copy read or write host files. Here no container path is ever
turned into a host path. The root is a directory fd (``/proc/<init>/root`` of a running
container: the container's own mount tree; the ``--rootfs`` directory of a stopped one); the
path the user gave is resolved from it with openat2(2) ``RESOLVE_IN_ROOT`` (symlinks and ".."
act as they do for the container); every entry below that is reached from its parent's fd with
``RESOLVE_NO_SYMLINKS``; files are read through the very fd that was checked
(``/proc/self/fd/N``), and files are created with ``O_CREAT|O_EXCL|O_NOFOLLOW`` after the old
entry is unlinked, so a swapped-in symlink, FIFO or hard link is refused, never followed.

Host paths are the caller's own and are used as given. Files copied out lose their set-uid and
set-gid bits unless ``archive`` (a set-uid root binary from a container must not become one on
the host); special files (devices, FIFOs, sockets) are skipped with a warning, both ways.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._errors import KernelError, SpecError, StateError
from .linux import _consts as C
from .linux._paths import SCOPED, open_in_root, openat2_retry
from .linux._syscalls import LinuxSyscalls, Syscalls
from .linux.mounts import clean_path

if TYPE_CHECKING:
    from ._containers import Home
    from ._records import Record

_CHILD = SCOPED | C.RESOLVE_NO_SYMLINKS
_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID
Warn = Callable[[str], None]


def _warn_stderr(message: str) -> None:
    print(f"tcontainer: {message}", file=sys.stderr)


def container_root(home: Home, record: Record) -> int:
    """An O_PATH fd of the container's root directory, as its processes see it."""
    from ._bundle import LibPaths
    from .linux import proc

    record = home.records.load(record.id)
    if record.live_state == "running" and record.process_alive():
        # The init's root in its own mount namespace: volumes and tmpfs mounts included.
        try:
            fd = os.open(f"/proc/{record.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise KernelError.from_oserror(exc, "open", f"/proc/{record.pid}/root") from None
        # The pid may have been reused between the check and the open: check again, now pinned.
        if proc.is_alive(record.pid, record.pid_start):
            return fd
        os.close(fd)
    rootfs = os.path.join(LibPaths(home.dirs.run).bundle(record.id), "rootfs")
    for candidate in (record.rootfs, rootfs):
        if candidate and os.path.isdir(candidate):
            return os.open(candidate, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    raise StateError(
        f"container {record.name} is not running and has no file system left to copy from "
        "(an image container's files exist only while it runs): start it first"
    )


def _reopen(fd: int, flags: int) -> int:
    # Through our own fd's magic link: exactly the inode we checked, whatever its name is now.
    return os.open(f"/proc/self/fd/{fd}", flags | os.O_CLOEXEC)


def _copy_data(src: int, dst: int) -> None:
    while True:
        chunk = os.read(src, 1 << 20)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]


def _split(path: str) -> tuple[str, str]:
    cleaned = clean_path(path)
    parent, _, name = cleaned.rpartition("/")
    return parent or "/", name


def _contents_only(path: str) -> bool:
    return path == "." or path.endswith("/.")


# ------------------------------------------------------------------------------- out


def copy_out(
    root_fd: int, src: str, dst: str, *, follow: bool = False, archive: bool = False,
    sys_: Syscalls | None = None, warn: Warn = _warn_stderr,
) -> None:
    """Copy container path ``src`` (below ``root_fd``) to host path ``dst``, as docker cp does."""
    sc = sys_ or LinuxSyscalls()
    parent_path, name = _split(src)
    try:
        if not name or follow:
            src_fd = open_in_root(sc, root_fd, src, os.O_PATH)
        else:
            parent_fd = open_in_root(sc, root_fd, parent_path, os.O_PATH | os.O_DIRECTORY)
            try:
                src_fd = openat2_retry(sc, parent_fd, name, os.O_PATH | os.O_NOFOLLOW, 0, _CHILD)
            finally:
                os.close(parent_fd)
    except KernelError as exc:
        raise _not_found(exc, src) from None
    try:
        st = os.fstat(src_fd)
        base = name or "root"
        if stat.S_ISDIR(st.st_mode):
            if os.path.isdir(dst):
                target = dst if _contents_only(src) else os.path.join(dst, base)
            elif os.path.lexists(dst):
                raise SpecError(f"cannot copy directory {src} onto the file {dst}")
            else:
                target = dst
        else:
            if dst.endswith("/") and not os.path.isdir(dst):
                raise SpecError(f"destination directory {dst} does not exist")
            target = os.path.join(dst, base) if os.path.isdir(dst) else dst
        _out_entry(src_fd, st, target, archive, warn, src)
    finally:
        os.close(src_fd)


def _out_entry(fd: int, st: os.stat_result, target: str, archive: bool, warn: Warn, shown: str) -> None:
    mode = stat.S_IMODE(st.st_mode) if archive else stat.S_IMODE(st.st_mode) & ~_SPECIAL_BITS
    if stat.S_ISLNK(st.st_mode):
        link = os.readlink("", dir_fd=fd)  # readlinkat(2) of the O_PATH fd: the link we checked
        with contextlib.suppress(FileNotFoundError):
            if not os.path.isdir(target) or os.path.islink(target):
                os.unlink(target)
        os.symlink(link, target)
        if archive:
            os.lchown(target, st.st_uid, st.st_gid)
        return
    if stat.S_ISREG(st.st_mode):
        src = _reopen(fd, os.O_RDONLY)
        try:
            with contextlib.suppress(FileNotFoundError):
                if os.path.islink(target) or not os.path.isdir(target):
                    os.unlink(target)
            out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                _copy_data(src, out)
                _finish(out, st, mode, archive)
            finally:
                os.close(out)
        finally:
            os.close(src)
        return
    if not stat.S_ISDIR(st.st_mode):
        warn(f"skipping {shown}: not a regular file, directory or symlink")
        return
    with contextlib.suppress(FileExistsError):
        os.mkdir(target, 0o700)
    if os.path.islink(target) or not os.path.isdir(target):
        raise SpecError(f"cannot copy directory {shown} onto {target}: not a directory")
    listing = _reopen(fd, os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = os.listdir(listing)
    finally:
        os.close(listing)
    sc = LinuxSyscalls()
    for child_name in sorted(names):
        try:
            child = openat2_retry(sc, fd, child_name, os.O_PATH | os.O_NOFOLLOW, 0, _CHILD)
        except KernelError as exc:
            warn(f"skipping {shown}/{child_name}: {exc}")  # removed or swapped while we copy
            continue
        try:
            _out_entry(child, os.fstat(child), os.path.join(target, child_name), archive, warn,
                       f"{shown.rstrip('/')}/{child_name}")
        finally:
            os.close(child)
    dfd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        _finish(dfd, st, mode, archive)
    finally:
        os.close(dfd)


def _finish(fd: int, st: os.stat_result, mode: int, archive: bool) -> None:
    if archive:
        os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, mode)
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


# ------------------------------------------------------------------------------- in


def copy_in(
    root_fd: int, src: str, dst: str, *, follow: bool = False, archive: bool = False,
    sys_: Syscalls | None = None, warn: Warn = _warn_stderr,
) -> None:
    """Copy host path ``src`` to container path ``dst`` (below ``root_fd``), as docker cp does."""
    sc = sys_ or LinuxSyscalls()
    st = os.stat(src) if follow else os.lstat(src)
    is_dir = stat.S_ISDIR(st.st_mode)
    base = os.path.basename(os.path.normpath(src))
    try:
        existing = open_in_root(sc, root_fd, dst, os.O_PATH)
    except KernelError as exc:
        if exc.errno != errno.ENOENT:
            raise
        existing = None
    if existing is not None and stat.S_ISDIR(os.fstat(existing).st_mode):
        parent_fd = existing
        name = "" if is_dir and _contents_only(src) else base
    else:
        if existing is not None:
            os.close(existing)
            if is_dir:
                raise SpecError(f"cannot copy directory {src} onto the file {dst}")
        elif dst.endswith("/"):
            raise SpecError(f"destination directory {dst} does not exist in the container")
        parent_path, name = _split(dst)
        if not name:
            raise SpecError(f"invalid destination {dst}")
        try:
            parent_fd = open_in_root(sc, root_fd, parent_path, os.O_PATH | os.O_DIRECTORY)
        except KernelError as exc:
            raise _not_found(exc, parent_path) from None
    try:
        if name:
            _in_entry(sc, src, st, parent_fd, name, archive, warn)
        else:
            for child in sorted(os.listdir(src)):
                path = os.path.join(src, child)
                _in_entry(sc, path, os.lstat(path), parent_fd, child, archive, warn)
    finally:
        os.close(parent_fd)


def _in_entry(
    sc: Syscalls, src: str, st: os.stat_result, parent_fd: int, name: str, archive: bool, warn: Warn
) -> None:
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        try:
            dir_fd = openat2_retry(sc, parent_fd, name, os.O_PATH | os.O_DIRECTORY, 0, _CHILD)
        except KernelError as exc:
            raise _not_found(exc, name) from None
        try:
            for child in sorted(os.listdir(src)):
                path = os.path.join(src, child)
                _in_entry(sc, path, os.lstat(path), dir_fd, child, archive, warn)
            real = _reopen(dir_fd, os.O_RDONLY | os.O_DIRECTORY)
            try:
                _finish(real, st, mode, archive)
            finally:
                os.close(real)
        finally:
            os.close(dir_fd)
        return
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        warn(f"skipping {src}: not a regular file, directory or symlink")
        return
    _remove_old(parent_fd, name)
    if stat.S_ISLNK(st.st_mode):
        # The link's text means something only inside the container; we never follow it.
        os.symlink(os.readlink(src), name, dir_fd=parent_fd)
        if archive:
            os.chown(name, st.st_uid, st.st_gid, dir_fd=parent_fd, follow_symlinks=False)
        return
    src_fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        # O_EXCL|O_NOFOLLOW: whatever the container put there since _remove_old is refused;
        # O_NONBLOCK: a FIFO there would otherwise block us forever.
        out = openat2_retry(sc, parent_fd, name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NONBLOCK,
                            0o600, _CHILD)
        try:
            _copy_data(src_fd, out)
            _finish(out, st, mode, archive)
        finally:
            os.close(out)
    finally:
        os.close(src_fd)


def _remove_old(parent_fd: int, name: str) -> None:
    """Unlink a non-directory at ``name``: replacing, never writing through a link or hard link."""
    try:
        old = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(old.st_mode):
        raise SpecError(f"cannot overwrite the directory {name} with a file")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=parent_fd)


def _not_found(exc: KernelError, path: str) -> Exception:
    if exc.errno == errno.ENOENT:
        return StateError(f"no such file or directory in the container: {path}")
    if exc.errno == errno.ELOOP:
        return StateError(f"{path}: a symlink is in the way (not followed here)")
    if exc.errno == errno.ENOTDIR:
        return StateError(f"{path}: not a directory in the container")
    return exc
