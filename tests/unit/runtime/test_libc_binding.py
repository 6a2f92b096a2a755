"""The hand-made binding over _ctypes (linux/_libc.py, which spares every start ctypes/__init__)
has the sizes and behaviour ctypes itself would give: same C types, same structure layouts, errno
kept after a failing call."""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Any

import pytest

from tinycontainer import KernelError
from tinycontainer.linux import _libc

SIMPLE_TYPES = {
    "c_byte": ctypes.c_byte,
    "c_char": ctypes.c_char,
    "c_char_p": ctypes.c_char_p,
    "c_int": ctypes.c_int,
    "c_long": ctypes.c_long,
    "c_uint": ctypes.c_uint,
    "c_uint32": ctypes.c_uint32,
    "c_uint64": ctypes.c_uint64,
    "c_ulong": ctypes.c_ulong,
    "c_ushort": ctypes.c_ushort,
    "c_void_p": ctypes.c_void_p,
    "c_size_t": ctypes.c_size_t,
}


@pytest.mark.parametrize("name", sorted(SIMPLE_TYPES))
def test_simple_types_match_ctypes(name: str) -> None:
    ours: Any = getattr(_libc, name)
    theirs: Any = SIMPLE_TYPES[name]
    assert ctypes.sizeof(ours) == ctypes.sizeof(theirs)
    assert ours._type_ == theirs._type_ or name == "c_uint64"  # ctypes may spell it "L" on LP64


def test_structures_have_the_kernel_layouts() -> None:
    # Sizes from the uapi headers: struct open_how, mount_attr, rlimit64, sock_fprog,
    # __user_cap_header_struct, __user_cap_data_struct.
    assert ctypes.sizeof(_libc._OpenHow) == 24
    assert ctypes.sizeof(_libc._MountAttr) == 32
    assert ctypes.sizeof(_libc._Rlimit64) == 16
    assert ctypes.sizeof(_libc._struct("_SockFprog")) == 16
    assert ctypes.sizeof(_libc._CapHeader) == 8
    assert ctypes.sizeof(_libc._CapData) == 12
    assert ctypes.sizeof(_libc._struct("_BpfProgLoadAttr")) == 72
    # union bpf_attr's members for BPF_PROG_ATTACH/DETACH, BPF_PROG_QUERY, BPF_PROG_GET_FD_BY_ID
    assert ctypes.sizeof(_libc._struct("_BpfAttachAttr")) == 20
    assert _libc._struct("_BpfQueryAttr").prog_ids.offset == 16 and _libc._struct("_BpfQueryAttr").prog_cnt.offset == 24
    assert ctypes.sizeof(_libc._struct("_BpfGetFdAttr")) == 12


def test_rarely_used_structures_are_built_once_on_first_use() -> None:
    assert _libc._struct("_BpfProgLoadAttr") is _libc._struct("_BpfProgLoadAttr")
    assert _libc._LAZY_STRUCTS["_BpfProgLoadAttr"] is _libc._struct("_BpfProgLoadAttr")
    assert _libc._struct("_SockFprog").__name__ == "_SockFprog"


def test_a_failing_call_keeps_errno_syscall_and_path() -> None:
    with pytest.raises(KernelError) as info:
        _libc.umount2("/nonexistent/tinycontainer-test")
    assert info.value.errno in (errno.ENOENT, errno.EPERM)
    assert "umount2" in str(info.value) and "/nonexistent/tinycontainer-test" in str(info.value)


def test_raw_syscall_and_buffers() -> None:
    assert _libc._syscall(_libc._c_long(39)) == os.getpid()  # x86_64 getpid
    buf = _libc._buffer(b"a\0b")
    assert buf.raw == b"a\0b" and ctypes.sizeof(buf) == 3
    assert _libc.capget()[1] >= 0


def test_missing_symbols_are_reported_not_raised() -> None:
    assert _libc._has_symbol("renameat2")
    assert not _libc._has_symbol("tinycontainer_no_such_function")
