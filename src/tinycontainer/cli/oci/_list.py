"""``tcontainer-oci list``: the stored containers, as a table, ids (-q) or JSON."""

from __future__ import annotations

from ...oci import _json
from ._commands import runtime_from_args

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from .._exit import LogTarget


def cmd_list(args: argparse.Namespace, log: LogTarget) -> int:
    rows = []
    for c in runtime_from_args(args).list():
        st = c.state()
        rows.append(
            {
                "ociVersion": st.oci_version,
                "id": c.id,
                "pid": st.pid,
                "status": st.status,
                "bundle": c.bundle,
                "rootfs": str(c._state.get("rootfs", "")),
                "created": c.created,
                "owner": _owner(str(c._state.get("owner", ""))),
            }
        )
    if args.quiet:
        for row in rows:
            print(row["id"])
    elif args.format == "json":
        print(_json.dumps(rows))
    else:
        fmt = "{:<20} {:<10} {:<10} {:<40} {:<31} {}"
        print(fmt.format("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"))
        for row in rows:
            print(fmt.format(row["id"], row["pid"], row["status"], row["bundle"], row["created"], row["owner"]))
    return 0


def _owner(uid: str) -> str:
    import pwd

    try:
        return pwd.getpwuid(int(uid)).pw_name
    except (KeyError, ValueError):
        return f"#{uid}"
