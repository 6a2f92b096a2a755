from __future__ import annotations

import errno
import json
import signal
from pathlib import Path

import pytest
from tests.unit.cgroups._fakefs import FakeKernel

from tinycontainer import oci
from tinycontainer._errors import KernelError, SpecError, UnsupportedError
from tinycontainer.linux import cgroups
from tinycontainer.linux.cgroups import V1Manager

OWN = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n3:cpuset:/\n1:cpu:/\n0::/\n"
M = 1 << 20
# /proc/PID/cgroup of a process in the container's cgroup of every hierarchy.
IN_EVERY_HIERARCHY = (
    "8:pids:/tcontainer-c1\n4:memory:/process_api/abc/tcontainer-c1\n3:cpuset:/tcontainer-c1\n"
    "1:cpu:/tcontainer-c1\n2:cpuacct:/tcontainer-c1\n5:devices:/tcontainer-c1\n6:freezer:/tcontainer-c1\n"
    "7:blkio:/tcontainer-c1\n"
)


@pytest.fixture
def mgr(kernel: FakeKernel) -> V1Manager:
    kernel.set_own_cgroup(OWN)
    m = cgroups.create_manager(None, "c1", layout=kernel.v1_layout(), proc=str(kernel.proc))
    assert isinstance(m, V1Manager)
    m.create()
    kernel.writes.clear()
    return m


def d(kernel: FakeKernel, controller: str, cgroup: str = "/tcontainer-c1") -> Path:
    path: Path = kernel.v1_root / controller / cgroup.lstrip("/")
    return path


def test_default_paths_follow_the_callers_cgroup_per_hierarchy(kernel: FakeKernel, mgr: V1Manager) -> None:
    paths = mgr.paths()
    assert paths["memory"] == str(kernel.v1_root / "memory/process_api/abc/tcontainer-c1")
    assert paths["pids"] == str(kernel.v1_root / "pids/tcontainer-c1")
    # Controllers missing from /proc/self/cgroup count as the root cgroup.
    assert paths["blkio"] == str(kernel.v1_root / "blkio/tcontainer-c1")
    assert all(Path(p).is_dir() for p in paths.values())


def test_create_copies_cpuset_from_the_parent(kernel: FakeKernel) -> None:
    kernel.set_own_cgroup(OWN)
    m = cgroups.create_manager("a/b", "c1", layout=kernel.v1_layout(), proc=str(kernel.proc))
    m.create()
    for path in (d(kernel, "cpuset", "/a"), d(kernel, "cpuset", "/a/b")):
        assert (path / "cpuset.cpus").read_text() == "0-1"
        assert (path / "cpuset.mems").read_text() == "0"
    # Parents are filled before children (a v1 cpuset refuses cpus its parent lacks).
    order = [p for p, _ in kernel.writes if p.endswith("cpuset.cpus")]
    assert order == [str(d(kernel, "cpuset", "/a") / "cpuset.cpus"), str(d(kernel, "cpuset", "/a/b") / "cpuset.cpus")]


def test_memory_limit_then_swap_when_shrinking(kernel: FakeKernel, mgr: V1Manager) -> None:
    mgr.set(oci.Resources(memory=oci.Memory(limit=50 * M, swap=100 * M, reservation=10 * M, swappiness=10)))
    mem = d(kernel, "memory", "/process_api/abc/tcontainer-c1")
    assert kernel.writes == [
        (str(mem / "memory.limit_in_bytes"), str(50 * M)),
        (str(mem / "memory.memsw.limit_in_bytes"), str(100 * M)),
        (str(mem / "memory.soft_limit_in_bytes"), str(10 * M)),
        (str(mem / "memory.swappiness"), "10"),
    ]
    assert (mem / "memory.limit_in_bytes").read_text() == str(50 * M)


def test_memory_swap_first_when_growing_and_unlimited(kernel: FakeKernel, mgr: V1Manager) -> None:
    mem = d(kernel, "memory", "/process_api/abc/tcontainer-c1")
    (mem / "memory.limit_in_bytes").write_text(str(50 * M))
    mgr.set(oci.Resources(memory=oci.Memory(limit=100 * M, swap=200 * M)))
    assert [Path(p).name for p, _ in kernel.writes] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    kernel.writes.clear()
    mgr.set(oci.Resources(memory=oci.Memory(limit=-1)))  # unlimited memory means unlimited swap too
    assert kernel.writes == [
        (str(mem / "memory.memsw.limit_in_bytes"), "-1"),
        (str(mem / "memory.limit_in_bytes"), "-1"),
    ]


