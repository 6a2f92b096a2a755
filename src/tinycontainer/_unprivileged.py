"""What ``tcontainer run`` and :func:`tinycontainer.run` change when the caller is not root.

* The user namespace maps the caller to root and its first /etc/subuid and /etc/subgid range
  to ids 1..N (the engine writes the maps with newuidmap/newgidmap, which check the ranges).
* Images run from a private flattened copy in the bundle (``_bundle.prepare_bundle``): the
  store's layers are overlay lowers made by root, and an unprivileged overlay mount would need
  layers unpacked for ``userxattr`` (overlayfs(5), "User xattr"), which the store does not
  produce. The copy costs disk and time per container, not correctness.
* Cgroup limits need a cgroup the caller may write (cgroup v2 delegation). Without one, a
  spec that asks for limits is refused (never run silently unlimited), and one that asks for
  none runs with a warning that nothing bounds it but the user's rlimits.

The engine-level pieces (subid parsing, state directory) live in ``runtime/_rootless.py``;
this module applies them to a :class:`~tinycontainer.Spec` and its OCI config.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ._errors import UnsupportedError

if TYPE_CHECKING:
    from . import oci
    from ._spec import Spec


def is_rootless() -> bool:
    return os.geteuid() != 0


def user_runtime_dir(euid: int | None = None, environ: Mapping[str, str] | None = None, tmp: str = "/tmp") -> str:
    """The caller's runtime directory: $XDG_RUNTIME_DIR, else /run/user/<uid> when it is
    the caller's, else a private /tmp/tcontainer-<uid>.

    The /tmp fallback is checked after mkdir: in a world-writable directory another user may
    have made that name first (a symlink or a directory of theirs) to catch our state. /tmp is
    sticky, so once the directory is ours nobody else can replace it."""
    uid = os.geteuid() if euid is None else euid
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isabs(xdg):
        return xdg
    per_user = f"/run/user/{uid}"
    try:
        if stat.S_ISDIR(os.lstat(per_user).st_mode) and os.lstat(per_user).st_uid == uid:
            return per_user
    except OSError:
        pass
    fallback = os.path.join(tmp, f"tcontainer-{uid}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(fallback, 0o700)
    st = os.lstat(fallback)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise UnsupportedError(
            f"{fallback} is not a private directory of uid {uid} (another user may have made it): "
            "set XDG_RUNTIME_DIR to a directory only you can write"
        )
    return fallback


def wanted_controllers(spec: Spec) -> list[str]:
    """The cgroup controllers the spec's limits need (empty: no limits asked)."""
    wanted = []
    if spec.memory is not None or spec.memory_swap is not None:
        wanted.append("memory")
    if spec.cpus is not None or spec.cpu_shares is not None:
        wanted.append("cpu")
    if spec.cpuset is not None:
        wanted.append("cpuset")
    if spec.pids is not None:
        wanted.append("pids")
    return wanted


def _limit_names(spec: Spec) -> list[str]:
    names = [("memory", spec.memory), ("memory_swap", spec.memory_swap), ("cpus", spec.cpus),
             ("cpu_shares", spec.cpu_shares), ("cpuset", spec.cpuset), ("pids", spec.pids)]
    return [name for name, value in names if value is not None]


def cgroup_problem(controllers: list[str]) -> str | None:
    """Why this caller cannot get a cgroup with ``controllers`` beneath its own, or None.

    The engine puts the container at ``<caller's cgroup>/tcontainer-<id>`` in each hierarchy,
    so the caller needs write access to its own cgroup directory there (mkdir) and, on v2,
    the controller enabled for its children (cgroup.controllers of the child = the parent's
    subtree_control; Documentation/admin-guide/cgroup-v2.rst, "Delegation")."""
    from .linux.cgroups import detect, membership

    try:
        layout = detect()
        own = membership("self")
    except (OSError, UnsupportedError) as exc:
        return f"cgroups cannot be used: {exc}"
    uid = os.geteuid()
    if layout.version == "v1":
        # cgroup v1 is never delegated to users by systemd; root could chown a subtree, so
        # check rather than assume.
        blocked = []
        for controller in controllers:
            hierarchy = layout.v1.get(controller)
            if hierarchy is None:
                blocked.append(f"{controller} (not mounted)")
                continue
            directory = hierarchy.directory(own.v1.get(controller, "/"))
            if not os.access(directory, os.W_OK):
                blocked.append(controller)
        if not blocked:
            return None
        which = ", ".join(blocked)
        return f"uid {uid} cannot write its cgroup v1 hierarchies ({which}); v1 is not delegated to users"
    assert layout.unified is not None
    directory = layout.unified.directory(own.unified or "/")
    if not os.access(directory, os.W_OK):
        return f"the cgroup {directory} is not delegated to uid {uid}"
    try:
        with open(os.path.join(directory, "cgroup.controllers"), encoding="ascii") as f:
            available = f.read().split()
    except OSError:
        available = []
    missing = [c for c in controllers if c not in available]
    if missing:
        return f"the cgroup {directory} has no {', '.join(missing)} controller for uid {uid}"
    return None


def check_spec(spec: Spec) -> None:
    """Refuse, before anything is made, what an unprivileged caller cannot have."""
    wanted = wanted_controllers(spec)
    if wanted:
        problem = cgroup_problem(wanted)
        if problem is not None:
            # Never run without a limit that was asked for: a memory or pids limit is often
            # the only thing between a runaway container and the host.
            raise UnsupportedError(
                f"resource limits ({', '.join(_limit_names(spec))}) cannot be enforced as an ordinary user: "
                f"{problem}; run without limits or as root"
            )


def no_limits_warning(spec: Spec) -> str | None:
    """The warning for a spec that asks for no limits on a host that could not enforce any."""
    if wanted_controllers(spec):
        return None
    problem = cgroup_problem(["memory", "pids"])
    if problem is None:
        return None
    return (
        f"running without cgroup limits: {problem}; nothing bounds the container's memory or "
        "processes except your own rlimits (RLIMIT_NPROC)"
    )


def add_subid_mappings(config: oci.Config) -> oci.Config:
    """Append the caller's first /etc/subuid and /etc/subgid range after id 0 (subuid(5)):
    with it, files and processes may belong to other ids inside (e.g. ``chown 1000``)."""
    from . import oci
    from .runtime._rootless import extra_mappings, user_name

    linux = config.linux
    if linux is None or not linux.uid_mappings or not linux.gid_mappings:
        return config
    uid = os.geteuid()
    name = user_name(uid)
    # Both files are keyed by user name or uid (subuid(5), subgid(5)), never by gid.
    for kind, maps in (("uid", linux.uid_mappings), ("gid", linux.gid_mappings)):
        if len(maps) == 1:
            maps.extend(oci.IDMapping(container_id=c, host_id=h, size=n) for c, h, n in extra_mappings(kind, uid, name))
    return config


__all__ = ["add_subid_mappings", "cgroup_problem", "check_spec", "is_rootless", "no_limits_warning",
           "user_runtime_dir", "wanted_controllers"]
