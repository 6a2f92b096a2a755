"""A recording :class:`~tinycontainer.linux.Syscalls` for tests that must not need root.

Every call is appended to :attr:`FakeSyscalls.calls` as a tuple ``(name, *arguments)``.
Calls that change kernel state (mount, pivot_root, chown, capset, ...) are only recorded.
File-system calls an unprivileged user can make (mkdir, symlink, open, openat2, close) are
also *performed* when ``filesystem=True`` (the default), so code that creates a mount point and
then opens it can run against a temporary directory; ``mknod`` then leaves an empty regular
file (or a real FIFO) in place of the device, since only root may create device nodes.

Because mount targets are usually ``/proc/self/fd/N`` magic links, each call is also recorded
in :attr:`FakeSyscalls.resolved` with such links (and ``dir_fd`` + name pairs) replaced by the
path they pointed to at the time of the call; :meth:`FakeSyscalls.mounts` shows them relative
to a root directory, which is what assertions want to read.
"""

from __future__ import annotations

import errno as _errno
import itertools
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass

from .._errors import KernelError

Call = tuple[object, ...]

_MAGIC = re.compile(r"^/proc/self/fd/(\d+)(/.*)?$")


@dataclass
class _FailureRule:
    syscall: str
    err: int
    when: Callable[[Call], bool] | None
    times: int | None


