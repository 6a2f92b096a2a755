"""The only module that talks to the kernel through ctypes.

Every wrapper raises :class:`KernelError` with errno, the syscall's name and the path, so a
failure deep in a container's init can be reported to the user as one precise line.
Arguments are declared (``argtypes``) because ctypes otherwise passes Python ints as C ``int``:
``personality(0xffffffff)`` was sign-extended and refused on this machine without it.
"""

from __future__ import annotations

import os

from .._errors import KernelError
from . import _consts as C

TYPE_CHECKING = False
if not TYPE_CHECKING:
    # The C half of ctypes, bound here by hand: ctypes/__init__.py defines some forty type
    # classes and imports struct and types, ~3 ms of every container start. We need a dozen
    # C types, function pointers from the C library, structures, arrays and byref. Type
    # checkers see ctypes' own declarations of the same names (the branch below).
    from _ctypes import Array, Structure, _SimpleCData, addressof, byref, get_errno, sizeof

    class c_byte(_SimpleCData):
        _type_ = "b"

    class c_char(_SimpleCData):
        _type_ = "c"

    class c_char_p(_SimpleCData):
        _type_ = "z"

    class c_int(_SimpleCData):
        _type_ = "i"

    class c_long(_SimpleCData):
        _type_ = "l"

    class c_uint(_SimpleCData):
        _type_ = "I"

    class c_ulong(_SimpleCData):
        _type_ = "L"

    class c_ushort(_SimpleCData):
        _type_ = "H"

    class c_void_p(_SimpleCData):
        _type_ = "P"

    class c_uint64(_SimpleCData):
        _type_ = "Q"

    c_uint32 = c_uint
    c_size_t = c_ulong  # LP64: size_t is unsigned long (x86_64 and arm64 Linux)

if TYPE_CHECKING:
    from ctypes import (
        Array,
        Structure,
        addressof,
        byref,
        c_byte,
        c_char,
        c_char_p,
        c_int,
        c_long,
        c_size_t,
        c_uint,
        c_uint32,
        c_uint64,
        c_ulong,
        c_ushort,
        c_void_p,
        get_errno,
        sizeof,
    )
    from typing import Any


def _load_libc() -> Any:
    """Function pointers into the C library, with errno saved after each call (as
    ``CDLL(None, use_errno=True)`` makes them)."""
    import _ctypes

    class _CLibrary:
        # dlopen(NULL): the main program and the libraries it loaded, libc among them (dlopen(3)).
        # typeshed declares a path only; the C function takes None for NULL.
        _handle = _ctypes.dlopen(None, os.RTLD_NOW)  # type: ignore[arg-type]

    class _LibcFunction(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = c_int

    def lookup(name: str) -> Any:
        # CFuncPtr((name, library)) is dlsym(3) on library._handle; typeshed wants a CDLL.
        return _LibcFunction((name, _CLibrary))  # type: ignore[arg-type]

    return lookup


_symbol = _load_libc()


def _fn(name: str, restype: object, *argtypes: object) -> Any:
    func = _symbol(name)
    func.restype = restype
    func.argtypes = list(argtypes)
    return func


def _has_symbol(name: str) -> bool:
    try:
        _symbol(name)
    except AttributeError:  # dlsym(3) found no such symbol
        return False
    return True


_c_char_p = c_char_p
_c_int = c_int
_c_ulong = c_ulong
_c_long = c_long
_c_void_p = c_void_p

_unshare = _fn("unshare", _c_int, _c_int)
_setns = _fn("setns", _c_int, _c_int, _c_int)
_mount = _fn("mount", _c_int, _c_char_p, _c_char_p, _c_char_p, _c_ulong, _c_char_p)
_umount2 = _fn("umount2", _c_int, _c_char_p, _c_int)
_sethostname = _fn("sethostname", _c_int, _c_char_p, c_size_t)
_setdomainname = _fn("setdomainname", _c_int, _c_char_p, c_size_t)
_prctl = _fn("prctl", _c_int, _c_int, _c_ulong, _c_ulong, _c_ulong, _c_ulong)
_personality = _fn("personality", _c_int, _c_ulong)
_syscall = _symbol("syscall")
_syscall.restype = _c_long


def _path(p: str | bytes | None) -> bytes | None:
    if p is None:
        return None
    return os.fsencode(p)


def _check(ret: int, syscall: str, path: str | None = None, detail: str | None = None) -> int:
    if ret < 0:
        raise KernelError(get_errno(), syscall, path, detail)
    return ret


def unshare(flags: int) -> None:
    _check(_unshare(flags), "unshare", detail=hex(flags))


def setns(fd: int, nstype: int = 0, path: str | None = None) -> None:
    _check(_setns(fd, nstype), "setns", path)


def mount(
    source: str | None,
    target: str,
    fstype: str | None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    ret = _mount(_path(source), _path(target), _path(fstype), flags, _path(data))
    if ret < 0:
        raise KernelError(get_errno(), "mount", target, f"source={source} type={fstype} flags={flags:#x}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_umount2(_path(target), flags), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    # glibc has no wrapper for pivot_root(2); x86_64 syscall number 155.
    ret = _syscall(_c_long(155), _c_char_p(_path(new_root)), _c_char_p(_path(put_old)))
    _check(ret, "pivot_root", new_root)


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_sethostname(raw, len(raw)), "sethostname", detail=name)


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_setdomainname(raw, len(raw)), "setdomainname", detail=name)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_prctl(option, arg2, arg3, arg4, arg5), "prctl", detail=str(option))


