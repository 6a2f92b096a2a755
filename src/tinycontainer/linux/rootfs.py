"""The container's root filesystem: mounts, /dev, pivot_root, masking, read-only paths, sysctls.

The container's init process calls, in this order (it already sits in its new mount namespace)::

    rootfs_path = prepare_rootfs(config, bundle, sys, console_path=..., in_userns=...)
    enter_rootfs(rootfs_path, sys)            # pivot_root; the host is gone after this
    write_sysctls(config.linux.sysctl, sys)   # BEFORE finalize: /proc/sys becomes read-only there
    finalize_rootfs(config, sys)

Security rules this module keeps (each one is a past container breakout):

* No path string under the rootfs is ever handed to mount(2).  Targets are resolved below a
  rootfs fd with openat2(RESOLVE_IN_ROOT), created component by component, re-verified, and
  mounted through ``/proc/self/fd/N`` (CVE-2021-30465, CVE-2024-45310; see :mod:`._paths`).
* Nothing may be mounted on /proc except procfs on a real directory, nor inside /proc except a
  short allow-list (CVE-2019-19921, CVE-2023-27561); the check is repeated on the *resolved* path.
* /dev must be a real directory and every node is created relative to its fd (CVE-2026-41579).
* The cgroup filesystem is always read-only (CVE-2023-25809).
* Masking binds a /dev/null that was verified to be char 1:3 through its fd (CVE-2025-31133).
* procfs is checked with fstatfs() before anything is written to it or resolved through it
  (CVE-2019-16884, CVE-2025-52881).
"""

from __future__ import annotations

import errno
import os
import stat

from .. import oci
from .._errors import KernelError, SpecError
from ..oci._record import record
from . import _consts as C
from . import mounts as _mounts
from ._paths import (
    SCOPED,
    check_inside,
    create_file_in_root,
    ensure_mountpoint,
    fd_path,
    make_child_dir,
    mkdir_all_in_root,
    open_in_root,
    openat2_retry,
    proc_fd,
    relative_to_root,
    verify_inside,
)
from ._syscalls import Syscalls
from .mounts import BIND_REMOUNT_FLAGS, PlannedMount, check_proc_destination

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_O_PATH = os.O_PATH | os.O_CLOEXEC
_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC

# Flags a bind remount must repeat or the kernel clears them (or refuses with EPERM when they
# are locked by a user namespace): fs/namespace.c can_change_locked_flags().
_STICKY_FLAGS = C.MS_RDONLY | C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC | C.MS_NOSYMFOLLOW
_ST_NOSYMFOLLOW = 0x2000  # include/linux/statfs.h; os has no ST_NOSYMFOLLOW on 3.11
_STATVFS_TO_MS = (
    (os.ST_RDONLY, C.MS_RDONLY),
    (os.ST_NOSUID, C.MS_NOSUID),
    (os.ST_NODEV, C.MS_NODEV),
    (os.ST_NOEXEC, C.MS_NOEXEC),
    (os.ST_NOATIME, C.MS_NOATIME),
    (os.ST_NODIRATIME, C.MS_NODIRATIME),
    (os.ST_RELATIME, C.MS_RELATIME),
    (_ST_NOSYMFOLLOW, C.MS_NOSYMFOLLOW),
)

DEV_NULL_RDEV = os.makedev(1, 3)

# mount_setattr(2) flags and attribute (include/uapi/linux/fcntl.h, mount.h), the values _libc
# passes through: named here so that the init, which calls them, runs no import statement.
_AT_EMPTY_PATH = 0x1000
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 0x1


@record(frozen=True)
class DeviceNode:
    """A node to create under /dev (OCI linux.devices entry, or one of the defaults)."""

    path: str
    kind: int
    """stat.S_IFCHR, S_IFBLK or S_IFIFO."""
    major: int = 0
    minor: int = 0
    mode: int = 0o666
    uid: int | None = None
    gid: int | None = None


# runtime-spec config-linux.md "Default Devices".
DEFAULT_DEVICES = (
    DeviceNode(path="/dev/null", kind=stat.S_IFCHR, major=1, minor=3),
    DeviceNode(path="/dev/zero", kind=stat.S_IFCHR, major=1, minor=5),
    DeviceNode(path="/dev/full", kind=stat.S_IFCHR, major=1, minor=7),
    DeviceNode(path="/dev/random", kind=stat.S_IFCHR, major=1, minor=8),
    DeviceNode(path="/dev/urandom", kind=stat.S_IFCHR, major=1, minor=9),
    DeviceNode(path="/dev/tty", kind=stat.S_IFCHR, major=5, minor=0),
)

_DEVICE_KINDS = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}

# /dev symlinks every container gets (runc setupDevSymlinks, plus ptmx for the devpts instance).
_DEV_SYMLINKS = (
    ("pts/ptmx", "ptmx"),
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
)


def device_nodes(config: oci.Config) -> list[DeviceNode]:
    """The default devices, then ``linux.devices`` (a config entry replaces a default one)."""
    nodes = {node.path: node for node in DEFAULT_DEVICES}
    devices = (config.linux.devices if config.linux else None) or []
    for index, device in enumerate(devices):
        where = f"linux.devices[{index}]"
        path = _mounts.clean_path(device.path)
        if not _mounts.is_inside(path, "/dev") or path == "/dev":
            raise SpecError(f"device path {device.path!r} must be below /dev", field=f"{where}.path")
        kind = _DEVICE_KINDS.get(device.type)
        if kind is None:
            raise SpecError(f"unknown device type {device.type!r}", field=f"{where}.type")
        if kind != stat.S_IFIFO and (device.major is None or device.minor is None):
            raise SpecError("major and minor are required", field=where)
        mode = 0o666 if device.file_mode is None else device.file_mode
        # Some generators put the file type in fileMode too (0o20666); accept it when it agrees.
        if stat.S_IFMT(mode) not in (0, kind) or mode & ~(0o7777 | stat.S_IFMT(mode)):
            raise SpecError(f"fileMode {mode:#o} does not fit a {device.type!r} device", field=f"{where}.fileMode")
        mode = stat.S_IMODE(mode)
        nodes[path] = DeviceNode(
            path=path,
            kind=kind,
            major=device.major or 0,
            minor=device.minor or 0,
            mode=mode,
            uid=device.uid,
            gid=device.gid,
        )
    return list(nodes.values())


