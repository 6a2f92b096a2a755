"""Build OCI / Docker images with the stdlib alone (tarfile + gzip + hashlib + json)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any

BUSYBOX = "/bin/busybox"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

Entry = tuple[tarfile.TarInfo, bytes | None]


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data), **extra}


@dataclass
class BuiltImage:
    manifest: Blob
    config: Blob
    layers: list[Blob]
    diff_ids: list[str] = field(default_factory=list)
    extra_blobs: list[Blob] = field(default_factory=list)


def _info(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = 1_700_000_000
    return info


def reg(
    name: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0, xattrs: dict[str, str] | None = None
) -> Entry:
    info = _info(name, tarfile.REGTYPE, mode, uid, gid)
    info.size = len(data)
    if xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return info, data


def directory(name: str, mode: int = 0o755) -> Entry:
    return _info(name, tarfile.DIRTYPE, mode), None


def symlink(name: str, target: str) -> Entry:
    info = _info(name, tarfile.SYMTYPE, 0o777)
    info.linkname = target
    return info, None


def hardlink(name: str, target: str) -> Entry:
    info = _info(name, tarfile.LNKTYPE, 0o644)
    info.linkname = target
    return info, None


def chardev(name: str, major: int, minor: int) -> Entry:
    info = _info(name, tarfile.CHRTYPE, 0o666)
    info.devmajor, info.devminor = major, minor
    return info, None


def whiteout(path: str) -> Entry:
    parent, _, name = path.rpartition("/")
    return reg(f"{parent}/.wh.{name}" if parent else f".wh.{name}", b"")


def opaque(dir_path: str) -> Entry:
    return reg(f"{dir_path}/.wh..wh..opq", b"")


def make_tar(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def busybox_entries(extra_applets: tuple[str, ...] = ()) -> list[Entry]:
    with open(BUSYBOX, "rb") as fh:
        binary = fh.read()
    entries = [directory("bin"), reg("bin/busybox", binary, 0o755)]
    for applet in ("sh", "ls", "cat", "echo", *extra_applets):
        entries.append(symlink(f"bin/{applet}", "busybox"))
    return entries


def compress(raw: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(raw, compresslevel=1, mtime=0)
    if kind == "zstd":
        import zstandard

        return bytes(zstandard.ZstdCompressor(level=3).compress(raw))
    return raw


_LAYER_TYPES = {
    ("oci", "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("oci", "none"): "application/vnd.oci.image.layer.v1.tar",
    ("docker", "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ("docker", "none"): "application/vnd.docker.image.rootfs.diff.tar",
}

DEFAULT_CONFIG: dict[str, Any] = {
    "Entrypoint": ["/bin/sh", "-c"],
    "Cmd": ["echo hello"],
    "Env": ["PATH=/bin", "GREETING=hi"],
    "WorkingDir": "/tmp",
    "User": "1000:1000",
    "ExposedPorts": {"8080/tcp": {}},
    "StopSignal": "SIGINT",
    "Labels": {"org.example": "yes"},
    "Volumes": {"/data": {}},
}


def build_image(
    layers: list[bytes],
    *,
    compression: str = "gzip",
    docker: bool = False,
    arch: str = "amd64",
    variant: str | None = None,
    config: dict[str, Any] | None = None,
    layer_media_type: str | None = None,
) -> BuiltImage:
    flavour = "docker" if docker else "oci"
    blobs = [
        Blob(compress(raw, compression), layer_media_type or _LAYER_TYPES[(flavour, compression)]) for raw in layers
    ]
    diff_ids = ["sha256:" + hashlib.sha256(raw).hexdigest() for raw in layers]
    doc: dict[str, Any] = {
        "architecture": arch,
        "os": "linux",
        "config": dict(DEFAULT_CONFIG if config is None else config),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "created": "2024-01-01T00:00:00Z",
    }
    if variant:
        doc["variant"] = variant
    config_blob = Blob(json.dumps(doc).encode(), DOCKER_CONFIG if docker else OCI_CONFIG)
    manifest_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": config_blob.descriptor(),
        "layers": [b.descriptor() for b in blobs],
    }
    return BuiltImage(Blob(json.dumps(manifest).encode(), manifest_type), config_blob, blobs, diff_ids)


def build_attestation() -> BuiltImage:
    statement = Blob(b'{"_type": "https://in-toto.io/Statement/v0.1"}', "application/vnd.in-toto+json")
    config_blob = Blob(b'{"architecture": "unknown", "os": "unknown"}', OCI_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [statement.descriptor()],
    }
    return BuiltImage(Blob(json.dumps(manifest).encode(), OCI_MANIFEST), config_blob, [statement])


def build_index(
    entries: list[tuple[Blob, dict[str, str]]],
    *,
    docker: bool = False,
    attestation_for: Blob | None = None,
    attestation: BuiltImage | None = None,
) -> Blob:
    media_type = DOCKER_LIST if docker else OCI_INDEX
    manifests = [blob.descriptor(platform=platform) for blob, platform in entries]
    if attestation is not None and attestation_for is not None:
        manifests.insert(
            0,
            attestation.manifest.descriptor(
                platform={"os": "unknown", "architecture": "unknown"},
                annotations={
                    "vnd.docker.reference.type": "attestation-manifest",
                    "vnd.docker.reference.digest": attestation_for.digest,
                },
            ),
        )
    return Blob(json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}).encode(), media_type)
