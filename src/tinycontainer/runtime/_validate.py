"""Checks run on a config before anything is created (runc ``validate.Validate``).

Each check is a small function raising :class:`SpecError` naming the field; they run in order
and side effects start only after all of them passed, so bad input never leaves a half-made
container behind.
"""

from __future__ import annotations

import os
import posixpath

from .. import oci
from .._errors import SpecError, UnsupportedError
from ..linux import _consts as C

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
RLIMITS = C.RLIMIT_NUMBERS

# (uid_t)-1 = 4294967295 is the "no change" value of the set*id(2) calls, never a real id.
MAX_ID = 0xFFFFFFFF

SECCOMP_ACTIONS = {
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
}


class Context:
    def __init__(self, bundle: str, console_socket: str | None, detached: bool) -> None:
        self.bundle = bundle
        self.console_socket = console_socket
        self.detached = detached


if TYPE_CHECKING:
    Check = Callable[[oci.Config, Context], None]


def _namespaces(config: oci.Config) -> list[oci.Namespace]:
    return list((config.linux.namespaces if config.linux else None) or [])


def check_version(config: oci.Config, ctx: Context) -> None:
    if not config.oci_version.startswith("1."):
        raise SpecError(
            f"unsupported version {config.oci_version!r} (tinycontainer implements 1.x)", field="ociVersion"
        )


def check_root(config: oci.Config, ctx: Context) -> None:
    if config.root is None or not config.root.path:
        raise SpecError("a root filesystem path is required", field="root.path")
    path = config.root.path if os.path.isabs(config.root.path) else os.path.join(ctx.bundle, config.root.path)
    if not os.path.isdir(path):
        raise SpecError(f"root filesystem {path} does not exist or is not a directory", field="root.path")
    if os.path.realpath(path) == "/" and not config.root.readonly:
        raise SpecError("the host's / can only be a container's root read-only", field="root.path")


def check_process(config: oci.Config, ctx: Context) -> None:
    proc = config.process
    if proc is None:
        raise SpecError("a process is required to create a container", field="process")
    if not proc.args:
        raise SpecError("process.args must name the program to run", field="process.args")
    if not proc.cwd.startswith("/"):
        raise SpecError("must be an absolute path", field="process.cwd")
    for i, item in enumerate(proc.env or []):
        if "=" not in item:
            raise SpecError(f"{item[:60]!r} is not KEY=VALUE", field=f"process.env[{i}]")
        if "\0" in item:
            raise SpecError("contains a NUL byte", field=f"process.env[{i}]")
    for i, arg in enumerate(proc.args):
        if "\0" in arg:
            raise SpecError("contains a NUL byte", field=f"process.args[{i}]")
    # uid_t is 32 bits and (uid_t)-1 means "leave unchanged" to setresuid(2)/setresgid(2): a
    # config uid of -1 (or 4294967295) would silently keep the runtime's root.
    ids = [("process.user.uid", proc.user.uid), ("process.user.gid", proc.user.gid)]
    ids += [(f"process.user.additionalGids[{i}]", g) for i, g in enumerate(proc.user.additional_gids or [])]
    for field, value in ids:
        if value is not None and not 0 <= value < MAX_ID:
            raise SpecError(f"{value} is not a valid id (0 to {MAX_ID - 1})", field=field)
    if proc.terminal and ctx.detached and not ctx.console_socket:
        raise SpecError("process.terminal is true: --console-socket is required for a detached container")
    if ctx.console_socket and not proc.terminal:
        raise SpecError("--console-socket was given but process.terminal is false")
    seen = set()
    for i, rl in enumerate(proc.rlimits or []):
        if rl.type not in RLIMITS:
            raise SpecError(f"unknown rlimit {rl.type!r}", field=f"process.rlimits[{i}].type")
        if rl.type in seen:
            raise SpecError(f"rlimit {rl.type} given twice", field=f"process.rlimits[{i}].type")
        seen.add(rl.type)
        if rl.soft > rl.hard:
            raise SpecError("soft limit is above the hard limit", field=f"process.rlimits[{i}]")
    if proc.apparmor_profile and not os.path.exists("/sys/kernel/security/apparmor"):
        raise UnsupportedError(
            f"process.apparmorProfile {proc.apparmor_profile!r} was requested but AppArmor is not enabled on this host"
        )
    if proc.selinux_label and not os.path.exists("/sys/fs/selinux/enforce"):
        raise UnsupportedError("process.selinuxLabel was requested but SELinux is not enabled on this host")
    if proc.capabilities is not None:
        from ..linux import caps

        for name in ("bounding", "effective", "inheritable", "permitted", "ambient"):
            caps.mask_from_names(getattr(proc.capabilities, name) or [], field=f"process.capabilities.{name}")
        if left_out := caps.unraisable_ambient(proc.capabilities):
            from ._log import warn

            warn(
                f"process.capabilities.ambient: {', '.join(left_out)} not raised: an ambient capability "
                "must also be permitted and inheritable"
            )