def mount_flags(fd: int) -> int:
    """The MS_* per-mount flags of the mount ``fd`` lives on (from fstatvfs, like runc)."""
    try:
        flag = os.fstatvfs(fd).f_flag
    except OSError as exc:
        raise KernelError.from_oserror(exc, "fstatvfs", fd_path(fd)) from None
    result = 0
    for st_bit, ms_bit in _STATVFS_TO_MS:
        if flag & st_bit:
            result |= ms_bit
    return result


# --- prepare -------------------------------------------------------------------------------------


@record(kw_only=False)
class _Rootfs:
    sys: Syscalls
    path: str
    """Canonical host path of the rootfs (the bind mount)."""
    fd: int
    """O_PATH fd of the rootfs bind mount's root."""
    in_userns: bool
    cgroup_mounts: list[tuple[str, str, str, frozenset[str]]] | None = None
    """RootfsPlan.cgroup_mounts"""

    def reopen(self, destination: str, first: str, *, no_symlinks: bool = False) -> int:
        """Open ``destination`` again after mounting on it: the old fd still points *under* the
        new mount, so remounts and propagation changes need a fresh lookup (mount(2) gives EINVAL
        otherwise).  The lookup must land where the first one did, or something raced us."""
        fd = open_in_root(self.sys, self.fd, destination, _O_PATH, no_symlinks=no_symlinks)
        try:
            where = fd_path(fd)
            if where != first:
                raise SpecError(f"{destination} moved to {where} while it was being mounted", field="mounts")
        except BaseException:
            self.sys.close(fd)
            raise
        return fd


@record
class RootfsPlan:
    """What prepare_rootfs works out before its first state change: the runtime computes it
    before fork(2) (plan_rootfs), so that a bad config fails there, and the container's init,
    whose every write to memory it shares with the runtime costs a copy-on-write fault, only
    executes it."""

    mounts: list[PlannedMount]
    nodes: list[DeviceNode]
    rootfs: str
    """Canonical host path of the root filesystem."""
    mount_point: str | None = None
    """Mount point of the mount holding ``rootfs``, when read in the mount namespace the init
    copies (None: the init reads it)."""
    cgroup_mounts: list[tuple[str, str, str, frozenset[str]]] | None = None
    """The host's cgroup mounts (mounts.cgroup_mounts_from) for a cgroup mount, when read in
    the mount and cgroup namespaces the init copies and stays in (None: the init reads them)."""


def plan_rootfs(config: oci.Config, bundle: str, *, same_mount_ns: bool = False) -> RootfsPlan:
    """Validate the mounts, devices and root of ``config``; touches nothing.

    ``same_mount_ns``: the caller's mount namespace is the one the init will copy with
    unshare(CLONE_NEWNS), so the rootfs's mount point can be read here."""
    plan = _mounts.plan_mounts(config, bundle)
    nodes = device_nodes(config)
    rootfs = _resolve_rootfs(config, bundle)
    propagation = config.linux.rootfs_propagation if config.linux else None
    if propagation:
        _mounts.propagation_flags(propagation)
    mount_point = None
    cgroup_mounts = None
    if same_mount_ns:
        mountinfo: str | None = None
        if not _all_private(propagation):
            mountinfo = _mounts.read_proc_text("/proc/self/mountinfo")
            mount_point = _mount_point_in(mountinfo, rootfs)
        # cgroup mounts show their root relative to the reader's cgroup namespace: only when the
        # init stays in ours is our view its view. Read here, it spares the init (whose every
        # write to memory shared with us costs a copy-on-write fault) ~0.2 ms of reading and
        # parsing. Its own /proc/self/cgroup it still reads itself, once it is in its cgroups.
        if config.namespace("cgroup") is None and any(p.kind == "cgroup" for p in plan):
            if mountinfo is None:
                mountinfo = _mounts.read_proc_text("/proc/self/mountinfo")
            cgroup_mounts = _mounts.cgroup_mounts_from(mountinfo)
    return RootfsPlan(mounts=plan, nodes=nodes, rootfs=rootfs, mount_point=mount_point, cgroup_mounts=cgroup_mounts)


def _all_private(propagation: str | None) -> bool:
    return propagation in ("private", "rprivate")


