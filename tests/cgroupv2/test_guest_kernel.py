"""The VM really is a cgroup v2-only host with the controllers the driver needs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cgroupv2._support import CGROUP_ROOT, TestParent

pytestmark = pytest.mark.cgroupv2

NEEDED = {"cpu", "cpuset", "io", "memory", "pids"}


def test_root_offers_and_delegates_the_controllers() -> None:
    offered = set((CGROUP_ROOT / "cgroup.controllers").read_text().split())
    delegated = set((CGROUP_ROOT / "cgroup.subtree_control").read_text().split())
    assert offered >= NEEDED
    assert delegated >= NEEDED


def test_no_cgroup_v1_hierarchy_is_mounted() -> None:
    types = [line.split(" - ")[1].split()[0] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    assert "cgroup2" in types
    assert "cgroup" not in types


def test_test_parent_gets_interface_files(cgroup_parent: TestParent) -> None:
    child = cgroup_parent.path / "probe"
    child.mkdir()
    try:
        for name in ("memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max", "io.max", "cgroup.kill"):
            assert (child / name).exists(), name
    finally:
        child.rmdir()


def _filesystem_type(path: Path) -> str:
    best, fstype = "", ""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        mountpoint = fields[4]
        inside = str(path) == mountpoint or str(path).startswith(mountpoint.rstrip("/") + "/")
        if inside and len(mountpoint) >= len(best):
            best, fstype = mountpoint, line.split(" - ")[1].split()[0]
    return fstype


def test_busybox_rootfs_is_on_a_tmpfs_and_runs(busybox_rootfs: Path) -> None:
    assert _filesystem_type(busybox_rootfs) == "tmpfs"
    result = subprocess.run(
        ["chroot", str(busybox_rootfs), "/bin/sh", "-c", "echo hello from $(id -un)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "hello from root\n"), result.stderr
