"""Run chosen Dask tasks in containers: a ``WorkerPlugin`` that adds a named executor.

::

    from distributed import Client, LocalCluster
    import dask
    import tinycontainer as tc
    from tinycontainer.dask import ContainerPlugin

    client = Client(LocalCluster(processes=True, n_workers=2, threads_per_worker=1))
    client.register_plugin(ContainerPlugin(tc.Spec(memory="512m"), mode="reuse"))
    with dask.annotate(executor="tinycontainer"):
        fut = client.submit(untrusted, data)          # runs in a container
    client.submit(trusted, data)                      # runs in the worker's threads as usual

Only the task's own function crosses into the container: Dask calls an executor that is not a
``ThreadPoolExecutor`` as ``submit(_run_task_simple, task, data, delay)``; that wrapper (error
messages, tblib tracebacks, timings) stays in the worker and the task's ``func`` is swapped for
a call through the container (with Dask's machinery in the child each task cost ~1.4 s of CPU;
with only the user's function, milliseconds in a reused worker).

``client.cancel`` of a running task kills its container: Dask never interrupts a running task
by itself, but the plugin's :meth:`ContainerPlugin.transition` sees the task leave
"executing" for "released". Memory is limited by the container's cgroup (Dask's memory monitor
only counts the worker's own RSS and cannot see it); a task killed by the OOM killer fails with
:class:`tinycontainer.LimitExceeded` whose message says OOM.

The worker runs at most ``nthreads`` tasks at once whatever the executor; give the plugin
``max_workers`` >= the worker's threads (the default), and use Dask ``resources=`` to bound how
many sandboxed tasks a worker takes.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable
from typing import Any

try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("tinycontainer.dask needs distributed: pip install 'tinycontainer[dask]'") from exc

from ._executor import ContainerExecutor, Mode, RemoteRunner, _Bind
from ._spec import Spec

EXECUTOR_NAME = "tinycontainer"
# Transitions that end a running task normally; any other way out of "executing" means the
# task was cancelled, released or rescheduled and its container must stop.
_NORMAL_ENDS = frozenset({"memory", "error", "long-running", "executing"})


class SandboxedTask:
    """Stands in for a Dask ``Task`` in ``_run_task_simple``: arguments are resolved here, in
    the worker; only ``func(*args, **kwargs)`` runs in the container."""

    def __init__(self, task: Any, runner: RemoteRunner) -> None:
        self.task = task
        self.runner = runner
        self.key = getattr(task, "key", None)

    def __call__(self, values: Any = ()) -> Any:
        func = getattr(self.task, "func", None)
        if func is None:  # an Alias or DataNode: nothing of the user's runs
            return self.task(values)
        runner = self.runner

        def in_container(*args: Any, **kwargs: Any) -> Any:
            return runner(func, args, kwargs)

        shadow = copy.copy(self.task)
        shadow.func = in_container
        return shadow(values)


def sandboxed_task_args(args: tuple[Any, ...]) -> tuple[tuple[Any, ...], Hashable | None]:
    """``(task, data, delay)`` of ``_run_task_simple`` -> the same with the task sandboxed, and
    the task's key (to find its container on cancel)."""
    task, *rest = args
    key = getattr(task, "key", None)

    def make(runner: RemoteRunner) -> SandboxedTask:
        return SandboxedTask(task, runner)

    return (_Bind(make), *rest), key


class ContainerPlugin(WorkerPlugin):
    """Installs a :class:`~tinycontainer.ContainerExecutor` named ``name`` on every worker.

    Picklable (it is sent to each worker, nanny workers included); the executor is created in
    the worker by :meth:`setup`.
    """

    def __init__(
        self,
        spec: Spec | None = None,
        *,
        name: str = EXECUTOR_NAME,
        mode: Mode = "reuse",
        max_workers: int | None = None,
        timeout: float | None = None,
        python: str | None = None,
    ) -> None:
        self.spec = spec
        self.executor_name = name
        self.name = f"tinycontainer-executor-{name}"
        self.mode: Mode = mode
        self.max_workers = max_workers
        self.timeout = timeout
        self.python = python
        self.executor: ContainerExecutor | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["executor"] = None
        return state

    def setup(self, worker: Any) -> None:
        nthreads = getattr(getattr(worker, "state", None), "nthreads", None) or getattr(worker, "nthreads", 1)
        self.executor = ContainerExecutor(self.spec, max_workers=self.max_workers or nthreads, mode=self.mode,
                                          timeout=self.timeout, python=self.python)
        worker.executors[self.executor_name] = self.executor

    def teardown(self, worker: Any) -> None:
        if self.executor is not None:
            if worker.executors.get(self.executor_name) is self.executor:
                del worker.executors[self.executor_name]
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None

    def transition(self, key: Hashable, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if start == "executing" and finish not in _NORMAL_ENDS and self.executor is not None:
            self.executor.kill(key)


def executor_for_worker(spec: Spec | None = None, **options: Any) -> dict[str, ContainerExecutor]:
    """``Worker(executor=...)`` / ``LocalCluster(executor=...)`` value without a plugin
    (picklable; no cancel support: that needs the plugin's transition hook)."""
    return {EXECUTOR_NAME: ContainerExecutor(spec, **options)}


__all__ = ["EXECUTOR_NAME", "ContainerPlugin", "SandboxedTask", "executor_for_worker", "sandboxed_task_args"]
