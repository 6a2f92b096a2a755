"""The v2 driver's lifecycle on a real kernel: detect, nested create, apply, freeze, kill, stats, destroy."""

from __future__ import annotations

import posixpath
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cgroupv2._support import BUSYBOX, CGROUP_ROOT, MakeManager, StartIn, TestParent, own_cgroup, read_keyed, wait_until
from tinycontainer import oci
from tinycontainer.linux import cgroups
from tinycontainer.linux.cgroups import CgroupManager

pytestmark = pytest.mark.cgroupv2

MiB = 1 << 20


def _directory(manager: CgroupManager) -> Path:
    return Path(manager.paths()["unified"])


def _procs(directory: Path) -> list[int]:
    return [int(pid) for pid in (directory / "cgroup.procs").read_text().split()]


def _spawn_sleepers(manager: CgroupManager, count: int) -> list[subprocess.Popen[bytes]]:
    sleepers = [subprocess.Popen([BUSYBOX, "sleep", "300"]) for _ in range(count)]
    for sleeper in sleepers:
        manager.apply(sleeper.pid)
    return sleepers


def test_detect_reports_a_unified_v2_layout() -> None:
    layout = cgroups.detect()
    assert (layout.version, layout.mode) == ("v2", "unified")
    assert layout.unified is not None and layout.unified.mountpoint == str(CGROUP_ROOT)
    assert layout.v1 == {}


def test_apply_moves_the_process_and_pids_lists_it(make_manager: MakeManager) -> None:
    manager = make_manager("apply")
    assert manager.version == "v2"
    (sleeper,) = _spawn_sleepers(manager, 1)
    try:
        assert _procs(_directory(manager)) == [sleeper.pid]
        assert manager.pids() == [sleeper.pid]
        own = Path(f"/proc/{sleeper.pid}/cgroup").read_text().strip()
        assert own == f"0::/{_directory(manager).relative_to(CGROUP_ROOT)}"
    finally:
        sleeper.kill()
        sleeper.wait(timeout=30)


def test_freeze_stops_the_processes_and_thaw_resumes_them(
    make_manager: MakeManager, start_in: StartIn, tmp_path: Path
) -> None:
    ticks = tmp_path / "ticks"
    manager = make_manager("freeze")
    code = f"import time\nwhile True:\n    open({str(ticks)!r}, 'a').write('.')\n    time.sleep(0.02)"
    child = start_in(manager, code)
    wait_until(lambda: ticks.exists() and ticks.stat().st_size > 3, 30, "the child to tick")

    manager.freeze()
    assert manager.frozen()
    assert read_keyed(_directory(manager) / "cgroup.events")["frozen"] == 1
    assert (_directory(manager) / "cgroup.freeze").read_text().strip() == "1"
    size = ticks.stat().st_size
    time.sleep(1.0)
    assert ticks.stat().st_size == size, "a frozen process kept writing"

    manager.thaw()
    assert not manager.frozen()
    wait_until(lambda: ticks.stat().st_size > size + 3, 30, "the thawed child to tick again")
    assert child.proc.poll() is None


def test_kill_all_kills_every_process_including_forks(make_manager: MakeManager) -> None:
    manager = make_manager("kill")
    # A shell that forks two children once it is in the cgroup (it waits for a line on stdin
    # first): they are in the cgroup without apply(), and kill_all must reach them too.
    script = f"read gate; {BUSYBOX} sleep 300 & {BUSYBOX} sleep 300 & wait"
    shell = subprocess.Popen([BUSYBOX, "sh", "-c", script], stdin=subprocess.PIPE)
    sleepers = _spawn_sleepers(manager, 2)
    manager.apply(shell.pid)
    assert shell.stdin is not None
    shell.stdin.write(b"go\n")
    shell.stdin.close()
    wait_until(lambda: len(manager.pids()) == 5, 30, "the shell's children")

    manager.kill_all(signal.SIGKILL)

    wait_until(lambda: not manager.pids(), 15, "the cgroup to be empty")
    for process in [shell, *sleepers]:
        assert process.wait(timeout=15) == -signal.SIGKILL
    assert read_keyed(_directory(manager) / "cgroup.events")["populated"] == 0