def test_memory_oom_killer_and_ignored_kernel_memory(kernel: FakeKernel, mgr: V1Manager) -> None:
    mgr.set(oci.Resources(memory=oci.Memory(disable_oom_killer=True, kernel=1 << 30, kernel_tcp=1 << 20)))
    assert [(Path(p).name, v) for p, v in kernel.writes] == [("memory.oom_control", "1")]


def test_cpu(kernel: FakeKernel, mgr: V1Manager) -> None:
    mgr.set(
        oci.Resources(
            cpu=oci.CPU(shares=512, quota=50000, period=100000, burst=1000, idle=1, cpus="0", mems="0"),
        )
    )
    cpu, cpuset = d(kernel, "cpu"), d(kernel, "cpuset")
    assert kernel.writes == [
        (str(cpu / "cpu.shares"), "512"),
        (str(cpu / "cpu.cfs_period_us"), "100000"),
        (str(cpu / "cpu.cfs_quota_us"), "50000"),
        (str(cpu / "cpu.cfs_burst_us"), "1000"),
        (str(cpu / "cpu.idle"), "1"),
        (str(cpuset / "cpuset.cpus"), "0"),
        (str(cpuset / "cpuset.mems"), "0"),
    ]


def test_cpu_realtime_period_before_runtime(kernel: FakeKernel, mgr: V1Manager) -> None:
    mgr.set(oci.Resources(cpu=oci.CPU(realtime_runtime=5000, realtime_period=100000)))
    assert [(Path(p).name, v) for p, v in kernel.writes] == [
        ("cpu.rt_period_us", "100000"),
        ("cpu.rt_runtime_us", "5000"),
    ]


@pytest.mark.parametrize(("limit", "written"), [(-1, "max"), (0, "max"), (100, "100")])
def test_pids(kernel: FakeKernel, mgr: V1Manager, limit: int, written: str) -> None:
    mgr.set(oci.Resources(pids=oci.Pids(limit=limit)))
    assert kernel.writes == [(str(d(kernel, "pids") / "pids.max"), written)]


def test_blkio(kernel: FakeKernel, mgr: V1Manager) -> None:
    mgr.set(
        oci.Resources(
            block_io=oci.BlockIO(
                weight=500,
                leaf_weight=300,
                weight_device=[oci.WeightDevice(major=8, minor=0, weight=600, leaf_weight=200)],
                throttle_read_bps_device=[oci.ThrottleDevice(major=8, minor=0, rate=1048576)],
                throttle_write_iops_device=[oci.ThrottleDevice(major=8, minor=16, rate=100)],
            )
        )
    )
    assert [(Path(p).name, v) for p, v in kernel.writes] == [
        ("blkio.weight", "500"),
        ("blkio.leaf_weight", "300"),
        ("blkio.weight_device", "8:0 600"),
        ("blkio.leaf_weight_device", "8:0 200"),
        ("blkio.throttle.read_bps_device", "8:0 1048576"),
        ("blkio.throttle.write_iops_device", "8:16 100"),
    ]


def test_blkio_prefers_bfq_and_says_when_no_weights(kernel: FakeKernel, mgr: V1Manager) -> None:
    blkio = d(kernel, "blkio")
    (blkio / "blkio.bfq.weight").write_text("100")
    mgr.set(oci.Resources(block_io=oci.BlockIO(weight=200)))
    assert kernel.writes == [(str(blkio / "blkio.bfq.weight"), "200")]
    (blkio / "blkio.bfq.weight").unlink()
    (blkio / "blkio.weight").unlink()
    with pytest.raises(UnsupportedError, match="BFQ"):
        mgr.set(oci.Resources(block_io=oci.BlockIO(weight=200)))


