"""cgroup drivers: v1 (one hierarchy per controller) and v2 (the unified hierarchy).

``detect()`` reads the host's layout, ``create_manager()`` picks the driver (v1 whenever v1
controllers are mounted, also on "hybrid" hosts), ``load_manager()`` restores one from
``to_dict()``. Every write goes to a cgroup the manager resolved for the container; only the
directories it created are removed.
"""

from __future__ import annotations

import sys

from ._layout import Hierarchy as Hierarchy
from ._layout import Layout as Layout
from ._layout import Membership as Membership
from ._layout import detect as detect
from ._layout import membership as membership
from ._layout import parse_mountinfo as parse_mountinfo
from ._layout import parse_proc_cgroup as parse_proc_cgroup
from ._manager import CgroupManager as CgroupManager
from ._manager import create_manager as create_manager
from ._manager import load_manager as load_manager
from ._paths import resolve as resolve_path

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from ._devices import DEFAULT_ALLOWED_DEVICES as DEFAULT_ALLOWED_DEVICES
    from ._stats import CgroupStats as CgroupStats
    from ._v1 import V1Manager as V1Manager
    from ._v2 import V2Manager as V2Manager

# Loaded on first use (PEP 562): a host runs one driver, and the OCI config classes the device
# list is made of cost ~1 ms that delete, kill and state (podman's hot path) do not need.
_LAZY = {
    "DEFAULT_ALLOWED_DEVICES": "._devices",
    "CgroupStats": "._stats",
    "V1Manager": "._v1",
    "V2Manager": "._v2",
}


def __getattr__(name: str) -> Any:
    relative = _LAZY.get(name)
    if relative is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    full_name = __name__ + relative
    __import__(full_name)
    value = getattr(sys.modules[full_name], name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_ALLOWED_DEVICES",
    "CgroupManager",
    "CgroupStats",
    "Hierarchy",
    "Layout",
    "Membership",
    "V1Manager",
    "V2Manager",
    "create_manager",
    "detect",
    "load_manager",
    "membership",
    "parse_mountinfo",
    "parse_proc_cgroup",
    "resolve_path",
]