def test_kill_all_with_sigterm_reaches_a_frozen_free_cgroup(make_manager: MakeManager) -> None:
    manager = make_manager("term")
    sleepers = _spawn_sleepers(manager, 2)
    manager.kill_all(signal.SIGTERM)
    for sleeper in sleepers:
        assert sleeper.wait(timeout=15) == -signal.SIGTERM
    # kill_all freezes while signalling (so nothing forks away) and must thaw afterwards.
    assert not manager.frozen()


def test_nested_cgroups_path_delegates_controllers_down_the_chain(
    make_manager: MakeManager, cgroup_parent: TestParent
) -> None:
    manager = make_manager("ctr", path=f"{cgroup_parent.cgroup}/pod/inner/ctr")
    leaf = _directory(manager)
    assert leaf == cgroup_parent.path / "pod" / "inner" / "ctr"
    for middle in (cgroup_parent.path / "pod", cgroup_parent.path / "pod" / "inner"):
        delegated = set((middle / "cgroup.subtree_control").read_text().split())
        assert delegated >= {"cpu", "memory", "pids", "io"}, middle
    manager.set(oci.Resources(memory=oci.Memory(limit=64 * MiB), pids=oci.Pids(limit=9)))
    assert (leaf / "memory.max").read_text().strip() == str(64 * MiB)
    assert (leaf / "pids.max").read_text().strip() == "9"
    (sleeper,) = _spawn_sleepers(manager, 1)
    try:
        assert _procs(leaf) == [sleeper.pid]
    finally:
        sleeper.kill()
        sleeper.wait(timeout=30)
    wait_until(lambda: not manager.pids(), 15, "the leaf to be empty")
    manager.destroy()
    # destroy removes what create made (pod, inner, ctr) and leaves the test parent alone.
    assert not (cgroup_parent.path / "pod").exists()
    assert cgroup_parent.path.is_dir()


def test_relative_cgroups_path_lands_beneath_the_callers_cgroup(cgroup_parent: TestParent) -> None:
    relative = posixpath.join(posixpath.relpath(cgroup_parent.cgroup, own_cgroup()), "rel")
    manager = cgroups.create_manager(relative, "rel")
    manager.create()
    try:
        assert _directory(manager) == cgroup_parent.path / "rel"
        assert _directory(manager).is_dir()
    finally:
        manager.destroy()
    assert not (cgroup_parent.path / "rel").exists()


def test_stats_report_cpu_usage_memory_peak_and_pids(make_manager: MakeManager, start_in: StartIn) -> None:
    manager = make_manager("stats")
    manager.set(oci.Resources(pids=oci.Pids(limit=50)))
    code = (
        "import time\n"
        "block = b'y' * (30 << 20)\n"
        "end = time.process_time() + 0.4\n"
        "while time.process_time() < end: pass\n"
        "print('done', flush=True)\n"
        "time.sleep(300)\n"
    )
    # The child sleeps at the end, so it is still alive (and counted) when stats are read.
    child = start_in(manager, code)
    assert child.proc.stdout is not None
    assert child.proc.stdout.readline() == b"done\n"
    stats = manager.stats()
    assert stats.cpu_usage_ns is not None and stats.cpu_usage_ns >= 300_000_000
    assert stats.cpu_user_ns is not None and stats.cpu_user_ns > 0
    assert stats.memory_peak is not None and stats.memory_peak >= 30 * MiB
    assert stats.memory_current is not None and stats.memory_current >= 30 * MiB
    assert stats.pids_current == 1
    assert stats.pids_limit == 50
    assert stats.oom_kills == 0
    assert stats.memory_limit is None  # memory.max "max"


def test_destroy_is_idempotent_and_only_removes_its_own_cgroup(make_manager: MakeManager) -> None:
    first = make_manager("one")
    second = make_manager("two")
    first.destroy()
    first.destroy()
    assert not _directory(first).exists()
    assert _directory(second).is_dir()
