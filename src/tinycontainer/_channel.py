"""Messages between the library and a container's monitor process: JSON over SOCK_SEQPACKET.

SOCK_SEQPACKET keeps message boundaries (unix(7)), so one ``send`` is one ``recv`` and no
framing is needed; EOF (an empty read) means the other side exited or closed its end, which is
how a monitor learns that the library process died. Errors cross as ``{"error": {...}}`` and
come back as the same :mod:`tinycontainer._errors` class.
"""

from __future__ import annotations

import errno as _errno
import json
import select
import socket
import time
from typing import Any

from . import _errors

MAX_MESSAGE = 1 << 20


class ChannelClosed(_errors.TinyContainerError):
    """The monitor (or the library side) went away."""


def pair() -> tuple[socket.socket, socket.socket]:
    # Non-inheritable by default (PEP 446): a later fork+exec never leaks them.
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        raise ChannelClosed("the other side of the channel is gone") from None


def recv(sock: socket.socket, timeout: float | None = None) -> dict[str, Any] | None:
    """One message, or None at EOF. ``timeout`` None waits forever; raises TimeoutError."""
    if timeout is not None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from the monitor in time")
            readable, _, _ = select.select([sock], [], [], left)
            if readable:
                break
    try:
        data = sock.recv(MAX_MESSAGE)
    except ConnectionResetError:
        return None
    if not data:
        return None
    message: dict[str, Any] = json.loads(data)
    return message


def encode_error(exc: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, _errors.SpecError):
        out["field"] = exc.field
        out["message"] = str(exc).removeprefix(f"{exc.field}: ") if exc.field else str(exc)
    if isinstance(exc, _errors.KernelError):
        out.update(errno=exc.errno, syscall=exc.syscall, path=exc.filename, detail=exc.detail)
    elif isinstance(exc, OSError):
        out.update(errno=exc.errno, path=exc.filename)
    if isinstance(exc, _errors.WrongStatus):
        out.update(container_id=exc.container_id, status=exc.status)
    if isinstance(exc, (_errors.ContainerNotFound, _errors.ContainerExists)):
        out["container_id"] = exc.container_id
    return out


def decode_error(data: dict[str, Any]) -> _errors.TinyContainerError:
    kind = str(data.get("type", ""))
    message = str(data.get("message", "the monitor failed"))
    if kind == "SpecError":
        return _errors.SpecError(message, field=data.get("field"))
    if kind == "KernelError" or (data.get("errno") is not None and kind not in vars(_errors)):
        return _errors.KernelError(
            int(data.get("errno") or _errno.EIO), str(data.get("syscall") or "monitor"), data.get("path"),
            data.get("detail"),
        )
    if kind in ("ContainerNotFound", "ContainerExists"):
        cls = getattr(_errors, kind)
        return cls(str(data.get("container_id", "")))  # type: ignore[no-any-return]
    if kind == "WrongStatus":
        err = _errors.WrongStatus(str(data.get("container_id", "")), str(data.get("status", "")), "")
        err.args = (message,)
        return err
    cls = getattr(_errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, _errors.TinyContainerError):
        try:
            return cls(message)
        except TypeError:
            pass
    return _errors.TinyContainerError(message)


__all__ = ["MAX_MESSAGE", "ChannelClosed", "decode_error", "encode_error", "pair", "recv", "send"]
