"""The fast argument path of tcontainer-oci must return exactly what argparse returns, or defer."""

from __future__ import annotations

import pytest

from tinycontainer.cli.oci import _fastargs, build_parser

# Command lines the fast path must handle itself (podman's, conmon's and runc's usual shapes).
HANDLED = [
    ["state", "abc"],
    ["start", "abc"],
    ["pause", "abc"],
    ["resume", "abc"],
    ["kill", "abc"],
    ["kill", "abc", "9"],
    ["kill", "--all", "abc", "SIGKILL"],
    ["kill", "-a", "abc"],
    ["delete", "abc"],
    ["delete", "--force", "abc"],
    ["delete", "-f", "abc"],
    ["--root", "/run/x", "state", "abc"],
    ["--root=/run/x", "--debug", "--log", "/l", "--log-format", "json", "kill", "abc", "TERM"],
    ["--systemd-cgroup", "--rootless", "true", "--criu", "c", "-v", "start", "abc"],
    ["--root", "a", "--root", "b", "state", "abc"],  # argparse: the last one wins
    ["--log-format=text", "delete", "abc"],
    ["--root", "", "state", ""],
    ["create", "abc"],
    ["create", "--bundle", "/b", "--pid-file", "/p", "--console-socket", "/s", "abc"],
    ["create", "-b", "/b", "--no-pivot", "--no-new-keyring", "--preserve-fds", "3", "abc"],
    ["create", "--bundle=/b", "--preserve-fds=2", "abc"],
    ["create", "--preserve-fds", " 7 ", "abc"],
    ["run", "abc"],
    ["run", "--bundle", "/b", "-d", "--keep", "abc"],
    ["run", "--detach", "-b", "b", "abc"],
    ["state", "run"],
]

# Command lines left to argparse: help, abbreviations, odd forms and every error.
DEFERRED = [
    [],
    ["--help"],
    ["-h"],
    ["state", "--help"],
    ["state"],
    ["state", "a", "b"],
    ["kill", "a", "b", "c"],
    ["kill", "abc", "-a"],
    ["delete", "abc", "--force"],
    ["--ro", "/x", "state", "abc"],
    ["create", "--bund", "/b", "abc"],
    ["create", "-b/b", "abc"],
    ["create", "-b=/b", "abc"],
    ["create", "--bundle", "-x", "abc"],
    ["create", "--bundle"],
    ["create", "--preserve-fds", "x", "abc"],
    ["create", "--preserve-fds", "-1", "abc"],
    ["create", "--no-pivot=1", "abc"],
    ["run", "-dk", "abc"],
    ["--log-format", "xml", "state", "abc"],
    ["--debug=1", "state", "abc"],
    ["state", "--", "abc"],
    ["state", "-"],
    ["state", "--root", "/x", "abc"],
    ["list"],
    ["ps", "abc"],
    ["exec", "abc", "true"],
    ["spec"],
    ["features"],
    ["update", "--memory", "1m", "abc"],
    ["checkpoint", "abc"],
    ["frobnicate"],
]


@pytest.mark.parametrize("argv", HANDLED, ids=" ".join)
def test_fast_path_equals_argparse(argv: list[str]) -> None:
    fast = _fastargs.parse(argv)
    assert fast is not None, "the fast path deferred a plain command line"
    assert vars(fast) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", DEFERRED, ids=lambda a: " ".join(a) or "(empty)")
def test_fast_path_defers(argv: list[str]) -> None:
    assert _fastargs.parse(argv) is None


def test_every_fast_command_exists_in_argparse() -> None:
    parser = build_parser()
    for command in _fastargs._COMMANDS:
        # The full parser must accept each command the fast path knows, with the same defaults.
        fast = _fastargs.parse([command, "x"])
        assert fast is not None
        assert vars(fast) == vars(parser.parse_args([command, "x"]))
