"""Checks and conversions of OCI resource values shared by the v1 and v2 drivers.

Every error is a SpecError naming the config.json field, so `tcontainer-oci create` can say
exactly which value was wrong.
"""

from __future__ import annotations

from ... import oci
from ..._errors import SpecError

R = "linux.resources"


def _is_cpu_list(value: str) -> bool:
    """``0-3,5``: comma-separated numbers or ranges (cpuset(7) "List format"), spaces allowed
    around them. String tests, not re: re costs ~3 ms to import on every runtime command."""
    for item in value.split(","):
        bounds = item.strip().split("-")
        if len(bounds) > 2 or not all(b.isascii() and b.isdigit() for b in bounds):
            return False
    return True


def _is_page_size(value: str) -> bool:
    number, unit = value[:-2], value[-2:]
    return unit in ("KB", "MB", "GB") and number.isascii() and number.isdigit() and not number.startswith("0")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def limit(value: int | None, field: str, *, minimum: int = 0) -> int | None:
    """A byte/count limit: None or 0 = leave unchanged, -1 = unlimited, else >= minimum."""
    if value is None or value == 0:
        return None
    if not _is_int(value) or (value != -1 and value < minimum):
        raise SpecError(f"{value!r} must be -1 (unlimited) or a positive number", field=field)
    return value


def in_range(value: int | None, field: str, low: int, high: int, *, zero_unset: bool = True) -> int | None:
    if value is None or (zero_unset and value == 0):
        return None
    if not _is_int(value) or not low <= value <= high:
        raise SpecError(f"{value!r} must be between {low} and {high}", field=field)
    return value


def memory_and_swap(memory: oci.Memory) -> tuple[int | None, int | None]:
    """(limit, swap) where swap is OCI's memory+swap; -1 = unlimited, None = unchanged."""
    mem = limit(memory.limit, f"{R}.memory.limit")
    swap = limit(memory.swap, f"{R}.memory.swap")
    if mem == -1 and swap is None:
        # runc's rule: unlimited memory with no swap given means both unlimited (the v1
        # kernel refuses memory.limit_in_bytes above memory.memsw.limit_in_bytes).
        swap = -1
    if mem is not None and swap is not None and mem > 0 and swap > 0 and swap < mem:
        raise SpecError(f"memory+swap {swap} is below the memory limit {mem}", field=f"{R}.memory.swap")
    return mem, swap


def swap_v2(mem: int | None, swap: int | None) -> int | None:
    """OCI memory+swap -> cgroup v2 memory.swap.max (swap alone); -1 = "max"."""
    if swap is None or swap == -1:
        return swap
    if mem is None or mem == -1:
        raise SpecError("a swap limit needs a memory limit on cgroup v2", field=f"{R}.memory.swap")
    return swap - mem


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000], the formula crun and the OCI docs use."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000] (runc's conversion)."""
    return 1 + ((weight - 10) * 9999) // 990


def cpu_list(value: str | None, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not _is_cpu_list(value):
        raise SpecError(f"{value!r} is not a list like '0-3,5'", field=field)
    return value.replace(" ", "")


def page_size(value: str, field: str) -> str:
    if not _is_page_size(value or ""):
        raise SpecError(f"page size {value!r} must look like '2MB' or '1GB'", field=field)
    return value


def device_number(major: int, minor: int, field: str) -> str:
    for name, value in (("major", major), ("minor", minor)):
        if not _is_int(value) or value < 0:
            raise SpecError(f"{name} {value!r} must be a device number", field=f"{field}.{name}")
    return f"{major}:{minor}"


def rate(value: int, field: str) -> int:
    if not _is_int(value) or value < 0:
        raise SpecError(f"rate {value!r} must be >= 0", field=f"{field}.rate")
    return value


THROTTLES = (
    ("throttle_read_bps_device", "throttleReadBpsDevice", "read_bps_device", "rbps"),
    ("throttle_write_bps_device", "throttleWriteBpsDevice", "write_bps_device", "wbps"),
    ("throttle_read_iops_device", "throttleReadIOPSDevice", "read_iops_device", "riops"),
    ("throttle_write_iops_device", "throttleWriteIOPSDevice", "write_iops_device", "wiops"),
)
"""(oci attribute, config.json name, v1 blkio.throttle.* suffix, v2 io.max key)."""