def prepare_rootfs(
    config: oci.Config,
    bundle: str,
    sys: Syscalls,
    *,
    console_path: str | None = None,
    in_userns: bool = False,
    host_root_stage: str | None = None,
    before_cgroup_work: Callable[[], None] | None = None,
    rootfs_plan: RootfsPlan | None = None,
) -> str:
    """Build the container's mount tree below the rootfs; return the rootfs' absolute host path.

    Runs in the init process, inside its new mount namespace, before pivot_root.

    ``before_cgroup_work`` is called once, before the first step whose result depends on the
    process's cgroups: a cgroup or cgroup2 mount (its view is that of our cgroups and cgroup
    namespace) and the creation of device nodes (the v1 devices cgroup decides what mknod(2)
    may make); at the latest before returning. The init waits there until the runtime has put
    it into its cgroups, so that the mounts before can overlap that move.

    ``rootfs_plan`` is plan_rootfs(config, bundle) when the caller computed it already.
    """
    pending = [before_cgroup_work] if before_cgroup_work is not None else []

    def cgroups_ready() -> None:
        while pending:
            pending.pop()()

    # Validate everything before the first state change.
    if rootfs_plan is None:
        rootfs_plan = plan_rootfs(config, bundle)
    plan = rootfs_plan.mounts
    nodes = rootfs_plan.nodes
    rootfs = rootfs_plan.rootfs
    propagation = config.linux.rootfs_propagation if config.linux else None

    # 1. Nothing we mount from here on may propagate to the host.  runc uses rslave so host
    # unmounts still reach us; a requested "shared" is applied to the container's / only at the
    # end (finalize_rootfs), never to the copy of the host tree.
    if _all_private(propagation):
        # Every mount is private now, the rootfs's parent included (what the step below does).
        sys.mount(None, "/", None, C.MS_PRIVATE | C.MS_REC)
    else:
        sys.mount(None, "/", None, C.MS_SLAVE | C.MS_REC)
        # pivot_root(2) refuses a new root whose parent mount is shared; a private parent also
        # keeps the rootfs bind below out of every peer group.
        sys.mount(None, rootfs_plan.mount_point or _mount_point_of(rootfs), None, C.MS_PRIVATE)
    if rootfs == "/":
        rootfs = _stage_host_root(sys, host_root_stage)
    else:
        # 2. A bind of the rootfs onto itself makes it a mount point, which pivot_root needs.
        sys.mount(rootfs, rootfs, None, C.MS_BIND | C.MS_REC)
    root_fd = sys.open(rootfs, _O_PATH_DIR)
    if config.root is not None and config.root.readonly:
        # A remount (finalize_rootfs) only makes the top mount read-only; mounts the rootfs
        # carries below it (all of the host's when the root is "/") would stay writable.
        # mount_setattr(2) with AT_RECURSIVE covers the whole subtree; the top stays writable
        # until finalize so that missing mount points can still be created.
        sys.mount_setattr(root_fd, "", _AT_EMPTY_PATH | _AT_RECURSIVE, _MOUNT_ATTR_RDONLY)
        sys.mount_setattr(root_fd, "", _AT_EMPTY_PATH, 0, _MOUNT_ATTR_RDONLY)
    ctx = _Rootfs(sys=sys, path=rootfs, fd=root_fd, in_userns=in_userns, cgroup_mounts=rootfs_plan.cgroup_mounts)
    try:
        verify_inside(root_fd, rootfs, "/", directory=True)
        delayed_readonly: list[PlannedMount] = []
        # 3. config.mounts, in order.
        for planned in plan:
            if planned.kind == "cgroup" or planned.fstype == "cgroup2":
                cgroups_ready()
            _mount_one(ctx, planned, delayed_readonly)
        cgroups_ready()
        # 4. /dev contents.
        if _mounts.needs_dev_setup(plan):
            _setup_dev(ctx, nodes)
        if console_path is not None:
            _mount_console(ctx, console_path)
        # /dev and tmpfs mounts stay writable until their contents exist (runc does the same).
        for planned in delayed_readonly:
            _bind_remount(ctx, planned.destination, C.MS_RDONLY, 0, no_symlinks=planned.no_symlinks)
    finally:
        sys.close(root_fd)
    return rootfs


HOST_ROOT_STAGE = "/tmp/.tinycontainer-root"


def _stage_host_root(sys: Syscalls, stage: str | None) -> str:
    """The host's / as a read-only root (the seed's default): "/" cannot be bound onto itself
    and pivoted into, since a path lookup of "/" never crosses the mounts stacked on the
    process's root. So the host's / is bound recursively onto an empty directory: ``stage``
    (the runtime passes one in the container's state directory, removed with it), else, as
    bubblewrap does, one on a private tmpfs over /tmp (in this mount namespace only) - which
    hides the host's /tmp from bind-mount sources, hence the stage."""
    if stage is None:
        sys.mount("tmpfs", "/tmp", "tmpfs", C.MS_NOSUID | C.MS_NODEV, "mode=700,size=16k")
        stage = HOST_ROOT_STAGE
    try:
        sys.mkdir(stage, 0o700)
    except KernelError as exc:
        if exc.errno != errno.EEXIST:
            raise
    sys.mount("/", stage, None, C.MS_BIND | C.MS_REC)
    return stage


def _resolve_rootfs(config: oci.Config, bundle: str) -> str:
    if config.root is None or not config.root.path:
        raise SpecError("the root filesystem path is required", field="root.path")
    path = os.path.realpath(os.path.join(bundle, config.root.path))
    if not os.path.isdir(path):
        raise SpecError(f"root filesystem {path} does not exist or is not a directory", field="root.path")
    if path == "/" and not (config.root.readonly):
        raise SpecError("the host's / can only be a container's root read-only", field="root.path")
    return path


def _read_mountinfo() -> list[_mounts.MountInfo]:
    return _mounts.parse_mountinfo(_mounts.read_proc_text("/proc/self/mountinfo"))


def _mount_point_of(path: str) -> str:
    """The mount point of the mount holding ``path`` (host side, read from mountinfo)."""
    return _mount_point_in(_mounts.read_proc_text("/proc/self/mountinfo"), path)


