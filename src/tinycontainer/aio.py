"""asyncio variants of the operations that wait: ``await tc.aio.run(...)``, ``await wait(c)``.

Each runs the blocking call in the event loop's default executor, so the loop stays free. The
supervisor is then launched from a thread, which makes the library start it with
:class:`~tinycontainer._launch.SpawnLauncher` (fork is unsafe once threads exist) unless a
launcher is given. Cancelling the awaiting task does not interrupt the worker thread: the
container keeps going until it ends or ``timeout`` runs out; pass a ``timeout``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any

from ._handle import Container
from ._result import Result
from ._spec import Spec


async def _in_thread(func: Any, *args: Any, **kwargs: Any) -> Any:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(func, *args, **kwargs))


async def run(args: Sequence[str] | None = None, **kwargs: Any) -> Result[Any]:
    """:func:`tinycontainer.run` without blocking the event loop."""
    from ._api import run as run_sync

    result: Result[Any] = await _in_thread(run_sync, args, **kwargs)
    return result


async def create(spec: Spec | None = None, args: Sequence[str] | None = None, **options: Any) -> Container:
    container: Container = await _in_thread(Container.create, spec, args, **options)
    return container


async def start(container: Container) -> Container:
    await _in_thread(container.start)
    return container


async def wait(container: Container, timeout: float | None = None) -> Result[Any]:
    result: Result[Any] = await _in_thread(container.wait, timeout)
    return result


async def stop(container: Container, timeout: float | None = None) -> Result[Any]:
    result: Result[Any] = await _in_thread(container.stop, timeout)
    return result


async def exec(container: Container, args: Sequence[str], **kwargs: Any) -> Result[Any]:
    result: Result[Any] = await _in_thread(container.exec, args, **kwargs)
    return result


async def remove(container: Container) -> None:
    await _in_thread(container.remove)


__all__ = ["create", "exec", "remove", "run", "start", "stop", "wait"]
