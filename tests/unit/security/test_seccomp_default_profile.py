"""The packaged default profile: decodes as OCI, compiles, and behaves like Docker's."""

from __future__ import annotations

import json
import os
import stat
from importlib import resources
from pathlib import Path

import pytest
from tests.unit.security import secbpf_vm as vm

from tinycontainer import oci
from tinycontainer.linux import seccomp
from tinycontainer.linux.seccomp import _tables as T
from tinycontainer.oci._codec import from_json
from tinycontainer.oci._defaults import DOCKER_CAPABILITIES, default_seccomp

EPERM = vm.RET_ERRNO | 1
ENOSYS = vm.RET_ERRNO | 38
CLONE_NEWUSER = 0x10000000
CLONE_NEWNS = 0x00020000
THREAD_FLAGS = 0x003D0F00  # what glibc's pthread_create passes
FORK_FLAGS = 0x01200011  # CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD


def _raw_profile() -> dict[str, object]:
    path = resources.files("tinycontainer").joinpath("data").joinpath("seccomp-default.json")
    data: dict[str, object] = json.loads(path.read_text())
    return data


@pytest.fixture(scope="module")
def docker_prog() -> bytes:
    compiled = seccomp.compile_filter(default_seccomp())
    assert compiled.unknown_syscalls == ()
    return compiled.program


def test_file_decodes_as_plain_oci_seccomp_equal_to_the_default() -> None:
    plain = from_json(oci.Seccomp, _raw_profile(), "seccomp")
    assert plain.default_action == "SCMP_ACT_ERRNO"
    assert plain.default_errno_ret == 1
    assert plain.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert plain == default_seccomp()
    assert plain == default_seccomp(DOCKER_CAPABILITIES)


def test_allow_list_has_the_docker_names() -> None:
    allowed = default_seccomp().syscalls[0]  # type: ignore[index]
    assert allowed.action == "SCMP_ACT_ALLOW" and not allowed.args
    assert len(allowed.names) > 350
    for name in ("read", "mkdir", "execve", "chown32", "_llseek", "socketcall", "arch_prctl", "ptrace", "uretprobe"):
        assert name in allowed.names
    everything = {n for rule in default_seccomp().syscalls or [] for n in rule.names}
    for denied in ("keyctl", "add_key", "request_key", "io_uring_setup", "userfaultfd", "kexec_load", "pivot_root",
                   "mount", "unshare", "setns", "bpf", "swapon", "reboot", "init_module"):  # fmt: skip
        assert denied not in everything


def test_compiled_default_behaves_like_docker(docker_prog: bytes) -> None:
    assert len(docker_prog) // 8 < 1000
    x = T.X86_64

    def run(name: str, *args: int) -> int:
        return vm.run(docker_prog, x[name], args=args)

    assert run("mkdir") == vm.RET_ALLOW
    assert run("chroot") == vm.RET_ALLOW  # CAP_SYS_CHROOT is a default capability
    for name in ("keyctl", "mount", "unshare", "setns", "io_uring_setup", "pivot_root", "bpf", "open_by_handle_at"):
        assert run(name) == EPERM, name
    assert run("clone3") == ENOSYS
    assert run("clone", FORK_FLAGS) == vm.RET_ALLOW
    assert run("clone", THREAD_FLAGS) == vm.RET_ALLOW
    assert run("clone", FORK_FLAGS | CLONE_NEWUSER) == EPERM
    assert run("clone", CLONE_NEWNS) == EPERM
    assert run("clone", FORK_FLAGS | 1 << 40) == vm.RET_ALLOW  # high bits are not namespace flags
    for value in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert run("personality", value) == vm.RET_ALLOW
    for value in (0x400000, 0x0040008, 1, 0xFFFFFFFF | 1 << 32):
        assert run("personality", value) == EPERM
    for family in (1, 2, 10, 16, 17, 37, 39, 41, 44):
        assert run("socket", family) == vm.RET_ALLOW, family
    for family in (38, 40):
        assert run("socket", family) == EPERM
    assert run("socket", 2 | 1 << 32) == vm.RET_ALLOW  # > 40 as a 64-bit number, like Docker
    assert vm.run(docker_prog, 0x9999) == EPERM