def check_namespaces(config: oci.Config, ctx: Context) -> None:
    seen: set[str] = set()
    for i, ns in enumerate(_namespaces(config)):
        if ns.type not in NAMESPACE_TYPES:
            raise SpecError(f"unknown namespace type {ns.type!r}", field=f"linux.namespaces[{i}].type")
        if ns.type in seen:
            raise SpecError(f"namespace {ns.type!r} listed twice", field=f"linux.namespaces[{i}].type")
        seen.add(ns.type)
        if ns.path is not None and not os.path.exists(ns.path):
            raise SpecError(f"namespace path {ns.path} does not exist", field=f"linux.namespaces[{i}].path")
    linux = config.linux
    has_user = "user" in seen
    if linux and (linux.uid_mappings or linux.gid_mappings) and not has_user:
        raise SpecError("uid/gid mappings need a user namespace", field="linux.uidMappings")
    user_ns = config.namespace("user")
    if user_ns and user_ns.path is None and not (linux and linux.uid_mappings and linux.gid_mappings):
        raise SpecError("a new user namespace needs uidMappings and gidMappings", field="linux.uidMappings")
    if (config.hostname or config.domainname) and "uts" not in seen:
        raise SpecError("setting the hostname needs a uts namespace", field="hostname")
    if linux and linux.time_offsets and "time" not in seen:
        raise SpecError("time offsets need a time namespace", field="linux.timeOffsets")
    _check_mount_namespace(config)


def _check_mount_namespace(config: oci.Config) -> None:
    """Refuse to build a rootfs in the caller's mount namespace.

    Without a mount namespace of its own the init would make the caller's / rslave, mount
    config.mounts into it and pivot_root(2), which moves the root of *every* process of that
    namespace (pivot_root(2): "changes the root directory ... of each process ... in the same
    mount namespace"); on the host that is the whole machine. runc instead chroots and leaks
    the mounts into the caller (runtime-tools linux_ns_itype left 42 behind); we refuse.
    """
    mnt = config.namespace("mount")
    if mnt is None:
        raise SpecError(
            "a container needs a mount namespace (new or joined): tinycontainer never sets up a rootfs "
            "in the caller's mount namespace",
            field="linux.namespaces",
        )
    if mnt.path is not None:
        own = os.stat("/proc/self/ns/mnt")
        joined = os.stat(mnt.path)
        if (joined.st_dev, joined.st_ino) == (own.st_dev, own.st_ino):
            raise SpecError(
                f"{mnt.path} is the runtime's own mount namespace: the rootfs would be set up in it",
                field="linux.namespaces",
            )


def check_mounts(config: oci.Config, ctx: Context) -> None:
    for i, m in enumerate(config.mounts):
        if not m.destination:
            raise SpecError("is empty", field=f"mounts[{i}].destination")
        if not posixpath.isabs(m.destination):
            raise SpecError(f"{m.destination!r} must be an absolute path", field=f"mounts[{i}].destination")
        if ".." in m.destination.split("/"):
            raise SpecError(f"{m.destination!r} must not contain '..'", field=f"mounts[{i}].destination")
        if posixpath.normpath(m.destination) == "/":
            raise SpecError("cannot mount over the container's /", field=f"mounts[{i}].destination")


def check_sysctl(config: oci.Config, ctx: Context) -> None:
    # Only namespaced sysctls, and only with that namespace: one rule set, kept next to the
    # code that writes them (linux/rootfs.py).
    from ..linux.rootfs import validate_sysctl

    validate_sysctl(config)


def check_seccomp(config: oci.Config, ctx: Context) -> None:
    sc = config.linux.seccomp if config.linux else None
    if sc is None:
        return
    if sc.default_action not in SECCOMP_ACTIONS:
        raise SpecError(f"unknown action {sc.default_action!r}", field="linux.seccomp.defaultAction")
    for i, rule in enumerate(sc.syscalls or []):
        if rule.action not in SECCOMP_ACTIONS:
            raise SpecError(f"unknown action {rule.action!r}", field=f"linux.seccomp.syscalls[{i}].action")


def check_hooks(config: oci.Config, ctx: Context) -> None:
    hooks = config.hooks
    if hooks is None:
        return
    for stage in ("prestart", "create_runtime", "create_container", "start_container", "poststart", "poststop"):
        for i, hook in enumerate(getattr(hooks, stage) or []):
            if not os.path.isabs(hook.path):
                raise SpecError("must be an absolute path", field=f"hooks.{stage}[{i}].path")
            if hook.timeout is not None and hook.timeout <= 0:
                raise SpecError("must be a positive number of seconds", field=f"hooks.{stage}[{i}].timeout")


def check_personality(config: oci.Config, ctx: Context) -> None:
    pers = config.linux.personality if config.linux else None
    if pers is not None and pers.domain not in ("LINUX", "LINUX32"):
        raise SpecError(f"unknown domain {pers.domain!r}", field="linux.personality.domain")


CHECKS: list[Check] = [
    check_version,
    check_root,
    check_process,
    check_namespaces,
    check_mounts,
    check_sysctl,
    check_seccomp,
    check_hooks,
    check_personality,
]


def validate(config: oci.Config, bundle: str, *, console_socket: str | None = None, detached: bool = True) -> None:
    ctx = Context(bundle, console_socket, detached)
    for check in CHECKS:
        check(config, ctx)
