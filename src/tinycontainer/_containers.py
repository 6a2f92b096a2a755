"""Operations on ``tcontainer`` containers: the layer between the CLI and the engine.

A container is a record (:mod:`._records`) plus, while it runs, a monitor process
(:mod:`._monitor`) and an engine container of the same id. Everything here works from the
record, so any CLI process can stop, remove or inspect a container another one started.
"""

from __future__ import annotations

import contextlib
import copy
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import oci
from ._errors import ContainerNotFound, SpecError, StateError, TinyContainerError, WrongStatus
from ._records import Record, RecordStore, StateDirs, now_iso
from .linux import proc

if TYPE_CHECKING:
    from .image import ImageStore
    from .runtime import Container, Runtime

EXIT_WAIT = 10.0
"""how long to wait for a monitor to record an exit after the init is gone"""


class Home:
    """One state root: records, the engine's store, bundles, images."""

    def __init__(self, root: str | None = None) -> None:
        self.dirs = StateDirs.default(root)
        self.records = RecordStore(self.dirs)
        self._runtime: Runtime | None = None
        self._images: ImageStore | None = None

    @property
    def engine_root(self) -> str:
        from ._bundle import LibPaths

        return LibPaths(self.dirs.run).state

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            from .runtime import Runtime

            self._runtime = Runtime(self.engine_root)
        return self._runtime

    @property
    def images(self) -> ImageStore:
        if self._images is None:
            from .image import ImageStore

            self._images = ImageStore(self.dirs.images)
        return self._images

    def engine(self, record: Record) -> Container | None:
        """The engine's container for a record, or None when it does not exist (not running)."""
        try:
            return self.runtime.load(record.id)
        except ContainerNotFound:
            return None

    def log_path(self, record: Record) -> str:
        return os.path.join(self.records.dir(record.id), "container.log")


# ------------------------------------------------------------------------------- status


@dataclass(frozen=True)
class Status:
    """What ``ps``/``inspect`` show: the record checked against the live processes."""

    state: str
    """created | running | paused | exited | dead"""
    running: bool
    paused: bool


def status_of(home: Home, record: Record) -> Status:
    state = record.live_state
    if state == "running":
        container = home.engine(record)
        if container is not None and container.status.value == "paused":
            return Status("paused", True, True)
        return Status("running", True, False)
    return Status(state, False, False)


# ------------------------------------------------------------------------------- waiting


def wait_process_gone(pid: int, start: int, timeout: float | None) -> bool:
    """True once the process (pid + start time) is gone; False after ``timeout`` seconds."""
    if not proc.is_alive(pid, start):
        return True
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        if not proc.is_alive(pid, start):  # the pid was reused before we pinned it
            return True
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000))))
    finally:
        os.close(pidfd)


