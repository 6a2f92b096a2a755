"""Mount option parsing, path cleaning, the mount plan and the cgroup layout (pure functions)."""

from __future__ import annotations

import pytest

from tinycontainer import oci
from tinycontainer._errors import SpecError, UnsupportedError
from tinycontainer.linux import _consts as C
from tinycontainer.linux import mounts


@pytest.mark.parametrize(
    ("options", "flags", "cleared", "data"),
    [
        ([], 0, 0, ""),
        (["ro"], C.MS_RDONLY, 0, ""),
        (["ro", "rw"], 0, C.MS_RDONLY, ""),
        (["rw", "ro"], C.MS_RDONLY, 0, ""),
        (["nosuid", "nodev", "noexec"], C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC, 0, ""),
        (["suid", "dev", "exec"], 0, C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC, ""),
        (["sync", "dirsync", "remount", "mand"], C.MS_SYNCHRONOUS | C.MS_DIRSYNC | C.MS_REMOUNT | C.MS_MANDLOCK, 0, ""),
        (["async", "nomand"], 0, C.MS_SYNCHRONOUS | C.MS_MANDLOCK, ""),
        (["noatime", "nodiratime", "relatime"], C.MS_NOATIME | C.MS_NODIRATIME | C.MS_RELATIME, 0, ""),
        (["atime", "diratime", "norelatime"], 0, C.MS_NOATIME | C.MS_NODIRATIME | C.MS_RELATIME, ""),
        (["strictatime", "lazytime"], C.MS_STRICTATIME | C.MS_LAZYTIME, 0, ""),
        (["nostrictatime", "nolazytime"], 0, C.MS_STRICTATIME | C.MS_LAZYTIME, ""),
        (["nosymfollow"], C.MS_NOSYMFOLLOW, 0, ""),
        (["bind"], C.MS_BIND, 0, ""),
        (["rbind"], C.MS_BIND | C.MS_REC, 0, ""),
        (["nosuid", "mode=755", "size=65536k"], C.MS_NOSUID, 0, "mode=755,size=65536k"),
        (["newinstance", "ptmxmode=0666", "gid=5"], 0, 0, "newinstance,ptmxmode=0666,gid=5"),
    ],
)
def test_parse_options(options: list[str], flags: int, cleared: int, data: str) -> None:
    parsed = mounts.parse_options(options)
    assert (parsed.flags, parsed.cleared, parsed.data) == (flags, cleared, data)


def test_propagation_options_are_kept_in_order() -> None:
    parsed = mounts.parse_options(["rslave", "private", "shared", "runbindable"])
    assert parsed.propagation == (C.MS_SLAVE | C.MS_REC, C.MS_PRIVATE, C.MS_SHARED, C.MS_UNBINDABLE | C.MS_REC)
    assert parsed.flags == 0 and parsed.data == ""


@pytest.mark.parametrize("option", ["idmap", "ridmap", "rro", "rnosuid"])
def test_options_needing_mount_setattr_are_unsupported(option: str) -> None:
    with pytest.raises(UnsupportedError, match=option):
        mounts.parse_options([option])


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("/", "/"),
        ("", "/"),
        ("dev/pts", "/dev/pts"),
        ("/a//b/./c/", "/a/b/c"),
        ("/a/../../../b", "/b"),
        ("/../../etc/shadow", "/etc/shadow"),
        ("..", "/"),
    ],
)
def test_clean_path_never_climbs_above_root(raw: str, clean: str) -> None:
    assert mounts.clean_path(raw) == clean


def config_with(*mount_list: dict[str, object]) -> oci.Config:
    return oci.Config.from_dict({"ociVersion": "1.2.0", "root": {"path": "rootfs"}, "mounts": list(mount_list)})


def test_plan_bind_sources_are_relative_to_the_bundle() -> None:
    plan = mounts.plan_mounts(
        config_with(
            {"destination": "/a", "source": "vol", "options": ["rbind", "ro"]},
            {"destination": "/b", "type": "bind", "source": "/abs/file"},
            {"destination": "/c", "type": "none", "source": "../x", "options": ["bind"]},
        ),
        "/bundles/one",
    )
    assert [(p.kind, p.source, p.fstype) for p in plan] == [
        ("bind", "/bundles/one/vol", None),
        ("bind", "/abs/file", None),
        ("bind", "/bundles/x", None),
    ]
    assert plan[0].options.flags == C.MS_BIND | C.MS_REC | C.MS_RDONLY
    assert plan[1].options.flags == C.MS_BIND, "type bind alone means a (non-recursive) bind"


