"""Turn a :class:`~tinycontainer.Spec` into an OCI bundle directory, and take it apart again.

A library container lives in ``<lib root>/bundles/<id>/``::

    config.json        what the engine reads
    rootfs/            overlay mount of the image (image specs only), with upper/ and work/;
                       as an ordinary user a flattened copy of the image instead
    overlay            marker: rootfs/ is our overlay mount and must be unmounted

and in the engine's store ``<lib root>/state/<id>/``. The lib root (``/run/tcontainer/lib`` for
root, ``$XDG_RUNTIME_DIR/tcontainer/lib`` otherwise) is separate from tcontainer-oci's
``/run/tcontainer-oci`` and from the ``tcontainer`` CLI's records, so ids never clash.

:func:`remove_bundle` needs only the directory, so a monitor process (or a later cleanup pass)
can tear a bundle down without the :class:`Bundle` object.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import oci
from ._errors import ImageError, KernelError, SpecError
from ._spec import ImageDefaults, Spec

if TYPE_CHECKING:
    from .image import Image, ImageStore

OVERLAY_MARKER = "overlay"
CONFIG_FILE = "config.json"
ROOTFS_DIR = "rootfs"
DEFAULT_VOLUME_ROOT = "/var/lib/tcontainer/volumes"


def default_lib_root() -> str:
    """Where library containers keep bundles and engine state."""
    if os.geteuid() == 0:
        return "/run/tcontainer/lib"
    from ._unprivileged import user_runtime_dir

    # Not a bare /tmp path: another user could have planted it (user_runtime_dir checks).
    return os.path.join(user_runtime_dir(), "tcontainer", "lib")


def default_volume_root() -> str:
    if os.geteuid() == 0:
        return DEFAULT_VOLUME_ROOT
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "tcontainer", "volumes")


def default_image_root() -> str:
    """The image store of library runs: the shared one for root, else the same per-user
    store as the ``tcontainer`` CLI's (an ordinary user cannot write /var/lib)."""
    if os.geteuid() == 0:
        from .image._store import DEFAULT_ROOT

        return DEFAULT_ROOT
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "tcontainer", "images")


def new_container_id() -> str:
    return "tc-" + secrets.token_hex(8)


@dataclass(frozen=True)
class LibPaths:
    """The directories of one library root."""

    root: str

    @property
    def state(self) -> str:
        """The engine's store (``Runtime(root=...)``)."""
        return os.path.join(self.root, "state")

    @property
    def bundles(self) -> str:
        return os.path.join(self.root, "bundles")

    def bundle(self, container_id: str) -> str:
        return os.path.join(self.bundles, container_id)

    def ensure(self) -> None:
        for path in (self.root, self.state, self.bundles):
            os.makedirs(path, mode=0o700, exist_ok=True)


@dataclass(frozen=True)
class Bundle:
    """A prepared bundle: the directory, its config, and what the image asked for."""

    container_id: str
    path: str
    config: oci.Config
    image: ImageDefaults
    stop_signal: int
    overlay: bool

    @property
    def rootfs(self) -> str:
        assert self.config.root is not None
        root = self.config.root.path
        return root if os.path.isabs(root) else os.path.join(self.path, root)

    def remove(self) -> None:
        remove_bundle(self.path)


def image_defaults(img: Image) -> ImageDefaults:
    cfg = img.config
    return ImageDefaults(
        entrypoint=tuple(cfg.entrypoint or ()),
        command=tuple(cfg.cmd or ()),
        env=tuple(cfg.env),
        workdir=cfg.working_dir,
        user=cfg.user,
        stop_signal=cfg.stop_signal,
    )


def resolve_image(spec: Spec, store: ImageStore | None, *, pull: bool = True) -> tuple[ImageStore, Image]:
    """The spec's image from ``store`` (default: the shared image store), pulled when missing."""
    from .image import ImageNotFound, ImageStore

    assert spec.image is not None
    images = store if store is not None else ImageStore(default_image_root())
    try:
        return images, images.get(spec.image)
    except ImageNotFound:
        if not pull:
            raise
    return images, images.pull(spec.image)


