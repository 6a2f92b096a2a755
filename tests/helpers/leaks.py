"""Fails a test that leaves a mount, cgroup, network device, container process or state dir behind."""

from __future__ import annotations

import os
import time
from collections.abc import Callable


def _mounts() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {" ".join(line.split()[3:5]) for line in f}


def _own_cgroup_dirs() -> set[str]:
    found: set[str] = set()
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if not controllers:
                base = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
            else:
                name = controllers.split(",")[0].removeprefix("name=")
                base = f"/sys/fs/cgroup/{name}"
                if not os.path.isdir(base):
                    base = f"/sys/fs/cgroup/{controllers}"
            top = os.path.join(base, path.lstrip("/"))
            if not os.path.isdir(top):
                continue
            for dirpath, dirnames, _ in os.walk(top):
                for d in dirnames:
                    found.add(os.path.join(dirpath, d))
    return found


def _netdevs() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def _foreign_pidns_processes() -> set[int]:
    mine = os.readlink("/proc/self/ns/pid")
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") != mine:
                    found.add(int(entry))
            except OSError:
                continue
    return found


def _state_entries(root: str | None) -> set[str]:
    if not root or not os.path.isdir(root):
        return set()
    return {n for n in os.listdir(root) if not n.startswith(".")}


def _cgroup_mentions(pid: int, names: list[str]) -> bool:
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            text = f.read()
    except OSError:
        return False
    return any(name in text for name in names)


class LeakCheck:
    """``container_ids``: a callable giving the ids the test used; when given, only processes
    whose cgroup names one of them count as leaked (other containers may run on a shared host)."""

    def __init__(self, state_root: str | None = None, container_ids: Callable[[], list[str]] | None = None) -> None:
        self.state_root = state_root
        self.container_ids = container_ids
        self.mounts = _mounts()
        self.cgroups = _own_cgroup_dirs()
        self.netdevs = _netdevs()
        self.procs = _foreign_pidns_processes()
        self.states = _state_entries(state_root)

    def leaks(self) -> list[str]:
        problems = []
        extra = _mounts() - self.mounts
        ids = self.container_ids() if self.container_ids is not None else None
        if ids is not None and self.state_root:
            scope = os.path.dirname(self.state_root)
            extra = {m for m in extra if scope in m or any(i in m for i in ids)}
        if extra:
            problems.append(f"mounts leaked: {sorted(extra)}")
        extra_cg = _own_cgroup_dirs() - self.cgroups
        if ids is not None:
            extra_cg = {c for c in extra_cg if any(i in c for i in ids)}
        if extra_cg:
            problems.append(f"cgroups leaked: {sorted(extra_cg)}")
        extra_net = _netdevs() - self.netdevs
        if extra_net:
            problems.append(f"network devices leaked: {sorted(extra_net)}")
        extra_p = _foreign_pidns_processes() - self.procs
        if ids is not None:
            extra_p = {p for p in extra_p if ids and _cgroup_mentions(p, ids)}
        if extra_p:
            problems.append(f"container processes leaked: {sorted(extra_p)}")
        extra_s = _state_entries(self.state_root) - self.states
        if extra_s:
            problems.append(f"state dirs leaked: {sorted(extra_s)}")
        return problems

    def assert_clean(self, grace: float = 3.0) -> None:
        deadline = time.monotonic() + grace
        problems = self.leaks()
        while problems and time.monotonic() < deadline:
            time.sleep(0.05)
            problems = self.leaks()
        assert not problems, "; ".join(problems)
