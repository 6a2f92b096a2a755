"""tinycontainer.dask: annotated tasks run in containers on nanny workers; OOM and cancel."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

import tinycontainer as tc
from tinycontainer import _bundle

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

STATE = _bundle.LibPaths(_bundle.default_lib_root()).state


def _containers() -> set[str]:
    return set(os.listdir(STATE)) if os.path.isdir(STATE) else set()


def _where(x: int) -> tuple[int, bool]:
    with open("/proc/self/cgroup") as f:
        return x + 1, "tcontainer-" in f.read()


def _first_sum(pairs: list[tuple[int, bool]]) -> int:
    return sum(p[0] for p in pairs)


def _allocate(size: int) -> int:
    return len(bytearray(size))


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    from tinycontainer.dask import ContainerPlugin

    before = _containers()
    cluster = distributed.LocalCluster(processes=True, n_workers=1, threads_per_worker=2, dashboard_address=None,
                                       host="127.0.0.1")
    c = distributed.Client(cluster)
    c.register_plugin(ContainerPlugin(tc.Spec(memory="96m"), mode="reuse"))
    try:
        yield c
    finally:
        c.close()
        cluster.close()
    deadline = time.monotonic() + 10
    while _containers() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (_containers() - before), "containers left behind by the Dask workers"


def test_annotated_and_plain_tasks_mixed(client: Any) -> None:
    with dask.annotate(executor="tinycontainer"):
        boxed = client.map(_where, range(10), pure=False)
    plain = client.map(_where, range(10), pure=False)
    assert client.gather(boxed) == [(i + 1, True) for i in range(10)]
    assert client.gather(plain) == [(i + 1, False) for i in range(10)]
    with dask.annotate(executor="tinycontainer"):
        total = client.submit(_first_sum, boxed, pure=False)  # dependencies resolved in the worker
    assert total.result(60) == sum(range(1, 11))


def test_oom_task_is_an_error_that_says_oom(client: Any) -> None:
    with dask.annotate(executor="tinycontainer"):
        hog = client.submit(_allocate, 512 << 20, pure=False)
        fine = client.submit(_allocate, 1 << 20, pure=False)
    with pytest.raises(Exception, match="OOM") as info:
        hog.result(120)
    assert "LimitExceeded" in type(info.value).__name__ or "oom" in str(info.value).lower()
    assert fine.result(60) == 1 << 20


def test_cancel_of_a_running_task_kills_its_container(client: Any) -> None:
    with dask.annotate(executor="tinycontainer"):
        warm = client.submit(_where, 0, pure=False)
    warm.result(60)
    with dask.annotate(executor="tinycontainer"):
        sleeper = client.submit(time.sleep, 120, pure=False)
    deadline = time.monotonic() + 30
    while client.processing() and not any(sleeper.key in keys for keys in client.processing().values()):
        time.sleep(0.05)
        assert time.monotonic() < deadline
    time.sleep(1.0)  # inside the container by now
    before = _containers()
    client.cancel(sleeper)
    deadline = time.monotonic() + 15
    while len(_containers()) >= len(before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_containers()) < len(before), "the cancelled task's container still exists"
    with dask.annotate(executor="tinycontainer"):
        after = client.submit(_where, 41, pure=False)
    assert after.result(60) == (42, True)