def test_devices(kernel: FakeKernel, mgr: V1Manager) -> None:
    rules = [oci.DeviceRule(allow=False, access="rwm"), *cgroups.DEFAULT_ALLOWED_DEVICES]
    rules.append(oci.DeviceRule(allow=False, type="a", major=1, minor=-1, access="w"))
    mgr.set(oci.Resources(devices=rules))
    devices = d(kernel, "devices")
    lines = [(Path(p).name, v) for p, v in kernel.writes]
    assert lines[0] == ("devices.deny", "a *:* rwm")
    assert ("devices.allow", "c *:* m") in lines
    assert ("devices.allow", "b *:* m") in lines
    assert ("devices.allow", "c 1:3 rwm") in lines
    assert ("devices.allow", "c 136:* rwm") in lines
    assert ("devices.allow", "c 10:200 rwm") in lines
    # "a" with a narrower scope is spelt per type: the kernel ignores what follows "a".
    assert lines[-2:] == [("devices.deny", "b 1:* w"), ("devices.deny", "c 1:* w")]
    assert all(p.startswith(str(devices)) for p, _ in kernel.writes)
    assert len(cgroups.DEFAULT_ALLOWED_DEVICES) == 11


def test_hugetlb_without_controller_is_a_clear_error(kernel: FakeKernel, mgr: V1Manager) -> None:
    with pytest.raises(UnsupportedError, match="hugetlb"):
        mgr.set(oci.Resources(hugepage_limits=[oci.HugepageLimit(page_size="2MB", limit=4 * M)]))


def test_hugetlb(kernel: FakeKernel) -> None:
    kernel.set_own_cgroup(OWN)
    layout = kernel.v1_layout()
    (kernel.v1_root / "hugetlb").mkdir()
    layout.v1["hugetlb"] = cgroups.Hierarchy(str(kernel.v1_root / "hugetlb"), "/", ("hugetlb",))
    m = cgroups.create_manager(None, "c1", layout=layout, proc=str(kernel.proc))
    (kernel.v1_root / "hugetlb/tcontainer-c1").mkdir()
    (kernel.v1_root / "hugetlb/tcontainer-c1/hugetlb.2MB.limit_in_bytes").write_text("-1")
    m.set(oci.Resources(hugepage_limits=[oci.HugepageLimit(page_size="2MB", limit=4 * M)]))
    assert kernel.writes == [(str(kernel.v1_root / "hugetlb/tcontainer-c1/hugetlb.2MB.limit_in_bytes"), str(4 * M))]
    with pytest.raises(SpecError, match="1GB"):
        m.set(oci.Resources(hugepage_limits=[oci.HugepageLimit(page_size="1GB", limit=1 << 30)]))
    with pytest.raises(SpecError) as info:
        m.set(oci.Resources(hugepage_limits=[oci.HugepageLimit(page_size="2 MB", limit=1)]))
    assert info.value.field == "linux.resources.hugepageLimits[0].pageSize"


def test_unified_needs_v2(mgr: V1Manager) -> None:
    with pytest.raises(SpecError) as info:
        mgr.set(oci.Resources(unified={"memory.high": "1G"}))
    assert info.value.field == "linux.resources.unified"


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        (oci.Resources(cpu=oci.CPU(shares=1)), "linux.resources.cpu.shares"),
        (oci.Resources(cpu=oci.CPU(quota=-5)), "linux.resources.cpu.quota"),
        (oci.Resources(cpu=oci.CPU(period=10)), "linux.resources.cpu.period"),
        (oci.Resources(cpu=oci.CPU(cpus="0-a")), "linux.resources.cpu.cpus"),
        (oci.Resources(memory=oci.Memory(swappiness=101)), "linux.resources.memory.swappiness"),
        (oci.Resources(memory=oci.Memory(limit=100, swap=50)), "linux.resources.memory.swap"),
        (oci.Resources(memory=oci.Memory(limit=-7)), "linux.resources.memory.limit"),
        (oci.Resources(pids=oci.Pids(limit=-2)), "linux.resources.pids.limit"),
        (oci.Resources(block_io=oci.BlockIO(weight=5)), "linux.resources.blockIO.weight"),
        (
            oci.Resources(
                block_io=oci.BlockIO(throttle_read_bps_device=[oci.ThrottleDevice(major=8, minor=0, rate=-1)])
            ),
            "linux.resources.blockIO.throttleReadBpsDevice[0].rate",
        ),
        (oci.Resources(devices=[oci.DeviceRule(allow=True, type="x")]), "linux.resources.devices[0].type"),
        (oci.Resources(devices=[oci.DeviceRule(allow=True, access="rwx")]), "linux.resources.devices[0].access"),
        (oci.Resources(devices=[oci.DeviceRule(allow=True, major=-3)]), "linux.resources.devices[0].major"),
    ],
)
def test_bad_values_name_the_field_and_write_nothing(
    kernel: FakeKernel, mgr: V1Manager, resources: oci.Resources, field: str
) -> None:
    resources.pids = resources.pids or oci.Pids(limit=5)  # a valid value that must not be written
    with pytest.raises(SpecError) as info:
        mgr.set(resources)
    assert info.value.field == field
    assert kernel.writes == []


