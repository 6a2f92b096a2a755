"""ContainerExecutor under load, cancel of running tasks, and shutdown clean-up."""

from __future__ import annotations

import os
import time
from concurrent.futures import CancelledError

import pytest

import tinycontainer as tc
from tinycontainer import _bundle

STATE = _bundle.LibPaths(_bundle.default_lib_root()).state


def _square(x: int) -> int:
    return x * x


def _pid_ns() -> str:
    return os.readlink("/proc/self/ns/pid")


def _counter() -> int:
    import builtins

    count = getattr(builtins, "_tc_test_counter", 0) + 1
    builtins._tc_test_counter = count  # type: ignore[attr-defined]
    return count


def _containers() -> set[str]:
    return set(os.listdir(STATE)) if os.path.isdir(STATE) else set()


def _wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_reuse_mode_200_tasks_two_workers() -> None:
    with tc.ContainerExecutor(max_workers=2, mode="reuse") as ex:
        assert list(ex.map(_square, range(200))) == [i * i for i in range(200)]
        namespaces = {f.result() for f in [ex.submit(_pid_ns) for _ in range(20)]}
        assert 1 <= len(namespaces) <= 2  # one long-lived worker container per slot
        assert os.readlink("/proc/self/ns/pid") not in namespaces
        counts = [ex.submit(_counter).result() for _ in range(6)]
        assert max(counts) > 1  # the worker process (and its module state) is reused


def test_fresh_mode_one_container_per_task() -> None:
    with tc.ContainerExecutor(max_workers=2, mode="fresh") as ex:
        assert list(ex.map(_square, range(12))) == [i * i for i in range(12)]
        counts = [f.result() for f in [ex.submit(_counter) for _ in range(6)]]
    assert counts == [1] * 6  # nothing survives from one task to the next


@pytest.mark.parametrize("mode", ["reuse", "fresh"])
def test_cancel_of_a_running_task_kills_its_container(mode: str) -> None:
    before = _containers()
    with tc.ContainerExecutor(max_workers=1, mode=mode) as ex:  # type: ignore[arg-type]
        future = ex.submit(time.sleep, 60)
        assert _wait_for(lambda: future.running() and len(_containers() - before) == 1)
        time.sleep(0.3)  # the task is inside the container by now
        started = time.monotonic()
        assert future.cancel()
        with pytest.raises(CancelledError):
            future.result(5)
        assert _wait_for(lambda: not (_containers() - before), 10)
        assert time.monotonic() - started < 10
        assert ex.submit(_square, 5).result(60) == 25  # the slot recovers


def test_task_failure_and_oom_do_not_poison_the_slot() -> None:
    def allocate(size: int) -> int:
        return len(bytearray(size))

    with tc.ContainerExecutor(tc.Spec(memory="64m"), max_workers=1, mode="reuse") as ex:
        with pytest.raises(tc.LimitExceeded) as info:
            ex.submit(allocate, 256 << 20).result(60)
        assert info.value.reason == "oom"
        with pytest.raises(ZeroDivisionError):
            ex.submit(lambda: 1 / 0).result(60)
        assert ex.submit(_square, 9).result(60) == 81


def test_task_timeout() -> None:
    with tc.ContainerExecutor(max_workers=1, timeout=1.0) as ex:
        with pytest.raises(tc.TimeoutExpired):
            ex.submit(time.sleep, 30).result(30)
        assert ex.submit(_square, 4).result(60) == 16


def test_shutdown_cancel_futures_removes_everything() -> None:
    before = _containers()
    ex = tc.ContainerExecutor(max_workers=2, mode="reuse")
    futures = [ex.submit(time.sleep, 0.2) for _ in range(10)]
    time.sleep(0.5)
    ex.shutdown(wait=True, cancel_futures=True)
    assert any(f.cancelled() for f in futures)
    assert not (_containers() - before)
