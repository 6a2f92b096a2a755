"""What ``tcontainer-oci`` needs to run as an ordinary user (runc's "rootless" mode).

* State lives under ``$XDG_RUNTIME_DIR/tcontainer-oci`` (a per-user 0700 tmpfs on systemd
  hosts), never in a world-writable place where another user could plant a symlink.
* The user namespace maps the caller to root and, when /etc/subuid and /etc/subgid give the
  caller a range, that range to ids 1..N (subuid(5); newuidmap(1) checks it).
* Cgroups are used only where the caller may write them (cgroup v2 delegation); on cgroup v1
  nothing is delegated, so the container runs without limits and the caller is told so.
* slirp4netns and pasta need /dev/net/tun; when it is not usable (mode 0600 here) the caller
  is told that networking is loopback only.
"""

from __future__ import annotations

import errno
import os
import pwd
from collections.abc import Mapping

from .._errors import UnsupportedError

SYSTEM_ROOT = "/run/tcontainer-oci"
TUN = "/dev/net/tun"


def default_root(euid: int | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The state directory when ``--root`` is not given (runc: /run/runc or $XDG_RUNTIME_DIR/runc)."""
    euid = os.geteuid() if euid is None else euid
    environ = os.environ if environ is None else environ
    if euid == 0:
        return SYSTEM_ROOT
    xdg = environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "tcontainer-oci")
    per_user = f"/run/user/{euid}"
    if os.path.isdir(per_user) and os.stat(per_user).st_uid == euid:
        return os.path.join(per_user, "tcontainer-oci")
    raise UnsupportedError(
        "running as an ordinary user: set XDG_RUNTIME_DIR (a directory only you can write) or pass --root"
    )


def subid_ranges(path: str, uid: int, name: str | None) -> list[tuple[int, int]]:
    """(start, count) ranges of subuid(5)/subgid(5) lines for the user (by name or number)."""
    ranges: list[tuple[int, int]] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read(1 << 20).splitlines()
    except OSError:
        return ranges
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in (name, str(uid)):
            continue
        if parts[1].isdigit() and parts[2].isdigit() and int(parts[2]) > 0:
            ranges.append((int(parts[1]), int(parts[2])))
    return ranges


def user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def extra_mappings(kind: str, uid: int, name: str | None, etc: str = "/etc") -> list[tuple[int, int, int]]:
    """(container_id, host_id, size) triples for the subordinate ranges, placed after id 0.

    ``kind`` is "uid" or "gid". Only the first range is used: that is what runc/podman
    default to, and it keeps container ids contiguous."""
    ranges = subid_ranges(os.path.join(etc, f"sub{kind}"), uid, name)
    if not ranges:
        return []
    start, count = ranges[0]
    return [(1, start, count)]


def tun_problem(path: str = TUN) -> str | None:
    """Why slirp4netns/pasta cannot give this user a network, or None if /dev/net/tun opens."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return f"{path} does not exist: slirp4netns/pasta cannot work; networking is loopback only"
        detail = os.strerror(exc.errno or errno.EACCES)
        try:
            st = os.stat(path)
            detail += f" (mode {st.st_mode & 0o7777:04o}, owner uid {st.st_uid})"
        except OSError:
            pass
        return (
            f"{path} cannot be opened by uid {os.geteuid()}: {detail}. slirp4netns/pasta cannot work "
            f"here; rootless containers get loopback-only networking (ask the admin to make {path} 0666)"
        )
    os.close(fd)
    return None


def cgroup_problem(paths: Mapping[str, str]) -> str | None:
    """A warning when none or only some of the container's cgroup directories exist."""
    missing = sorted(c for c, d in paths.items() if not os.path.isdir(d))
    if not missing:
        return None
    which = "any" if len(missing) == len(paths) else ", ".join(missing)
    return (
        f"cgroups not delegated to uid {os.geteuid()} ({which}): the container runs without cgroup limits, "
        "and pause/update/ps by cgroup do not work (cgroup v2 with systemd delegation fixes this)"
    )
