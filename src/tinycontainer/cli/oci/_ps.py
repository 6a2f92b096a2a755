"""``tcontainer-oci ps``: the container's processes, as pids (json) or as ps(1) lines."""

from __future__ import annotations

from ..._errors import SpecError
from ...oci import _json
from ._commands import runtime_from_args

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from .._exit import LogTarget


def cmd_ps(args: argparse.Namespace, log: LogTarget) -> int:
    pids = runtime_from_args(args).load(args.id).processes()
    if args.format == "json":
        print(_json.dumps(pids))
        return 0
    import subprocess

    ps_args = args.ps_args or ["-ef"]
    out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=False).stdout.splitlines()
    if not out:
        return 0
    header = out[0]
    print(header)
    try:
        pid_col = header.split().index("PID")
    except ValueError:
        raise SpecError("ps output has no PID column") from None
    wanted = set(pids)
    for line in out[1:]:
        fields = line.split()
        if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in wanted:
            print(line)
    return 0
