"""The local image store: pull, list, remove, prune, and layers ready for overlayfs.

Layout under ``root``::

    blobs/sha256/<hex>           manifests, indexes, configs and compressed layers (verified)
    layers/sha256/<diff hex>/    one layer: diff/ (overlay format; only with overlay_layers), size, blob
    refs.json                    {"refs": {"docker.io/library/alpine:latest": {"chain": [...]}}}
    tmp/                         in-flight downloads and unpacks (same filesystem, renamed into place)
    locks/                       one flock per layer, so concurrent pulls unpack a layer once
    store.lock                   pulls hold it shared, prune holds it exclusive
    refs.lock                    guards read-modify-write of refs.json

Layers are keyed by their diff_id (the digest of the uncompressed tar), so identical layers of
different images, or the same layer compressed differently, are unpacked and stored once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, cast

from .._errors import DigestMismatch, ImageError
from ..linux._syscalls import LinuxSyscalls, Syscalls
from . import _media as M
from ._auth import Credentials, load_credentials
from ._compression import HashingReader, open_decompressed
from ._config import ImageConfig, parse_image_config
from ._content import ContentStore, check_digest, flocked, write_atomic
from ._http import HttpClient
from ._overlay import LOWER_LINKS, mount_overlay, remove_tree, unmount
from ._platform import host_platform, parse_platform, select_manifest
from ._reference import Reference, parse_reference
from ._registry import Manifest, RegistryClient, TokenCache
from ._unpack import UnpackOptions, apply_layer

DEFAULT_ROOT = "/var/lib/tcontainer/images"
_MAX_INDEX_DEPTH = 4

Phase = Literal["waiting", "exists", "downloading", "unpacking", "done"]

# refs.json key of an image loaded from an archive that named no reference (docker's <none>).
UNTAGGED_PREFIX = "<none>@"


class ImageNotFound(ImageError):
    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"image {what!r} not found in the local store")


@dataclass(frozen=True)
class ProgressEvent:
    """Progress of one layer; ``layer`` is its compressed blob digest, sizes are in bytes.

    Every layer to fetch first gets ``waiting`` (so a renderer knows the total up front), then
    ``exists`` if it is already unpacked, else ``downloading`` (done = bytes received),
    ``unpacking`` (done = compressed bytes consumed) and ``done``.
    """

    layer: str
    phase: Phase
    done: int
    total: int


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class Image:
    """A pulled image. ``id`` is its config digest; ``digest`` is what its reference resolved to
    (an index for multi-platform images); ``manifest_digest`` is the platform's own manifest."""

    id: str
    digest: str
    manifest_digest: str
    references: tuple[str, ...]
    config: ImageConfig
    layers: tuple[str, ...]
    """diff_ids, lowest layer first"""
    layer_blobs: tuple[str, ...]
    """compressed layer digests, in the same order"""
    size: int
    """unpacked size in bytes"""
    created: str | None = None


@dataclass(frozen=True)
class _LayerJob:
    blob: str
    size: int
    diff_id: str


