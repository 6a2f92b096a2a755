"""``tcontainer-oci update``: new cgroup limits, from --resources FILE and/or flags."""

from __future__ import annotations

import sys

from ... import oci
from ..._errors import SpecError
from ...oci import _json
from ._commands import runtime_from_args

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from .._exit import LogTarget


def _parse_bytes(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().rstrip("b")
    if t in ("-1", "max"):
        return -1
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def cmd_update(args: argparse.Namespace, log: LogTarget) -> int:
    if args.resources:
        if args.resources == "-":
            raw = sys.stdin.read()
        else:
            with open(args.resources) as f:
                raw = f.read()
        try:
            data = _json.loads(raw)
        except ValueError as exc:
            raise SpecError(f"resources file is not valid JSON: {exc}") from None
        resources = oci.resources_from_dict(data)
    else:
        resources = oci.Resources()
    if args.memory is not None or args.memory_swap is not None:
        resources.memory = resources.memory or oci.Memory()
        if args.memory is not None:
            resources.memory.limit = _parse_bytes(args.memory)
        if args.memory_swap is not None:
            resources.memory.swap = _parse_bytes(args.memory_swap)
    if any(
        v is not None for v in (args.cpu_shares, args.cpu_quota, args.cpu_period, args.cpuset_cpus, args.cpuset_mems)
    ):
        resources.cpu = resources.cpu or oci.CPU()
        for name in ("cpu_shares", "cpu_quota", "cpu_period"):
            value = getattr(args, name)
            if value is not None:
                setattr(resources.cpu, name[4:], value)
        if args.cpuset_cpus is not None:
            resources.cpu.cpus = args.cpuset_cpus
        if args.cpuset_mems is not None:
            resources.cpu.mems = args.cpuset_mems
    if args.pids_limit is not None:
        resources.pids = oci.Pids(limit=args.pids_limit)
    runtime_from_args(args).load(args.id).update(resources)
    return 0
