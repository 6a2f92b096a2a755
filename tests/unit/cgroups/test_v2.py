from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest
from tests.unit.cgroups._fakefs import FakeKernel

from tinycontainer import oci
from tinycontainer._errors import KernelError, SpecError, UnsupportedError
from tinycontainer.linux import cgroups
from tinycontainer.linux.cgroups import V2Manager, _v2

M = 1 << 20
ALL = "cpuset cpu io memory hugetlb pids"

# Interface files named in Documentation/admin-guide/cgroup-v2.rst (kernel 6.x) that the
# driver may write; a write to any other name is a bug.
DOC_FILES = {
    "cgroup.procs",
    "cgroup.subtree_control",
    "cgroup.freeze",
    "cgroup.kill",
    "cgroup.max.depth",
    "cgroup.max.descendants",
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpuset.cpus",
    "cpuset.mems",
    "memory.max",
    "memory.low",
    "memory.high",
    "memory.swap.max",
    "io.weight",
    "io.bfq.weight",
    "io.max",
    "pids.max",
}
DOC_PATTERNS = [re.compile(r"^hugetlb\.[0-9]+[KMG]B\.max$")]


def manager(kernel: FakeKernel, path: str | None = None, root_enabled: str = ALL, **kw: object) -> V2Manager:
    kernel.set_own_cgroup("0::/user.slice/session\n")
    layout = kernel.v2_layout(root_enabled=root_enabled)
    m = cgroups.create_manager(path, "c1", layout=layout, proc=str(kernel.proc), **kw)  # type: ignore[arg-type]
    assert isinstance(m, V2Manager)
    return m


@pytest.fixture
def mgr(kernel: FakeKernel) -> V2Manager:
    m = manager(kernel, "/c1")
    m.create()
    kernel.writes.clear()
    return m


def names(kernel: FakeKernel) -> list[tuple[str, str]]:
    return [(Path(p).name, v) for p, v in kernel.writes]


def test_create_enables_controllers_one_per_write_only_where_it_created(kernel: FakeKernel) -> None:
    m = manager(kernel, "/a/b/c1")
    m.create()
    a, b = kernel.v2_root / "a", kernel.v2_root / "a/b"
    assert m.paths() == {"unified": str(kernel.v2_root / "a/b/c1")}
    assert kernel.written(a / "cgroup.subtree_control") == ["+cpuset", "+cpu", "+io", "+memory", "+pids", "+hugetlb"]
    assert kernel.written(b / "cgroup.subtree_control") == ["+cpuset", "+cpu", "+io", "+memory", "+pids", "+hugetlb"]
    # Never the root's (not ours), never the leaf's (it holds the processes).
    assert kernel.written(kernel.v2_root / "cgroup.subtree_control") == []
    assert kernel.written(kernel.v2_root / "a/b/c1/cgroup.subtree_control") == []
    assert (kernel.v2_root / "a/b/c1/memory.max").exists()
    for p, _ in kernel.writes:
        assert Path(p).name in DOC_FILES


def test_parents_are_written_only_when_asked(kernel: FakeKernel) -> None:
    m = manager(kernel, "/c1", root_enabled="", enable_parent_controllers=True)
    m.create()
    assert kernel.written(kernel.v2_root / "cgroup.subtree_control") == [
        "+cpuset",
        "+cpu",
        "+io",
        "+memory",
        "+pids",
        "+hugetlb",
        "+misc",
        "+rdma",
    ]
    assert (kernel.v2_root / "c1/cpu.weight").exists()


def test_default_path_is_below_the_callers_cgroup(kernel: FakeKernel) -> None:
    m = manager(kernel, None)
    assert m.paths()["unified"] == str(kernel.v2_root / "user.slice/session/tcontainer-c1")


@pytest.mark.parametrize(("shares", "weight"), [(1024, "39"), (2, "1"), (262144, "10000"), (512, "20")])
def test_cpu_weight_from_shares(kernel: FakeKernel, mgr: V2Manager, shares: int, weight: str) -> None:
    mgr.set(oci.Resources(cpu=oci.CPU(shares=shares)))
    assert names(kernel) == [("cpu.weight", weight)]


@pytest.mark.parametrize(
    ("quota", "period", "text"),
    [(50000, 100000, "50000 100000"), (-1, 100000, "max 100000"), (20000, None, "20000"), (None, 250000, "max 250000")],
)
def test_cpu_max(kernel: FakeKernel, mgr: V2Manager, quota: int | None, period: int | None, text: str) -> None:
    mgr.set(oci.Resources(cpu=oci.CPU(quota=quota, period=period)))
    assert names(kernel) == [("cpu.max", text)]
    assert (kernel.v2_root / "c1/cpu.max").read_text() == text


