"""``save`` and ``load``: images as tar archives, in OCI image-layout and ``docker save`` form.

A saved archive holds both forms over one set of blobs, as docker 25 writes it: ``oci-layout``,
``index.json`` and ``blobs/sha256/<hex>`` (image-spec image-layout.md) plus a ``manifest.json``
(``[{"Config", "RepoTags", "Layers"}]``) whose paths point into ``blobs/``, so that both
``skopeo``/``podman load`` and ``docker load`` read it.

Loading treats the archive as hostile, with the same rules as a pull:

* nothing is ever extracted by member name: members are only looked up in an in-memory map and
  their bytes streamed into the content store's temporary directory, which is renamed into
  ``blobs/sha256/<digest>`` only once the bytes hash to the digest (OCI) or are addressed by
  their own hash (docker layers); a mismatch or a cut archive leaves nothing behind;
* member names and ``manifest.json`` paths are cleaned lexically and may not climb out with
  ``..``; links between members are resolved inside the archive's name space, a bounded number
  of times, and must end at a regular file;
* manifests and configs are capped at 4 MiB, layers at the unpack size limit; then layers are
  unpacked by the same contained applier as pulled ones, which checks every diff_id.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from .._errors import DigestMismatch, ImageError
from . import _media as M
from ._compression import detect
from ._content import check_digest
from ._platform import Platform, host_platform, parse_platform, select_manifest
from ._reference import parse_reference
from ._store import Image, ImageStore, ProgressCallback
from ._unpack import clean_path

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
_MAX_MEMBERS = 1_000_000
_MAX_LINK_HOPS = 16
_MAX_INDEX_DEPTH = 4
_COPY = 1 << 20


# ------------------------------------------------------------------------------------ save


@dataclass(frozen=True)
class _Saved:
    image: Image
    references: tuple[str, ...]


def save_archive(store: ImageStore, refs: Sequence[str], dest: str) -> None:
    """Write the images named by ``refs`` (references or ids) to the tar file ``dest``, atomically."""
    if not refs:
        raise ImageError("save: name at least one image")
    saved: list[_Saved] = []
    for ref in refs:
        img = store.get(ref)
        saved.append(_Saved(img, _references_for(ref, img)))
    blobs: dict[str, None] = {}
    for item in saved:
        for digest in (item.image.manifest_digest, item.image.id, *item.image.layer_blobs):
            if not store.content.has(digest):
                raise ImageError(f"blob {digest} of image {item.image.id} is missing from the store (pull it again)")
            blobs[digest] = None
    index = {"schemaVersion": 2, "mediaType": M.OCI_INDEX, "manifests": _index_entries(store, saved)}
    docker = [
        {
            "Config": _blob_name(item.image.id),
            "RepoTags": [r for r in item.references if "@" not in r] or None,
            "Layers": [_blob_name(d) for d in item.image.layer_blobs],
        }
        for item in saved
    ]
    directory = os.path.dirname(os.path.abspath(dest))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tcontainer-save-", suffix=".tar")
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.TarFile(
            fileobj=raw, mode="w", format=tarfile.PAX_FORMAT, copybufsize=_COPY
        ) as tar:
            _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
            _add_dir(tar, "blobs")
            _add_dir(tar, "blobs/sha256")
            for digest in blobs:
                path = store.content.path(digest)
                info = _info(_blob_name(digest), os.path.getsize(path))
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            _add_bytes(tar, "index.json", json.dumps(index).encode())
            _add_bytes(tar, "manifest.json", json.dumps(docker).encode())
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _references_for(query: str, img: Image) -> tuple[str, ...]:
    """``save busybox`` records busybox only; ``save <id>`` records every reference of the image."""
    try:
        wanted = str(parse_reference(query))
    except ImageError:
        return img.references
    return (wanted,) if wanted in img.references else img.references


def _index_entries(store: ImageStore, saved: list[_Saved]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for item in saved:
        digest = item.image.manifest_digest
        raw = store.content.read(digest)
        media_type = json.loads(raw).get("mediaType") or M.OCI_MANIFEST
        base = {"mediaType": media_type, "digest": digest, "size": len(raw)}
        if not item.references:
            entries.append(base)
        for ref in item.references:
            parsed = parse_reference(ref)
            # docker 25 and containerd: the full name in io.containerd.image.name, the tag in ref.name.
            annotations = {CONTAINERD_NAME: ref, REF_NAME: parsed.tag or parsed.digest or "latest"}
            entries.append({**base, "annotations": annotations})
    return entries


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + check_digest(digest)[len("sha256:") :]


def _info(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 0  # reproducible archives: the same image saves to the same bytes
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    tar.addfile(_info(name, len(data)), io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    tar.addfile(_info(name, 0, tarfile.DIRTYPE))


# ------------------------------------------------------------------------------------ load


class _Archive:
    """Members of a tar by cleaned name; bytes are read through the tar, never through the file system."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members: dict[str, tarfile.TarInfo] = {}
        for count, member in enumerate(tar, 1):
            if count > _MAX_MEMBERS:
                raise ImageError(f"archive has more than {_MAX_MEMBERS} members")
            try:
                name = clean_path(member.name, "archive member")
            except ImageError:
                continue  # a name that climbs out can never be looked up: ignoring it is safe
            self.members[name] = member  # tar semantics: a later member of the same name wins

    def has(self, name: str) -> bool:
        return name in self.members

    def resolve(self, path: str, what: str) -> tarfile.TarInfo:
        name = clean_path(path, what)
        for _ in range(_MAX_LINK_HOPS):
            member = self.members.get(name)
            if member is None:
                raise ImageError(f"archive has no {what} {path!r}")
            if member.isreg() and not member.issparse():
                return member
            if member.issym():
                # Relative to the link's own directory; absolute means the archive's root.
                base = "" if member.linkname.startswith("/") else posixpath.dirname(name)
                name = clean_path(posixpath.join(base, member.linkname), f"{what} link target")
            elif member.islnk():
                name = clean_path(member.linkname, f"{what} link target")
            else:
                raise ImageError(f"archive {what} {path!r} is not a regular file")
        raise ImageError(f"archive {what} {path!r}: too many links")

    def read(self, path: str, what: str, cap: int) -> bytes:
        member = self.resolve(path, what)
        if member.size > cap:
            raise ImageError(f"archive {what} {path!r} is {member.size} bytes, more than the limit of {cap}")
        with self._open(member) as fh:
            data = fh.read(cap + 1)
        if len(data) != member.size:
            raise ImageError(f"archive {what} {path!r} is truncated")
        return data

    @contextlib.contextmanager
    def _open(self, member: tarfile.TarInfo) -> Iterator[IO[bytes]]:
        fh = self.tar.extractfile(member)
        if fh is None:
            raise ImageError(f"archive member {member.name!r} is not a regular file")
        with fh:
            yield fh

    def copy_blob(self, store: ImageStore, path: str, what: str, expected: str | None, cap: int) -> str:
        """Stream a member into the content store; return its digest (checked against ``expected``)."""
        member = self.resolve(path, what)
        if member.size > cap:
            raise ImageError(f"archive {what} {path!r} is {member.size} bytes, more than the limit of {cap}")
        if expected is not None and store.content.has(expected):
            return expected
        hasher = hashlib.sha256()
        tmp_fd, tmp = tempfile.mkstemp(dir=store.content.tmp, prefix="load-")
        try:
            with os.fdopen(tmp_fd, "wb") as out, self._open(member) as fh:
                done = 0
                while chunk := fh.read(_COPY):
                    done += len(chunk)
                    hasher.update(chunk)
                    out.write(chunk)
                if done != member.size:
                    raise ImageError(f"archive {what} {path!r} is truncated")
                out.flush()
                os.fsync(out.fileno())
            actual = "sha256:" + hasher.hexdigest()
            if expected is not None and actual != expected:
                raise DigestMismatch(expected, actual, what)
            os.replace(tmp, store.content.path(actual))
            return actual
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def load_archive(
    store: ImageStore,
    source: str,
    *,
    platform: str | None = None,
    repository: str | None = None,
    progress: ProgressCallback | None = None,
) -> list[Image]:
    """Load every image of the tar ``source`` (OCI layout or ``docker save``) into ``store``.

    An OCI ``ref.name`` that is only a tag names ``repository:tag`` when ``repository`` is
    given; images without any name are loaded untagged (listed as ``<none>``).
    """
    wanted = parse_platform(platform) if platform else host_platform()
    try:
        tar = tarfile.open(source, mode="r:")  # noqa: SIM115 (closed below)
    except (OSError, tarfile.TarError) as exc:
        raise ImageError(f"{source}: not a tar archive ({exc})") from None
    with tar, store.locked():
        try:
            archive = _Archive(tar)
            if archive.has("index.json") and archive.has("oci-layout"):
                plans = _plan_oci(archive, store, wanted, repository)
            elif archive.has("manifest.json"):
                plans = _plan_docker(archive, store)
            else:
                raise ImageError(
                    f"{source}: neither an OCI image layout (index.json) nor a docker save (manifest.json)"
                )
        except (tarfile.TarError, EOFError) as exc:
            raise ImageError(f"{source}: damaged archive ({exc})") from None
        return [store.add_local(chain, refs, progress=progress) for chain, refs in plans]