def test_write_errors_name_path_and_data(kernel: FakeKernel, mgr: V1Manager) -> None:
    target = d(kernel, "pids") / "pids.max"
    kernel.fail[str(target)] = errno.EINVAL
    with pytest.raises(KernelError) as info:
        mgr.set(oci.Resources(pids=oci.Pids(limit=5)))
    assert info.value.errno == errno.EINVAL
    assert str(target) in str(info.value) and "'5'" in str(info.value)


def test_misspelt_file_fails_loudly(kernel: FakeKernel, mgr: V1Manager) -> None:
    (d(kernel, "cpu") / "cpu.cfs_burst_us").unlink()
    with pytest.raises(KernelError) as info:
        mgr.set(oci.Resources(cpu=oci.CPU(burst=10)))
    assert info.value.errno == errno.ENOENT
    assert not (d(kernel, "cpu") / "cpu.cfs_burst_us").exists()


def test_apply_writes_every_hierarchy_and_verifies(kernel: FakeKernel, mgr: V1Manager) -> None:
    kernel.set_own_cgroup(IN_EVERY_HIERARCHY, pid=4242)
    mgr.apply(4242)
    assert sorted(p for p, v in kernel.writes if v == "4242") == sorted(
        str(Path(p) / "cgroup.procs") for p in mgr.paths().values()
    )
    kernel.set_own_cgroup("8:pids:/\n4:memory:/process_api/abc/tcontainer-c1\n", pid=4243)
    with pytest.raises(KernelError, match="pids:/"):
        mgr.apply(4243)


def test_freeze_thaw(kernel: FakeKernel, mgr: V1Manager) -> None:
    assert not mgr.frozen()
    mgr.freeze()
    assert mgr.frozen()
    assert (d(kernel, "freezer") / "freezer.state").read_text() == "FROZEN"
    mgr.thaw()
    assert not mgr.frozen()


def test_kill_all_freezes_signals_and_thaws(kernel: FakeKernel, mgr: V1Manager) -> None:
    (d(kernel, "pids") / "cgroup.procs").write_text("")  # empty: nothing to signal
    mgr.kill_all(signal.SIGTERM)
    assert [v for p, v in kernel.writes if p.endswith("freezer.state")] == ["FROZEN", "THAWED"]


def test_pids_include_sub_cgroups(kernel: FakeKernel, mgr: V1Manager) -> None:
    pids = d(kernel, "pids")
    (pids / "cgroup.procs").write_text("10\n12\n")
    (pids / "sub").mkdir()
    (pids / "sub/cgroup.procs").write_text("11\n")
    assert mgr.pids() == [10, 11, 12]


def test_stats(kernel: FakeKernel, mgr: V1Manager) -> None:
    stats = mgr.stats()
    assert stats == cgroups.CgroupStats(
        cpu_usage_ns=123456789,
        cpu_user_ns=100000000,
        cpu_system_ns=23456789,
        cpu_throttled_periods=3,
        memory_current=4096000,
        memory_peak=8192000,
        memory_limit=None,  # the kernel's "unlimited"
        memory_swap_current=1000000,
        oom_kills=2,
        oom_events=None,
        pids_current=3,
        pids_peak=7,
        pids_limit=None,
        io_read_bytes=1005,
        io_write_bytes=2000,
    )