def _mount_point_in(mountinfo: str, path: str) -> str:
    best = "/"
    for line in mountinfo.splitlines():
        # proc(5): the fifth field is the mount point (escaped: no field holds a blank)
        fields = line.split(" ", 5)
        if len(fields) < 6:
            continue
        point = _mounts.unescape_mountinfo(fields[4])
        if len(point) > len(best) and _mounts.is_inside(path, point):
            best = point
    return best


def _mount_one(ctx: _Rootfs, planned: PlannedMount, delayed_readonly: list[PlannedMount]) -> None:
    try:
        if planned.kind == "bind":
            _mount_bind(ctx, planned)
        elif planned.kind == "cgroup":
            _mount_cgroup(ctx, planned)
        elif planned.kind == "sysfs" and ctx.in_userns:
            _mount_sysfs_in_userns(ctx, planned)
        else:
            readonly_later = planned.kind == "tmpfs" or planned.destination == "/dev"
            if readonly_later and planned.options.flags & C.MS_RDONLY:
                delayed_readonly.append(planned)
            _mount_filesystem(ctx, planned, drop=C.MS_RDONLY if readonly_later else 0)
    except KernelError as exc:
        where = f"mounts[{planned.index}] {planned.destination}"
        raise KernelError(
            exc.errno or errno.EIO, exc.syscall, exc.filename, f"{where}: {exc.detail}" if exc.detail else where
        ) from None


def _open_target(ctx: _Rootfs, planned: PlannedMount, *, directory: bool) -> tuple[int, str]:
    """Find or create the mount point; return its O_PATH fd and its host path, both verified."""
    fd = ensure_mountpoint(ctx.sys, ctx.fd, planned.destination, directory=directory, no_symlinks=planned.no_symlinks)
    try:
        where = fd_path(fd)
        verify_inside(fd, ctx.path, planned.destination, directory=directory, where=where)
        # The lexical check in plan_mounts saw the destination string; symlinks inside the
        # rootfs may have led somewhere else, so check where we really are.
        check_proc_destination(relative_to_root(fd, ctx.path, where=where), planned.kind)
        return fd, where
    except BaseException:
        ctx.sys.close(fd)
        raise


def _mount_filesystem(ctx: _Rootfs, planned: PlannedMount, *, drop: int = 0) -> str:
    """Mount a filesystem on the (verified) target; the target's host path."""
    sys = ctx.sys
    fd, where = _open_target(ctx, planned, directory=True)
    try:
        flags = planned.options.flags & ~drop
        sys.mount(planned.source, proc_fd(fd), planned.fstype, flags, planned.options.data or None)
    finally:
        sys.close(fd)
    _apply_propagation(ctx, planned, where)
    return where


def _apply_propagation(ctx: _Rootfs, planned: PlannedMount, where: str) -> None:
    if not planned.options.propagation:
        return
    fd = ctx.reopen(planned.destination, where, no_symlinks=planned.no_symlinks)
    try:
        for flags in planned.options.propagation:
            ctx.sys.mount(None, proc_fd(fd), None, flags)
    finally:
        ctx.sys.close(fd)


def _open_host_source(sys: Syscalls, source: str) -> int:
    # The source is a host path chosen by the config's author (trusted); opening it once makes the
    # type check below and the bind see the same object even if the path changes meanwhile.
    return sys.open(source, _O_PATH)


def _mount_bind(ctx: _Rootfs, planned: PlannedMount) -> None:
    sys = ctx.sys
    assert planned.source is not None
    source_fd = _open_host_source(sys, planned.source)
    try:
        is_dir = stat.S_ISDIR(os.fstat(source_fd).st_mode)
        if planned.destination == "/proc" and sys.fstatfs_type(source_fd, planned.source) != C.PROC_SUPER_MAGIC:
            raise SpecError(f"{planned.source}: only a procfs may be bind-mounted on /proc", field="mounts")
        fd, where = _open_target(ctx, planned, directory=is_dir)
        try:
            sys.mount(proc_fd(source_fd), proc_fd(fd), None, C.MS_BIND | (planned.options.flags & C.MS_REC))
        finally:
            sys.close(fd)
    finally:
        sys.close(source_fd)
    # A bind ignores every flag but MS_BIND|MS_REC on creation; a second call applies them.
    wanted = planned.options.flags & BIND_REMOUNT_FLAGS
    cleared = planned.options.cleared & BIND_REMOUNT_FLAGS
    if wanted or cleared:
        _bind_remount(ctx, planned.destination, wanted, cleared, expect=where, no_symlinks=planned.no_symlinks)
    _apply_propagation(ctx, planned, where)


def _bind_remount(
    ctx: _Rootfs,
    destination: str,
    wanted: int,
    cleared: int,
    *,
    expect: str | None = None,
    no_symlinks: bool = False,
) -> None:
    """MS_BIND|MS_REMOUNT the mount at ``destination``, keeping its sticky flags unless cleared."""
    if expect is None:
        probe = open_in_root(ctx.sys, ctx.fd, destination, _O_PATH, no_symlinks=no_symlinks)
        try:
            expect = fd_path(probe)
        finally:
            ctx.sys.close(probe)
    fd = ctx.reopen(destination, expect, no_symlinks=no_symlinks)
    try:
        keep = mount_flags(fd) & _STICKY_FLAGS & ~cleared
        ctx.sys.mount(None, proc_fd(fd), None, C.MS_BIND | C.MS_REMOUNT | keep | wanted)
    finally:
        ctx.sys.close(fd)


