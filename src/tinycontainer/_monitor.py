"""The per-container monitor: the process that owns a running ``tcontainer`` container.

``tcontainer run`` (attached or ``-d``) forks, calls setsid(2) and forks again: the grandchild
is the monitor. It no longer belongs to the caller's session or process tree, so the container
survives the CLI (a closed terminal, a Ctrl-C, ``-d``). It creates the container with the
engine as a child subreaper (PR_SET_CHILD_SUBREAPER, prctl(2)), so the container's init is
reparented to it and it alone can wait(2) for the exit status. It then

* copies the container's stdout/stderr (pipes, or the pty master) into the JSON-lines log
  (:mod:`._logs`), size-capped, attached or not (``tcontainer logs`` shows a foreground run too),
  and to every attached client (:mod:`._attach`: the launching CLI and ``tcontainer attach``);
* keeps the container's stdin (the pty master, or a pipe for ``-d -i``) for clients to type into;
* records running/exited, pid, start and finish times, the exit code and whether the memory
  cgroup's OOM killer struck (:mod:`._records`);
* deletes the engine container and the bundle (cgroups, overlay mount) when the init exits,
  and the whole record with ``--rm``.

The CLI that launched it keeps one end of a SOCK_SEQPACKET socketpair::

    CLI                                   monitor
    fork, setsid, fork ---------------->  prepare bundle, engine create (stdio / pty)
      <-- started {pid, tty} -----------  engine start          (or: error {message, status})
    resize / forward signals              pump output to the log and the clients, wait for the init
      <-- detached | exited {code, oom} - delete engine container + bundle, record exit

An attached launcher is the monitor's first client: being a fork of the CLI, the monitor already
holds the CLI's stdio. EOF on the CLI's side without ``exited`` means the monitor died
(``tcontainer gc`` cleans up); EOF on the monitor's side means the CLI is gone: its stdio is
dropped and the container carries on.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

from ._attach import DetachScanner, Outcome, recv_msg, send_msg, wait_outcome
from ._attach import listen as attach_listen
from ._errors import TinyContainerError
from ._records import Record, RecordStore, StateDirs, now_iso
from .linux import proc
from .runtime._console import copy_winsize, write_all
from .runtime._container import exit_code as exit_code

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


@dataclass(frozen=True)
class Started:
    pid: int
    tty: bool


@dataclass(frozen=True)
class Exited:
    code: int
    oom_killed: bool
    memory_limit: int | None


# ------------------------------------------------------------------------------- messages


def _send(sock: socket.socket, msg: dict[str, Any], fds: list[int] | None = None) -> None:
    send_msg(sock, msg, fds)


def _recv(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    return recv_msg(sock)


class Channel:
    """The CLI's end of the link to a monitor."""

    def __init__(self, sock: socket.socket, monitor_pid: int) -> None:
        self.sock = sock
        self.monitor_pid = monitor_pid

    def wait_started(self) -> Started:
        msg, fds = _recv(self.sock)
        for fd in fds:
            os.close(fd)
        if msg is None:
            raise LaunchError("the container's monitor exited during start-up (see tcontainer gc)")
        if msg.get("type") == "error":
            raise LaunchError(str(msg.get("message")), int(msg.get("status") or STATUS_FAILED))
        return Started(pid=int(msg["pid"]), tty=bool(msg.get("tty")))

    def wait_outcome(self, *, resize: bool) -> Outcome:
        """Until the container exits or (with a terminal) the detach keys are typed."""
        try:
            return wait_outcome(self.sock, resize=resize)
        except TinyContainerError:
            raise LaunchError("the container's monitor died before the container exited (run tcontainer gc)") from None

    def wait_exited(self) -> Exited:
        outcome = self.wait_outcome(resize=False)
        return Exited(code=outcome.code, oom_killed=outcome.oom_killed, memory_limit=outcome.memory_limit)

    def close(self) -> None:
        self.sock.close()