def test_destroy_removes_only_what_it_created(kernel: FakeKernel) -> None:
    kernel.set_own_cgroup(OWN)
    layout = kernel.v1_layout()
    kernel.mkcgroup(kernel.v1_root / "pids/shared")  # existed before: not ours
    m = cgroups.create_manager("/shared/mine/c1", "c1", layout=layout, proc=str(kernel.proc))
    m.create()
    other = kernel.v1_root / "memory/shared/mine/other"  # another container's, made later
    kernel.mkcgroup(other)
    saved = json.loads(json.dumps(m.to_dict()))
    restored = cgroups.load_manager(saved)
    assert restored.paths() == m.paths()
    restored.destroy()
    for path in m.paths().values():
        assert not Path(path).exists()
    assert (kernel.v1_root / "pids/shared").is_dir()
    assert not (kernel.v1_root / "pids/shared/mine").exists()
    assert other.is_dir()  # a shared ancestor we made stays while it has someone else's child
    restored.destroy()  # idempotent


def test_round_trip(kernel: FakeKernel, mgr: V1Manager) -> None:
    saved = mgr.to_dict()
    again = cgroups.load_manager(json.loads(json.dumps(saved)))
    assert again.version == "v1"
    assert again.to_dict() == saved


def test_destroy_from_a_state_saved_before_create_removes_the_leaf(kernel: FakeKernel) -> None:
    kernel.set_own_cgroup(OWN)
    m = cgroups.create_manager(None, "c1", layout=kernel.v1_layout(), proc=str(kernel.proc))
    saved = json.loads(json.dumps(m.to_dict()))
    m.create()
    cgroups.load_manager(saved).destroy()
    for path in m.paths().values():
        assert not Path(path).exists()
    assert (kernel.v1_root / "memory/process_api/abc").is_dir()


def test_kill_all_without_freezer(kernel: FakeKernel) -> None:
    kernel.set_own_cgroup(OWN)
    m = cgroups.create_manager(None, "c1", layout=kernel.v1_layout(("pids", "memory")), proc=str(kernel.proc))
    m.create()
    kernel.writes.clear()
    m.kill_all(signal.SIGTERM)  # empty cgroup: nothing to signal, and no freezer to write
    assert kernel.writes == []
    with pytest.raises(UnsupportedError, match="freezer"):
        m.freeze()


def test_self_attach_paths_name_each_tasks_file_once(kernel: FakeKernel, mgr: V1Manager) -> None:
    paths = mgr.self_attach_paths()
    assert paths == [str(Path(p) / "tasks") for p in sorted(set(mgr.paths().values()))]
    assert not kernel.writes  # naming them writes nothing
    rootless = cgroups.create_manager(None, "c2", layout=kernel.v1_layout(), proc=str(kernel.proc), rootless=True)
    assert rootless.self_attach_paths() is None  # its directories may not exist: the parent moves it


def test_verify_checks_membership_without_writing(kernel: FakeKernel, mgr: V1Manager) -> None:
    kernel.set_own_cgroup(IN_EVERY_HIERARCHY, pid=4244)
    mgr.verify(4244)
    assert not kernel.writes
    kernel.set_own_cgroup("8:pids:/tcontainer-c1\n4:memory:/process_api/abc\n", pid=4245)
    with pytest.raises(KernelError, match="memory:/process_api/abc"):
        mgr.verify(4245)


def test_create_tries_the_container_cgroup_first(kernel: FakeKernel, monkeypatch: pytest.MonkeyPatch) -> None:
    from tinycontainer.linux.cgroups import _fs

    kernel.set_own_cgroup(OWN)
    layout = kernel.v1_layout(("pids", "memory"))
    kernel.mkcgroup(kernel.v1_root / "pids/a/b")  # pids: only the leaf is missing
    tried: list[str] = []
    real_mkdir = _fs.mkdir

    def mkdir(path: str) -> bool:
        tried.append(path)
        return real_mkdir(path)

    monkeypatch.setattr(_fs, "mkdir", mkdir)
    m = cgroups.create_manager("/a/b/c1", "c1", layout=layout, proc=str(kernel.proc))
    m.create()
    pids, memory = kernel.v1_root / "pids/a", kernel.v1_root / "memory/a"
    # one mkdir where the parents exist; where they do not, the leaf, then top-down
    assert tried == [
        str(memory / "b/c1"),
        str(memory / "b"),
        str(memory),
        str(memory / "b"),
        str(memory / "b/c1"),
        str(pids / "b/c1"),
    ]
    created = m.to_dict()["created"]
    assert created == [str(memory), str(memory / "b"), str(memory / "b/c1"), str(pids / "b/c1")]