def _mount_sysfs_in_userns(ctx: _Rootfs, planned: PlannedMount) -> None:
    """sysfs needs a network namespace owned by our user namespace; without one the kernel says
    EPERM, and runc falls back to a read-only recursive bind of the host's /sys."""
    try:
        _mount_filesystem(ctx, planned)
        return
    except KernelError as exc:
        if exc.errno != errno.EPERM:
            raise
    fallback = PlannedMount(
        destination=planned.destination,
        kind="bind",
        source="/sys",
        fstype=None,
        options=_mounts.MountOptions(
            flags=C.MS_BIND | C.MS_REC | (planned.options.flags & BIND_REMOUNT_FLAGS) | C.MS_RDONLY,
            propagation=planned.options.propagation,
        ),
        index=planned.index,
    )
    _mount_bind(ctx, fallback)


def _mount_cgroup(ctx: _Rootfs, planned: PlannedMount) -> None:
    """The cgroup fs, always read-only (CVE-2023-25809): cgroup2 on a v2 host, or on v1 a tmpfs
    holding a read-only bind of our own cgroup in every hierarchy (as runc does)."""
    # Read here, not with the mountinfo read above: both files show cgroup paths relative to
    # the reader's cgroup namespace, which the init may only have entered since.
    if ctx.cgroup_mounts is None:
        layout = _mounts.host_cgroup_layout()
    else:
        layout = _mounts.layout_from_cgroup_mounts(ctx.cgroup_mounts, _mounts.read_proc_text("/proc/self/cgroup"))
    readonly = (planned.options.flags & BIND_REMOUNT_FLAGS) | C.MS_RDONLY | C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC
    if layout.unified:
        cgroup2 = PlannedMount(
            destination=planned.destination,
            kind="fs",
            source="cgroup2",
            fstype="cgroup2",
            options=_mounts.MountOptions(flags=readonly, propagation=planned.options.propagation),
            index=planned.index,
        )
        try:
            _mount_filesystem(ctx, cgroup2)
            return
        except KernelError as exc:
            if not (ctx.in_userns and exc.errno in (errno.EPERM, errno.EBUSY)):
                raise
        fallback = PlannedMount(
            destination=planned.destination,
            kind="bind",
            source="/sys/fs/cgroup",
            fstype=None,
            options=_mounts.MountOptions(
                flags=C.MS_BIND | C.MS_REC | readonly, propagation=cgroup2.options.propagation
            ),
            index=planned.index,
        )
        _mount_bind(ctx, fallback)
        return

    sys = ctx.sys
    holder = PlannedMount(
        destination=planned.destination,
        kind="tmpfs",
        source="tmpfs",
        fstype="tmpfs",
        options=_mounts.MountOptions(flags=C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC, data="mode=755"),
        index=planned.index,
    )
    tmpfs_path = _mount_filesystem(ctx, holder)
    # The old fd lies under the tmpfs; a fresh lookup reaches it, and must land where the first did.
    tmpfs_fd = open_in_root(sys, ctx.fd, planned.destination, _O_PATH_DIR)
    try:
        if fd_path(tmpfs_fd) != tmpfs_path:
            raise SpecError(f"{planned.destination} moved while it was being mounted", field="mounts")
        for source, name in layout.v1_binds:
            source_fd = sys.open(source, _O_PATH_DIR)
            try:
                # The tmpfs is ours and empty: nothing below it may be a symlink.
                target = make_child_dir(sys, tmpfs_fd, name)
                try:
                    sys.mount(proc_fd(source_fd), proc_fd(target), None, C.MS_BIND | C.MS_REC)
                finally:
                    sys.close(target)
            finally:
                sys.close(source_fd)
        for _, name in layout.v1_binds:
            if "," in name:
                for controller in name.split(","):
                    _symlink(sys, name, controller, tmpfs_fd)
        # One mount_setattr(2) with AT_RECURSIVE makes the tmpfs and every bind below it
        # read-only at once: it sets only the attributes named, so the flags a user namespace
        # locks stay as they are, and no per-bind lookup is needed. tmpfs_fd was opened after
        # the tmpfs was mounted, so it is the tmpfs's root.
        if not _setattr_recursive(sys, tmpfs_fd, readonly, planned.destination):
            for _, name in layout.v1_binds:
                sub = f"{planned.destination}/{name}"
                _bind_remount(ctx, sub, readonly, 0, expect=f"{tmpfs_path}/{name}", no_symlinks=True)
            _bind_remount(ctx, planned.destination, readonly, 0, expect=tmpfs_path)
    finally:
        sys.close(tmpfs_fd)
    _apply_propagation(ctx, planned, tmpfs_path)


# include/uapi/linux/mount.h: mount_setattr(2)'s attributes. The atime ones are an enum in
# MOUNT_ATTR__ATIME, changed only with the whole field in attr_clr.
_MOUNT_ATTR_BITS = (
    (C.MS_RDONLY, 0x1),
    (C.MS_NOSUID, 0x2),
    (C.MS_NODEV, 0x4),
    (C.MS_NOEXEC, 0x8),
    (C.MS_NOSYMFOLLOW, 0x200000),
)
_MOUNT_ATTR__ATIME = 0x70
_MOUNT_ATTR_NOATIME = 0x10
_MOUNT_ATTR_STRICTATIME = 0x20
_MOUNT_ATTR_NODIRATIME = 0x80
_MS_ATIME_FLAGS = C.MS_NOATIME | C.MS_NODIRATIME | C.MS_RELATIME | C.MS_STRICTATIME


