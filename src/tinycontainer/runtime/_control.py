"""The rarely used operations on a running container, all through its cgroup: pause/resume
(freezer), the process list, new limits, usage counters. :class:`~._container.Container`
delegates to these; ``create``/``start``/``state``/``kill``/``delete``, which podman calls for
every container, do not pay for importing them."""

from __future__ import annotations

import os

from .. import oci
from .._errors import TinyContainerError, UnsupportedError, WrongStatus
from ..linux import proc
from ._container import Status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._container import Container


def rootless_without_cgroups(mgr: Any) -> bool:
    """A rootless container whose cgroup directories could not all be made (v1 is never
    delegated to users): freezing and listing its processes by cgroup is impossible."""
    return bool(mgr.rootless) and not all(os.path.isdir(d) for d in mgr.paths().values())


def pause(container: Container) -> None:
    container.refresh()
    status = container.status
    if status not in (Status.RUNNING, Status.CREATED):
        raise WrongStatus(container.id, status.value, "running")
    mgr = container._manager()
    if mgr is None:
        raise TinyContainerError(f"container {container.id!r} has no cgroup to freeze")
    if rootless_without_cgroups(mgr):
        raise UnsupportedError(
            f"container {container.id!r} cannot be paused: it runs as an ordinary user without a freezer cgroup "
            "(cgroups are not delegated to this user)"
        )
    mgr.freeze()


def resume(container: Container) -> None:
    container.refresh()
    status = container.status
    if status != Status.PAUSED:
        raise WrongStatus(container.id, status.value, "paused")
    container._manager().thaw()


def processes(container: Container) -> list[int]:
    container.refresh()
    mgr = container._manager()
    if mgr is not None:
        pids: list[int] = mgr.pids()
        if pids:
            return pids
    if container.status in (Status.STOPPED, Status.CREATING):
        return []
    return proc.children_in_pidns(container.pid)


def update(container: Container, resources: oci.Resources) -> None:
    container.refresh()
    status = container.status
    if status == Status.STOPPED:
        raise WrongStatus(container.id, status.value, "created, running or paused")
    mgr = container._manager()
    if mgr is None:
        raise TinyContainerError(f"container {container.id!r} has no cgroup to update")
    mgr.set(resources)


def stats(container: Container) -> Any:
    mgr = container._manager()
    if mgr is None:
        raise TinyContainerError(f"container {container.id!r} has no cgroup")
    return mgr.stats()