class ImageStore:
    """Images on disk under ``root``; safe for concurrent use by several threads and processes."""

    def __init__(
        self,
        root: str = DEFAULT_ROOT,
        *,
        http: HttpClient | None = None,
        unpack_options: UnpackOptions | None = None,
        max_parallel: int = 3,
        syscalls: Syscalls | None = None,
        credential_files: list[str] | None = None,
        overlay_layers: bool | None = None,
    ) -> None:
        """``overlay_layers`` (default: only as root) unpacks each layer into diff/ for
        :meth:`mount_rootfs`. Without it a layer is only checked against its diff_id and its
        blob kept for :meth:`flatten`: an ordinary user cannot create overlay whiteouts (0/0
        character devices need CAP_MKNOD, mknod(2)) nor set trusted.overlay.opaque."""
        self.root = os.path.abspath(root)
        self.overlay_layers = os.geteuid() == 0 if overlay_layers is None else overlay_layers
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        self.content = ContentStore(self.root)
        self.layers_dir = os.path.join(self.root, "layers", "sha256")
        self.locks_dir = os.path.join(self.root, "locks")
        for path in (self.layers_dir, self.locks_dir):
            os.makedirs(path, exist_ok=True)
        self.http = http or HttpClient()
        self.unpack_options = unpack_options or UnpackOptions()
        self.max_parallel = max(1, max_parallel)
        self._syscalls = syscalls
        self._credential_files = credential_files
        self._tokens = TokenCache()

    @property
    def syscalls(self) -> Syscalls:
        if self._syscalls is None:
            self._syscalls = LinuxSyscalls()
        return self._syscalls

    # -- pulling --------------------------------------------------------------------------------

    def pull(
        self,
        ref: Reference | str,
        *,
        platform: str | None = None,
        insecure: bool | None = None,
        progress: ProgressCallback | None = None,
        auth: Credentials | None = None,
    ) -> Image:
        """Fetch ``ref`` for ``platform`` (default: this host), verify and unpack it, and tag it."""
        reference = ref if isinstance(ref, Reference) else parse_reference(ref)
        wanted = parse_platform(platform) if platform else host_platform()
        credentials = auth or load_credentials(reference.domain, reference.repository, self._credential_files)
        client = RegistryClient(reference, self.http, insecure=insecure, credentials=credentials, tokens=self._tokens)
        report = _serialized(progress)
        with self._store_lock(shared=True):
            top = client.get_manifest(reference.object, reference.digest)
            self.content.put(top.digest, top.raw)
            chain = [top.digest]
            manifest = top
            while manifest.is_index:
                if len(chain) > _MAX_INDEX_DEPTH:
                    raise ImageError(f"{reference}: indexes nested more than {_MAX_INDEX_DEPTH} deep")
                entries = manifest.doc.get("manifests")
                if not isinstance(entries, list):
                    raise ImageError(f"{reference}: index without a manifests list")
                entry = select_manifest([e for e in entries if isinstance(e, Mapping)], wanted)
                digest = check_digest(entry.get("digest"), "index entry")
                manifest = client.get_manifest(digest, digest)
                self.content.put(manifest.digest, manifest.raw)
                chain.append(manifest.digest)
            jobs = self._plan(client, reference, manifest)
            self._fetch_layers(client, jobs, report)
            self._set_refs({str(reference): chain})
        return self._load(chain, (str(reference),))

    def _plan(self, client: RegistryClient | None, reference: Reference | str, manifest: Manifest) -> list[_LayerJob]:
        doc = manifest.doc
        config = doc.get("config")
        if not isinstance(config, Mapping):
            raise ImageError(f"{reference}: manifest has no config descriptor")
        config_type = config.get("mediaType")
        if config_type not in M.CONFIG_TYPES:
            raise ImageError(f"{reference}: not a container image (config media type {config_type!r})")
        config_digest = check_digest(config.get("digest"), "config")
        config_size = _descriptor_size(config)
        if self.content.has(config_digest):
            config_raw = self.content.read(config_digest)
        elif client is not None:
            config_raw = client.read_blob(config_digest, config_size, M.MAX_CONFIG_BYTES)
        else:
            raise ImageError(f"{reference}: config blob {config_digest} is missing")
        parsed = parse_image_config(config_raw)
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ImageError(f"{reference}: manifest has no layers list")
        if len(layers) != len(parsed.diff_ids):
            raise ImageError(
                f"{reference}: manifest lists {len(layers)} layers but the config has {len(parsed.diff_ids)} diff_ids"
            )
        jobs: list[_LayerJob] = []
        for desc, diff_id in zip(layers, parsed.diff_ids, strict=True):
            if not isinstance(desc, Mapping):
                raise ImageError(f"{reference}: bad layer descriptor")
            media_type = desc.get("mediaType")
            digest = check_digest(desc.get("digest"), "layer")
            if media_type in M.FOREIGN_LAYER_TYPES:
                raise ImageError(
                    f"{reference}: layer {digest} is a foreign (non-distributable) layer, as used by Windows "
                    "base images; tinycontainer does not fetch those"
                )
            if media_type not in M.LAYER_TYPES:
                raise ImageError(f"{reference}: unsupported layer media type {media_type!r}")
            size = _descriptor_size(desc)
            # A compressed layer is never much larger than its content: refuse to fill the disk first.
            limit = self.unpack_options.max_bytes + self.unpack_options.max_bytes // 100 + (1 << 20)
            if size > limit:
                raise ImageError(f"{reference}: layer {digest} is {size} bytes, over the limit of {limit}")
            jobs.append(_LayerJob(digest, size, diff_id))
        # The config goes in last, so an image whose config exists is one whose plan was valid.
        self.content.put(config_digest, config_raw)
        return jobs

    def _fetch_layers(self, client: RegistryClient | None, jobs: list[_LayerJob], report: ProgressCallback) -> None:
        unique = list({job.diff_id: job for job in jobs}.values())
        for job in unique:
            report(ProgressEvent(job.blob, "waiting", 0, job.size))
        if len(unique) <= 1 or self.max_parallel == 1:
            for job in unique:
                self._ensure_layer(client, job, report)
            return
        with concurrent.futures.ThreadPoolExecutor(self.max_parallel, thread_name_prefix="tc-pull") as pool:
            futures = [pool.submit(self._ensure_layer, client, job, report) for job in unique]
            first_error: BaseException | None = None
            for future in futures:
                try:
                    future.result()
                except BaseException as exc:  # re-raised below once the other workers have stopped
                    if first_error is None:
                        first_error = exc
                        for other in futures:
                            other.cancel()
        if first_error is not None:
            raise first_error

    def layer_path(self, diff_id: str) -> str:
        return os.path.join(self.layers_dir, check_digest(diff_id, "layer diff_id")[len("sha256:") :])

    def _ensure_layer(self, client: RegistryClient | None, job: _LayerJob, report: ProgressCallback) -> None:
        final = self.layer_path(job.diff_id)
        if os.path.isdir(final):
            report(ProgressEvent(job.blob, "exists", job.size, job.size))
            return
        with flocked(os.path.join(self.locks_dir, job.diff_id[len("sha256:") :] + ".lock")):
            if os.path.isdir(final):
                report(ProgressEvent(job.blob, "exists", job.size, job.size))
                return
            if not self.content.has(job.blob):
                if client is None:
                    raise ImageError(f"layer blob {job.blob} is missing from the image store")
                report(ProgressEvent(job.blob, "downloading", 0, job.size))
                with self.content.writer(job.blob) as out:
                    client.download_blob(
                        job.blob,
                        job.size,
                        out,
                        lambda done: report(ProgressEvent(job.blob, "downloading", done, job.size)),
                    )
            report(ProgressEvent(job.blob, "unpacking", 0, job.size))
            self._unpack(job, final, lambda done: report(ProgressEvent(job.blob, "unpacking", done, job.size)))
            report(ProgressEvent(job.blob, "done", job.size, job.size))

    def _unpack(self, job: _LayerJob, final: str, progress: Callable[[int], None] | None = None) -> None:
        work = tempfile.mkdtemp(dir=self.content.tmp, prefix="layer-")
        try:
            if self.overlay_layers:
                diff = os.path.join(work, "diff")
                os.mkdir(diff, 0o755)
                unpacked = self._apply_blob(job.blob, job.diff_id, diff, "overlay", progress)
            else:
                unpacked = self._check_blob(job.blob, job.diff_id, progress)
            write_atomic(os.path.join(work, "size"), str(unpacked).encode())
            # Another image may share this diff_id with a differently compressed blob: remember
            # which blob this layer came from so flatten and prune can find it.
            write_atomic(os.path.join(work, "blob"), job.blob.encode())
            os.chmod(work, 0o755)
            os.rename(work, final)
        except OSError as exc:
            remove_tree(work)
            if os.path.isdir(final):  # another process won the race with identical content
                return
            raise ImageError(f"cannot store layer {job.diff_id}: {exc}") from None
        except BaseException:
            remove_tree(work)
            raise

    def _apply_blob(
        self,
        blob: str,
        diff_id: str,
        dest: str,
        mode: Literal["overlay", "flatten"],
        progress: Callable[[int], None] | None = None,
    ) -> int:
        with open(self.content.path(blob), "rb") as raw:
            source: BinaryIO = raw if progress is None else cast(BinaryIO, _CountingFile(raw, progress))
            reader = HashingReader(open_decompressed(source))
            result = apply_layer(reader, dest, mode=mode, options=self.unpack_options)
            reader.drain()
        if reader.digest() != diff_id:
            raise DigestMismatch(diff_id, reader.digest(), "layer diff_id")
        return result.bytes

    def _check_blob(self, blob: str, diff_id: str, progress: Callable[[int], None] | None = None) -> int:
        """Verify the blob's diff_id without unpacking it; return the tar's size.

        Done at pull time so that a lying config fails the pull, not every later run."""
        with open(self.content.path(blob), "rb") as raw:
            source: BinaryIO = raw if progress is None else cast(BinaryIO, _CountingFile(raw, progress))
            reader = HashingReader(open_decompressed(source))
            reader.drain()
        if reader.digest() != diff_id:
            raise DigestMismatch(diff_id, reader.digest(), "layer diff_id")
        # The tar's size (headers included) stands in for the unpacked size that listings show.
        return reader.count

    def add_local(
        self, chain: list[str], references: Sequence[str], *, progress: ProgressCallback | None = None
    ) -> Image:
        """Register an image whose blobs are already verified in the content store (``load``).

        ``chain`` is the top digest first and the platform manifest last, as recorded by pulls;
        the layers are unpacked like pulled ones and ``references`` (may be empty: an untagged
        image) point at it. The caller holds :meth:`locked` so that a prune cannot remove the
        blobs between their write and this call.
        """
        manifest_digest = check_digest(chain[-1], "manifest")
        doc = _json(self.content.read(manifest_digest), manifest_digest)
        media_type = doc.get("mediaType")
        if "manifests" in doc or media_type in M.INDEX_TYPES:
            raise ImageError(f"{manifest_digest}: expected an image manifest, found an index")
        manifest = Manifest(b"", manifest_digest, str(media_type or M.OCI_MANIFEST), doc)
        jobs = self._plan(None, references[0] if references else manifest_digest, manifest)
        self._fetch_layers(None, jobs, _serialized(progress))
        keys = [str(parse_reference(r)) for r in references] or [UNTAGGED_PREFIX + manifest_digest]
        with flocked(os.path.join(self.root, "refs.lock")):
            refs = self._read_refs()
            if references:
                refs.pop(UNTAGGED_PREFIX + manifest_digest, None)
            refs.update({key: list(chain) for key in keys})
            self._write_refs(refs)
        return self._load(list(chain), tuple(keys))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's shared lock: blobs written meanwhile survive a concurrent prune."""
        with self._store_lock(shared=True):
            yield

    # -- the refs index -------------------------------------------------------------------------

    def _read_refs(self) -> dict[str, list[str]]:
        try:
            with open(os.path.join(self.root, "refs.json"), "rb") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ImageError(f"image store index {self.root}/refs.json is corrupt: {exc}") from None
        refs = doc.get("refs", {}) if isinstance(doc, dict) else {}
        out: dict[str, list[str]] = {}
        for key, value in refs.items():
            chain = value.get("chain") if isinstance(value, dict) else None
            if isinstance(chain, list) and chain and all(isinstance(d, str) for d in chain):
                out[str(key)] = [str(d) for d in chain]
        return out

    def _write_refs(self, refs: Mapping[str, list[str]]) -> None:
        doc = {"refs": {key: {"chain": chain} for key, chain in sorted(refs.items())}}
        write_atomic(os.path.join(self.root, "refs.json"), json.dumps(doc, indent=1).encode(), self.content.tmp)

    def _set_refs(self, updates: Mapping[str, list[str]]) -> None:
        with flocked(os.path.join(self.root, "refs.lock")):
            refs = self._read_refs()
            refs.update(updates)
            self._write_refs(refs)

    @contextlib.contextmanager
    def _store_lock(self, *, shared: bool) -> Iterator[None]:
        with flocked(os.path.join(self.root, "store.lock"), shared=shared):
            yield

    # -- queries ----------------------------------------------------------------------------------

    def _load(self, chain: list[str], references: tuple[str, ...]) -> Image:
        manifest = _json(self.content.read(chain[-1]), chain[-1])
        config_desc = manifest.get("config") or {}
        config_digest = check_digest(config_desc.get("digest"), "config")
        parsed = parse_image_config(self.content.read(config_digest))
        blobs = tuple(check_digest(d.get("digest"), "layer") for d in manifest.get("layers", []))
        size = 0
        for diff_id, desc in zip(parsed.diff_ids, manifest.get("layers", []), strict=False):
            try:
                with open(os.path.join(self.layer_path(diff_id), "size"), "rb") as fh:
                    size += int(fh.read() or b"0")
            except (OSError, ValueError):
                size += _descriptor_size(desc)
        return Image(
            id=config_digest,
            digest=chain[0],
            manifest_digest=chain[-1],
            references=tuple(sorted(r for r in references if not r.startswith(UNTAGGED_PREFIX))),
            config=parsed.config,
            layers=tuple(parsed.diff_ids),
            layer_blobs=blobs,
            size=size,
            created=parsed.created,
        )

    def _image_id(self, chain: list[str]) -> str:
        manifest = _json(self.content.read(chain[-1]), chain[-1])
        return check_digest((manifest.get("config") or {}).get("digest"), "config")

    def _match(self, what: Reference | str) -> list[str]:
        """Keys of refs.json naming the image ``what`` (a reference, an id or an id prefix)."""
        refs = self._read_refs()
        if isinstance(what, Reference):
            reference: Reference | None = what
        else:
            try:
                reference = parse_reference(what)
            except ImageError:
                reference = None
        if reference is not None:
            key = str(reference)
            if key in refs:
                return [key]
            if reference.digest:
                hits = [k for k, chain in refs.items() if reference.digest in chain and _name_of(k) == reference.name]
                if hits:
                    return hits[:1]
        if isinstance(what, str):
            prefix = what[len("sha256:") :] if what.startswith("sha256:") else what
            if len(prefix) >= 4 and all(c in "0123456789abcdef" for c in prefix):
                ids = {k: self._image_id(chain) for k, chain in refs.items()}
                matched = {i for i in ids.values() if i[len("sha256:") :].startswith(prefix)}
                if len(matched) > 1:
                    raise ImageError(f"image id prefix {what!r} is ambiguous")
                if matched:
                    return [k for k, i in ids.items() if i in matched]
        return []

    def get(self, ref: Reference | str) -> Image:
        """Look an image up by reference, image id or unique id prefix."""
        keys = self._match(ref)
        if not keys:
            raise ImageNotFound(str(ref))
        refs = self._read_refs()
        chain = refs[keys[0]]
        same = [k for k, c in refs.items() if c[-1] == chain[-1]]
        return self._load(chain, tuple(same))

    def remove(self, ref: Reference | str) -> None:
        """Untag: drop the reference (or every reference of an image id); content goes at prune."""
        with flocked(os.path.join(self.root, "refs.lock")):
            keys = self._match(ref)
            if not keys:
                raise ImageNotFound(str(ref))
            refs = self._read_refs()
            for key in keys:
                refs.pop(key, None)
            self._write_refs(refs)

    def prune(self) -> int:
        """Delete blobs and layers that no reference needs, and stray temporaries; return freed bytes.

        The caller must keep a reference to every image a container still runs from.
        """
        with self._store_lock(shared=False), flocked(os.path.join(self.root, "refs.lock")):
            live_blobs: set[str] = set()
            live_layers: set[str] = set()
            for chain in self._read_refs().values():
                live_blobs.update(chain)
                manifest = _json(self.content.read(chain[-1]), chain[-1])
                config_digest = check_digest((manifest.get("config") or {}).get("digest"), "config")
                live_blobs.add(config_digest)
                live_blobs.update(check_digest(d.get("digest"), "layer") for d in manifest.get("layers", []))
                live_layers.update(parse_image_config(self.content.read(config_digest)).diff_ids)
            for diff_id in live_layers:
                recorded = self._recorded_blob(diff_id)
                if recorded is not None:
                    live_blobs.add(recorded)
            freed = 0
            for name in os.listdir(self.content.dir):
                if f"sha256:{name}" not in live_blobs:
                    freed += _remove_counted(os.path.join(self.content.dir, name))
            for name in os.listdir(self.layers_dir):
                if f"sha256:{name}" not in live_layers:
                    freed += _remove_counted(os.path.join(self.layers_dir, name))
            for name in os.listdir(self.content.tmp):
                freed += _remove_counted(os.path.join(self.content.tmp, name))
            for name in os.listdir(self.locks_dir):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.locks_dir, name))
            return freed

    # -- root filesystems -------------------------------------------------------------------------

    def layer_dirs(self, img: Image) -> list[str]:
        """Unpacked layer directories in overlay format, lowest layer first."""
        dirs = []
        for diff_id in img.layers:
            path = os.path.join(self.layer_path(diff_id), "diff")
            if not os.path.isdir(path):
                raise ImageError(
                    f"layer {diff_id} of image {img.id} is not unpacked for overlayfs (pull it again; a store "
                    "filled by an ordinary user keeps only blobs, use flatten)"
                )
            dirs.append(path)
        return dirs

    def mount_rootfs(self, img: Image, container_dir: str) -> str:
        """Mount overlayfs (the image's layers + a private upper) at ``container_dir/rootfs``."""
        lowers = list(reversed(self.layer_dirs(img)))
        if not lowers:
            empty = os.path.join(self.root, "empty")
            os.makedirs(empty, exist_ok=True)
            lowers = [empty]
        upper, work, rootfs = (os.path.join(container_dir, n) for n in ("upper", "work", "rootfs"))
        os.makedirs(upper, mode=0o755, exist_ok=True)
        os.makedirs(work, mode=0o700, exist_ok=True)
        os.makedirs(rootfs, mode=0o755, exist_ok=True)
        mount_overlay(self.syscalls, lowers, upper, work, rootfs)
        return rootfs

    def unmount_rootfs(self, container_dir: str) -> None:
        unmount(self.syscalls, os.path.join(container_dir, "rootfs"))
        for name in ("upper", "work", LOWER_LINKS):
            remove_tree(os.path.join(container_dir, name))

    def flatten(self, img: Image, dest_dir: str) -> None:
        """Apply every layer of ``img`` into ``dest_dir`` (whiteouts applied, not kept)."""
        os.makedirs(dest_dir, exist_ok=True)
        for blob, diff_id in zip(img.layer_blobs, img.layers, strict=True):
            source = blob if self.content.has(blob) else self._recorded_blob(diff_id)
            if source is None or not self.content.has(source):
                raise ImageError(f"layer blob {blob} is missing from the image store (pull the image again)")
            self._apply_blob(source, diff_id, dest_dir, "flatten")

    def _recorded_blob(self, diff_id: str) -> str | None:
        try:
            with open(os.path.join(self.layer_path(diff_id), "blob"), encoding="ascii") as fh:
                return check_digest(fh.read().strip(), "recorded layer blob")
        except (OSError, ValueError, ImageError):
            return None

    def list(self) -> list[Image]:
        groups: dict[str, tuple[list[str], list[str]]] = {}
        for key, chain in self._read_refs().items():
            groups.setdefault(chain[-1], (chain, []))[1].append(key)
        images = [self._load(chain, tuple(keys)) for chain, keys in groups.values()]
        return sorted(images, key=lambda img: img.references)


