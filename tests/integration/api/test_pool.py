"""WarmLauncher(pool_size=N): pre-created containers behave like containers started on demand."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

import tinycontainer as tc

SH = ["/bin/busybox", "sh", "-c"]


@pytest.fixture
def pooled() -> Iterator[tc.WarmLauncher]:
    launcher = tc.WarmLauncher(pool_size=2).start()
    try:
        yield launcher
    finally:
        launcher.close()


def _bundles(lib_root: str) -> list[str]:
    path = os.path.join(lib_root, "bundles")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def _init_pid(lib_root: str, container_id: str) -> int:
    with open(os.path.join(lib_root, "state", container_id, "state.json")) as f:
        return int(json.load(f)["pid"])


PARITY_CASES: list[tuple[str, dict[str, Any]]] = [
    ("exit 3", {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}),
    ("echo out; echo err >&2", {"stdin": subprocess.DEVNULL, "capture_output": True}),
    ("cat; echo done", {"input": b"x" * 200_000, "capture_output": True}),
    ("tr a-z A-Z", {"input": "hello", "capture_output": True, "text": True}),
    ("echo out; echo err >&2", {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}),
    ("echo out; echo err >&2", {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}),
]


@pytest.mark.parametrize(("script", "kwargs"), PARITY_CASES)
def test_pooled_runs_match_subprocess(
    script: str, kwargs: dict[str, Any], spec: tc.Spec, lib_root: str, pooled: tc.WarmLauncher
) -> None:
    expected = subprocess.run([*SH, script], timeout=30, **kwargs)
    # The first run fills the pool, the next ones take pre-created containers.
    for i in range(3):
        assert pooled.wait_pool_ready(30)  # refills run in the background
        waiting = _bundles(lib_root)
        got = tc.run([*SH, script], spec=spec, lib_root=lib_root, launcher=pooled, timeout=30, **kwargs)
        assert (got.returncode, got.stdout, got.stderr) == (expected.returncode, expected.stdout, expected.stderr)
        assert (got.container_id in waiting) == (i > 0)
    assert pooled.wait_pool_ready(30) and len(_bundles(lib_root)) == 2  # the pool, refilled


def test_each_pooled_run_gets_a_fresh_container(spec: tc.Spec, lib_root: str, pooled: tc.WarmLauncher) -> None:
    script = "cat /tmp/mark 2>/dev/null; echo x > /tmp/mark; echo $$; grep memory /proc/self/cgroup"
    spec = spec.replace(mounts=(tc.Mount(target="/tmp", type="tmpfs"),))
    seen_ids: set[str] = set()
    cgroups: set[str] = set()
    for i in range(4):
        assert pooled.wait_pool_ready(30)  # refills run in the background
        waiting = _bundles(lib_root)
        result = tc.run([*SH, script], spec=spec, lib_root=lib_root, launcher=pooled, stdin=tc.DEVNULL,
                        capture_output=True, timeout=30)  # fmt: skip
        assert result.returncode == 0, result
        assert (result.container_id in waiting) == (i > 0)
        lines = result.stdout.decode().splitlines()
        # No mark from an earlier run (its own /tmp), its own pid 1, its own memory cgroup.
        assert lines[0] == "1", lines
        assert result.container_id in lines[1]
        seen_ids.add(result.container_id)
        cgroups.add(lines[1])
        assert result.usage is not None and result.usage.pids_peak is not None
    assert len(seen_ids) == len(cgroups) == 4
    assert pooled.wait_pool_ready(30)
    pool = _bundles(lib_root)
    assert len(pool) == 2 and not set(pool) & seen_ids


def test_wall_time_counts_from_the_claim(spec: tc.Spec, lib_root: str, pooled: tc.WarmLauncher) -> None:
    limited = spec.replace(wall_time=0.5)
    kwargs: dict[str, Any] = {"stdin": tc.DEVNULL, "stdout": tc.DEVNULL, "stderr": tc.DEVNULL}
    assert tc.run([*SH, "sleep 10"], spec=limited, lib_root=lib_root, launcher=pooled, **kwargs).reason == "wall-time"
    assert pooled.wait_pool_ready(30)
    time.sleep(1.0)  # the pooled containers wait longer than their wall time before the claim
    waiting = _bundles(lib_root)
    assert len(waiting) == 2
    began = time.monotonic()
    result = tc.run([*SH, "sleep 10"], spec=limited, lib_root=lib_root, launcher=pooled, **kwargs)
    took = time.monotonic() - began
    assert result.container_id in waiting  # a pooled one
    assert result.reason == "wall-time"
    assert 0.4 <= took < 5


def test_a_dead_pooled_container_is_replaced(spec: tc.Spec, lib_root: str, pooled: tc.WarmLauncher) -> None:
    argv = [*SH, "echo alive"]
    kwargs: dict[str, Any] = {"stdin": tc.DEVNULL, "capture_output": True, "timeout": 30}
    tc.run(argv, spec=spec, lib_root=lib_root, launcher=pooled, **kwargs)
    assert pooled.wait_pool_ready(30)
    deadline = time.monotonic() + 10
    killed = _bundles(lib_root)
    for cid in killed:
        os.kill(_init_pid(lib_root, cid), signal.SIGKILL)
    # Their supervisors notice and remove them (a claim racing the kill would just find a
    # container killed right after its start, like any other).
    while set(killed) & set(_bundles(lib_root)):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    for _ in range(3):
        result = tc.run(argv, spec=spec, lib_root=lib_root, launcher=pooled, **kwargs)
        assert (result.returncode, result.stdout) == (0, b"alive\n")
        assert result.container_id not in killed


def test_inherited_stdio_is_never_pooled(spec: tc.Spec, lib_root: str, pooled: tc.WarmLauncher) -> None:
    for _ in range(2):
        assert tc.run(["/bin/true"], spec=spec, lib_root=lib_root, launcher=pooled).returncode == 0
    assert pooled.wait_pool_ready(30)
    assert _bundles(lib_root) == []


def test_close_removes_the_pool(spec: tc.Spec, lib_root: str) -> None:
    launcher = tc.WarmLauncher(pool_size=3).start()
    try:
        tc.run(["/bin/true"], spec=spec, lib_root=lib_root, launcher=launcher, stdin=tc.DEVNULL, stdout=tc.DEVNULL,
               stderr=tc.DEVNULL)  # fmt: skip
        assert launcher.wait_pool_ready(30)
        assert len(_bundles(lib_root)) == 3
    finally:
        launcher.close()
    assert _bundles(lib_root) == []
    state = os.path.join(lib_root, "state")
    assert not os.path.isdir(state) or [n for n in os.listdir(state) if not n.startswith(".")] == []


def _memory_cgroups_named(container_id: str) -> list[str]:
    """This process's memory cgroup subtree entries naming ``container_id``."""
    with open("/proc/self/cgroup") as f:
        own = next(line.rstrip("\n").split(":", 2)[2] for line in f if ":memory:" in line)
    top = os.path.join("/sys/fs/cgroup/memory", own.lstrip("/"))
    return [d for d, _, _ in os.walk(top) if container_id in os.path.basename(d)]


