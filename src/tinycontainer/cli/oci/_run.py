"""``tcontainer-oci create`` and ``run`` (create + start + wait, in the foreground, then delete)."""

from __future__ import annotations

import os

from ..._errors import suppressed
from ...runtime import Container, Runtime
from ...runtime._container import wait_exit as wait_exit
from ._commands import runtime_from_args, warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:
    # The C module under signal.py: same functions and constants, without the IntEnum
    # wrappers whose import (enum, functools) costs every runtime command ~3 ms.
    import _signal as signal

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from types import FrameType
    from typing import Any

    from .._exit import LogTarget

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def create_from_args(rt: Runtime, args: argparse.Namespace, **extra: Any) -> Container:
    """`create` and `run` share these options (runc's create flags)."""
    return rt.create(
        args.id,
        args.bundle,
        console_socket=args.console_socket,
        pid_file=args.pid_file,
        no_pivot=args.no_pivot,
        no_new_keyring=args.no_new_keyring,
        preserve_fds=args.preserve_fds,
        rootless=os.geteuid() != 0,
        **extra,
    )


def run(rt: Runtime, args: argparse.Namespace, after_create: Callable[[Container], None] | None = None) -> int:
    container = create_from_args(
        rt,
        args,
        subreaper=not args.detach,
        keep_console=not args.console_socket and not args.detach,
        detached=bool(args.detach),
    )
    if after_create is not None:
        after_create(container)
    console_fd: int | None = getattr(container, "console_fd", None)
    if args.detach:
        container.start(fresh_state=True)
        return 0
    pid = container.pid

    def forward(signum: int, _frame: FrameType | None) -> None:
        with suppressed(OSError):
            os.kill(pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        container.start(fresh_state=True)
        if console_fd is not None:
            from ...runtime._console import proxy  # termios/tty: only for a terminal

            proxy(console_fd)
            os.close(console_fd)
        status = wait_exit(pid)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not args.keep:
            with suppressed(Exception):
                container.delete(force=True, fresh_state=True)
    return status


def warn_rootless(container: Container, log: LogTarget) -> None:
    """Say when a rootless container got no cgroups (v1 is never delegated to users)."""
    if os.geteuid() == 0:
        return
    from ...runtime._rootless import cgroup_problem

    manager = container._manager()
    problem = cgroup_problem(manager.paths()) if manager is not None else None
    if problem:
        warn(log, problem)


def cmd_create(args: argparse.Namespace, log: LogTarget) -> int:
    warn_rootless(create_from_args(runtime_from_args(args), args), log)
    return 0


def cmd_run(args: argparse.Namespace, log: LogTarget) -> int:
    return run(runtime_from_args(args), args, lambda container: warn_rootless(container, log))