def prepare_bundle(
    spec: Spec,
    *,
    args: list[str] | None = None,
    lib_root: str | None = None,
    container_id: str | None = None,
    images: ImageStore | None = None,
    pull: bool = True,
    volume_root: str | None = None,
    network_namespace: str | None = None,
    edit: Callable[[oci.Config], oci.Config] | None = None,
) -> Bundle:
    """Write ``<lib root>/bundles/<id>/`` for ``spec`` (mounting the image's overlay if any).

    ``args`` replaces the spec's command. ``edit`` may change the OCI config before it is
    written (the CLI uses it for options the Spec does not model). On any error nothing is left
    behind.
    """
    rootless = os.geteuid() != 0
    if rootless:
        from ._unprivileged import check_spec

        # Before anything is made: images and unenforceable limits are refused as non-root.
        check_spec(spec)
    paths = LibPaths(lib_root or default_lib_root())
    paths.ensure()
    cid = container_id or new_container_id()
    bundle = paths.bundle(cid)
    try:
        os.mkdir(bundle, 0o700)
    except FileExistsError:
        raise SpecError(f"bundle {bundle} already exists", field="container_id") from None
    overlay = False
    try:
        defaults = ImageDefaults()
        rootfs_path: str | None = None
        if spec.image is not None:
            store, img = resolve_image(spec, images, pull=pull)
            defaults = image_defaults(img)
            if rootless:
                # Copy fallback: an ordinary user cannot mount the store's overlay layers
                # (their whiteouts need trusted.* xattrs, overlayfs(5)), so the container gets
                # its own flattened copy. Files end up owned by the caller, which the user
                # namespace maps to root; device nodes are skipped (mknod(2) needs CAP_MKNOD).
                rootfs_path = os.path.join(bundle, ROOTFS_DIR)
                os.mkdir(rootfs_path, 0o755)
                store.flatten(img, rootfs_path)
            else:
                # The marker first: if the mount succeeds and anything after it fails, removal
                # still knows to unmount.
                _touch(os.path.join(bundle, OVERLAY_MARKER))
                overlay = True
                rootfs_path = store.mount_rootfs(img, bundle)
        elif spec.rootfs is not None:
            rootfs_path = os.path.realpath(spec.rootfs)
            if not os.path.isdir(rootfs_path):
                raise SpecError(f"{spec.rootfs} is not a directory", field="rootfs")
        volumes = volume_root or default_volume_root()
        _check_mount_sources(spec, volumes)
        resolver = None if rootfs_path is None else passwd_resolver(rootfs_path)
        config = spec.to_oci_config(
            args=args,
            rootfs_path=rootfs_path,
            image=defaults,
            resolve_user=resolver,
            volume_root=volumes,
            network_namespace=network_namespace,
            rootless=rootless,
        )
        if rootless:
            from ._unprivileged import add_subid_mappings, no_limits_warning
            from .runtime._log import warn

            config = add_subid_mappings(config)
            warning = no_limits_warning(spec)
            if warning is not None:
                warn(warning)
        if edit is not None:
            config = edit(config)
        _write_config(os.path.join(bundle, CONFIG_FILE), config)
        stop = spec.stop_signal_number
        if stop is None and defaults.stop_signal:
            from .runtime import parse_signal

            try:
                stop = parse_signal(defaults.stop_signal)
            except Exception:
                stop = None
        return Bundle(
            container_id=cid,
            path=bundle,
            config=config,
            image=defaults,
            stop_signal=stop or 15,
            overlay=overlay,
        )
    except BaseException:
        with contextlib.suppress(Exception):
            remove_bundle(bundle)
        raise


def remove_bundle(path: str) -> None:
    """Unmount the overlay (if ours) and delete the bundle directory. Idempotent.

    Refuses to delete while ``rootfs/`` is still a mount point: rmtree would walk into it and
    delete through the mount.
    """
    if not os.path.isdir(path):
        return
    rootfs = os.path.join(path, ROOTFS_DIR)
    if os.path.exists(os.path.join(path, OVERLAY_MARKER)):
        _unmount(rootfs)
    if os.path.ismount(rootfs):
        raise KernelError(errno.EBUSY, "umount2", rootfs, "still mounted; bundle left in place")
    _rmtree(path)


def _rmtree(path: str) -> None:
    if os.geteuid() != 0:
        # Without CAP_DAC_OVERRIDE a read-only directory of a flattened image (0555 /proc in
        # many images) cannot have its entries removed: give the owner write access first.
        _make_writable(path)

    def onerror(func: object, failed: str, exc_info: object) -> None:
        if not os.path.lexists(failed):
            return
        raise KernelError(errno.EIO, "rmtree", failed)

    shutil.rmtree(path, onerror=onerror)


