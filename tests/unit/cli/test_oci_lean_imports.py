"""`tcontainer-oci` stays lean: podman and conmon start it several times per container, and
each stdlib package below costs milliseconds to import (typing ~8 ms with what it pulls in,
re ~3 ms, json ~1.5 ms, enum ~1.5 ms, ctypes ~3 ms...). The commands' own modules must not bring them
back."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import tinycontainer

SRC = os.path.dirname(os.path.dirname(tinycontainer.__file__))

HEAVY = {
    "typing", "re", "json", "enum", "signal", "contextlib", "functools", "collections", "socket", "selectors",
    "subprocess", "threading", "logging", "dataclasses", "inspect", "importlib", "warnings", "argparse",
    "tempfile", "shutil", "pathlib", "ctypes", "struct", "types",
}  # fmt: skip

# What each command imports: its implementation modules, as the dispatcher loads them.
COMMANDS = {
    "run": ["tinycontainer.cli.oci._commands", "tinycontainer.cli.oci._run", "tinycontainer.runtime._create"],
    "state/kill/delete/start": ["tinycontainer.cli.oci._commands", "tinycontainer.runtime._container"],
}


CONFIG = '{"ociVersion": "1.2.0", "root": {"path": "r"}, "process": {"args": ["true"], "cwd": "/"}}'


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_imports_no_heavy_stdlib_package(command: str) -> None:
    assert_lean(SRC, command)


def assert_lean(src: str, command: str) -> None:
    modules = ", ".join(["tinycontainer.cli.oci", *COMMANDS[command]])
    code = (
        f"import sys; sys.path[:0] = [{src!r}]; import {modules}; "
        "from tinycontainer.cli.oci import _fastargs; _fastargs.parse(['run', '--bundle', '.', 'x']); "
        "from tinycontainer.oci import Config; "
        f"Config.from_json({CONFIG!r}); "
        "print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "tinycontainer.runtime._container" in loaded  # the probe really imported the command
    assert sorted(loaded & HEAVY) == []


# Modules a command must not load through the real dispatcher: other commands' implementations
# and the engine's rarely used parts (each one costs a podman container start ~0.1 ms or more).
OTHER_COMMANDS = [
    "tinycontainer.cli.oci._exec",
    "tinycontainer.cli.oci._features",
    "tinycontainer.cli.oci._list",
    "tinycontainer.cli.oci._parser",
    "tinycontainer.cli.oci._pause",
    "tinycontainer.cli.oci._ps",
    "tinycontainer.cli.oci._spec",
    "tinycontainer.cli.oci._update",
]
RARE_ENGINE = [
    "tinycontainer.runtime._console",
    "tinycontainer.runtime._control",
    "tinycontainer.runtime._tenant",
    "tinycontainer.oci._defaults",
]
# The lifecycle commands read the store and /proc: no container building, no kernel seam.
NOT_FOR_LIFECYCLE = [
    "tinycontainer.cli.oci._run",
    "tinycontainer.linux._libc",
    "tinycontainer.linux._syscalls",
    "tinycontainer.oci._record",
    "tinycontainer.runtime._create",
    "tinycontainer.runtime._rootless",
]
NOT_LOADED = {
    "run": [*OTHER_COMMANDS, *RARE_ENGINE, "tinycontainer.runtime._signals"],
    "state": [*OTHER_COMMANDS, *RARE_ENGINE, *NOT_FOR_LIFECYCLE, "tinycontainer.runtime._signals"],
    "kill": [*OTHER_COMMANDS, *RARE_ENGINE, *NOT_FOR_LIFECYCLE],
    "delete": [*OTHER_COMMANDS, *RARE_ENGINE, *NOT_FOR_LIFECYCLE, "tinycontainer.runtime._signals"],
    "start": [*OTHER_COMMANDS, *RARE_ENGINE, *NOT_FOR_LIFECYCLE, "tinycontainer.runtime._signals"],
}


def loaded_by_command(argv: list[str], tmp_path: str) -> tuple[set[str], dict[str, bool]]:
    """The modules of a real ``tcontainer-oci`` command line, run through main() up to its
    first failure: a container that does not exist, or a bundle without config.json (run).
    Whatever the dispatcher and the command import at module level is loaded by then."""
    code = (
        f"import sys; sys.path[:0] = [{SRC!r}]; from tinycontainer.cli.oci import main; "
        f"status = main({['--root', tmp_path, *argv]!r}); "
        "from tinycontainer.runtime import _log; _log.set_sink(None); "
        "libc = sys.modules.get('tinycontainer.linux._libc'); "
        "print(status, ' '.join(sorted(sys.modules))); "
        "built = {} if libc is None else getattr(libc, '_LAZY_STRUCTS', vars(libc)); "
        "print('_BpfProgLoadAttr' in built, '_SockFprog' in built)"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    first, second = out.stdout.splitlines()
    bpf, seccomp = second.split()
    return set(first.split()[1:]), {"bpf": bpf == "True", "seccomp": seccomp == "True"}


COMMAND_LINES = {
    "run": ["run", "--bundle", "{tmp}", "lean-run"],
    "state": ["state", "lean-missing"],
    "kill": ["kill", "lean-missing", "KILL"],
    "delete": ["delete", "--force", "lean-missing"],
    "start": ["start", "lean-missing"],
}


@pytest.mark.parametrize("command", sorted(NOT_LOADED))
def test_command_loads_only_its_own_modules(command: str, tmp_path: object) -> None:
    tmp = str(tmp_path)
    argv = [a.format(tmp=tmp) for a in COMMAND_LINES[command]]
    loaded, libc_parts = loaded_by_command(argv, tmp)
    # The probe really went through the dispatcher into the command.
    assert "tinycontainer.cli.oci._commands" in loaded
    assert "tinycontainer.runtime._container" in loaded
    if command == "run":
        assert "tinycontainer.runtime._create" in loaded
    assert sorted(loaded & set(NOT_LOADED[command])) == []
    # bpf(2) is only for the cgroup v2 device filter, seccomp only with a filter in the config.
    assert libc_parts == {"bpf": False, "seccomp": False}
