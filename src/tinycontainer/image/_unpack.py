"""Apply a layer tar to a directory without ever touching anything outside it.

``tarfile.extractall`` is not used: its default filter (before 3.14) escapes the target with
``..``, absolute paths and symlinks, the ``tar`` filter turned an absolute hardlink into a link to
a host file on 3.11.7, and the ``data`` filter breaks real images (absolute symlinks, setuid bits,
devices) -- research/security.md section 5 and CVE-2014-6407/9356 in docker. Instead:

* member names are cleaned lexically; an absolute name is taken inside the root, one that climbs
  out with ``..`` is refused;
* the parent directory of every entry is opened with ``openat2(RESOLVE_IN_ROOT)``, so absolute and
  ``..`` symlinks met on the way are resolved as if the layer root were ``/`` (as in a chroot);
* the last component is never followed: it is removed first (``unlink``/fd-based ``rmtree``) and
  created fresh with ``O_CREAT|O_EXCL|O_NOFOLLOW`` / ``mkdirat`` / ``symlinkat`` / ``linkat``
  relative to that parent fd; metadata is set through the new fd or with ``AT_SYMLINK_NOFOLLOW``;
* a hardlink's target is resolved inside the root and must already exist there;
* devices are created only by root; owners are numeric (no NSS lookups, CVE-2019-14271); setuid
  bits survive because the mode is set after ``fchown`` (which clears them);
* the sum of member sizes is capped, which also stops sparse-file bombs before a byte is written.

Two modes: ``overlay`` turns whiteouts into what overlayfs reads (a 0/0 character device for
``.wh.NAME``, ``trusted.overlay.opaque=y`` for ``.wh..wh..opq``) so that each layer lives in its
own lower directory; ``flatten`` applies them to the tree below (image-spec layer.md), with the
opaque marker acting as if it came first in the tar and re-declared subdirectories pruned.
"""

from __future__ import annotations

import base64
import errno
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import urllib.parse
import zlib
from dataclasses import dataclass, field
from typing import IO, Literal, Protocol, cast

from .._errors import KernelError, UnpackError, UnsupportedError
from ..linux import _consts as C
from ..linux import _libc

Mode = Literal["overlay", "flatten"]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
DEFAULT_MAX_BYTES = 32 << 30
_CHUNK = 1 << 20
_SPARSE_CHUNK = 64 << 10
_RESOLVE = C.RESOLVE_IN_ROOT | C.RESOLVE_NO_MAGICLINKS
# overlayfs metadata must come from us, never from an image: redirect/metacopy/origin in a layer
# would change what the merged tree shows.
_FORBIDDEN_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class UnpackOptions:
    max_bytes: int = DEFAULT_MAX_BYTES
    """Refuse a layer whose files add up to more (decompression and sparse-file bombs)."""
    max_entries: int = 5_000_000
    devices: bool | None = None
    """Create device nodes; None means only when running as root (else they are skipped)."""
    chown: bool | None = None
    """Apply numeric owners; None means only when running as root."""


@dataclass
class UnpackResult:
    entries: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _DirMeta:
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    xattrs: tuple[tuple[str, bytes], ...]


def clean_path(name: str, what: str = "entry") -> str:
    """The in-root relative form of a member name ("" is the root); refuse names that climb out."""
    if "\x00" in name:
        raise UnpackError(f"layer {what} {name!r} contains a NUL byte")
    stripped = name.lstrip("/")
    norm = posixpath.normpath(stripped) if stripped else "."
    if norm == ".." or norm.startswith("../"):
        raise UnpackError(f"layer {what} {name!r} points outside the layer root")
    return "" if norm == "." else norm


