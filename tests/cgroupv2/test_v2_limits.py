"""OCI resources become cgroup v2 limits that the kernel enforces (tinycontainer.linux.cgroups, v2 driver)."""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import pytest

from cgroupv2._support import MakeManager, StartIn, read_keyed
from tinycontainer import oci
from tinycontainer.linux.cgroups import CgroupManager

pytestmark = pytest.mark.cgroupv2

MiB = 1 << 20


def _directory(manager: CgroupManager) -> Path:
    return Path(manager.paths()["unified"])


def _read(manager: CgroupManager, name: str) -> str:
    return (_directory(manager) / name).read_text().strip()


def test_memory_max_oom_kills_an_allocation_above_the_limit(make_manager: MakeManager, start_in: StartIn) -> None:
    manager = make_manager("mem")
    manager.set(oci.Resources(memory=oci.Memory(limit=50 * MiB)))
    assert _read(manager, "memory.max") == str(50 * MiB)

    # b"x" * n writes every page, so the memory is really charged (a bytearray may stay untouched).
    child = start_in(manager, "block = b'x' * (200 << 20)\nprint('survived', len(block))")
    code, out, _err = child.wait()

    assert code == -signal.SIGKILL
    assert "survived" not in out
    assert read_keyed(_directory(manager) / "memory.events")["oom_kill"] >= 1
    stats = manager.stats()
    assert stats.oom_kills is not None and stats.oom_kills >= 1
    assert stats.memory_limit == 50 * MiB
    assert stats.memory_peak is not None and 40 * MiB < stats.memory_peak <= 50 * MiB


def test_an_allocation_below_memory_max_survives(make_manager: MakeManager, start_in: StartIn) -> None:
    manager = make_manager("mem-ok")
    manager.set(oci.Resources(memory=oci.Memory(limit=100 * MiB)))
    child = start_in(manager, "block = b'x' * (20 << 20)\nprint('survived', len(block))")
    code, out, err = child.wait()
    assert (code, out.strip()) == (0, f"survived {20 * MiB}"), err
    assert read_keyed(_directory(manager) / "memory.events")["oom_kill"] == 0


@pytest.mark.parametrize(
    ("limit", "swap", "expected"),
    [(50 * MiB, 80 * MiB, str(30 * MiB)), (50 * MiB, 50 * MiB, "0"), (50 * MiB, -1, "max")],
)
def test_memory_swap_max_is_oci_swap_minus_the_memory_limit(
    make_manager: MakeManager, limit: int, swap: int, expected: str
) -> None:
    # OCI's memory.swap is memory+swap (the v1 memsw meaning); v2's memory.swap.max is swap alone.
    manager = make_manager("swap")
    manager.set(oci.Resources(memory=oci.Memory(limit=limit, swap=swap)))
    assert _read(manager, "memory.swap.max") == expected
    assert _read(manager, "memory.max") == str(limit)


def test_cpu_max_from_quota_and_period(make_manager: MakeManager) -> None:
    manager = make_manager("cpumax")
    manager.set(oci.Resources(cpu=oci.CPU(quota=50_000, period=100_000)))
    assert _read(manager, "cpu.max") == "50000 100000"
    manager.set(oci.Resources(cpu=oci.CPU(quota=-1, period=200_000)))
    assert _read(manager, "cpu.max") == "max 200000"


def test_cpu_max_throttles_a_busy_process(make_manager: MakeManager, start_in: StartIn) -> None:
    manager = make_manager("throttle")
    manager.set(oci.Resources(cpu=oci.CPU(quota=10_000, period=100_000)))
    child = start_in(manager, "import time\nend = time.monotonic() + 1.0\nwhile time.monotonic() < end: pass")
    code, _out, err = child.wait()
    assert code == 0, err
    stat = read_keyed(_directory(manager) / "cpu.stat")
    # 10 ms per 100 ms period: a one-second busy loop hits the quota in nearly every period.
    assert stat["nr_throttled"] >= 3
    # Generous bound: CPU time accrues in ticks and emulation is coarse; unthrottled it would be ~1 s.
    assert stat["usage_usec"] < 600_000
    throttled = manager.stats().cpu_throttled_periods
    assert throttled is not None and throttled >= 3


@pytest.mark.parametrize(("shares", "weight"), [(1024, "39"), (2, "1"), (262144, "10000"), (512, "20")])
def test_cpu_weight_from_shares(make_manager: MakeManager, shares: int, weight: str) -> None:
    manager = make_manager("weight")
    manager.set(oci.Resources(cpu=oci.CPU(shares=shares)))
    assert _read(manager, "cpu.weight") == weight