def _make_writable(top: str) -> None:
    import stat

    # fwalk does not follow symlinks; each child is lstat-ed through its parent's fd before
    # the chmod, and the container is gone, so nothing swaps it for a symlink meanwhile.
    for _dirpath, dirnames, _files, dir_fd in os.fwalk(top, follow_symlinks=False):
        for name in dirnames:
            with contextlib.suppress(OSError):
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and st.st_mode & 0o700 != 0o700:
                    os.chmod(name, stat.S_IMODE(st.st_mode) | 0o700, dir_fd=dir_fd)


def _unmount(target: str) -> None:
    from .linux import _consts as C
    from .linux._syscalls import LinuxSyscalls

    sys = LinuxSyscalls()
    # Not lazy first: a plain unmount fails with EBUSY while something still uses the tree,
    # which tells us; the lazy one only detaches it (umount(2)).
    try:
        sys.umount2(target, 0)
        return
    except KernelError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOENT):
            return
        if exc.errno != errno.EBUSY:
            raise
    sys.umount2(target, C.MNT_DETACH)


def _touch(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.close(fd)


def _write_config(path: str, config: oci.Config) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(config.to_json(indent=None))


def _check_mount_sources(spec: Spec, volume_root: str) -> None:
    for m in spec.mounts:
        if m.type == "bind":
            assert m.source is not None
            if not os.path.exists(m.source):
                raise SpecError(f"{m.source} does not exist", field=f"mounts[{m.target!r}].source")
        elif m.type == "volume":
            assert m.source is not None
            os.makedirs(os.path.join(volume_root, m.source, "_data"), mode=0o755, exist_ok=True)


# ---------------------------------------------------------------------------------------------
# user names -> ids, read from the container's /etc/passwd and /etc/group


def _read_in_root(rootfs: str, path: str, limit: int = 4 << 20) -> str | None:
    """A file of the container, opened below ``rootfs`` so that symlinks in a hostile image
    cannot make us read a host file (openat2 RESOLVE_IN_ROOT)."""
    from .linux._paths import open_in_root
    from .linux._syscalls import LinuxSyscalls

    sys = LinuxSyscalls()
    try:
        root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fd = open_in_root(sys, root_fd, path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except (KernelError, OSError):
        return None
    finally:
        os.close(root_fd)
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit).decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def _table(text: str | None) -> list[list[str]]:
    rows = []
    for line in (text or "").splitlines():
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def passwd_resolver(rootfs: str) -> Callable[[str], tuple[int, int, tuple[int, ...], str | None]]:
    """Resolve "user", "uid", "user:group", "uid:gid" against the rootfs, like Docker does:
    numeric ids need no entry; the primary group comes from passwd; supplementary groups are
    the groups listing the user."""

    def resolve(text: str) -> tuple[int, int, tuple[int, ...], str | None]:
        name, _, group = text.partition(":")
        passwd = _table(_read_in_root(rootfs, "/etc/passwd"))
        entry = next((r for r in passwd if len(r) >= 7 and (r[0] == name or (name.isdigit() and r[2] == name))), None)
        if entry is None:
            if not name.isdigit():
                raise SpecError(f"user {name!r} is not in the container's /etc/passwd", field="user")
            uid, gid, home, username = int(name), 0, None, None
        else:
            uid, gid, home, username = int(entry[2]), int(entry[3]), entry[5] or None, entry[0]
        groups = _table(_read_in_root(rootfs, "/etc/group"))
        if group:
            match = next((g for g in groups if len(g) >= 3 and (g[0] == group or (group.isdigit() and g[2] == group))),
                         None)
            if match is not None:
                gid = int(match[2])
            elif group.isdigit():
                gid = int(group)
            else:
                raise SpecError(f"group {group!r} is not in the container's /etc/group", field="user")
        extra: tuple[int, ...] = ()
        if username is not None and not group:
            extra = tuple(
                sorted({int(g[2]) for g in groups if len(g) >= 4 and g[2].isdigit() and username in g[3].split(",")}
                       - {gid})
            )
        return uid, gid, extra, home

    return resolve


def load_image_defaults(spec: Spec, store: ImageStore | None = None) -> ImageDefaults:
    """The image's defaults for ``spec`` (empty for rootfs/host specs); pulls nothing."""
    if spec.image is None:
        return ImageDefaults()
    try:
        _, img = resolve_image(spec, store, pull=False)
    except ImageError:
        return ImageDefaults()
    return image_defaults(img)


__all__ = [
    "Bundle",
    "LibPaths",
    "default_image_root",
    "default_lib_root",
    "default_volume_root",
    "load_image_defaults",
    "new_container_id",
    "passwd_resolver",
    "prepare_bundle",
    "remove_bundle",
    "resolve_image",
]
