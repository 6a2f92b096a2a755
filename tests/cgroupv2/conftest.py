"""Fixtures for tests that need a cgroup v2-only kernel; they run inside the test VM (tests/vm).

Outside the VM every test here is skipped: the development host is cgroup v1 and its cgroup
tree is not ours. ``TC_CGROUPV2_NATIVE=1`` opts in on a real v2 host, as root, from a cgroup
whose children may get controllers (e.g. a delegated, otherwise empty cgroup).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cgroupv2._support import (
    BUSYBOX,
    CGROUP_ROOT,
    GatedChild,
    MakeManager,
    StartIn,
    TestParent,
    empty_and_remove,
    enable_controllers,
    own_cgroup,
    wait_until,
)
from tinycontainer.linux import cgroups
from tinycontainer.linux.cgroups import CgroupManager


def _skip_reason() -> str | None:
    if os.environ.get("TC_VM_GUEST") != "1" and os.environ.get("TC_CGROUPV2_NATIVE") != "1":
        return "cgroup v2 tests run inside the test VM: python3 tests/vm/run.py (or TC_CGROUPV2_NATIVE=1)"
    if not (CGROUP_ROOT / "cgroup.controllers").exists():
        return f"{CGROUP_ROOT} is not a cgroup2 mount"
    if os.geteuid() != 0:
        return "cgroup v2 tests need root"
    return None


@pytest.fixture(autouse=True)
def _require_cgroup_v2() -> None:
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def cgroup_parent() -> Iterator[TestParent]:
    own = own_cgroup()
    name = f"tc-test-{uuid.uuid4().hex[:10]}"
    cgroup = f"{own.rstrip('/')}/{name}"
    path = CGROUP_ROOT / cgroup.lstrip("/")
    path.mkdir()
    try:
        enable_controllers(path)
        yield TestParent(cgroup=cgroup, path=path)
    finally:
        if path.exists():
            empty_and_remove(path, time.monotonic() + 15)


@pytest.fixture
def make_manager(cgroup_parent: TestParent) -> Iterator[MakeManager]:
    """Managers from the project's driver, created below the test parent and destroyed afterwards.

    Teardown goes through the driver too (kill_all, destroy), so a broken destroy fails the test;
    the parent's own cleanup removes whatever is left.
    """
    managers: list[CgroupManager] = []

    def make(name: str, *, path: str | None = None) -> CgroupManager:
        manager = cgroups.create_manager(path or cgroup_parent.child_path(name), name)
        manager.create()
        managers.append(manager)
        return manager

    yield make
    for manager in reversed(managers):
        if manager.pids():
            manager.kill_all(signal.SIGKILL)
            wait_until(_emptied(manager), 15, "the cgroup to empty after kill_all")
        manager.destroy()
        for directory in manager.paths().values():
            assert not os.path.exists(directory), f"destroy() left {directory}"


def _emptied(manager: CgroupManager) -> Callable[[], bool]:
    return lambda: not manager.pids()


@pytest.fixture
def start_in() -> Iterator[StartIn]:
    children: list[GatedChild] = []

    def start(manager: CgroupManager, code: str) -> GatedChild:
        child = GatedChild(code)
        children.append(child)
        child.wait_ready()
        manager.apply(child.pid)
        child.release()
        return child

    yield start
    for child in children:
        child.kill()


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    """A 16 MiB loop device over a file in tmp_path (a tmpfs in the VM): (path, major, minor)."""
    backing = tmp_path / "loop.img"
    with backing.open("wb") as handle:
        handle.truncate(16 << 20)
    attach = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True, timeout=30, check=False
    )
    if attach.returncode != 0:
        pytest.skip(f"no loop device: {attach.stderr.strip()}")
    device = attach.stdout.strip()
    try:
        rdev = os.stat(device).st_rdev
        yield device, os.major(rdev), os.minor(rdev)
    finally:
        subprocess.run(["losetup", "--detach", device], capture_output=True, timeout=30, check=False)


@pytest.fixture
def busybox_rootfs(tmp_path: Path) -> Path:
    """A minimal container root filesystem: static busybox and its applet links.

    In the VM tmp_path lies on a tmpfs (/tmp), so this costs no disk and vanishes with the guest.
    For end-to-end tests through ``tcontainer-oci run``.
    """
    if not Path(BUSYBOX).is_file():
        pytest.skip(f"{BUSYBOX} (busybox-static) is missing")
    rootfs = tmp_path / "rootfs"
    for directory in ("bin", "dev", "etc", "proc", "sys", "tmp", "root"):
        (rootfs / directory).mkdir(parents=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True, timeout=30).stdout.split()
    for applet in applets:
        link = rootfs / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return rootfs
