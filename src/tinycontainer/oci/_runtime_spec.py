"""The OCI runtime-spec (v1.2) configuration as dataclasses: pure data, no I/O, no syscalls.

Field names are the spec's camelCase names in snake_case; :mod:`._codec` maps them.
Only Linux fields are modelled; unknown properties are ignored on load, as the spec requires.
"""

from __future__ import annotations

from .._errors import SpecError
from . import _json
from ._codec import encode, field_name, from_json
from ._record import field, record
from ._state import OCI_VERSION as OCI_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


@record
class Root:
    path: str
    readonly: bool = False


@record
class Mount:
    destination: str
    source: str | None = None
    type: str | None = None
    options: list[str] = field(default_factory=list)
    uid_mappings: list[IDMapping] | None = None
    gid_mappings: list[IDMapping] | None = None


@record
class User:
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: list[int] | None = None
    username: str | None = None


@record
class ConsoleSize:
    height: int
    width: int


@record
class Capabilities:
    bounding: list[str] | None = None
    effective: list[str] | None = None
    inheritable: list[str] | None = None
    permitted: list[str] | None = None
    ambient: list[str] | None = None


@record
class Rlimit:
    type: str
    hard: int
    soft: int


@record
class Process:
    args: list[str] | None = None
    command_line: str | None = None
    env: list[str] | None = None
    cwd: str = "/"
    terminal: bool = False
    console_size: ConsoleSize | None = None
    user: User = field(default_factory=User)
    capabilities: Capabilities | None = None
    rlimits: list[Rlimit] | None = None
    no_new_privileges: bool = False
    apparmor_profile: str | None = None
    oom_score_adj: int | None = None
    selinux_label: str | None = None


@record
class Hook:
    path: str
    args: list[str] | None = None
    env: list[str] | None = None
    timeout: int | None = None


@record
class Hooks:
    prestart: list[Hook] | None = None
    create_runtime: list[Hook] | None = None
    create_container: list[Hook] | None = None
    start_container: list[Hook] | None = None
    poststart: list[Hook] | None = None
    poststop: list[Hook] | None = None


@record
class Namespace:
    type: str
    path: str | None = None


@record
class IDMapping:
    container_id: int = field(metadata=field_name("containerID"))
    host_id: int = field(metadata=field_name("hostID"))
    size: int


@record
class Device:
    type: str
    path: str
    major: int | None = None
    minor: int | None = None
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@record
class DeviceRule:
    allow: bool
    type: str | None = None
    major: int | None = None
    minor: int | None = None
    access: str | None = None


@record
class Memory:
    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None
    kernel: int | None = None
    kernel_tcp: int | None = field(default=None, metadata=field_name("kernelTCP"))
    swappiness: int | None = None
    disable_oom_killer: bool | None = field(default=None, metadata=field_name("disableOOMKiller"))
    use_hierarchy: bool | None = None
    check_before_update: bool | None = None


@record
class CPU:
    shares: int | None = None
    quota: int | None = None
    burst: int | None = None
    period: int | None = None
    realtime_runtime: int | None = None
    realtime_period: int | None = None
    cpus: str | None = None
    mems: str | None = None
    idle: int | None = None


@record
class Pids:
    limit: int


@record
class WeightDevice:
    major: int
    minor: int
    weight: int | None = None
    leaf_weight: int | None = None


@record
class ThrottleDevice:
    major: int
    minor: int
    rate: int


@record
class BlockIO:
    weight: int | None = None
    leaf_weight: int | None = None
    weight_device: list[WeightDevice] | None = None
    throttle_read_bps_device: list[ThrottleDevice] | None = None
    throttle_write_bps_device: list[ThrottleDevice] | None = None
    throttle_read_iops_device: list[ThrottleDevice] | None = field(
        default=None, metadata=field_name("throttleReadIOPSDevice")
    )
    throttle_write_iops_device: list[ThrottleDevice] | None = field(
        default=None, metadata=field_name("throttleWriteIOPSDevice")
    )


@record
class HugepageLimit:
    page_size: str
    limit: int


@record
class Resources:
    devices: list[DeviceRule] | None = None
    memory: Memory | None = None
    cpu: CPU | None = None
    pids: Pids | None = None
    block_io: BlockIO | None = field(default=None, metadata=field_name("blockIO"))
    hugepage_limits: list[HugepageLimit] | None = None
    unified: dict[str, str] | None = None


@record
class SyscallArg:
    index: int
    value: int
    op: str
    value_two: int | None = None


@record
class Syscall:
    names: list[str]
    action: str
    errno_ret: int | None = None
    args: list[SyscallArg] | None = None


@record
class Seccomp:
    default_action: str
    default_errno_ret: int | None = None
    architectures: list[str] | None = None
    flags: list[str] | None = None
    listener_path: str | None = None
    listener_metadata: str | None = None
    syscalls: list[Syscall] | None = None


@record
class TimeOffset:
    secs: int = 0
    nanosecs: int = 0


@record
class Personality:
    domain: str
    flags: list[str] | None = None


@record
class Linux:
    namespaces: list[Namespace] | None = None
    uid_mappings: list[IDMapping] | None = None
    gid_mappings: list[IDMapping] | None = None
    time_offsets: dict[str, TimeOffset] | None = None
    devices: list[Device] | None = None
    cgroups_path: str | None = None
    resources: Resources | None = None
    rootfs_propagation: str | None = None
    seccomp: Seccomp | None = None
    sysctl: dict[str, str] | None = None
    masked_paths: list[str] | None = None
    readonly_paths: list[str] | None = None
    mount_label: str | None = None
    personality: Personality | None = None


@record
class Config:
    """A bundle's ``config.json``."""

    oci_version: str = OCI_VERSION
    root: Root | None = None
    mounts: list[Mount] = field(default_factory=list)
    process: Process | None = None
    hostname: str | None = None
    domainname: str | None = None
    hooks: Hooks | None = None
    annotations: dict[str, str] | None = None
    linux: Linux | None = None

    @classmethod
    def from_dict(cls, data: object) -> Config:
        if not isinstance(data, dict):
            raise SpecError("config.json must hold a JSON object")
        if "ociVersion" not in data:
            raise SpecError("missing required field", field="ociVersion")
        return from_json(cls, data)

    @classmethod
    def from_json(cls, text: str | bytes) -> Config:
        try:
            data = _json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise SpecError(f"config.json is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = encode(self)
        return result

    def to_json(self, indent: int | None = 2) -> str:
        return _json.dumps(self.to_dict(), indent=indent)

    def namespace(self, ns_type: str) -> Namespace | None:
        for ns in (self.linux.namespaces if self.linux else None) or []:
            if ns.type == ns_type:
                return ns
        return None


def resources_from_dict(data: object) -> Resources:
    """Decode a ``linux.resources`` object (``update --resources FILE``)."""
    return from_json(Resources, data, "resources")