def test_cpuset_pins_a_process_to_the_given_cpu(make_manager: MakeManager, start_in: StartIn) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("cpuset needs at least 2 CPUs (the qemu guest has 2)")
    manager = make_manager("cpuset")
    manager.set(oci.Resources(cpu=oci.CPU(cpus="1", mems="0")))
    assert _read(manager, "cpuset.cpus") == "1"
    assert _read(manager, "cpuset.mems") == "0"
    assert _read(manager, "cpuset.cpus.effective") == "1"
    child = start_in(manager, "import os\nprint(sorted(os.sched_getaffinity(0)))")
    code, out, err = child.wait()
    assert (code, out.strip()) == (0, "[1]"), err


def test_pids_max_refuses_forks_beyond_the_limit(make_manager: MakeManager, start_in: StartIn) -> None:
    manager = make_manager("pids")
    manager.set(oci.Resources(pids=oci.Pids(limit=4)))
    assert _read(manager, "pids.max") == "4"
    code = """
import os, signal
kids, failure = [], None
for _ in range(10):
    try:
        pid = os.fork()
    except OSError as exc:
        failure = exc.errno
        break
    if pid == 0:
        signal.pause()
        os._exit(0)
    kids.append(pid)
print(len(kids), failure)
for pid in kids:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
"""
    child = start_in(manager, code)
    exit_code, out, err = child.wait()
    # The forking process itself is one of the 4.
    assert (exit_code, out.split()) == (0, ["3", str(errno.EAGAIN)]), err
    assert read_keyed(_directory(manager) / "pids.events")["max"] >= 1
    stats = manager.stats()
    assert stats.pids_limit == 4
    assert stats.pids_current == 0


def test_pids_limit_zero_or_minus_one_means_unlimited(make_manager: MakeManager) -> None:
    manager = make_manager("pids-max")
    manager.set(oci.Resources(pids=oci.Pids(limit=10)))
    manager.set(oci.Resources(pids=oci.Pids(limit=-1)))
    assert _read(manager, "pids.max") == "max"


def test_unified_keys_are_written_verbatim(make_manager: MakeManager) -> None:
    manager = make_manager("unified")
    manager.set(oci.Resources(unified={"memory.high": str(64 * MiB), "pids.max": "7"}))
    assert _read(manager, "memory.high") == str(64 * MiB)
    assert _read(manager, "pids.max") == "7"


def test_io_weight_and_io_max_on_a_loop_device(
    make_manager: MakeManager, start_in: StartIn, loop_device: tuple[str, int, int]
) -> None:
    device, major, minor = loop_device
    manager = make_manager("io")
    rate = 1 * MiB
    manager.set(
        oci.Resources(
            block_io=oci.BlockIO(
                weight=500,
                throttle_write_bps_device=[oci.ThrottleDevice(major=major, minor=minor, rate=rate)],
            )
        )
    )
    # blkio.weight 500 -> io.weight 1 + (500 - 10) * 9999 // 990 = 4950 (runc's conversion).
    if (_directory(manager) / "io.bfq.weight").exists():
        assert "default 500" in _read(manager, "io.bfq.weight")
    else:
        assert _read(manager, "io.weight").splitlines()[0] == "default 4950"
    assert f"{major}:{minor} rbps=max wbps={rate} riops=max wiops=max" in _read(manager, "io.max")

    # O_DIRECT skips the page cache, so each write is a bio that io.max throttles in this cgroup.
    code = f"""
import mmap, os, time
buf = mmap.mmap(-1, 1 << 20)
buf.write(b"z" * (1 << 20))
fd = os.open({device!r}, os.O_WRONLY | os.O_DIRECT)
start = time.monotonic()
for _ in range(3):
    os.write(fd, buf)
os.fsync(fd)
print(time.monotonic() - start)
"""
    started = time.monotonic()
    child = start_in(manager, code)
    exit_code, out, err = child.wait(timeout=120)
    assert exit_code == 0, err
    # 3 MiB at 1 MiB/s: the first MiB may pass at once (the throttle's initial budget), the rest cannot.
    assert float(out) >= 1.5, out
    assert time.monotonic() - started < 60
    stats = manager.stats()
    assert stats.io_write_bytes is not None and stats.io_write_bytes >= 3 * MiB
