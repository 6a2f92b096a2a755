"""Mount a container's root filesystem as overlayfs over the unpacked layers.

overlayfs needs at least two lowers or an upper (research/registry.md), so every container gets
its own ``upper``/``work`` even for one-layer images. mount(2) copies at most one page of
options, so an image with many layers overflows ``lowerdir=`` with absolute paths; then the
container directory gets ``lower/0``, ``lower/1``, ... symlinks to the layers and the mount is made
by a forked child whose cwd is the container directory, with relative paths (the kernel resolves
them, following the symlinks, at mount time; docker's overlay2 uses short symlinks the same way).
That keeps 128 layers at about 1.2 KiB of options.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil

from .._errors import ImageError, KernelError
from ..linux import _consts as C
from ..linux._syscalls import Syscalls

_PAGE_LIMIT = 4095  # one page of options, NUL included
LOWER_LINKS = "lower"


def overlay_options(lowers: list[str], upper: str, work: str) -> str:
    for path in [*lowers, upper, work]:
        if any(ch in path for ch in ",:\\"):
            raise ImageError(f"overlay path {path!r} contains ',', ':' or '\\', which mount options cannot carry")
    return f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"


def mount_overlay(syscalls: Syscalls, lowers: list[str], upper: str, work: str, target: str) -> None:
    """Mount overlayfs at ``target``; ``lowers`` are listed top layer first (overlayfs order).

    ``upper`` and ``work`` must be siblings in the container directory.
    """
    data = overlay_options(lowers, upper, work)
    if len(data) <= _PAGE_LIMIT:
        syscalls.mount("overlay", target, "overlay", 0, data)
        return
    container_dir = os.path.dirname(upper)
    if os.path.dirname(work) != container_dir:
        raise ImageError("overlay upper and work directories must share a parent")
    links = os.path.join(container_dir, LOWER_LINKS)
    remove_tree(links)
    os.mkdir(links, 0o700)
    relative = []
    for index, lower in enumerate(lowers):
        os.symlink(lower, os.path.join(links, str(index)))
        relative.append(f"{LOWER_LINKS}/{index}")
    data = overlay_options(relative, os.path.basename(upper), os.path.basename(work))
    if len(data) > _PAGE_LIMIT:
        raise ImageError(f"too many layers ({len(lowers)}) for one overlay mount")
    _mount_from_child(syscalls, container_dir, data, target)


def _mount_from_child(syscalls: Syscalls, cwd: str, data: str, target: str) -> None:
    # The child shares our mount namespace, so its mount is ours; chdir in a thread would not be
    # safe (cwd is per process).
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            os.close(read_end)
            os.chdir(cwd)
            syscalls.mount("overlay", target, "overlay", 0, data)
        except OSError as exc:
            os.write(write_end, str(exc.errno or errno.EIO).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        reported = os.read(read_end, 32)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    if reported:
        raise KernelError(int(reported), "mount", target, "overlay with relative lowerdirs")


def unmount(syscalls: Syscalls, target: str) -> None:
    try:
        syscalls.umount2(target, C.MNT_DETACH)
    except KernelError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):  # not mounted / already gone
            raise


def remove_tree(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