def launch(dirs: StateDirs, container_id: str, *, attached: bool, detach_keys: bytes = b"") -> Channel:
    """Start the monitor of an existing record. ``attached``: the caller's stdio becomes the
    monitor's first client (with a tty, the caller should have put its terminal in raw mode);
    otherwise output goes only to the log."""
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
            _monitor_main(dirs, container_id, child, attached, detach_keys)
        except BaseException:
            code = 1
        os._exit(code)
    child.close()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    return Channel(parent, pid)


# ------------------------------------------------------------------------------- the monitor


def _monitor_main(
    dirs: StateDirs, container_id: str, chan: socket.socket, attached: bool, detach_keys: bytes
) -> NoReturn:
    code = 0
    # ps and /proc/PID/cmdline would otherwise show the CLI's arguments (env values, paths).
    with contextlib.suppress(OSError, ValueError, IndexError):
        proc.set_cmdline(f"tcontainer-monitor {container_id}")
    try:
        _Monitor(dirs, container_id, chan, attached, detach_keys).run()
    except BaseException as exc:  # the last word goes to monitor.log: nobody else listens
        code = 1
        with contextlib.suppress(Exception):
            import traceback

            os.write(2, f"{now_iso()} monitor failed: {exc!r}\n{traceback.format_exc()}".encode())
    os._exit(code)


@dataclass
class _Client:
    """An attached CLI: its control socket and the stdio descriptors it handed over."""

    control: socket.socket
    stdin: int | None
    stdout: int | None
    stderr: int | None
    scanner: DetachScanner
    dropped: bool = False
    launcher: bool = False
    """the foreground CLI of ``run``: its broken pipe is the container's broken pipe"""

    def terminal(self) -> int | None:
        for fd in (self.stdin, self.stdout):
            if fd is not None and os.isatty(fd):
                return fd
        return None


