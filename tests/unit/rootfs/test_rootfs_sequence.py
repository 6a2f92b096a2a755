"""The exact, ordered kernel calls of rootfs setup, recorded by FakeSyscalls on a temp directory."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from tests.integration.rootfs._spec import runc_spec

from tinycontainer import oci
from tinycontainer._errors import KernelError, SpecError
from tinycontainer.linux import _consts as C
from tinycontainer.linux import mounts, rootfs
from tinycontainer.linux._libc import AT_EMPTY_PATH, AT_RECURSIVE, MOUNT_ATTR_RDONLY
from tinycontainer.testing import FakeSyscalls

BIND = C.MS_BIND
REC = C.MS_REC
RO = C.MS_RDONLY
NOSUID, NODEV, NOEXEC = C.MS_NOSUID, C.MS_NODEV, C.MS_NOEXEC
REMOUNT = C.MS_BIND | C.MS_REMOUNT


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "bundle" / "rootfs").mkdir(parents=True)
    return tmp_path / "bundle"


@pytest.fixture
def cgroup_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A fixed v1 layout whose bind sources are temp directories."""
    cpu = tmp_path / "cg" / "cpu,cpuacct"
    memory = tmp_path / "cg" / "memory" / "mine"
    cpu.mkdir(parents=True)
    memory.mkdir(parents=True)
    layout = mounts.CgroupLayout(unified=False, v1_binds=[(str(cpu), "cpu,cpuacct"), (str(memory), "memory")])
    monkeypatch.setattr(mounts, "host_cgroup_layout", lambda: layout)
    monkeypatch.setattr(rootfs, "_host_has_kcore", lambda: True)
    return [str(cpu), str(memory)]


def sticky(path: Path) -> int:
    """The flags a bind remount keeps from the mount ``path`` is on (temp dirs are plain here)."""
    fd = os.open(path, os.O_PATH)
    try:
        return rootfs.mount_flags(fd) & (RO | NOSUID | NODEV | NOEXEC | C.MS_NOSYMFOLLOW)
    finally:
        os.close(fd)


