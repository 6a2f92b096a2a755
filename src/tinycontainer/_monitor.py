"""The per-container monitor: the process that owns a running ``tcontainer`` container.

``tcontainer run`` (attached or ``-d``) forks, calls setsid(2) and forks again: the grandchild
is the monitor. It no longer belongs to the caller's session or process tree, so the container
survives the CLI (a closed terminal, a Ctrl-C, ``-d``). It creates the container with the
engine as a child subreaper (PR_SET_CHILD_SUBREAPER, prctl(2)), so the container's init is
reparented to it and it alone can wait(2) for the exit status. It then

* copies a detached container's stdout/stderr (pipes, or the pty master) into the JSON-lines
  log (:mod:`._logs`), size-capped;
* records running/exited, pid, start and finish times, the exit code and whether the memory
  cgroup's OOM killer struck (:mod:`._records`);
* deletes the engine container and the bundle (cgroups, overlay mount) when the init exits,
  and the whole record with ``--rm``.

The CLI that launched it keeps one end of a SOCK_SEQPACKET socketpair::

    CLI                                   monitor
    fork, setsid, fork ---------------->  prepare bundle, engine create (stdio / pty)
      <-- started {pid} [+ pty master] -  engine start          (or: error {message, status})
    proxy the pty / forward signals       pump logs, wait for the init
      <-- exited {code, oom} -----------  delete engine container + bundle, record exit

EOF on the CLI's side without ``exited`` means the monitor died (``tcontainer gc`` cleans up);
EOF on the monitor's side means nobody is attached any more (detach keys, or ``-d``): from then
on a pty is drained into the log.
"""

from __future__ import annotations

import array
import contextlib
import errno
import json
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

from ._errors import TinyContainerError
from ._records import Record, RecordStore, StateDirs, now_iso
from .linux import proc

_MAX_MSG = 1 << 16
DRAIN_TIMEOUT = 2.0

# docker's statuses when the container's command could not run (docs "Exit Status"):
# 125 the daemon (here: tcontainer itself) failed, 126 cannot be invoked, 127 not found.
STATUS_FAILED = 125
STATUS_CANNOT_RUN = 126
STATUS_NOT_FOUND = 127


class LaunchError(TinyContainerError):
    """The container could not be started; ``status`` is the exit status ``run`` reports."""

    def __init__(self, message: str, status: int = STATUS_FAILED) -> None:
        self.status = status
        super().__init__(message)


def status_of_failure(exc: BaseException) -> int:
    """125/126/127 for an error raised by the engine while creating the container."""
    syscall = getattr(exc, "syscall", None)
    err = getattr(exc, "errno", None)
    if syscall in ("exec", "execve"):
        if err == errno.ENOENT:
            return STATUS_NOT_FOUND
        return STATUS_CANNOT_RUN
    return STATUS_FAILED


def exit_code(wait_status: int) -> int:
    """A wait(2) status as a shell reports it: the exit code, or 128 + the signal number."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


@dataclass(frozen=True)
class Started:
    pid: int
    console_fd: int | None


@dataclass(frozen=True)
class Exited:
    code: int
    oom_killed: bool
    memory_limit: int | None


# ------------------------------------------------------------------------------- messages


def _send(sock: socket.socket, msg: dict[str, Any], fds: list[int] | None = None) -> None:
    payload = json.dumps(msg).encode()
    # MSG_NOSIGNAL: a CLI that went away must give EPIPE, not kill the monitor with SIGPIPE.
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sock.sendmsg([payload], ancillary, socket.MSG_NOSIGNAL)


def _recv(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    fds = array.array("i")
    data, ancdata, _flags, _addr = sock.recvmsg(_MAX_MSG, socket.CMSG_SPACE(4))
    for level, ctype, cdata in ancdata:
        if level == socket.SOL_SOCKET and ctype == socket.SCM_RIGHTS:
            fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
    if not data:
        return None, list(fds)
    return json.loads(data), list(fds)


class Channel:
    """The CLI's end of the link to a monitor."""

    def __init__(self, sock: socket.socket, monitor_pid: int) -> None:
        self.sock = sock
        self.monitor_pid = monitor_pid

    def wait_started(self) -> Started:
        msg, fds = _recv(self.sock)
        if msg is None:
            raise LaunchError("the container's monitor exited during start-up (see tcontainer gc)")
        if msg.get("type") == "error":
            raise LaunchError(str(msg.get("message")), int(msg.get("status") or STATUS_FAILED))
        return Started(pid=int(msg["pid"]), console_fd=fds[0] if fds else None)

    def wait_exited(self) -> Exited:
        msg, _ = _recv(self.sock)
        if msg is None or msg.get("type") != "exited":
            raise LaunchError("the container's monitor died before the container exited (run tcontainer gc)")
        limit = msg.get("memory_limit")
        return Exited(code=int(msg["code"]), oom_killed=bool(msg.get("oom")), memory_limit=limit)

    def close(self) -> None:
        self.sock.close()