def test_a_pooled_run_is_removed_in_the_background(spec: tc.Spec, lib_root: str) -> None:
    launcher = tc.WarmLauncher(pool_size=1).start()
    try:
        kwargs: dict[str, Any] = {"stdin": tc.DEVNULL, "capture_output": True, "timeout": 30}
        tc.run(["/bin/true"], spec=spec, lib_root=lib_root, launcher=launcher, **kwargs)
        assert launcher.wait_pool_ready(30)
        (waiting,) = _bundles(lib_root)
        assert _memory_cgroups_named(waiting) != []  # what the checks below look for
        result = tc.run([*SH, "echo hi"], spec=spec, lib_root=lib_root, launcher=launcher, **kwargs)
        # The usage was read from its cgroup before the removal that follows the result.
        assert result.stdout == b"hi\n" and result.usage is not None and result.usage.cpu_time is not None
        assert result.usage.memory_peak is not None and result.usage.memory_peak > 0
        # Its clock started at the claim, which the supervisor read before the init's exit.
        assert 0 < result.usage.wall_time < 5
        assert launcher.wait_pool_ready(30)  # waits for the removal too
        assert result.container_id not in _bundles(lib_root)
        assert not os.path.exists(os.path.join(lib_root, "state", result.container_id))
        assert _memory_cgroups_named(result.container_id) == []
        # Removals left pending by back-to-back runs are awaited by close().
        results = [tc.run(["/bin/true"], spec=spec, lib_root=lib_root, launcher=launcher, **kwargs)
                   for _ in range(3)]  # fmt: skip
        assert all(r.usage is not None and r.usage.wall_time > 0 for r in results)
        ids = [r.container_id for r in results]
    finally:
        launcher.close()
    assert _bundles(lib_root) == []
    assert all(not os.path.exists(os.path.join(lib_root, "state", cid)) for cid in ids)
    assert all(_memory_cgroups_named(cid) == [] for cid in ids)
