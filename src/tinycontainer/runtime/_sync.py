"""The parent <-> child protocol of ``create``: typed messages over a SOCK_SEQPACKET socketpair.

Each message is one datagram of JSON ``{"type": ..., ...}``; file descriptors (the pty master)
travel with it as SCM_RIGHTS. SEQPACKET keeps message boundaries and reports the peer's exit
as EOF, so a child that dies mid-setup is noticed at once instead of hanging the parent.

The ladder (numbers are the sync points both sides mark in their code)::

    parent (create)              intermediate                     init (pid 1 in the new pid ns)
    ---------------              ------------                     ------------------------------
    cgroup create + set, open each cgroup's tasks file (_create._open_tasks)
    fork ----------------------> setns(joined namespaces)
                                 unshare(CLONE_NEWUSER)?
      <-- (1) USERNS ----------- (only with a new user ns)
    write uid_map/gid_map
      --- (1) USERNS_DONE ----->
                                 unshare(other namespaces, PID, TIME)
                                 fork --------------------------->  waits until (2) is sent (a pipe
      <-- (2) PID {pid} -------- release the init, exit            from the intermediate), then:
    reap intermediate                                             non-dumpable, moves itself into
                                                                  its cgroups (the tasks files),
                                                                  keyring, mounts, cgroupns,
                                                                  /dev nodes, console
      <-- (4) CONSOLE + fd --------------------------------------  (only with process.terminal)
      <-- (5) HOOKS ---------------------------------------------  (only with prestart/createRuntime hooks)
    run prestart + createRuntime hooks
      --- (5) HOOKS_DONE --------------------------------------->  createContainer hooks
                                                                  pivot_root, masks, hostname, sysctl,
                                                                  rlimits, user, caps, [seccomp]
      <-- (6) READY ---------------------------------------------
    /proc/PID/cgroup checked,                                     wait on exec.fifo until ``start``
    state.json with the pid, pid file   (both staged at (2) JOINED for a direct init)
                                                                  startContainer hooks, [seccomp], execve

Without user, joined or time namespaces and with the init to be the caller's child (subreaper),
the parent forks the init itself (_create._fork_init): no intermediate and no (1); (2) is then
JOINED, sent by the init once it moved itself into its v1 cgroups, and the parent checks them and
stages the state with the init's pid while the init builds its mounts (renamed in after READY). On
cgroup v2 and rootless, the parent instead moves the init after (2) (manager.apply, with a
warm-up child, _create._start_migration_warmup) and sends (3) CGROUP_DONE, which the init waits
for before its first cgroup/cgroup2 mount and anything else that depends on its cgroups.

Between fork(2) and READY the parent does only what (1)-(5) ask of it (JOINED included): whatever waits for no
message is done before the fork or after READY (_create.create says why).

Any side may instead send ERROR {"message", "errno", "syscall", "path"} and exit; the parent
then kills the init (and whatever is in the container's cgroups: an init whose pid it never
learnt), removes the cgroup and the state directory (a failed create leaves nothing).
When the parent moves the init, between (2) and (3) the init works in parallel with it, so its
ERROR may also arrive in place of PID, or while the parent moves it (see :func:`raise_pending_error`).
"""

from __future__ import annotations

import os
import select
import sys

from .._errors import KernelError, TinyContainerError, suppressed
from ..linux import _libc
from ..oci import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

USERNS = "userns"
USERNS_DONE = "userns-done"
PID = "pid"
JOINED = "joined"
CGROUP_DONE = "cgroup-done"
CONSOLE = "console"
HOOKS = "hooks"
HOOKS_DONE = "hooks-done"
READY = "ready"
ERROR = "error"

_MAX = 1 << 16


class ChildFailed(TinyContainerError):
    """The container's setup failed in the child; the message is the child's."""

    def __init__(self, message: str, err: int = 0, syscall: str | None = None, path: str | None = None) -> None:
        self.errno = err
        self.syscall = syscall
        self.path = path
        super().__init__(message)


class Channel:
    """One end of the SOCK_SEQPACKET socketpair, as a bare fd.

    Not a ``socket.socket``: the socket module costs ~4 ms of every container start and is
    needed only to pass a descriptor (the pty master, see :func:`preload_fd_passing`). On a
    SEQPACKET socket, write(2) sends one datagram and read(2) receives one."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def set_inheritable(self, inheritable: bool) -> None:
        os.set_inheritable(self.fd, inheritable)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def socketpair() -> tuple[Channel, Channel]:
    parent, child = _libc.socketpair(_libc.AF_UNIX, _libc.SOCK_SEQPACKET | _libc.SOCK_CLOEXEC)
    return Channel(parent), Channel(child)


def preload_fd_passing() -> None:
    """Import what passing a descriptor needs. Call it before fork(2) when a child will send
    one (a terminal): a child must never import from disk once it may be inside the
    container's root (CVE-2019-14271)."""
    import array  # noqa: F401
    import socket  # noqa: F401