def launch(dirs: StateDirs, container_id: str, *, attached: bool) -> Channel:
    """Start the monitor of an existing record. ``attached``: the container gets the caller's
    stdio (or, with a tty, the caller receives the pty master); otherwise output goes to the log."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked process
        code = 1
        try:
            parent.close()
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            _monitor_main(dirs, container_id, child, attached)
        except BaseException:
            code = 1
        os._exit(code)
    child.close()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    return Channel(parent, pid)


# ------------------------------------------------------------------------------- the monitor


def _monitor_main(dirs: StateDirs, container_id: str, chan: socket.socket, attached: bool) -> NoReturn:
    code = 0
    try:
        _Monitor(dirs, container_id, chan, attached).run()
    except BaseException as exc:  # the last word goes to monitor.log: nobody else listens
        code = 1
        with contextlib.suppress(Exception):
            import traceback

            os.write(2, f"{now_iso()} monitor failed: {exc!r}\n{traceback.format_exc()}".encode())
    os._exit(code)


class _Monitor:
    def __init__(self, dirs: StateDirs, container_id: str, chan: socket.socket, attached: bool) -> None:
        self.dirs = dirs
        self.id = container_id
        self.chan: socket.socket | None = chan
        self.attached = attached
        self.store = RecordStore(dirs)
        self.init_pid = 0
        self.stop_signal: int = signal.SIGTERM

    def _tell(self, msg: dict[str, Any], fds: list[int] | None = None) -> None:
        if self.chan is None:
            return
        try:
            _send(self.chan, msg, fds)
        except OSError:
            self._hang_up()

    def _hang_up(self) -> None:
        if self.chan is not None:
            self.chan.close()
            self.chan = None

    def _on_sigterm(self, _signum: int, _frame: FrameType | None) -> None:
        # Whoever stops the monitor (shutdown, kill) means the container: pass its stop signal on.
        if self.init_pid:
            with contextlib.suppress(OSError):
                os.kill(self.init_pid, self.stop_signal)

    def run(self) -> None:
        os.chdir("/")
        os.umask(0o022)
        # Dispositions set to "ignore" survive fork and execve(2): the container must start
        # with the defaults, not with Python's SIGPIPE=SIG_IGN. After setsid and the second
        # fork we have no controlling terminal, so no terminal signal can reach us anyway.
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE, signal.SIGTSTP, signal.SIGTTIN,
                    signal.SIGTTOU, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        record = self.store.load(self.id)
        me = proc.read_stat(os.getpid())
        diag = os.open(
            os.path.join(self.store.dir(self.id), "monitor.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
            0o600,
        )

        def claim(r: Record) -> None:
            r.monitor_pid = os.getpid()
            r.monitor_start = me.start_time if me else 0
            r.state = "created"
            r.error = ""

        record = self.store.update(self.id, claim)
        try:
            from .runtime import parse_signal

            self.stop_signal = parse_signal(record.stop_signal)
        except TinyContainerError:
            self.stop_signal = signal.SIGTERM
        try:
            started = self._start(record, diag)
        except BaseException as exc:
            status = status_of_failure(exc)
            message = str(exc) or type(exc).__name__
            with contextlib.suppress(Exception):
                self._record_exit(status, error=message)
            self._tell({"type": "error", "message": message, "status": status})
            return
        container, bundle_path, outputs = started
        self._supervise(container, bundle_path, outputs, record)

    # -- start -----------------------------------------------------------------------------------

    def _start(self, record: Record, diag: int) -> tuple[Any, str, dict[int, str]]:
        from ._bundle import LibPaths, prepare_bundle, remove_bundle
        from ._spec_json import spec_from_dict
        from .image import ImageStore
        from .runtime import Runtime

        paths = LibPaths(self.dirs.run)
        paths.ensure()
        # A monitor that died (SIGKILL) may have left the previous run's bundle behind.
        remove_bundle(paths.bundle(self.id))
        spec = spec_from_dict(record.spec)
        images = ImageStore(self.dirs.images) if spec.image is not None else None
        bundle = prepare_bundle(spec, lib_root=self.dirs.run, container_id=self.id, images=images)
        devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        outputs: dict[int, str] = {}
        write_ends: list[int] = []
        tty = bool(bundle.config.process and bundle.config.process.terminal)
        try:
            # The init inherits fds 0-2 of whoever forks it: put the container's stdio there.
            if tty:
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
            elif self.attached:
                if not record.interactive:
                    os.dup2(devnull, 0)
            else:
                out_r, out_w = os.pipe2(os.O_CLOEXEC)
                err_r, err_w = os.pipe2(os.O_CLOEXEC)
                outputs = {out_r: "stdout", err_r: "stderr"}
                write_ends = [out_w, err_w]
                os.dup2(devnull, 0)
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
            rt = Runtime(paths.state)
            options: dict[str, Any] = {
                "subreaper": True,
                "keep_console": tty,
                "detached": False,
                "rootless": os.geteuid() != 0,
                "seccomp_cache": os.path.join(self.dirs.run, ".seccomp-cache"),
            }
            try:
                container = rt.create(self.id, bundle.path, bundle.config, **options)
            except BaseException:
                remove_bundle(bundle.path)
                raise
        finally:
            # From here on the monitor's own stdio is /dev/null and its stderr the diagnostics
            # file; dropping our copies of the pipes' write ends lets EOF mean "container gone".
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            os.dup2(diag, 2)
            for fd in write_ends:
                os.close(fd)
            os.close(devnull)
        console_fd: int | None = getattr(container, "console_fd", None)
        self.init_pid = container.pid
        st = proc.read_stat(container.pid)

        def running(r: Record) -> None:
            r.state = "running"
            r.pid = container.pid
            r.pid_start = st.start_time if st else 0
            r.started_at = now_iso()
            r.finished_at = ""
            r.exit_code = None
            r.oom_killed = False

        self.store.update(self.id, running)
        try:
            container.start()
        except BaseException:
            with contextlib.suppress(Exception):
                container.delete(force=True)
            remove_bundle(bundle.path)
            if console_fd is not None:
                os.close(console_fd)
            raise
        if console_fd is not None:
            if self.attached:
                self._tell({"type": "started", "pid": container.pid}, [console_fd])
            else:
                self._tell({"type": "started", "pid": container.pid})
            outputs[console_fd] = "stdout"
        else:
            self._tell({"type": "started", "pid": container.pid})
        if not self.attached:
            self._hang_up()
        return container, bundle.path, outputs

    # -- supervise -------------------------------------------------------------------------------

    def _supervise(self, container: Any, bundle_path: str, outputs: dict[int, str], record: Record) -> None:
        from ._bundle import remove_bundle
        from ._logs import LogWriter

        log = LogWriter(os.path.join(self.store.dir(self.id), "container.log"), record.log_max_size,
                        record.log_max_files)
        console = next((fd for fd, _ in outputs.items() if self.attached and record.tty), None)
        pidfd = os.pidfd_open(self.init_pid)
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if self.chan is not None:
            poller.register(self.chan.fileno(), select.POLLIN)
        for fd in outputs:
            # A pty is read only once nobody is attached to it (the CLI reads it meanwhile).
            if fd != console or self.chan is None:
                poller.register(fd, select.POLLIN)
        status: int | None = None
        open_outputs = set(outputs)
        while status is None:
            for fd, _events in poller.poll():
                if fd == pidfd:
                    status = self._reap()
                elif self.chan is not None and fd == self.chan.fileno():
                    with contextlib.suppress(OSError):
                        msg, fds = _recv(self.chan)
                        for extra in fds:
                            os.close(extra)
                        if msg is not None:
                            continue
                    poller.unregister(fd)
                    self._hang_up()
                    if console is not None and console in open_outputs:
                        poller.register(console, select.POLLIN)
                elif fd in open_outputs and not self._pump(fd, outputs[fd], log):
                    poller.unregister(fd)
                    open_outputs.discard(fd)
            self._reap_others()
        # The pid namespace is gone with its init (pid_namespaces(7)): what is left in the pipes
        # is the tail of the output. A bounded drain in case a writer escaped the namespace.
        deadline = time.monotonic() + DRAIN_TIMEOUT
        drain = [fd for fd in open_outputs if fd != console or self.chan is None]
        while drain and time.monotonic() < deadline:
            ready, _, _ = select.select(drain, [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            for fd in ready:
                if not self._pump(fd, outputs[fd], log):
                    drain.remove(fd)
        log.close()
        for fd in outputs:
            with contextlib.suppress(OSError):
                os.close(fd)
        os.close(pidfd)
        oom = False
        limit: int | None = None
        with contextlib.suppress(Exception):
            stats = container.stats()
            oom = bool(stats.oom_kills)
            limit = stats.memory_limit
        try:
            container.delete(force=True)
        finally:
            remove_bundle(bundle_path)
            code = exit_code(status)
            final = self._record_exit(code, oom=oom)
        self._tell({"type": "exited", "code": code, "oom": oom, "memory_limit": limit})
        self._hang_up()
        if final.auto_remove:
            self.store.remove(final)

    def _pump(self, fd: int, stream: str, log: Any) -> bool:
        try:
            data = os.read(fd, 1 << 16)
        except OSError as exc:
            if exc.errno == errno.EIO:  # a pty whose every slave closed
                return False
            raise
        if not data:
            return False
        log.write(stream, data)
        return True

    def _reap(self) -> int | None:
        try:
            pid, status = os.waitpid(self.init_pid, os.WNOHANG)
        except ChildProcessError:
            return 255 << 8
        return status if pid else None

    def _reap_others(self) -> None:
        # As a subreaper we inherit the container's orphans; the init is waited for by pid
        # above, so only reap others here (waitpid(-1) could steal the init's status).
        try:
            with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as f:
                children = [int(p) for p in f.read().split()]
        except OSError:
            return
        for pid in children:
            if pid != self.init_pid:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)

    def _record_exit(self, code: int, *, oom: bool = False, error: str = "") -> Record:
        def exited(r: Record) -> None:
            r.state = "exited"
            r.exit_code = code
            r.finished_at = now_iso()
            r.oom_killed = oom
            r.pid = 0
            r.pid_start = 0
            if error:
                r.error = error

        return self.store.update(self.id, exited)
