"""Warm starts: a small, pre-imported fork server that forks one supervisor per container.

Why a separate server rather than forking the caller (:class:`~._launch.ForkLauncher`):

* fork(2) copies the caller's page tables: ~10 ms from a 12 MB process, 51 ms after +200 MB,
  179 ms after +1 GB (measured, docs/research performance.md). A server that only imported
  tinycontainer stays at ~20 MB, so each fork costs about a millisecond whatever the caller's size.
* fork(2) from a threaded caller copies locks other threads hold (the import lock, logging's,
  an allocator's) in their locked state; the child can deadlock on them (BenchExec issues
  #435/#656/#875). The server is started with :class:`subprocess.Popen` (fork+exec in C, then
  a fresh interpreter), never ``os.fork`` of the caller, and it is single-threaded itself.
* a supervisor forked from the caller imports the engine lazily (about 45 ms of imports per
  container); the server imports it once, then ``gc.freeze()`` keeps those objects out of the
  collector so the children do not touch (and copy) their pages.

Protocol (SOCK_SEQPACKET, unix(7)): the client sends ``{"stdio": [bool, bool, bool]}`` with
the channel end and the present stdio fds as SCM_RIGHTS; the server forks, the child puts them
on 0/1/2/3 and runs :func:`tinycontainer._supervisor.main`; the server answers ``{"pid": N}``
with a pidfd of the child (pidfd_open(2)), so the client can wait for and kill a process that
is not its own child without racing pid reuse. The server exits when the client's end closes
(the caller exited); supervisors then see EOF on their own channels and remove their containers.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Hashable
from typing import Any

from ._launch import StdioFds, Supervisor, _package_parent
from ._pool import Claimed, ContainerPool, Maker, StdioKinds

_MAX_FDS = 4
_REAP_INTERVAL = 0.5
# Everything a supervisor imports lazily, so each fork finds it already loaded.
PRELOAD_PACKAGES = ("tinycontainer.runtime", "tinycontainer.linux", "tinycontainer.oci")
PRELOAD_MODULES = ("tinycontainer._supervisor", "tinycontainer._bundle", "tinycontainer._result",
                   "tinycontainer._channel", "tinycontainer._launch")  # fmt: skip


class _WarmSupervisor(Supervisor):
    """A supervisor that is the server's child, not ours: waited for and killed by pidfd."""

    our_child = False

    def __init__(self, sock: socket.socket, pid: int, pidfd: int) -> None:
        super().__init__(sock, pid)
        self._pidfd = pidfd

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if self._pidfd < 0:
            self.returncode = 0
            return 0
        readable, _, _ = select.select([self._pidfd], [], [], 0)
        if readable:
            # Only its parent (the server) can read the status; 0 says "gone".
            self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        if self.poll() is not None:
            return self.returncode
        readable, _, _ = select.select([self._pidfd], [], [], timeout)
        return self.poll() if readable else None

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def close(self) -> None:
        super().close()
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1


