"""Layer decompression, chosen by the blob's magic bytes rather than by its declared media type.

Registries and tools disagree on media types (``skopeo --dest-compress-format zstd`` silently
reused a gzip blob, research/registry.md), so the bytes decide.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
from typing import BinaryIO, Protocol

from .._errors import UnpackError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
BZIP2_MAGIC = b"BZh"


def detect(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    return "none"


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def open_decompressed(raw: BinaryIO) -> Readable:
    """Wrap the seekable compressed stream ``raw`` in a reader of the plain tar."""
    head = raw.read(8)
    raw.seek(0)
    kind = detect(head)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "zstd":
        try:
            import zstandard
        except ImportError:
            raise UnpackError(
                "layer is zstd-compressed and the optional 'zstandard' module is not installed "
                "(pip install 'tinycontainer[zstd]')"
            ) from None
        reader: Readable = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return reader
    if kind == "xz":
        return lzma.LZMAFile(raw, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(raw, mode="rb")
    return raw


class HashingReader:
    """Counts and hashes what a consumer reads, to check a layer's diff_id while unpacking."""

    def __init__(self, inner: Readable) -> None:
        self._inner = inner
        self._hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._hash.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