def personality(persona: int) -> int:
    return _check(_personality(persona), "personality", detail=hex(persona))


class _CapHeader(Structure):
    _fields_ = [("version", c_uint32), ("pid", c_int)]


class _CapData(Structure):
    _fields_ = [
        ("effective", c_uint32),
        ("permitted", c_uint32),
        ("inheritable", c_uint32),
    ]


def capget(pid: int = 0) -> tuple[int, int, int]:
    """Return (effective, permitted, inheritable) as 64-bit masks."""
    header = _CapHeader(C.LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_syscall(_c_long(C.SYS_CAPGET), byref(header), byref(data)), "capget")
    return (
        data[0].effective | (data[1].effective << 32),
        data[0].permitted | (data[1].permitted << 32),
        data[0].inheritable | (data[1].inheritable << 32),
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(C.LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_syscall(_c_long(C.SYS_CAPSET), byref(header), byref(data)), "capset")


def _buffer(data: bytes) -> Array[c_char]:
    """A C copy of ``data``, embedded NULs included (a program, not a string)."""
    buf = (c_char * len(data))()
    buf.raw = data
    return buf


# Structures only some containers need (seccomp, the cgroup v2 device filter) are built on first
# use (~15-35 µs each at every start otherwise). Building a ctypes class imports nothing, so the
# container's init may do it after pivot_root(2) (no code is read from the container's files).
# The bpf(2) attribute layouts are those of union bpf_attr in include/uapi/linux/bpf.h.
_LAZY_FIELDS: dict[str, list[tuple[str, Any]]] = {
    "_SockFprog": [("len", c_ushort), ("filter", c_void_p)],
    "_BpfProgLoadAttr": [
        ("prog_type", c_uint32),
        ("insn_cnt", c_uint32),
        ("insns", c_uint64),
        ("license", c_uint64),
        ("log_level", c_uint32),
        ("log_size", c_uint32),
        ("log_buf", c_uint64),
        ("kern_version", c_uint32),
        ("prog_flags", c_uint32),
        ("prog_name", c_char * 16),
        ("prog_ifindex", c_uint32),
        ("expected_attach_type", c_uint32),
    ],
    "_BpfAttachAttr": [
        ("target_fd", c_uint32),
        ("attach_bpf_fd", c_uint32),
        ("attach_type", c_uint32),
        ("attach_flags", c_uint32),
        ("replace_bpf_fd", c_uint32),
    ],
    "_BpfQueryAttr": [
        ("target_fd", c_uint32),
        ("attach_type", c_uint32),
        ("query_flags", c_uint32),
        ("attach_flags", c_uint32),
        ("prog_ids", c_uint64),
        ("prog_cnt", c_uint32),
    ],
    "_BpfGetFdAttr": [("prog_id", c_uint32), ("next_id", c_uint32), ("open_flags", c_uint32)],
}
_LAZY_STRUCTS: dict[str, Any] = {}


def _struct(name: str) -> Any:
    """The Structure class ``name``, with the fields _LAZY_FIELDS lists for it, built once."""
    cls = _LAZY_STRUCTS.get(name)
    if cls is None:
        # type(Structure) is ctypes' metaclass, which lays the fields out (as a class statement would).
        metaclass: Any = type(Structure)
        cls = _LAZY_STRUCTS[name] = metaclass(name, (Structure,), {"_fields_": _LAZY_FIELDS[name]})
    return cls


def seccomp_set_filter(bpf: bytes, flags: int = 0) -> int:
    """Load a classic-BPF seccomp program (``struct sock_filter[]`` as raw bytes, 8 bytes each).

    Returns the notify listener fd when SECCOMP_FILTER_FLAG_NEW_LISTENER is set, else 0.
    """
    if len(bpf) % 8:
        raise ValueError("seccomp program length must be a multiple of 8")
    buf = _buffer(bpf)
    prog = _struct("_SockFprog")(len(bpf) // 8, addressof(buf))
    ret = _syscall(
        _c_long(C.SYS_SECCOMP),
        _c_ulong(C.SECCOMP_SET_MODE_FILTER),
        _c_ulong(flags),
        byref(prog),
    )
    return _check(ret, "seccomp", detail=f"{len(bpf) // 8} instructions")


class _OpenHow(Structure):
    _fields_ = [("flags", c_uint64), ("mode", c_uint64), ("resolve", c_uint64)]


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    how = _OpenHow(flags, mode, resolve)
    ret = _syscall(
        _c_long(C.SYS_OPENAT2),
        _c_int(dirfd),
        _c_char_p(os.fsencode(path)),
        byref(how),
        c_size_t(sizeof(how)),
    )
    return _check(ret, "openat2", path)


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    ret = _syscall(_c_long(C.SYS_CLOSE_RANGE), c_uint(first), c_uint(last), c_uint(flags))
    _check(ret, "close_range")


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    ret = _syscall(_c_long(C.SYS_PIDFD_SEND_SIGNAL), _c_int(pidfd), _c_int(sig), _c_void_p(None), c_uint(0))
    _check(ret, "pidfd_send_signal", detail=f"signal {sig}")


class _Statfs(Structure):
    _fields_ = [("f_type", c_long), ("_rest", c_byte * 112)]


# Pointer arguments are declared void * (c_void_p takes byref(), arrays and None): each
# POINTER(type) is a new ctypes class, ~10 µs of every start.
_fstatfs = _fn("fstatfs", _c_int, _c_int, _c_void_p)


def fstatfs_type(fd: int, path: str | None = None) -> int:
    """Return ``f_type`` of the filesystem holding ``fd`` (see statfs(2) magic numbers)."""
    buf = _Statfs()
    _check(_fstatfs(fd, byref(buf)), "fstatfs", path)
    return int(buf.f_type) & 0xFFFFFFFF


# -- bpf(2), for the cgroup v2 device filter (BPF_PROG_TYPE_CGROUP_DEVICE). The attribute
# layouts are those of union bpf_attr in include/uapi/linux/bpf.h; x86_64 syscall number 321.
_SYS_BPF = 321
_BPF_PROG_LOAD = 5
_BPF_PROG_ATTACH = 8
_BPF_PROG_DETACH = 9
_BPF_PROG_GET_FD_BY_ID = 13
_BPF_PROG_QUERY = 16


def _bpf(cmd: int, attr: Structure) -> int:
    return int(_syscall(_c_long(_SYS_BPF), _c_int(cmd), byref(attr), c_uint(sizeof(attr))))


def bpf_prog_load(prog_type: int, insns: bytes, license: str, name: str = "", expected_attach_type: int = 0) -> int:
    """Load a program (``struct bpf_insn[]`` as raw bytes, 8 bytes each); returns its fd.

    On failure the verifier's log is fetched with a second load and put in the error.
    """
    if len(insns) % 8:
        raise ValueError("bpf program length must be a multiple of 8")
    code = _buffer(insns)
    lic = _buffer(license.encode() + b"\0")

    def load(log_level: int, log: Array[c_char] | None) -> int:
        attr = _struct("_BpfProgLoadAttr")()
        attr.prog_type = prog_type
        attr.insn_cnt = len(insns) // 8
        attr.insns = addressof(code)
        attr.license = addressof(lic)
        attr.prog_name = name.encode()[:15]
        attr.expected_attach_type = expected_attach_type
        if log is not None:
            attr.log_level = log_level
            attr.log_size = len(log)
            attr.log_buf = addressof(log)
        return _bpf(_BPF_PROG_LOAD, attr)

    fd = load(0, None)
    if fd >= 0:
        return fd
    err = get_errno()
    log = (c_char * (1 << 16))()
    retry = load(1, log)
    if retry >= 0:  # loaded on the second try after all
        return retry
    tail = log.value.decode(errors="replace").strip().splitlines()[-3:]
    raise KernelError(err, "bpf", detail=f"BPF_PROG_LOAD {len(insns) // 8} insns: {' | '.join(tail)}")


def bpf_prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0, path: str | None = None) -> None:
    attr = _struct("_BpfAttachAttr")(target_fd, prog_fd, attach_type, flags, 0)
    _check(_bpf(_BPF_PROG_ATTACH, attr), "bpf", path, "BPF_PROG_ATTACH")


def bpf_prog_detach(target_fd: int, prog_fd: int, attach_type: int, path: str | None = None) -> None:
    attr = _struct("_BpfAttachAttr")(target_fd, prog_fd, attach_type, 0, 0)
    _check(_bpf(_BPF_PROG_DETACH, attr), "bpf", path, "BPF_PROG_DETACH")


def bpf_prog_query(target_fd: int, attach_type: int, path: str | None = None) -> list[int]:
    """IDs of the programs attached to the cgroup ``target_fd`` (not inherited ones)."""
    ids = (c_uint32 * 64)()
    attr = _struct("_BpfQueryAttr")(target_fd, attach_type, 0, 0, addressof(ids), len(ids))
    _check(_bpf(_BPF_PROG_QUERY, attr), "bpf", path, "BPF_PROG_QUERY")
    return [int(ids[i]) for i in range(attr.prog_cnt)]


def bpf_prog_get_fd_by_id(prog_id: int) -> int:
    attr = _struct("_BpfGetFdAttr")(prog_id, 0, 0)
    return _check(_bpf(_BPF_PROG_GET_FD_BY_ID, attr), "bpf", detail=f"BPF_PROG_GET_FD_BY_ID {prog_id}")


# mount_setattr(2): change mount attributes of a whole subtree at once (AT_RECURSIVE), which
# MS_REMOUNT cannot: a remount only ever touches the top mount.
SYS_MOUNT_SETATTR = 442
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1


class _MountAttr(Structure):
    _fields_ = [
        ("attr_set", c_uint64),
        ("attr_clr", c_uint64),
        ("propagation", c_uint64),
        ("userns_fd", c_uint64),
    ]


def mount_setattr(
    dirfd: int, path: str, flags: int, attr_set: int, attr_clr: int = 0, path_hint: str | None = None
) -> None:
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    ret = _syscall(
        _c_long(SYS_MOUNT_SETATTR),
        _c_int(dirfd),
        _c_char_p(os.fsencode(path)),
        c_uint(flags),
        byref(attr),
        c_size_t(sizeof(attr)),
    )
    _check(ret, "mount_setattr", path_hint or path, f"set={attr_set:#x} clear={attr_clr:#x}")


# keyctl(2): a container joins a fresh anonymous session keyring so it cannot see or use the
# keys of the runtime's session (runc does the same unless --no-new-keyring).
SYS_KEYCTL = 250
KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring(name: str | None) -> int:
    raw = os.fsencode(name) if name is not None else None
    ret = _syscall(_c_long(SYS_KEYCTL), _c_long(KEYCTL_JOIN_SESSION_KEYRING), _c_char_p(raw))
    return _check(ret, "keyctl", detail="KEYCTL_JOIN_SESSION_KEYRING")


# socket(2) and socketpair(2) on bare fds: the socket module costs ~4 ms of every container
# start (its enums and selectors), and the runtime needs it only to pass a descriptor.
AF_UNIX = 1
AF_INET = 2
SOCK_DGRAM = 2
SOCK_SEQPACKET = 5
SOCK_CLOEXEC = 0o2000000
_socket = _fn("socket", _c_int, _c_int, _c_int, _c_int)
_socketpair = _fn("socketpair", _c_int, _c_int, _c_int, _c_int, _c_void_p)


def socket(domain: int, type_: int, protocol: int = 0) -> int:
    return _check(_socket(domain, type_, protocol), "socket", detail=f"domain {domain}, type {type_:#x}")


def socketpair(domain: int, type_: int, protocol: int = 0) -> tuple[int, int]:
    fds = (_c_int * 2)()
    _check(_socketpair(domain, type_, protocol, fds), "socketpair", detail=f"domain {domain}, type {type_:#x}")
    return fds[0], fds[1]


class _Rlimit64(Structure):
    _fields_ = (("rlim_cur", c_uint64), ("rlim_max", c_uint64))


_prlimit64 = _fn("prlimit64", _c_int, _c_int, _c_int, _c_void_p, _c_void_p)


def setrlimit(resource: int, soft: int, hard: int) -> None:
    """prlimit64(2) on the calling process; values at or above 2**64-1 are RLIM_INFINITY."""
    limit = _Rlimit64(min(soft, (1 << 64) - 1), min(hard, (1 << 64) - 1))
    _check(_prlimit64(0, resource, byref(limit), None), "prlimit64", detail=f"resource {resource}")


# renameat2(2) with RENAME_EXCHANGE: the state store swaps a new file in for the old one. A
# plain rename over an existing file makes ext4 start writing the new file's data out first
# (its auto_da_alloc heuristic for "replace via rename", ext4(5)): ~0.1 ms per state write here.
_AT_FDCWD = -100
RENAME_EXCHANGE = 2
# glibc wraps it since 2.28; without the wrapper the call reports ENOSYS (callers fall back).
_renameat2 = (
    _fn("renameat2", _c_int, _c_int, _c_char_p, _c_int, _c_char_p, c_uint) if _has_symbol("renameat2") else None
)


def renameat2(old: str, new: str, flags: int) -> None:
    if _renameat2 is None:
        import errno

        raise KernelError(errno.ENOSYS, "renameat2", new, "this C library has no renameat2")
    ret = _renameat2(_AT_FDCWD, os.fsencode(old), _AT_FDCWD, os.fsencode(new), flags)
    _check(ret, "renameat2", new, f"from {old}, flags {flags:#x}")