def _name_of(key: str) -> str | None:
    try:
        return parse_reference(key).name
    except ImageError:
        return None


def _descriptor_size(desc: Mapping[str, Any]) -> int:
    size = desc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(f"descriptor {desc.get('digest')!r} has an invalid size {size!r}")
    return size


def _json(raw: bytes, digest: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ImageError(f"blob {digest} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ImageError(f"blob {digest} is not a JSON object")
    return doc


def _remove_counted(path: str) -> int:
    total = 0
    if os.path.isdir(path) and not os.path.islink(path):
        for dirpath, _dirs, files in os.walk(path):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, name)).st_size
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            total += os.lstat(path).st_size
            os.unlink(path)
    return total


class _CountingFile:
    """A read-only file wrapper that reports how many bytes were consumed (unpack progress)."""

    def __init__(self, inner: BinaryIO, progress: Callable[[int], None]) -> None:
        self._inner = inner
        self._progress = progress
        self._reported = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        position = self._inner.tell()
        # Report at most every MiB: a callback per 8 KiB gzip read would cost more than the unpack.
        if position - self._reported >= 1 << 20 or not data:
            self._reported = position
            self._progress(position)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True


def _serialized(callback: ProgressCallback | None) -> ProgressCallback:
    """Call the user's callback from one thread at a time (layers download in parallel)."""
    if callback is None:
        return lambda event: None
    lock = threading.Lock()

    def report(event: ProgressEvent) -> None:
        with lock:
            callback(event)

    return report