def pax_xattrs(member: tarfile.TarInfo) -> tuple[tuple[str, bytes], ...]:
    """Extended attributes recorded as PAX ``SCHILY.xattr.*`` (GNU tar, docker) or ``LIBARCHIVE.xattr.*``."""
    found: list[tuple[str, bytes]] = []
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            # tarfile decoded the value as UTF-8 with surrogateescape: undo it to get the raw bytes.
            found.append((key[len("SCHILY.xattr.") :], value.encode("utf-8", "surrogateescape")))
        elif key.startswith("LIBARCHIVE.xattr."):
            name = urllib.parse.unquote(key[len("LIBARCHIVE.xattr.") :])
            try:
                found.append((name, base64.b64decode(value + "=" * (-len(value) % 4))))
            except ValueError:
                continue
    return tuple((n, v) for n, v in found if n and not n.startswith(_FORBIDDEN_XATTR_PREFIXES))


def apply_layer(
    stream: Readable,
    dest: str,
    *,
    mode: Mode = "overlay",
    options: UnpackOptions | None = None,
) -> UnpackResult:
    """Apply the uncompressed tar ``stream`` to the existing directory ``dest``."""
    applier = _Applier(dest, mode, options or UnpackOptions())
    try:
        try:
            archive = tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|")  # noqa: SIM115 (closed below)
        except tarfile.ReadError as exc:
            if _is_empty(exc):
                return applier.result
            raise
        with archive:
            applier.run(archive)
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise UnpackError(f"layer is not a valid tar archive: {exc}") from None
    except OSError as exc:
        if isinstance(exc, KernelError):
            raise UnpackError(f"unpacking layer: {exc}") from None
        raise UnpackError(f"reading layer: {exc}") from None
    except _decompression_errors() as exc:
        raise UnpackError(f"layer cannot be decompressed: {exc}") from None
    finally:
        applier.close()
    return applier.result


def _is_empty(exc: tarfile.ReadError) -> bool:
    return "empty file" in str(exc)


def _decompression_errors() -> tuple[type[Exception], ...]:
    try:
        import zstandard
    except ImportError:
        return ()
    return (zstandard.ZstdError,)


