"""Resource usage of a container's cgroup, the same shape for v1 and v2."""

from __future__ import annotations

from ...oci._record import record


@record(frozen=True)
class CgroupStats:
    """A snapshot; None means the host does not report the value (controller or file absent).

    ``memory_limit``/``pids_limit`` are None when unlimited. ``oom_kills`` counts processes the
    OOM killer killed; ``oom_events`` counts times the cgroup hit its limit and the OOM killer
    was invoked (v2 memory.events "oom"; v1 has no counter for it, so None there).
    """

    cpu_usage_ns: int | None = None
    cpu_user_ns: int | None = None
    cpu_system_ns: int | None = None
    cpu_throttled_periods: int | None = None
    memory_current: int | None = None
    memory_peak: int | None = None
    memory_limit: int | None = None
    memory_swap_current: int | None = None
    oom_kills: int | None = None
    oom_events: int | None = None
    pids_current: int | None = None
    pids_peak: int | None = None
    pids_limit: int | None = None
    io_read_bytes: int | None = None
    io_write_bytes: int | None = None