def mount_attr_from_flags(flags: int) -> tuple[int, int]:
    """(attr_set, attr_clr) for mount_setattr(2) with the effect of MS_BIND|MS_REMOUNT|``flags``
    on a mount whose sticky flags (_STICKY_FLAGS) are kept.

    Like that remount, it sets the MS_RDONLY/NOSUID/NODEV/NOEXEC/NOSYMFOLLOW named and clears
    none of them; it changes the atime mode only when an atime flag is named, to relatime by
    default (fs/namespace.c path_mount: "Default to relatime unless overriden"), noatime, or
    strictatime, which wins; and nodiratime goes with the atime flags.
    """
    attr_set = 0
    attr_clr = 0
    for ms_bit, attr in _MOUNT_ATTR_BITS:
        if flags & ms_bit:
            attr_set |= attr
    if flags & _MS_ATIME_FLAGS:
        attr_clr |= _MOUNT_ATTR__ATIME | _MOUNT_ATTR_NODIRATIME
        if flags & C.MS_STRICTATIME:
            attr_set |= _MOUNT_ATTR_STRICTATIME
        elif flags & C.MS_NOATIME:
            attr_set |= _MOUNT_ATTR_NOATIME
        if flags & C.MS_NODIRATIME:
            attr_set |= _MOUNT_ATTR_NODIRATIME
    return attr_set, attr_clr


def _setattr_recursive(sys: Syscalls, fd: int, flags: int, where: str) -> bool:
    """Apply ``flags`` (as a bind remount would) to the mount ``fd`` is the root of and every
    mount below it; False when the kernel has no mount_setattr(2) (before Linux 5.12)."""
    attr_set, attr_clr = mount_attr_from_flags(flags)
    try:
        sys.mount_setattr(fd, "", _AT_EMPTY_PATH | _AT_RECURSIVE, attr_set, attr_clr)
    except KernelError as exc:
        if exc.errno == errno.ENOSYS:
            return False
        raise KernelError(exc.errno or errno.EIO, exc.syscall, where, exc.detail) from None
    return True


def _symlink(sys: Syscalls, target: str, name: str, dir_fd: int) -> None:
    try:
        sys.symlink(target, name, dir_fd=dir_fd)
    except KernelError as exc:
        if exc.errno != errno.EEXIST:
            raise


def _setup_dev(ctx: _Rootfs, nodes: list[DeviceNode]) -> None:
    sys = ctx.sys
    # A symlinked /dev would send every mknod below out of the rootfs (CVE-2026-41579).
    dev_fd = mkdir_all_in_root(sys, ctx.fd, "/dev", no_symlinks=True)
    try:
        verify_inside(dev_fd, ctx.path, "/dev", directory=True)
        # mknod(2) modes are filtered by the umask; the spec's fileMode must be exact.
        old_umask = os.umask(0)
        try:
            for node in nodes:
                _create_device(ctx, dev_fd, node)
        finally:
            os.umask(old_umask)
        links = list(_DEV_SYMLINKS)
        if _host_has_kcore():
            links.append(("/proc/kcore", "core"))
        for target, name in links:
            _symlink(sys, target, name, dev_fd)
    finally:
        sys.close(dev_fd)


def _host_has_kcore() -> bool:
    # CONFIG_PROC_KCORE may be off; runc only links /dev/core when /proc/kcore exists.
    return os.path.exists("/proc/kcore")


def _create_device(ctx: _Rootfs, dev_fd: int, node: DeviceNode) -> None:
    sys = ctx.sys
    relative = node.path[len("/dev/") :]
    parent_path, _, name = relative.rpartition("/")
    if not parent_path:
        # Directly in /dev: its fd, already verified, is the parent (no lookup, nothing to close).
        _create_device_in(ctx, dev_fd, name, node)
        return
    parent = mkdir_all_in_root(sys, dev_fd, parent_path, no_symlinks=True)
    try:
        _create_device_in(ctx, parent, name, node)
    finally:
        sys.close(parent)


def _create_device_in(ctx: _Rootfs, parent: int, name: str, node: DeviceNode) -> None:
    sys = ctx.sys
    if ctx.in_userns and node.kind != stat.S_IFIFO:
        # mknod of devices is refused in a user namespace: bind the host's node instead.
        _bind_host_device(ctx, parent, name, node)
        return
    try:
        sys.mknod(name, node.kind | node.mode, os.makedev(node.major, node.minor), dir_fd=parent)
    except KernelError as exc:
        if exc.errno != errno.EEXIST:
            raise
        _check_existing_node(sys, parent, name, node)
    if node.uid is not None or node.gid is not None:
        sys.chown(name, node.uid or 0, node.gid or 0, dir_fd=parent)


def _check_existing_node(sys: Syscalls, parent: int, name: str, node: DeviceNode) -> None:
    # An image may ship its own /dev; keep an identical node, refuse anything else.
    fd = openat2_retry(sys, parent, name, os.O_PATH, 0, SCOPED | C.RESOLVE_NO_SYMLINKS)
    try:
        st = os.fstat(fd)
    finally:
        sys.close(fd)
    same_kind = stat.S_IFMT(st.st_mode) == node.kind
    if not same_kind or (node.kind != stat.S_IFIFO and st.st_rdev != os.makedev(node.major, node.minor)):
        raise SpecError(f"{node.path} already exists in the image and is a different file", field="linux.devices")


def _bind_host_device(ctx: _Rootfs, parent: int, name: str, node: DeviceNode) -> None:
    sys = ctx.sys
    source_fd = _open_host_source(sys, node.path)
    try:
        st = os.fstat(source_fd)
        if stat.S_IFMT(st.st_mode) != node.kind or st.st_rdev != os.makedev(node.major, node.minor):
            raise SpecError(f"host {node.path} is not the device {node.major}:{node.minor}", field="linux.devices")
        target = create_file_in_root(sys, parent, name, 0o600)
        try:
            verify_inside(target, ctx.path, node.path, directory=False)
            sys.mount(proc_fd(source_fd), proc_fd(target), None, C.MS_BIND)
        finally:
            sys.close(target)
    finally:
        sys.close(source_fd)