def test_cpu_rest(kernel: FakeKernel, mgr: V2Manager) -> None:
    mgr.set(oci.Resources(cpu=oci.CPU(burst=5000, idle=1, cpus="0-1", mems="0")))
    assert names(kernel) == [("cpu.max.burst", "5000"), ("cpu.idle", "1"), ("cpuset.cpus", "0-1"), ("cpuset.mems", "0")]
    with pytest.raises(UnsupportedError, match="realtime"):
        mgr.set(oci.Resources(cpu=oci.CPU(realtime_runtime=1000)))


def test_memory(kernel: FakeKernel, mgr: V2Manager) -> None:
    mgr.set(oci.Resources(memory=oci.Memory(limit=50 * M, swap=80 * M, reservation=10 * M, swappiness=5)))
    assert names(kernel) == [
        ("memory.max", str(50 * M)),
        ("memory.swap.max", str(30 * M)),  # OCI swap is memory+swap
        ("memory.low", str(10 * M)),
    ]
    kernel.writes.clear()
    mgr.set(oci.Resources(memory=oci.Memory(limit=-1)))
    assert names(kernel) == [("memory.max", "max"), ("memory.swap.max", "max")]
    kernel.writes.clear()
    mgr.set(oci.Resources(memory=oci.Memory(limit=50 * M, swap=-1)))
    assert names(kernel) == [("memory.max", str(50 * M)), ("memory.swap.max", "max")]
    with pytest.raises(SpecError) as info:
        mgr.set(oci.Resources(memory=oci.Memory(swap=80 * M)))
    assert info.value.field == "linux.resources.memory.swap"


def test_memory_without_swap_accounting(kernel: FakeKernel, mgr: V2Manager) -> None:
    (kernel.v2_root / "c1/memory.swap.max").unlink()
    mgr.set(oci.Resources(memory=oci.Memory(limit=-1)))
    assert names(kernel) == [("memory.max", "max")]
    with pytest.raises(UnsupportedError, match=r"memory\.swap\.max"):
        mgr.set(oci.Resources(memory=oci.Memory(limit=50 * M, swap=80 * M)))


@pytest.mark.parametrize(("limit", "text"), [(-1, "max"), (0, "max"), (64, "64")])
def test_pids(kernel: FakeKernel, mgr: V2Manager, limit: int, text: str) -> None:
    mgr.set(oci.Resources(pids=oci.Pids(limit=limit)))
    assert names(kernel) == [("pids.max", text)]


def test_io(kernel: FakeKernel, mgr: V2Manager) -> None:
    mgr.set(
        oci.Resources(
            block_io=oci.BlockIO(
                weight=500,
                leaf_weight=300,
                weight_device=[oci.WeightDevice(major=8, minor=0, weight=1000)],
                throttle_read_bps_device=[oci.ThrottleDevice(major=8, minor=0, rate=2 * M)],
                throttle_write_bps_device=[oci.ThrottleDevice(major=8, minor=0, rate=0)],
                throttle_read_iops_device=[oci.ThrottleDevice(major=8, minor=16, rate=100)],
                throttle_write_iops_device=[oci.ThrottleDevice(major=8, minor=16, rate=50)],
            )
        )
    )
    assert names(kernel) == [
        ("io.weight", "default 4950"),  # runc's blkio [10,1000] -> io [1,10000]
        ("io.weight", "8:0 10000"),
        ("io.max", f"8:0 rbps={2 * M}"),
        ("io.max", "8:0 wbps=max"),
        ("io.max", "8:16 riops=100"),
        ("io.max", "8:16 wiops=50"),
    ]


def test_io_bfq(kernel: FakeKernel, mgr: V2Manager) -> None:
    (kernel.v2_root / "c1/io.bfq.weight").write_text("default 100")
    mgr.set(oci.Resources(block_io=oci.BlockIO(weight=500)))
    assert names(kernel) == [("io.bfq.weight", "default 500")]


def test_hugetlb(kernel: FakeKernel, mgr: V2Manager) -> None:
    mgr.set(oci.Resources(hugepage_limits=[oci.HugepageLimit(page_size="2MB", limit=4 * M)]))
    assert names(kernel) == [("hugetlb.2MB.max", str(4 * M))]
    with pytest.raises(UnsupportedError, match=r"hugetlb\.64KB\.max"):
        mgr.set(oci.Resources(hugepage_limits=[oci.HugepageLimit(page_size="64KB", limit=1)]))


def test_missing_controller_says_where_to_enable_it(kernel: FakeKernel) -> None:
    m = manager(kernel, "/c1", root_enabled="cpu")
    m.create()
    with pytest.raises(UnsupportedError, match=r"memory controller.*cgroup\.subtree_control"):
        m.set(oci.Resources(memory=oci.Memory(limit=50 * M)))


def test_unified(kernel: FakeKernel, mgr: V2Manager) -> None:
    mgr.set(oci.Resources(memory=oci.Memory(limit=50 * M), unified={"memory.high": "40M", "cgroup.max.depth": "3"}))
    # Raw values come last so they override the converted ones.
    assert names(kernel) == [("memory.max", str(50 * M)), ("cgroup.max.depth", "3"), ("memory.high", "40M")]


