"""Turning OCI ``linux.cgroupsPath`` into a cgroup path (from the hierarchy's root).

As runc's cgroupfs driver: no path -> a child of the caller's own cgroup; a relative path ->
beneath the caller's own cgroup; an absolute path -> from the hierarchy's root. A
``slice:prefix:name`` path belongs to the systemd driver, which tinycontainer does not have.
"""

from __future__ import annotations

import posixpath

from ..._errors import SpecError, UnsupportedError

FIELD = "linux.cgroupsPath"


def check_container_id(container_id: str) -> None:
    if not container_id or "/" in container_id or container_id in (".", "..") or "\0" in container_id:
        raise SpecError(f"container id {container_id!r} cannot name a cgroup", field="id")


def resolve(cgroups_path: str | None, container_id: str, own: str) -> str:
    """The container's cgroup path in a hierarchy where the caller sits in ``own``."""
    check_container_id(container_id)
    if cgroups_path is None or cgroups_path == "":
        return posixpath.join(own, f"tcontainer-{container_id}")
    if "\0" in cgroups_path:
        raise SpecError("contains a NUL byte", field=FIELD)
    # slice:prefix:name, runc's systemd form: exactly two colons and no slash.
    if "/" not in cgroups_path and cgroups_path.count(":") == 2:
        raise UnsupportedError(
            f"systemd cgroup driver is not supported (cgroupsPath {cgroups_path!r} has the form slice:prefix:name); "
            "use a cgroupfs path such as /machine/NAME"
        )
    if ".." in cgroups_path.split("/"):
        raise SpecError(f"{cgroups_path!r} must not contain '..'", field=FIELD)
    base = "/" if cgroups_path.startswith("/") else own
    # POSIX keeps a leading "//" in normpath; a cgroup path has one root.
    path = "/" + posixpath.normpath(posixpath.join(base, cgroups_path)).lstrip("/")
    if path == "/":
        raise SpecError(f"{cgroups_path!r} names the root cgroup", field=FIELD)
    if is_ancestor_or_self(path, own):
        # Writing limits to the caller's own cgroup (or its ancestors) would limit the caller
        # and cgroups it does not own; destroy could try to remove them.
        raise SpecError(f"{cgroups_path!r} is the caller's own cgroup {own!r} or one of its ancestors", field=FIELD)
    return path


def is_ancestor_or_self(path: str, other: str) -> bool:
    """True when cgroup ``path`` is ``other`` or one of its ancestors."""
    path = path.rstrip("/") or "/"
    other = other.rstrip("/") or "/"
    return other == path or path == "/" or other.startswith(path + "/")
