"""``tcontainer-oci pause`` and ``resume``: freeze and thaw the container's cgroup."""

from __future__ import annotations

from ._commands import runtime_from_args

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from .._exit import LogTarget


def cmd_pause(args: argparse.Namespace, log: LogTarget) -> int:
    runtime_from_args(args).load(args.id).pause()
    return 0


def cmd_resume(args: argparse.Namespace, log: LogTarget) -> int:
    runtime_from_args(args).load(args.id).resume()
    return 0
