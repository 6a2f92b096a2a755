"""``ContainerExecutor``: a :class:`concurrent.futures.Executor` whose tasks run in containers.

::

    with tc.ContainerExecutor(tc.Spec(memory="256m"), max_workers=2, mode="reuse") as ex:
        results = list(ex.map(work, range(200)))

Two modes, one trade-off (measured on this machine, trivial tasks, 2 slots; docs/python-api.md):

* ``mode="fresh"``: a new container per task. Nothing survives from one task to the next (no
  module state, no files in /tmp, a fresh cgroup and its counters), at the cost of a container
  start and an interpreter start per task (tens of ms): worth it for tasks of seconds.
* ``mode="reuse"``: one long-lived sandboxed Python worker per slot runs task after task (a
  few ms of pickling per task). The sandbox still confines every task (namespaces, seccomp,
  read-only root, limits), but tasks of one slot share the process, its memory limit and its
  /tmp. A worker that dies (OOM, a crash, a cancel) is replaced for the next task.

``Future.cancel()`` of a running task kills its container (the future is then cancelled);
``shutdown()`` removes every container. The executor pickles as its configuration (Dask's
nanny workers pickle their executors), and uses threads plus the warm fork server, never
``multiprocessing`` (nanny workers are daemonic processes, which may not have children made by
multiprocessing).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, Future
from concurrent.futures import _base as futures_base
from typing import Any, Literal

from ._pyworker import PyContainer, dumps_call, unpack_reply
from ._result import TimeoutExpired
from ._spec import Spec

Mode = Literal["fresh", "reuse"]
RemoteRunner = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]


class ContainerFuture(Future[Any]):
    """A future whose :meth:`cancel` also stops a running task (by killing its container)."""

    def __init__(self) -> None:
        super().__init__()
        self._killer: Callable[[], None] | None = None

    def _set_killer(self, killer: Callable[[], None] | None) -> None:
        with self._condition:
            self._killer = killer

    def cancel(self) -> bool:
        with self._condition:
            if self._state != futures_base.RUNNING:
                return super().cancel()
            killer = self._killer
            # Marked first, so the task's thread sees a cancelled future when the kill makes
            # its call fail, and sets no exception.
            self._state = futures_base.CANCELLED_AND_NOTIFIED
            for waiter in self._waiters:
                waiter.add_cancelled(self)
            self._condition.notify_all()
        if killer is not None:
            killer()
        self._invoke_callbacks()  # type: ignore[attr-defined]
        return True


class _WorkItem:
    __slots__ = ("args", "fn", "future", "kwargs", "local", "tag")

    def __init__(self, future: ContainerFuture, fn: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any], *, local: bool = False, tag: Hashable | None = None) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.local = local
        self.tag = tag


class ContainerExecutor(Executor):
    """Run callables in containers (see the module docstring for the two modes).

    ``spec`` describes the containers (default ``Spec()``: the host's / read-only, no network).
    ``max_workers`` (default: the number of CPUs) bounds the containers running at once.
    ``timeout`` (seconds) bounds each task: the container is killed and the future raises
    :class:`TimeoutExpired`. ``python`` is as in :func:`tinycontainer.call`.
    """

    def __init__(
        self,
        spec: Spec | None = None,
        *,
        max_workers: int | None = None,
        mode: Mode = "reuse",
        timeout: float | None = None,
        python: str | None = None,
        lib_root: str | None = None,
    ) -> None:
        if mode not in ("fresh", "reuse"):
            raise ValueError(f"mode must be 'fresh' or 'reuse', not {mode!r}")
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self.spec = spec if spec is not None else Spec()
        self.max_workers = max_workers or os.cpu_count() or 1
        self.mode: Mode = mode
        self.timeout = timeout
        self.python = python
        self.lib_root = lib_root
        self._queue: queue.SimpleQueue[_WorkItem | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._shutdown = False
        self._running: dict[Hashable, ContainerFuture] = {}

    # -- pickling: the configuration only (a copy elsewhere starts its own containers) ----------
    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "max_workers": self.max_workers, "mode": self.mode, "timeout": self.timeout,
                "python": self.python, "lib_root": self.lib_root}

    def __setstate__(self, state: dict[str, Any]) -> None:
        spec = state.pop("spec")
        self.__init__(spec, **state)  # type: ignore[misc]

    # -- Executor API -----------------------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` in a container; a :class:`ContainerFuture`.

        Dask's task runner (``distributed.worker._run_task_simple``) is recognised: it runs in
        this process and only the task's own function goes into the container.
        """
        future = ContainerFuture()
        item = _WorkItem(future, fn, args, kwargs)
        if _is_dask_runner(fn):
            from .dask import sandboxed_task_args

            item = _WorkItem(future, fn, (), {}, local=True)
            item.args, item.tag = sandboxed_task_args(args)
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._queue.put(item)
            self._adjust_threads()
        return future

    def _adjust_threads(self) -> None:
        if self._idle.acquire(blocking=False):
            return
        if len(self._threads) < self.max_workers:
            thread = threading.Thread(target=self._work, name=f"tinycontainer-executor-{len(self._threads)}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; ``cancel_futures`` cancels those not started. Every container
        is removed once the running tasks finish (``wait`` waits for that)."""
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item.future.cancel()
            for _ in self._threads:
                self._queue.put(None)
            threads = list(self._threads)
        if wait:
            for thread in threads:
                thread.join()

    def kill(self, tag: Hashable) -> bool:
        """Kill the container running the task tagged ``tag`` (Dask: the task's key). The
        task fails (its future is not cancelled). False when no such task runs."""
        with self._lock:
            future = self._running.get(tag)
        killer = future._killer if future is not None else None
        if killer is None:
            return False
        killer()
        return True

    # -- the slot threads -------------------------------------------------------------------------
    def _work(self) -> None:
        slot = _Slot(self)
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                try:
                    self._run(slot, item)
                finally:
                    del item
                    self._idle.release()
        finally:
            slot.close()

    def _run(self, slot: _Slot, item: _WorkItem) -> None:
        future = item.future
        if not future.set_running_or_notify_cancel():
            return
        if item.tag is not None:
            with self._lock:
                self._running[item.tag] = future
        try:
            if item.local:
                # Dask: its runner stays here; the task calls back into the slot for the
                # user's function (see tinycontainer.dask).
                value = item.fn(*(a(slot.runner(future)) if isinstance(a, _Bind) else a for a in item.args))
            else:
                value = slot.run(future, item.fn, item.args, item.kwargs)
        except BaseException as exc:
            if not future.cancelled():
                with contextlib.suppress(futures_base.InvalidStateError):
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            if not future.cancelled():
                with contextlib.suppress(futures_base.InvalidStateError):
                    future.set_result(value)
        finally:
            if item.tag is not None:
                with self._lock:
                    self._running.pop(item.tag, None)

    def __repr__(self) -> str:
        return f"<ContainerExecutor mode={self.mode} max_workers={self.max_workers}>"


class _Bind:
    """An argument of a local work item that needs the slot's remote runner."""

    def __init__(self, make: Callable[[RemoteRunner], Any]) -> None:
        self.make = make

    def __call__(self, runner: RemoteRunner) -> Any:
        return self.make(runner)


class _Slot:
    """One executor thread's container (reuse mode) or its container of the moment (fresh)."""

    def __init__(self, executor: ContainerExecutor) -> None:
        self.ex = executor
        self.worker: PyContainer | None = None

    def runner(self, future: ContainerFuture) -> RemoteRunner:
        def run_remote(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            return self.run(future, fn, args, kwargs)

        return run_remote

    def _new_worker(self) -> PyContainer:
        return PyContainer(self.ex.spec, python=self.ex.python, lib_root=self.ex.lib_root)

    def run(self, future: ContainerFuture, fn: Callable[..., Any], args: tuple[Any, ...],
            kwargs: dict[str, Any]) -> Any:
        payload = dumps_call(fn, args, kwargs)
        timeout = self.ex.timeout
        reuse = self.ex.mode == "reuse"
        worker = self.worker if reuse and self.worker is not None else self._new_worker()
        if reuse:
            self.worker = worker
        future._set_killer(worker.kill)
        if future.cancelled():
            worker.kill()
        deadline = None if timeout is None else time.monotonic() + timeout
        broken = True
        try:
            reply = worker.request(payload, deadline, last=not reuse)
            broken = False
        except TimeoutError:
            worker.kill()
            assert timeout is not None
            from ._call import describe

            raise TimeoutExpired(describe(fn), timeout) from None
        finally:
            future._set_killer(None)
            if broken or not reuse:
                if reuse:
                    self.worker = None
                worker.close()
        return unpack_reply(reply)

    def close(self) -> None:
        if self.worker is not None:
            worker, self.worker = self.worker, None
            worker.close()


def _is_dask_runner(fn: Any) -> bool:
    return getattr(fn, "__module__", None) == "distributed.worker" and getattr(fn, "__name__", "") in (
        "_run_task_simple",
    )


__all__ = ["ContainerExecutor", "ContainerFuture", "Mode"]
