"""The OCI runtime engine: create/start/state/kill/delete/exec of containers from bundles.

Names are imported on first use (PEP 562): the engine's own modules import this package, and
``tcontainer-oci``'s commands should load only what they use.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._container import DEFAULT_ROOT as DEFAULT_ROOT
    from ._container import Container as Container
    from ._container import Runtime as Runtime
    from ._container import Status as Status
    from ._container import release_init as release_init
    from ._signals import parse_signal as parse_signal

# name -> module of this package that defines it
_LAZY = {
    "DEFAULT_ROOT": "_container",
    "Container": "_container",
    "Runtime": "_container",
    "Status": "_container",
    "parse_signal": "_signals",
    "release_init": "_container",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # __import__, not importlib.import_module: importlib's package costs ~1 ms to import.
    value = getattr(__import__(module_name, globals(), None, [name], 1), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = ["DEFAULT_ROOT", "Container", "Runtime", "Status", "parse_signal", "release_init"]
