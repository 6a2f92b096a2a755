"""The kernel seam: the object through which container setup makes its system calls.

Setup code (mounts, rootfs, capabilities, namespaces) receives a :class:`Syscalls` and never
calls ``_libc`` or ``os`` directly for a state-changing call, so the order of mounts, the
pivot_root and the capability drop can be unit-tested without root by the recording fake in
:mod:`tinycontainer.testing` (the idea of youki's ``Syscall`` trait).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol
else:
    # A Protocol is for the type checker only; importing typing costs a tcontainer-oci
    # command ~8 ms (it pulls in re, enum, functools and collections).
    Protocol = object

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Syscalls(Protocol):
    def unshare(self, flags: int) -> None: ...
    def setns(self, fd: int, nstype: int = 0, path: str | None = None) -> None: ...
    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
    ) -> None: ...
    def umount2(self, target: str, flags: int = 0) -> None: ...
    def mount_setattr(self, dirfd: int, path: str, flags: int, attr_set: int, attr_clr: int = 0) -> None: ...
    def pivot_root(self, new_root: str, put_old: str) -> None: ...
    def chroot(self, path: str) -> None: ...
    def chdir(self, path: str) -> None: ...
    def fchdir(self, fd: int) -> None: ...
    def mkdir(self, path: str, mode: int = 0o755, dir_fd: int | None = None) -> None: ...
    def mknod(self, path: str, mode: int, device: int, dir_fd: int | None = None) -> None: ...
    def symlink(self, target: str, path: str, dir_fd: int | None = None) -> None: ...
    def chown(self, path: str, uid: int, gid: int, dir_fd: int | None = None) -> None: ...
    def open(self, path: str, flags: int, mode: int = 0o777, dir_fd: int | None = None) -> int: ...
    def openat2(self, dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int: ...
    def close(self, fd: int) -> None: ...
    def fstatfs_type(self, fd: int, path: str | None = None) -> int: ...
    def sethostname(self, name: str) -> None: ...
    def setdomainname(self, name: str) -> None: ...
    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int: ...
    def capset(self, effective: int, permitted: int, inheritable: int) -> None: ...
    def seccomp_set_filter(self, bpf: bytes, flags: int = 0) -> int: ...
    def personality(self, persona: int) -> int: ...


class LinuxSyscalls:
    """The real kernel."""

    def __init__(self) -> None:
        from . import _libc

        self._libc = _libc

    def unshare(self, flags: int) -> None:
        self._libc.unshare(flags)

    def setns(self, fd: int, nstype: int = 0, path: str | None = None) -> None:
        self._libc.setns(fd, nstype, path)

    def mount(
        self, source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
    ) -> None:
        self._libc.mount(source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int = 0) -> None:
        self._libc.umount2(target, flags)

    def mount_setattr(self, dirfd: int, path: str, flags: int, attr_set: int, attr_clr: int = 0) -> None:
        self._libc.mount_setattr(dirfd, path, flags, attr_set, attr_clr)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._libc.pivot_root(new_root, put_old)

    def chroot(self, path: str) -> None:
        _os_call(os.chroot, "chroot", path)

    def chdir(self, path: str) -> None:
        _os_call(os.chdir, "chdir", path)

    def fchdir(self, fd: int) -> None:
        _os_call(os.fchdir, "fchdir", fd)

    def mkdir(self, path: str, mode: int = 0o755, dir_fd: int | None = None) -> None:
        _os_call(os.mkdir, "mkdir", path, mode, dir_fd=dir_fd)

    def mknod(self, path: str, mode: int, device: int, dir_fd: int | None = None) -> None:
        _os_call(os.mknod, "mknod", path, mode, device, dir_fd=dir_fd)

    def symlink(self, target: str, path: str, dir_fd: int | None = None) -> None:
        try:
            os.symlink(target, path, dir_fd=dir_fd)
        except OSError as exc:
            from .._errors import KernelError

            raise KernelError.from_oserror(exc, "symlink", path) from None

    def chown(self, path: str, uid: int, gid: int, dir_fd: int | None = None) -> None:
        _os_call(os.chown, "chown", path, uid, gid, dir_fd=dir_fd, follow_symlinks=False)

    def open(self, path: str, flags: int, mode: int = 0o777, dir_fd: int | None = None) -> int:
        result: int = _os_call(os.open, "open", path, flags, mode, dir_fd=dir_fd)
        return result

    def openat2(self, dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
        return self._libc.openat2(dirfd, path, flags, mode, resolve)

    def close(self, fd: int) -> None:
        os.close(fd)

    def fstatfs_type(self, fd: int, path: str | None = None) -> int:
        return self._libc.fstatfs_type(fd, path)

    def sethostname(self, name: str) -> None:
        self._libc.sethostname(name)

    def setdomainname(self, name: str) -> None:
        self._libc.setdomainname(name)

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        return self._libc.prctl(option, arg2, arg3, arg4, arg5)

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self._libc.capset(effective, permitted, inheritable)

    def seccomp_set_filter(self, bpf: bytes, flags: int = 0) -> int:
        return self._libc.seccomp_set_filter(bpf, flags)

    def personality(self, persona: int) -> int:
        return self._libc.personality(persona)


def _os_call(func: Callable[..., Any], syscall: str, path: object, *args: Any, **kwargs: Any) -> Any:
    try:
        return func(path, *args, **kwargs)
    except OSError as exc:
        from .._errors import KernelError

        raise KernelError.from_oserror(exc, syscall, str(path)) from None
