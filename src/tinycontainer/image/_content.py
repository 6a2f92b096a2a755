"""Content-addressed blobs (``blobs/sha256/<hex>``), atomic file writes and flock helpers.

A blob file exists only once its bytes were verified: writers fill a temporary file in the
store's ``tmp/`` (same filesystem) and ``rename(2)`` it into place, so a crash or a digest
mismatch leaves at most a stray temporary file that ``prune`` removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from .._errors import DigestMismatch, ImageError
from ._reference import is_sha256_digest


@contextlib.contextmanager
def flocked(path: str, *, shared: bool = False) -> Iterator[None]:
    """Hold flock(2) on ``path`` (created if needed); released on exit or when the process dies."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes, tmp_dir: str | None = None) -> None:
    directory = tmp_dir or os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_digest(digest: object, what: str = "descriptor") -> str:
    """Digests become file names: accept only ``sha256:<64 lowercase hex>``."""
    if not isinstance(digest, str) or not is_sha256_digest(digest):
        raise ImageError(f"{what} has an invalid or unsupported digest {digest!r}")
    return digest


class ContentStore:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "blobs", "sha256")
        self.tmp = os.path.join(root, "tmp")
        os.makedirs(self.dir, exist_ok=True)
        os.makedirs(self.tmp, exist_ok=True)

    def path(self, digest: str) -> str:
        return os.path.join(self.dir, check_digest(digest)[len("sha256:") :])

    def has(self, digest: str) -> bool:
        return os.path.isfile(self.path(digest))

    def put(self, digest: str, data: bytes) -> None:
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise DigestMismatch(digest, actual)
        if not self.has(digest):
            write_atomic(self.path(digest), data, self.tmp)

    def read(self, digest: str) -> bytes:
        try:
            with open(self.path(digest), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is missing from the image store (pull the image again)") from None

    @contextlib.contextmanager
    def writer(self, digest: str) -> Iterator[BinaryIO]:
        """A temporary file that becomes blob ``digest`` if the block succeeds (the caller verified it)."""
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        try:
            with os.fdopen(fd, "w+b") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path(digest))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