def test_compiled_default_on_i386_and_x32(docker_prog: bytes) -> None:
    i386 = vm.AUDIT_ARCH_I386
    assert vm.run(docker_prog, T.I386["mkdir"], i386) == vm.RET_ALLOW
    assert vm.run(docker_prog, T.I386["chown32"], i386) == vm.RET_ALLOW
    assert vm.run(docker_prog, T.I386["clone"], i386, (FORK_FLAGS,)) == vm.RET_ALLOW
    assert vm.run(docker_prog, T.I386["clone"], i386, (FORK_FLAGS | CLONE_NEWUSER,)) == EPERM
    assert vm.run(docker_prog, T.I386["socket"], i386, (40,)) == EPERM
    assert vm.run(docker_prog, T.I386["keyctl"], i386) == EPERM
    assert vm.run(docker_prog, T.I386["clone3"], i386) == ENOSYS
    assert vm.run(docker_prog, T.X32["mkdir"]) == vm.RET_ALLOW
    assert vm.run(docker_prog, T.X32["keyctl"]) == EPERM
    assert vm.run(docker_prog, T.X32["clone"], args=(FORK_FLAGS | CLONE_NEWUSER,)) == EPERM
    assert vm.run(docker_prog, T.X86_64["mkdir"], 0xC00000B7) == vm.RET_KILL_PROCESS


def test_capabilities_unlock_their_groups() -> None:
    admin = seccomp.compile_filter(default_seccomp([*DOCKER_CAPABILITIES, "CAP_SYS_ADMIN"])).program
    x = T.X86_64
    assert vm.run(admin, x["mount"]) == vm.RET_ALLOW
    assert vm.run(admin, x["unshare"]) == vm.RET_ALLOW
    assert vm.run(admin, x["clone"], args=(CLONE_NEWUSER,)) == vm.RET_ALLOW
    assert vm.run(admin, x["clone3"]) == vm.RET_ALLOW
    assert vm.run(admin, x["keyctl"]) == EPERM
    ptrace_only = seccomp.compile_filter(default_seccomp(["CAP_SYS_PTRACE"])).program
    assert vm.run(ptrace_only, x["kcmp"]) == vm.RET_ALLOW
    assert vm.run(ptrace_only, x["chroot"]) == EPERM  # CAP_SYS_CHROOT was dropped
    assert vm.run(ptrace_only, x["mount"]) == EPERM
    assert vm.run(ptrace_only, x["clone"], args=(CLONE_NEWNS,)) == EPERM


def test_compile_cached(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    profile = default_seccomp()
    first = seccomp.compile_cached(profile, str(cache))
    assert first == seccomp.compile_filter(profile).program
    files = os.listdir(cache)
    assert files == [f"seccomp-{seccomp.cache_key(profile)}.bpf"]
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    blob = cache / files[0]
    # a cache hit returns the file's content (proved by planting a different valid program)
    planted = seccomp.compile_filter(oci.Seccomp(default_action="SCMP_ACT_ALLOW")).program
    blob.write_bytes(planted)
    assert seccomp.compile_cached(profile, str(cache)) == planted
    # a file others could have written is not trusted
    blob.chmod(0o666)
    assert seccomp.compile_cached(profile, str(cache)) == first
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600
    # a truncated file is not trusted either
    blob.write_bytes(first[:-3])
    assert seccomp.compile_cached(profile, str(cache)) == first
    other = oci.Seccomp(
        default_action="SCMP_ACT_ERRNO", syscalls=[oci.Syscall(names=["read"], action="SCMP_ACT_ALLOW")]
    )
    assert seccomp.cache_key(other) != seccomp.cache_key(profile)
    seccomp.compile_cached(other, str(cache))
    assert sorted(os.listdir(cache)) == sorted([files[0], f"seccomp-{seccomp.cache_key(other)}.bpf"])


class _RecordingSys:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes, int]] = []

    def seccomp_set_filter(self, bpf: bytes, flags: int = 0) -> int:
        self.calls.append((bpf, flags))
        return 0


def test_load_goes_through_the_seam() -> None:
    fake = _RecordingSys()
    prog = seccomp.compile_filter(default_seccomp()).program
    seccomp.load(prog, 1, fake)  # type: ignore[arg-type]
    assert fake.calls == [(prog, 1)]
    with pytest.raises(ValueError):
        seccomp.load(prog[:-1], 0, fake)  # type: ignore[arg-type]
