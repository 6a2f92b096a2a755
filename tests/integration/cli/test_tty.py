"""``run -it``: a real pty, resize, Ctrl-C, exit status, detach keys."""

from __future__ import annotations

import sys
import time

import pexpect
from tests.integration.cli.conftest import TC


def _spawn(tc: TC, *args: str) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, [*tc.base[1:], *args], timeout=15, dimensions=(24, 80))


def test_interactive_shell_resize_ctrl_c_and_status(tc: TC) -> None:
    child = _spawn(tc, "run", "-it", "--rm", "--rootfs", tc.rootfs, "--", "/bin/sh")
    try:
        child.expect("# ")
        child.sendline("tty; stty size")
        child.expect("/dev/pts/0")
        child.expect("24 80")
        child.setwinsize(40, 120)  # SIGWINCH to tcontainer, which copies the size to the pty
        time.sleep(0.3)
        child.sendline("stty size")
        child.expect("40 120")
        child.sendline("sleep 30; echo NOT-INTERRUPTED")
        child.expect("sleep 30; echo NOT-INTERRUPTED\r\n")
        time.sleep(0.3)
        started = time.monotonic()
        child.sendintr()  # Ctrl-C: through the pty's line discipline to the foreground job
        child.expect("# ")
        assert time.monotonic() - started < 5
        assert b"NOT-INTERRUPTED" not in child.before
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 5


def test_detach_keys_leave_the_container_running(tc: TC) -> None:
    child = _spawn(tc, "run", "-it", "--name", "attached", "--rootfs", tc.rootfs, "--", "/bin/sh")
    try:
        child.expect("# ")
        child.sendline("echo before-detach")
        child.expect("before-detach\r\n")
        child.send("\x10\x11")  # ctrl-p ctrl-q
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert b"running" in tc("inspect", "attached").stdout
    out = tc("exec", "attached", "/bin/echo", "still-here").stdout
    assert out == b"still-here\n"
    tc("rm", "-f", "attached")