def wait_exit(home: Home, record: Record, timeout: float | None = None) -> Record:
    """Block until the container is no longer running (its monitor recorded the exit, or died)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        current = home.records.load(record.id)
        if current.live_state not in ("running", "created"):
            return current
        if current.state == "created" and not current.monitor_pid:
            return current
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise StateError(f"container {record.name} is still running after {timeout:g}s")
        # The monitor exits right after recording: waiting for it is waiting for the record.
        wait_process_gone(current.monitor_pid, current.monitor_start, min(left, 1.0) if left is not None else 1.0)


# ------------------------------------------------------------------------------- lifecycle


def stop(home: Home, record: Record, timeout: float | None = None, sig: str | int | None = None) -> Record:
    """Send the stop signal, wait ``timeout`` seconds (default: the container's), then SIGKILL."""
    record = home.records.load(record.id)
    if record.live_state != "running":
        return record
    container = home.engine(record)
    grace = record.stop_timeout if timeout is None else timeout
    if container is not None:
        paused = container.status.value == "paused"
        with contextlib.suppress(WrongStatus):
            container.kill(sig if sig is not None else record.stop_signal)
        if paused:
            # A frozen task cannot act on the signal; thawing lets it (docker does the same).
            with contextlib.suppress(WrongStatus, TinyContainerError):
                container.resume()
        if not wait_process_gone(record.pid, record.pid_start, grace):
            with contextlib.suppress(WrongStatus):
                container.kill(signal.SIGKILL, all_processes=True)
            with contextlib.suppress(WrongStatus, TinyContainerError):
                container.resume()
    return wait_exit(home, record, EXIT_WAIT + grace)


def kill(home: Home, record: Record, sig: str | int = "SIGKILL") -> None:
    record = home.records.load(record.id)
    container = home.engine(record)
    if record.live_state != "running" or container is None:
        raise StateError(f"container {record.name} is not running")
    container.kill(sig)


def pause(home: Home, record: Record) -> None:
    container = _running_engine(home, record)
    container.pause()


def resume(home: Home, record: Record) -> None:
    container = _running_engine(home, record)
    container.resume()


def _running_engine(home: Home, record: Record) -> Container:
    record = home.records.load(record.id)
    container = home.engine(record)
    if record.live_state != "running" or container is None:
        raise StateError(f"container {record.name} is not running")
    return container


def remove(home: Home, record: Record, *, force: bool = False) -> None:
    """Forget a container (``rm``); ``force`` kills it first."""
    record = home.records.load(record.id)
    state = record.live_state
    if state in ("running", "created") and record.monitor_pid:
        if not force:
            raise StateError(
                f"container {record.name} is running: stop it first (tcontainer stop {record.name}) or use rm -f"
            )
        container = home.engine(record)
        if container is not None:
            with contextlib.suppress(WrongStatus, TinyContainerError):
                container.kill(signal.SIGKILL, all_processes=True)
            with contextlib.suppress(WrongStatus, TinyContainerError):
                container.resume()
        record = wait_exit(home, record, EXIT_WAIT)
    if record.live_state == "dead":
        cleanup_dead(home, record)
    home.records.remove(record)


def cleanup_dead(home: Home, record: Record) -> Record:
    """Take apart what a dead monitor left: the engine container (processes, cgroups), the bundle."""
    from ._bundle import LibPaths, remove_bundle

    container = home.engine(record)
    if container is not None:
        container.delete(force=True)
    remove_bundle(LibPaths(home.dirs.run).bundle(record.id))

    def dead(r: Record) -> None:
        if r.state in ("running", "created"):
            r.state = "exited"
            r.exit_code = r.exit_code if r.exit_code is not None else 255
            r.finished_at = r.finished_at or now_iso()
            r.error = r.error or "the monitor process died; the container was killed by tcontainer gc"
            r.pid = 0

    return home.records.update(record.id, dead)


def gc(home: Home) -> list[str]:
    """Clean up after dead monitors and orphaned engine state; return what was done."""
    from ._bundle import LibPaths, remove_bundle

    done = []
    known = set()
    for record in home.records.list():
        known.add(record.id)
        if record.live_state == "dead":
            cleanup_dead(home, record)
            done.append(f"cleaned up {record.name} ({record.short_id}): its monitor had died")
            if record.auto_remove:
                home.records.remove(record)
    for container in home.runtime.list():
        if container.id not in known:
            with contextlib.suppress(TinyContainerError, OSError):
                container.delete(force=True)
                done.append(f"deleted orphaned engine container {container.id[:12]}")
    paths = LibPaths(home.dirs.run)
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(paths.bundles):
            if name not in known or not proc_running(home, name):
                rec = _maybe(home, name)
                if rec is None or rec.live_state not in ("running", "created"):
                    remove_bundle(paths.bundle(name))
                    done.append(f"removed stale bundle {name[:12]}")
    return done


def proc_running(home: Home, container_id: str) -> bool:
    rec = _maybe(home, container_id)
    return rec is not None and rec.live_state in ("running", "created")


def _maybe(home: Home, container_id: str) -> Record | None:
    try:
        return home.records.load(container_id)
    except (ContainerNotFound, SpecError, StateError):
        return None


def prune(home: Home) -> list[Record]:
    """Remove every stopped container."""
    removed = []
    for record in home.records.list():
        if record.live_state in ("exited", "dead"):
            with contextlib.suppress(ContainerNotFound):
                remove(home, record)
                removed.append(record)
    return removed


# ------------------------------------------------------------------------------- exec


@dataclass
class ExecRequest:
    argv: list[str]
    tty: bool = False
    interactive: bool = False
    detach: bool = False
    env: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    privileged: bool = False


def exec_process_for(container: Container, request: ExecRequest) -> oci.Process:
    """The container's own process settings with ``request`` applied (docker exec's rules)."""
    config = container.config()
    base = config.process or oci.Process()
    process = copy.deepcopy(base)
    if not request.argv:
        raise SpecError("exec needs a command: tcontainer exec NAME COMMAND [ARG...]")
    process.args = list(request.argv)
    process.terminal = request.tty
    process.console_size = None
    if request.workdir:
        if not request.workdir.startswith("/"):
            raise SpecError(f"--workdir {request.workdir!r} must be an absolute path")
        process.cwd = request.workdir
    if request.env:
        merged = {item.partition("=")[0]: item for item in process.env or []}
        for item in request.env:
            key, eq, _ = item.partition("=")
            if not key:
                raise SpecError(f"--env {item!r}: expected KEY=VALUE")
            merged[key] = item if eq else f"{key}={os.environ.get(key, '')}"
        process.env = list(merged.values())
    if request.tty and not any(e.startswith("TERM=") for e in process.env or []):
        process.env = [*(process.env or []), "TERM=xterm"]
    if request.user:
        from ._bundle import passwd_resolver

        root = config.root.path if config.root else "/"
        if not os.path.isabs(root):
            root = os.path.join(container.bundle, root)
        uid, gid, extra, home_dir = passwd_resolver(root)(request.user)
        process.user = oci.User(uid=uid, gid=gid, additional_gids=list(extra) or None, umask=process.user.umask)
        kept = [e for e in process.env or [] if not e.startswith("HOME=")]
        process.env = [*kept, f"HOME={home_dir or ('/root' if uid == 0 else '/')}"]
    return process


def run_exec(
    home: Home,
    record: Record,
    request: ExecRequest,
    *,
    attach: Callable[[int], None] | None = None,
    forward_signals: bool = True,
) -> int:
    """Run a process in a running container; return its exit status (0 at once with ``detach``).

    ``attach(master_fd)`` is called with the pty master for a tty process (it should copy the
    terminal until the process closes it)."""
    from .runtime._container import wait_exit as wait_pid_exit
    from .runtime._tenant import exec_process

    container = _running_engine(home, record)
    process = exec_process_for(container, request)
    devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    saved: list[tuple[int, int]] = []
    try:
        # The tenant inherits our fds 0-2: /dev/null unless asked to be attached.
        targets = (0, 1, 2) if request.detach else ((0,) if not request.interactive and not request.tty else ())
        for fd in targets:
            saved.append((fd, os.dup(fd)))
            os.dup2(devnull, fd)
        # The tenant is forked from us: it must not inherit Python's SIGPIPE=SIG_IGN (ignored
        # dispositions survive execve(2)); our own writes meanwhile are to sockets and pipes
        # whose peers outlive the call.
        pipe_handler = signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        try:
            result = exec_process(
                container,
                process,
                keep_console=request.tty and not request.detach,
                subreaper=not request.detach,
                seccomp_cache=os.path.join(home.dirs.run, ".seccomp-cache"),
            )
        finally:
            signal.signal(signal.SIGPIPE, pipe_handler)
    finally:
        for fd, copy_fd in saved:
            os.dup2(copy_fd, fd)
            os.close(copy_fd)
        os.close(devnull)
    if request.detach:
        return 0
    pid = result.pid
    previous: dict[int, Any] = {}
    if forward_signals and not request.tty:
        previous = forward_signals_to(pid)
    try:
        if result.console_fd is not None:
            try:
                if attach is not None:
                    attach(result.console_fd)
            finally:
                os.close(result.console_fd)
        return wait_pid_exit(pid)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def forward_signals_to(pid: int, start: int | None = None) -> dict[int, Any]:
    """Pass the CLI's signals on to ``pid`` (docker's sig-proxy); returns the old handlers."""
    if start is None:
        st = proc.read_stat(pid)
        start = st.start_time if st else 0

    def forward(signum: int, _frame: object) -> None:
        if proc.is_alive(pid, start):
            with contextlib.suppress(OSError):
                os.kill(pid, signum)

    return {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
