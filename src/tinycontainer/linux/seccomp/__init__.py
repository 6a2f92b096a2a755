"""Seccomp for containers: OCI profile -> classic BPF (pure Python), a compile cache, the loader.

Typical use by the engine::

    bpf = seccomp.compile_cached(config.linux.seccomp, cache_dir)
    flags = seccomp.filter_flags(config.linux.seccomp)
    ...  # in the container init, see _loader for when
    seccomp.load(bpf, flags, sys)
"""

from __future__ import annotations

from ._cache import cache_key as cache_key
from ._cache import compile_cached as compile_cached
from ._compiler import ACTIONS as ACTIONS
from ._compiler import OPS as OPS
from ._compiler import CompiledFilter as CompiledFilter
from ._compiler import compile_filter as compile_filter
from ._compiler import filter_flags as filter_flags
from ._compiler import host_arches as host_arches
from ._compiler import unknown_syscalls as unknown_syscalls
from ._loader import load as load
from ._tables import TABLE_VERSION as TABLE_VERSION

__all__ = [
    "ACTIONS",
    "OPS",
    "TABLE_VERSION",
    "CompiledFilter",
    "cache_key",
    "compile_cached",
    "compile_filter",
    "filter_flags",
    "host_arches",
    "load",
    "unknown_syscalls",
]
