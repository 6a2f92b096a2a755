"""Attaching the caller's terminal to a container's pty (``run -t`` without a console socket).

The caller's terminal goes into raw mode so every key (Ctrl-C included) reaches the container
unchanged; its window size is copied at start and on each SIGWINCH; the original mode is
restored on every exit path.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import struct
import termios
import tty
from collections.abc import Iterator
from types import FrameType


def copy_winsize(src_fd: int, dst_fd: int) -> None:
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(src_fd, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        fcntl.ioctl(dst_fd, termios.TIOCSWINSZ, size)


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[bool]:
    if not os.isatty(fd):
        yield False
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)


def proxy(master_fd: int, stdin_fd: int = 0, stdout_fd: int = 1, detach_keys: bytes | None = None) -> str:
    """Copy stdin -> master and master -> stdout until the container side closes.

    Returns "exited" when the pty closed, "detached" when the detach sequence was typed."""
    stdin_open = True
    pending = b""
    previous = None
    if os.isatty(stdin_fd):
        copy_winsize(stdin_fd, master_fd)

        def on_winch(_sig: int, _frame: FrameType | None) -> None:
            copy_winsize(stdin_fd, master_fd)

        previous = signal.signal(signal.SIGWINCH, on_winch)
    try:
        with raw_terminal(stdin_fd):
            while True:
                readers = [master_fd] + ([stdin_fd] if stdin_open else [])
                try:
                    ready, _, _ = select.select(readers, [], [])
                except InterruptedError:
                    continue
                if master_fd in ready:
                    try:
                        data = os.read(master_fd, 65536)
                    except OSError as exc:
                        if exc.errno == errno.EIO:  # every slave fd closed: the container is gone
                            return "exited"
                        raise
                    if not data:
                        return "exited"
                    write_all(stdout_fd, data)
                if stdin_open and stdin_fd in ready:
                    data = os.read(stdin_fd, 65536)
                    if not data:
                        stdin_open = False
                        # End of input: send EOF (Ctrl-D) as a terminal would.
                        with contextlib.suppress(OSError):
                            os.write(master_fd, b"\x04")
                        continue
                    if detach_keys:
                        pending += data
                        if detach_keys in pending:
                            return "detached"
                        pending = pending[-(len(detach_keys) - 1) :] if len(detach_keys) > 1 else b""
                    write_all(master_fd, data)
    finally:
        if previous is not None:
            signal.signal(signal.SIGWINCH, previous)


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is out (a pipe or pty takes partial writes)."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        view = view[n:]