class WarmLauncher:
    """A :class:`~tinycontainer._launch.Launcher` that forks supervisors from a fork server.

    The server starts on the first :meth:`launch` (or :meth:`start`) and stops with
    :meth:`close` or when this process exits. Safe to use from many threads; a launcher
    inherited by a forked child starts its own server there.

    ``pool_size=N`` keeps up to N containers created ahead for each spec that
    :func:`~tinycontainer.run` starts repeatedly with pooled stdio (``DEVNULL``/``PIPE``), so a
    start costs only the release of the waiting init; see :mod:`tinycontainer._pool`. Each run
    still gets a container of its own. :meth:`close` removes the pooled ones.
    """

    def __init__(self, python: str | None = None, *, pool_size: int = 0) -> None:
        if pool_size < 0:
            raise ValueError("pool_size must be >= 0")
        self.python = python or sys.executable
        self.pool_size = pool_size
        self._pool: ContainerPool | None = None
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._owner = 0

    def start(self) -> WarmLauncher:
        with self._lock:
            self._ensure_server()
        return self

    @property
    def server_pid(self) -> int | None:
        return self._popen.pid if self._popen is not None and self._owner == os.getpid() else None

    def _ensure_server(self) -> socket.socket:
        if self._sock is not None and self._owner == os.getpid() and self._popen is not None:
            if self._popen.poll() is None:
                return self._sock
            self._sock.close()
        elif self._sock is not None and self._owner != os.getpid():
            # Inherited through fork: the server belongs to our parent. Drop (do not close
            # cleanly: the parent still uses it) and start our own.
            self._sock = None
            self._popen = None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "from tinycontainer._warm import serve; serve(int(sys.argv[2]))"
        )
        try:
            self._popen = subprocess.Popen(
                [self.python, "-I", "-S", "-c", code, _package_parent(), str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=None,
                pass_fds=(theirs.fileno(),),
                close_fds=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours
        self._owner = os.getpid()
        return ours

    def launch(self, request: dict[str, Any], stdio: StdioFds) -> Supervisor:
        from . import _channel

        parent, child = _channel.pair()
        try:
            # None means "inherit" (like ForkLauncher): send our own 0/1/2 in its place.
            fds = [fd if fd is not None else i for i, fd in enumerate(stdio)]
            present = [_is_open(fd) for fd in fds]
            send_fds = [child.fileno(), *(fd for fd, ok in zip(fds, present, strict=True) if ok)]
            with self._lock:
                sock = self._ensure_server()
                try:
                    reply, pidfd = self._exchange(sock, {"stdio": present}, send_fds)
                except OSError:
                    # The server died (killed, OOM): one fresh try.
                    self._kill_server()
                    sock = self._ensure_server()
                    reply, pidfd = self._exchange(sock, {"stdio": present}, send_fds)
        finally:
            child.close()
        if "error" in reply:
            parent.close()
            from ._errors import TinyContainerError

            raise TinyContainerError(f"the fork server could not start a supervisor: {reply['error']}")
        return _WarmSupervisor(parent, int(reply["pid"]), pidfd).hand_over(request)

    @staticmethod
    def _exchange(sock: socket.socket, header: dict[str, Any], fds: list[int]) -> tuple[dict[str, Any], int]:
        socket.send_fds(sock, [json.dumps(header).encode()], fds)
        data, got, _, _ = socket.recv_fds(sock, 4096, 1)
        if not data:
            for fd in got:
                os.close(fd)
            raise ConnectionResetError("the fork server exited")
        reply: dict[str, Any] = json.loads(data)
        return reply, (got[0] if got else -1)

    def _kill_server(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._popen is not None:
            with contextlib.suppress(OSError):
                self._popen.kill()
            self._popen.wait()
            self._popen = None

    def claim_run(self, key: Hashable, make: Maker, kinds: StdioKinds, deadline: float | None) -> Claimed | None:
        """A started pooled container for ``key`` (see :class:`~tinycontainer._pool.ContainerPool`),
        or None (no pool, or none ready: the caller starts one on demand)."""
        if self.pool_size <= 0:
            return None
        with self._lock:
            pool = self._pool
            if pool is not None and pool.owner != os.getpid():
                pool.forget()  # inherited through fork: the parent's containers
                pool = None
            if pool is None:
                pool = self._pool = ContainerPool(self.launch, self.pool_size)
        return pool.claim(key, make, kinds, deadline)

    def wait_pool_ready(self, timeout: float = 30.0) -> bool:
        """Wait until every pooled container has been created (or has failed); False on
        timeout. For measurements that must not overlap with the pool's background work."""
        with self._lock:
            pool = self._pool
        return pool is None or pool.owner != os.getpid() or pool.wait_ready(timeout)

    def close(self) -> None:
        """Remove the pooled containers and stop the server (running containers are not
        affected: their supervisors stay)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            if pool.owner == os.getpid():
                pool.close()
            else:
                pool.forget()
        with self._lock:
            if self._owner != os.getpid():
                self._sock = None
                self._popen = None
                return
            if self._sock is not None:
                self._sock.close()  # EOF: the server exits
                self._sock = None
            if self._popen is not None:
                try:
                    self._popen.wait(5)
                except subprocess.TimeoutExpired:
                    self._popen.kill()
                    self._popen.wait()
                self._popen = None

    def __enter__(self) -> WarmLauncher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        # A server is a process of this host; a copy elsewhere starts its own.
        return (_new_launcher, (self.python, self.pool_size))


def _new_launcher(python: str, pool_size: int) -> WarmLauncher:
    return WarmLauncher(python, pool_size=pool_size)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


_shared: WarmLauncher | None = None
_shared_lock = threading.Lock()


def shared_launcher() -> WarmLauncher:
    """The process-wide warm launcher (its server starts on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = WarmLauncher()
        return _shared


def use_warm_starts(enabled: bool = True) -> None:
    """Make every later :func:`run`/:func:`create` start its container through the shared
    fork server (``enabled=False`` restores the automatic fork/spawn choice)."""
    from ._launch import set_default_launcher

    set_default_launcher(shared_launcher() if enabled else None)


# ---------------------------------------------------------------------------------------------
# the server process


def _preload() -> None:
    import importlib
    import pkgutil

    for name in PRELOAD_MODULES:
        importlib.import_module(name)
    for package_name in PRELOAD_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, package_name + "."):
            with contextlib.suppress(Exception):
                importlib.import_module(info.name)


def _ignore(_signum: int, _frame: Any) -> None:
    return None


def serve(control_fd: int) -> None:
    """Main loop of the fork server (runs in the fresh interpreter)."""
    import gc

    # ^C on the terminal reaches our process group; the client decides what happens.
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGHUP):
        signal.signal(sig, _ignore)
    control = socket.socket(fileno=control_fd)
    _preload()
    gc.collect()
    gc.freeze()
    children: set[int] = set()
    try:
        while True:
            _reap(children)
            readable, _, _ = select.select([control], [], [], _REAP_INTERVAL)
            if not readable:
                continue
            try:
                data, fds, _, _ = socket.recv_fds(control, 4096, _MAX_FDS)
            except ConnectionResetError:
                return
            if not data:
                return
            try:
                pid = _fork_supervisor(json.loads(data), fds)
            except Exception as exc:
                socket.send_fds(control, [json.dumps({"error": str(exc)}).encode()], [])
                continue
            finally:
                for fd in fds:
                    os.close(fd)
            children.add(pid)
            pidfd = os.pidfd_open(pid)
            try:
                socket.send_fds(control, [json.dumps({"pid": pid}).encode()], [pidfd])
            finally:
                os.close(pidfd)
    finally:
        _reap(children)
        os._exit(0)


def _fork_supervisor(header: dict[str, Any], fds: list[int]) -> int:
    from ._launch import _prepare_child_fds

    present = list(header["stdio"])
    channel, rest = fds[0], list(fds[1:])
    stdio: list[int | None] = [rest.pop(0) if ok else None for ok in present]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            if stdio[0] is None:
                stdio[0] = os.open(os.devnull, os.O_RDONLY)
            _prepare_child_fds(channel, (stdio[0], stdio[1], stdio[2]))
        except BaseException:
            os._exit(127)
        from ._supervisor import CHANNEL_FD, main

        main(CHANNEL_FD)
    return pid


def _reap(children: set[int]) -> None:
    for pid in list(children):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            children.discard(pid)


__all__ = ["PRELOAD_MODULES", "PRELOAD_PACKAGES", "WarmLauncher", "serve", "shared_launcher", "use_warm_starts"]