class _Applier:
    def __init__(self, dest: str, mode: Mode, options: UnpackOptions) -> None:
        if mode not in ("overlay", "flatten"):
            raise ValueError(f"unknown unpack mode {mode!r}")
        self.mode = mode
        self.options = options
        privileged = os.geteuid() == 0
        self.devices = privileged if options.devices is None else options.devices
        self.chown = privileged if options.chown is None else options.chown
        self.budget = options.max_bytes
        self.result = UnpackResult()
        # Paths this layer declared, with their ancestors: whiteouts and opaque markers never hide
        # entries of their own layer (flatten mode only).
        self.seen: set[str] = set()
        self.dirs: dict[str, _DirMeta] = {}
        self.root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    # -- resolution inside the root ----------------------------------------------------------

    def _resolve(self, path: str, flags: int) -> int:
        if path == "":
            return os.dup(self.root_fd)
        for _ in range(16):
            try:
                return _libc.openat2(self.root_fd, path, flags | os.O_CLOEXEC, 0, _RESOLVE)
            except KernelError as exc:
                if exc.errno == errno.EAGAIN:  # a rename raced the ".." check; the kernel asks to retry
                    continue
                if exc.errno == errno.ENOSYS:
                    raise UnsupportedError("unpacking layers safely needs openat2(2), Linux 5.6 or newer") from None
                raise
        raise UnpackError(f"{path}: openat2 kept failing with EAGAIN")

    def _open_dir(self, rel: str, create: bool) -> int | None:
        """An O_PATH fd for directory ``rel`` resolved in the root; missing components are created."""
        try:
            return self._resolve(rel, os.O_PATH | os.O_DIRECTORY)
        except KernelError as exc:
            if exc.errno != errno.ENOENT:
                raise UnpackError(f"{rel}: cannot use it as a directory: {os.strerror(exc.errno or 0)}") from None
            if not create:
                return None
        fd = os.dup(self.root_fd)
        try:
            done: list[str] = []
            for component in rel.split("/"):
                done.append(component)
                joined = "/".join(done)
                try:
                    next_fd = self._resolve(joined, os.O_PATH | os.O_DIRECTORY)
                except KernelError as exc:
                    if exc.errno != errno.ENOENT:
                        reason = os.strerror(exc.errno or 0)
                        raise UnpackError(f"{joined}: cannot use it as a directory: {reason}") from None
                    try:
                        os.mkdir(component, 0o755, dir_fd=fd)
                    except FileExistsError:
                        raise UnpackError(
                            f"{joined}: is a dangling symlink, refusing to create entries through it"
                        ) from None
                    next_fd = os.open(component, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                os.close(fd)
                fd = next_fd
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _parent(self, path: str, create: bool = True) -> tuple[int | None, str]:
        parent, name = posixpath.split(path)
        return self._open_dir(parent, create), name

    @staticmethod
    def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    @staticmethod
    def _remove(dir_fd: int, name: str, st: os.stat_result) -> None:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=dir_fd)  # fd-based, never follows symlinks (3.11+)
        else:
            os.unlink(name, dir_fd=dir_fd)

    def _clear(self, dir_fd: int, name: str) -> None:
        st = self._lstat(dir_fd, name)
        if st is not None:
            self._remove(dir_fd, name, st)

    def _mark_seen(self, path: str) -> None:
        while path and path not in self.seen:
            self.seen.add(path)
            path = posixpath.dirname(path)

    # -- entries ------------------------------------------------------------------------------

    def run(self, archive: tarfile.TarFile) -> None:
        for member in archive:
            self.result.entries += 1
            if self.result.entries > self.options.max_entries:
                raise UnpackError(f"layer has more than {self.options.max_entries} entries")
            path = clean_path(member.name)
            try:
                self._entry(archive, member, path)
            except OSError as exc:
                raise UnpackError(f"layer entry {member.name!r}: {exc}") from None
        self._finish_dirs()

    def _entry(self, archive: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
        base = posixpath.basename(path)
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(path, base)
            return
        if path == "":
            if member.isdir():
                self.dirs[""] = self._dir_meta(member)
            return
        if self.mode == "flatten":
            self._mark_seen(path)
        if member.isdir():
            self._directory(path, member)
        elif member.isreg():
            self._regular(archive, path, member)
        elif member.issym():
            self._symlink(path, member)
        elif member.islnk():
            self._hardlink(path, member)
        elif member.ischr() or member.isblk() or member.isfifo():
            self._special(path, member)
        else:
            self.result.skipped.append(path)

    def _whiteout(self, path: str, base: str) -> None:
        parent = posixpath.dirname(path)
        if base == OPAQUE_MARKER:
            if self.mode == "overlay":
                dir_fd = self._open_dir(parent, create=True)
                assert dir_fd is not None
                os.close(dir_fd)
                self._set_opaque(parent)
            else:
                self._mark_seen(parent)
                self._prune(parent)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not part of the tree
        name = base[len(WHITEOUT_PREFIX) :]
        if name in ("", ".", "..") or "/" in name:
            # ".wh..." would otherwise remove ".." relative to the parent fd: outside the root.
            raise UnpackError(f"layer whiteout {path!r} names no valid entry")
        target = posixpath.join(parent, name)
        if self.mode == "overlay":
            dir_fd = self._open_dir(parent, create=True)
            assert dir_fd is not None
            try:
                existing = self._lstat(dir_fd, name)
                if existing is not None:
                    # The layer itself has NAME: its own entry wins; a directory of its own
                    # still hides the lower one's children.
                    if stat.S_ISDIR(existing.st_mode):
                        self._set_opaque(target)
                    return
                try:
                    os.mknod(name, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=dir_fd)
                except PermissionError:
                    raise UnpackError(
                        f"{path}: creating an overlay whiteout (0/0 character device) needs CAP_MKNOD"
                    ) from None
            finally:
                os.close(dir_fd)
            return
        self._mark_seen(parent)
        if target in self.seen:
            return
        dir_fd = self._open_dir(parent, create=False)
        if dir_fd is None:
            return
        try:
            self._clear(dir_fd, name)
        finally:
            os.close(dir_fd)

    def _set_opaque(self, rel: str) -> None:
        fd = self._resolve(rel, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            os.setxattr(fd, OPAQUE_XATTR, b"y")
        except PermissionError:
            raise UnpackError(f"{rel or '/'}: setting {OPAQUE_XATTR} needs CAP_SYS_ADMIN") from None
        finally:
            os.close(fd)

    def _prune(self, rel: str) -> None:
        """Remove what lower layers left in ``rel``, keeping (and recursing into) this layer's entries."""
        try:
            fd = self._resolve(rel, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except KernelError:
            return
        try:
            for name in os.listdir(fd):
                child = posixpath.join(rel, name)
                st = self._lstat(fd, name)
                if st is None:
                    continue
                if child in self.seen:
                    if stat.S_ISDIR(st.st_mode):
                        self._prune(child)
                    continue
                self._remove(fd, name, st)
        finally:
            os.close(fd)

    def _directory(self, path: str, member: tarfile.TarInfo) -> None:
        dir_fd, name = self._parent(path)
        assert dir_fd is not None
        try:
            st = self._lstat(dir_fd, name)
            if st is None or not stat.S_ISDIR(st.st_mode):
                replaced_whiteout = (
                    st is not None and self.mode == "overlay" and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
                )
                if st is not None:
                    self._remove(dir_fd, name, st)
                os.mkdir(name, 0o700, dir_fd=dir_fd)
                if replaced_whiteout:
                    self._set_opaque(path)
        finally:
            os.close(dir_fd)
        self.dirs[path] = self._dir_meta(member)

    def _take_budget(self, member: tarfile.TarInfo, path: str) -> None:
        if member.size > self.budget:
            raise UnpackError(
                f"layer entry {path!r} ({member.size} bytes) exceeds the unpacked size limit of "
                f"{self.options.max_bytes} bytes (a decompression or sparse-file bomb?)"
            )
        self.budget -= member.size
        self.result.bytes += member.size

    def _regular(self, archive: tarfile.TarFile, path: str, member: tarfile.TarInfo) -> None:
        self._take_budget(member, path)
        dir_fd, name = self._parent(path)
        assert dir_fd is not None
        try:
            self._clear(dir_fd, name)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        try:
            source = archive.extractfile(member)
            if source is not None:
                _copy(source, fd, member.size, sparse=member.issparse())
            if self.chown:
                os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, member.mode & 0o7777)
            for key, value in pax_xattrs(member):
                _setxattr(fd, key, value)
            os.utime(fd, ns=(_mtime_ns(member), _mtime_ns(member)))
        finally:
            os.close(fd)

    def _symlink(self, path: str, member: tarfile.TarInfo) -> None:
        dir_fd, name = self._parent(path)
        assert dir_fd is not None
        try:
            self._clear(dir_fd, name)
            os.symlink(member.linkname, name, dir_fd=dir_fd)
            self._finish_nofollow(dir_fd, name, member)
        finally:
            os.close(dir_fd)

    def _hardlink(self, path: str, member: tarfile.TarInfo) -> None:
        target = clean_path(member.linkname, "hardlink target")
        if target == path:
            return
        src_fd, src_name = self._parent(target, create=False)
        if src_fd is None or src_name == "":
            if src_fd is not None:
                os.close(src_fd)
            raise UnpackError(f"hardlink {member.name!r} -> {member.linkname!r}: target is not in the layer")
        try:
            st = self._lstat(src_fd, src_name)
            if st is None:
                raise UnpackError(f"hardlink {member.name!r} -> {member.linkname!r}: target is not in the layer")
            if stat.S_ISDIR(st.st_mode):
                raise UnpackError(f"hardlink {member.name!r} -> {member.linkname!r}: target is a directory")
            dir_fd, name = self._parent(path)
            assert dir_fd is not None
            try:
                self._clear(dir_fd, name)
                os.link(src_name, name, src_dir_fd=src_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            finally:
                os.close(dir_fd)
        finally:
            os.close(src_fd)

    def _special(self, path: str, member: tarfile.TarInfo) -> None:
        if not member.isfifo() and not self.devices:
            self.result.skipped.append(path)
            return
        dir_fd, name = self._parent(path)
        assert dir_fd is not None
        try:
            self._clear(dir_fd, name)
            if member.isfifo():
                os.mkfifo(name, 0o600, dir_fd=dir_fd)
            else:
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                os.mknod(name, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=dir_fd)
            if self.chown:
                os.chown(name, member.uid, member.gid, dir_fd=dir_fd, follow_symlinks=False)
            # fchmodat cannot refuse to follow on Linux; NAME was created just above by us.
            os.chmod(name, member.mode & 0o7777, dir_fd=dir_fd)
            os.utime(name, ns=(_mtime_ns(member), _mtime_ns(member)), dir_fd=dir_fd, follow_symlinks=False)
        finally:
            os.close(dir_fd)

    def _finish_nofollow(self, dir_fd: int, name: str, member: tarfile.TarInfo) -> None:
        if self.chown:
            os.chown(name, member.uid, member.gid, dir_fd=dir_fd, follow_symlinks=False)
        xattrs = pax_xattrs(member)
        if xattrs:
            # No *at() variant of lsetxattr: go through the parent fd's /proc path, still not following NAME.
            proc_path = f"/proc/self/fd/{dir_fd}/{name}"
            for key, value in xattrs:
                _setxattr(proc_path, key, value, follow_symlinks=False)
        os.utime(name, ns=(_mtime_ns(member), _mtime_ns(member)), dir_fd=dir_fd, follow_symlinks=False)

    def _dir_meta(self, member: tarfile.TarInfo) -> _DirMeta:
        return _DirMeta(member.mode & 0o7777, member.uid, member.gid, _mtime_ns(member), pax_xattrs(member))

    def _finish_dirs(self) -> None:
        # Deferred so that a read-only directory mode does not block its own children and the
        # mtime is not bumped again by entries created inside it.
        for path, meta in self.dirs.items():
            try:
                fd = self._resolve(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            except KernelError:
                continue  # replaced by a non-directory later in the layer
            try:
                if self.chown:
                    os.fchown(fd, meta.uid, meta.gid)
                os.fchmod(fd, meta.mode)
                for key, value in meta.xattrs:
                    _setxattr(fd, key, value)
                os.utime(fd, ns=(meta.mtime_ns, meta.mtime_ns))
            finally:
                os.close(fd)
        self.dirs.clear()


def _mtime_ns(member: tarfile.TarInfo) -> int:
    return int(member.mtime * 1_000_000_000)


def _setxattr(target: int | str, key: str, value: bytes, *, follow_symlinks: bool = True) -> None:
    try:
        os.setxattr(target, key, value, follow_symlinks=follow_symlinks)
    except OSError as exc:
        # Image xattrs are best effort, like docker: security.selinux without SELinux, user.* on
        # a symlink or trusted.* without CAP_SYS_ADMIN must not fail the pull.
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES, errno.EINVAL):
            raise


def _copy(source: IO[bytes], fd: int, size: int, *, sparse: bool) -> None:
    written = 0
    # Sparse members are copied in smaller pieces so that holes inside a piece are not filled.
    step = _SPARSE_CHUNK if sparse else _CHUNK
    zero = bytes(step)
    while written < size:
        chunk = source.read(min(step, size - written))
        if not chunk:
            raise UnpackError(f"layer ended inside a file ({written} of {size} bytes)")
        if sparse and chunk == zero[: len(chunk)]:
            os.lseek(fd, len(chunk), os.SEEK_CUR)
        else:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        written += len(chunk)
    if sparse:
        os.ftruncate(fd, size)
