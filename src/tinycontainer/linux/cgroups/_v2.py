"""The cgroup v2 driver: one directory in the unified hierarchy.

File names and formats follow Documentation/admin-guide/cgroup-v2.rst: memory.{max,low,
swap.max,current,peak,swap.current,events}, cpu.{weight,max,max.burst,idle,stat},
cpuset.{cpus,mems}, io.{weight,bfq.weight,max,stat}, pids.{max,current,peak},
hugetlb.<size>.max, cgroup.{procs,freeze,events,kill,controllers,subtree_control}.
Files are opened without O_CREAT, so a wrong name fails with ENOENT instead of passing.
v2 has no devices.* files: device rules become a BPF program (see _v2_devices).
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
    import signal

    from ._stats import CgroupStats
else:
    # The C module under signal.py: same functions and constants, without the IntEnum
    # wrappers whose import (enum, functools) costs every runtime command ~3 ms.
    import _signal as signal

R = V.R
_FREEZE_TIMEOUT = 5.0
# Controllers a container may use, enabled one per write: a multi-controller write to
# cgroup.subtree_control fails entirely when one of them is unavailable (measured).
WANTED_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids", "hugetlb", "misc", "rdma")
_KEY_HEAD = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
_KEY_PART = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _is_unified_key(key: str) -> bool:
    """``controller.file[.more]``, e.g. ``memory.high`` (string tests: re costs ~3 ms to import)."""
    head, *parts = key.split(".")
    return (
        bool(parts) and head[:1].isalpha() and head[:1].islower() and _KEY_HEAD.issuperset(head)
        and all(part and _KEY_PART.issuperset(part) for part in parts)
    )  # fmt: skip


# cgroup.* core files that are limits; the others move processes, change the tree or its
# type, and belong to the runtime, not to a config.
_UNIFIED_CORE_ALLOWED = frozenset({"cgroup.max.depth", "cgroup.max.descendants"})


class V2Manager(BaseManager):
    """Manages ``cgroup`` (a path from the hierarchy's root) in the cgroup2 mount at ``root``.

    ``root`` may be any directory laid out like cgroupfs (unit tests use a fake tree).
    ``enable_parent_controllers`` also enables controllers in existing ancestors (as runc
    does); by default only the ancestors this manager creates are written.
    """

    version = "v2"

    def __init__(
        self,
        cgroup: str,
        root: str = "/sys/fs/cgroup",
        *,
        mount_root: str = "/",
        created: list[str] | None = None,
        rootless: bool = False,
        proc: str = "/proc",
        enable_parent_controllers: bool = False,
    ) -> None:
        super().__init__(cgroup, created=created, rootless=rootless, proc=proc)
        self.hierarchy = Hierarchy(root, mount_root)
        self.root = root
        self.enable_parent_controllers = enable_parent_controllers
        self.dir = self.hierarchy.directory(cgroup)

    def to_dict(self) -> dict[str, object]:
        return {
            "version": "v2",
            "cgroup": self.cgroup,
            "root": self.root,
            "mount_root": self.hierarchy.root,
            "created": list(self._created),
            "rootless": self.rootless,
            "proc": self.proc,
            "enable_parent_controllers": self.enable_parent_controllers,
        }

    @classmethod
    def from_dict(cls, saved: dict[str, object]) -> V2Manager:
        created = saved.get("created") or []
        assert isinstance(created, list)
        return cls(
            str(saved["cgroup"]),
            str(saved["root"]),
            mount_root=str(saved.get("mount_root", "/")),
            created=[str(p) for p in created],
            rootless=bool(saved.get("rootless", False)),
            proc=str(saved.get("proc", "/proc")),
            enable_parent_controllers=bool(saved.get("enable_parent_controllers", False)),
        )

    def paths(self) -> dict[str, str]:
        return {"unified": self.dir}

    def _process_dir(self) -> str:
        return self.dir

    # -- lifecycle
    def create(self) -> None:
        chain = self._chain(self.root, self.dir)
        if self.enable_parent_controllers:
            self._enable_controllers(self.root)
        # Top-down, each directory enabled before its child is made: a cgroup's
        # cgroup.controllers is its parent's subtree_control.
        for path in chain:
            try:
                made = _fs.mkdir(path)
            except KernelError as exc:
                if self.rootless and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                    return
                raise
            if made:
                self._created.append(path)
            if path != self.dir and (made or self.enable_parent_controllers):
                self._enable_controllers(path)

    def _enable_controllers(self, directory: str) -> None:
        available = (_fs.read_optional(directory, "cgroup.controllers") or "").split()
        enabled = (_fs.read_optional(directory, "cgroup.subtree_control") or "").split()
        for controller in WANTED_CONTROLLERS:
            if controller in available and controller not in enabled:
                try:
                    _fs.write(directory, "cgroup.subtree_control", f"+{controller}")
                except KernelError:
                    # Best effort, as runc: EBUSY (processes in a non-root parent, the "no
                    # internal process" rule) or EOPNOTSUPP (threaded) leave it off; set()
                    # then fails loudly if a limit needs the missing controller.
                    continue

    def apply(self, pid: int) -> None:
        if self.rootless and not os.path.isdir(self.dir):
            return
        self._write_procs(self.dir, pid)
        self.verify(pid)

    def self_attach_paths(self) -> list[str] | None:
        # cgroup2 moves a process between domain cgroups only through cgroup.procs, which
        # always takes cgroup_threadgroup_rwsem (cgroup.threads stays inside one threaded
        # domain): nothing is gained over the runtime moving the init with apply().
        return None

    def verify(self, pid: int) -> None:
        _, unified = self._membership(pid)
        self._ensure_moved(pid, unified == self.cgroup, f"pid {pid} is in {unified!r}, not {self.cgroup!r}")

    # -- freezer
    def freeze(self) -> None:
        _fs.write(self.dir, "cgroup.freeze", "1")
        self._wait_frozen(True)

    def thaw(self) -> None:
        _fs.write(self.dir, "cgroup.freeze", "0")
        self._wait_frozen(False)

    def _wait_frozen(self, wanted: bool) -> None:
        # The write returns before every task has stopped; cgroup.events "frozen" turns 1
        # when the whole subtree is frozen (cgroup-v2.rst, cgroup.freeze).
        deadline = time.monotonic() + _FREEZE_TIMEOUT
        delay = 0.001
        while self.frozen() != wanted:
            if time.monotonic() >= deadline:
                raise KernelError(errno.ETIMEDOUT, "write", f"{self.dir}/cgroup.freeze", f"frozen is not {int(wanted)}")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def frozen(self) -> bool:
        events = _fs.parse_flat_keyed(_fs.read_optional(self.dir, "cgroup.events"))
        if "frozen" in events:
            return events["frozen"] == 1
        return (_fs.read_optional(self.dir, "cgroup.freeze") or "").strip() == "1"

    def kill_all(self, sig: int) -> None:
        if sig == signal.SIGKILL and _fs.exists(self.dir, "cgroup.kill"):
            # cgroup.kill (5.14+) kills the whole subtree atomically, forks included.
            _fs.write(self.dir, "cgroup.kill", "1")
            return
        super().kill_all(sig)

    # -- resources
    def _file(self, name: str, what: str) -> tuple[str, str]:
        """(dir, name) after checking that the file exists, with an error that says why not."""
        if os.path.exists(os.path.join(self.dir, name)):
            return self.dir, name
        controller = name.split(".", 1)[0]
        available = (_fs.read_optional(self.dir, "cgroup.controllers") or "").split()
        if os.path.isdir(self.dir) and controller not in available and controller != "cgroup":
            parent = os.path.dirname(self.dir)
            raise UnsupportedError(
                f"{what} needs the {controller} controller, which is not enabled for {self.cgroup} "
                f"(it is missing from {parent}/cgroup.subtree_control)"
            )
        raise UnsupportedError(f"{what}: this kernel has no {name} in {self.dir}")

    def set(self, resources: oci.Resources) -> None:
        writes: list[tuple[str, str, str]] = []
        if resources.memory is not None:
            writes += self._memory(resources.memory)
        if resources.cpu is not None:
            writes += self._cpu(resources.cpu)
        if resources.pids is not None:
            value = V.limit(resources.pids.limit, f"{R}.pids.limit")
            if resources.pids.limit == 0:
                value = -1
            if value is not None:
                writes.append((*self._file("pids.max", "pids.limit"), "max" if value == -1 else str(value)))
        if resources.block_io is not None:
            writes += self._io(resources.block_io)
        if resources.hugepage_limits:
            for i, hl in enumerate(resources.hugepage_limits):
                where = f"{R}.hugepageLimits[{i}]"
                size = V.page_size(hl.page_size, f"{where}.pageSize")
                value = V.limit(hl.limit, f"{where}.limit")
                data = "max" if value in (None, -1) else str(value)
                writes.append((*self._file(f"hugetlb.{size}.max", where), data))
        if resources.unified:
            # Last, so raw values override the converted ones (runc's order).
            writes += self._unified(resources.unified)
        if writes and self.rootless and not os.path.isdir(self.dir):
            raise UnsupportedError("resource limits need a delegated cgroup, which this rootless host does not give")
        for directory, name, data in writes:
            _fs.write(directory, name, data)
        if resources.devices is not None:
            self._set_devices(resources.devices)

    def _set_devices(self, rules: list[oci.DeviceRule]) -> None:
        from . import _v2_devices

        _v2_devices.apply(self.dir, rules)

    def _memory(self, m: oci.Memory) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        mem, swap = V.memory_and_swap(m)
        swap_max = V.swap_v2(mem, swap)
        reservation = V.limit(m.reservation, f"{R}.memory.reservation")
        V.in_range(m.swappiness, f"{R}.memory.swappiness", 0, 100, zero_unset=False)
        # swappiness and disableOOMKiller have no v2 files (the kernel dropped both); kmem
        # limits are gone too. Validated above, then ignored as runc and crun do.
        if mem is not None:
            out.append((*self._file("memory.max", "linux.resources.memory.limit"), _max(mem)))
        if swap_max is not None:
            if not os.path.exists(os.path.join(self.dir, "memory.swap.max")) and swap_max == -1:
                pass  # no swap accounting: "unlimited swap" is what the kernel does anyway
            else:
                out.append((*self._file("memory.swap.max", "linux.resources.memory.swap"), _max(swap_max)))
        if reservation is not None:
            out.append((*self._file("memory.low", "linux.resources.memory.reservation"), _max(reservation)))
        return out

    def _cpu(self, c: oci.CPU) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        f = f"{R}.cpu"
        shares = V.in_range(c.shares, f"{f}.shares", 2, 262144)
        period = V.in_range(c.period, f"{f}.period", 1000, 1_000_000)
        quota = V.limit(c.quota, f"{f}.quota", minimum=1000)
        burst = V.in_range(c.burst, f"{f}.burst", 0, 1 << 40, zero_unset=False)
        idle = V.in_range(c.idle, f"{f}.idle", 0, 1, zero_unset=False)
        cpus = V.cpu_list(c.cpus, f"{f}.cpus")
        mems = V.cpu_list(c.mems, f"{f}.mems")
        if c.realtime_runtime or c.realtime_period:
            raise UnsupportedError("cpu.realtimeRuntime/realtimePeriod have no cgroup v2 equivalent")
        if shares is not None:
            out.append((*self._file("cpu.weight", f"{f}.shares"), str(V.shares_to_weight(shares))))
        if quota is not None or period is not None:
            # cpu.max is "$MAX $PERIOD"; the period may be left out to keep the current one.
            text = "max" if quota in (None, -1) else str(quota)
            if period is not None:
                text += f" {period}"
            out.append((*self._file("cpu.max", f"{f}.quota"), text))
        if burst is not None:
            out.append((*self._file("cpu.max.burst", f"{f}.burst"), str(burst)))
        if idle is not None:
            out.append((*self._file("cpu.idle", f"{f}.idle"), str(idle)))
        if cpus is not None:
            out.append((*self._file("cpuset.cpus", f"{f}.cpus"), cpus))
        if mems is not None:
            out.append((*self._file("cpuset.mems", f"{f}.mems"), mems))
        return out

    def _io(self, b: oci.BlockIO) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        f = f"{R}.blockIO"
        weight = V.in_range(b.weight, f"{f}.weight", 10, 1000)
        V.in_range(b.leaf_weight, f"{f}.leafWeight", 10, 1000)  # no v2 equivalent: ignored
        bfq = os.path.exists(os.path.join(self.dir, "io.bfq.weight"))

        def weight_text(w: int) -> str:
            # io.bfq.weight takes BFQ's own 1..1000 scale; io.weight 1..10000.
            return str(w) if bfq else str(V.blkio_to_io_weight(w))

        weight_file = "io.bfq.weight" if bfq else "io.weight"
        if weight is not None:
            out.append((*self._file(weight_file, f"{f}.weight"), f"default {weight_text(weight)}"))
        for i, wd in enumerate(b.weight_device or []):
            where = f"{f}.weightDevice[{i}]"
            number = V.device_number(wd.major, wd.minor, where)
            w = V.in_range(wd.weight, f"{where}.weight", 10, 1000)
            V.in_range(wd.leaf_weight, f"{where}.leafWeight", 10, 1000)
            if w is not None:
                out.append((*self._file(weight_file, where), f"{number} {weight_text(w)}"))
        for attr, json_name, _suffix, key in V.THROTTLES:
            for i, td in enumerate(getattr(b, attr) or []):
                where = f"{f}.{json_name}[{i}]"
                number = V.device_number(td.major, td.minor, where)
                value = V.rate(td.rate, where)
                # 0 removes the limit, as writing 0 does in v1's blkio.throttle.*.
                out.append((*self._file("io.max", where), f"{number} {key}={value if value else 'max'}"))
        return out

    def _unified(self, unified: dict[str, str]) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        for key, value in sorted(unified.items()):
            where = f"{R}.unified[{key!r}]"
            if not isinstance(key, str) or not _is_unified_key(key) or ".." in key or "/" in key:
                raise SpecError("must be a cgroup file name such as 'memory.high'", field=where)
            if key.startswith("cgroup.") and key not in _UNIFIED_CORE_ALLOWED:
                raise SpecError("core cgroup files other than cgroup.max.* are the runtime's", field=where)
            if not isinstance(value, str) or "\0" in value:
                raise SpecError("value must be a string", field=where)
            out.append((*self._file(key, where), value))
        return out

    # -- stats
    def stats(self) -> CgroupStats:
        # Here, not at the top: its record class costs every create ~0.2 ms to define.
        from ._stats import CgroupStats

        def read(name: str) -> str | None:
            return _fs.read_optional(self.dir, name)

        def num(name: str) -> int | None:
            return _fs.parse_int(read(name))

        cpu = _fs.parse_flat_keyed(read("cpu.stat"))
        events = _fs.parse_flat_keyed(read("memory.events"))
        io_read, io_write = _io_bytes(read("io.stat"))
        return CgroupStats(
            cpu_usage_ns=_usec_to_ns(cpu.get("usage_usec")),
            cpu_user_ns=_usec_to_ns(cpu.get("user_usec")),
            cpu_system_ns=_usec_to_ns(cpu.get("system_usec")),
            cpu_throttled_periods=cpu.get("nr_throttled"),
            memory_current=num("memory.current"),
            memory_peak=num("memory.peak"),
            memory_limit=num("memory.max"),
            memory_swap_current=num("memory.swap.current"),
            oom_kills=events.get("oom_kill"),
            oom_events=events.get("oom"),
            pids_current=num("pids.current"),
            pids_peak=num("pids.peak"),
            pids_limit=num("pids.max"),
            io_read_bytes=io_read,
            io_write_bytes=io_write,
        )


def _max(value: int) -> str:
    return "max" if value == -1 else str(value)


def _usec_to_ns(value: int | None) -> int | None:
    return None if value is None else value * 1000


def _io_bytes(text: str | None) -> tuple[int | None, int | None]:
    if text is None:
        return None, None
    read = write = 0
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if key == "rbytes" and value.isdigit():
                read += int(value)
            elif key == "wbytes" and value.isdigit():
                write += int(value)
    return read, write
