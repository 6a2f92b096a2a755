"""``tcontainer-oci spec``: write a default config.json (runc's, with ``--rootless`` mappings)."""

from __future__ import annotations

import os

from ... import oci
from ..._errors import SpecError
from ._commands import warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from .._exit import LogTarget


def cmd_spec(args: argparse.Namespace, log: LogTarget) -> int:
    from ...oci._defaults import default_config

    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise SpecError(f"{path} already exists: remove it first")
    config = default_config(rootless=args.rootless)
    if args.rootless:
        _add_subid_mappings(config, log)
    with open(path, "w") as f:
        f.write(config.to_json(indent=2) + "\n")
    return 0


def _add_subid_mappings(config: oci.Config, log: LogTarget) -> None:
    """Map the caller's /etc/subuid and /etc/subgid range after root (runc spec --rootless maps
    only the caller; with a range, images that chown to other ids work). newuidmap(1) enforces
    the range at create time."""
    from ...runtime._rootless import extra_mappings, tun_problem, user_name

    linux = config.linux
    assert linux is not None
    name = user_name(os.geteuid())
    uid = os.geteuid()
    # Both files are keyed by user name or uid (subuid(5), subgid(5)), never by gid.
    for kind, maps in (("uid", linux.uid_mappings), ("gid", linux.gid_mappings)):
        extra = extra_mappings(kind, uid, name)
        if maps is not None:
            maps.extend(oci.IDMapping(container_id=c, host_id=h, size=n) for c, h, n in extra)
        if not extra and uid != 0:
            warn(log, f"no /etc/sub{kind} range for {name or uid}: only id 0 exists in the container")
    problem = tun_problem()
    if problem:
        warn(log, problem)
