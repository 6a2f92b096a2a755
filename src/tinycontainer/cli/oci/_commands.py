"""The ``tcontainer-oci`` dispatcher: a command name -> the module that implements it, imported
alone (crun's layout: one source file per command), so that ``run`` does not load ``exec``'s
console proxy nor ``update``'s resource parser.

The four lifecycle commands podman and conmon send for every container (``state``, ``start``,
``kill``, ``delete``) live here: each is three lines over the engine, and a module of their own
would cost each call more to import (~70 µs of import machinery) than its code.
"""

from __future__ import annotations

import os
import sys

from ...runtime import DEFAULT_ROOT, Runtime

TYPE_CHECKING = False

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from .._exit import LogTarget

    Command = Callable[[argparse.Namespace, LogTarget], int]


def runtime_from_args(args: argparse.Namespace) -> Runtime:
    if args.systemd_cgroup:
        from ..._errors import UnsupportedError

        raise UnsupportedError("--systemd-cgroup is not supported: tinycontainer manages cgroupfs directly")
    return Runtime(args.root or _default_root())


def _default_root() -> str:
    if os.geteuid() == 0:
        return DEFAULT_ROOT
    # An ordinary user cannot write /run: $XDG_RUNTIME_DIR/tcontainer-oci, like runc.
    from ...runtime._rootless import default_root

    return default_root()


def warn(log: LogTarget, message: str) -> None:
    log.write("warning", message)
    print(f"{log.prog}: warning: {message}", file=sys.stderr)


def cmd_start(args: argparse.Namespace, log: LogTarget) -> int:
    runtime_from_args(args).load(args.id).start()
    return 0


def cmd_state(args: argparse.Namespace, log: LogTarget) -> int:
    from ...oci import _json

    state = runtime_from_args(args).load(args.id).state()
    print(_json.dumps(state.to_dict(), indent=2))
    return 0


def cmd_kill(args: argparse.Namespace, log: LogTarget) -> int:
    runtime_from_args(args).load(args.id).kill(args.signal, all_processes=args.all)
    return 0


def cmd_delete(args: argparse.Namespace, log: LogTarget) -> int:
    from ..._errors import ContainerNotFound

    try:
        container = runtime_from_args(args).load(args.id)
    except ContainerNotFound:
        if args.force:
            return 0  # runc: delete --force of a missing container succeeds
        raise
    container.delete(force=args.force)
    return 0


_HERE: dict[str, Command] = {"start": cmd_start, "state": cmd_state, "kill": cmd_kill, "delete": cmd_delete}

# command -> (module of this package, its function); the module is imported only for it.
COMMANDS: dict[str, tuple[str, str]] = {
    "create": ("_run", "cmd_create"),
    "run": ("_run", "cmd_run"),
    "pause": ("_pause", "cmd_pause"),
    "resume": ("_pause", "cmd_resume"),
    "ps": ("_ps", "cmd_ps"),
    "list": ("_list", "cmd_list"),
    "ls": ("_list", "cmd_list"),
    "spec": ("_spec", "cmd_spec"),
    "update": ("_update", "cmd_update"),
    "features": ("_features", "cmd_features"),
    "exec": ("_exec", "cmd_exec"),
}


def command(name: str) -> Command:
    """The function that runs command ``name`` (KeyError for an unknown one)."""
    here = _HERE.get(name)
    if here is not None:
        return here
    module_name, function = COMMANDS[name]
    # __import__, not importlib.import_module: importlib's package costs ~1 ms to import.
    module = __import__(module_name, globals(), None, [function], 1)
    found: Command = getattr(module, function)
    return found


def dispatch(args: argparse.Namespace, log: LogTarget) -> int:
    return command(args.subcommand)(args, log)
