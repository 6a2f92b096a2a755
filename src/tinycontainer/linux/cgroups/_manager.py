"""The driver-neutral interface, and choosing/restoring a driver."""

from __future__ import annotations

from ... import oci
from ..._errors import UnsupportedError
from ._layout import Hierarchy, Layout, detect, membership
from ._paths import resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol
else:
    # A Protocol is for the type checker only; importing typing costs a tcontainer-oci
    # command ~8 ms (it pulls in re, enum, functools and collections).
    Protocol = object

if TYPE_CHECKING:
    from ._stats import CgroupStats


class CgroupManager(Protocol):
    """One container's cgroup(s). Only directories it created are ever removed."""

    version: str

    def to_dict(self) -> dict[str, object]: ...
    def create(self) -> None: ...
    def apply(self, pid: int) -> None: ...
    def self_attach_paths(self) -> list[str] | None: ...
    def verify(self, pid: int) -> None: ...
    def set(self, resources: oci.Resources) -> None: ...
    def freeze(self) -> None: ...
    def thaw(self) -> None: ...
    def frozen(self) -> bool: ...
    def pids(self) -> list[int]: ...
    def kill_all(self, sig: int) -> None: ...
    def stats(self) -> CgroupStats: ...
    def destroy(self) -> None: ...
    def paths(self) -> dict[str, str]: ...


def create_manager(
    cgroups_path: str | None,
    container_id: str,
    *,
    layout: Layout | None = None,
    rootless: bool = False,
    proc: str = "/proc",
    enable_parent_controllers: bool = False,
) -> CgroupManager:
    """A manager for the container's cgroup; nothing is created until ``create()``.

    ``cgroups_path`` None -> ``<caller's cgroup>/tcontainer-<id>`` in each hierarchy; relative
    -> beneath the caller's cgroup; absolute -> from the hierarchy's root. ``proc`` is where
    /proc is (tests use a fake). ``enable_parent_controllers`` (v2): see :class:`V2Manager`.
    """
    if layout is None:
        layout = detect()
    own = membership("self", proc)
    # Each driver is imported when chosen: a host runs one of them, and each is ~30 kB of
    # bytecode to load on every runtime command.
    if layout.version == "v1":
        from ._v1 import V1Manager

        cgroups = {c: resolve(cgroups_path, container_id, own.v1.get(c, "/")) for c in layout.v1}
        return V1Manager(cgroups, dict(layout.v1), rootless=rootless, proc=proc)
    unified: Hierarchy | None = layout.unified
    if unified is None:
        raise UnsupportedError("no cgroup2 mount found")
    path = resolve(cgroups_path, container_id, own.unified or "/")
    from ._v2 import V2Manager

    return V2Manager(
        path,
        unified.mountpoint,
        mount_root=unified.root,
        rootless=rootless,
        proc=proc,
        enable_parent_controllers=enable_parent_controllers,
    )


def load_manager(saved: dict[str, object]) -> CgroupManager:
    """The manager ``to_dict()`` saved (in the container's state.json)."""
    version = saved.get("version")
    if version == "v1":
        from ._v1 import V1Manager

        return V1Manager.from_dict(saved)
    if version == "v2":
        from ._v2 import V2Manager

        return V2Manager.from_dict(saved)
    raise ValueError(f"unknown cgroup manager version {version!r}")
