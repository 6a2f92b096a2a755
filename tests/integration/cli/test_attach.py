"""``attach`` (tty and plain), ``-d -i``, foreground runs in the log, the monitor's cmdline."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pexpect
from tests.integration.cli.conftest import TC


def _spawn(tc: TC, *args: str) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, [*tc.base[1:], *args], timeout=15, dimensions=(24, 80))


def _attach_shell(tc: TC, name: str) -> pexpect.spawn:
    child = _spawn(tc, "attach", name)
    # Attaching sets the pty's size: ash redraws its prompt on SIGWINCH and asks for the cursor
    # position (ESC[6n), eating what is typed meanwhile. Type only after the redraw.
    child.expect("\x1b\\[J")
    time.sleep(0.3)
    return child


def _inspect(tc: TC, name: str) -> dict[str, object]:
    return dict(json.loads(tc("inspect", name).stdout)[0])


def _wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_attach_to_a_detached_tty_detach_again_and_exit_status(tc: TC) -> None:
    tc("run", "-d", "-it", "--name", "sh1", "--rootfs", tc.rootfs, "--", "/bin/sh")
    # ash flushes typed-ahead input when it sets up line editing: wait for its first prompt.
    _wait_for(lambda: b"built-in commands" in tc("logs", "sh1").stdout)
    time.sleep(0.3)
    for round_ in range(2):  # detach keys work again after an attach
        child = _attach_shell(tc, "sh1")
        try:
            child.sendline(f"echo round-$((40+{round_}))")
            child.expect(f"round-{40 + round_}\r\n")
            child.setwinsize(33, 99)  # SIGWINCH -> resize message -> the monitor sets the pty's size
            time.sleep(0.3)
            child.sendline("stty size")
            child.expect("33 99")
            child.send("\x10\x11")
            child.expect(pexpect.EOF)
        finally:
            child.close(force=True)
        assert child.exitstatus == 0
        assert _inspect(tc, "sh1")["status"] == "running"
    # What the attached terminal saw is in the log too (a tty's output is logged as stdout).
    assert b"round-41" in tc("logs", "sh1").stdout
    child = _attach_shell(tc, "sh1")
    try:
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 3
    _wait_for(lambda: _inspect(tc, "sh1")["status"] == "exited")


def test_detached_interactive_without_tty_keeps_stdin_for_attach(tc: TC) -> None:
    # -d -i: the container's stdin is a pipe the monitor keeps; attach forwards into it.
    tc("run", "-d", "-i", "--name", "cat1", "--rootfs", tc.rootfs, "--", "/bin/sh", "-c",
       'while read line; do echo "got $line"; echo "err $line" >&2; done; echo stdin-closed')
    base = [*tc.base]
    with subprocess.Popen([*base, "attach", "cat1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as attach:
        assert attach.stdin is not None and attach.stdout is not None and attach.stderr is not None
        attach.stdin.write(b"one\n")
        attach.stdin.flush()
        assert attach.stdout.readline() == b"got one\n"
        assert attach.stderr.readline() == b"err one\n"  # stderr stays stderr without a tty
        attach.stdin.write(b"two\n\x10")  # a detach-key prefix is held back...
        attach.stdin.flush()
        assert attach.stdout.readline() == b"got two\n"
        attach.stdin.write(b"\x11")  # ...until the sequence is complete: detached
        attach.stdin.flush()
        assert attach.wait(timeout=10) == 0
    assert _inspect(tc, "cat1")["status"] == "running"
    # A second attach without stdin only watches.
    with subprocess.Popen([*base, "attach", "--no-stdin", "cat1"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as watcher:
        time.sleep(0.5)
        tc("exec", "cat1", "/bin/sh", "-c", "echo from-exec > /proc/1/fd/1")
        assert watcher.stdout is not None
        assert watcher.stdout.readline() == b"from-exec\n"
        tc("kill", "cat1")
        assert watcher.wait(timeout=10) == 137
    logs = tc("logs", "cat1")
    assert logs.stdout == b"got one\ngot two\nfrom-exec\n" and logs.stderr == b"err one\nerr two\n"


def test_attach_refuses_a_stopped_container(tc: TC) -> None:
    tc("run", "--name", "done1", "--rootfs", tc.rootfs, "--", "/bin/true")
    result = tc("attach", "done1", check=False)
    assert result.returncode == 1 and b"not running" in result.stderr


def test_foreground_run_is_logged_and_unchanged(tc: TC) -> None:
    result = tc("run", "--name", "fg1", "--rootfs", tc.rootfs, "--", "/bin/sh", "-c",
                "echo out1; echo err1 >&2; echo out2; exit 4", check=False)
    assert result.returncode == 4
    assert result.stdout == b"out1\nout2\n" and result.stderr == b"err1\n"
    logs = tc("logs", "fg1")
    assert logs.stdout == b"out1\nout2\n" and logs.stderr == b"err1\n"
    # stdin of a foreground -i run is still the caller's own.
    piped = tc("run", "--rm", "-i", "--rootfs", tc.rootfs, "--", "/bin/cat", input=b"via-stdin\n")
    assert piped.stdout == b"via-stdin\n"


def test_foreground_tty_run_is_logged(tc: TC) -> None:
    child = _spawn(tc, "run", "-it", "--name", "fgt", "--rootfs", tc.rootfs, "--", "/bin/sh")
    try:
        child.expect("# ")
        child.sendline("echo tty-$((6*7))")
        child.expect("tty-42\r\n")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert b"tty-42" in tc("logs", "fgt").stdout


def test_monitor_cmdline_names_the_container(tc: TC) -> None:
    cid = tc("run", "-d", "--name", "mon1", "-e", "SECRET=hunter2", "--rootfs", tc.rootfs, "--",
             "/bin/sleep", "30").stdout.strip().decode()
    monitor_pid = int(_inspect(tc, "mon1")["monitor_pid"])  # type: ignore[call-overload]
    with open(f"/proc/{monitor_pid}/cmdline", "rb") as f:
        cmdline = f.read().rstrip(b"\0")
    assert cmdline.startswith(b"tcontainer-monitor " + cid[:20].encode())
    assert b"hunter2" not in cmdline and b"--rootfs" not in cmdline
    tc("rm", "-f", "mon1")
