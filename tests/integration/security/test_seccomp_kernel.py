"""Compiled filters loaded into the real kernel, each in a forked child (never in pytest itself)."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
from pathlib import Path
from typing import Any

import pytest
from tests.integration.security.childrun import ChildDied, run_in_child

from tinycontainer import oci
from tinycontainer._errors import KernelError
from tinycontainer.linux import LinuxSyscalls, _libc, seccomp
from tinycontainer.linux import _consts as C
from tinycontainer.oci._defaults import default_seccomp

# Test-only raw syscalls (keyctl and clone3 have no Python or _libc wrapper).
_raw = ctypes.CDLL(None, use_errno=True).syscall
_raw.restype = ctypes.c_long
SYS_KEYCTL = 250
SYS_CLONE3 = 435
SYS_GETPID = 39
X32_BIT = 0x40000000
KEYCTL_GET_KEYRING_ID = 0
KEY_SPEC_SESSION_KEYRING = -3


def raw_errno(nr: int, *args: int) -> int:
    """0 on success, else the errno of syscall(nr, args...)."""
    ret = _raw(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
    return ctypes.get_errno() if ret < 0 else 0


def kernel_errno(func: Any, *args: Any) -> int:
    try:
        func(*args)
    except KernelError as exc:
        return exc.errno or -1
    except OSError as exc:
        return exc.errno or -1
    return 0


def load_profile(profile: oci.Seccomp) -> None:
    compiled = seccomp.compile_filter(profile)
    seccomp.load(compiled.program, compiled.flags, LinuxSyscalls())


def test_docker_default_in_the_kernel(tmp_path: Path) -> None:
    def child(_: int) -> dict[str, Any]:
        # A private mount namespace first: should the filter fail to block mount(2), the
        # tmpfs must not land on the host's mount table.
        _libc.unshare(C.CLONE_NEWNS)
        _libc.mount(None, "/", None, C.MS_REC | C.MS_PRIVATE)
        load_profile(default_seccomp())
        out: dict[str, Any] = {}
        os.mkdir(tmp_path / "made")
        out["mkdir"] = (tmp_path / "made").is_dir()
        out["unshare_user"] = kernel_errno(_libc.unshare, C.CLONE_NEWUSER)
        out["unshare_ns"] = kernel_errno(_libc.unshare, C.CLONE_NEWNS)
        out["mount"] = kernel_errno(_libc.mount, "none", str(tmp_path), "tmpfs", 0, None)
        out["keyctl"] = raw_errno(SYS_KEYCTL, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
        out["clone3"] = raw_errno(SYS_CLONE3, 0, 0)
        out["personality_rie"] = kernel_errno(_libc.personality, 0x400000)
        out["personality_query"] = kernel_errno(_libc.personality, 0xFFFFFFFF)
        out["vsock"] = kernel_errno(socket.socket, 40, socket.SOCK_STREAM)
        out["alg"] = kernel_errno(socket.socket, 38, socket.SOCK_SEQPACKET)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            out["inet"] = s.getsockname()[0]
        pid = os.fork()  # clone() without namespace flags is allowed
        if pid == 0:
            os._exit(7)
        out["fork_status"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        with open("/proc/self/status") as f:
            out["status_seccomp"] = next(line.split()[1] for line in f if line.startswith("Seccomp:"))
        return out

    got = run_in_child(child)
    assert got["mkdir"] is True
    assert got["unshare_user"] == errno.EPERM
    assert got["unshare_ns"] == errno.EPERM
    assert got["mount"] == errno.EPERM
    assert got["keyctl"] == errno.EPERM
    assert got["clone3"] == errno.ENOSYS
    assert got["personality_rie"] == errno.EPERM
    assert got["personality_query"] == 0
    assert got["vsock"] == errno.EPERM
    assert got["alg"] == errno.EPERM
    assert got["inet"] == "127.0.0.1"
    assert got["fork_status"] == 7
    assert got["status_seccomp"] == "2"
    # the pytest process itself is untouched: clone3 with a NULL struct is EINVAL here, not ENOSYS
    assert raw_errno(SYS_CLONE3, 0, 0) in (errno.EINVAL, errno.EFAULT)


def test_64_bit_argument_compare_in_the_kernel() -> None:
    """personality's argument is an unsigned long: the filter must see all 64 bits."""
    profile = oci.Seccomp(
        default_action="SCMP_ACT_ALLOW",
        syscalls=[
            oci.Syscall(
                names=["personality"],
                action="SCMP_ACT_ERRNO",
                errno_ret=99,
                args=[oci.SyscallArg(index=0, op="SCMP_CMP_EQ", value=(1 << 32) | 0xFFFFFFFF)],
            ),
            oci.Syscall(
                names=["personality"],
                action="SCMP_ACT_ERRNO",
                errno_ret=98,
                args=[oci.SyscallArg(index=0, op="SCMP_CMP_GT", value=1 << 33)],
            ),
        ],
    )

    def child(_: int) -> list[int]:
        load_profile(profile)
        return [
            kernel_errno(_libc.personality, (1 << 32) | 0xFFFFFFFF),
            kernel_errno(_libc.personality, 0xFFFFFFFF),
            kernel_errno(_libc.personality, (1 << 33) + 1),
            kernel_errno(_libc.personality, 1 << 33),
        ]

    assert run_in_child(child) == [99, 0, 98, 0]


def test_x32_calls_are_killed_when_x32_is_not_listed() -> None:
    profile = oci.Seccomp(default_action="SCMP_ACT_ALLOW", architectures=["SCMP_ARCH_X86_64"])

    def child(_: int) -> int:
        load_profile(profile)
        return raw_errno(X32_BIT | SYS_GETPID)

    with pytest.raises(ChildDied) as info:
        run_in_child(child)
    assert info.value.signal == signal.SIGSYS

    listed = oci.Seccomp(default_action="SCMP_ACT_ALLOW", architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"])

    def child_listed(_: int) -> int:
        load_profile(listed)
        return raw_errno(X32_BIT | SYS_GETPID)

    # allowed by the filter; the kernel itself may lack x32 support (ENOSYS)
    assert run_in_child(child_listed) in (0, errno.ENOSYS)


def test_tsync_and_log_flags_load() -> None:
    profile = default_seccomp()
    profile.flags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]

    def child(_: int) -> int:
        load_profile(profile)
        return kernel_errno(_libc.unshare, C.CLONE_NEWUSER)

    assert run_in_child(child) == errno.EPERM


def test_cached_program_loads(tmp_path: Path) -> None:
    bpf = seccomp.compile_cached(default_seccomp(), str(tmp_path / "cache"))

    def child(_: int) -> int:
        seccomp.load(bpf, 0, LinuxSyscalls())
        return raw_errno(SYS_CLONE3, 0, 0)

    assert run_in_child(child) == errno.ENOSYS
