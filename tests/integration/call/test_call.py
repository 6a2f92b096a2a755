"""tinycontainer.call: values, remote exceptions, limits and timeouts, in real containers."""

from __future__ import annotations

import os
import time

import pytest

import tinycontainer as tc


def _facts(n: int) -> dict[str, object]:
    with open("/proc/self/cgroup") as f:
        cgroup = f.read()
    writable = True
    try:
        open("/etc/tc-call-canary", "w").close()
    except OSError:
        writable = False
    return {"sum": sum(range(n)), "pid": os.getpid(), "cgroup": cgroup, "root_writable": writable}


def _raise(message: str) -> None:
    raise ValueError(message)


def _allocate(size: int) -> int:
    block = bytearray(size)
    for i in range(0, size, 4096):
        block[i] = 1
    return len(block)


def test_returns_the_value_computed_inside_a_container() -> None:
    facts = tc.call(_facts, 1000)
    assert facts["sum"] == 499500
    assert facts["pid"] == 1  # the first process of a new pid namespace
    assert "tcontainer-" in str(facts["cgroup"])
    assert facts["root_writable"] is False
    assert not os.path.exists("/etc/tc-call-canary")


def test_lambda_and_kwargs() -> None:
    assert tc.call(lambda a, *, b: a * b, 6, b=7) == 42


def test_remote_exception_is_raised_with_its_traceback() -> None:
    with pytest.raises(ValueError, match="from inside") as info:
        tc.call(_raise, "from inside")
    assert isinstance(info.value.__cause__, tc.RemoteTraceback)
    assert "_raise" in info.value.__cause__.tb


def test_memory_limit_kills_with_oom() -> None:
    spec = tc.Spec(memory="64m")
    assert tc.call(_allocate, 8 << 20, spec=spec) == 8 << 20
    with pytest.raises(tc.LimitExceeded) as info:
        tc.call(_allocate, 256 << 20, spec=spec)
    assert info.value.reason == "oom" and "OOM" in str(info.value)


def test_timeout_kills_the_container() -> None:
    started = time.monotonic()
    with pytest.raises(tc.TimeoutExpired):
        tc.call(time.sleep, 30, timeout=1.0)
    assert time.monotonic() - started < 10


def test_cpu_time_limit() -> None:
    def spin() -> None:
        while True:
            pass

    with pytest.raises(tc.LimitExceeded) as info:
        tc.call(spin, spec=tc.Spec(cpu_time=1))
    assert info.value.reason == "cpu-time"


def test_exit_without_result() -> None:
    with pytest.raises(tc.WorkerDied, match="status 7"):
        tc.call(os._exit, 7)


def test_works_from_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda x: tc.call(abs, -x), range(8))) == list(range(8))
