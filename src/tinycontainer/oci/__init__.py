"""OCI data: the runtime-spec configuration and state documents (pure data, no syscalls).

Names are loaded on first use (PEP 562): ``tcontainer-oci state`` and ``kill`` need only
``State``, and building the ~35 configuration classes costs more than the rest of those
commands together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._state import OCI_VERSION as OCI_VERSION
from ._state import State as State

if TYPE_CHECKING:
    from ._runtime_spec import (
        CPU as CPU,
        BlockIO as BlockIO,
        Capabilities as Capabilities,
        Config as Config,
        ConsoleSize as ConsoleSize,
        Device as Device,
        DeviceRule as DeviceRule,
        Hook as Hook,
        Hooks as Hooks,
        HugepageLimit as HugepageLimit,
        IDMapping as IDMapping,
        Linux as Linux,
        Memory as Memory,
        Mount as Mount,
        Namespace as Namespace,
        Personality as Personality,
        Pids as Pids,
        Process as Process,
        Resources as Resources,
        Rlimit as Rlimit,
        Root as Root,
        Seccomp as Seccomp,
        Syscall as Syscall,
        SyscallArg as SyscallArg,
        ThrottleDevice as ThrottleDevice,
        TimeOffset as TimeOffset,
        User as User,
        WeightDevice as WeightDevice,
        resources_from_dict as resources_from_dict,
    )

_LAZY = {
    "CPU",
    "BlockIO",
    "Capabilities",
    "Config",
    "ConsoleSize",
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
    "Personality",
    "Pids",
    "Process",
    "Resources",
    "Rlimit",
    "Root",
    "Seccomp",
    "Syscall",
    "SyscallArg",
    "ThrottleDevice",
    "TimeOffset",
    "User",
    "WeightDevice",
    "resources_from_dict",
}


def __getattr__(name: str) -> Any:
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
