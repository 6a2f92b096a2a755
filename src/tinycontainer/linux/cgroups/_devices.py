"""Device access rules: validation, runc's default allow-list, and the v1 devices.allow syntax."""

from __future__ import annotations

from ... import oci
from ..._errors import SpecError

FIELD = "linux.resources.devices"


def _rule(kind: str, major: int | None, minor: int | None, access: str = "rwm") -> oci.DeviceRule:
    return oci.DeviceRule(allow=True, type=kind, major=major, minor=minor, access=access)


# runc's allow-list (libcontainer/specconv AllowedDevices): mknod of any device node (the
# rootfs may need its own nodes), and read/write of the harmless character devices every
# container's /dev has. The engine appends these after the spec's own rules.
DEFAULT_ALLOWED_DEVICES: list[oci.DeviceRule] = [
    _rule("c", None, None, "m"),
    _rule("b", None, None, "m"),
    _rule("c", 1, 3),  # /dev/null
    _rule("c", 1, 8),  # /dev/random
    _rule("c", 1, 7),  # /dev/full
    _rule("c", 5, 0),  # /dev/tty
    _rule("c", 1, 5),  # /dev/zero
    _rule("c", 1, 9),  # /dev/urandom
    _rule("c", 136, None),  # /dev/pts/*
    _rule("c", 5, 2),  # /dev/ptmx
    _rule("c", 10, 200),  # /dev/net/tun
]


def normalize(rule: oci.DeviceRule, index: int) -> tuple[bool, str, int | None, int | None, str]:
    """(allow, type 'a'|'b'|'c', major or None for any, minor or None for any, access) of a valid rule."""
    where = f"{FIELD}[{index}]"
    kind = rule.type or "a"
    if kind not in ("a", "b", "c"):
        raise SpecError(f"type {rule.type!r} must be 'a', 'b' or 'c'", field=f"{where}.type")
    access = rule.access or "rwm"
    if not access or set(access) - set("rwm") or len(set(access)) != len(access):
        raise SpecError(f"access {rule.access!r} must be letters from 'rwm'", field=f"{where}.access")
    numbers: list[int | None] = []
    for name, value in (("major", rule.major), ("minor", rule.minor)):
        if value is None or value == -1:
            numbers.append(None)
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 0xFFFFFFFF:
            raise SpecError(f"{name} {value!r} must be a device number or -1", field=f"{where}.{name}")
        else:
            numbers.append(value)
    access = "".join(c for c in "rwm" if c in access)
    return rule.allow, kind, numbers[0], numbers[1], access


def v1_lines(kind: str, major: int | None, minor: int | None, access: str) -> list[str]:
    """The devices.allow/devices.deny lines (Documentation/admin-guide/cgroup-v1/devices.rst)."""
    if kind == "a":
        if major is None and minor is None and access == "rwm":
            # "a" resets the cgroup to allow-all/deny-all and drops its exceptions.
            return ["a *:* rwm"]
        # The kernel ignores everything after "a", so a narrower rule is spelt per type.
        return [*v1_lines("b", major, minor, access), *v1_lines("c", major, minor, access)]
    return [f"{kind} {'*' if major is None else major}:{'*' if minor is None else minor} {access}"]
