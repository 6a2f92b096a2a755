"""The monitor: a small process per library container, like conmon for podman.

Why a separate process: the container inherits the stdio of the process that creates it, and
its init must be the child of a subreaper that can wait(2) for it. Doing either in the caller
would clobber the caller's fds 0/1/2 (visible to its other threads) and change its
PR_SET_CHILD_SUBREAPER. The monitor has the container's stdio as its own 0/1/2, creates the
container with ``subreaper=True``, and then:

* waits for the init (pidfd, poll(2)) while serving commands from the library (start, kill,
  remove) over a SOCK_SEQPACKET channel (fd 3);
* enforces ``wall_time`` and the cgroup-wide ``cpu_time`` (RLIMIT_CPU is per process);
* after exit, reads the cgroup's counters (usage, OOM kills) *before* deleting the cgroup;
* removes the container and its bundle when told to, or on its own when ``autoremove`` is set,
  or when the channel hits EOF: the library process died, nothing else would clean up.

It never prints: its stdout/stderr belong to the container. Its own failures go over the
channel. This module imports ``runtime`` lazily so a fork server can preload it.

Requests (the first message)::

    {"mode": "run", "state_root", "id", "bundle", "autostart", "autoremove", "wall_time",
     "cpu_time", "seccomp_cache"}
    {"mode": "exec", "state_root", "id", "process": {...OCI process...}, "seccomp_cache"}

Events sent back: ``created {pid}``, ``started``, ``exited {status, usage, reason}``,
``removed``, ``error {error}``, ``reply {ok | error}`` (answer to a command). A pooled
container's ``created`` also carries the caller's pipe ends (SCM_RIGHTS) and ``release`` (its
state dir: the caller releases the init itself); the claim is then ``{"cmd": "claim", "at"}``
(its clock starts at ``at``) or ``{"cmd": "claim", "start": true}`` (we start it: poststart hooks).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from types import FrameType
from typing import Any, NoReturn

from . import _channel
from ._result import usage_from_stats

CHANNEL_FD = 3
CPU_POLL = 0.1
EMPTY_WAIT = 2.0


def main(channel_fd: int = CHANNEL_FD) -> NoReturn:
    """Entry point in the monitor process; never returns."""
    code = 0
    try:
        _quiet_signals()
        sock = socket.socket(fileno=channel_fd)
        request = _channel.recv(sock)
        if request is None:
            os._exit(0)
        if request.get("mode") == "exec":
            _ExecMonitor(sock, request).run()
        else:
            _RunMonitor(sock, request).run()
    except BaseException:
        code = 1
    os._exit(code)


def _quiet_signals() -> None:
    # The terminal's ^C reaches the whole foreground process group, us included; the library
    # side decides what happens (it gets KeyboardInterrupt and tells us to remove). A Python
    # handler rather than SIG_IGN: dispositions set to SIG_IGN survive execve(2) and the
    # container's processes would inherit them.
    def ignore(_signum: int, _frame: FrameType | None) -> None:
        return None

    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGHUP, signal.SIGPIPE):
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, ignore)


def _release_stdio() -> None:
    # The container has its own copies of our 0/1/2 now. Keeping ours would hold its pipes
    # open: a reader would see EOF only when this supervisor exits, not when the container's
    # processes are done with them.
    fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        for target in (0, 1, 2):
            os.dup2(fd, target, inheritable=False)
    finally:
        os.close(fd)


def _pool_stdio(kinds: list[str]) -> list[int]:
    """A pooled container's stdio, made here before it is created: "devnull", "pipe" or
    "stdout" (stderr joins stdout) for 0/1/2. Returns the pipes' other ends (stdin's write end,
    stdout's and stderr's read ends), which the caller receives when it claims the container,
    so the pipes are as new and as private as those of a container started on demand."""
    parent_ends: list[int] = []
    try:
        for index, kind in enumerate(kinds):
            if kind == "pipe":
                read_end, write_end = os.pipe()
                child, parent = (read_end, write_end) if index == 0 else (write_end, read_end)
                parent_ends.append(parent)
                os.dup2(child, index)
                os.close(child)
            elif kind == "stdout" and index == 2:
                os.dup2(1, 2)
            elif kind == "devnull":
                fd = os.open(os.devnull, os.O_RDONLY if index == 0 else os.O_WRONLY)
                os.dup2(fd, index)
                os.close(fd)
            else:
                raise ValueError(f"pool_stdio[{index}]: {kind!r}")
    except BaseException:
        for fd in parent_ends:
            os.close(fd)
        raise
    return parent_ends


PTY_DRAIN = 2.0


def _wants_terminal(bundle: str) -> bool:
    import json

    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            process = json.loads(f.read()).get("process") or {}
    except (OSError, ValueError):
        return False
    return bool(process.get("terminal"))


class _PtyPump:
    """Copies the caller's stdin into the container's pty and the pty's output to the caller's
    stdout, until the pty closes (every process holding its other end has exited: EIO)."""

    def __init__(self, master: int, stdin_fd: int, stdout_fd: int) -> None:
        import threading

        self.master = master
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.thread = threading.Thread(target=self._run, name="tc-pty", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def _run(self) -> None:
        import select

        from .runtime._console import write_all

        stdin_open = True
        try:
            while True:
                readers = [self.master] + ([self.stdin_fd] if stdin_open else [])
                ready, _, _ = select.select(readers, [], [])
                if self.master in ready:
                    try:
                        data = os.read(self.master, 65536)
                    except OSError:
                        return
                    if not data:
                        return
                    write_all(self.stdout_fd, data)
                if stdin_open and self.stdin_fd in ready:
                    data = os.read(self.stdin_fd, 65536)
                    if not data:
                        stdin_open = False
                        # End of input is Ctrl-D on a terminal (VEOF), as a typed EOF would be.
                        with contextlib.suppress(OSError):
                            os.write(self.master, b"\x04")
                        continue
                    write_all(self.master, data)
        except OSError:
            return
        finally:
            for fd in (self.master, self.stdin_fd, self.stdout_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)


class _Base:
    def __init__(self, sock: socket.socket, request: dict[str, Any]) -> None:
        from .runtime import Runtime

        self.sock = sock
        self.request = request
        self.runtime = Runtime(str(request["state_root"]))
        self.container_id = str(request["id"])
        self.seccomp_cache = request.get("seccomp_cache")
        self.parent_gone = False

    def send(self, message: dict[str, Any]) -> None:
        if self.parent_gone:
            return
        try:
            _channel.send(self.sock, message)
        except (_channel.ChannelClosed, OSError):
            self.parent_gone = True

    def fail(self, exc: BaseException) -> None:
        self.send({"event": "error", "error": _channel.encode_error(exc)})

    def wait_process(self, pid: int, on_tick: Any = None, deadline: float | None = None) -> int | None:
        """Serve commands until ``pid`` exits; returns its wait status, or None if it was not
        our child. ``on_tick`` runs every CPU_POLL seconds when set."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            pidfd = -1
        sel = selectors.DefaultSelector()
        try:
            if pidfd >= 0:
                sel.register(pidfd, selectors.EVENT_READ, "exit")
            if not self.parent_gone:
                sel.register(self.sock, selectors.EVENT_READ, "command")
            fired = False
            while pidfd >= 0:
                if deadline is None and not fired:
                    # A container started by a later command (create() + start(), a pooled one)
                    # gets its wall-time deadline only then.
                    deadline = self.late_deadline()
                timeout = None
                if on_tick is not None:
                    timeout = CPU_POLL
                if deadline is not None:
                    left = max(0.0, deadline - time.monotonic())
                    timeout = left if timeout is None else min(timeout, left)
                events = sel.select(timeout)
                # Commands first: a pooled container's claim (which starts its clock) is queued
                # before its init is released, so it is here by the time the init's exit is.
                for key, _ in events:
                    if key.data == "command":
                        message = _channel.recv(self.sock) if not self.parent_gone else None
                        if message is None:
                            self.parent_gone = True
                            sel.unregister(self.sock)
                            self.on_parent_gone()
                        else:
                            self.command(message)
                if any(key.data == "exit" for key, _ in events):
                    break
                if on_tick is not None:
                    on_tick()
                if deadline is not None and time.monotonic() >= deadline:
                    self.on_deadline()
                    deadline = None
                    fired = True
        finally:
            sel.close()
            if pidfd >= 0:
                os.close(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return None
        return status

    def command(self, message: dict[str, Any]) -> None:
        raise NotImplementedError

    def on_parent_gone(self) -> None:
        raise NotImplementedError

    def on_deadline(self) -> None:
        return None

    def late_deadline(self) -> float | None:
        return None


class _RunMonitor(_Base):
    def __init__(self, sock: socket.socket, request: dict[str, Any]) -> None:
        super().__init__(sock, request)
        self.bundle = str(request["bundle"])
        self.container: Any = None
        self.started_at: float | None = None
        self.limit_hit: str | None = None
        self.remove_requested = False
        self.cpu_time = request.get("cpu_time")
        self.wall_time = request.get("wall_time")
        self.pool_ends: list[int] | None = None
        self.pooled = False
        # Its cgroup driver, loaded once: the counters after the exit are on the result's path.
        self.cgroup: Any = None

    # -- lifecycle ------------------------------------------------------------------------------
    def run(self) -> None:
        tty = bool(self.request["terminal"]) if "terminal" in self.request else _wants_terminal(self.bundle)
        try:
            if self.request.get("pool_stdio") is not None:
                self.pool_ends = _pool_stdio(list(self.request["pool_stdio"]))
            self.container = self.runtime.create(
                self.container_id,
                self.bundle,
                subreaper=True,
                seccomp_cache=self.seccomp_cache,
                # As non-root: id maps through newuidmap/newgidmap, cgroups only where writable.
                rootless=os.geteuid() != 0,
                # Spec(tty=True): the pty master comes back to us instead of a console socket.
                keep_console=tty,
                detached=not tty,
            )
        except BaseException as exc:
            self.fail(exc)
            self.cleanup()
            return
        try:
            cgroup = self.container.cgroup()
            # Rootless without delegated cgroups: processes() knows the fallback.
            self.cgroup = cgroup if cgroup is not None and not cgroup.rootless else None
        except Exception:
            self.cgroup = None
        pump = None
        if tty:
            # The container's stdio is the pty: copy between it and the caller's stdio (our 0/1,
            # duplicated before _release_stdio replaces them).
            pump = _PtyPump(self.container.console_fd, os.dup(0), os.dup(1))
        _release_stdio()
        if pump is not None:
            pump.start()
        if self.pool_ends is not None:
            self.send_created_pooled()
            self.rehearse_finish()
        else:
            self.send({"event": "created", "pid": self.container.pid})
        if self.request.get("autostart"):
            self.start()
        status = self.wait_process(
            self.container.pid,
            on_tick=self.check_cpu if self.cpu_time else None,
            deadline=self.wall_deadline(),
        )
        if pump is not None:
            pump.join(PTY_DRAIN)
        self.finish(status)
        if not self.request.get("autoremove"):
            self.wait_for_remove()
        self.cleanup()

    def wall_deadline(self) -> float | None:
        if self.wall_time is None or self.started_at is None:
            return None
        return self.started_at + float(self.wall_time)

    def late_deadline(self) -> float | None:
        return self.wall_deadline()

    def send_created_pooled(self) -> None:
        """A pooled container: "created" carries the parent ends of its pipes (SCM_RIGHTS,
        unix(7)) and, unless it has poststart hooks, its state dir for the caller to release
        the init itself at the claim (``runtime.release_init``): no round trip through us.
        Until the claim reads it, the message and its fds wait in the caller's socket, in no
        process's fd table, so no fork of the caller can hold a copy of the container's stdin."""
        ends, self.pool_ends = self.pool_ends or [], []
        self.pooled = True
        release = None if self.container.has_hooks("poststart") else self.container.state_dir
        message = {"event": "created", "pid": self.container.pid, "release": release}
        try:
            socket.send_fds(self.sock, [json.dumps(message).encode()], ends)
        except OSError:
            # Nobody will claim it: without this its init would wait for a start forever.
            self.parent_gone = True
            self.kill_all()
        finally:
            for fd in ends:
                os.close(fd)

    def rehearse_finish(self) -> None:
        """Run what follows the exit once ahead, while the container waits in its pool: the
        first run of that code in this forked process pays copy-on-write faults on the pages
        it touches (reference counts live in the objects), and the result waits on it."""
        with contextlib.suppress(Exception):
            if self.cgroup is not None:
                self.cgroup.pids()
            json.dumps({"usage": usage_from_stats(self.stats(), 0.0).to_dict()}, separators=(",", ":"))

    def claim(self, message: dict[str, Any]) -> None:
        """A pooled container's caller took it and released its init (``at``: when, on the
        shared CLOCK_MONOTONIC), or asks us to start it (``start``: it has poststart hooks)."""
        if not self.pooled:
            self.send(
                {
                    "event": "reply",
                    "ok": False,
                    "error": {"type": "TinyContainerError", "message": "not a pooled container"},
                }
            )
            return
        if message.get("start"):
            self.start()
        elif self.started_at is None:
            at = message.get("at")
            now = time.monotonic()
            self.started_at = min(float(at), now) if isinstance(at, (int, float)) else now

    def start(self) -> None:
        if self.started_at is not None:
            self.send({"event": "reply", "ok": True})
            return
        try:
            self.container.start()
        except BaseException as exc:
            self.fail(exc)
            self.kill_all()
            return
        self.started_at = time.monotonic()
        self.send({"event": "started"})

    def command(self, message: dict[str, Any]) -> None:
        cmd = message.get("cmd")
        if cmd == "start":
            self.start()
        elif cmd == "claim":
            self.claim(message)
        elif cmd == "kill":
            sig = int(message.get("signal", signal.SIGKILL))
            if message.get("reason"):
                self.limit_hit = str(message["reason"])
            try:
                self.container.kill(sig, all_processes=bool(message.get("all")))
                self.send({"event": "reply", "ok": True})
            except BaseException as exc:
                self.send({"event": "reply", "ok": False, "error": _channel.encode_error(exc)})
        elif cmd == "remove":
            self.remove_requested = True
            self.kill_all()
        else:
            self.send(
                {
                    "event": "reply",
                    "ok": False,
                    "error": {"type": "TinyContainerError", "message": f"unknown command {cmd!r}"},
                }
            )

    def on_parent_gone(self) -> None:
        self.kill_all()

    def on_deadline(self) -> None:
        if self.started_at is not None and self.wall_time is not None:
            self.limit_hit = self.limit_hit or "wall-time"
            self.kill_all()

    def check_cpu(self) -> None:
        if self.started_at is None or self.limit_hit is not None:
            # The deadline only starts with the container; set it on the first tick after start.
            return
        try:
            used = self.stats().cpu_usage_ns
        except Exception:
            return
        if used is not None and self.cpu_time is not None and used >= float(self.cpu_time) * 1e9:
            self.limit_hit = "cpu-time"
            self.kill_all()

    def kill_all(self) -> None:
        with contextlib.suppress(Exception):
            self.container.kill(signal.SIGKILL, all_processes=True)
        with contextlib.suppress(Exception):
            self.container.kill(signal.SIGKILL)

    # -- after exit -----------------------------------------------------------------------------
    def finish(self, status: int | None) -> None:
        ended = time.monotonic()
        self.wait_empty()
        usage = None
        try:
            usage = usage_from_stats(self.stats(), ended - (self.started_at or ended))
        except Exception:
            usage = None
        returncode = os.waitstatus_to_exitcode(status) if status is not None else -signal.SIGKILL
        self.send(
            {
                "event": "exited",
                "returncode": returncode,
                "reason": self.reason(returncode, usage),
                "usage": usage.to_dict() if usage is not None else None,
                "started": self.started_at is not None,
            }
        )

    def stats(self) -> Any:
        return self.cgroup.stats() if self.cgroup is not None else self.container.stats()

    def reason(self, returncode: int, usage: Any) -> str:
        if usage is not None and usage.oom_kills:
            return "oom"
        if self.limit_hit == "cpu-time" or returncode == -signal.SIGXCPU:
            return "cpu-time"
        if (
            self.cpu_time is not None
            and usage is not None
            and usage.cpu_time is not None
            and usage.cpu_time >= float(self.cpu_time)
        ):
            return "cpu-time"
        if self.limit_hit == "wall-time":
            return "wall-time"
        if returncode < 0:
            return "killed"
        return "exited"

    def wait_empty(self) -> None:
        # SIGKILL of a pid namespace's init kills the rest (pid_namespaces(7)), but they need a
        # moment to go; counters are final only once the cgroup is empty.
        deadline = time.monotonic() + EMPTY_WAIT
        while time.monotonic() < deadline:
            try:
                if not (self.cgroup.pids() if self.cgroup is not None else self.container.processes()):
                    return
            except Exception:
                return
            time.sleep(0.005)

    def wait_for_remove(self) -> None:
        while not self.parent_gone and not self.remove_requested:
            message = _channel.recv(self.sock)
            if message is None:
                self.parent_gone = True
                return
            cmd = message.get("cmd")
            if cmd == "remove":
                return
            if cmd == "start" and self.started_at is None:
                from ._errors import WrongStatus

                err = WrongStatus(self.container_id, "stopped", "created")
                self.send({"event": "reply", "ok": False, "error": _channel.encode_error(err)})
            elif cmd == "kill":
                # Like runc: signalling a stopped container is an error the caller may ignore.
                from ._errors import WrongStatus

                err = WrongStatus(self.container_id, "stopped", "created, running or paused")
                self.send({"event": "reply", "ok": False, "error": _channel.encode_error(err)})
            else:
                self.send({"event": "reply", "ok": True})

    def cleanup(self) -> None:
        from ._bundle import remove_bundle

        error: BaseException | None = None
        if self.container is not None:
            try:
                self.container.delete(force=True)
            except BaseException as exc:
                error = exc
        else:
            # create() failed: it already removed its state; make sure.
            with contextlib.suppress(Exception):
                self.runtime.load(self.container_id).delete(force=True)
        try:
            remove_bundle(self.bundle)
        except BaseException as exc:
            error = error or exc
        if error is not None:
            self.send({"event": "removed", "error": _channel.encode_error(error)})
        else:
            self.send({"event": "removed"})


class _ExecMonitor(_Base):
    def __init__(self, sock: socket.socket, request: dict[str, Any]) -> None:
        super().__init__(sock, request)
        self.pid = 0

    def run(self) -> None:
        from . import oci
        from .oci._codec import from_json
        from .runtime._tenant import exec_process

        try:
            container = self.runtime.load(self.container_id)
            process = from_json(oci.Process, self.request["process"], "process")
            started = time.monotonic()
            result = exec_process(container, process, subreaper=True, seccomp_cache=self.seccomp_cache)
        except BaseException as exc:
            self.fail(exc)
            return
        self.pid = result.pid
        _release_stdio()
        self.send({"event": "started", "pid": self.pid})
        status = self.wait_process(self.pid)
        returncode = os.waitstatus_to_exitcode(status) if status is not None else -signal.SIGKILL
        self.send(
            {
                "event": "exited",
                "returncode": returncode,
                "reason": "killed" if returncode < 0 else "exited",
                "usage": {"wall_time": time.monotonic() - started},
                "started": True,
            }
        )
        self.send({"event": "removed"})

    def command(self, message: dict[str, Any]) -> None:
        if message.get("cmd") in ("kill", "remove"):
            with contextlib.suppress(OSError):
                os.kill(self.pid, int(message.get("signal", signal.SIGKILL)))
            self.send({"event": "reply", "ok": True})

    def on_parent_gone(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)


if __name__ == "__main__":  # pragma: no cover - the spawn launcher runs ``python -m tinycontainer._supervisor``
    main(int(sys.argv[1]) if len(sys.argv) > 1 else CHANNEL_FD)
