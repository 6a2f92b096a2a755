"""ContainerExecutor pieces that need no container: futures, pickling, Dask task unwrapping."""

from __future__ import annotations

import pickle
import threading
from concurrent.futures import CancelledError, wait

import pytest

import tinycontainer as tc
from tinycontainer._executor import ContainerFuture, _is_dask_runner


def test_cancel_of_a_running_future_calls_its_killer() -> None:
    future = ContainerFuture()
    killed = threading.Event()
    assert future.set_running_or_notify_cancel()
    future._set_killer(killed.set)
    done_calls: list[bool] = []
    future.add_done_callback(lambda f: done_calls.append(f.cancelled()))
    waiter = threading.Thread(target=lambda: wait([future], timeout=5))
    waiter.start()
    assert future.cancel()
    waiter.join(5)
    assert killed.is_set() and future.cancelled() and done_calls == [True]
    with pytest.raises(CancelledError):
        future.result(0)


def test_cancel_of_a_pending_future_is_the_stdlib_one() -> None:
    future = ContainerFuture()
    assert future.cancel() and future.cancelled()
    assert not future.set_running_or_notify_cancel()


def test_executor_pickles_as_its_configuration() -> None:
    ex = tc.ContainerExecutor(tc.Spec(memory="64m"), max_workers=3, mode="fresh", timeout=5.0)
    copy = pickle.loads(pickle.dumps(ex))
    assert (copy.spec, copy.max_workers, copy.mode, copy.timeout) == (ex.spec, 3, "fresh", 5.0)
    assert copy._threads == [] and copy is not ex
    ex.shutdown()
    copy.shutdown()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        tc.ContainerExecutor(mode="forever")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        tc.ContainerExecutor(max_workers=0)
    ex = tc.ContainerExecutor()
    ex.shutdown()
    with pytest.raises(RuntimeError):
        ex.submit(print)


def test_dask_task_only_func_goes_remote() -> None:
    pytest.importorskip("distributed")
    from dask._task_spec import Task, TaskRef
    from distributed.worker import _run_task_simple

    from tinycontainer.dask import ContainerPlugin, sandboxed_task_args

    assert _is_dask_runner(_run_task_simple) and not _is_dask_runner(print)
    sent: list[tuple[object, tuple[object, ...], dict[str, object]]] = []

    def runner(fn: object, args: tuple[object, ...], kwargs: dict[str, object]) -> object:
        sent.append((fn, args, kwargs))
        return "remote result"

    task = Task("k-1", max, TaskRef("a"), 3)
    (bind, data, delay), key = sandboxed_task_args((task, {"a": 5}, 0.0))
    assert key == "k-1"
    msg = _run_task_simple(bind(runner), data, delay)
    assert msg["op"] == "task-finished" and msg["result"] == "remote result"
    assert sent == [(max, (5, 3), {})]
    plugin = pickle.loads(pickle.dumps(ContainerPlugin(tc.Spec(), mode="fresh")))
    assert plugin.mode == "fresh" and plugin.executor is None
