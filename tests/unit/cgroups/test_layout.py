from __future__ import annotations

import pytest

from tinycontainer._errors import UnsupportedError
from tinycontainer.linux.cgroups import Hierarchy, detect, parse_proc_cgroup

# This project's test machine (v1 controllers + a cgroup2 mount holding only hugetlb).
HYBRID = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

# A classic systemd v1 host: cpu and cpuacct co-mounted, optional fields before " - ".
LEGACY = """\
25 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,name=systemd
29 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid shared:14 master:3 - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/pids rw,nosuid shared:15 - cgroup cgroup rw,pids
32 25 0:28 / /sys/fs/cgroup/hugetlb rw,nosuid shared:16 - cgroup cgroup rw,hugetlb
"""

UNIFIED = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
"""

# Inside a container: the hierarchy's root is a sub-cgroup, the mount point has a space.
NESTED = r"""
100 90 0:30 /machine/ctr /sys/fs/my\040cgroup ro,relatime - cgroup2 cgroup2 rw
"""


def test_hybrid_host_uses_v1() -> None:
    layout = detect(HYBRID)
    assert (layout.version, layout.mode) == ("v1", "hybrid")
    assert sorted(layout.v1) == ["blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids"]
    assert layout.v1["memory"].mountpoint == "/sys/fs/cgroup/memory"
    assert layout.unified == Hierarchy("/sys/fs/cgroup/unified", "/")
    assert "systemd" not in layout.v1 and "name=systemd" not in layout.v1


def test_legacy_comounted_controllers_share_a_hierarchy() -> None:
    layout = detect(LEGACY)
    assert (layout.version, layout.mode) == ("v1", "legacy")
    assert layout.v1["cpu"] is layout.v1["cpuacct"]
    assert layout.v1["cpu"].mountpoint == "/sys/fs/cgroup/cpu,cpuacct"
    assert layout.v1["cpu"].controllers == ("cpu", "cpuacct")
    assert layout.v1["hugetlb"].mountpoint == "/sys/fs/cgroup/hugetlb"
    assert layout.unified is None


def test_unified_host_uses_v2() -> None:
    layout = detect(UNIFIED)
    assert (layout.version, layout.mode) == ("v2", "unified")
    assert layout.v1 == {}
    assert layout.unified == Hierarchy("/sys/fs/cgroup", "/")


def test_escaped_mountpoint_and_mount_root() -> None:
    layout = detect(NESTED)
    assert layout.unified == Hierarchy("/sys/fs/my cgroup", "/machine/ctr")
    # A cgroup below the mount's root maps below the mount point; others are taken as relative.
    assert layout.unified.directory("/machine/ctr/sub") == "/sys/fs/my cgroup/sub"
    assert layout.unified.directory("/machine/ctr") == "/sys/fs/my cgroup"


def test_no_cgroup_mounted() -> None:
    with pytest.raises(UnsupportedError, match="no cgroup"):
        detect("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")


def test_layout_is_jsonable() -> None:
    import json

    assert json.loads(json.dumps(detect(HYBRID).to_dict()))["mode"] == "hybrid"


def test_proc_cgroup_parsing() -> None:
    member = parse_proc_cgroup(
        "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/user.slice\n"
    )
    assert member.v1 == {"pids": "/", "memory": "/process_api/abc", "cpu": "/x", "cpuacct": "/x"}
    assert member.unified == "/user.slice"
    assert parse_proc_cgroup("0::/\n").v1 == {}


def test_detect_reads_this_hosts_mountinfo() -> None:
    layout = detect()
    assert layout.version in ("v1", "v2")
