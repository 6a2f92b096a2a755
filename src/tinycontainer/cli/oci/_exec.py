"""``tcontainer-oci exec``: a process from --process FILE or from the command line."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
from types import FrameType
from typing import TYPE_CHECKING

from ... import oci
from ..._errors import SpecError
from ...runtime import Runtime
from ...runtime._console import proxy
from ...runtime._create import write_pid_file
from ...runtime._tenant import exec_process
from ._commands import runtime_from_args
from ._run import FORWARDED, wait_exit

if TYPE_CHECKING:
    import argparse

    from .._exit import LogTarget


def parse_user(text: str) -> tuple[int, int | None]:
    """``uid[:gid]`` with numbers only: names would need the container's /etc/passwd, and a
    sloppy parse once ran processes as the wrong user (CVE-2026-30892)."""
    uid_text, sep, gid_text = text.partition(":")
    if not uid_text.isdigit() or (sep and not gid_text.isdigit()):
        raise SpecError(f"--user {text!r}: expected UID[:GID] as numbers")
    return int(uid_text), int(gid_text) if sep else None


def build_process(args: argparse.Namespace, config: oci.Config) -> oci.Process:
    if args.process:
        try:
            with open(args.process, "rb") as f:
                data = json.loads(f.read())
        except (OSError, ValueError) as exc:
            raise SpecError(f"cannot read process file {args.process}: {exc}") from None
        from ...oci._codec import from_json

        process: oci.Process = from_json(oci.Process, data, "process")
    else:
        if not args.command:
            raise SpecError("exec needs a command (or --process FILE)")
        base = config.process or oci.Process()
        process = copy.deepcopy(base)
        process.args = list(args.command)
        process.terminal = bool(args.tty)
        process.console_size = None
    if args.cwd:
        process.cwd = args.cwd
    if args.env:
        env = {item.partition("=")[0]: item for item in process.env or []}
        for item in args.env:
            if "=" not in item:
                raise SpecError(f"--env {item!r}: expected KEY=VALUE")
            env[item.partition("=")[0]] = item
        process.env = list(env.values())
    if args.user:
        uid, gid = parse_user(args.user)
        process.user = oci.User(uid=uid, gid=gid if gid is not None else 0, umask=process.user.umask)
    if args.additional_gids:
        process.user.additional_gids = [int(g) for g in args.additional_gids]
    if args.cap:
        caps = process.capabilities or oci.Capabilities()
        for field in ("bounding", "effective", "permitted"):
            current = list(getattr(caps, field) or [])
            current += [c for c in args.cap if c not in current]
            setattr(caps, field, current)
        process.capabilities = caps
    if args.no_new_privs:
        process.no_new_privileges = True
    if args.tty:
        process.terminal = True
    if process.terminal and args.detach and not args.console_socket:
        raise SpecError("--tty with --detach needs --console-socket")
    return process


def exec_command(rt: Runtime, args: argparse.Namespace) -> int:
    container = rt.load(args.id)
    process = build_process(args, container.config())
    result = exec_process(
        container,
        process,
        console_socket=args.console_socket,
        keep_console=process.terminal and not args.console_socket,
        subreaper=not args.detach,
        preserve_fds=args.preserve_fds,
        seccomp_cache=rt.seccomp_cache,
    )
    if args.pid_file:
        write_pid_file(args.pid_file, result.pid)
    if args.detach:
        return 0
    pid = result.pid

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        if result.console_fd is not None:
            proxy(result.console_fd)
            os.close(result.console_fd)
        return wait_exit(pid)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_exec(args: argparse.Namespace, log: LogTarget) -> int:
    return exec_command(runtime_from_args(args), args)
