"""Low-level Linux primitives: namespaces, mounts, cgroups, capabilities, seccomp, consoles.

The only ctypes code of the project lives in :mod:`tinycontainer.linux._libc`; everything
state-changing goes through the :class:`Syscalls` seam so it can be faked in unit tests.
Submodules are imported on demand to keep ``tcontainer-oci``'s start-up lean.
"""

from __future__ import annotations

from ._syscalls import LinuxSyscalls as LinuxSyscalls
from ._syscalls import Syscalls as Syscalls

__all__ = ["LinuxSyscalls", "Syscalls"]