def _json_doc(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ImageError(f"archive {what} is not valid JSON") from None


def _layer_cap(store: ImageStore) -> int:
    limit = store.unpack_options.max_bytes
    return limit + limit // 100 + (1 << 20)


def _plan_oci(
    archive: _Archive, store: ImageStore, wanted: Platform, repository: str | None
) -> list[tuple[list[str], list[str]]]:
    index = _json_doc(archive.read("index.json", "index.json", M.MAX_MANIFEST_BYTES), "index.json")
    entries = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ImageError("archive index.json lists no manifests")
    plans: dict[str, tuple[list[str], list[str]]] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise ImageError("archive index.json has a bad manifest entry")
        chain = _resolve_oci(archive, store, entry, wanted)
        ref = _entry_reference(entry, repository)
        plan = plans.setdefault(chain[-1], (chain, []))
        if ref and ref not in plan[1]:
            plan[1].append(ref)
    for chain, _refs in plans.values():
        _copy_oci_image(archive, store, chain[-1])
    return list(plans.values())


def _blob_path(digest: str) -> str:
    return "blobs/sha256/" + digest[len("sha256:") :]


def _read_oci_json(archive: _Archive, store: ImageStore, digest: str, what: str) -> dict[str, Any]:
    digest = check_digest(digest, what)
    raw = archive.read(_blob_path(digest), what, M.MAX_MANIFEST_BYTES)
    actual = "sha256:" + hashlib.sha256(raw).hexdigest()
    if actual != digest:
        raise DigestMismatch(digest, actual, what)
    doc = _json_doc(raw, what)
    if not isinstance(doc, dict):
        raise ImageError(f"archive {what} {digest} is not a JSON object")
    store.content.put(digest, raw)
    return doc


def _resolve_oci(
    archive: _Archive, store: ImageStore, entry: Mapping[str, Any], wanted: Platform
) -> list[str]:
    """Follow an index.json entry through nested indexes to one platform's manifest."""
    chain: list[str] = []
    while True:
        digest = check_digest(entry.get("digest"), "index entry")
        doc = _read_oci_json(archive, store, digest, "manifest")
        chain.append(digest)
        if "manifests" not in doc and doc.get("mediaType") not in M.INDEX_TYPES:
            return chain
        if len(chain) > _MAX_INDEX_DEPTH:
            raise ImageError(f"archive indexes nested more than {_MAX_INDEX_DEPTH} deep")
        manifests = doc.get("manifests")
        if not isinstance(manifests, list):
            raise ImageError(f"archive index {digest} has no manifests list")
        entry = select_manifest([m for m in manifests if isinstance(m, Mapping)], wanted)


def _entry_reference(entry: Mapping[str, Any], repository: str | None) -> str | None:
    annotations = entry.get("annotations")
    if not isinstance(annotations, Mapping):
        return None
    full = annotations.get(CONTAINERD_NAME)
    if isinstance(full, str) and full:
        return str(parse_reference(full))
    name = annotations.get(REF_NAME)
    if not isinstance(name, str) or not name:
        return None
    if "/" in name or ":" in name or "@" in name:
        return str(parse_reference(name))
    # A bare ref.name is a tag of the layout (skopeo's oci:DIR:TAG); it needs a repository.
    return str(parse_reference(f"{repository}:{name}")) if repository else None


def _copy_oci_image(archive: _Archive, store: ImageStore, manifest_digest: str) -> None:
    manifest = _json_doc(store.content.read(manifest_digest), "manifest")
    config = manifest.get("config") if isinstance(manifest, dict) else None
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(config, Mapping) or not isinstance(layers, list):
        raise ImageError(f"archive manifest {manifest_digest} has no config or layers")
    config_digest = check_digest(config.get("digest"), "config")
    if not store.content.has(config_digest):
        archive.copy_blob(store, _blob_path(config_digest), "config", config_digest, M.MAX_CONFIG_BYTES)
    for layer in layers:
        if not isinstance(layer, Mapping):
            raise ImageError(f"archive manifest {manifest_digest} has a bad layer descriptor")
        digest = check_digest(layer.get("digest"), "layer")
        archive.copy_blob(store, _blob_path(digest), "layer", digest, _layer_cap(store))


def _plan_docker(archive: _Archive, store: ImageStore) -> list[tuple[list[str], list[str]]]:
    doc = _json_doc(archive.read("manifest.json", "manifest.json", M.MAX_MANIFEST_BYTES), "manifest.json")
    if not isinstance(doc, list) or not doc:
        raise ImageError("archive manifest.json is not a list of images")
    plans: list[tuple[list[str], list[str]]] = []
    for item in doc:
        if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
            raise ImageError("archive manifest.json entry has no Config")
        layers = item.get("Layers")
        if not isinstance(layers, list) or not all(isinstance(p, str) for p in layers):
            raise ImageError("archive manifest.json entry has no Layers list")
        tags = item.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ImageError("archive manifest.json RepoTags is not a list of strings")
        config_digest = archive.copy_blob(store, item["Config"], "config", None, M.MAX_CONFIG_BYTES)
        descriptors = []
        for path in layers:
            digest = archive.copy_blob(store, path, "layer", None, _layer_cap(store))
            with open(store.content.path(digest), "rb") as fh:
                kind = detect(fh.read(8))
            descriptors.append({"mediaType": _DOCKER_LAYER_TYPES.get(kind, _UNKNOWN), "digest": digest,
                                "size": os.path.getsize(store.content.path(digest))})
        # docker save keeps no manifest: make the Docker v2 one a registry would have served.
        manifest = {
            "schemaVersion": 2,
            "mediaType": M.DOCKER_MANIFEST,
            "config": {"mediaType": M.DOCKER_CONFIG, "digest": config_digest,
                       "size": os.path.getsize(store.content.path(config_digest))},
            "layers": descriptors,
        }
        raw = json.dumps(manifest, indent=3).encode()
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        store.content.put(digest, raw)
        plans.append(([digest], [str(parse_reference(t)) for t in tags]))
    return plans


_UNKNOWN = "application/vnd.tinycontainer.unknown-layer"  # refused by the store's plan: a clear error
_DOCKER_LAYER_TYPES = {
    "none": "application/vnd.docker.image.rootfs.diff.tar",
    "gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


def image_inspect(store: ImageStore, ref: str) -> dict[str, Any]:
    """What ``image inspect`` shows: ids, references, config, layers and sizes, as plain JSON data."""
    img = store.get(ref)
    manifest = _json_doc(store.content.read(img.manifest_digest), "manifest")
    config_doc = _json_doc(store.content.read(img.id), "config")
    layers = manifest.get("layers", []) if isinstance(manifest, dict) else []
    return {
        "Id": img.id,
        "Digest": img.digest,
        "ManifestDigest": img.manifest_digest,
        "RepoTags": [r for r in img.references if "@" not in r],
        "RepoDigests": [f"{parse_reference(r).name}@{img.digest}" for r in img.references],
        "Created": img.created,
        "Os": img.config.os,
        "Architecture": img.config.architecture,
        "Variant": img.config.variant or None,
        "Size": img.size,
        "DownloadSize": sum(int(d.get("size", 0)) for d in layers if isinstance(d, dict)),
        "Config": config_doc.get("config") if isinstance(config_doc, dict) else None,
        "RootFS": {"Type": "layers", "Layers": list(img.layers)},
        "Layers": [
            {"DiffID": diff_id, "Digest": d.get("digest"), "MediaType": d.get("mediaType"), "Size": d.get("size")}
            for diff_id, d in zip(img.layers, layers, strict=False)
            if isinstance(d, dict)
        ],
        "History": config_doc.get("history", []) if isinstance(config_doc, dict) else [],
    }


def untagged_images(store: ImageStore) -> list[Image]:
    """Images no reference names any more (loaded without a name): what ``image prune`` removes."""
    return [img for img in store.list() if not img.references]

