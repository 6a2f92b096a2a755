"""Reading and writing cgroupfs files.

Writes go through ``os.open`` + ``os.write``: a buffered ``open().write()`` can hide the
kernel's refusal until ``close`` (measured on this project's test machine). Files are never
created: cgroupfs files exist or the kernel does not know the name, and a misspelt name must
fail loudly (ENOENT) instead of leaving a plain file behind in a fake tree. O_TRUNC is what a
shell's ``>`` does; cgroupfs ignores it and a fake tree then holds the last value written.
"""

from __future__ import annotations

import errno
import os
import time

from ..._errors import KernelError


def _check_name(name: str) -> None:
    # Names come from code or from OCI "unified" keys; the latter are validated before, this
    # is the last line of defence against writing outside the cgroup directory.
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise ValueError(f"invalid cgroup file name {name!r}")


def write(directory: str, name: str, data: str) -> None:
    """Write ``data`` to ``directory/name`` in one write(2); raise KernelError naming path and data."""
    write_lines(directory, name, [data])


def write_lines(directory: str, name: str, lines: list[str]) -> None:
    """Write each of ``lines`` to ``directory/name`` in a write(2) of its own, through one open
    file: what :func:`write` does per line, without an open and close each (devices.allow takes
    one rule per write, and a container starts with a dozen)."""
    _check_name(name)
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise KernelError(exc.errno or errno.EIO, "open", path, f"to write {lines[0]!r}") from None
    try:
        for data in lines:
            raw = data.encode()
            try:
                written = os.write(fd, raw)
            except OSError as exc:
                raise KernelError(exc.errno or errno.EIO, "write", path, f"data {data!r}") from None
            if written != len(raw):
                raise KernelError(errno.EIO, "write", path, f"short write of {data!r}")
    finally:
        os.close(fd)


def read(directory: str, name: str) -> str:
    _check_name(name)
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise KernelError.from_oserror(exc, "open", path) from None
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()
    except OSError as exc:
        raise KernelError.from_oserror(exc, "read", path) from None
    finally:
        os.close(fd)


def read_optional(directory: str, name: str) -> str | None:
    """The file's text, or None when the file does not exist (controller absent, older kernel)."""
    try:
        return read(directory, name)
    except KernelError as exc:
        if exc.errno in (errno.ENOENT, errno.ENODEV, errno.EOPNOTSUPP):
            return None
        raise


def exists(directory: str, name: str) -> bool:
    _check_name(name)
    return os.path.exists(os.path.join(directory, name))


def parse_int(text: str | None) -> int | None:
    """An integer file; "max" (v2) and None read as None (unlimited / unknown)."""
    if text is None:
        return None
    value = text.strip()
    if not value or value == "max":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def parse_flat_keyed(text: str | None) -> dict[str, int]:
    """``key value`` lines (cpu.stat, memory.events, memory.oom_control, ...)."""
    result: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                result[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return result


def mkdir(path: str) -> bool:
    """Create one directory; True when we created it, False when it existed."""
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        if not os.path.isdir(path):
            raise KernelError(errno.ENOTDIR, "mkdir", path) from None
        return False
    except OSError as exc:
        raise KernelError.from_oserror(exc, "mkdir", path) from None
    return True


def remove_tree(path: str, timeout: float = 2.0) -> bool:
    """rmdir ``path`` and every cgroup directory beneath it, deepest first; False when ``path``
    is left (a child cgroup that would not go).

    For the container's own cgroup only: sub-cgroups a container made inside it are its own.
    A directory that is already gone is fine: destroy is idempotent.
    """
    # The usual cgroup has no children and no tasks left: one rmdir(2) does it, without the
    # stat and directory listing the walk below needs (it runs on every container's exit).
    try:
        _rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        pass
    if not os.path.isdir(path):
        return True
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if entry.is_dir(follow_symlinks=False):
            remove_tree(entry.path, timeout)
    return remove_dir(path, timeout)


def remove_dir(path: str, timeout: float = 2.0) -> bool:
    """rmdir one cgroup; False when it still has child cgroups (someone else's: leave it).

    EBUSY means a process is still exiting (or a zombie is not yet reaped): retry until
    ``timeout``, then raise.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            _rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:
                return False
            if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                raise KernelError.from_oserror(exc, "rmdir", path) from None
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError as exc:
        # cgroupfs removes a cgroup with its virtual files; a fake tree (unit tests) holds
        # regular files there, which go when no child directory is left.
        if exc.errno != errno.ENOTEMPTY or not _is_fake_tree(path):
            raise
        entries = list(os.scandir(path))
        if any(e.is_dir(follow_symlinks=False) for e in entries):
            raise
        for entry in entries:
            os.unlink(entry.path)
        os.rmdir(path)


_CGROUP_SUPER_MAGICS = (0x27E0EB, 0x63677270)  # CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC (linux/magic.h)


def _is_fake_tree(path: str) -> bool:
    from .. import _libc

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _libc.fstatfs_type(fd, path) not in _CGROUP_SUPER_MAGICS
    finally:
        os.close(fd)
