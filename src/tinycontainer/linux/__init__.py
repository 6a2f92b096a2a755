"""Low-level Linux primitives: namespaces, mounts, cgroups, capabilities, seccomp, consoles.

The only ctypes code of the project lives in :mod:`tinycontainer.linux._libc`; everything
state-changing goes through the :class:`Syscalls` seam so it can be faked in unit tests.
Submodules are imported on demand to keep ``tcontainer-oci``'s start-up lean, and so is the
seam itself (PEP 562): ``state`` and ``kill`` read /proc through :mod:`.proc` and change nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._syscalls import LinuxSyscalls as LinuxSyscalls
    from ._syscalls import Syscalls as Syscalls

_LAZY = frozenset({"LinuxSyscalls", "Syscalls"})


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import _syscalls

    value = getattr(_syscalls, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = ["LinuxSyscalls", "Syscalls"]