def test_prepare_runc_default_config(bundle: Path, cgroup_sources: list[str]) -> None:
    config = oci.Config.from_dict(runc_spec())
    fake = FakeSyscalls()
    fds_before = sorted(os.listdir("/proc/self/fd"))
    path = rootfs.prepare_rootfs(config, str(bundle), fake)
    root = os.path.realpath(bundle / "rootfs")
    assert path == root
    cpu, memory = cgroup_sources
    cg_attrs = 0x1 | 0x2 | 0x4 | 0x8  # MOUNT_ATTR_RDONLY|NOSUID|NODEV|NOEXEC
    expected: list[tuple[Any, ...]] = [
        ("mount", None, "/", None, C.MS_SLAVE | REC, None),
        ("mount", None, rootfs._mount_point_of(root), None, C.MS_PRIVATE, None),
        ("mount", "/", "/", None, BIND | REC, None),
        # root.readonly: the whole subtree read-only at once, the top writable until finalize
        ("mount_setattr", "/", "", AT_EMPTY_PATH | AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0),
        ("mount_setattr", "/", "", AT_EMPTY_PATH, 0, MOUNT_ATTR_RDONLY),
        ("mkdir", "/proc", 0o755),
        ("mount", "proc", "/proc", "proc", 0, None),
        ("mkdir", "/dev", 0o755),
        ("mount", "tmpfs", "/dev", "tmpfs", NOSUID | C.MS_STRICTATIME, "mode=755,size=65536k"),
        ("mkdir", "/dev/pts", 0o755),
        ("mount", "devpts", "/dev/pts", "devpts", NOSUID | NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ("mkdir", "/dev/shm", 0o755),
        ("mount", "shm", "/dev/shm", "tmpfs", NOSUID | NOEXEC | NODEV, "mode=1777,size=65536k"),
        ("mkdir", "/dev/mqueue", 0o755),
        ("mount", "mqueue", "/dev/mqueue", "mqueue", NOSUID | NOEXEC | NODEV, None),
        ("mkdir", "/sys", 0o755),
        ("mount", "sysfs", "/sys", "sysfs", NOSUID | NOEXEC | NODEV | RO, None),
        ("mkdir", "/sys/fs", 0o755),
        ("mkdir", "/sys/fs/cgroup", 0o755),
        ("mount", "tmpfs", "/sys/fs/cgroup", "tmpfs", NOSUID | NODEV | NOEXEC, "mode=755"),
        ("mkdir", "/sys/fs/cgroup/cpu,cpuacct", 0o755),
        ("mount", cpu, "/sys/fs/cgroup/cpu,cpuacct", None, BIND | REC, None),
        ("mkdir", "/sys/fs/cgroup/memory", 0o755),
        ("mount", memory, "/sys/fs/cgroup/memory", None, BIND | REC, None),
        ("symlink", "cpu,cpuacct", "/sys/fs/cgroup/cpu"),
        ("symlink", "cpu,cpuacct", "/sys/fs/cgroup/cpuacct"),
        # the tmpfs and every bind below it read-only in one call (relatime from the config)
        ("mount_setattr", "/sys/fs/cgroup", "", AT_EMPTY_PATH | AT_RECURSIVE, cg_attrs, 0xF0),
        ("mknod", "/dev/null", stat.S_IFCHR | 0o666, 1, 3),
        ("mknod", "/dev/zero", stat.S_IFCHR | 0o666, 1, 5),
        ("mknod", "/dev/full", stat.S_IFCHR | 0o666, 1, 7),
        ("mknod", "/dev/random", stat.S_IFCHR | 0o666, 1, 8),
        ("mknod", "/dev/urandom", stat.S_IFCHR | 0o666, 1, 9),
        ("mknod", "/dev/tty", stat.S_IFCHR | 0o666, 5, 0),
        ("symlink", "pts/ptmx", "/dev/ptmx"),
        ("symlink", "/proc/self/fd", "/dev/fd"),
        ("symlink", "/proc/self/fd/0", "/dev/stdin"),
        ("symlink", "/proc/self/fd/1", "/dev/stdout"),
        ("symlink", "/proc/self/fd/2", "/dev/stderr"),
        ("symlink", "/proc/kcore", "/dev/core"),
    ]
    assert fake.kernel_calls(root) == expected
    # Every mount target below the rootfs went through an fd, never a path string.
    targets = [call[2] for call in fake.of("mount", resolved=False)[3:]]
    assert all(str(t).startswith("/proc/self/fd/") for t in targets)
    assert sorted(os.listdir("/proc/self/fd")) == fds_before, "an fd leaked"


def test_enter_pivots_and_detaches_the_old_root() -> None:
    fake = FakeSyscalls(filesystem=False)
    rootfs.enter_rootfs("/run/c/rootfs", fake)
    assert [c for c in fake.kernel_calls() if c[0] != "fchdir"] == [
        ("pivot_root", ".", "."),
        ("mount", None, ".", None, C.MS_SLAVE | REC, None),
        ("umount2", ".", C.MNT_DETACH),
        ("chdir", "/"),
    ]
    # new root first (the pivot happens there), then the old root (which is lazily unmounted).
    names = fake.names()
    assert names.index("pivot_root") < names.index("mount") < names.index("umount2")
    assert [c[0] for c in fake.calls if c[0] in ("fchdir", "pivot_root")] == ["fchdir", "pivot_root", "fchdir"]


def test_enter_without_pivot_moves_and_chroots(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeSyscalls(filesystem=False)
    text = (
        "1 0 0:1 / / rw - ext4 /dev/vda rw\n"
        "2 1 0:2 / /proc rw - proc proc rw\n"
        "3 1 0:3 / /run/c/rootfs rw - ext4 /dev/vda rw\n"
        "4 3 0:4 / /run/c/rootfs/proc rw - proc proc rw\n"
        "5 2 0:5 / /proc/sys/fs/binfmt_misc rw - binfmt_misc b rw\n"
    )
    monkeypatch.setattr(rootfs, "_read_mountinfo", lambda: mounts.parse_mountinfo(text))
    rootfs.enter_rootfs("/run/c/rootfs", fake, no_pivot=True)
    assert fake.kernel_calls() == [
        ("umount2", "/proc/sys/fs/binfmt_misc", C.MNT_DETACH),
        ("umount2", "/proc", C.MNT_DETACH),
        ("chdir", "/run/c/rootfs"),
        ("mount", "/run/c/rootfs", "/", None, C.MS_MOVE, None),
        ("chroot", "."),
        ("chdir", "/"),
    ]


def make_container_root(tmp_path: Path) -> Path:
    """A directory shaped like the container after pivot_root (procfs files are plain files)."""
    root = tmp_path / "croot"
    for d in ("proc/acpi", "proc/bus", "proc/sys", "sys/firmware", "dev"):
        (root / d).mkdir(parents=True)
    for f in ("proc/kcore", "proc/keys", "proc/timer_list", "dev/null"):
        (root / f).write_text("")
    return root


def test_finalize_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_container_root(tmp_path)
    monkeypatch.setattr(rootfs, "is_dev_null", lambda st: stat.S_ISREG(st.st_mode))
    config = oci.Config.from_dict(runc_spec(rootfsPropagation="rslave"))
    fake = FakeSyscalls()
    rootfs.finalize_rootfs(config, fake, root=str(root))
    keep = sticky(root)
    tmpfs_mask = ("tmpfs", "tmpfs", RO | NOSUID | NODEV | NOEXEC, "nr_blocks=1,nr_inodes=1")
    assert fake.kernel_calls(str(root)) == [
        ("mount", None, "/", None, REMOUNT | RO | keep, None),
        ("mount", "/proc/bus", "/proc/bus", None, BIND | REC, None),
        ("mount", None, "/proc/bus", None, REMOUNT | RO | keep, None),
        ("mount", "/proc/sys", "/proc/sys", None, BIND | REC, None),
        ("mount", None, "/proc/sys", None, REMOUNT | RO | keep, None),
        ("mount", tmpfs_mask[0], "/proc/acpi", *tmpfs_mask[1:]),
        ("mount", "/dev/null", "/proc/kcore", None, BIND, None),
        ("mount", "/dev/null", "/proc/keys", None, BIND, None),
        ("mount", "/dev/null", "/proc/timer_list", None, BIND, None),
        ("mount", tmpfs_mask[0], "/sys/firmware", *tmpfs_mask[1:]),
        ("mount", None, "/", None, C.MS_SLAVE | REC, None),
    ]
    # /proc was checked to be procfs before any /proc/self/fd magic link was used.
    assert fake.names().index("fstatfs_type") < fake.names().index("mount")


def test_finalize_refuses_a_fake_dev_null(tmp_path: Path) -> None:
    root = make_container_root(tmp_path)
    config = oci.Config.from_dict(runc_spec(readonlyPaths=[]))
    fake = FakeSyscalls()
    with pytest.raises(SpecError, match="char 1:3"):
        rootfs.finalize_rootfs(config, fake, root=str(root))
    assert all(call[1] != "/dev/null" for call in fake.mounts(str(root)))


def test_finalize_refuses_a_proc_that_is_not_procfs(tmp_path: Path) -> None:
    root = make_container_root(tmp_path)
    fake = FakeSyscalls(fs_types={"/proc": C.TMPFS_MAGIC})
    with pytest.raises(SpecError, match="not a procfs"):
        rootfs.finalize_rootfs(oci.Config.from_dict(runc_spec()), fake, root=str(root))
    assert fake.of("mount") == []


def test_sysfs_falls_back_to_a_bind_in_a_user_namespace(bundle: Path, cgroup_sources: list[str]) -> None:
    spec = runc_spec()
    spec["mounts"] = [m for m in spec["mounts"] if m["type"] == "sysfs"]
    fake = FakeSyscalls()
    fake.fail("mount", errno.EPERM, when=lambda call: call[3] == "sysfs")
    root = rootfs.prepare_rootfs(oci.Config.from_dict(spec), str(bundle), fake, in_userns=True)
    mounts_done = fake.mounts(root)
    assert mounts_done[3][3] == "sysfs", "sysfs is tried first"
    assert mounts_done[4] == ("mount", "/sys", "/sys", None, BIND | REC, None)
    assert mounts_done[5][1:3] == (None, "/sys") and mounts_done[5][4] & (RO | C.MS_REMOUNT) == RO | C.MS_REMOUNT


def test_sysfs_failure_outside_a_user_namespace_is_an_error(bundle: Path) -> None:
    spec = runc_spec()
    fake = FakeSyscalls()
    fake.fail("mount", errno.EPERM, when=lambda call: call[3] == "sysfs")
    with pytest.raises(KernelError, match=r"mounts\[5\] /sys") as info:
        rootfs.prepare_rootfs(oci.Config.from_dict(spec), str(bundle), fake)
    assert info.value.errno == errno.EPERM


def test_devices_are_bound_from_the_host_in_a_user_namespace(bundle: Path) -> None:
    spec = runc_spec()
    spec["mounts"] = spec["mounts"][:2]
    fake = FakeSyscalls()
    root = rootfs.prepare_rootfs(oci.Config.from_dict(spec), str(bundle), fake, in_userns=True)
    assert fake.of("mknod") == []
    binds = [c for c in fake.mounts(root) if c[1] and str(c[1]).startswith("/dev/")]
    assert [(c[1], c[2], c[4]) for c in binds] == [
        (f"/dev/{name}", f"/dev/{name}", BIND) for name in ("null", "zero", "full", "random", "urandom", "tty")
    ]
    assert (bundle / "rootfs" / "dev" / "null").is_file(), "the bind target is an empty file"


def test_config_devices_replace_defaults_and_are_chowned(bundle: Path) -> None:
    spec = runc_spec(
        devices=[
            {"type": "c", "path": "/dev/null", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 1000, "gid": 5},
            {"type": "b", "path": "/dev/disk/sda", "major": 8, "minor": 0, "fileMode": stat.S_IFBLK | 0o660},
        ]
    )
    spec["mounts"] = spec["mounts"][:2]
    fake = FakeSyscalls()
    root = rootfs.prepare_rootfs(oci.Config.from_dict(spec), str(bundle), fake)
    calls = [c for c in fake.kernel_calls(root) if c[0] in ("mknod", "chown", "mkdir") and "/dev/" in str(c[1])]
    assert ("mknod", "/dev/null", stat.S_IFCHR | 0o600, 1, 3) in calls
    assert ("chown", "/dev/null", 1000, 5) in calls
    assert calls[-2:] == [("mkdir", "/dev/disk", 0o755), ("mknod", "/dev/disk/sda", stat.S_IFBLK | 0o660, 8, 0)]


@pytest.mark.parametrize(
    ("device", "text"),
    [
        ({"type": "c", "path": "/etc/evil", "major": 1, "minor": 3}, "below /dev"),
        ({"type": "c", "path": "/dev/../etc/evil", "major": 1, "minor": 3}, "below /dev"),
        ({"type": "x", "path": "/dev/x", "major": 1, "minor": 3}, "unknown device type"),
        ({"type": "c", "path": "/dev/x"}, "major and minor"),
        ({"type": "c", "path": "/dev/x", "major": 1, "minor": 3, "fileMode": 0o60666}, "does not fit"),
    ],
)
def test_bad_devices_are_refused_before_any_mount(bundle: Path, device: dict[str, Any], text: str) -> None:
    fake = FakeSyscalls()
    with pytest.raises(SpecError, match=text):
        rootfs.prepare_rootfs(oci.Config.from_dict(runc_spec(devices=[device])), str(bundle), fake)
    assert fake.calls == []


def test_console_must_be_a_pty(bundle: Path, tmp_path: Path) -> None:
    spec = runc_spec()
    spec["mounts"] = spec["mounts"][:2]
    not_a_tty = tmp_path / "console"
    not_a_tty.write_text("")
    with pytest.raises(SpecError, match="pseudo-terminal"):
        rootfs.prepare_rootfs(oci.Config.from_dict(spec), str(bundle), FakeSyscalls(), console_path=str(not_a_tty))
    fresh = tmp_path / "fresh"
    (fresh / "rootfs").mkdir(parents=True)
    master, slave = os.openpty()
    try:
        fake = FakeSyscalls()
        root = rootfs.prepare_rootfs(oci.Config.from_dict(spec), str(fresh), fake, console_path=os.ttyname(slave))
        assert fake.mounts(root)[-1] == ("mount", os.ttyname(slave), "/dev/console", None, BIND, None)
    finally:
        os.close(master)
        os.close(slave)


def test_bind_of_a_file_creates_an_empty_file_and_remounts(bundle: Path, tmp_path: Path) -> None:
    source = tmp_path / "resolv.conf"
    source.write_text("nameserver 127.0.0.1\n")
    spec = runc_spec()
    spec["mounts"] = [
        {
            "destination": "/etc/resolv.conf",
            "type": "bind",
            "source": str(source),
            "options": ["rbind", "ro", "rprivate"],
        }
    ]
    fake = FakeSyscalls()
    root = rootfs.prepare_rootfs(oci.Config.from_dict(spec), str(bundle), fake)
    assert fake.mounts(root)[3:] == [
        ("mount", str(source), "/etc/resolv.conf", None, BIND | REC, None),
        ("mount", None, "/etc/resolv.conf", None, REMOUNT | RO | sticky(bundle), None),
        ("mount", None, "/etc/resolv.conf", None, C.MS_PRIVATE | REC, None),
    ]
    created = bundle / "rootfs" / "etc" / "resolv.conf"
    assert created.is_file() and created.read_text() == ""


def test_missing_rootfs_is_a_spec_error(tmp_path: Path) -> None:
    fake = FakeSyscalls()
    with pytest.raises(SpecError, match=str(tmp_path / "nope" / "rootfs")):
        rootfs.prepare_rootfs(oci.Config.from_dict(runc_spec()), str(tmp_path / "nope"), fake)
    assert fake.calls == []


def test_rootfs_propagation_private_makes_the_host_copy_private(bundle: Path) -> None:
    spec = runc_spec(rootfsPropagation="private")
    spec["mounts"] = []
    fake = FakeSyscalls()
    rootfs.prepare_rootfs(oci.Config.from_dict(spec), str(bundle), fake)
    assert fake.mounts()[0] == ("mount", None, "/", None, C.MS_PRIVATE | REC, None)


def test_rootfs_propagation_shared_is_never_applied_to_the_host_copy(bundle: Path) -> None:
    spec = runc_spec(rootfsPropagation="rshared")
    spec["mounts"] = []
    fake = FakeSyscalls()
    rootfs.prepare_rootfs(oci.Config.from_dict(spec), str(bundle), fake)
    assert fake.mounts()[0] == ("mount", None, "/", None, C.MS_SLAVE | REC, None)
    assert not any(c[4] & C.MS_SHARED for c in fake.mounts())
