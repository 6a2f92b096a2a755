"""A fake cgroupfs: directories under tmp_path, files the kernel would create, and a write hook.

``FakeKernel`` patches ``_fs.mkdir`` (to populate new cgroups with the kernel's files) and
``_fs.write`` (to record every write, and to emulate cgroup.subtree_control and
cgroup.freeze), then lets the real ``_fs.write`` write into the fake tree.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tinycontainer.linux.cgroups import Hierarchy, Layout, _fs

V1_FILES: dict[str, dict[str, str]] = {
    "cpu": {
        "cpu.shares": "1024",
        "cpu.cfs_period_us": "100000",
        "cpu.cfs_quota_us": "-1",
        "cpu.cfs_burst_us": "0",
        "cpu.rt_period_us": "1000000",
        "cpu.rt_runtime_us": "0",
        "cpu.idle": "0",
        "cpu.stat": "nr_periods 10\nnr_throttled 3\nthrottled_time 5000\n",
    },
    "cpuacct": {
        "cpuacct.usage": "123456789",
        "cpuacct.usage_user": "100000000",
        "cpuacct.usage_sys": "23456789",
        "cpuacct.stat": "user 10\nsystem 2\n",
    },
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "memory": {
        "memory.limit_in_bytes": "9223372036854771712",
        "memory.memsw.limit_in_bytes": "9223372036854771712",
        "memory.soft_limit_in_bytes": "9223372036854771712",
        "memory.swappiness": "60",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        "memory.usage_in_bytes": "4096000",
        "memory.max_usage_in_bytes": "8192000",
        "memory.memsw.usage_in_bytes": "5096000",
    },
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm\n"},
    "freezer": {"freezer.state": "THAWED"},
    "blkio": {
        "blkio.weight": "500",
        "blkio.weight_device": "",
        "blkio.leaf_weight": "500",
        "blkio.leaf_weight_device": "",
        "blkio.throttle.read_bps_device": "",
        "blkio.throttle.write_bps_device": "",
        "blkio.throttle.read_iops_device": "",
        "blkio.throttle.write_iops_device": "",
        "blkio.throttle.io_service_bytes_recursive": "8:0 Read 1000\n8:0 Write 2000\n8:16 Read 5\nTotal 3005\n",
    },
    "pids": {"pids.max": "max", "pids.current": "3", "pids.peak": "7"},
}
V1_ROOT_FILES = {"cpuset": {"cpuset.cpus": "0-1", "cpuset.mems": "0"}}

V2_CORE = {
    "cgroup.procs": "",
    "cgroup.controllers": "",
    "cgroup.subtree_control": "",
    "cgroup.freeze": "0",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.kill": "",
    "cgroup.max.depth": "max",
    "cgroup.max.descendants": "max",
    "cgroup.type": "domain",
    "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 2\n",
}
V2_CONTROLLER_FILES: dict[str, dict[str, str]] = {
    "cpu": {"cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "memory": {
        "memory.max": "max",
        "memory.low": "0",
        "memory.high": "max",
        "memory.swap.max": "max",
        "memory.current": "1048576",
        "memory.peak": "2097152",
        "memory.swap.current": "4096",
        "memory.events": "low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\noom_group_kill 0\n",
    },
    "io": {"io.weight": "default 100", "io.max": "", "io.stat": "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n"},
    "pids": {"pids.max": "max", "pids.current": "2", "pids.peak": "4"},
    "hugetlb": {"hugetlb.2MB.max": "max", "hugetlb.1GB.max": "max"},
}
V2_ROOT_CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma misc"


def _populate(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (directory / name).write_text(text)


class FakeKernel:
    def __init__(self, base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.base = base
        self.writes: list[tuple[str, str]] = []
        self.v1_root = base / "v1"
        self.v2_root = base / "v2"
        self.proc = base / "proc"
        self.fail: dict[str, int] = {}  # path -> errno to raise on write
        real_write_lines = _fs.write_lines
        real_mkdir = _fs.mkdir

        def mkdir(path: str) -> bool:
            made = real_mkdir(path)
            if made:
                self._kernel_files(Path(path))
            return made

        def write(directory: str, name: str, data: str) -> None:
            path = os.path.join(directory, name)
            self.writes.append((path, data))
            if path in self.fail:
                from tinycontainer._errors import KernelError

                raise KernelError(self.fail[path], "write", path, f"data {data!r}")
            if name == "cgroup.subtree_control" and os.path.exists(path):
                self._subtree_control(Path(path), data)
                return
            real_write_lines(directory, name, [data])
            if name == "cgroup.freeze":
                frozen = data.strip()
                (Path(directory) / "cgroup.events").write_text(f"populated 1\nfrozen {frozen}\n")

        def write_lines(directory: str, name: str, lines: list[str]) -> None:
            for data in lines:
                write(directory, name, data)

        monkeypatch.setattr(_fs, "mkdir", mkdir)
        monkeypatch.setattr(_fs, "write", write)
        monkeypatch.setattr(_fs, "write_lines", write_lines)

    # -- trees
    def v1_layout(self, controllers: tuple[str, ...] = tuple(V1_FILES)) -> Layout:
        hierarchies = {}
        for controller in controllers:
            mount = self.v1_root / controller
            mount.mkdir(parents=True, exist_ok=True)
            _populate(mount, {"cgroup.procs": "1\n", **V1_ROOT_FILES.get(controller, {})})
            hierarchies[controller] = Hierarchy(str(mount), "/", (controller,))
        return Layout("v1", "legacy", hierarchies, None)

    def v2_layout(self, root_controllers: str = V2_ROOT_CONTROLLERS, root_enabled: str = "") -> Layout:
        self.v2_root.mkdir(parents=True, exist_ok=True)
        _populate(
            self.v2_root,
            {
                "cgroup.procs": "1\n",
                "cgroup.controllers": root_controllers,
                "cgroup.subtree_control": root_enabled,
                "cpu.stat": "usage_usec 0\n",
            },
        )
        return Layout("v2", "unified", {}, Hierarchy(str(self.v2_root), "/"))

    def set_own_cgroup(self, text: str, pid: int | str = "self") -> None:
        d = self.proc / str(pid)
        d.mkdir(parents=True, exist_ok=True)
        (d / "cgroup").write_text(text)

    def mkcgroup(self, path: Path) -> None:
        """A cgroup that existed before the test (as if another tool made it)."""
        for part in reversed([path, *path.parents]):
            if part.is_relative_to(self.base) and not part.exists():
                part.mkdir()
                self._kernel_files(part)

    def _kernel_files(self, directory: Path) -> None:
        if directory.is_relative_to(self.v2_root):
            parent_enabled = (directory.parent / "cgroup.subtree_control").read_text().split()
            _populate(directory, {**V2_CORE, "cgroup.controllers": " ".join(parent_enabled)})
            for controller in parent_enabled:
                _populate(directory, V2_CONTROLLER_FILES.get(controller, {}))
        elif directory.is_relative_to(self.v1_root):
            controller = directory.relative_to(self.v1_root).parts[0]
            _populate(directory, {"cgroup.procs": "", "tasks": "", **V1_FILES[controller]})

    def _subtree_control(self, path: Path, data: str) -> None:
        # The kernel's rules: "+c"/"-c" words; only controllers in cgroup.controllers.
        available = (path.parent / "cgroup.controllers").read_text().split()
        enabled = path.read_text().split()
        for word in data.split():
            name = word[1:]
            if name not in available:
                from tinycontainer._errors import KernelError

                raise KernelError(2, "write", str(path), f"data {data!r}")
            if word[0] == "+" and name not in enabled:
                enabled.append(name)
            elif word[0] == "-" and name in enabled:
                enabled.remove(name)
        path.write_text(" ".join(enabled))

    # -- assertions
    def written(self, path: Path | str) -> list[str]:
        return [data for p, data in self.writes if p == str(path)]
