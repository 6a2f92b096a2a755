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
