"""Which cgroup hierarchies the host mounts, and where the caller sits in them.

Read from /proc/self/mountinfo (proc(5): field 4 is the mount's root inside its filesystem,
field 5 the mount point, after " - " come the type, source and super options) and
/proc/self/cgroup (``hierarchy-id:controllers:path``; ``0::path`` is cgroup v2).
"""

from __future__ import annotations

import posixpath

from ..._errors import UnsupportedError
from ...oci._record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

# cgroup v1 controllers the kernel may offer (Documentation/admin-guide/cgroup-v1/); named
# hierarchies such as "name=systemd" carry no controller and are not managed.
V1_CONTROLLERS = frozenset(
    {
        "blkio",
        "cpu",
        "cpuacct",
        "cpuset",
        "devices",
        "freezer",
        "hugetlb",
        "memory",
        "misc",
        "net_cls",
        "net_prio",
        "perf_event",
        "pids",
        "rdma",
    }
)


@record(frozen=True, kw_only=False)
class Hierarchy:
    """One mounted cgroup hierarchy: where it is mounted and which cgroup is the mount's root."""

    mountpoint: str
    root: str = "/"
    controllers: tuple[str, ...] = ()

    def directory(self, cgroup: str) -> str:
        """The directory of ``cgroup`` (a path from the hierarchy's root) under this mount."""
        rel = cgroup
        if self.root != "/" and (cgroup == self.root or cgroup.startswith(self.root + "/")):
            rel = cgroup[len(self.root) :] or "/"
        return posixpath.normpath(posixpath.join(self.mountpoint, rel.lstrip("/")))


@record(frozen=True, kw_only=False)
class Layout:
    """The host's cgroup layout.

    ``version`` is the driver to use: "v1" whenever any v1 controller hierarchy is mounted
    (also on "hybrid" hosts whose cgroup2 mount holds few or no controllers), else "v2".
    """

    version: Literal["v1", "v2"]
    mode: Literal["legacy", "hybrid", "unified"]
    v1: dict[str, Hierarchy] = field(default_factory=dict)
    unified: Hierarchy | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "mode": self.mode,
            "v1": {c: [h.mountpoint, h.root, list(h.controllers)] for c, h in sorted(self.v1.items())},
            "unified": None if self.unified is None else [self.unified.mountpoint, self.unified.root],
        }


def _unescape(text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo (fs/proc_namespace.c).
    if "\\" not in text:
        return text
    head, *escaped = text.split("\\")
    out = [head]
    for piece in escaped:
        code = piece[:3]
        if len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)) + piece[3:])
        else:
            out.append("\\" + piece)
    return "".join(out)


def parse_mountinfo(text: str) -> Layout:
    v1: dict[str, Hierarchy] = {}
    unified: Hierarchy | None = None
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 7:
            continue
        sep = fields.index("-")
        if len(fields) < sep + 4:
            continue
        fstype, super_options = fields[sep + 1], fields[sep + 3]
        root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
        if fstype == "cgroup2":
            if unified is None:
                unified = Hierarchy(mountpoint, root)
        elif fstype == "cgroup":
            controllers = tuple(sorted(o for o in super_options.split(",") if o in V1_CONTROLLERS))
            hierarchy = Hierarchy(mountpoint, root, controllers)
            for controller in controllers:
                # The first mount wins; later ones are bind mounts of the same hierarchy.
                v1.setdefault(controller, hierarchy)
    if v1:
        return Layout("v1", "hybrid" if unified is not None else "legacy", v1, unified)
    if unified is not None:
        return Layout("v2", "unified", {}, unified)
    raise UnsupportedError("no cgroup filesystem is mounted (neither cgroup v1 nor cgroup2 in /proc/self/mountinfo)")


def detect(mountinfo: str | None = None) -> Layout:
    """The layout of this process's mount namespace (or of the given mountinfo text)."""
    if mountinfo is None:
        from . import _fs

        mountinfo = _fs.read("/proc/self", "mountinfo")
    return parse_mountinfo(mountinfo)


@record(frozen=True, kw_only=False)
class Membership:
    """Where a process sits: v1 controller -> cgroup path, and its v2 (unified) path."""

    v1: dict[str, str]
    unified: str | None


def parse_proc_cgroup(text: str) -> Membership:
    v1: dict[str, str] = {}
    unified: str | None = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy_id, controllers, path = parts
        if hierarchy_id == "0" and controllers == "":
            unified = path
            continue
        for controller in controllers.split(","):
            if controller in V1_CONTROLLERS:
                v1[controller] = path
    return Membership(v1, unified)


def membership(pid: int | str = "self", proc: str = "/proc") -> Membership:
    with open(f"{proc}/{pid}/cgroup", encoding="utf-8") as f:
        return parse_proc_cgroup(f.read())
