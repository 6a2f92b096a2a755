"""Install a compiled filter in the calling thread (or, with TSYNC, in all its threads).

seccomp(2) accepts a filter from a caller that either has no_new_privs set or holds
CAP_SYS_ADMIN in its user namespace. The container init therefore loads:

* with ``noNewPrivileges: true``: after the capability drop, as the very last step before
  execve(2) (PR_SET_NO_NEW_PRIVS first), so the filter need not allow the runtime's own calls;
* with ``noNewPrivileges: false``: *before* the capability drop, while it still holds
  CAP_SYS_ADMIN (runc does the same in standard_init_linux.go). Every syscall the init makes
  after that point (capset, prctl, setresuid, close_range, execve, ...) must then be allowed by
  the profile; the Docker profile allows all of them.

A filter applies to the calling thread only unless SECCOMP_FILTER_FLAG_TSYNC is set: a library
user in a threaded program must load it in a forked single-threaded child.
"""

from __future__ import annotations

import os

from ..._errors import UnsupportedError
from .._syscalls import Syscalls


def load(bpf: bytes, flags: int, sys: Syscalls) -> int:
    """Load ``bpf`` (``struct sock_filter[]`` bytes) with seccomp(2) flags; returns the syscall result."""
    machine = os.uname().machine
    if machine != "x86_64":
        raise UnsupportedError(f"seccomp filters are compiled for x86_64 only, this host is {machine}")
    if not bpf or len(bpf) % 8:
        raise ValueError("a seccomp program is a non-empty multiple of 8 bytes")
    return sys.seccomp_set_filter(bpf, flags)
