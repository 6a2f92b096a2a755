"""Sysctl names and writes, safe path helpers, and the FakeSyscalls recorder itself."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tinycontainer import oci
from tinycontainer._errors import KernelError, SpecError
from tinycontainer.linux import _consts as C
from tinycontainer.linux import _paths, rootfs
from tinycontainer.testing import FakeSyscalls


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("net.ipv4.ip_forward", "sys/net/ipv4/ip_forward"),
        ("kernel.shm_rmid_forced", "sys/kernel/shm_rmid_forced"),
        ("fs.mqueue.msg_max", "sys/fs/mqueue/msg_max"),
    ],
)
def test_sysctl_path(name: str, path: str) -> None:
    assert rootfs.sysctl_path(name) == path


@pytest.mark.parametrize(
    "name", ["", "net..x", "net.ipv4/../../x", "..", ".net", "net.", "a\0b", "net.ipv4.conf.eth0/1"]
)
def test_sysctl_path_refuses_escapes(name: str) -> None:
    with pytest.raises(SpecError):
        rootfs.sysctl_path(name)


def config(sysctl: dict[str, str], namespaces: list[str]) -> oci.Config:
    return oci.Config.from_dict(
        {
            "ociVersion": "1.2.0",
            "linux": {"sysctl": sysctl, "namespaces": [{"type": t} for t in namespaces]},
        }
    )


def test_validate_sysctl_needs_the_matching_namespace() -> None:
    rootfs.validate_sysctl(config({"net.ipv4.ip_forward": "1"}, ["network"]))
    rootfs.validate_sysctl(config({"kernel.msgmax": "1", "fs.mqueue.queues_max": "1"}, ["ipc"]))
    rootfs.validate_sysctl(config({"kernel.hostname": "x"}, ["uts"]))
    with pytest.raises(SpecError, match="network"):
        rootfs.validate_sysctl(config({"net.ipv4.ip_forward": "1"}, ["ipc"]))
    with pytest.raises(SpecError, match="not namespaced"):
        rootfs.validate_sysctl(config({"kernel.panic": "1"}, ["ipc", "network", "uts"]))
    with pytest.raises(SpecError, match="not namespaced"):
        rootfs.validate_sysctl(config({"vm.overcommit_memory": "1"}, ["ipc", "network", "uts"]))


def fake_proc(tmp_path: Path) -> Path:
    proc = tmp_path / "proc"
    (proc / "sys" / "net" / "ipv4").mkdir(parents=True)
    (proc / "sys" / "net" / "ipv4" / "ip_forward").write_text("0\n")
    return proc


def test_write_sysctls_through_a_verified_procfs(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path)
    fake = FakeSyscalls(fs_types={str(proc): C.PROC_SUPER_MAGIC})
    rootfs.write_sysctls({"net.ipv4.ip_forward": "1"}, fake, proc=str(proc))
    # A regular file is not truncated the way a procfs file is rewritten: "1" over "0\n".
    assert (proc / "sys" / "net" / "ipv4" / "ip_forward").read_text() == "1\n"
    opened = fake.of("openat2")[0]
    assert opened[1] == str(proc / "sys" / "net" / "ipv4" / "ip_forward")
    resolve = int(str(opened[4]))
    assert resolve & C.RESOLVE_NO_XDEV and resolve & C.RESOLVE_NO_SYMLINKS


def test_write_sysctls_refuses_a_fake_procfs(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path)
    with pytest.raises(SpecError, match="not a procfs"):
        rootfs.write_sysctls({"net.ipv4.ip_forward": "1"}, FakeSyscalls(), proc=str(proc))
    assert (proc / "sys" / "net" / "ipv4" / "ip_forward").read_text() == "0\n"


def test_write_sysctls_checks_the_proc_directory_itself(tmp_path: Path) -> None:
    # The files claim to be procfs, but the directory we resolve from is not: refuse up front.
    proc = fake_proc(tmp_path)
    fake = FakeSyscalls(fs_types={str(proc): C.TMPFS_MAGIC, str(proc / "sys"): C.PROC_SUPER_MAGIC})
    with pytest.raises(SpecError, match="is not a procfs mount"):
        rootfs.write_sysctls({"net.ipv4.ip_forward": "1"}, fake, proc=str(proc))
    assert fake.of("openat2") == []


def test_write_sysctls_does_not_follow_symlinks(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("safe")
    (proc / "sys" / "kernel").mkdir()
    os.symlink(victim, proc / "sys" / "kernel" / "hostname")
    fake = FakeSyscalls(fs_types={str(proc): C.PROC_SUPER_MAGIC})
    with pytest.raises(KernelError) as info:
        rootfs.write_sysctls({"kernel.hostname": "pwned"}, fake, proc=str(proc))
    assert info.value.errno == errno.ELOOP
    assert victim.read_text() == "safe"


def test_mkdir_all_in_root_keeps_symlinks_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(str(outside), root / "abs")
    os.symlink("../../../../outside", root / "rel")
    (root / str(outside).lstrip("/")).mkdir(parents=True)
    (root / "outside").mkdir()
    fake = FakeSyscalls()
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        for link in ("abs", "rel"):
            fd = _paths.mkdir_all_in_root(fake, root_fd, f"/{link}/new/dir")
            where = _paths.fd_path(fd)
            os.close(fd)
            assert where.startswith(str(root) + "/"), where
    finally:
        os.close(root_fd)
    assert os.listdir(outside) == []


def test_create_file_in_root_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(str(tmp_path / "created-outside"), root / "dangling")
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(KernelError) as info:
            _paths.create_file_in_root(FakeSyscalls(), root_fd, "/dangling")
    finally:
        os.close(root_fd)
    assert info.value.errno == errno.ELOOP
    assert not (tmp_path / "created-outside").exists()


def test_verify_inside_rejects_an_fd_outside_the_root(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    directory = os.open(tmp_path, os.O_PATH)
    regular = os.open(tmp_path / "file", os.O_PATH)
    try:
        with pytest.raises(SpecError, match="outside the container root"):
            _paths.verify_inside(directory, str(tmp_path / "root"), "/x")
        _paths.verify_inside(directory, str(tmp_path), "/", directory=True)
        with pytest.raises(SpecError, match="not a directory"):
            _paths.verify_inside(regular, str(tmp_path), "/file", directory=True)
        with pytest.raises(SpecError, match="is a directory"):
            _paths.verify_inside(directory, str(tmp_path), "/", directory=False)
    finally:
        os.close(directory)
        os.close(regular)


def test_openat2_without_kernel_support_is_unsupported() -> None:
    fake = FakeSyscalls(filesystem=False)
    fake.fail("openat2", errno.ENOSYS)
    from tinycontainer._errors import UnsupportedError

    with pytest.raises(UnsupportedError, match="openat2"):
        _paths.open_in_root(fake, 3, "/x")


def test_openat2_retries_eagain() -> None:
    fake = FakeSyscalls(filesystem=False)
    fake.fail("openat2", errno.EAGAIN, times=3)
    _paths.open_in_root(fake, 3, "/x")
    assert len(fake.of("openat2")) == 4


def test_fake_records_raw_and_resolved_calls(tmp_path: Path) -> None:
    fake = FakeSyscalls()
    fd = fake.open(str(tmp_path), os.O_PATH | os.O_DIRECTORY)
    fake.mkdir("sub", 0o700, dir_fd=fd)
    fake.mount("proc", f"/proc/self/fd/{fd}", "proc", C.MS_NOSUID)
    fake.close(fd)
    assert fake.calls[1] == ("mkdir", "sub", 0o700, fd)
    assert fake.resolved[1] == ("mkdir", str(tmp_path / "sub"), 0o700)
    assert fake.mounts(str(tmp_path)) == [("mount", "proc", "/", "proc", C.MS_NOSUID, None)]
    assert (tmp_path / "sub").is_dir(), "unprivileged file-system calls are performed"
    assert fake.names() == ["open", "mkdir", "mount", "close"]


def test_fake_failures_can_be_targeted_and_counted() -> None:
    fake = FakeSyscalls(filesystem=False)
    fake.fail("mount", errno.EBUSY, when=lambda call: call[2] == "/b", times=1)
    fake.mount(None, "/a", None)
    with pytest.raises(KernelError) as info:
        fake.mount(None, "/b", None)
    assert info.value.errno == errno.EBUSY and info.value.syscall == "mount"
    fake.mount(None, "/b", None)
    assert len(fake.of("mount")) == 3, "failed calls are recorded too"


def test_fake_mknod_leaves_a_placeholder(tmp_path: Path) -> None:
    import stat

    fake = FakeSyscalls()
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        fake.mknod("null", stat.S_IFCHR | 0o666, os.makedev(1, 3), dir_fd=fd)
        fake.mknod("fifo", stat.S_IFIFO | 0o600, 0, dir_fd=fd)
    finally:
        os.close(fd)
    assert (tmp_path / "null").is_file()
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)
    assert fake.resolved[0] == ("mknod", str(tmp_path / "null"), stat.S_IFCHR | 0o666, 1, 3)
