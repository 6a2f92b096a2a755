"""Mount options and the mount plan: ``config.mounts`` turned into checked, executable data.

Nothing here touches the kernel except :func:`host_cgroup_layout` and the file readers,
which only *read* procfs.
:mod:`tinycontainer.linux.rootfs` executes the plan.  Keeping the plan pure lets the unit tests
check every refusal (``/proc`` rules, idmapped mounts, ...) without root.
"""

from __future__ import annotations

import os
import posixpath

from .. import oci
from .._errors import SpecError, UnsupportedError
from ..oci._record import field, record
from . import _consts as C
from . import proc

# Options that set (first) or clear (second) a mount(2) flag; mount(8) names, as runc accepts them.
_FLAG_OPTIONS: dict[str, tuple[int, int]] = {
    "ro": (C.MS_RDONLY, 0),
    "rw": (0, C.MS_RDONLY),
    "nosuid": (C.MS_NOSUID, 0),
    "suid": (0, C.MS_NOSUID),
    "nodev": (C.MS_NODEV, 0),
    "dev": (0, C.MS_NODEV),
    "noexec": (C.MS_NOEXEC, 0),
    "exec": (0, C.MS_NOEXEC),
    "sync": (C.MS_SYNCHRONOUS, 0),
    "async": (0, C.MS_SYNCHRONOUS),
    "dirsync": (C.MS_DIRSYNC, 0),
    "remount": (C.MS_REMOUNT, 0),
    "mand": (C.MS_MANDLOCK, 0),
    "nomand": (0, C.MS_MANDLOCK),
    "atime": (0, C.MS_NOATIME),
    "noatime": (C.MS_NOATIME, 0),
    "diratime": (0, C.MS_NODIRATIME),
    "nodiratime": (C.MS_NODIRATIME, 0),
    "relatime": (C.MS_RELATIME, 0),
    "norelatime": (0, C.MS_RELATIME),
    "strictatime": (C.MS_STRICTATIME, 0),
    "nostrictatime": (0, C.MS_STRICTATIME),
    "lazytime": (C.MS_LAZYTIME, 0),
    "nolazytime": (0, C.MS_LAZYTIME),
    "nosymfollow": (C.MS_NOSYMFOLLOW, 0),
    "symfollow": (0, C.MS_NOSYMFOLLOW),
    "bind": (C.MS_BIND, 0),
    "rbind": (C.MS_BIND | C.MS_REC, 0),
}

PROPAGATION_OPTIONS: dict[str, int] = {
    "private": C.MS_PRIVATE,
    "rprivate": C.MS_PRIVATE | C.MS_REC,
    "shared": C.MS_SHARED,
    "rshared": C.MS_SHARED | C.MS_REC,
    "slave": C.MS_SLAVE,
    "rslave": C.MS_SLAVE | C.MS_REC,
    "unbindable": C.MS_UNBINDABLE,
    "runbindable": C.MS_UNBINDABLE | C.MS_REC,
}

# Options that need the new mount API (mount_setattr(2) with AT_RECURSIVE, or idmapped mounts),
# which this runtime does not implement yet.  Refusing them is better than silently giving a
# weaker mount (e.g. "rro" applied only to the top mount would leave sub-mounts writable).
_UNSUPPORTED_OPTIONS = frozenset(
    {
        "idmap",
        "ridmap",
        "rro",
        "rrw",
        "rnosuid",
        "rsuid",
        "rnodev",
        "rdev",
        "rnoexec",
        "rexec",
        "rnodiratime",
        "rdiratime",
        "rrelatime",
        "rnorelatime",
        "rnoatime",
        "ratime",
        "rstrictatime",
        "rnostrictatime",
        "rnosymfollow",
        "rsymfollow",
    }
)

# Per-mount flags a MS_BIND|MS_REMOUNT can change (fs/namespace.c: MNT_USER_SETTABLE_MASK).
BIND_REMOUNT_FLAGS = (
    C.MS_RDONLY
    | C.MS_NOSUID
    | C.MS_NODEV
    | C.MS_NOEXEC
    | C.MS_NOATIME
    | C.MS_NODIRATIME
    | C.MS_RELATIME
    | C.MS_STRICTATIME
    | C.MS_NOSYMFOLLOW
)

