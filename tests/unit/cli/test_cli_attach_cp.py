"""attach's detach-key scanner, cp's argument rule and contained copying, completion, --help."""

from __future__ import annotations

import contextlib
import io
import os

import pytest

from tinycontainer._attach import DetachScanner
from tinycontainer._copy import copy_in, copy_out
from tinycontainer._errors import TinyContainerError
from tinycontainer.cli._commands import split_cp_arg
from tinycontainer.cli._completion import bash_script, command_options, zsh_script
from tinycontainer.cli._main import COMMANDS, main

# ----------------------------------------------------------------------------- detach keys


def test_detach_scanner_finds_the_sequence_across_reads() -> None:
    scanner = DetachScanner(b"\x10\x11")
    assert scanner.feed(b"ab\x10") == (b"ab", False)  # the prefix is held back
    assert scanner.feed(b"\x11rest") == (b"", True)


def test_detach_scanner_releases_a_prefix_that_goes_nowhere() -> None:
    scanner = DetachScanner(b"\x10\x11")
    assert scanner.feed(b"\x10") == (b"", False)
    assert scanner.feed(b"x") == (b"\x10x", False)
    assert scanner.feed(b"\x10\x10\x11") == (b"\x10", True)
    assert DetachScanner(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


# ----------------------------------------------------------------------------- cp arguments


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("web:/etc/hosts", ("web", "/etc/hosts")),
        ("web:", ("web", "/")),
        ("./web:x", (None, "./web:x")),
        ("/tmp/a:b", (None, "/tmp/a:b")),
        ("dir/a:b", (None, "dir/a:b")),
        ("plain", (None, "plain")),
    ],
)
def test_cp_argument_names_a_container_only_before_a_colon(arg: str, expected: tuple[str | None, str]) -> None:
    assert split_cp_arg(arg) == expected


# ----------------------------------------------------------------------------- contained copy


@pytest.fixture
def root_and_canary(tmp_path: object) -> tuple[str, str, int]:
    base = str(tmp_path)
    canary = os.path.join(base, "canary")
    os.makedirs(os.path.join(canary, "dir"))
    with open(os.path.join(canary, "secret"), "w") as f:
        f.write("HOST\n")
    root = os.path.join(base, "root")
    os.makedirs(os.path.join(root, "etc"))
    with open(os.path.join(root, "etc", "hostname"), "w") as f:
        f.write("box\n")
    os.symlink(os.path.join(canary, "secret"), os.path.join(root, "etc", "evil"))
    os.symlink(os.path.join(canary, "dir"), os.path.join(root, "evildir"))
    os.symlink("../../../../../../.." + canary, os.path.join(root, "reldir"))
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    return root, canary, fd


def test_copy_out_follows_links_only_inside_the_root(root_and_canary: tuple[str, str, int], tmp_path: object) -> None:
    _root, canary, fd = root_and_canary
    out = os.path.join(str(tmp_path), "out")
    try:
        copy_out(fd, "/etc/hostname", out)
        with open(out) as f:
            assert f.read() == "box\n"
        for hostile in ("/etc/evil", "/evildir/../secret", "/reldir/secret", "/../../../../" + canary + "/secret"):
            with pytest.raises(TinyContainerError):
                copy_out(fd, hostile, os.path.join(str(tmp_path), "stolen"), follow=True)
        assert not os.path.exists(os.path.join(str(tmp_path), "stolen"))
        copy_out(fd, "/etc", os.path.join(str(tmp_path), "etc-copy"))
        assert os.readlink(os.path.join(str(tmp_path), "etc-copy", "evil")) == os.path.join(canary, "secret")
    finally:
        os.close(fd)


def test_copy_in_never_writes_through_a_link(root_and_canary: tuple[str, str, int], tmp_path: object) -> None:
    root, canary, fd = root_and_canary
    payload = os.path.join(str(tmp_path), "payload")
    with open(payload, "w") as f:
        f.write("PAYLOAD\n")
    try:
        copy_in(fd, payload, "/etc/evil")  # replaces the link in the root
        with open(os.path.join(root, "etc", "evil")) as f:
            assert f.read() == "PAYLOAD\n"
        for target in ("/evildir/new", "/reldir/secret", "/evildir/"):
            with pytest.raises(TinyContainerError):
                copy_in(fd, payload, target)
        copy_in(fd, payload, "/etc/")
        assert os.path.isfile(os.path.join(root, "etc", "payload"))
    finally:
        os.close(fd)
    with open(os.path.join(canary, "secret")) as f:
        assert f.read() == "HOST\n"
    assert os.listdir(os.path.join(canary, "dir")) == []


def test_copy_out_strips_setuid_unless_archive(tmp_path: object) -> None:
    root = os.path.join(str(tmp_path), "root")
    os.makedirs(root)
    tool = os.path.join(root, "tool")
    with open(tool, "w") as f:
        f.write("x")
    os.chmod(tool, 0o4755)
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        copy_out(fd, "/tool", os.path.join(str(tmp_path), "plain"))
        copy_out(fd, "/tool", os.path.join(str(tmp_path), "kept"), archive=True)
    finally:
        os.close(fd)
    assert os.stat(os.path.join(str(tmp_path), "plain")).st_mode & 0o7777 == 0o755
    assert os.stat(os.path.join(str(tmp_path), "kept")).st_mode & 0o7777 == 0o4755


# ----------------------------------------------------------------------------- completion and help


def test_completion_scripts_list_every_command_and_their_options() -> None:
    script = bash_script()
    for name in COMMANDS:
        assert f"        {name}) opts=" in script
    assert "--detach-keys" in command_options("attach") and "--no-stdin" in command_options("attach")
    assert "--format" in command_options("ps")
    assert "complete -F _tcontainer tcontainer" in script
    assert zsh_script().startswith("#compdef tcontainer\n")


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"image"}))
def test_every_command_has_help_with_an_example(command: str) -> None:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        main([command, "--help"])
    text = buf.getvalue()
    assert "\nexamples:\n" in text and f"tcontainer {command}" in text.split("\nexamples:\n")[1]