def _mount_console(ctx: _Rootfs, console_path: str) -> None:
    """Bind the pty slave onto /dev/console (an empty file first, as the spec says)."""
    sys = ctx.sys
    source_fd = sys.open(console_path, _O_PATH | os.O_NOFOLLOW)
    try:
        st = os.fstat(source_fd)
        # UNIX98 pty slaves are char majors 136-143 (Documentation/admin-guide/devices.txt);
        # a console that is anything else was swapped (CVE-2025-52565).
        if not stat.S_ISCHR(st.st_mode) or not 136 <= os.major(st.st_rdev) <= 143:
            raise SpecError(f"console {console_path} is not a pseudo-terminal", field="process.terminal")
        dev_fd = mkdir_all_in_root(sys, ctx.fd, "/dev", no_symlinks=True)
        try:
            target = create_file_in_root(sys, dev_fd, "console", 0o600)
        finally:
            sys.close(dev_fd)
        try:
            verify_inside(target, ctx.path, "/dev/console", directory=False)
            sys.mount(proc_fd(source_fd), proc_fd(target), None, C.MS_BIND)
        finally:
            sys.close(target)
    finally:
        sys.close(source_fd)


# --- enter ---------------------------------------------------------------------------------------


def enter_rootfs(rootfs_path: str, sys: Syscalls, *, no_pivot: bool = False) -> None:
    """Make the prepared rootfs the process's / and drop the host's root.

    pivot_root(".", ".") stacks the old root on top of the new one at the same place; a lazy
    unmount of "." then removes the host tree from the namespace entirely.  ``no_pivot`` (for
    an initramfs, where pivot_root is impossible) moves the rootfs over / and chroots: the host
    mounts that are parents of the rootfs stay in the namespace, and a process holding
    CAP_SYS_CHROOT can climb back out of a chroot, which is why pivot_root is the default.
    """
    if no_pivot:
        _detach_foreign_mounts(sys, rootfs_path)
        sys.chdir(rootfs_path)
        sys.mount(rootfs_path, "/", None, C.MS_MOVE)
        sys.chroot(".")
        sys.chdir("/")
        return
    old_root = sys.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        new_root = sys.open(rootfs_path, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            sys.fchdir(new_root)
            sys.pivot_root(".", ".")
        finally:
            sys.close(new_root)
        # The kernel does not promise where "." is after pivot_root; go to the old root explicitly.
        sys.fchdir(old_root)
        # rslave before the lazy unmount so the unmount cannot propagate to any peer (the host).
        sys.mount(None, ".", None, C.MS_SLAVE | C.MS_REC)
        sys.umount2(".", C.MNT_DETACH)
    finally:
        sys.close(old_root)
    sys.chdir("/")


def _detach_foreign_mounts(sys: Syscalls, rootfs_path: str) -> None:
    """Before MS_MOVE+chroot: lazily unmount every mount that is neither the rootfs, below it,
    nor one of its ancestors, so host /proc, /sys, /dev are not reachable (runc's msMoveRoot)."""
    points = sorted({e.mount_point for e in _read_mountinfo()}, key=len, reverse=True)
    for point in points:
        if _mounts.is_inside(point, rootfs_path) or _mounts.is_inside(rootfs_path, point):
            continue
        try:
            sys.umount2(point, C.MNT_DETACH)
        except KernelError as exc:
            # Already gone with a detached parent, or not a mount any more.
            if exc.errno not in (errno.EINVAL, errno.ENOENT):
                raise


# --- finalize ------------------------------------------------------------------------------------


def finalize_rootfs(config: oci.Config, sys: Syscalls, *, root: str = "/") -> None:
    """After pivot_root: root.readonly, readonlyPaths, maskedPaths, then rootfsPropagation.

    ``root`` is the container's root as seen by the caller ("/" after pivot_root; tests pass a
    directory).  Call :func:`write_sysctls` first: /proc/sys is usually a readonly path.
    """
    linux = config.linux or oci.Linux()
    root_fd = sys.open(root, _O_PATH_DIR)
    try:
        root_path = fd_path(root_fd)
        # Every mount below goes through /proc/self/fd: that /proc must be a real procfs.
        _require_procfs(sys, "/proc")
        if config.root is not None and config.root.readonly:
            keep = mount_flags(root_fd) & _STICKY_FLAGS
            sys.mount(None, proc_fd(root_fd), None, C.MS_BIND | C.MS_REMOUNT | C.MS_RDONLY | keep)
        for path in linux.readonly_paths or []:
            _readonly_path(sys, root_fd, root_path, path)
        dev_null: int | None = None
        try:
            for path in linux.masked_paths or []:
                dev_null = _mask_path(sys, root_fd, root_path, path, dev_null)
        finally:
            if dev_null is not None:
                sys.close(dev_null)
        if linux.rootfs_propagation:
            flags = _mounts.propagation_flags(linux.rootfs_propagation)
            sys.mount(None, proc_fd(root_fd), None, flags)
    finally:
        sys.close(root_fd)


def _require_procfs(sys: Syscalls, path: str) -> int:
    fd = sys.open(path, _O_PATH_DIR | os.O_NOFOLLOW)
    try:
        if sys.fstatfs_type(fd, path) != C.PROC_SUPER_MAGIC:
            raise SpecError(f"{path} is not a procfs mount, refusing to use it", field="mounts")
    except BaseException:
        sys.close(fd)
        raise
    sys.close(fd)
    return C.PROC_SUPER_MAGIC


def _open_optional(sys: Syscalls, root_fd: int, path: str) -> int | None:
    try:
        return open_in_root(sys, root_fd, path, _O_PATH)
    except KernelError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def _readonly_path(sys: Syscalls, root_fd: int, root_path: str, path: str) -> None:
    fd = _open_optional(sys, root_fd, path)
    if fd is None:
        return
    try:
        where = fd_path(fd)
        check_inside(where, root_path, path)
        sys.mount(proc_fd(fd), proc_fd(fd), None, C.MS_BIND | C.MS_REC)
    finally:
        sys.close(fd)
    fd = open_in_root(sys, root_fd, path, _O_PATH)
    try:
        if fd_path(fd) != where:
            raise SpecError(f"{path} moved while it was being made read-only", field="linux.readonlyPaths")
        keep = mount_flags(fd) & _STICKY_FLAGS
        sys.mount(None, proc_fd(fd), None, C.MS_BIND | C.MS_REMOUNT | C.MS_RDONLY | keep)
    finally:
        sys.close(fd)


def is_dev_null(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == DEV_NULL_RDEV


def _mask_path(sys: Syscalls, root_fd: int, root_path: str, path: str, dev_null: int | None) -> int | None:
    fd = _open_optional(sys, root_fd, path)
    if fd is None:
        return dev_null
    try:
        st = verify_inside(fd, root_path, path)
        if stat.S_ISDIR(st.st_mode):
            sys.mount(
                "tmpfs",
                proc_fd(fd),
                "tmpfs",
                C.MS_RDONLY | C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC,
                "nr_blocks=1,nr_inodes=1",
            )
            return dev_null
        if dev_null is None:
            # The source must be the real /dev/null, checked on the fd we mount from: a /dev/null
            # raced into a symlink once made runc bind a procfs file read-write (CVE-2025-31133).
            dev_null = open_in_root(sys, root_fd, "/dev/null", _O_PATH, no_symlinks=True)
            if not is_dev_null(os.fstat(dev_null)):
                sys.close(dev_null)
                raise SpecError(
                    "/dev/null in the container is not the null device (char 1:3)", field="linux.maskedPaths"
                )
        sys.mount(proc_fd(dev_null), proc_fd(fd), None, C.MS_BIND)
        return dev_null
    finally:
        sys.close(fd)


# --- sysctl --------------------------------------------------------------------------------------

_IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)


def sysctl_path(name: str) -> str:
    """ "net.ipv4.ip_forward" -> "sys/net/ipv4/ip_forward" (relative to /proc), refusing escapes."""
    if not name or "/" in name or "\0" in name:
        raise SpecError(f"invalid sysctl name {name!r}", field="linux.sysctl")
    parts = name.split(".")
    if any(part in ("", "..") for part in parts):
        raise SpecError(f"invalid sysctl name {name!r}", field="linux.sysctl")
    return "sys/" + "/".join(parts)


def validate_sysctl(config: oci.Config) -> None:
    """Allow only namespaced sysctls, and only when the container has that namespace (runc's rules)."""
    sysctl = (config.linux.sysctl if config.linux else None) or {}
    for name in sysctl:
        sysctl_path(name)
        if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            needed = "ipc"
        elif name.startswith("net."):
            needed = "network"
        elif name in ("kernel.hostname", "kernel.domainname"):
            needed = "uts"
        else:
            raise SpecError(f"sysctl {name!r} is not namespaced and cannot be set in a container", field="linux.sysctl")
        if config.namespace(needed) is None:
            raise SpecError(f"sysctl {name!r} needs a new {needed} namespace", field="linux.sysctl")


def write_sysctls(sysctl: dict[str, str] | None, sys: Syscalls, *, proc: str = "/proc") -> None:
    """Write ``linux.sysctl`` through a verified procfs fd (after pivot_root, before finalize)."""
    if not sysctl:
        return
    paths = {name: sysctl_path(name) for name in sysctl}
    proc_dir = sys.open(proc, _O_PATH_DIR | os.O_NOFOLLOW)
    try:
        if sys.fstatfs_type(proc_dir, proc) != C.PROC_SUPER_MAGIC:
            raise SpecError(f"{proc} is not a procfs mount, refusing to write sysctls", field="linux.sysctl")
        for name, value in sysctl.items():
            # NO_XDEV: a mount over anything below /proc (a bind of a host file) is refused.
            resolve = C.RESOLVE_BENEATH | C.RESOLVE_NO_SYMLINKS | C.RESOLVE_NO_MAGICLINKS | C.RESOLVE_NO_XDEV
            try:
                fd = openat2_retry(sys, proc_dir, paths[name], os.O_WRONLY, 0, resolve)
            except KernelError as exc:
                if exc.errno == errno.EXDEV:
                    raise SpecError(
                        f"sysctl {name}: something is mounted over it (write sysctls before finalize_rootfs)",
                        field="linux.sysctl",
                    ) from None
                raise
            try:
                if sys.fstatfs_type(fd, paths[name]) != C.PROC_SUPER_MAGIC:
                    raise SpecError(f"sysctl {name} is not a procfs file", field="linux.sysctl")
                try:
                    os.write(fd, value.encode())
                except OSError as exc:
                    raise KernelError(exc.errno or errno.EIO, "write", f"{proc}/{paths[name]}", value) from None
            finally:
                sys.close(fd)
    finally:
        sys.close(proc_dir)


__all__ = [
    "DEFAULT_DEVICES",
    "DeviceNode",
    "RootfsPlan",
    "device_nodes",
    "enter_rootfs",
    "finalize_rootfs",
    "is_dev_null",
    "mount_flags",
    "plan_rootfs",
    "prepare_rootfs",
    "sysctl_path",
    "validate_sysctl",
    "write_sysctls",
]