# Files inside /proc that may be over-mounted (runc's checkProcMount allow-list: lxcfs-style
# emulated files).  Everything else inside /proc is refused (CVE-2019-19921, CVE-2023-27561):
# a mount there could hide or redirect the procfs files the runtime writes to later.
PROC_MOUNT_ALLOW_LIST = frozenset(
    {
        "/proc/cpuinfo",
        "/proc/diskstats",
        "/proc/meminfo",
        "/proc/stat",
        "/proc/swaps",
        "/proc/uptime",
        "/proc/loadavg",
        "/proc/slabinfo",
        "/proc/net/dev",
        "/proc/sys/kernel/ns_last_pid",
    }
)


@record(frozen=True)
class MountOptions:
    """The ``options`` list of one mount, split the way mount(2) needs it."""

    flags: int = 0
    """MS_* flags to set (including MS_BIND / MS_REC / MS_REMOUNT)."""
    cleared: int = 0
    """MS_* flags the options explicitly cleared ("rw", "suid", "exec", ...)."""
    propagation: tuple[int, ...] = ()
    """Propagation changes, applied by separate mount(2) calls in order."""
    data: str = ""
    """Filesystem-specific data ("mode=755,size=65536k")."""
    tmpcopyup: bool = False

    @property
    def bind(self) -> bool:
        return bool(self.flags & C.MS_BIND)

    @property
    def recursive(self) -> bool:
        return bool(self.flags & C.MS_REC)


def parse_options(options: list[str] | None) -> MountOptions:
    """Split mount(8)-style options; later options win ("ro,rw" is rw), unknown ones are fs data."""
    flags = 0
    cleared = 0
    propagation: list[int] = []
    data: list[str] = []
    tmpcopyup = False
    for option in options or []:
        if option in _FLAG_OPTIONS:
            set_bits, clear_bits = _FLAG_OPTIONS[option]
            flags = (flags | set_bits) & ~clear_bits
            cleared = (cleared | clear_bits) & ~set_bits
        elif option in PROPAGATION_OPTIONS:
            propagation.append(PROPAGATION_OPTIONS[option])
        elif option == "tmpcopyup":
            tmpcopyup = True
        elif option == "notmpcopyup":
            tmpcopyup = False
        elif option in _UNSUPPORTED_OPTIONS:
            raise UnsupportedError(f"mount option {option!r} is not supported by tinycontainer")
        elif option:
            data.append(option)
    return MountOptions(
        flags=flags, cleared=cleared, propagation=tuple(propagation), data=",".join(data), tmpcopyup=tmpcopyup
    )


def propagation_flags(name: str, *, field_name: str = "linux.rootfsPropagation") -> int:
    """The MS_* flags of a propagation name ("rslave" -> MS_SLAVE|MS_REC)."""
    try:
        return PROPAGATION_OPTIONS[name]
    except KeyError:
        raise SpecError(f"unknown propagation {name!r}", field=field_name) from None


