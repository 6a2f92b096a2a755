"""tinycontainer: a small, fast, secure Linux container runtime, as a Python library.

::

    import tinycontainer as tc

    spec = tc.Spec(image="alpine:3.20", memory="64m", cpus=1.0, pids=256, network="none")
    r = tc.run(["sh", "-c", "echo hi"], spec=spec, capture_output=True, text=True, timeout=30)
    r.returncode, r.stdout, r.reason, r.usage

    with tc.create(spec, ["sleep", "60"]) as c:
        c.start()
        c.exec(["ps"]).stdout
        c.stop()

Names are imported lazily (module ``__getattr__``, PEP 562): ``import tinycontainer`` costs
nothing beyond this file, which matters for ``tcontainer-oci`` whose every command imports the
package. See docs/python-api.md.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

    from . import aio as aio
    from ._api import run as run
    from ._call import call as call
    from ._errors import ContainerError as ContainerError
    from ._errors import ContainerExists as ContainerExists
    from ._errors import ContainerNotFound as ContainerNotFound
    from ._errors import ImageError as ImageError
    from ._errors import KernelError as KernelError
    from ._errors import LimitExceeded as LimitExceeded
    from ._errors import SpecError as SpecError
    from ._errors import StateError as StateError
    from ._errors import TinyContainerError as TinyContainerError
    from ._errors import UnsupportedError as UnsupportedError
    from ._errors import WrongStatus as WrongStatus
    from ._executor import ContainerExecutor as ContainerExecutor
    from ._executor import ContainerFuture as ContainerFuture
    from ._handle import Container as Container
    from ._handle import create as create
    from ._handle import start as start
    from ._pyworker import RemoteTraceback as RemoteTraceback
    from ._pyworker import WorkerDied as WorkerDied
    from ._result import Reason as Reason
    from ._result import Result as Result
    from ._result import TimeoutExpired as TimeoutExpired
    from ._result import Usage as Usage
    from ._spec import Mount as Mount
    from ._spec import Spec as Spec
    from ._spec import parse_size as parse_size
    from ._stdio import DEVNULL as DEVNULL
    from ._stdio import PIPE as PIPE
    from ._stdio import STDOUT as STDOUT
    from ._warm import WarmLauncher as WarmLauncher
    from ._warm import use_warm_starts as use_warm_starts

__version__ = "0.1.0"

# name -> module that defines it. Helpers adding public names add them here and to __all__.
_LAZY: dict[str, str] = {
    "Container": "._handle",
    "ContainerExecutor": "._executor",
    "ContainerFuture": "._executor",
    "ContainerError": "._errors",
    "ContainerExists": "._errors",
    "ContainerNotFound": "._errors",
    "DEVNULL": "._stdio",
    "ImageError": "._errors",
    "KernelError": "._errors",
    "LimitExceeded": "._errors",
    "Mount": "._spec",
    "PIPE": "._stdio",
    "Reason": "._result",
    "RemoteTraceback": "._pyworker",
    "Result": "._result",
    "STDOUT": "._stdio",
    "Spec": "._spec",
    "SpecError": "._errors",
    "StateError": "._errors",
    "TimeoutExpired": "._result",
    "TinyContainerError": "._errors",
    "UnsupportedError": "._errors",
    "Usage": "._result",
    "WarmLauncher": "._warm",
    "WorkerDied": "._pyworker",
    "WrongStatus": "._errors",
    "call": "._call",
    "create": "._handle",
    "parse_size": "._spec",
    "run": "._api",
    "start": "._handle",
    "use_warm_starts": "._warm",
}
_SUBMODULES = frozenset({"aio", "dask"})


def _submodule(relative: str) -> ModuleType:
    # __import__ rather than importlib.import_module: importing importlib costs a millisecond
    # of every tcontainer-oci command (its package imports warnings).
    full_name = __name__ + relative
    __import__(full_name)
    return sys.modules[full_name]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return _submodule(f".{name}")
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tinycontainer' has no attribute {name!r}")
    value = getattr(_submodule(module_name), name)
    if isinstance(value, type) and value.__module__.startswith("tinycontainer."):
        # Public classes show (and pickle) as tinycontainer.X, not as the private module.
        value.__module__ = __name__
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBMODULES})


__all__ = [
    "Container",
    "ContainerError",
    "ContainerExecutor",
    "ContainerExists",
    "ContainerFuture",
    "ContainerNotFound",
    "DEVNULL",
    "ImageError",
    "KernelError",
    "LimitExceeded",
    "Mount",
    "PIPE",
    "Reason",
    "RemoteTraceback",
    "Result",
    "STDOUT",
    "Spec",
    "SpecError",
    "StateError",
    "TimeoutExpired",
    "TinyContainerError",
    "UnsupportedError",
    "Usage",
    "WarmLauncher",
    "WorkerDied",
    "WrongStatus",
    "aio",
    "call",
    "create",
    "parse_size",
    "run",
    "start",
    "use_warm_starts",
]
