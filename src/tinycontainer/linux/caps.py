"""Linux capabilities: names <-> numbers, masks, and the calls that set a container's sets.

The container init must use this order (runc's ``finalizeNamespace``; capabilities(7),
"Effect of user ID changes on capabilities"), because each step needs what the next removes:

1. ``prctl(PR_SET_KEEPCAPS, 1)``: without it, a change from uid 0 to a non-zero uid clears
   the permitted set, and the ``capset`` of step 5 could not give anything back;
2. :func:`drop_bounding_set`: PR_CAPBSET_DROP needs CAP_SETPCAP in the *effective* set, and the
   uid change of step 3 clears the effective set;
3. setgroups / setresgid / setresuid (the process user);
4. ``prctl(PR_SET_KEEPCAPS, 0)`` so the flag does not leak to the container's own children;
5. :func:`apply_capabilities`: capset (effective, permitted, inheritable), then the ambient set
   (PR_CAP_AMBIENT_CLEAR_ALL, then a raise per capability; a raise needs the capability in
   both permitted and inheritable, which is why it comes after capset).

Seccomp comes before step 2 when no_new_privs is off (loading a filter then needs
CAP_SYS_ADMIN) and after step 5 otherwise: see :mod:`tinycontainer.linux.seccomp`.

Inheritable and ambient stay empty unless the config asks: non-empty inheritable sets let file
capabilities raise privileges on execve (CVE-2022-29162, CVE-2022-24769 and siblings).
Unknown names are refused (runc and crun silently accept ``CAP_TEST``): a typo in a drop list
must not turn into a capability silently kept.
"""

from __future__ import annotations

import errno
import os

from .. import oci
from .._errors import KernelError, SpecError
from ..oci._capabilities import ALL_CAPABILITIES, DOCKER_CAPABILITIES
from . import _consts as C
from ._syscalls import Syscalls

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

CAP_NUMBERS: dict[str, int] = {name: number for number, name in enumerate(ALL_CAPABILITIES)}
CAP_LAST_KNOWN = len(ALL_CAPABILITIES) - 1

_CAP_LAST_CAP = "/proc/sys/kernel/cap_last_cap"


def mask(numbers: Iterable[int]) -> int:
    result = 0
    for number in numbers:
        result |= 1 << number
    return result


DOCKER_MASK = mask(CAP_NUMBERS[name] for name in DOCKER_CAPABILITIES)  # 0xa80425fb
ALL_KNOWN_MASK = (1 << (CAP_LAST_KNOWN + 1)) - 1


def normalize_name(name: str) -> str:
    """``"net_admin"``, ``"NET_ADMIN"`` or ``"cap_net_admin"`` -> ``"CAP_NET_ADMIN"`` (for CLI input)."""
    upper = name.strip().upper()
    canonical = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if canonical not in CAP_NUMBERS:
        raise SpecError(f"unknown capability {name!r}")
    return canonical


def cap_number(name: str) -> int:
    """The number of a capability, accepting the CLI spellings of :func:`normalize_name`."""
    return CAP_NUMBERS[normalize_name(name)]


def all_names() -> list[str]:
    """Every capability name we know, in number order."""
    return list(ALL_CAPABILITIES)


def cap_name(number: int) -> str:
    if not 0 <= number <= CAP_LAST_KNOWN:
        raise ValueError(f"no capability has number {number}")
    return ALL_CAPABILITIES[number]


def mask_from_names(names: Iterable[str], *, field: str = "process.capabilities") -> int:
    """The bit mask of OCI capability names (exact ``CAP_*`` spelling, as config.json requires)."""
    result = 0
    for i, name in enumerate(names):
        number = CAP_NUMBERS.get(name)
        if number is None:
            raise SpecError(f"unknown capability {name!r}", field=f"{field}[{i}]")
        result |= 1 << number
    return result


def names_from_mask(value: int) -> list[str]:
    """The known capability names in ``value``, in number order."""
    return [name for number, name in enumerate(ALL_CAPABILITIES) if value >> number & 1]


