"""Seccomp for containers: OCI profile -> classic BPF (pure Python), a compile cache, the loader.

Typical use by the engine::

    bpf = seccomp.compile_cached(config.linux.seccomp, cache_dir)
    flags = seccomp.filter_flags(config.linux.seccomp)
    ...  # in the container init, see _loader for when
    seccomp.load(bpf, flags, sys)

Names are imported on first use (PEP 562): podman passes a profile with every container, and a
start whose program is in the compile cache needs neither the compiler nor the syscall tables.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
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
    from ._table_version import TABLE_VERSION as TABLE_VERSION

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

_MODULE_OF = {
    "cache_key": "_cache",
    "compile_cached": "_cache",
    "ACTIONS": "_compiler",
    "OPS": "_compiler",
    "CompiledFilter": "_compiler",
    "compile_filter": "_compiler",
    "filter_flags": "_compiler",
    "host_arches": "_compiler",
    "unknown_syscalls": "_compiler",
    "load": "_loader",
    "TABLE_VERSION": "_table_version",
}


def __getattr__(name: str) -> object:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # __import__ with a fromlist returns the submodule itself (importlib would cost ~1 ms).
    globals()[name] = value = getattr(__import__(f"{__name__}.{_MODULE_OF[name]}", fromlist=[name]), name)
    return value