@pytest.mark.parametrize(
    "key", ["../memory.max", "memory.max/../x", "sub/memory.max", "memory..max", ".hidden", "cgroup.procs", "x"]
)
def test_unified_rejects_paths_and_runtime_files(kernel: FakeKernel, mgr: V2Manager, key: str) -> None:
    with pytest.raises(SpecError) as info:
        mgr.set(oci.Resources(unified={key: "1"}))
    assert info.value.field is not None and info.value.field.startswith("linux.resources.unified")
    assert kernel.writes == []


def test_unified_unknown_file_fails_loudly(kernel: FakeKernel, mgr: V2Manager) -> None:
    with pytest.raises(UnsupportedError, match=r"memory\.nonexistent"):
        mgr.set(oci.Resources(unified={"memory.nonexistent": "1"}))
    assert not (kernel.v2_root / "c1/memory.nonexistent").exists()
    with pytest.raises(UnsupportedError, match="rdma controller"):
        mgr.set(oci.Resources(unified={"rdma.max": "mlx4_0 hca_handle=2"}))


def test_every_written_file_is_documented(kernel: FakeKernel, mgr: V2Manager) -> None:
    mgr.set(
        oci.Resources(
            memory=oci.Memory(limit=50 * M, swap=60 * M, reservation=M),
            cpu=oci.CPU(shares=100, quota=1000, period=10000, burst=10, idle=0, cpus="0", mems="0"),
            pids=oci.Pids(limit=3),
            block_io=oci.BlockIO(weight=100, throttle_read_bps_device=[oci.ThrottleDevice(major=1, minor=2, rate=3)]),
            hugepage_limits=[oci.HugepageLimit(page_size="1GB", limit=1 << 30)],
        )
    )
    mgr.freeze()
    mgr.thaw()
    mgr.kill_all(signal.SIGKILL)
    for path, _ in kernel.writes:
        name = Path(path).name
        assert name in DOC_FILES or any(p.match(name) for p in DOC_PATTERNS), name
    assert len(kernel.writes) >= 14


def test_freeze_thaw_wait_for_events(kernel: FakeKernel, mgr: V2Manager) -> None:
    assert not mgr.frozen()
    mgr.freeze()
    assert mgr.frozen()
    assert (kernel.v2_root / "c1/cgroup.freeze").read_text() == "1"
    mgr.thaw()
    assert not mgr.frozen()


def test_freeze_times_out_when_never_frozen(
    kernel: FakeKernel, mgr: V2Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_v2, "_FREEZE_TIMEOUT", 0.05)
    monkeypatch.setattr(V2Manager, "frozen", lambda self: False)
    with pytest.raises(KernelError, match=r"cgroup\.freeze"):
        mgr.freeze()


def test_kill_all(kernel: FakeKernel, mgr: V2Manager) -> None:
    mgr.kill_all(signal.SIGKILL)
    assert names(kernel) == [("cgroup.kill", "1")]
    kernel.writes.clear()
    mgr.kill_all(signal.SIGTERM)  # no process in the fake: only the freeze around the loop
    assert names(kernel) == [("cgroup.freeze", "1"), ("cgroup.freeze", "0")]


def test_apply_verifies(kernel: FakeKernel, mgr: V2Manager) -> None:
    kernel.set_own_cgroup("0::/c1\n", pid=77)
    mgr.apply(77)
    assert names(kernel) == [("cgroup.procs", "77")]
    kernel.set_own_cgroup("0::/elsewhere\n", pid=78)
    with pytest.raises(KernelError, match="/elsewhere"):
        mgr.apply(78)


def test_stats(mgr: V2Manager) -> None:
    assert mgr.stats() == cgroups.CgroupStats(
        cpu_usage_ns=1_500_000,
        cpu_user_ns=1_000_000,
        cpu_system_ns=500_000,
        cpu_throttled_periods=2,
        memory_current=M,
        memory_peak=2 * M,
        memory_limit=None,
        memory_swap_current=4096,
        oom_kills=1,
        oom_events=2,
        pids_current=2,
        pids_peak=4,
        pids_limit=None,
        io_read_bytes=100,
        io_write_bytes=200,
    )


def test_destroy_and_round_trip(kernel: FakeKernel) -> None:
    m = manager(kernel, "/a/c1")
    m.create()
    restored = cgroups.load_manager(json.loads(json.dumps(m.to_dict())))
    assert isinstance(restored, V2Manager) and restored.to_dict() == m.to_dict()
    restored.destroy()
    assert not (kernel.v2_root / "a").exists()
    assert (kernel.v2_root / "cgroup.procs").exists()
    restored.destroy()


def test_root_override_without_layout(tmp_path: Path) -> None:
    # Usable directly against any tree, for the VM harness and fakes.
    (tmp_path / "x").mkdir()
    (tmp_path / "x/cgroup.freeze").write_text("0")
    m = V2Manager("/x", str(tmp_path))
    assert m.paths() == {"unified": str(tmp_path / "x")}
    assert not m.frozen()