def last_cap(sys: Syscalls | None = None) -> int:
    """The highest capability number the running kernel knows.

    Read from /proc/sys/kernel/cap_last_cap. Without procfs (early in a container's init),
    and with ``sys`` given, the bounding set is probed with PR_CAPBSET_READ, which fails with
    EINVAL past the last capability; otherwise the highest number we know is assumed.
    """
    try:
        fd = os.open(_CAP_LAST_CAP, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return int(os.read(fd, 32).strip())
        finally:
            os.close(fd)
    except (OSError, ValueError):
        pass
    if sys is None:
        return CAP_LAST_KNOWN
    number = 0
    while number < 63:
        try:
            sys.prctl(C.PR_CAPBSET_READ, number + 1)
        except KernelError as exc:
            if exc.errno == errno.EINVAL:
                break
            raise
        number += 1
    return number


def drop_bounding_set(keep_mask: int, sys: Syscalls, *, last: int | None = None) -> None:
    """Drop every capability not in ``keep_mask`` from the bounding set (needs CAP_SETPCAP)."""
    drop_from_bounding_set(bounding_to_drop(keep_mask, last_cap(sys) if last is None else last), sys)


def bounding_to_drop(keep_mask: int, last: int) -> tuple[int, ...]:
    """The capability numbers up to ``last`` that ``keep_mask`` does not hold."""
    return tuple(number for number in range(last + 1) if not keep_mask >> number & 1)


def drop_from_bounding_set(numbers: tuple[int, ...], sys: Syscalls) -> None:
    for number in numbers:
        sys.prctl(C.PR_CAPBSET_DROP, number)


def capability_masks(
    caps: oci.Capabilities | None, *, field: str = "process.capabilities"
) -> tuple[int, int, int, int]:
    """(effective, permitted, inheritable, ambient) masks, checked for what the kernel would refuse.

    ``None`` means no capabilities at all (runc would keep the runtime's own: we do not).
    """
    if caps is None:
        return 0, 0, 0, 0
    eff = mask_from_names(caps.effective or [], field=f"{field}.effective")
    perm = mask_from_names(caps.permitted or [], field=f"{field}.permitted")
    inh = mask_from_names(caps.inheritable or [], field=f"{field}.inheritable")
    amb = mask_from_names(caps.ambient or [], field=f"{field}.ambient")
    # capset(2): EPERM when effective is not a subset of permitted.
    if extra := eff & ~perm:
        raise SpecError(f"{', '.join(names_from_mask(extra))} not in the permitted set", field=f"{field}.effective")
    # prctl(2) PR_CAP_AMBIENT_RAISE: EPERM unless the capability is permitted and inheritable.
    # `runc spec` writes exactly such a config (ambient without inheritable) and runc only warns,
    # so these are left out: not raising an ambient capability only ever gives the process less.
    # The warning is the validator's (runtime/_validate.py): this runs in the container's init,
    # which must not import anything more once inside the container's root.
    amb &= perm & inh
    return eff, perm, inh, amb


def unraisable_ambient(caps: oci.Capabilities | None) -> list[str]:
    """Ambient capabilities that capability_masks leaves out (not permitted and inheritable)."""
    if caps is None:
        return []
    perm = mask_from_names(caps.permitted or [])
    inh = mask_from_names(caps.inheritable or [])
    amb = mask_from_names(caps.ambient or [])
    return names_from_mask(amb & ~(perm & inh))


def apply_capabilities(
    caps: oci.Capabilities | None,
    sys: Syscalls,
    *,
    field: str = "process.capabilities",
    masks: tuple[int, int, int, int] | None = None,
) -> None:
    """capset the effective/permitted/inheritable sets, then set the ambient set exactly.

    ``masks``: capability_masks(caps), when the caller worked them out already."""
    eff, perm, inh, amb = capability_masks(caps, field=field) if masks is None else masks
    sys.capset(eff, perm, inh)
    try:
        sys.prctl(C.PR_CAP_AMBIENT, C.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    except KernelError as exc:
        # Kernels before 4.3 have no ambient set; nothing to clear, but nothing can be raised.
        if exc.errno != errno.EINVAL or amb:
            raise
    for number in range(CAP_LAST_KNOWN + 1):
        if amb >> number & 1:
            sys.prctl(C.PR_CAP_AMBIENT, C.PR_CAP_AMBIENT_RAISE, number, 0, 0)


__all__ = [
    "ALL_KNOWN_MASK",
    "CAP_LAST_KNOWN",
    "CAP_NUMBERS",
    "DOCKER_MASK",
    "all_names",
    "apply_capabilities",
    "cap_name",
    "cap_number",
    "capability_masks",
    "drop_bounding_set",
    "last_cap",
    "mask",
    "mask_from_names",
    "names_from_mask",
    "normalize_name",
]
