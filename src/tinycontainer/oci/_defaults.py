"""The default container configuration: Docker's security baseline as an OCI ``Config``.

Pure data (no syscalls). :func:`default_config` is what ``tcontainer-oci spec`` writes and what
the ``tcontainer`` CLI and the library start from; docs/security.md compares it with Docker,
runc and podman point by point. Where we differ from Docker it is on the safe side:
``noNewPrivileges`` is on, and a pids limit is set.
"""

from __future__ import annotations

import os

from .._errors import SpecError
from . import _json
from ._capabilities import ALL_CAPABILITIES, DOCKER_CAPABILITIES
from ._codec import from_json
from ._runtime_spec import (
    Capabilities,
    Config,
    Device,
    DeviceRule,
    IDMapping,
    Linux,
    Mount,
    Namespace,
    Pids,
    Process,
    Resources,
    Rlimit,
    Root,
    Seccomp,
    User,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

DEFAULT_ENV: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm")

# Files that leak host information or allow host-wide actions (moby daemon/pkg/oci/defaults.go);
# the thermal_throttle entries (GHSA-6fw5-f8r9-fgfm) are globbed on the host like Docker does.
DOCKER_MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
)
THERMAL_THROTTLE_GLOB = "/sys/devices/system/cpu/cpu*/thermal_throttle"

DOCKER_READONLY_PATHS: tuple[str, ...] = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

DEFAULT_PIDS_LIMIT = 4096
DEFAULT_HOSTNAME = "tinycontainer"

_PROFILE_RESOURCE = ("data", "seccomp-default.json")
_REQUIRES = "requiresCaps"
_EXCLUDED_BY = "excludedByCaps"
_CAP_RULES = "capabilityRules"


_PROFILE: list[dict[str, Any]] = []  # read once (functools.cache costs ~2 ms to import)


def _profile_data() -> dict[str, Any]:
    if _PROFILE:
        return _PROFILE[0]
    text = (
        _resources()
        .files("tinycontainer")
        .joinpath(_PROFILE_RESOURCE[0])
        .joinpath(_PROFILE_RESOURCE[1])
        .read_text(encoding="utf-8")
    )
    data: dict[str, Any] = _json.loads(text)
    _PROFILE.append(data)
    return data


def default_seccomp(capabilities: Iterable[str] | None = None) -> Seccomp:
    """Docker's default profile for a container whose bounding set is ``capabilities``.

    ``None`` means Docker's 14 default capabilities. Like dockerd, granting e.g. CAP_SYS_ADMIN
    also allows mount/unshare/setns and lifts the clone() namespace-flag filter.
    """
    granted = set(DOCKER_CAPABILITIES if capabilities is None else capabilities)
    data = _profile_data()
    rules = []
    for rule in [*data["syscalls"], *data[_CAP_RULES]]:
        if not set(rule.get(_REQUIRES, ())) <= granted:
            continue
        if set(rule.get(_EXCLUDED_BY, ())) & granted:
            continue
        rules.append({k: v for k, v in rule.items() if k not in (_REQUIRES, _EXCLUDED_BY, "comment")})
    profile = {k: v for k, v in data.items() if k not in (_CAP_RULES, "comment", "syscalls")}
    profile["syscalls"] = rules
    return from_json(Seccomp, profile, "seccomp-default.json")


def default_devices() -> list[Device]:
    """The devices every container gets (runtime-spec config-linux.md, "Default Devices")."""
    return [
        Device(type="c", path=f"/dev/{name}", major=major, minor=minor, file_mode=0o666, uid=0, gid=0)
        for name, major, minor in (
            ("null", 1, 3),
            ("zero", 1, 5),
            ("full", 1, 7),
            ("random", 1, 8),
            ("urandom", 1, 9),
            ("tty", 5, 0),
        )
    ]


