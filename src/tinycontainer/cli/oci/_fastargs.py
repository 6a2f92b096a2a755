"""A fast path for the command lines podman and conmon send on every container.

Building the full argparse parser costs ~10 ms per start (15 subparsers; argparse runs every
help string through gettext, which probes the locale directories, and imports shutil for the
terminal width): as much as the container work of ``run``. :func:`parse` reads the plain,
well-formed command lines of the hot commands itself and returns ``None`` for anything else
(``--help``, abbreviations, ``-bX``, an option after a positional, ``--``, a bad number, ...),
which then goes to argparse. So argparse stays the one authority on syntax and errors: this
module only ever returns what argparse would have returned for the same argv, which
tests/unit/cli/test_oci_fastargs.py checks against the full parser, case by case.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from argparse import Namespace
    from typing import Any

# Options of the top-level parser: option string -> (dest, takes a value).
_GLOBAL_OPTIONS: dict[str, tuple[str, bool]] = {
    "--root": ("root", True),
    "--log": ("log", True),
    "--log-format": ("log_format", True),
    "--debug": ("debug", False),
    "--systemd-cgroup": ("systemd_cgroup", False),
    "--rootless": ("rootless", True),
    "--criu": ("criu", True),
    "-v": ("version", False),
    "--version": ("version", False),
}
_GLOBAL_DEFAULTS: dict[str, Any] = {
    "root": None,
    "log": None,
    "log_format": "text",
    "debug": False,
    "systemd_cgroup": False,
    "rootless": "auto",
    "criu": None,
    "version": False,
}
_CHOICES = {"log_format": ("text", "json")}

_CREATE_OPTIONS: dict[str, tuple[str, bool]] = {
    "-b": ("bundle", True),
    "--bundle": ("bundle", True),
    "--console-socket": ("console_socket", True),
    "--pid-file": ("pid_file", True),
    "--no-pivot": ("no_pivot", False),
    "--no-new-keyring": ("no_new_keyring", False),
    "--preserve-fds": ("preserve_fds", True),
}
_CREATE_DEFAULTS: dict[str, Any] = {
    "bundle": ".",
    "console_socket": None,
    "pid_file": None,
    "no_pivot": False,
    "no_new_keyring": False,
    "preserve_fds": 0,
}
_INT_OPTIONS = frozenset({"preserve_fds"})

# command -> (options, option defaults, positionals as (dest, default or _REQUIRED))
_REQUIRED = object()
_COMMANDS: dict[str, tuple[dict[str, tuple[str, bool]], dict[str, Any], tuple[tuple[str, Any], ...]]] = {
    "create": (_CREATE_OPTIONS, _CREATE_DEFAULTS, (("id", _REQUIRED),)),
    "run": (
        {**_CREATE_OPTIONS, "-d": ("detach", False), "--detach": ("detach", False), "--keep": ("keep", False)},
        {**_CREATE_DEFAULTS, "detach": False, "keep": False},
        (("id", _REQUIRED),),
    ),
    "start": ({}, {}, (("id", _REQUIRED),)),
    "state": ({}, {}, (("id", _REQUIRED),)),
    "pause": ({}, {}, (("id", _REQUIRED),)),
    "resume": ({}, {}, (("id", _REQUIRED),)),
    "kill": (
        {"-a": ("all", False), "--all": ("all", False)},
        {"all": False},
        (("id", _REQUIRED), ("signal", "SIGTERM")),
    ),
    "delete": ({"-f": ("force", False), "--force": ("force", False)}, {"force": False}, (("id", _REQUIRED),)),
}



class _Parsed:
    """What argparse.Namespace is to the commands: the options as attributes (types'
    SimpleNamespace would do, but importing types costs this hot path ~0.2 ms)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

def _options(argv: list[str], i: int, known: dict[str, tuple[str, bool]], values: dict[str, Any]) -> int | None:
    """Consume the options at ``argv[i:]``; the index of the first other word, or None to defer."""
    while i < len(argv):
        word = argv[i]
        if not word.startswith("-"):
            return i
        name, eq, attached = word.partition("=")
        spec = known.get(name)
        if spec is None or (eq and (not spec[1] or not name.startswith("--"))):
            return None  # unknown, abbreviated, "--", "-bX", "--flag=x": argparse decides
        dest, takes_value = spec
        if not takes_value:
            values[dest] = True
            i += 1
            continue
        if eq:
            value = attached
            i += 1
        else:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                return None  # a missing value, or one argparse might read as an option
            value = argv[i + 1]
            i += 2
        if dest in _CHOICES and value not in _CHOICES[dest]:
            return None
        if dest in _INT_OPTIONS:
            try:
                values[dest] = int(value)  # argparse's type=int does exactly this
            except ValueError:
                return None
        else:
            values[dest] = value
    return i


def parse(argv: list[str]) -> Namespace | None:
    """The namespace argparse would return for ``argv``, or None to let argparse parse it."""
    values = dict(_GLOBAL_DEFAULTS)
    i = _options(argv, 0, _GLOBAL_OPTIONS, values)
    if i is None or i >= len(argv) or argv[i] not in _COMMANDS:
        return None
    command = argv[i]
    known, defaults, positionals = _COMMANDS[command]
    values["subcommand"] = command
    values.update(defaults)
    i = _options(argv, i + 1, known, values)
    if i is None:
        return None
    rest = argv[i:]
    # Only trailing positionals: an option between them is left to argparse, whose handling
    # of interleaved options and optional positionals has corner cases not worth copying.
    if len(rest) > len(positionals) or any(word.startswith("-") for word in rest):
        return None
    for index, (dest, default) in enumerate(positionals):
        if index < len(rest):
            values[dest] = rest[index]
        elif default is _REQUIRED:
            return None
        else:
            values[dest] = default
    namespace: Namespace = _Parsed(values)  # type: ignore[assignment]
    return namespace
