"""Namespace kinds, their clone flags and /proc names, and joining one by path (setns(2))."""

from __future__ import annotations

import os

from . import _consts as C
from ._syscalls import Syscalls

FLAGS = {
    "pid": C.CLONE_NEWPID,
    "network": C.CLONE_NEWNET,
    "mount": C.CLONE_NEWNS,
    "ipc": C.CLONE_NEWIPC,
    "uts": C.CLONE_NEWUTS,
    "user": C.CLONE_NEWUSER,
    "cgroup": C.CLONE_NEWCGROUP,
    "time": C.CLONE_NEWTIME,
}

PROC_NAMES = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}

# Joining order: the user namespace first (it grants the capabilities needed for the rest);
# mount last but one and cgroup last, as runc's nsexec does, because entering the mount namespace
# changes the root and so how later /proc paths would resolve (they are opened up front anyway).
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "time", "mount", "cgroup")


def open_paths(paths: dict[str, str]) -> list[tuple[str, int, str]]:
    """Open every namespace path before joining any: after setns(mnt) the paths may not resolve."""
    opened = []
    try:
        for kind in JOIN_ORDER:
            if kind in paths:
                opened.append((kind, os.open(paths[kind], os.O_RDONLY | os.O_CLOEXEC), paths[kind]))
    except OSError as exc:
        for _, fd, _ in opened:
            os.close(fd)
        from .._errors import KernelError

        raise KernelError.from_oserror(exc, "open", exc.filename) from None
    return opened


def join(opened: list[tuple[str, int, str]], sys: Syscalls, only: tuple[str, ...] | None = None) -> None:
    for kind, fd, path in opened:
        if only is not None and kind not in only:
            continue
        sys.setns(fd, FLAGS[kind], path)


def close_all(opened: list[tuple[str, int, str]]) -> None:
    for _, fd, _ in opened:
        os.close(fd)


def ns_paths_of(pid: int) -> dict[str, str]:
    return {
        kind: f"/proc/{pid}/ns/{name}" for kind, name in PROC_NAMES.items() if os.path.exists(f"/proc/{pid}/ns/{name}")
    }


def same_as_self(pid: int, kind: str) -> bool:
    name = PROC_NAMES[kind]
    try:
        return os.readlink(f"/proc/{pid}/ns/{name}") == os.readlink(f"/proc/self/ns/{name}")
    except OSError:
        return False
