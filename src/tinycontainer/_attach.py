"""Attaching a terminal (or plain stdio) to a container's monitor: the wire protocol, both ends.

The monitor (:mod:`._monitor`) stays between the container and whoever watches it, so that
everything the container prints also lands in its log, and so that any number of
``tcontainer attach`` processes can come and go. A client hands the monitor its own stdio file
descriptors (SCM_RIGHTS, unix(7)) over a SOCK_SEQPACKET control socket and then only waits: the
monitor writes the container's output straight to the client's stdout/stderr and reads the
client's stdin. EOF on the control socket (the client exited, even by SIGKILL) makes the
monitor drop the client's descriptors at once, so it never keeps reading a terminal that its
shell wants back.

Messages are JSON objects, one per datagram::

    client -> monitor   {"type": "attach", "stdin": bool, "detach_keys": [int, ...]}  + fds
                        {"type": "resize"}     (the client got SIGWINCH)
    monitor -> client   {"type": "attached", "tty": bool}  or  {"type": "error", "message": str}
                        {"type": "detached"}   (the detach keys were typed)
                        {"type": "exited", "code": int, "oom": bool, "memory_limit": int|None}

The socket lives in the container's bundle directory (mode 0700 under the 0700 run dir), so
only its owner (and root) can connect; it goes away with the bundle when the container exits.
Paths there can exceed sun_path's 108 bytes, hence bind/connect through ``/proc/self/fd/N``.
"""

from __future__ import annotations

import array
import contextlib
import errno
import json
import os
import signal
import socket
from dataclasses import dataclass
from types import FrameType
from typing import Any

from ._errors import StateError

SOCKET_NAME = "attach.sock"
MAX_MSG = 1 << 16
MAX_FDS = 3


def send_msg(sock: socket.socket, msg: dict[str, Any], fds: list[int] | None = None) -> None:
    payload = json.dumps(msg).encode()
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    # MSG_NOSIGNAL: a peer that went away must give EPIPE, not kill us with SIGPIPE.
    sock.sendmsg([payload], ancillary, socket.MSG_NOSIGNAL)


def recv_msg(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the fds it carried; (None, []) at EOF. Received fds are close-on-exec."""
    fds = array.array("i")
    data, ancdata, _flags, _addr = sock.recvmsg(MAX_MSG, socket.CMSG_SPACE(MAX_FDS * fds.itemsize),
                                                socket.MSG_CMSG_CLOEXEC)
    for level, ctype, cdata in ancdata:
        if level == socket.SOL_SOCKET and ctype == socket.SCM_RIGHTS:
            fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    try:
        msg = json.loads(data)
    except ValueError:
        msg = None
    if not isinstance(msg, dict):
        for fd in fds:
            os.close(fd)
        return {"type": "invalid"}, []
    return msg, list(fds)


def _via_dir(directory: str, op: Any) -> None:
    dfd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        op(f"/proc/self/fd/{dfd}/{SOCKET_NAME}")
    finally:
        os.close(dfd)


def listen(directory: str) -> socket.socket:
    """The monitor's listening socket in ``directory`` (replacing a stale one)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(directory, SOCKET_NAME))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    old = os.umask(0o077)
    try:
        _via_dir(directory, sock.bind)
    finally:
        os.umask(old)
    sock.listen(8)
    return sock


def connect(directory: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        _via_dir(directory, sock.connect)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
            raise StateError("the container's monitor does not accept attaches (is it running?)") from None
        raise
    return sock


class DetachScanner:
    """Finds the detach sequence in a client's input; holds back a partial match.

    Bytes that start the sequence are kept until the next byte shows whether the sequence
    goes on; if it does not, they are passed on after all (docker's behaviour)."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to pass to the container, whether the sequence is complete)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for i in range(len(data)):
            self.held += data[i : i + 1]
            while self.held and not self.keys.startswith(self.held):
                out += self.held[:1]
                self.held = self.held[1:]
            if self.held == self.keys:
                self.held = b""
                return bytes(out), True
        return bytes(out), False


@dataclass(frozen=True)
class Outcome:
    """How an attachment ended: the container exited (with ``code``), or the client detached."""

    detached: bool
    code: int = 0
    oom_killed: bool = False
    memory_limit: int | None = None


def wait_outcome(control: socket.socket, *, resize: bool) -> Outcome:
    """Wait on an attached control socket; with ``resize``, pass SIGWINCH on to the monitor."""
    previous = None
    if resize:

        def on_winch(_sig: int, _frame: FrameType | None) -> None:
            with contextlib.suppress(OSError):
                send_msg(control, {"type": "resize"})

        previous = signal.signal(signal.SIGWINCH, on_winch)
    try:
        while True:
            msg, fds = recv_msg(control)
            for fd in fds:
                os.close(fd)
            if msg is None:
                raise StateError("the container's monitor went away (see tcontainer gc)")
            kind = msg.get("type")
            if kind == "detached":
                return Outcome(detached=True)
            if kind == "exited":
                limit = msg.get("memory_limit")
                return Outcome(detached=False, code=int(msg.get("code", 255)), oom_killed=bool(msg.get("oom")),
                               memory_limit=int(limit) if limit is not None else None)
            if kind == "error":
                raise StateError(str(msg.get("message")))
    finally:
        if previous is not None:
            signal.signal(signal.SIGWINCH, previous)


def attach(directory: str, *, stdin: bool, detach_keys: bytes, tty_hint: bool) -> Outcome:
    """Attach this process's fds 0-2 to the container whose bundle is ``directory``.

    ``tty_hint``: the container has a terminal, so put ours into raw mode first (every key,
    Ctrl-C included, goes to the container; the detach keys are the way out)."""
    from .runtime._console import raw_terminal

    control = connect(directory)
    try:
        raw = raw_terminal(0) if tty_hint and stdin else contextlib.nullcontext(False)
        with raw:
            fds = [0, 1, 2] if stdin else [1, 2]
            send_msg(control, {"type": "attach", "stdin": stdin, "detach_keys": list(detach_keys)}, fds)
            msg, extra = recv_msg(control)
            for fd in extra:
                os.close(fd)
            if msg is None:
                raise StateError("the container's monitor went away (see tcontainer gc)")
            if msg.get("type") == "error":
                raise StateError(str(msg.get("message")))
            return wait_outcome(control, resize=bool(msg.get("tty")))
    finally:
        control.close()