def test_plan_kinds_and_cleaned_destinations() -> None:
    plan = mounts.plan_mounts(
        config_with(
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys/", "type": "sysfs", "source": "sysfs"},
            {"destination": "/x/../dev", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"},
            {"destination": "/dev/mqueue", "type": "mqueue"},
        ),
        "/b",
    )
    assert [(p.destination, p.kind, p.source) for p in plan] == [
        ("/proc", "proc", "proc"),
        ("/sys", "sysfs", "sysfs"),
        ("/dev", "tmpfs", "tmpfs"),
        ("/sys/fs/cgroup", "cgroup", "cgroup"),
        ("/dev/mqueue", "fs", "mqueue"),
    ]
    assert [p.no_symlinks for p in plan] == [True, True, True, False, False]


@pytest.mark.parametrize(
    ("mount", "error", "text"),
    [
        ({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}, SpecError, "only a procfs"),
        ({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}, SpecError, "inside /proc"),
        ({"destination": "/proc/self/../kcore", "type": "bind", "source": "/x"}, SpecError, "inside /proc"),
        ({"destination": "/", "type": "tmpfs", "source": "tmpfs"}, SpecError, "root directory"),
        ({"destination": "/../..", "type": "tmpfs", "source": "tmpfs"}, SpecError, "root directory"),
        ({"destination": "/x", "options": ["bind"]}, SpecError, "needs a source"),
        ({"destination": "/x", "source": "y"}, SpecError, "type is required"),
        ({"destination": "/x", "type": "tmpfs", "options": ["tmpcopyup"]}, UnsupportedError, "tmpcopyup"),
        (
            {
                "destination": "/x",
                "type": "bind",
                "source": "/y",
                "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
            },
            UnsupportedError,
            "idmapped",
        ),
    ],
)
def test_plan_refusals(mount: dict[str, object], error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        mounts.plan_mounts(config_with(mount), "/b")


def test_proc_allow_list_is_allowed() -> None:
    plan = mounts.plan_mounts(
        config_with({"destination": "/proc/meminfo", "type": "bind", "source": "/var/lib/lxcfs/proc/meminfo"}), "/b"
    )
    assert plan[0].destination == "/proc/meminfo"


def test_needs_dev_setup_only_without_a_dev_bind() -> None:
    tmpfs = mounts.plan_mounts(config_with({"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}), "/b")
    bind = mounts.plan_mounts(config_with({"destination": "/dev", "type": "bind", "source": "/dev"}), "/b")
    assert mounts.needs_dev_setup(tmpfs) and mounts.needs_dev_setup([])
    assert not mounts.needs_dev_setup(bind)


V1_MOUNTINFO = """\
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 /inner /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 27 0:39 / /mnt/with\\040space rw - tmpfs tmpfs rw
"""
V1_CGROUP = """\
9:name=systemd:/user.slice
8:pids:/elsewhere
4:memory:/process_api/abc
2:cpu,cpuacct:/
0::/
"""


def test_cgroup_layout_v1_binds_our_own_cgroups() -> None:
    layout = mounts.cgroup_layout_from(V1_MOUNTINFO, V1_CGROUP)
    assert not layout.unified
    # pids: our cgroup /elsewhere is not below the mount's root /inner, so it is left out.
    assert layout.v1_binds == [
        ("/sys/fs/cgroup/cpu,cpuacct", "cpu,cpuacct"),
        ("/sys/fs/cgroup/memory/process_api/abc", "memory"),
        ("/sys/fs/cgroup/systemd/user.slice", "systemd"),
    ]


def test_cgroup_layout_v2() -> None:
    text = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    assert mounts.cgroup_layout_from(text, "0::/user.slice\n").unified


def test_parse_mountinfo_unescapes_paths() -> None:
    entries = mounts.parse_mountinfo(V1_MOUNTINFO)
    assert entries[-1].mount_point == "/mnt/with space"
    assert entries[2].root == "/" and entries[2].fstype == "cgroup"
    assert "xattr" in entries[5].super_options


def test_propagation_flags_rejects_unknown_names() -> None:
    assert mounts.propagation_flags("rshared") == C.MS_SHARED | C.MS_REC
    with pytest.raises(SpecError, match="rootfsPropagation"):
        mounts.propagation_flags("sideways")