def clean_path(path: str) -> str:
    """Lexically clean a container path to an absolute one; ``..`` never climbs above ``/``.

    "/a/../../b" becomes "/b" (what a chroot would see).  This is only normalisation; safety
    comes from resolving the result with RESOLVE_IN_ROOT in :mod:`._paths`.
    """
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def is_inside(path: str, directory: str) -> bool:
    """True if the clean absolute ``path`` is ``directory`` or below it."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def check_proc_destination(destination: str, kind: str) -> None:
    """Refuse mounts on or inside /proc (CVE-2019-19921 / CVE-2023-27561), except procfs itself."""
    if destination == "/proc":
        if kind not in ("proc", "bind"):
            raise SpecError(f"{destination}: only a procfs may be mounted on /proc", field="mounts")
        return
    if is_inside(destination, "/proc") and destination not in PROC_MOUNT_ALLOW_LIST:
        raise SpecError(f"{destination}: mounts inside /proc are not allowed", field="mounts")


@record(frozen=True)
class PlannedMount:
    """One entry of ``config.mounts``, validated and ready for :mod:`.rootfs` to execute."""

    destination: str
    """Clean absolute path inside the container."""
    kind: str
    """"bind", "proc", "sysfs", "cgroup", "tmpfs" or "fs" (any other filesystem)."""
    source: str | None
    """Host path (absolute) for binds; the fs source string ("proc", "tmpfs", ...) otherwise."""
    fstype: str | None
    options: MountOptions
    index: int = 0
    """Position in ``config.mounts`` (for error messages)."""

    @property
    def no_symlinks(self) -> bool:
        """procfs, sysfs and /dev must sit on ordinary directories, never behind a symlink.

        runc refuses "proc" on a symlink (CVE-2019-19921); /dev behind a symlink sent device
        creation out of the rootfs (CVE-2026-41579).
        """
        return self.kind in ("proc", "sysfs") or self.destination == "/dev"


def plan_mounts(config: oci.Config, bundle: str) -> list[PlannedMount]:
    """Validate ``config.mounts`` and return the plan, in config order."""
    plan: list[PlannedMount] = []
    for index, mount in enumerate(config.mounts):
        where = f"mounts[{index}]"
        if not mount.destination:
            raise SpecError("destination is required", field=f"{where}.destination")
        if mount.uid_mappings or mount.gid_mappings:
            raise UnsupportedError(f"{where}: idmapped mounts (uidMappings/gidMappings) are not supported")
        options = parse_options(mount.options)
        destination = clean_path(mount.destination)
        if destination == "/":
            raise SpecError("cannot mount over the container's root directory", field=f"{where}.destination")
        fstype = mount.type or None
        if options.bind or fstype == "bind":
            kind = "bind"
            if not options.bind:
                # type "bind" without a bind option: runc would call mount(2) with the bogus type
                # "bind"; treat it as the (non-recursive) bind the author obviously meant.
                options = MountOptions(
                    flags=options.flags | C.MS_BIND,
                    cleared=options.cleared,
                    propagation=options.propagation,
                    data=options.data,
                    tmpcopyup=options.tmpcopyup,
                )
            if not mount.source:
                raise SpecError("a bind mount needs a source", field=f"{where}.source")
            source: str | None = os.path.normpath(os.path.join(bundle, mount.source))
            fstype = None
        else:
            kind = fstype if fstype in ("proc", "sysfs", "cgroup", "tmpfs") else "fs"
            if fstype is None:
                raise SpecError("type is required for a non-bind mount", field=f"{where}.type")
            source = mount.source or fstype
        if options.tmpcopyup:
            raise UnsupportedError(f"{where}: the tmpcopyup option is not supported")
        check_proc_destination(destination, kind)
        plan.append(
            PlannedMount(destination=destination, kind=kind, source=source, fstype=fstype, options=options, index=index)
        )
    return plan


def needs_dev_setup(plan: list[PlannedMount]) -> bool:
    """Create device nodes unless the host's /dev is bind-mounted in (runc's needsSetupDev)."""
    return not any(m.kind == "bind" and m.destination == "/dev" for m in plan)


# --- cgroup filesystem --------------------------------------------------------------------------


@record(frozen=True)
class CgroupLayout:
    """What the host's cgroup filesystem looks like, from the caller's point of view."""

    unified: bool
    """True on a cgroup v2-only host (/sys/fs/cgroup is cgroup2)."""
    v1_binds: list[tuple[str, str]] = field(default_factory=list)
    """v1 only: (host directory of our own cgroup in a hierarchy, mount point name), e.g.
    ("/sys/fs/cgroup/memory/user/x", "memory") or ("/sys/fs/cgroup/cpu,cpuacct", "cpu,cpuacct")."""


def unescape_mountinfo(field_text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo (fs/proc_namespace.c).
    if "\\" not in field_text:
        return field_text
    out = []
    i = 0
    while i < len(field_text):
        if field_text[i] == "\\" and i + 3 < len(field_text) and field_text[i + 1 : i + 4].isdigit():
            out.append(chr(int(field_text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field_text[i])
            i += 1
    return "".join(out)


@record(frozen=True)
class MountInfo:
    mount_id: int
    root: str
    mount_point: str
    options: frozenset[str]
    fstype: str
    super_options: frozenset[str]


def parse_mountinfo(text: str) -> list[MountInfo]:
    """Parse /proc/<pid>/mountinfo (proc(5))."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10:
            continue
        sep = fields.index("-", 6)
        entries.append(
            MountInfo(
                mount_id=int(fields[0]),
                root=unescape_mountinfo(fields[3]),
                mount_point=unescape_mountinfo(fields[4]),
                options=frozenset(fields[5].split(",")),
                fstype=fields[sep + 1],
                super_options=frozenset(fields[sep + 3].split(",")) if len(fields) > sep + 3 else frozenset(),
            )
        )
    return entries


