"""``call()``: run a Python callable in a fresh container and return its value.

::

    import tinycontainer as tc

    def work(n):
        return sum(range(n))

    tc.call(work, 10**6, spec=tc.Spec(memory="256m", network="none"))

The function, its arguments and its return value cross the container boundary pickled with
cloudpickle (functions defined in ``__main__`` or interactively travel by value; functions of
importable modules by reference, imported in the container from the caller's ``sys.path``).
An exception raised by the function is re-raised here with the remote traceback as its
``__cause__`` (like :class:`concurrent.futures.ProcessPoolExecutor`). A container killed by a
limit raises :class:`LimitExceeded` (``reason`` "oom", "cpu-time" or "wall-time"); ``timeout``
raises :class:`TimeoutExpired`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from ._pyworker import PyContainer, dumps_call, unpack_reply
from ._result import TimeoutExpired
from ._spec import Spec

T = TypeVar("T")


def call(
    fn: Callable[..., T],
    /,
    *args: Any,
    spec: Spec | None = None,
    timeout: float | None = None,
    python: str | None = None,
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, **kwargs)`` in a new container described by ``spec`` and return its value.

    ``spec`` defaults to ``Spec()``: the host's / read-only, no network, private /tmp. The
    caller's interpreter runs in the container (``python="python3"`` uses the image's own,
    which must be the same major.minor version). The function's stdout and stderr go to the
    caller's stderr. ``timeout`` (seconds, from the start) kills the container and raises
    :class:`TimeoutExpired`. The container is removed before this returns or raises.

    Needs cloudpickle (``pip install 'tinycontainer[call]'``).
    """
    payload = dumps_call(fn, args, kwargs)
    deadline = None if timeout is None else time.monotonic() + timeout
    worker = PyContainer(spec, python=python)
    try:
        try:
            reply = worker.request(payload, deadline, last=True)
        except TimeoutError:
            worker.kill()
            assert timeout is not None
            raise TimeoutExpired(describe(fn), timeout) from None
    finally:
        worker.close()
    result: T = unpack_reply(reply)
    return result


def describe(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"call({name})"


__all__ = ["call", "describe"]