class FakeSyscalls:
    """Records every call; performs only unprivileged file-system calls; fails on request."""

    def __init__(self, *, filesystem: bool = True, fs_types: dict[str, int] | None = None) -> None:
        self.filesystem = filesystem
        self.fs_types = dict(fs_types or {})
        """Host path prefix -> f_type that :meth:`fstatfs_type` reports (else the real value)."""
        self.calls: list[Call] = []
        self.resolved: list[Call] = []
        self._rules: list[_FailureRule] = []
        self._fake_fds = itertools.count(10_000)

    # --- configuration and inspection ---------------------------------------------------------

    def fail(
        self,
        syscall: str,
        err: int,
        *,
        when: Callable[[Call], bool] | None = None,
        times: int | None = None,
    ) -> None:
        """Make ``syscall`` raise KernelError(err); ``when`` sees the *resolved* call tuple."""
        self._rules.append(_FailureRule(syscall, err, when, times))

    def names(self) -> list[str]:
        return [str(call[0]) for call in self.calls]

    def of(self, syscall: str, *, resolved: bool = True) -> list[Call]:
        """All (resolved) calls of one syscall, in order."""
        source = self.resolved if resolved else self.calls
        return [call for call in source if call[0] == syscall]

    def mounts(self, root: str | None = None) -> list[Call]:
        """Resolved mount calls, with paths below ``root`` shown as container paths."""
        return [tuple(_relative(arg, root) for arg in call) for call in self.of("mount")]

    def kernel_calls(self, root: str | None = None) -> list[Call]:
        """Resolved state-changing calls (everything except open/openat2/close/fstatfs_type)."""
        skip = {"open", "openat2", "close", "fstatfs_type"}
        return [tuple(_relative(arg, root) for arg in call) for call in self.resolved if call[0] not in skip]

    # --- recording machinery -------------------------------------------------------------------

    def _record(self, name: str, raw: Call, resolved: Call) -> None:
        self.calls.append((name, *raw))
        call = (name, *resolved)
        self.resolved.append(call)
        for rule in self._rules:
            if rule.syscall != name or (rule.times is not None and rule.times <= 0):
                continue
            if rule.when is not None and not rule.when(call):
                continue
            if rule.times is not None:
                rule.times -= 1
            path = next((str(a) for a in resolved if isinstance(a, str)), None)
            raise KernelError(rule.err, name, path, "injected by FakeSyscalls")

    # --- Syscalls ------------------------------------------------------------------------------

    def unshare(self, flags: int) -> None:
        self._record("unshare", (flags,), (flags,))

    def setns(self, fd: int, nstype: int = 0, path: str | None = None) -> None:
        self._record("setns", (fd, nstype, path), (_fd_target(fd), nstype, path))

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
    ) -> None:
        raw = (source, target, fstype, flags, data)
        self._record("mount", raw, (_resolve(source), _resolve(target), fstype, flags, data))

    def umount2(self, target: str, flags: int = 0) -> None:
        self._record("umount2", (target, flags), (_resolve(target), flags))

    def mount_setattr(self, dirfd: int, path: str, flags: int, attr_set: int, attr_clr: int = 0) -> None:
        self._record(
            "mount_setattr",
            (dirfd, path, flags, attr_set, attr_clr),
            (_fd_target(dirfd), path, flags, attr_set, attr_clr),
        )

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._record("pivot_root", (new_root, put_old), (new_root, put_old))

    def chroot(self, path: str) -> None:
        self._record("chroot", (path,), (path,))

    def chdir(self, path: str) -> None:
        self._record("chdir", (path,), (path,))

    def fchdir(self, fd: int) -> None:
        self._record("fchdir", (fd,), (_fd_target(fd),))

    def mkdir(self, path: str, mode: int = 0o755, dir_fd: int | None = None) -> None:
        self._record("mkdir", (path, mode, dir_fd), (_at(dir_fd, path), mode))
        if self.filesystem:
            _perform(os.mkdir, "mkdir", path, mode, dir_fd=dir_fd)

    def mknod(self, path: str, mode: int, device: int, dir_fd: int | None = None) -> None:
        resolved = (_at(dir_fd, path), mode, os.major(device), os.minor(device))
        self._record("mknod", (path, mode, device, dir_fd), resolved)
        if not self.filesystem:
            return
        if stat.S_ISFIFO(mode):
            _perform(os.mkfifo, "mknod", path, stat.S_IMODE(mode), dir_fd=dir_fd)
            return
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        os.close(_perform(os.open, "mknod", path, flags, stat.S_IMODE(mode), dir_fd=dir_fd))

    def symlink(self, target: str, path: str, dir_fd: int | None = None) -> None:
        self._record("symlink", (target, path, dir_fd), (target, _at(dir_fd, path)))
        if self.filesystem:
            _perform(os.symlink, "symlink", target, path, dir_fd=dir_fd)

    def chown(self, path: str, uid: int, gid: int, dir_fd: int | None = None) -> None:
        self._record("chown", (path, uid, gid, dir_fd), (_at(dir_fd, path), uid, gid))

    def open(self, path: str, flags: int, mode: int = 0o777, dir_fd: int | None = None) -> int:
        self._record("open", (path, flags, mode, dir_fd), (_at(dir_fd, path), flags, mode))
        if not self.filesystem:
            return next(self._fake_fds)
        result: int = _perform(os.open, "open", path, flags, mode, dir_fd=dir_fd)
        return result

    def openat2(self, dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
        self._record("openat2", (dirfd, path, flags, mode, resolve), (_at(dirfd, path), flags, mode, resolve))
        if not self.filesystem:
            return next(self._fake_fds)
        from ..linux import _libc

        return _libc.openat2(dirfd, path, flags, mode, resolve)

    def close(self, fd: int) -> None:
        self._record("close", (fd,), (fd,))
        if self.filesystem:
            os.close(fd)

    def fstatfs_type(self, fd: int, path: str | None = None) -> int:
        where = _fd_target(fd)
        self._record("fstatfs_type", (fd, path), (where, path))
        best = ""
        for prefix in self.fs_types:
            if isinstance(where, str) and _under(where, prefix) and len(prefix) > len(best):
                best = prefix
        if best:
            return self.fs_types[best]
        from ..linux import _libc

        return _libc.fstatfs_type(fd, path)

    def sethostname(self, name: str) -> None:
        self._record("sethostname", (name,), (name,))

    def setdomainname(self, name: str) -> None:
        self._record("setdomainname", (name,), (name,))

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        args = (option, arg2, arg3, arg4, arg5)
        self._record("prctl", args, args)
        return 0

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        args = (effective, permitted, inheritable)
        self._record("capset", args, args)

    def seccomp_set_filter(self, bpf: bytes, flags: int = 0) -> int:
        self._record("seccomp_set_filter", (bpf, flags), (bpf, flags))
        return 0

    def personality(self, persona: int) -> int:
        self._record("personality", (persona,), (persona,))
        return 0


def _under(path: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/") or prefix == ""


def _fd_target(fd: int) -> object:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return fd


def _resolve(path: str | None) -> str | None:
    """Replace a /proc/self/fd/N magic link by where N points now."""
    if path is None:
        return None
    match = _MAGIC.match(path)
    if not match:
        return path
    target = _fd_target(int(match.group(1)))
    if not isinstance(target, str):
        return path
    return target + (match.group(2) or "")


def _at(dir_fd: int | None, path: str) -> str:
    if dir_fd is None or os.path.isabs(path):
        return path
    base = _fd_target(dir_fd)
    if not isinstance(base, str):
        return path
    if path in ("", "."):
        return base
    return os.path.join(base, path)


def _relative(arg: object, root: str | None) -> object:
    if root is None or not isinstance(arg, str):
        return arg
    root = root.rstrip("/")
    if arg == root:
        return "/"
    if arg.startswith(root + "/"):
        return arg[len(root) :]
    return arg


def _perform(func: Callable[..., object], name: str, path: str, *args: object, **kwargs: object) -> int:
    try:
        result = func(path, *args, **kwargs)
    except OSError as exc:
        raise KernelError(exc.errno or _errno.EIO, name, path) from None
    return result if isinstance(result, int) else 0


__all__ = ["Call", "FakeSyscalls"]