class _Monitor:
    def __init__(
        self, dirs: StateDirs, container_id: str, chan: socket.socket, attached: bool, detach_keys: bytes = b""
    ) -> None:
        self.dirs = dirs
        self.id = container_id
        self.chan: socket.socket | None = chan
        self.attached = attached
        self.detach_keys = detach_keys
        self.store = RecordStore(dirs)
        self.init_pid = 0
        self.stop_signal: int = signal.SIGTERM
        self.clients: list[_Client] = []
        self.listener: socket.socket | None = None
        self.tty = False
        self.console: int | None = None
        self.stdin_target: int | None = None
        self.pending_input = bytearray()
        self.launcher_fds: tuple[int | None, int | None, int | None] = (None, None, None)
        self.broken_streams: set[str] = set()
        self.closed_outputs: set[int] = set()

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
        self.tty = tty
        try:
            if self.attached:
                # Our fds 0-2 are the launching CLI's (we are its fork): keep copies for the
                # launcher client. A non-tty -i container reads the CLI's stdin directly.
                forward_stdin = tty and record.interactive
                self.launcher_fds = (os.dup(0) if forward_stdin else None, os.dup(1), os.dup(2))
            # The init inherits fds 0-2 of whoever forks it: put the container's stdio there.
            if tty:
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
            else:
                # Pipes even for a foreground run, so that the output is logged (docker does too).
                out_r, out_w = os.pipe2(os.O_CLOEXEC)
                err_r, err_w = os.pipe2(os.O_CLOEXEC)
                outputs = {out_r: "stdout", err_r: "stderr"}
                write_ends = [out_w, err_w]
                if not record.interactive:
                    os.dup2(devnull, 0)
                elif not self.attached:
                    # -d -i: the container's stdin is a pipe whose write end we keep for attach.
                    in_r, in_w = os.pipe2(os.O_CLOEXEC)
                    os.dup2(in_r, 0)
                    os.close(in_r)
                    os.set_blocking(in_w, False)
                    self.stdin_target = in_w
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
            self.listener = attach_listen(bundle.path)
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
        # The container has its dispositions; from now on a client that closed its end of a
        # pipe must give us EPIPE, not SIGPIPE.
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        if console_fd is not None:
            # Only we hold the master: non-blocking so that a container that stops reading its
            # terminal cannot stall the monitor (input waits in pending_input instead).
            os.set_blocking(console_fd, False)
            self.console = console_fd
            outputs[console_fd] = "stdout"
            if record.interactive:
                self.stdin_target = console_fd
        self._tell({"type": "started", "pid": container.pid, "tty": tty})
        if self.attached and self.chan is not None:
            stdin_fd, stdout_fd, stderr_fd = self.launcher_fds
            launcher = self._add_client(self.chan, stdin_fd, stdout_fd, stderr_fd, self.detach_keys if tty else b"")
            launcher.launcher = not tty
        else:
            self._hang_up()
        return container, bundle.path, outputs

    # -- clients ---------------------------------------------------------------------------------

    def _add_client(
        self, control: socket.socket, stdin: int | None, stdout: int | None, stderr: int | None, keys: bytes
    ) -> _Client:
        if stdin is not None and self.stdin_target is None:
            os.close(stdin)  # the container has no stdin to type into (no -i)
            stdin = None
        client = _Client(control, stdin, stdout, stderr, DetachScanner(keys))
        self.clients.append(client)
        self._resize(client)
        return client

    def _resize(self, client: _Client) -> None:
        if self.console is None:
            return
        term = client.terminal()
        if term is not None:
            copy_winsize(term, self.console)

    def _drop(self, client: _Client, msg: dict[str, Any] | None = None) -> None:
        if client.dropped:
            return
        client.dropped = True
        if msg is not None:
            with contextlib.suppress(OSError):
                _send(client.control, msg)
        for fd in (client.stdin, client.stdout, client.stderr):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        client.stdin = client.stdout = client.stderr = None
        if client.control is self.chan:
            self._hang_up()
        else:
            client.control.close()
        self.clients.remove(client)

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        # Only the owner can reach the 0700 directory; still, a silent peer must not hang us.
        conn.settimeout(2.0)
        try:
            msg, fds = _recv(conn)
        except OSError:
            conn.close()
            return
        conn.settimeout(None)
        wants_stdin = bool(msg and msg.get("stdin"))
        expected = 3 if wants_stdin else 2
        if msg is None or msg.get("type") != "attach" or len(fds) != expected:
            for fd in fds:
                os.close(fd)
            with contextlib.suppress(OSError):
                _send(conn, {"type": "error", "message": "bad attach request"})
            conn.close()
            return
        raw_keys = msg.get("detach_keys") or []
        keys = bytes(k for k in raw_keys if isinstance(k, int) and 0 <= k < 256)
        stdin_fd = fds[0] if wants_stdin else None
        stdout_fd, stderr_fd = fds[-2], fds[-1]
        try:
            _send(conn, {"type": "attached", "tty": self.tty})
        except OSError:
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        self._add_client(conn, stdin_fd, stdout_fd, stderr_fd, keys)

    def _on_control(self, client: _Client) -> None:
        try:
            msg, fds = _recv(client.control)
        except OSError:
            msg, fds = None, []
        for fd in fds:
            os.close(fd)
        if msg is None:
            self._drop(client)
        elif msg.get("type") == "resize":
            self._resize(client)

    def _on_input(self, client: _Client) -> None:
        assert client.stdin is not None
        try:
            data = os.read(client.stdin, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            os.close(client.stdin)
            client.stdin = None
            if self.tty:
                # End of input on a terminal is Ctrl-D (what `run -it < file` expects).
                self.pending_input += b"\x04"
                self._flush_input()
            return
        data, detached = client.scanner.feed(data)
        self.pending_input += data
        self._flush_input()
        if detached:
            self._drop(client, {"type": "detached"})

    def _flush_input(self) -> None:
        if self.stdin_target is None:
            self.pending_input.clear()
            return
        while self.pending_input:
            try:
                n = os.write(self.stdin_target, self.pending_input)
            except BlockingIOError:
                return
            except OSError:  # the container closed its stdin: what it would not read is lost
                self.pending_input.clear()
                return
            del self.pending_input[:n]

    def _broadcast(self, stream: str, data: bytes) -> None:
        for client in list(self.clients):
            fd = client.stderr if stream == "stderr" else client.stdout
            if fd is None:
                continue
            try:
                write_all(fd, data)
            except OSError as exc:
                if client.launcher and exc.errno == errno.EPIPE:
                    # `tcontainer run ... | head -1`: as if the container wrote to the pipe
                    # itself, its next write must fail (SIGPIPE), rather than run on unseen.
                    self.broken_streams.add(stream)
                    if stream == "stderr":
                        client.stderr = None
                        os.close(fd)
                    else:
                        client.stdout = None
                        os.close(fd)
                    continue
                self._drop(client)  # EIO, EPIPE of an attach: that client is gone

    # -- supervise -------------------------------------------------------------------------------

    def _supervise(self, container: Any, bundle_path: str, outputs: dict[int, str], record: Record) -> None:
        from ._bundle import remove_bundle
        from ._logs import LogWriter

        log = LogWriter(os.path.join(self.store.dir(self.id), "container.log"), record.log_max_size,
                        record.log_max_files)
        pidfd = os.pidfd_open(self.init_pid)
        status: int | None = None
        open_outputs = set(outputs)
        while status is None:
            readers: dict[int, Any] = {pidfd: None}
            if self.listener is not None:
                readers[self.listener.fileno()] = self._accept
            for client in self.clients:
                readers[client.control.fileno()] = (self._on_control, client)
                if client.stdin is not None and not self.pending_input:
                    readers[client.stdin] = (self._on_input, client)
            for fd, stream in outputs.items():  # stdout before stderr, as the container wrote them
                if fd in open_outputs:
                    readers[fd] = (fd, stream)
            poller = select.poll()
            for fd in readers:
                poller.register(fd, select.POLLIN)
            writing = self.stdin_target if self.pending_input else None
            if writing is not None:
                poller.register(writing, select.POLLOUT | (select.POLLIN if writing in readers else 0))
            for fd, events in poller.poll():
                if fd == writing and events & (select.POLLOUT | select.POLLERR | select.POLLHUP):
                    self._flush_input()
                if fd not in readers or not events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    continue
                handler = readers[fd]
                if fd == pidfd:
                    status = self._reap()
                elif isinstance(handler, tuple) and isinstance(handler[0], int):
                    if not self._pump(handler[0], handler[1], log):
                        open_outputs.discard(handler[0])
                elif isinstance(handler, tuple):
                    func, client = handler
                    if not client.dropped:
                        func(client)
                elif handler is not None:
                    handler()
            self._reap_others()
        # The pid namespace is gone with its init (pid_namespaces(7)): what is left in the pipes
        # is the tail of the output. A bounded drain in case a writer escaped the namespace.
        deadline = time.monotonic() + DRAIN_TIMEOUT
        drain = [fd for fd in outputs if fd in open_outputs]
        while drain and time.monotonic() < deadline:
            ready, _, _ = select.select(drain, [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            for fd in ready:
                if not self._pump(fd, outputs[fd], log):
                    drain.remove(fd)
        log.close()
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        for fd in outputs:
            if fd not in self.closed_outputs:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self.stdin_target is not None and self.stdin_target not in outputs:
            with contextlib.suppress(OSError):
                os.close(self.stdin_target)
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
        exited = {"type": "exited", "code": code, "oom": oom, "memory_limit": limit}
        for client in list(self.clients):
            self._drop(client, exited)
        self._tell(exited)
        self._hang_up()
        if final.auto_remove:
            self.store.remove(final)

    def _pump(self, fd: int, stream: str, log: Any) -> bool:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        except OSError as exc:
            if exc.errno == errno.EIO:  # a pty whose every slave closed
                return False
            raise
        if not data:
            return False
        log.write(stream, data)
        self._broadcast(stream, data)
        if stream in self.broken_streams and fd != self.console:
            os.close(fd)  # the container's write end now gives EPIPE
            self.closed_outputs.add(fd)
            return False
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


