"""The library's event loop for one supervisor: feed stdin, collect stdout/stderr, follow events.

Single-threaded like :meth:`subprocess.Popen.communicate`: one selector over the pipes and the
supervisor's channel. Used by :func:`tinycontainer.run` and :meth:`Container.exec`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from . import _channel
from ._launch import Supervisor

_PIPE_BUF = 512  # writes up to PIPE_BUF never block once poll says writable (pipe(7))
CLEANUP_TIMEOUT = 30.0


@dataclass
class Outcome:
    """What the supervisor reported."""

    created_pid: int | None = None
    started: bool = False
    exited: dict[str, Any] | None = None
    removed: bool = False
    error: dict[str, Any] | None = None
    cleanup_error: dict[str, Any] | None = None
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    timed_out: bool = False
    replies: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "created":
            self.created_pid = int(message["pid"])
        elif event == "started":
            self.started = True
            if "pid" in message:
                self.created_pid = int(message["pid"])
        elif event == "exited":
            self.exited = message
        elif event == "removed":
            self.removed = True
            self.cleanup_error = message.get("error")
        elif event == "error":
            self.error = message.get("error")
        elif event == "reply":
            self.replies.append(message)


def communicate(
    supervisor: Supervisor,
    parent_fds: list[int | None],
    input_data: bytes | None,
    deadline: float | None,
    outcome: Outcome | None = None,
    *,
    until_exited: bool = False,
) -> Outcome:
    """Run until the supervisor closed its channel and the output pipes hit EOF.

    At ``deadline`` the container is killed (``Outcome.timed_out``) and the loop goes on until
    the supervisor has cleaned up. The parent's pipe ends are closed on return. ``outcome``
    may hold events read before (a pooled container's ``created``). ``until_exited``: stop
    reading the channel at ``exited`` (whose usage was read before the removal), leaving the
    removal to whoever follows the supervisor further (a pool's background removals).
    """
    outcome = outcome if outcome is not None else Outcome()
    sel = selectors.DefaultSelector()
    stdin_fd, stdout_fd, stderr_fd = parent_fds
    sinks = {stdout_fd: outcome.stdout, stderr_fd: outcome.stderr}
    view = memoryview(input_data or b"")
    offset = 0
    try:
        sel.register(supervisor.sock, selectors.EVENT_READ, "channel")
        if stdin_fd is not None:
            if input_data:
                os.set_blocking(stdin_fd, False)
                sel.register(stdin_fd, selectors.EVENT_WRITE, "stdin")
            else:
                os.close(stdin_fd)
                parent_fds[0] = None
        for fd in (stdout_fd, stderr_fd):
            if fd is not None:
                sel.register(fd, selectors.EVENT_READ, "out")
        kill_sent_at: float | None = None
        while sel.get_map():
            timeout = None
            if deadline is not None and not outcome.timed_out:
                timeout = max(0.0, deadline - time.monotonic())
            elif kill_sent_at is not None:
                timeout = max(0.0, kill_sent_at + CLEANUP_TIMEOUT - time.monotonic())
            events = sel.select(timeout)
            for key, _ in events:
                if key.data == "channel":
                    message = supervisor.recv()
                    if message is None:
                        sel.unregister(supervisor.sock)
                    else:
                        outcome.apply(message)
                        if outcome.removed or (until_exited and outcome.exited is not None):
                            # Its last message: all that is left is its exit (finish_supervisor).
                            sel.unregister(supervisor.sock)
                elif key.data == "stdin":
                    fd = int(key.fd)
                    try:
                        offset += os.write(fd, view[offset : offset + _PIPE_BUF])
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        offset = len(view)
                    if offset >= len(view):
                        sel.unregister(fd)
                        os.close(fd)
                        parent_fds[0] = None
                else:
                    fd = int(key.fd)
                    try:
                        chunk = os.read(fd, 65536)
                    except OSError as exc:
                        if exc.errno != errno.EAGAIN:
                            chunk = b""
                        else:
                            continue
                    if chunk:
                        sinks[fd].extend(chunk)
                    else:
                        sel.unregister(fd)
            now = time.monotonic()
            if deadline is not None and not outcome.timed_out and now >= deadline and outcome.exited is None:
                outcome.timed_out = True
                kill_sent_at = now
                with contextlib.suppress(_channel.ChannelClosed, OSError):
                    supervisor.send({"cmd": "kill", "signal": int(signal.SIGKILL), "all": True, "reason": "wall-time"})
            if kill_sent_at is not None and now >= kill_sent_at + CLEANUP_TIMEOUT:
                break  # the supervisor hangs: the caller kills it and cleans up
    finally:
        sel.close()
        for i, fd in enumerate(parent_fds):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
                parent_fds[i] = None
    return outcome


def finish_supervisor(supervisor: Supervisor, timeout: float = CLEANUP_TIMEOUT, *, removed: bool = False) -> None:
    """Reap the supervisor; SIGKILL it if it does not exit in ``timeout``. ``removed``: it
    reported its container removed (its last word); one that is not our child (the fork
    server reaps it) is then left to exit on its own rather than waited for."""
    if not (removed and not supervisor.our_child) and supervisor.wait(timeout) is None:
        supervisor.kill()
        supervisor.wait()
    supervisor.close()


def abort(supervisor: Supervisor, cleanup: Any) -> None:
    """On an exception (KeyboardInterrupt included): tell the supervisor to remove everything,
    wait for it, then run ``cleanup`` (idempotent) in case it could not. A second ^C while
    this runs is held back until the cleanup is done."""
    interrupted: BaseException | None = None
    with contextlib.suppress(_channel.ChannelClosed, OSError):
        supervisor.send({"cmd": "remove"})
    deadline = time.monotonic() + CLEANUP_TIMEOUT
    while True:
        try:
            if supervisor.wait(max(0.0, deadline - time.monotonic())) is None:
                supervisor.kill()
                supervisor.wait()
            break
        except KeyboardInterrupt as exc:
            interrupted = exc
    supervisor.close()
    while True:
        try:
            cleanup()
            break
        except KeyboardInterrupt as exc:
            interrupted = exc
        except Exception:
            break
    if interrupted is not None:
        raise interrupted


__all__ = ["CLEANUP_TIMEOUT", "Outcome", "abort", "communicate", "finish_supervisor"]