def default_mounts(*, rootless: bool = False) -> list[Mount]:
    """Docker's default mounts (moby daemon/pkg/oci/defaults.go), with runc's /dev/shm size."""
    devpts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    if not rootless:
        # gid 5 (tty) does not exist in a user namespace that maps one id; runc --rootless drops it too.
        devpts.append("gid=5")
    return [
        Mount(destination="/proc", type="proc", source="proc", options=["nosuid", "noexec", "nodev"]),
        Mount(
            destination="/dev",
            type="tmpfs",
            source="tmpfs",
            options=["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        Mount(destination="/dev/pts", type="devpts", source="devpts", options=devpts),
        Mount(
            destination="/dev/shm",
            type="tmpfs",
            source="shm",
            options=["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        Mount(destination="/dev/mqueue", type="mqueue", source="mqueue", options=["nosuid", "noexec", "nodev"]),
        Mount(destination="/sys", type="sysfs", source="sysfs", options=["nosuid", "noexec", "nodev", "ro"]),
        Mount(
            destination="/sys/fs/cgroup",
            type="cgroup",
            source="cgroup",
            options=["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]


def default_masked_paths() -> list[str]:
    import glob

    return [*DOCKER_MASKED_PATHS, *sorted(glob.glob(THERMAL_THROTTLE_GLOB))]


def default_config(
    *,
    args: list[str] | None = None,
    terminal: bool = False,
    rootless: bool = False,
    host_uid: int | None = None,
    host_gid: int | None = None,
) -> Config:
    """A complete config.json with Docker's baseline; ``root.path`` is ``rootfs``.

    ``rootless`` adds user and cgroup namespaces with the caller's uid/gid (or ``host_uid``/
    ``host_gid``) mapped to root, like ``runc spec --rootless``, and leaves out cgroup
    resources. Unlike runc it keeps the network namespace (loopback only), which isolates more.
    """
    caps = list(DOCKER_CAPABILITIES)
    namespaces = [Namespace(type=t) for t in ("pid", "network", "ipc", "uts", "mount")]
    linux = Linux(
        namespaces=namespaces,
        masked_paths=default_masked_paths(),
        readonly_paths=list(DOCKER_READONLY_PATHS),
        seccomp=default_seccomp(caps),
    )
    if rootless:
        namespaces += [Namespace(type="user"), Namespace(type="cgroup")]
        uid = os.geteuid() if host_uid is None else host_uid
        gid = os.getegid() if host_gid is None else host_gid
        linux.uid_mappings = [IDMapping(container_id=0, host_id=uid, size=1)]
        linux.gid_mappings = [IDMapping(container_id=0, host_id=gid, size=1)]
    else:
        linux.resources = Resources(
            devices=[DeviceRule(allow=False, access="rwm")],
            pids=Pids(limit=DEFAULT_PIDS_LIMIT),
        )
    return Config(
        root=Root(path="rootfs", readonly=False),
        mounts=default_mounts(rootless=rootless),
        process=Process(
            args=list(args) if args is not None else ["sh"],
            env=list(DEFAULT_ENV),
            cwd="/",
            terminal=terminal,
            user=User(uid=0, gid=0),
            capabilities=Capabilities(
                bounding=list(caps), effective=list(caps), permitted=list(caps), inheritable=[], ambient=[]
            ),
            rlimits=[Rlimit(type="RLIMIT_NOFILE", hard=1024, soft=1024)],
            no_new_privileges=True,
        ),
        hostname=DEFAULT_HOSTNAME,
        linux=linux,
    )


def _normalize_cli_cap(name: str, field: str) -> str:
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    canonical = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if canonical not in ALL_CAPABILITIES:
        raise SpecError(f"unknown capability {name!r}", field=field)
    return canonical


def _by_number(names: Iterable[str]) -> list[str]:
    wanted = set(names)
    return [name for name in ALL_CAPABILITIES if name in wanted]


def with_capabilities(config: Config, add: Iterable[str] = (), drop: Iterable[str] = ()) -> Config:
    """A copy of ``config`` with ``--cap-add``/``--cap-drop`` applied the way Docker does.

    Names are case-insensitive with or without ``CAP_``; ``ALL`` is allowed on either side. A
    capability both added and dropped is added (Docker 20.10+). Inheritable and ambient sets
    are trimmed to what remains. A default seccomp profile is regenerated for the new set, so
    adding CAP_SYS_ADMIN also allows mount(2); a custom profile is left alone.
    """
    adds = {_normalize_cli_cap(n, "cap-add") for n in add}
    drops = {_normalize_cli_cap(n, "cap-drop") for n in drop}
    import copy  # here: only `spec` and the library need it, not a container start

    result = copy.deepcopy(config)
    process = result.process if result.process is not None else Process()
    result.process = process
    old = process.capabilities or Capabilities()
    current = list(old.bounding or [])
    if "ALL" in adds:
        names = [c for c in ALL_CAPABILITIES if c not in drops]
    elif "ALL" in drops:
        names = [c for c in adds if c != "ALL"]
    else:
        names = [c for c in current if c not in drops] + sorted(adds)
    names = _by_number(names)
    keep = set(names)
    process.capabilities = Capabilities(
        bounding=list(names),
        effective=list(names),
        permitted=list(names),
        inheritable=[c for c in old.inheritable or [] if c in keep],
        ambient=[c for c in old.ambient or [] if c in keep],
    )
    linux = result.linux
    if linux is not None and linux.seccomp is not None and linux.seccomp == default_seccomp(current):
        linux.seccomp = default_seccomp(names)
    return result


def privileged(config: Config) -> Config:
    """A copy of ``config`` as ``--privileged``: every capability, no seccomp, nothing masked,
    /sys and /sys/fs/cgroup writable, every device allowed in the devices cgroup.

    The engine still has to create the host's device nodes. no_new_privs is left as it was.
    """
    result = with_capabilities(config, add=["ALL"])
    if result.linux is None:
        result.linux = Linux()
    result.linux.seccomp = None
    result.linux.masked_paths = []
    result.linux.readonly_paths = []
    resources_ = result.linux.resources or Resources()
    resources_.devices = [DeviceRule(allow=True, access="rwm")]
    result.linux.resources = resources_
    for mount in result.mounts:
        if mount.destination in ("/sys", "/sys/fs/cgroup"):
            mount.options = [("rw" if opt == "ro" else opt) for opt in mount.options]
    return result


__all__ = [
    "ALL_CAPABILITIES",
    "DEFAULT_ENV",
    "DEFAULT_HOSTNAME",
    "DEFAULT_PIDS_LIMIT",
    "DOCKER_CAPABILITIES",
    "DOCKER_MASKED_PATHS",
    "DOCKER_READONLY_PATHS",
    "THERMAL_THROTTLE_GLOB",
    "default_config",
    "default_devices",
    "default_masked_paths",
    "default_mounts",
    "default_seccomp",
    "privileged",
    "with_capabilities",
]


def _resources() -> Any:
    # Imported on use: importlib.resources costs ~8 ms, and the capability tables of this
    # module are needed by every container start while the profile is not.
    from importlib import resources

    return resources
