"""Compile once, load many times: a content-addressed cache of compiled filters.

Compiling the Docker profile costs a few milliseconds of Python; loading a cached blob costs
one read. The key covers everything the program depends on: the profile's canonical JSON,
the host arch, the syscall table version and the compiler version. A cached file is used only
when it is a regular file owned by us and writable by nobody else, because the program it
holds decides what the container may do.
"""

from __future__ import annotations

import os
import stat

from ..._errors import KernelError, suppressed
from ...oci import _json
from ...oci._codec import encode
from ._table_version import TABLE_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hashlib import sha256

    from ... import oci
else:
    # The C module beneath hashlib's sha256: hashlib itself loads OpenSSL's _hashlib (~3 ms of
    # a start whose program is cached). CPython 3.12 renamed it _sha2.
    try:
        from _sha256 import sha256
    except ImportError:
        try:
            from _sha2 import sha256
        except ImportError:
            from hashlib import sha256

# Bump when the generated code changes for the same input.
COMPILER_VERSION = "1"


def cache_key(seccomp: oci.Seccomp) -> str:
    canonical = _json.dumps(encode(seccomp), sort_keys=True, compact=True)
    material = "\0".join((canonical, os.uname().machine, TABLE_VERSION, COMPILER_VERSION))
    return sha256(material.encode()).hexdigest()


def compile_cached(seccomp: oci.Seccomp, cache_dir: str | None) -> bytes:
    """The compiled program for ``seccomp``, from ``cache_dir`` when present (created 0700).

    ``cache_dir=None`` compiles without caching.
    """
    if cache_dir is None:
        return _compile(seccomp)
    path = os.path.join(cache_dir, f"seccomp-{cache_key(seccomp)}.bpf")
    cached = _read_trusted(path)
    if cached is not None:
        return cached
    program = _compile(seccomp)
    # A name of our own, created exclusively, not followed if something else sits there (what
    # tempfile.mkstemp does; its import costs ~2 ms).
    tmp = os.path.join(cache_dir, f".seccomp-{os.getpid()}-{os.urandom(6).hex()}")
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise KernelError.from_oserror(exc, "open", cache_dir) from None
    try:
        try:
            view = memoryview(program)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
    except OSError as exc:
        with suppressed(OSError):
            os.unlink(tmp)
        raise KernelError.from_oserror(exc, "write", path) from None
    return program


def _compile(seccomp: oci.Seccomp) -> bytes:
    from ._compiler import compile_filter  # only on a miss: the compiler and the syscall tables

    return compile_filter(seccomp).program


def _read_trusted(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (
            not stat.S_ISREG(st.st_mode)
            or st.st_uid != os.geteuid()
            or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            or st.st_size == 0
            or st.st_size % 8
        ):
            return None
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        data = b"".join(chunks)
        return data if len(data) == st.st_size else None
    finally:
        os.close(fd)
