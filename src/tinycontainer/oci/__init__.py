"""OCI data: the runtime-spec configuration and state documents (pure data, no syscalls).

Names are loaded on first use (PEP 562): ``tcontainer-oci state`` and ``kill`` need only
``State``, and building the ~35 configuration classes costs more than the rest of those
commands together.
"""

from __future__ import annotations

from ._state import OCI_VERSION as OCI_VERSION
from ._state import State as State

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from ._runtime_spec import (
        CPU as CPU,
    )
    from ._runtime_spec import (
        BlockIO as BlockIO,
    )
    from ._runtime_spec import (
        Capabilities as Capabilities,
    )
    from ._runtime_spec import (
        Config as Config,
    )
    from ._runtime_spec import (
        ConsoleSize as ConsoleSize,
    )
    from ._runtime_spec import (
        Device as Device,
    )
    from ._runtime_spec import (
        DeviceRule as DeviceRule,
    )
    from ._runtime_spec import (
        Hook as Hook,
    )
    from ._runtime_spec import (
        Hooks as Hooks,
    )
    from ._runtime_spec import (
        HugepageLimit as HugepageLimit,
    )
    from ._runtime_spec import (
        IDMapping as IDMapping,
    )
    from ._runtime_spec import (
        Linux as Linux,
    )
    from ._runtime_spec import (
        Memory as Memory,
    )
    from ._runtime_spec import (
        Mount as Mount,
    )
    from ._runtime_spec import (
        Namespace as Namespace,
    )
    from ._runtime_spec import (
        Personality as Personality,
    )
    from ._runtime_spec import (
        Pids as Pids,
    )
    from ._runtime_spec import (
        Process as Process,
    )
    from ._runtime_spec import (
        Resources as Resources,
    )
    from ._runtime_spec import (
        Rlimit as Rlimit,
    )
    from ._runtime_spec import (
        Root as Root,
    )
    from ._runtime_spec import (
        Seccomp as Seccomp,
    )
    from ._runtime_spec import (
        Syscall as Syscall,
    )
    from ._runtime_spec import (
        SyscallArg as SyscallArg,
    )
    from ._runtime_spec import (
        ThrottleDevice as ThrottleDevice,
    )
    from ._runtime_spec import (
        TimeOffset as TimeOffset,
    )
    from ._runtime_spec import (
        User as User,
    )
    from ._runtime_spec import (
        WeightDevice as WeightDevice,
    )
    from ._runtime_spec import (
        resources_from_dict as resources_from_dict,
    )


def __getattr__(name: str) -> Any:
    # Every public name but the two imported above lives in _runtime_spec.
    if name in _LAZY:
        from . import _runtime_spec

        value = getattr(_runtime_spec, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BlockIO",
    "Capabilities",
    "Config",
    "ConsoleSize",
    "CPU",
    "Device",
    "DeviceRule",
    "Hook",
    "Hooks",
    "HugepageLimit",
    "IDMapping",
    "Linux",
    "Memory",
    "Mount",
    "Namespace",
    "OCI_VERSION",
    "Personality",
    "Pids",
    "Process",
    "Resources",
    "resources_from_dict",
    "Rlimit",
    "Root",
    "Seccomp",
    "State",
    "Syscall",
    "SyscallArg",
    "ThrottleDevice",
    "TimeOffset",
    "User",
    "WeightDevice",
]

_LAZY = frozenset(__all__) - {"OCI_VERSION", "State"}