def _readable(sock: Channel, timeout: float | None) -> bool:
    """Wait until a message (or EOF: POLLHUP is always reported) is there; False on timeout."""
    if timeout is None:
        return True  # read(2) blocks
    poller = select.poll()
    poller.register(sock.fd, select.POLLIN)
    return bool(poller.poll(max(0, int(timeout * 1000))))


def send(sock: Channel, kind: str, fds: list[int] | None = None, **fields: Any) -> None:
    payload = _json.dumps({"type": kind, **fields}).encode()
    if fds:
        if "socket" not in sys.modules:  # a child must not import it from the container's root
            raise TinyContainerError("internal error: preload_fd_passing() was not called before fork")
        import array
        import socket

        carrier = socket.socket(fileno=sock.fd)
        try:
            carrier.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        finally:
            carrier.detach()  # the fd stays ours
    else:
        os.write(sock.fd, payload)


def recv(sock: Channel, expect: str, timeout: float | None = None) -> tuple[dict[str, Any], list[int]]:
    """Receive one message; raise ChildFailed on ERROR or EOF, and on an unexpected type."""
    if not _readable(sock, timeout):
        raise ChildFailed(f"container setup timed out waiting for {expect!r}")
    received: list[int] = []
    if expect == CONSOLE:  # the one message that carries a descriptor
        data, received = _recv_with_fds(sock)
    else:
        data = _read(sock)
    if not data:
        raise ChildFailed(f"container setup process exited unexpectedly (while waiting for {expect!r})")
    msg: dict[str, Any] = _json.loads(data)
    if msg.get("type") == ERROR:
        for fd in received:
            os.close(fd)
        raise _child_failed(msg)
    if msg.get("type") != expect:
        raise ChildFailed(f"protocol error: expected {expect!r}, got {msg.get('type')!r}")
    return msg, received


def _recv_with_fds(sock: Channel) -> tuple[bytes, list[int]]:
    import array
    import socket

    carrier = socket.socket(fileno=sock.fd)
    try:
        try:
            data, ancdata, _flags, _addr = carrier.recvmsg(_MAX, socket.CMSG_SPACE(4 * 4))
        except ConnectionResetError:  # see _read: the queued datagrams come after the error
            data, ancdata, _flags, _addr = carrier.recvmsg(_MAX, socket.CMSG_SPACE(4 * 4))
    finally:
        carrier.detach()
    fds = array.array("i")
    for level, ctype, cdata in ancdata:
        if level == socket.SOL_SOCKET and ctype == socket.SCM_RIGHTS:
            fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
    return data, list(fds)


def read_after_ready(sock: Channel, timeout: float) -> bytes:
    """What follows READY: EOF (b"") once execve(2) closed the O_CLOEXEC socket, else ERROR."""
    if not _readable(sock, timeout):
        raise ChildFailed("the container's process neither started nor failed in time")
    return _read(sock)


def _read(sock: Channel) -> bytes:
    """One datagram; b"" at EOF.

    When a peer exits with messages of ours still unread, the kernel marks our socket
    ECONNRESET (unix_release_sock), and the next recv(2) reports that error *before* the
    datagrams already queued for us (__skb_try_recv_datagram checks sock_error first). The
    error is consumed by that call, so read again: the child's ERROR message is usually there."""
    try:
        return os.read(sock.fd, _MAX)
    except ConnectionResetError:
        return os.read(sock.fd, _MAX) if _readable(sock, 0) else b""


def raise_pending_error(sock: Channel) -> None:
    """Raise the child's ERROR if it is already queued, without waiting.

    The init works in parallel with the parent between (2) and (3): when a step of the parent
    fails because the init has just died (its cgroup move, the send of CGROUP_DONE), the
    init's own message says why, not the parent's ESRCH or EPIPE."""
    try:
        data = _read(sock) if _readable(sock, 0) else b""
    except OSError:
        return
    if not data:
        return
    msg: dict[str, Any] = _json.loads(data)
    if msg.get("type") == ERROR:
        raise _child_failed(msg)


def _child_failed(msg: dict[str, Any]) -> ChildFailed:
    return ChildFailed(
        str(msg.get("message", "container setup failed")),
        int(msg.get("errno") or 0),
        msg.get("syscall"),
        msg.get("path"),
    )


def send_error(sock: Channel, exc: BaseException) -> None:
    fields: dict[str, Any] = {"message": str(exc) or type(exc).__name__}
    if isinstance(exc, KernelError):
        fields.update(errno=exc.errno, syscall=exc.syscall, path=exc.filename)
    elif isinstance(exc, OSError):
        fields.update(errno=exc.errno, path=exc.filename)
    with suppressed(OSError):
        send(sock, ERROR, **fields)
