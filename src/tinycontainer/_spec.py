"""The library's container description: :class:`Spec`, a frozen, picklable, hashable dataclass.

A ``Spec`` says *what* to run and under which limits; :meth:`Spec.to_oci_config` turns it into
an OCI ``config.json`` built on :func:`tinycontainer.defaults.default_config` (Docker's security
baseline plus no_new_privileges and a pids limit), and :meth:`Spec.from_oci_config` reads back
the fields that map. Everything is validated in ``__post_init__``: a bad value raises
:class:`SpecError` naming the field before anything is created.

Pure data: no syscalls, no file system access except reading a seccomp profile file given by
path (in :meth:`to_oci_config`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import posixpath
import re
import signal as _signal
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from . import oci
from ._errors import SpecError, UnsupportedError
from .oci import _defaults as defaults

# ---------------------------------------------------------------------------------------------
# small value types


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable, picklable str -> str mapping (insertion order kept)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: dict[str, str] = dict(pairs)

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return repr(self._items)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMap, (tuple(self._items.items()),))


MountType = Literal["bind", "tmpfs", "volume"]
NETWORK_NONE = "none"
NETWORK_HOST = "host"
SECCOMP_DEFAULT = "default"
SECCOMP_UNCONFINED = "unconfined"
DEFAULT_STOP_TIMEOUT = 10.0
CPU_PERIOD_US = 100_000
LABEL_PREFIX = "org.tinycontainer.label."
# runtime/_reaper.py: PID 1 stays a small reaper that forwards signals to the program.
INIT_ANNOTATION = "org.tinycontainer.init"
# Limits OCI has no field for (the supervisor enforces them); kept so from_oci_config sees them.
CPU_TIME_ANNOTATION = "org.tinycontainer.cpu-time"
WALL_TIME_ANNOTATION = "org.tinycontainer.wall-time"
# In host mode the caller's / is the root (read-only); these get private, empty tmpfs copies so
# nothing the container writes reaches the host and no host socket under /run (docker.sock,
# dbus) is reachable: a read-only mount does not stop connect(2) on a unix socket.
HOST_PRIVATE_DIRS: tuple[str, ...] = ("/tmp", "/run", "/var/tmp")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_NETWORK_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")
_HOSTNAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
_ENV_NAME = re.compile(r"^[^=\0]+$")
_ULIMIT_NAMES = (
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
)  # fmt: skip


def parse_size(value: int | str, field_name: str = "size") -> int:
    """Bytes from an int or a string with an optional k/m/g/t suffix (binary: 1k = 1024).

    ``"64m"``, ``"64M"``, ``"64MiB"``, ``"64mb"`` and ``67108864`` are all 64 MiB. -1 (unlimited)
    is returned as is; other negatives, zero-length and unknown suffixes raise :class:`SpecError`.
    """
    if isinstance(value, bool):
        raise SpecError(f"{value!r} is not a size", field=field_name)
    if isinstance(value, int):
        if value < -1:
            raise SpecError(f"{value} must be -1 (unlimited) or a number of bytes", field=field_name)
        return value
    if not isinstance(value, str):
        raise SpecError(f"{value!r} is not a size (use an int of bytes or a string like '64m')", field=field_name)
    if value.strip() == "-1":
        return -1
    match = _SIZE.match(value)
    if not match:
        raise SpecError(f"{value!r} is not a size (use e.g. 512k, 64m, 2g)", field=field_name)
    number, unit, _ = match.groups()
    return int(float(number) * _SIZE_FACTORS[unit.lower()])


def _parse_signal(value: int | str, field_name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value < _signal.NSIG:
            raise SpecError(f"{value} is not a signal number", field=field_name)
        return value
    if isinstance(value, str):
        name = value.strip().upper()
        if name.isdigit():
            return _parse_signal(int(name), field_name)
        if not name.startswith("SIG"):
            name = "SIG" + name
        try:
            return int(_signal.Signals[name])
        except KeyError:
            pass
    raise SpecError(f"{value!r} is not a signal", field=field_name)


# ---------------------------------------------------------------------------------------------
# mounts


@dataclass(frozen=True, kw_only=True)
class Mount:
    """A mount in the container.

    ``type="bind"``: ``source`` is a host path (must exist when the container is created).
    ``type="tmpfs"``: ``source`` is unused; ``size`` (e.g. ``"64m"``) and ``mode`` apply.
    ``type="volume"``: ``source`` is a volume name, kept under the volume root between runs.
    """

    target: str
    source: str | None = None
    type: MountType = "bind"
    read_only: bool = False
    size: int | str | None = None
    mode: int | None = None
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        f = f"mounts[{self.target!r}]"
        if self.type not in ("bind", "tmpfs", "volume"):
            raise SpecError(f"unknown mount type {self.type!r} (bind, tmpfs or volume)", field=f"{f}.type")
        if not isinstance(self.target, str) or not posixpath.isabs(self.target):
            raise SpecError(f"{self.target!r} must be an absolute path", field=f"{f}.target")
        if ".." in self.target.split("/") or "\0" in self.target:
            raise SpecError(f"{self.target!r} must not contain '..' or NUL", field=f"{f}.target")
        if posixpath.normpath(self.target) == "/":
            raise SpecError("cannot mount over the container's /", field=f"{f}.target")
        object.__setattr__(self, "target", posixpath.normpath(self.target))
        if self.type == "bind":
            if not self.source or not os.path.isabs(self.source):
                raise SpecError("a bind mount needs an absolute host path as source", field=f"{f}.source")
        elif self.type == "volume":
            if not self.source or not _NETWORK_NAME.match(self.source):
                raise SpecError(f"{self.source!r} is not a volume name ([A-Za-z0-9_.-])", field=f"{f}.source")
        elif self.source is not None:
            raise SpecError("a tmpfs mount takes no source", field=f"{f}.source")
        if self.size is not None:
            if self.type != "tmpfs":
                raise SpecError("only a tmpfs mount has a size", field=f"{f}.size")
            size = parse_size(self.size, f"{f}.size")
            if size <= 0:
                raise SpecError("must be a positive size", field=f"{f}.size")
            object.__setattr__(self, "size", size)
        if self.mode is not None and (self.type != "tmpfs" or not 0 <= self.mode <= 0o7777):
            raise SpecError("mode is a permission (0..0o7777) of a tmpfs mount", field=f"{f}.mode")
        options = tuple(self.options)
        for opt in options:
            if not isinstance(opt, str) or "," in opt or "\0" in opt:
                raise SpecError(f"{opt!r} is not a single mount option", field=f"{f}.options")
        object.__setattr__(self, "options", options)

    def to_oci(self, volume_root: str | None = None) -> oci.Mount:
        """The OCI mount; volumes become binds of ``volume_root/<name>/_data``."""
        extra = list(self.options)
        if self.type == "tmpfs":
            opts = ["nosuid", "nodev", "noexec"]
            if self.size is not None:
                opts.append(f"size={parse_size(self.size)}")
            opts.append(f"mode={self.mode:o}" if self.mode is not None else "mode=1777")
            if self.read_only:
                opts.append("ro")
            return oci.Mount(destination=self.target, type="tmpfs", source="tmpfs", options=_merge(opts, extra))
        source = self.source
        assert source is not None
        if self.type == "volume":
            if volume_root is None:
                raise SpecError("a volume mount needs a volume root", field=f"mounts[{self.target!r}].source")
            source = os.path.join(volume_root, source, "_data")
        opts = ["rbind", "rprivate", "ro" if self.read_only else "rw"]
        return oci.Mount(destination=self.target, type="bind", source=source, options=_merge(opts, extra))

    @classmethod
    def from_oci(cls, mount: oci.Mount, volume_root: str | None = None) -> Mount | None:
        """The library mount for an OCI mount, or None when it is not one :meth:`to_oci` makes."""
        opts = list(mount.options)
        read_only = "ro" in opts
        if mount.type == "tmpfs":
            size: int | None = None
            mode: int | None = None
            rest = []
            for opt in opts:
                if opt.startswith("size="):
                    size = parse_size(opt[5:])
                elif opt.startswith("mode="):
                    mode = int(opt[5:], 8)
                elif opt not in ("nosuid", "nodev", "noexec", "ro", "rw"):
                    rest.append(opt)
            if mode == 0o1777:
                mode = None
            return cls(target=mount.destination, type="tmpfs", read_only=read_only, size=size, mode=mode,
                       options=tuple(rest))
        if mount.type == "bind" or "bind" in opts or "rbind" in opts:
            if not mount.source:
                return None
            rest = [o for o in opts if o not in ("rbind", "bind", "rprivate", "ro", "rw")]
            if volume_root is not None:
                prefix = os.path.join(volume_root, "")
                if mount.source.startswith(prefix) and mount.source.endswith("/_data"):
                    name = mount.source[len(prefix) : -len("/_data")]
                    return cls(target=mount.destination, type="volume", source=name, read_only=read_only,
                               options=tuple(rest))
            return cls(target=mount.destination, type="bind", source=mount.source, read_only=read_only,
                       options=tuple(rest))
        return None


def _merge(base: list[str], extra: list[str]) -> list[str]:
    # A later ro/rw wins in mount(8); drop the base's opposite so the list reads unambiguously.
    if "ro" in extra or "rw" in extra:
        base = [o for o in base if o not in ("ro", "rw")]
    return [*base, *(o for o in extra if o not in base)]


# ---------------------------------------------------------------------------------------------
# the spec


@dataclass(frozen=True)
class ImageDefaults:
    """What an image asks for (from :class:`tinycontainer.image.ImageConfig`), in spec terms."""

    entrypoint: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    workdir: str = ""
    user: str = ""
    stop_signal: str | None = None


UserResolver = Callable[[str], "tuple[int, int, tuple[int, ...], str | None]"]
"""Maps a user string ("name", "uid", "name:group", ...) to (uid, gid, additional gids, home)."""


@dataclass(frozen=True, kw_only=True)
class Spec:
    """How to run a container. Immutable; change it with :meth:`replace`.

    Root filesystem: ``image`` (a reference, pulled when missing) or ``rootfs`` (a directory);
    neither means the host's ``/``, read-only, with private ``/tmp``, ``/run``, ``/var/tmp``,
    ``/proc``, ``/dev`` (handy to sandbox a host program).

    Limits: ``memory``/``memory_swap`` take bytes or "64m"-style strings (no swap unless
    ``memory_swap`` is given), ``cpus`` a fraction of CPUs (CFS quota over a 100 ms period),
    ``pids`` the number of tasks (default 4096), ``cpu_time`` CPU seconds for the whole
    container (RLIMIT_CPU for each process plus a cgroup-wide check; result reason
    "cpu-time"), ``wall_time`` seconds from start (result reason "wall-time").

    ``init=True`` keeps a small reaper as PID 1 that forwards signals to the program (a
    program that is PID 1 ignores SIGTERM unless it handles it, pid_namespaces(7)).

    Security: Docker's 14 capabilities, its seccomp profile, no_new_privileges, masked /proc
    paths; ``network="none"`` (only loopback) unless ``"host"``.
    """

    image: str | None = None
    rootfs: str | None = None
    command: Sequence[str] | None = None
    entrypoint: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=FrozenMap)
    workdir: str | None = None
    user: str | int | None = None
    hostname: str | None = None
    mounts: Sequence[Mount] = ()
    memory: int | str | None = None
    memory_swap: int | str | None = None
    cpus: float | None = None
    cpuset: str | None = None
    cpu_shares: int | None = None
    pids: int | None = None
    cpu_time: float | None = None
    wall_time: float | None = None
    network: str = NETWORK_NONE
    read_only: bool = False
    cap_add: Sequence[str] = ()
    cap_drop: Sequence[str] = ()
    privileged: bool = False
    seccomp: str = SECCOMP_DEFAULT
    no_new_privileges: bool = True
    ulimits: Mapping[str, int | tuple[int, int]] = field(default_factory=dict)
    tty: bool = False
    init: bool = False
    stop_signal: int | str | None = None
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    labels: Mapping[str, str] = field(default_factory=FrozenMap)
    annotations: Mapping[str, str] = field(default_factory=FrozenMap)

    # -- validation -----------------------------------------------------------------------------
    def __post_init__(self) -> None:
        for check in _CHECKS:
            check(self)

    @property
    def host_root(self) -> bool:
        """True when the container's root is the host's / (neither ``image`` nor ``rootfs``)."""
        return self.image is None and self.rootfs is None

    def replace(self, **changes: Any) -> Spec:
        """A copy with ``changes`` applied (and validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise SpecError(f"unknown field(s) {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
        return dataclasses.replace(self, **changes)

    # -- derived values -------------------------------------------------------------------------
    @property
    def memory_bytes(self) -> int | None:
        return None if self.memory is None else parse_size(self.memory, "memory")

    @property
    def memory_swap_bytes(self) -> int | None:
        """OCI memory+swap; defaults to the memory limit (no swap) when memory is limited."""
        if self.memory_swap is not None:
            return parse_size(self.memory_swap, "memory_swap")
        return self.memory_bytes

    @property
    def stop_signal_number(self) -> int | None:
        return None if self.stop_signal is None else _parse_signal(self.stop_signal, "stop_signal")

    # -- OCI ------------------------------------------------------------------------------------
    def to_oci_config(
        self,
        *,
        args: Sequence[str] | None = None,
        rootfs_path: str | None = None,
        image: ImageDefaults | None = None,
        resolve_user: UserResolver | None = None,
        volume_root: str | None = None,
        network_namespace: str | None = None,
        rootless: bool = False,
    ) -> oci.Config:
        """The OCI config for this spec.

        ``args`` replaces the command (the entrypoint, from the spec or the image, stays in
        front, like ``docker run IMAGE ARGS``). ``rootfs_path`` is written as ``root.path``
        (default: ``self.rootfs``, or ``/`` in host mode, or ``"rootfs"``). ``image`` supplies
        the image's defaults; ``resolve_user`` turns user names into ids (numeric users need
        none). ``network_namespace`` is the path of a prepared network namespace to join,
        needed for a named (bridge) network.
        """
        img = image or ImageDefaults()
        config = defaults.default_config(terminal=self.tty, rootless=rootless)
        assert config.process is not None and config.linux is not None and config.root is not None
        process = config.process
        linux = config.linux

        # root
        if rootfs_path is None:
            rootfs_path = "/" if self.host_root else (self.rootfs or "rootfs")
        config.root = oci.Root(path=rootfs_path, readonly=self.read_only or self.host_root)

        # process
        process.args = self.process_args(args, img)
        user_text = str(self.user) if self.user is not None else (img.user or "")
        uid, gid, extra_gids, home = _resolve_user(user_text, resolve_user)
        process.user = oci.User(uid=uid, gid=gid, additional_gids=list(extra_gids) or None)
        process.cwd = self.workdir or img.workdir or "/"
        process.env = self.process_env(img, home=home if home is not None else ("/root" if uid == 0 else "/"))
        process.no_new_privileges = self.no_new_privileges
        process.rlimits = self._rlimits()
        config.hostname = self.hostname or defaults.DEFAULT_HOSTNAME

        # mounts
        mounts = list(config.mounts)
        if self.host_root:
            # The engine makes the host's / read-only recursively (mount_setattr AT_RECURSIVE).
            for path in HOST_PRIVATE_DIRS:
                mounts.append(oci.Mount(destination=path, type="tmpfs", source="tmpfs",
                                        options=["nosuid", "nodev", "mode=1777"]))
        taken = {m.target for m in self.mounts}
        mounts = [m for m in mounts if m.destination not in taken]
        mounts += [m.to_oci(volume_root) for m in self.mounts]
        config.mounts = mounts

        # namespaces
        namespaces = list(linux.namespaces or [])
        if self.network == NETWORK_HOST:
            namespaces = [ns for ns in namespaces if ns.type != "network"]
        elif self.network != NETWORK_NONE:
            if network_namespace is None:
                raise UnsupportedError(f"network {self.network!r} needs a prepared network namespace")
            namespaces = [oci.Namespace(type="network", path=network_namespace) if ns.type == "network" else ns
                          for ns in namespaces]
        linux.namespaces = namespaces

        # resources
        if not rootless:
            linux.resources = self._resources(linux.resources or oci.Resources())
        elif self._has_limits():
            linux.resources = self._resources(oci.Resources())

        # annotations
        annotations = dict(self.annotations)
        for key, value in self.labels.items():
            annotations[LABEL_PREFIX + key] = value
        if self.init:
            annotations[INIT_ANNOTATION] = "true"
        if self.cpu_time is not None:
            annotations[CPU_TIME_ANNOTATION] = repr(float(self.cpu_time))
        if self.wall_time is not None:
            annotations[WALL_TIME_ANNOTATION] = repr(float(self.wall_time))
        config.annotations = annotations or None

        # security (capabilities before seccomp: the default profile follows the capability set)
        if self.cap_add or self.cap_drop:
            config = defaults.with_capabilities(config, add=self.cap_add, drop=self.cap_drop)
        if self.privileged:
            config = defaults.privileged(config)
        assert config.linux is not None
        if self.seccomp == SECCOMP_UNCONFINED:
            config.linux.seccomp = None
        elif self.seccomp != SECCOMP_DEFAULT and not self.privileged:
            config.linux.seccomp = _load_seccomp(self.seccomp)
        return config

    def process_args(self, args: Sequence[str] | None = None, image: ImageDefaults | None = None) -> list[str]:
        """argv: the entrypoint (spec, else image) followed by ``args`` (else command, else the
        image's command). Docker's rule: a spec entrypoint drops the image's command."""
        img = image or ImageDefaults()
        entrypoint = list(self.entrypoint) if self.entrypoint is not None else list(img.entrypoint)
        if args is not None:
            command = list(args)
        elif self.command is not None:
            command = list(self.command)
        elif self.entrypoint is None:
            command = list(img.command)
        else:
            command = []
        argv = entrypoint + command
        if not argv:
            raise SpecError("nothing to run: give a command (or use an image that has one)", field="command")
        return argv

    def process_env(self, image: ImageDefaults | None = None, *, home: str = "/root") -> list[str]:
        """The environment: a default PATH, HOME, the image's env, then the spec's env. Nothing
        from the caller's environment is passed."""
        env: dict[str, str] = {}
        for item in defaults.DEFAULT_ENV:
            key, _, value = item.partition("=")
            if key != "TERM" or self.tty:
                env[key] = value
        env["HOME"] = home
        for item in (image or ImageDefaults()).env:
            key, _, value = item.partition("=")
            env[key] = value
        env.update(self.env)
        return [f"{k}={v}" for k, v in env.items()]

    def _has_limits(self) -> bool:
        return any(v is not None for v in (self.memory, self.memory_swap, self.cpus, self.cpuset, self.cpu_shares,
                                           self.pids))

    def _resources(self, base: oci.Resources) -> oci.Resources:
        memory = self.memory_bytes
        if memory is not None:
            base.memory = oci.Memory(limit=memory, swap=self.memory_swap_bytes)
        elif self.memory_swap is not None:
            base.memory = oci.Memory(swap=self.memory_swap_bytes)
        cpu = oci.CPU()
        if self.cpus is not None:
            cpu.quota = max(1000, round(self.cpus * CPU_PERIOD_US))
            cpu.period = CPU_PERIOD_US
        if self.cpuset is not None:
            cpu.cpus = self.cpuset
        if self.cpu_shares is not None:
            cpu.shares = self.cpu_shares
        if cpu != oci.CPU():
            base.cpu = cpu
        if self.pids is not None:
            base.pids = oci.Pids(limit=self.pids)
        return base

    def _rlimits(self) -> list[oci.Rlimit]:
        limits = {"RLIMIT_NOFILE": oci.Rlimit(type="RLIMIT_NOFILE", soft=1024, hard=1024)}
        for name, value in self.ulimits.items():
            soft, hard = (value, value) if isinstance(value, int) else value
            key = f"RLIMIT_{name.upper()}"
            limits[key] = oci.Rlimit(type=key, soft=soft, hard=hard)
        if self.cpu_time is not None:
            # setrlimit(2): SIGXCPU at the soft limit, SIGKILL at the hard one; the second in
            # between lets the result say "cpu-time" even for a program that catches SIGXCPU.
            soft = max(1, math.ceil(self.cpu_time))
            limits["RLIMIT_CPU"] = oci.Rlimit(type="RLIMIT_CPU", soft=soft, hard=soft + 1)
        return list(limits.values())

    @classmethod
    def from_oci_config(cls, config: oci.Config, *, volume_root: str | None = None) -> Spec:
        """A spec with the fields of ``config`` that map back (process, limits, mounts that are
        not defaults, network, capabilities relative to Docker's set, labels/annotations).

        The entrypoint/command split is not recorded in OCI: the whole argv becomes ``command``.
        """
        process = config.process or oci.Process()
        linux = config.linux or oci.Linux()
        root = config.root
        kwargs: dict[str, Any] = {}
        if root is not None and root.path != "/":
            kwargs["rootfs"] = root.path
        host = root is not None and root.path == "/"
        if root is not None and root.readonly and not host:
            kwargs["read_only"] = True
        if process.args:
            kwargs["command"] = tuple(process.args)
        env = {}
        default_env = dict(item.partition("=")[::2] for item in defaults.DEFAULT_ENV)
        for item in process.env or []:
            key, _, value = item.partition("=")
            if default_env.get(key) == value or key == "HOME":
                continue
            env[key] = value
        kwargs["env"] = env
        if process.cwd and process.cwd != "/":
            kwargs["workdir"] = process.cwd
        if process.user.uid or process.user.gid:
            kwargs["user"] = f"{process.user.uid}:{process.user.gid}"
        if config.hostname and config.hostname != defaults.DEFAULT_HOSTNAME:
            kwargs["hostname"] = config.hostname
        kwargs["tty"] = process.terminal
        kwargs["no_new_privileges"] = process.no_new_privileges

        default_targets = {m.destination for m in defaults.default_mounts()}
        if host:
            default_targets |= set(HOST_PRIVATE_DIRS)
        mounts = []
        for m in config.mounts:
            if m.destination in default_targets:
                continue
            converted = Mount.from_oci(m, volume_root)
            if converted is not None:
                mounts.append(converted)
        kwargs["mounts"] = tuple(mounts)

        resources = linux.resources
        if resources is not None:
            if resources.memory is not None:
                if resources.memory.limit is not None:
                    kwargs["memory"] = resources.memory.limit
                if resources.memory.swap is not None and resources.memory.swap != resources.memory.limit:
                    kwargs["memory_swap"] = resources.memory.swap
            cpu = resources.cpu
            if cpu is not None:
                if cpu.quota is not None and cpu.quota > 0:
                    kwargs["cpus"] = cpu.quota / (cpu.period or CPU_PERIOD_US)
                if cpu.cpus:
                    kwargs["cpuset"] = cpu.cpus
                if cpu.shares:
                    kwargs["cpu_shares"] = cpu.shares
            if resources.pids is not None and resources.pids.limit != defaults.DEFAULT_PIDS_LIMIT:
                kwargs["pids"] = resources.pids.limit

        ulimits: dict[str, int | tuple[int, int]] = {}
        for rl in process.rlimits or []:
            name = rl.type.removeprefix("RLIMIT_").lower()
            if rl.type == "RLIMIT_NOFILE" and rl.soft == rl.hard == 1024:
                continue
            if rl.type == "RLIMIT_CPU" and rl.hard == rl.soft + 1:
                kwargs["cpu_time"] = float(rl.soft)
                continue
            ulimits[name] = rl.soft if rl.soft == rl.hard else (rl.soft, rl.hard)
        kwargs["ulimits"] = ulimits

        kwargs["network"] = NETWORK_HOST if config.namespace("network") is None else NETWORK_NONE

        bounding = set((process.capabilities.bounding if process.capabilities else None) or [])
        docker = set(defaults.DOCKER_CAPABILITIES)
        if bounding == set(defaults.ALL_CAPABILITIES) and linux.seccomp is None and not linux.masked_paths:
            kwargs["privileged"] = True
        else:
            kwargs["cap_add"] = tuple(c for c in defaults.ALL_CAPABILITIES if c in bounding - docker)
            kwargs["cap_drop"] = tuple(c for c in defaults.ALL_CAPABILITIES if c in docker - bounding)
            if linux.seccomp is None:
                kwargs["seccomp"] = SECCOMP_UNCONFINED

        labels = {}
        annotations = {}
        for key, value in (config.annotations or {}).items():
            if key == INIT_ANNOTATION:
                kwargs["init"] = value == "true"
            elif key in (CPU_TIME_ANNOTATION, WALL_TIME_ANNOTATION):
                with contextlib.suppress(ValueError):
                    kwargs["cpu_time" if key == CPU_TIME_ANNOTATION else "wall_time"] = float(value)
            elif key.startswith(LABEL_PREFIX):
                labels[key[len(LABEL_PREFIX) :]] = value
            else:
                annotations[key] = value
        kwargs["labels"] = labels
        kwargs["annotations"] = annotations
        return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# validation: one function per concern, each raising SpecError(field=...)


def _set(spec: Spec, name: str, value: object) -> None:
    object.__setattr__(spec, name, value)


def _check_root(spec: Spec) -> None:
    if spec.image is not None and spec.rootfs is not None:
        raise SpecError("give either image or rootfs, not both", field="image")
    if spec.image is not None and (not isinstance(spec.image, str) or not spec.image.strip()):
        raise SpecError(f"{spec.image!r} is not an image reference", field="image")
    if spec.rootfs is not None:
        if not isinstance(spec.rootfs, str) or not os.path.isabs(spec.rootfs):
            raise SpecError(f"{spec.rootfs!r} must be an absolute path", field="rootfs")
        if os.path.realpath(spec.rootfs) == "/":
            raise SpecError("leave rootfs unset to run on the host's / (read-only)", field="rootfs")


def _strings(value: object, name: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)):
        raise SpecError("must be a list of strings (use ['sh', '-c', '...'] for a shell command)", field=name)
    if not isinstance(value, Iterable):
        raise SpecError("must be a list of strings", field=name)
    items: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise SpecError(f"{item!r} is not a string", field=f"{name}[{i}]")
        if "\0" in item:
            raise SpecError("contains a NUL byte", field=f"{name}[{i}]")
        items.append(item)
    return tuple(items)


def _check_process(spec: Spec) -> None:
    if spec.command is not None:
        _set(spec, "command", _strings(spec.command, "command"))
    if spec.entrypoint is not None:
        _set(spec, "entrypoint", _strings(spec.entrypoint, "entrypoint"))
    if spec.workdir is not None and (not isinstance(spec.workdir, str) or not spec.workdir.startswith("/")):
        raise SpecError(f"{spec.workdir!r} must be an absolute path", field="workdir")
    if spec.user is not None:
        if isinstance(spec.user, bool) or not isinstance(spec.user, (str, int)):
            raise SpecError(f"{spec.user!r} must be 'user', 'uid', 'user:group' or an int", field="user")
        if isinstance(spec.user, int) and spec.user < 0:
            raise SpecError("must not be negative", field="user")
        if isinstance(spec.user, str) and (not spec.user or spec.user.count(":") > 1 or "\0" in spec.user):
            raise SpecError(f"{spec.user!r} must be 'user', 'uid', 'user:group' or 'uid:gid'", field="user")
    if spec.hostname is not None and not (isinstance(spec.hostname, str) and _HOSTNAME.match(spec.hostname)):
        raise SpecError(f"{spec.hostname!r} is not a valid hostname", field="hostname")
    if spec.stop_signal is not None:
        _parse_signal(spec.stop_signal, "stop_signal")
    if not isinstance(spec.stop_timeout, (int, float)) or spec.stop_timeout < 0:
        raise SpecError("must be a number of seconds >= 0", field="stop_timeout")


def _string_map(value: object, name: str) -> FrozenMap:
    if isinstance(value, FrozenMap):
        return value
    if isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        try:
            pairs = []
            for item in value:  # type: ignore[attr-defined]
                if not isinstance(item, str) or "=" not in item:
                    raise SpecError(f"{item!r} is not KEY=VALUE", field=name)
                key, _, val = item.partition("=")
                pairs.append((key, val))
        except TypeError:
            raise SpecError("must be a mapping of strings", field=name) from None
    for key, val in pairs:
        if not isinstance(key, str) or not isinstance(val, str):
            raise SpecError(f"{key!r}: keys and values must be strings", field=name)
        if not _ENV_NAME.match(key) or "\0" in val:
            raise SpecError(f"{key!r}: names hold no '=' or NUL, values no NUL", field=f"{name}.{key}")
    return FrozenMap(pairs)


def _check_maps(spec: Spec) -> None:
    for name in ("env", "labels", "annotations"):
        _set(spec, name, _string_map(getattr(spec, name), name))


def _check_mounts(spec: Spec) -> None:
    mounts = tuple(spec.mounts)
    seen: set[str] = set()
    for i, m in enumerate(mounts):
        if not isinstance(m, Mount):
            raise SpecError(f"{m!r} is not a tinycontainer.Mount", field=f"mounts[{i}]")
        if m.target in seen:
            raise SpecError(f"{m.target} is mounted twice", field=f"mounts[{i}].target")
        seen.add(m.target)
    _set(spec, "mounts", mounts)


def _positive_number(value: object, name: str, *, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or value <= 0:
        raise SpecError(f"{value!r} must be a positive {'integer' if integer else 'number'}", field=name)


def _check_limits(spec: Spec) -> None:
    memory = None
    if spec.memory is not None:
        memory = parse_size(spec.memory, "memory")
        if memory == 0 or (0 < memory < 6 << 20):
            # runc's minimum: below 6 MiB the init cannot even start.
            raise SpecError(f"{memory} bytes is too small (at least 6m)", field="memory")
        _set(spec, "memory", memory)
    if spec.memory_swap is not None:
        swap = parse_size(spec.memory_swap, "memory_swap")
        _set(spec, "memory_swap", swap)
        if memory is None:
            raise SpecError("a swap limit needs a memory limit", field="memory_swap")
        if swap != -1 and memory != -1 and swap < memory:
            raise SpecError("memory_swap is memory plus swap: it must be >= memory", field="memory_swap")
    if spec.cpus is not None:
        _positive_number(spec.cpus, "cpus")
        if spec.cpus > (os.cpu_count() or 1) * 4 and spec.cpus > 1024:
            raise SpecError(f"{spec.cpus} CPUs is not plausible", field="cpus")
    if spec.cpuset is not None and not re.match(r"^\s*\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*\s*$", str(spec.cpuset)):
        raise SpecError(f"{spec.cpuset!r} is not a CPU list like '0-2,4'", field="cpuset")
    if spec.cpu_shares is not None:
        _positive_number(spec.cpu_shares, "cpu_shares", integer=True)
        if not 2 <= spec.cpu_shares <= 262144:
            raise SpecError("must be between 2 and 262144", field="cpu_shares")
    if spec.pids is not None and spec.pids != -1:
        _positive_number(spec.pids, "pids", integer=True)
    if spec.cpu_time is not None:
        _positive_number(spec.cpu_time, "cpu_time")
    if spec.wall_time is not None:
        _positive_number(spec.wall_time, "wall_time")


def _check_ulimits(spec: Spec) -> None:
    result: dict[str, int | tuple[int, int]] = {}
    for name, value in dict(spec.ulimits).items():
        key = str(name).lower().removeprefix("rlimit_")
        f = f"ulimits.{name}"
        if key not in _ULIMIT_NAMES:
            raise SpecError(f"unknown limit (one of {', '.join(_ULIMIT_NAMES)})", field=f)
        if key == "cpu" and spec.cpu_time is not None:
            raise SpecError("set cpu_time or ulimits['cpu'], not both", field=f)
        if isinstance(value, int) and not isinstance(value, bool):
            pair = (value, value)
        elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            pair = (int(value[0]), int(value[1]))
        else:
            raise SpecError(f"{value!r} must be an int or a (soft, hard) pair", field=f)
        if pair[0] < 0 or pair[1] < 0 or pair[0] > pair[1]:
            raise SpecError(f"{value!r}: limits are >= 0 and soft <= hard", field=f)
        result[key] = pair[0] if pair[0] == pair[1] else pair
    _set(spec, "ulimits", _FrozenLimits(result))


class _FrozenLimits(dict[str, "int | tuple[int, int]"]):
    """A dict that is hashable (the spec is frozen; nobody mutates it after validation)."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


def _check_network(spec: Spec) -> None:
    if not isinstance(spec.network, str) or not _NETWORK_NAME.match(spec.network):
        raise SpecError(f"{spec.network!r}: 'none', 'host' or a network name", field="network")


def _check_security(spec: Spec) -> None:
    for name in ("cap_add", "cap_drop"):
        caps = _strings(getattr(spec, name), name)
        for cap in caps:
            upper = cap.upper()
            canonical = upper if upper.startswith("CAP_") else f"CAP_{upper}"
            if upper != "ALL" and canonical not in defaults.ALL_CAPABILITIES:
                raise SpecError(f"unknown capability {cap!r}", field=name)
        _set(spec, name, caps)
    if not isinstance(spec.seccomp, str) or not spec.seccomp:
        raise SpecError("'default', 'unconfined' or the path of a profile", field="seccomp")
    if spec.seccomp not in (SECCOMP_DEFAULT, SECCOMP_UNCONFINED) and not os.path.isabs(spec.seccomp):
        raise SpecError(f"{spec.seccomp!r}: 'default', 'unconfined' or an absolute path", field="seccomp")
    for name in ("read_only", "privileged", "no_new_privileges", "tty", "init"):
        if not isinstance(getattr(spec, name), bool):
            raise SpecError("must be True or False", field=name)
    if spec.privileged and spec.host_root:
        raise SpecError("a privileged container needs an image or a rootfs, not the host's /", field="privileged")


_CHECKS: tuple[Callable[[Spec], None], ...] = (
    _check_root,
    _check_process,
    _check_maps,
    _check_mounts,
    _check_limits,
    _check_ulimits,
    _check_network,
    _check_security,
)


# ---------------------------------------------------------------------------------------------
# helpers for to_oci_config


def _resolve_user(text: str, resolver: UserResolver | None) -> tuple[int, int, tuple[int, ...], str | None]:
    if not text:
        return 0, 0, (), None
    name, _, group = text.partition(":")
    if name.isdigit() and (not group or group.isdigit()):
        if resolver is not None:
            try:
                uid, gid, extra, home = resolver(text)
                return uid, gid, extra, home
            except SpecError:
                pass
        return int(name), int(group) if group else 0, (), None
    if resolver is None:
        raise SpecError(f"user {text!r} is a name: it needs the container's /etc/passwd", field="user")
    return resolver(text)


def _load_seccomp(path: str) -> oci.Seccomp:
    import json

    from .oci._codec import from_json

    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(16 << 20))
    except OSError as exc:
        raise SpecError(f"cannot read seccomp profile {path}: {exc.strerror}", field="seccomp") from None
    except ValueError as exc:
        raise SpecError(f"seccomp profile {path} is not JSON: {exc}", field="seccomp") from None
    if not isinstance(data, dict):
        raise SpecError(f"seccomp profile {path} must be a JSON object", field="seccomp")
    return from_json(oci.Seccomp, data, "seccomp")


__all__ = [
    "HOST_PRIVATE_DIRS",
    "FrozenMap",
    "ImageDefaults",
    "Mount",
    "Spec",
    "UserResolver",
    "parse_size",
]
