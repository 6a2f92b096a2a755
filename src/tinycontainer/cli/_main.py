"""``tcontainer``: the everyday command line (docker-like, and the seed's flags).

Thin by design: parse, call the library (:mod:`tinycontainer._containers`,
:mod:`tinycontainer._monitor`), print. Each command's code is imported only when it runs, and
every error goes through :func:`tinycontainer.cli._exit.run_command` as one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from ._argv import SEED_FLAGS
from ._exit import LogTarget, run_command

VERSION = "0.1.0"

# docker's convention: `run`/`exec` report their own failures as 125 (126/127 for a command
# that cannot run), so that they differ from the container's own exit codes.
RUN_FAILED = 125


@dataclass(frozen=True)
class CommandInfo:
    summary: str
    function: str
    """name of the function in :mod:`._commands` (``cmd_<name>``)"""
    error_status: int = 1


COMMANDS: dict[str, CommandInfo] = {
    "run": CommandInfo("Run a command in a new container", "cmd_run", RUN_FAILED),
    "exec": CommandInfo("Run a command in a running container", "cmd_exec", RUN_FAILED),
    "attach": CommandInfo("Attach your terminal to a running container", "cmd_attach"),
    "cp": CommandInfo("Copy files between a container and the host", "cmd_cp"),
    "ps": CommandInfo("List containers", "cmd_ps"),
    "logs": CommandInfo("Show a container's output", "cmd_logs"),
    "stop": CommandInfo("Stop containers (stop signal, then SIGKILL)", "cmd_stop"),
    "start": CommandInfo("Start stopped containers (detached)", "cmd_start"),
    "restart": CommandInfo("Restart containers", "cmd_restart"),
    "kill": CommandInfo("Send a signal to containers", "cmd_kill"),
    "rm": CommandInfo("Remove containers", "cmd_rm"),
    "inspect": CommandInfo("Show containers as JSON", "cmd_inspect"),
    "wait": CommandInfo("Wait for containers to exit, print exit codes", "cmd_wait"),
    "pause": CommandInfo("Freeze containers", "cmd_pause"),
    "unpause": CommandInfo("Thaw containers", "cmd_unpause"),
    "stats": CommandInfo("Show resource usage", "cmd_stats"),
    "top": CommandInfo("Show a container's processes", "cmd_top"),
    "rename": CommandInfo("Rename a container", "cmd_rename"),
    "prune": CommandInfo("Remove all stopped containers", "cmd_prune"),
    "gc": CommandInfo("Clean up after containers whose monitor died", "cmd_gc"),
    "pull": CommandInfo("Pull an image", "cmd_pull"),
    "images": CommandInfo("List images", "cmd_images"),
    "rmi": CommandInfo("Remove images", "cmd_rmi"),
    "image": CommandInfo("Manage images: ls, pull, rm, inspect, prune, save, load", "cmd_image"),
    "save": CommandInfo("Write images to a tar archive (OCI layout + docker manifest.json)", "cmd_save"),
    "load": CommandInfo("Load images from a tar archive (OCI layout or docker save)", "cmd_load"),
    "login": CommandInfo("Store credentials for a registry", "cmd_login"),
    "logout": CommandInfo("Remove stored credentials for a registry", "cmd_logout"),
    "version": CommandInfo("Show the version", "cmd_version"),
    "info": CommandInfo("Show where state lives and what the host supports", "cmd_info"),
    "completion": CommandInfo("Print a bash or zsh completion script", "cmd_completion"),
}

ALIASES = {"container": None, "remove": "rm", "list": "ps", "ls": "ps", "unfreeze": "unpause"}


def usage() -> str:
    lines = [
        "usage: tcontainer [--root DIR] [--debug] COMMAND [OPTIONS] ...",
        "",
        "A small, fast, secure Linux container runtime.",
        "",
        "commands:",
    ]
    for name, info in COMMANDS.items():
        lines.append(f"  {name:<9} {info.summary}")
    lines += [
        "",
        "global options:",
        "  --root DIR   keep all state under DIR (default /var/lib/tcontainer + /run/tcontainer;",
        "               per-user directories when not root)",
        "  --debug      show a traceback for internal errors",
        "  --version    show the version",
        "",
        "examples:",
        "  tcontainer run --rm busybox echo hello",
        "  tcontainer run -it --rootfs /srv/rootfs -- /bin/sh",
        "  tcontainer run -d --name web -m 64m busybox httpd -f && tcontainer logs -f web",
        "",
        "Run 'tcontainer COMMAND --help' for a command's options.",
    ]
    return "\n".join(lines)


@dataclass
class Globals:
    root: str | None = None
    debug: bool = False


def split_globals(argv: list[str]) -> tuple[Globals, list[str]]:
    """Global options come before the command (``tcontainer --root DIR ps``)."""
    g = Globals()
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--root" and i + 1 < len(argv):
            g.root = argv[i + 1]
            i += 2
        elif token.startswith("--root="):
            g.root = token.partition("=")[2]
            i += 1
        elif token == "--debug":
            g.debug = True
            i += 1
        else:
            break
    return g, argv[i:]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    g, rest = split_globals(args)
    log = LogTarget(prog="tcontainer")
    if not rest or rest[0] in ("-h", "--help", "-help", "help"):
        if rest[1:] and rest[0] == "help":
            rest = [rest[1], "--help"]
        else:
            print(usage())
            return 0 if rest else 2
    if rest[0] in ("-v", "--version"):
        rest = ["version"]
    command = rest[0]
    # The seed had no command word: `tcontainer -name t1 -fs DIR ...` meant run.
    if command.partition("=")[0] in SEED_FLAGS and command != "-help":
        rest = ["run", *rest]
        command = "run"
    if command == "container" and len(rest) > 1:  # `tcontainer container ls`, docker's long form
        rest = rest[1:]
        command = rest[0]
    command = ALIASES.get(command) or command
    info = COMMANDS.get(command)
    if info is None:
        print(f"tcontainer: unknown command {command!r} (see tcontainer --help)", file=sys.stderr)
        return 2

    def dispatch() -> int:
        import importlib

        commands = importlib.import_module(f"{__package__}._commands")
        func: Callable[[Globals, list[str]], int] = getattr(commands, info.function)
        return func(g, rest[1:])

    return run_command(dispatch, log, error_status=info.error_status, debug=g.debug)
