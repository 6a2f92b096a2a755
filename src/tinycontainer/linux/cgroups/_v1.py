"""The cgroup v1 driver: one directory per mounted controller hierarchy.

File names and formats: Documentation/admin-guide/cgroup-v1/{memory,cpusets,blkio-controller,
devices,freezer-subsystem,pids,hugetlb}.rst and Documentation/scheduler/sched-bwc.rst.
"""

from __future__ import annotations

import errno
import os
import time

from ... import oci
from ..._errors import KernelError, SpecError, UnsupportedError
from . import _fs
from . import _validate as V
from ._base import BaseManager
from ._layout import Hierarchy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._stats import CgroupStats

R = V.R
_UNLIMITED_V1 = 1 << 62  # v1 reports "no limit" as PAGE_COUNTER_MAX pages in bytes (~2**63)
_FREEZE_TIMEOUT = 5.0


class V1Manager(BaseManager):
    """Manages one cgroup in every v1 hierarchy.

    ``cgroups`` maps each controller to the cgroup's path from that hierarchy's root: the
    paths differ when the caller sits in different cgroups per hierarchy (this project's test
    machine: memory in /process_api/ID, the rest in /).
    """

    version = "v1"

    def __init__(
        self,
        cgroups: dict[str, str],
        hierarchies: dict[str, Hierarchy],
        *,
        created: list[str] | None = None,
        rootless: bool = False,
        proc: str = "/proc",
    ) -> None:
        missing = set(hierarchies) - set(cgroups)
        if missing:
            raise ValueError(f"no cgroup path for controllers {sorted(missing)}")
        self.cgroups = {c: cgroups[c] for c in hierarchies}
        super().__init__(_display(self.cgroups), created=created, rootless=rootless, proc=proc)
        self.hierarchies = dict(hierarchies)
        self._paths: dict[str, str] | None = None

    # -- bookkeeping
    def to_dict(self) -> dict[str, object]:
        return {
            "version": "v1",
            "hierarchies": {c: [h.mountpoint, h.root, self.cgroups[c]] for c, h in sorted(self.hierarchies.items())},
            "created": list(self._created),
            "rootless": self.rootless,
            "proc": self.proc,
        }

    @classmethod
    def from_dict(cls, saved: dict[str, object]) -> V1Manager:
        raw = saved["hierarchies"]
        if not isinstance(raw, dict):
            raise ValueError("saved v1 cgroup manager has no hierarchies")
        hierarchies: dict[str, Hierarchy] = {}
        cgroups: dict[str, str] = {}
        for controller, (mountpoint, root, cgroup) in raw.items():
            hierarchies[str(controller)] = Hierarchy(str(mountpoint), str(root))
            cgroups[str(controller)] = str(cgroup)
        created = saved.get("created") or []
        assert isinstance(created, list)
        return cls(
            cgroups,
            hierarchies,
            created=[str(p) for p in created],
            rootless=bool(saved.get("rootless", False)),
            proc=str(saved.get("proc", "/proc")),
        )

    def paths(self) -> dict[str, str]:
        # Worked out once: create asks for them several times (each a normpath per hierarchy).
        if self._paths is None:
            self._paths = {c: h.directory(self.cgroups[c]) for c, h in sorted(self.hierarchies.items())}
        return dict(self._paths)

    def _dir(self, controller: str) -> str | None:
        h = self.hierarchies.get(controller)
        return None if h is None else h.directory(self.cgroups[controller])

    def _need(self, controller: str, what: str) -> str:
        d = self._dir(controller)
        if d is None:
            raise UnsupportedError(f"{what} needs the v1 {controller} controller, which this host does not mount")
        return d

    # -- lifecycle
    def create(self) -> None:
        for controller, h in sorted(self.hierarchies.items()):
            try:
                made = self._mkdirs(h.mountpoint, h.directory(self.cgroups[controller]))
            except KernelError as exc:
                if self.rootless and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                    continue
                raise
            if controller == "cpuset":
                for path in made:
                    self._inherit_cpuset(path)

    @staticmethod
    def _inherit_cpuset(path: str) -> None:
        # A new v1 cpuset starts with empty cpus/mems and refuses tasks until both are set
        # (cgroup-v1/cpusets.rst); copy the parent's, as runc does, instead of relying on
        # cgroup.clone_children of a cgroup we do not own.
        parent = os.path.dirname(path)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not (_fs.read_optional(path, name) or "").strip():
                value = (_fs.read(parent, name)).strip()
                if value:
                    _fs.write(path, name, value)

    def apply(self, pid: int) -> None:
        for directory in self._directories():
            if self.rootless and not os.path.isdir(directory):
                continue
            self._write_procs(directory, pid)
        self.verify(pid)

    def self_attach_paths(self) -> list[str] | None:
        """The ``tasks`` file of each directory, for a process that moves itself in.

        A single-threaded process writing "0" to ``tasks`` moves itself without the global
        cgroup_threadgroup_rwsem (kernel/cgroup/cgroup.c, cgroup_procs_write_start: a lone
        current thread cannot change its thread group under us), so it skips the RCU grace
        period a cold write to ``cgroup.procs`` waits for (5-20 ms here; 0.3 ms this way for
        all hierarchies). The permission check uses the credentials of whoever opened the file
        (cgroup-v1.c, __cgroup1_procs_write), so files opened by the runtime work for a child
        in a new user namespace. None when rootless: the directories may not exist."""
        if self.rootless:
            return None
        return [os.path.join(d, "tasks") for d in self._directories()]

    def verify(self, pid: int) -> None:
        """Raise unless ``pid`` is in this cgroup in every hierarchy (/proc/PID/cgroup)."""
        v1, _ = self._membership(pid)
        wrong = [
            f"{c}:{v1.get(c)}"
            for c in sorted(self.hierarchies)
            if v1.get(c) != self.cgroups[c] and not (self.rootless and not os.path.isdir(self._dir(c) or ""))
        ]
        self._ensure_moved(pid, not wrong, f"pid {pid} is not in {self.cgroup}, but in {', '.join(wrong)}")

    def _process_dir(self) -> str:
        for controller in ("pids", "freezer", "memory", "cpu", "devices"):
            d = self._dir(controller)
            if d is not None:
                return d
        return next(iter(self.paths().values()))

    def kill_all(self, sig: int) -> None:
        if "freezer" not in self.hierarchies:
            # No freezer: signal in one pass; a process forked meanwhile may survive.
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    continue
            return
        super().kill_all(sig)

    # -- freezer
    def freeze(self) -> None:
        d = self._need("freezer", "pause")
        deadline = time.monotonic() + _FREEZE_TIMEOUT
        while True:
            # Re-writing FROZEN retries tasks that were busy (e.g. in vfork) on the last pass.
            _fs.write(d, "freezer.state", "FROZEN")
            state = _fs.read(d, "freezer.state").strip()
            if state == "FROZEN":
                return
            if time.monotonic() >= deadline:
                _fs.write(d, "freezer.state", "THAWED")
                raise KernelError(errno.ETIMEDOUT, "write", f"{d}/freezer.state", f"still {state}")
            time.sleep(0.01)

    def thaw(self) -> None:
        d = self._need("freezer", "resume")
        _fs.write(d, "freezer.state", "THAWED")

    def frozen(self) -> bool:
        d = self._dir("freezer")
        if d is None:
            return False
        return (_fs.read_optional(d, "freezer.state") or "").strip() == "FROZEN"

    # -- resources
    def set(self, resources: oci.Resources) -> None:
        if resources.unified:
            raise SpecError("raw cgroup v2 settings need a cgroup v2 host (this one is v1)", field=f"{R}.unified")
        writes: list[tuple[str, str, str]] = []  # (directory, file, data), validated before any write
        if resources.memory is not None:
            writes += self._memory(resources.memory)
        if resources.cpu is not None:
            writes += self._cpu(resources.cpu)
        if resources.pids is not None:
            value = V.limit(resources.pids.limit, f"{R}.pids.limit")
            if resources.pids.limit == 0:
                value = -1
            if value is not None:
                writes.append((self._need("pids", "pids.limit"), "pids.max", "max" if value == -1 else str(value)))
        if resources.block_io is not None:
            writes += self._blkio(resources.block_io)
        if resources.hugepage_limits:
            writes += self._hugetlb(resources.hugepage_limits)
        if resources.devices is not None:
            writes += self._devices(resources.devices)
        if writes and self.rootless and not all(os.path.isdir(d) for d, _, _ in writes):
            raise UnsupportedError("resource limits need writable cgroups, which this rootless v1 host does not give")
        # Consecutive writes to one file (the device rules) share an open file.
        i = 0
        while i < len(writes):
            directory, name, _ = writes[i]
            j = i + 1
            while j < len(writes) and writes[j][0] == directory and writes[j][1] == name:
                j += 1
            _fs.write_lines(directory, name, [data for _, _, data in writes[i:j]])
            i = j

    def _memory(self, m: oci.Memory) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        mem, swap = V.memory_and_swap(m)
        reservation = V.limit(m.reservation, f"{R}.memory.reservation")
        swappiness = V.in_range(m.swappiness, f"{R}.memory.swappiness", 0, 100, zero_unset=False)
        # kernel: the kmem limit is deprecated; kernels since 5.16 accept the write and ignore it
        # (the file stays at "unlimited"), so it is accepted and ignored, as runc does.
        # kernelTCP still works on v1 (memory.kmem.tcp.limit_in_bytes), so it is written when
        # the kernel has the file, as runc and crun do.
        kernel_tcp = V.limit(m.kernel_tcp, f"{R}.memory.kernelTCP")
        if (
            mem is None
            and swap is None
            and reservation is None
            and swappiness is None
            and kernel_tcp is None
            and not m.disable_oom_killer
        ):
            return out
        d = self._need("memory", "linux.resources.memory")
        if swap is not None and not _fs.exists(d, "memory.memsw.limit_in_bytes"):
            if swap != -1:
                raise UnsupportedError("memory.swap needs swap accounting (memory.memsw.*), which this kernel lacks")
            swap = None
        limit_w = None if mem is None else (d, "memory.limit_in_bytes", str(mem))
        swap_w = None if swap is None else (d, "memory.memsw.limit_in_bytes", str(swap))
        if limit_w and swap_w:
            # The kernel keeps limit <= memsw limit at every step: raise memsw first when
            # growing, lower the limit first when shrinking.
            current = _fs.parse_int(_fs.read_optional(d, "memory.limit_in_bytes"))
            if swap == -1 or (current is not None and swap is not None and current < swap):
                out += [swap_w, limit_w]
            else:
                out += [limit_w, swap_w]
        else:
            out += [w for w in (limit_w, swap_w) if w]
        if reservation is not None:
            out.append((d, "memory.soft_limit_in_bytes", str(reservation)))
        if swappiness is not None:
            out.append((d, "memory.swappiness", str(swappiness)))
        if m.disable_oom_killer:
            out.append((d, "memory.oom_control", "1"))
        if kernel_tcp is not None and _fs.exists(d, "memory.kmem.tcp.limit_in_bytes"):
            out.append((d, "memory.kmem.tcp.limit_in_bytes", str(kernel_tcp)))
        return out

    def _cpu(self, c: oci.CPU) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        f = f"{R}.cpu"
        shares = V.in_range(c.shares, f"{f}.shares", 2, 262144)
        period = V.in_range(c.period, f"{f}.period", 1000, 1_000_000)
        quota = V.limit(c.quota, f"{f}.quota", minimum=1000)
        burst = V.in_range(c.burst, f"{f}.burst", 0, 1 << 40, zero_unset=False)
        rt_period = V.in_range(c.realtime_period, f"{f}.realtimePeriod", 1, 1 << 40)
        rt_runtime = V.limit(c.realtime_runtime, f"{f}.realtimeRuntime", minimum=1)
        idle = V.in_range(c.idle, f"{f}.idle", 0, 1, zero_unset=False)
        cpus = V.cpu_list(c.cpus, f"{f}.cpus")
        mems = V.cpu_list(c.mems, f"{f}.mems")
        cpu_values = (shares, period, quota, burst, rt_period, rt_runtime, idle)
        if any(v is not None for v in cpu_values):
            d = self._need("cpu", "linux.resources.cpu")
            if shares is not None:
                out.append((d, "cpu.shares", str(shares)))
            if period is not None:
                out.append((d, "cpu.cfs_period_us", str(period)))
            if quota is not None:
                out.append((d, "cpu.cfs_quota_us", str(quota)))
            if burst is not None:
                out.append((d, "cpu.cfs_burst_us", str(burst)))
            # rt_period before rt_runtime: the runtime must fit in the period.
            if rt_period is not None:
                out.append((d, "cpu.rt_period_us", str(rt_period)))
            if rt_runtime is not None:
                out.append((d, "cpu.rt_runtime_us", str(rt_runtime)))
            if idle is not None:
                out.append((d, "cpu.idle", str(idle)))
        if cpus is not None or mems is not None:
            d = self._need("cpuset", "linux.resources.cpu.cpus/mems")
            if cpus is not None:
                out.append((d, "cpuset.cpus", cpus))
            if mems is not None:
                out.append((d, "cpuset.mems", mems))
        return out

    def _blkio(self, b: oci.BlockIO) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        f = f"{R}.blockIO"
        weight = V.in_range(b.weight, f"{f}.weight", 10, 1000)
        leaf = V.in_range(b.leaf_weight, f"{f}.leafWeight", 10, 1000)
        devices = []
        for i, wd in enumerate(b.weight_device or []):
            where = f"{f}.weightDevice[{i}]"
            number = V.device_number(wd.major, wd.minor, where)
            devices.append(
                (
                    number,
                    V.in_range(wd.weight, f"{where}.weight", 10, 1000),
                    V.in_range(wd.leaf_weight, f"{where}.leafWeight", 10, 1000),
                )
            )
        throttles = []
        for attr, json_name, suffix, _key in V.THROTTLES:
            for i, td in enumerate(getattr(b, attr) or []):
                where = f"{f}.{json_name}[{i}]"
                number = V.device_number(td.major, td.minor, where)
                throttles.append((f"blkio.throttle.{suffix}", f"{number} {V.rate(td.rate, where)}"))
        if weight is None and leaf is None and not devices and not throttles:
            return out
        d = self._need("blkio", "linux.resources.blockIO")
        # With the BFQ scheduler the proportional weights live in blkio.bfq.*; CFQ's
        # blkio.weight is gone from current kernels (runc prefers bfq for the same reason).
        prefix = "blkio.bfq." if _fs.exists(d, "blkio.bfq.weight") else "blkio."
        wants_weight = weight is not None or any(w is not None for _, w, _ in devices)
        if wants_weight and not _fs.exists(d, f"{prefix}weight"):
            raise UnsupportedError("blockIO weights need an I/O scheduler with weights (BFQ); this host has none")
        if weight is not None:
            out.append((d, f"{prefix}weight", str(weight)))
        if leaf is not None:
            out.append((d, "blkio.leaf_weight", str(leaf)))
        for number, w, lw in devices:
            if w is not None:
                out.append((d, f"{prefix}weight_device", f"{number} {w}"))
            if lw is not None:
                out.append((d, "blkio.leaf_weight_device", f"{number} {lw}"))
        out += [(d, name, data) for name, data in throttles]
        return out

    def _hugetlb(self, limits: list[oci.HugepageLimit]) -> list[tuple[str, str, str]]:
        out = []
        d = self._dir("hugetlb")
        for i, hl in enumerate(limits):
            where = f"{R}.hugepageLimits[{i}]"
            size = V.page_size(hl.page_size, f"{where}.pageSize")
            value = V.limit(hl.limit, f"{where}.limit")
            if d is None:
                raise UnsupportedError(
                    "hugepageLimits need the cgroup v1 hugetlb controller, which this host does not mount"
                )
            if not _fs.exists(d, f"hugetlb.{size}.limit_in_bytes") and os.path.isdir(d):
                raise SpecError(f"this host has no {size} huge pages", field=f"{where}.pageSize")
            out.append((d, f"hugetlb.{size}.limit_in_bytes", str(-1 if value is None else value)))
        return out

    def _devices(self, rules: list[oci.DeviceRule]) -> list[tuple[str, str, str]]:
        from . import _devices  # only create and update write rules (see __init__.__getattr__)

        normalized = [_devices.normalize(rule, i) for i, rule in enumerate(rules)]
        d = self._need("devices", "linux.resources.devices")
        out = []
        for allow, kind, major, minor, access in normalized:
            name = "devices.allow" if allow else "devices.deny"
            out += [(d, name, line) for line in _devices.v1_lines(kind, major, minor, access)]
        return out

    # -- stats
    def stats(self) -> CgroupStats:
        # Here, not at the top: its record class costs every create ~0.2 ms to define.
        from ._stats import CgroupStats

        def read(controller: str, name: str) -> str | None:
            d = self._dir(controller)
            return None if d is None else _fs.read_optional(d, name)

        def num(controller: str, name: str) -> int | None:
            return _fs.parse_int(read(controller, name))

        usage = num("cpuacct", "cpuacct.usage")
        user = num("cpuacct", "cpuacct.usage_user")
        system = num("cpuacct", "cpuacct.usage_sys")
        if user is None or system is None:
            # Older kernels: cpuacct.stat in USER_HZ ticks.
            ticks = _fs.parse_flat_keyed(read("cpuacct", "cpuacct.stat"))
            hz = os.sysconf("SC_CLK_TCK")
            if "user" in ticks:
                user = ticks["user"] * 1_000_000_000 // hz
            if "system" in ticks:
                system = ticks["system"] * 1_000_000_000 // hz
        cpu_stat = _fs.parse_flat_keyed(read("cpu", "cpu.stat"))
        memory_limit = num("memory", "memory.limit_in_bytes")
        if memory_limit is not None and memory_limit >= _UNLIMITED_V1:
            memory_limit = None
        usage_mem = num("memory", "memory.usage_in_bytes")
        memsw = num("memory", "memory.memsw.usage_in_bytes")
        oom = _fs.parse_flat_keyed(read("memory", "memory.oom_control"))
        pids_limit = num("pids", "pids.max")
        io_read, io_write = _blkio_bytes(read("blkio", "blkio.throttle.io_service_bytes_recursive"))
        return CgroupStats(
            cpu_usage_ns=usage,
            cpu_user_ns=user,
            cpu_system_ns=system,
            cpu_throttled_periods=cpu_stat.get("nr_throttled"),
            memory_current=usage_mem,
            memory_peak=num("memory", "memory.max_usage_in_bytes"),
            memory_limit=memory_limit,
            memory_swap_current=None if memsw is None or usage_mem is None else max(0, memsw - usage_mem),
            oom_kills=oom.get("oom_kill"),
            oom_events=None,
            pids_current=num("pids", "pids.current"),
            pids_peak=num("pids", "pids.peak"),
            pids_limit=pids_limit,
            io_read_bytes=io_read,
            io_write_bytes=io_write,
        )


def _blkio_bytes(text: str | None) -> tuple[int | None, int | None]:
    if text is None:
        return None, None
    read = write = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            if parts[1] == "Read":
                read += int(parts[2])
            elif parts[1] == "Write":
                write += int(parts[2])
    return read, write


def _display(cgroups: dict[str, str]) -> str:
    """One name for messages: the common path, or controller:path pairs when they differ."""
    distinct = sorted(set(cgroups.values()))
    if len(distinct) == 1:
        return distinct[0]
    return ",".join(f"{c}:{p}" for c, p in sorted(cgroups.items()))
