"""The cheaper paths of rootfs setup: one recursive mount_setattr for the cgroup binds, one
readlink per mount target, the plan worked out before fork, procfs read with plain read(2)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from tests.integration.rootfs._spec import runc_spec

from tinycontainer import oci
from tinycontainer._errors import KernelError, SpecError
from tinycontainer.linux import _consts as C
from tinycontainer.linux import _paths, mounts, rootfs
from tinycontainer.testing import FakeSyscalls

RDONLY, NOSUID, NODEV, NOEXEC = 0x1, 0x2, 0x4, 0x8  # include/uapi/linux/mount.h MOUNT_ATTR_*
ATIME, NOATIME, STRICTATIME, NODIRATIME, NOSYMFOLLOW = 0x70, 0x10, 0x20, 0x80, 0x200000


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        # no atime flag: the atime mode and nodiratime stay as they are (a bind remount keeps them)
        (C.MS_RDONLY | C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC, (RDONLY | NOSUID | NODEV | NOEXEC, 0)),
        (C.MS_RDONLY | C.MS_NOSYMFOLLOW, (RDONLY | NOSYMFOLLOW, 0)),
        # any atime flag replaces the whole atime setting, relatime being the default
        (C.MS_RDONLY | C.MS_RELATIME, (RDONLY, ATIME | NODIRATIME)),
        (C.MS_NOATIME, (NOATIME, ATIME | NODIRATIME)),
        (C.MS_NOATIME | C.MS_STRICTATIME, (STRICTATIME, ATIME | NODIRATIME)),
        (C.MS_NODIRATIME, (NODIRATIME, ATIME | NODIRATIME)),
        (C.MS_NOATIME | C.MS_NODIRATIME, (NOATIME | NODIRATIME, ATIME | NODIRATIME)),
    ],
)
def test_mount_attr_from_flags(flags: int, expected: tuple[int, int]) -> None:
    assert rootfs.mount_attr_from_flags(flags) == expected


def test_v1_cgroup_binds_go_read_only_in_one_recursive_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sources = [tmp_path / "cg" / "cpu", tmp_path / "cg" / "memory"]
    for source in sources:
        source.mkdir(parents=True)
    layout = mounts.CgroupLayout(unified=False, v1_binds=[(str(s), s.name) for s in sources])
    monkeypatch.setattr(mounts, "host_cgroup_layout", lambda: layout)
    (tmp_path / "bundle" / "rootfs").mkdir(parents=True)
    spec = runc_spec()
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] in ("/sys", "/sys/fs/cgroup")]
    fake = FakeSyscalls()
    rootfs.prepare_rootfs(oci.Config.from_dict(spec), str(tmp_path / "bundle"), fake)
    root = os.path.realpath(tmp_path / "bundle" / "rootfs")
    calls = fake.kernel_calls(root)
    setattrs = [c for c in calls if c[0] == "mount_setattr" and c[1] == "/sys/fs/cgroup"]
    assert setattrs == [
        ("mount_setattr", "/sys/fs/cgroup", "", 0x1000 | 0x8000, RDONLY | NOSUID | NODEV | NOEXEC, ATIME | NODIRATIME)
    ]
    # ... after both binds, and no per-bind remount any more
    assert calls.index(setattrs[0]) > max(i for i, c in enumerate(calls) if c[0] == "mount" and c[3] is None)
    assert not [c for c in calls if c[0] == "mount" and c[4] & C.MS_REMOUNT]


def test_without_mount_setattr_the_binds_are_remounted_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "cg" / "memory"
    source.mkdir(parents=True)
    layout = mounts.CgroupLayout(unified=False, v1_binds=[(str(source), "memory")])
    monkeypatch.setattr(mounts, "host_cgroup_layout", lambda: layout)
    (tmp_path / "bundle" / "rootfs").mkdir(parents=True)
    spec = runc_spec()
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] in ("/sys", "/sys/fs/cgroup")]
    spec["root"]["readonly"] = False
    fake = FakeSyscalls()
    fake.fail("mount_setattr", errno.ENOSYS)
    rootfs.prepare_rootfs(oci.Config.from_dict(spec), str(tmp_path / "bundle"), fake)
    remounts = [c[2] for c in fake.kernel_calls(os.path.realpath(tmp_path / "bundle" / "rootfs")) if c[0] == "mount"]
    assert remounts[-2:] == ["/sys/fs/cgroup/memory", "/sys/fs/cgroup"]


def test_make_child_dir(tmp_path: Path) -> None:
    (tmp_path / "exists").mkdir()
    os.symlink(str(tmp_path / "outside"), tmp_path / "link")
    fake = FakeSyscalls()
    parent = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        for name in ("new", "exists"):
            fd = _paths.make_child_dir(fake, parent, name)
            assert _paths.fd_path(fd) == str(tmp_path / name)
            os.close(fd)
        with pytest.raises(KernelError) as info:
            _paths.make_child_dir(fake, parent, "link")
        assert info.value.errno == errno.ELOOP
        for bad in ("", ".", "..", "a/b"):
            with pytest.raises(SpecError):
                _paths.make_child_dir(fake, parent, bad)
    finally:
        os.close(parent)
    assert not (tmp_path / "outside").exists()


def test_verify_inside_judges_the_path_it_is_given(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_PATH)
    try:
        # the caller's readlink result is used as is: one readlink serves all checks
        with pytest.raises(SpecError, match="outside the container root"):
            _paths.verify_inside(fd, str(tmp_path), "/x", where="/somewhere/else")
        assert _paths.relative_to_root(fd, "/r", where="/r/dev/pts") == "/dev/pts"
    finally:
        os.close(fd)


def test_plan_rootfs_reads_the_mount_point_unless_everything_goes_private(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    spec = runc_spec()
    plan = rootfs.plan_rootfs(oci.Config.from_dict(spec), str(tmp_path), same_mount_ns=True)
    assert plan.rootfs == os.path.realpath(tmp_path / "rootfs")
    assert plan.mount_point == rootfs._mount_point_of(plan.rootfs)
    assert [m.destination for m in plan.mounts][:2] == ["/proc", "/dev"]
    assert not rootfs.plan_rootfs(oci.Config.from_dict(spec), str(tmp_path)).mount_point
    spec["linux"]["rootfsPropagation"] = "rprivate"
    assert rootfs.plan_rootfs(oci.Config.from_dict(spec), str(tmp_path), same_mount_ns=True).mount_point is None
    spec["mounts"].append({"destination": "/proc/kcore", "type": "tmpfs", "source": "tmpfs"})
    with pytest.raises(SpecError):
        rootfs.plan_rootfs(oci.Config.from_dict(spec), str(tmp_path), same_mount_ns=True)


def test_prepare_executes_a_given_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rootfs").mkdir()
    spec = runc_spec()
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] == "/proc"]
    config = oci.Config.from_dict(spec)
    plan = rootfs.plan_rootfs(config, str(tmp_path))
    plan.mount_point = "/the/planned/point"

    def no_planning(*_args: object) -> None:
        raise AssertionError("planned twice")

    monkeypatch.setattr(mounts, "plan_mounts", no_planning)
    fake = FakeSyscalls()
    rootfs.prepare_rootfs(config, str(tmp_path), fake, rootfs_plan=plan)
    assert fake.kernel_calls()[1] == ("mount", None, "/the/planned/point", None, C.MS_PRIVATE, None)


def test_private_propagation_needs_no_second_mount(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    spec = runc_spec()
    spec["mounts"] = []
    spec["linux"]["rootfsPropagation"] = "private"
    fake = FakeSyscalls()
    rootfs.prepare_rootfs(oci.Config.from_dict(spec), str(tmp_path), fake)
    first = fake.kernel_calls()[:2]
    assert first[0] == ("mount", None, "/", None, C.MS_PRIVATE | C.MS_REC, None)
    assert first[1][4] == C.MS_BIND | C.MS_REC  # straight to the rootfs bind


def test_read_proc_text_reads_past_one_chunk(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 70000 + b"\xff")
    text = mounts.read_proc_text(str(big))
    assert len(text) == 70001 and text.endswith("\udcff")
    assert "/proc/self/mountinfo" not in text


def test_cgroup_layout_with_a_cgroup_namespace_root() -> None:
    # Seen from inside a cgroup namespace, a mount's root may lie above the namespace's root.
    text = "32 31 0:29 /.. /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    layout = mounts.cgroup_layout_from(text, "4:memory:/\n")
    assert layout.v1_binds == [("/sys/fs/cgroup/memory", "memory")]
    text = "32 31 0:29 /a/b /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    assert mounts.cgroup_layout_from(text, "4:memory:/a/b/c\n").v1_binds == [("/sys/fs/cgroup/memory/c", "memory")]
    assert mounts.cgroup_layout_from(text, "4:memory:/a/bc\n").v1_binds == []


def test_cgroup_layout_skips_malformed_lines() -> None:
    text = (
        "garbage - cgroup\n"
        "1 2 3 - cgroup cgroup\n"
        "32 31 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
        "33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n"
    )
    layout = mounts.cgroup_layout_from(text, "5:pids:/c\n3:cpu,cpuacct:/c\n0::/\n")
    assert layout.v1_binds == [("/sys/fs/cgroup/pids/c", "pids"), ("/sys/fs/cgroup/cpu,cpuacct/c", "cpu,cpuacct")]


def test_plan_rootfs_reads_the_cgroup_mounts_only_for_a_cgroup_mount_in_our_cgroup_namespace(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    spec = runc_spec()
    spec["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"})
    plan = rootfs.plan_rootfs(oci.Config.from_dict(spec), str(tmp_path), same_mount_ns=True)
    mountinfo = mounts.read_proc_text("/proc/self/mountinfo")
    assert plan.cgroup_mounts == mounts.cgroup_mounts_from(mountinfo)
    # read even when nothing else needs mountinfo (everything private: no mount point read)
    spec["linux"]["rootfsPropagation"] = "rprivate"
    assert rootfs.plan_rootfs(oci.Config.from_dict(spec), str(tmp_path), same_mount_ns=True).cgroup_mounts is not None
    # not in the caller's namespaces, or the init enters a cgroup namespace: it reads them itself
    assert rootfs.plan_rootfs(oci.Config.from_dict(spec), str(tmp_path)).cgroup_mounts is None
    spec["linux"]["namespaces"].append({"type": "cgroup"})
    assert rootfs.plan_rootfs(oci.Config.from_dict(spec), str(tmp_path), same_mount_ns=True).cgroup_mounts is None
    # no cgroup mount: nothing to read
    spec = runc_spec()
    spec["mounts"] = [m for m in spec["mounts"] if m["type"] != "cgroup"]
    assert rootfs.plan_rootfs(oci.Config.from_dict(spec), str(tmp_path), same_mount_ns=True).cgroup_mounts is None


def test_cgroup_layout_from_planned_mounts_is_the_same_layout() -> None:
    text = (
        "30 29 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs ro,mode=755\n"
        "32 30 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
        "33 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n"
        "34 30 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
    )
    own = "6:name=systemd:/\n5:pids:/c\n3:cpu,cpuacct:/c\n"
    planned = mounts.cgroup_mounts_from(text)
    assert [point for _root, point, _type, _opts in planned] == [
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/cpu,cpuacct",
        "/sys/fs/cgroup/systemd",
    ]
    assert mounts.layout_from_cgroup_mounts(planned, own) == mounts.cgroup_layout_from(text, own)
    assert mounts.layout_from_cgroup_mounts(planned, own).v1_binds[-1] == ("/sys/fs/cgroup/systemd", "systemd")


def test_prepare_uses_the_planned_cgroup_mounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bundle" / "rootfs").mkdir(parents=True)
    source = tmp_path / "cg" / "pids"
    source.mkdir(parents=True)
    spec = runc_spec()
    spec["mounts"] = [{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}]
    config = oci.Config.from_dict(spec)
    plan = rootfs.plan_rootfs(config, str(tmp_path / "bundle"))
    planned = [("/", "/sys/fs/cgroup/pids", "cgroup", frozenset({"rw", "pids"}))]
    plan.cgroup_mounts = planned

    def no_reading(*_args: object) -> None:
        raise AssertionError("the init read mountinfo although the plan has the cgroup mounts")

    monkeypatch.setattr(mounts, "host_cgroup_layout", no_reading)
    monkeypatch.setattr(mounts, "read_proc_text", lambda path: f"read {path}")
    seen: list[object] = []

    def layout(cgroup_mounts: object, proc_cgroup: str) -> mounts.CgroupLayout:
        seen.append((cgroup_mounts, proc_cgroup))
        return mounts.CgroupLayout(unified=False, v1_binds=[(str(source), "pids")])

    monkeypatch.setattr(mounts, "layout_from_cgroup_mounts", layout)
    fake = FakeSyscalls()
    rootfs.prepare_rootfs(config, str(tmp_path / "bundle"), fake, rootfs_plan=plan)
    assert seen == [(planned, "read /proc/self/cgroup")]
    binds = [c for c in fake.kernel_calls(os.path.realpath(tmp_path / "bundle" / "rootfs")) if c[0] == "mount"]
    assert ("mount", str(source), "/sys/fs/cgroup/pids", None, C.MS_BIND | C.MS_REC, None) in binds
