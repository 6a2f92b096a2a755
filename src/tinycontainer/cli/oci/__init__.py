"""``tcontainer-oci``: an OCI runtime with runc's command line.

Start-up is a hot path (podman and conmon call the runtime several times per container), so
this module imports only what every command needs; the hot commands' arguments are read by
:mod:`._fastargs` (argparse only for everything else), and each command's implementation is
imported on demand.
"""

from __future__ import annotations

import os
import sys

from .._exit import USAGE, LogTarget, run_command
from . import _fastargs

TYPE_CHECKING = False

if TYPE_CHECKING:
    import argparse
    from typing import NoReturn

VERSION = "0.1.0"
SPEC_VERSION = "1.2.0"


def build_parser() -> argparse.ArgumentParser:
    from ._parser import build_parser as build

    return build()


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status. Called without ``argv`` (the console script,
    ``python -m``), it is the whole program and ends the process itself (see
    :func:`exit_without_teardown`)."""
    if argv is None:
        exit_without_teardown(_main(sys.argv[1:]))
    return _main(argv)


def _main(args_list: list[str]) -> int:
    args = _fastargs.parse(args_list)
    if args is None:
        parser = build_parser()
        try:
            args = parser.parse_args(args_list)
        except SystemExit as exc:
            return int(exc.code or 0)
    log = LogTarget(args.log, args.log_format, prog="tcontainer-oci")
    if args.version:
        print(f"tcontainer-oci version {VERSION}\nspec: {SPEC_VERSION}")
        return 0
    if args.subcommand is None:
        build_parser().print_help()
        return USAGE

    def dispatch() -> int:
        from ...runtime._log import set_sink
        from . import _commands

        def warning(message: str) -> None:
            log.write("warning", message)
            print(f"tcontainer-oci: warning: {message}", file=sys.stderr)

        set_sink(warning)
        return _commands.dispatch(args, log)

    return run_command(dispatch, log, debug=args.debug)


def exit_without_teardown(status: int) -> NoReturn:
    """Leave without the interpreter's teardown (freeing every module and object: ~9 ms, as
    long as the container work of ``run``). Nothing of ours needs it: the commands close
    their files and start no threads or atexit handlers; only the stdio buffers are flushed."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        # A closed or broken stdout: Python's own exit would report it and fail as well.
        status = status or 1
    os._exit(status)


if __name__ == "__main__":
    main()