def cgroup_layout_from(mountinfo: str, proc_cgroup: str, *, cgroup_root: str = "/sys/fs/cgroup") -> CgroupLayout:
    """Work out the cgroup binds from mountinfo and /proc/self/cgroup text (pure, for tests)."""
    return layout_from_cgroup_mounts(cgroup_mounts_from(mountinfo), proc_cgroup, cgroup_root=cgroup_root)


def cgroup_mounts_from(mountinfo: str) -> list[tuple[str, str, str, frozenset[str]]]:
    """(root, mount point, fstype, super options) of the cgroup and cgroup2 mounts in mountinfo
    text, without a MountInfo record each.

    The root shows the mount's root relative to the reader's cgroup namespace, so the list is
    valid for another process only in the same mount and cgroup namespaces (or a copy of them)."""
    # No field holds a blank (mountinfo escapes it as \040), so the first " - " separates the
    # fstype: the filter keeps all of them.
    mounts: list[tuple[str, str, str, frozenset[str]]] = []
    for line in mountinfo.splitlines():
        if " - cgroup" not in line:
            continue
        fields = line.split()
        if len(fields) < 10 or "-" not in fields[6:]:
            continue
        sep = fields.index("-", 6)
        if len(fields) < sep + 4:
            continue
        options = frozenset(fields[sep + 3].split(","))
        mounts.append((unescape_mountinfo(fields[3]), unescape_mountinfo(fields[4]), fields[sep + 1], options))
    return mounts


def layout_from_cgroup_mounts(
    mounts: list[tuple[str, str, str, frozenset[str]]], proc_cgroup: str, *, cgroup_root: str = "/sys/fs/cgroup"
) -> CgroupLayout:
    """cgroup_layout_from, from the cgroup_mounts_from list (pure)."""
    for _root, point, fstype, _options in mounts:
        if point == cgroup_root and fstype == "cgroup2":
            return CgroupLayout(unified=True)
    own: list[tuple[frozenset[str], str]] = []
    for line in proc_cgroup.splitlines():
        hier_id, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hier_id != "0" and controllers:
            own.append((frozenset(controllers.split(",")), path))
    binds: list[tuple[str, str]] = []
    for root, point, fstype, options in mounts:
        if fstype != "cgroup" or posixpath.dirname(point) != cgroup_root:
            continue
        own_path = next((path for wanted, path in own if wanted <= options), None)
        if own_path is None:
            continue
        relative = _below(own_path, root)
        if relative is None:
            # Our cgroup is not visible in this mount; bind nothing rather than a wrong directory.
            continue
        source = posixpath.normpath(posixpath.join(point, relative))
        binds.append((source, posixpath.basename(point)))
    return CgroupLayout(unified=False, v1_binds=binds)


def _below(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` ("" for root itself), None when outside it: what
    posixpath.relpath tells, without its normalising, for the clean absolute paths procfs shows."""
    path = posixpath.normpath(path)
    root = posixpath.normpath(root)
    if root == "/":
        return path.lstrip("/")
    if path == root:
        return ""
    if path.startswith(root + "/"):
        return path[len(root) + 1 :]
    return None


def read_proc_text(path: str) -> str:
    return proc.read_file(path).decode("utf-8", "surrogateescape")


def host_cgroup_layout(mountinfo: str | None = None) -> CgroupLayout:
    """Read the layout of the calling process (call it before pivot_root). ``mountinfo`` is the
    text of /proc/self/mountinfo when the caller already read it."""
    if mountinfo is None:
        mountinfo = read_proc_text("/proc/self/mountinfo")
    return cgroup_layout_from(mountinfo, read_proc_text("/proc/self/cgroup"))


__all__ = [
    "BIND_REMOUNT_FLAGS",
    "PROC_MOUNT_ALLOW_LIST",
    "PROPAGATION_OPTIONS",
    "CgroupLayout",
    "MountInfo",
    "MountOptions",
    "PlannedMount",
    "cgroup_layout_from",
    "cgroup_mounts_from",
    "check_proc_destination",
    "clean_path",
    "host_cgroup_layout",
    "is_inside",
    "layout_from_cgroup_mounts",
    "needs_dev_setup",
    "parse_mountinfo",
    "parse_options",
    "plan_mounts",
    "propagation_flags",
    "read_proc_text",
    "unescape_mountinfo",
]
