"""The library's :class:`Container` handle for long-running work.

::

    with tc.create(spec, ["sh", "-c", "while :; do date; sleep 1; done"]) as c:
        c.start()
        for chunk in c.logs(follow=True): ...
        c.stop()
    # removed here, also on an exception or KeyboardInterrupt

Output goes to two files in the bundle directory (``stdout``, ``stderr``) unless the caller
gives other stdio: a pipe nobody reads would block the container once 64 KiB are buffered.
A supervisor process (:mod:`._supervisor`) owns the container; if this process dies, the
supervisor sees EOF on its channel and removes the container.
"""

from __future__ import annotations

import contextlib
import os
import signal as _signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal

from . import _bundle, _channel
from ._api import decode_output, effective_spec, force_cleanup, result_from, run_request, seccomp_cache
from ._communicate import Outcome, abort, communicate, finish_supervisor
from ._errors import TinyContainerError, WrongStatus
from ._launch import Launcher, Supervisor, default_launcher
from ._result import Result, TimeoutExpired, container_error
from ._spec import Spec
from ._stdio import DEVNULL, PIPE, StdioArg, StdioPlan

if TYPE_CHECKING:
    from .image import ImageStore
    from .linux.cgroups import CgroupStats

LOGS = "logs"
"""stdout/stderr default: the bundle's ``stdout``/``stderr`` files, read with :meth:`Container.logs`."""

Status = Literal["created", "running", "paused", "exited", "removed"]
_FOLLOW_POLL = 0.05
_SLICE = 0.1


class Container:
    """A library container: created by :func:`create`, removed by :meth:`remove` (or ``with``)."""

    def __init__(
        self,
        *,
        spec: Spec,
        bundle: _bundle.Bundle,
        lib_root: str,
        supervisor: Supervisor,
        plan: StdioPlan,
        log_paths: tuple[str | None, str | None],
    ) -> None:
        self.spec = spec
        self.id = bundle.container_id
        self.args: list[str] = list((bundle.config.process.args if bundle.config.process else None) or [])
        self._bundle = bundle
        self._lib_root = lib_root
        self._supervisor: Supervisor | None = supervisor
        self._outcome = Outcome()
        self._lock = threading.RLock()
        self._log_paths = log_paths
        self._removed = False
        self.stdin: IO[bytes] | None = _wrap(plan.parent[0], "wb")
        self.stdout: IO[bytes] | None = _wrap(plan.parent[1], "rb")
        self.stderr: IO[bytes] | None = _wrap(plan.parent[2], "rb")

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        spec: Spec | None = None,
        args: Sequence[str] | None = None,
        *,
        stdin: StdioArg = DEVNULL,
        stdout: StdioArg | str = LOGS,
        stderr: StdioArg | str = LOGS,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        lib_root: str | None = None,
        images: ImageStore | None = None,
        pull: bool = True,
        launcher: Launcher | None = None,
    ) -> Container:
        """Create (not start) a container; see :func:`tinycontainer.create`."""
        the_spec = effective_spec(spec, env, cwd)
        root = lib_root or _bundle.default_lib_root()
        if isinstance(args, (str, bytes)):
            raise TypeError("args must be a list of strings")
        bundle = _bundle.prepare_bundle(the_spec, args=list(args) if args is not None else None, lib_root=root,
                                        images=images, pull=pull)
        log_paths: list[str | None] = [None, None]
        opened: list[int] = []
        try:
            stdio: list[StdioArg] = [stdin, None, None]
            for i, arg in ((1, stdout), (2, stderr)):
                if arg == LOGS:
                    path = os.path.join(bundle.path, "stdout" if i == 1 else "stderr")
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
                    opened.append(fd)
                    log_paths[i - 1] = path
                    stdio[i] = fd
                else:
                    stdio[i] = arg  # type: ignore[assignment]
            plan = StdioPlan(stdio[0], stdio[1], stdio[2])
        except BaseException:
            for fd in opened:
                os.close(fd)
            force_cleanup(root, bundle.container_id, bundle.path)
            raise
        try:
            supervisor = (launcher or default_launcher()).launch(
                run_request(bundle, the_spec, root, autostart=False, autoremove=False), plan.child_fds
            )
        except BaseException:
            plan.close_all()
            for fd in opened:
                os.close(fd)
            force_cleanup(root, bundle.container_id, bundle.path)
            raise
        plan.close_child_ends()
        for fd in opened:
            os.close(fd)
        container = cls(spec=the_spec, bundle=bundle, lib_root=root, supervisor=supervisor, plan=plan,
                        log_paths=(log_paths[0], log_paths[1]))
        try:
            container._pump_until(lambda o: o.created_pid is not None or o.error is not None or o.removed)
            if container._outcome.created_pid is None:
                error = container._outcome.error
                container.remove()
                raise _channel.decode_error(error) if error else TinyContainerError("the container was not created")
        except BaseException:
            container.remove()
            raise
        return container

    # ------------------------------------------------------------------ channel
    def _pump(self, timeout: float | None) -> bool:
        """Apply one message from the supervisor; False at EOF or timeout."""
        sup = self._supervisor
        if sup is None:
            return False
        try:
            message = sup.recv(timeout)
        except TimeoutError:
            return False
        if message is None:
            finish_supervisor(sup)
            self._supervisor = None
            return False
        self._outcome.apply(message)
        return True

    def _pump_until(self, done: Any, timeout: float | None = None) -> bool:
        # The lock is taken per message with a short slice, so a wait() in one thread does not
        # hold off a kill() from another for longer than the slice.
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if done(self._outcome):
                    return True
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                if self._supervisor is None:
                    return bool(done(self._outcome))
                self._pump(_SLICE if left is None else min(left, _SLICE))

    def _command(self, message: dict[str, Any]) -> None:
        with self._lock:
            if self._supervisor is None:
                raise WrongStatus(self.id, self.status, "created, running or paused")
            before = len(self._outcome.replies)
            self._supervisor.send(message)
            self._pump_until(lambda o: len(o.replies) > before or o.error is not None)
            if len(self._outcome.replies) > before:
                reply = self._outcome.replies[before]
                if not reply.get("ok") and reply.get("error"):
                    raise _channel.decode_error(reply["error"])

    def _drain(self) -> None:
        with self._lock:
            while self._supervisor is not None and self._pump(0):
                pass

    # ------------------------------------------------------------------ facts
    @property
    def pid(self) -> int | None:
        """The init's pid (in the caller's pid namespace), or None once it exited."""
        return self._outcome.created_pid if self._outcome.exited is None else None

    @property
    def status(self) -> Status:
        self._drain()
        if self._removed or self._outcome.removed:
            return "removed"
        if self._outcome.exited is not None:
            return "exited"
        if not self._outcome.started:
            return "created"
        with contextlib.suppress(Exception):
            if self._engine().status.value == "paused":
                return "paused"
        return "running"

    @property
    def bundle(self) -> str:
        return self._bundle.path

    def _engine(self) -> Any:
        from .runtime import Runtime

        return Runtime(_bundle.LibPaths(self._lib_root).state).load(self.id)

    # ------------------------------------------------------------------ operations
    def start(self) -> Container:
        """Start the process; returns self (so ``tc.create(...).start()`` chains)."""
        with self._lock:
            if self._supervisor is None or self._outcome.exited is not None:
                raise WrongStatus(self.id, self.status, "created")
            self._supervisor.send({"cmd": "start"})
            self._pump_until(lambda o: o.started or o.error is not None or o.exited is not None or bool(o.replies))
            if not self._outcome.started and self._outcome.error is not None:
                raise _channel.decode_error(self._outcome.error)
        return self

    def wait(self, timeout: float | None = None) -> Result[Any]:
        """Wait for the container to exit; its :class:`Result` (output is in :meth:`logs`).

        ``timeout`` raises :class:`TimeoutError` and leaves the container running.
        """
        if not self._pump_until(lambda o: o.exited is not None, timeout):
            raise TimeoutError(f"container {self.id} still running after {timeout} seconds")
        if self._outcome.exited is None:
            raise TinyContainerError(f"the supervisor of container {self.id} exited without a result")
        return result_from(self._outcome, self.args, self.id, None, None)

    def kill(self, sig: int | str = _signal.SIGKILL, *, all_processes: bool = False) -> None:
        """Send ``sig`` to the init (or every process with ``all_processes``)."""
        from .runtime import parse_signal

        self._command({"cmd": "kill", "signal": int(parse_signal(sig)), "all": all_processes})

    def stop(self, timeout: float | None = None) -> Result[Any]:
        """The stop signal (spec/image, default SIGTERM), ``timeout`` seconds (default
        ``spec.stop_timeout``) of grace, then SIGKILL to every process. Returns the result."""
        grace = self.spec.stop_timeout if timeout is None else timeout
        if self._outcome.exited is None and self._outcome.started:
            with contextlib.suppress(WrongStatus):
                self.kill(self._bundle.stop_signal)
            try:
                return self.wait(grace)
            except TimeoutError:
                pass
        if self._outcome.exited is None:
            with contextlib.suppress(WrongStatus):
                self.kill(_signal.SIGKILL, all_processes=True)
        return self.wait()

    def pause(self) -> None:
        self._engine().pause()

    def resume(self) -> None:
        self._engine().resume()

    def stats(self) -> CgroupStats:
        """A snapshot of the container's cgroup counters (while it exists)."""
        if self._removed:
            raise WrongStatus(self.id, "removed", "created, running, paused or exited")
        stats: CgroupStats = self._engine().stats()
        return stats

    def processes(self) -> list[int]:
        pids: list[int] = self._engine().processes()
        return pids

    def logs(self, stream: Literal["stdout", "stderr", "both"] = "both", *, follow: bool = False) -> Iterator[bytes]:
        """Chunks of the captured output. ``follow`` keeps reading until the container exited.

        With ``"both"`` the chunks of the two streams are interleaved in read order (their
        relative order is not recorded).
        """
        names = ("stdout", "stderr") if stream == "both" else (stream,)
        paths = [self._log_paths[0 if n == "stdout" else 1] for n in names]
        if not any(paths):
            raise TinyContainerError("this container's output is not captured to logs")
        files = []
        try:
            for path in paths:
                if path is not None:
                    with contextlib.suppress(FileNotFoundError):
                        files.append(open(path, "rb"))  # noqa: SIM115 - closed in finally
            while True:
                exited = self._outcome.exited is not None or self._removed
                got = False
                for f in files:
                    chunk = f.read(65536)
                    if chunk:
                        got = True
                        yield chunk
                if got:
                    continue
                if not follow or exited:
                    return
                self._pump_until(lambda o: o.exited is not None, _FOLLOW_POLL)
        finally:
            for f in files:
                f.close()

    def output(self) -> tuple[bytes, bytes]:
        """Everything captured so far as (stdout, stderr)."""
        return b"".join(self.logs("stdout")) if self._log_paths[0] else b"", (
            b"".join(self.logs("stderr")) if self._log_paths[1] else b""
        )

    def exec(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        user: str | int | None = None,
        capture_output: bool = True,
        text: bool | None = None,
        input: bytes | str | None = None,
        timeout: float | None = None,
        check: bool = False,
        stdin: StdioArg = None,
        stdout: StdioArg = None,
        stderr: StdioArg = None,
        launcher: Launcher | None = None,
    ) -> Result[Any]:
        """Run ``args`` inside the running container and wait for it (``subprocess.run``
        semantics; output is captured by default). ``timeout`` kills the process and raises
        :class:`TimeoutExpired`. ``usage`` holds only the wall time (the cgroup is shared)."""
        from .oci._codec import encode

        if isinstance(args, (str, bytes)) or not args:
            raise TypeError("args must be a non-empty list of strings")
        process = self._engine().config().process
        process.args = list(args)
        process.terminal = False
        if env:
            merged = dict(item.partition("=")[::2] for item in process.env or [])
            merged.update(env)
            process.env = [f"{k}={v}" for k, v in merged.items()]
        if cwd is not None:
            process.cwd = cwd
        if user is not None:
            from ._bundle import passwd_resolver
            from ._spec import _resolve_user

            uid, gid, extra, _ = _resolve_user(str(user), passwd_resolver(self._bundle.rootfs))
            from . import oci

            process.user = oci.User(uid=uid, gid=gid, additional_gids=list(extra) or None)
        if capture_output:
            if stdout is not None or stderr is not None:
                raise ValueError("stdout and stderr arguments may not be used with capture_output")
            stdout = stderr = PIPE
        if input is not None:
            stdin = PIPE
        text_mode = bool(text)
        data = input.encode() if isinstance(input, str) else input
        request = {
            "mode": "exec",
            "state_root": _bundle.LibPaths(self._lib_root).state,
            "id": self.id,
            "process": encode(process),
            "seccomp_cache": seccomp_cache(self._lib_root),
        }
        deadline = None if timeout is None else time.monotonic() + timeout
        plan = StdioPlan(stdin, stdout, stderr)
        try:
            supervisor = (launcher or default_launcher()).launch(request, plan.child_fds)
        except BaseException:
            plan.close_all()
            raise
        plan.close_child_ends()
        try:
            outcome = communicate(supervisor, plan.parent, data, deadline)
            finish_supervisor(supervisor)
        except BaseException:
            plan.close_all()
            abort(supervisor, lambda: None)
            raise
        out = decode_output(outcome.stdout if plan.parent_was_pipe(1) else None, text_mode, None, None)
        err = decode_output(outcome.stderr if plan.parent_was_pipe(2) else None, text_mode, None, None)
        if outcome.exited is None:
            if outcome.error is not None:
                raise _channel.decode_error(outcome.error)
            raise TinyContainerError("exec ended without a result")
        result = result_from(outcome, list(args), self.id, out, err)
        if outcome.timed_out:
            assert timeout is not None
            raise TimeoutExpired(list(args), timeout, out, err, result)
        if check and result.returncode != 0:
            raise container_error(result)
        return result

    def remove(self) -> None:
        """Kill whatever still runs and remove the container, its cgroup, state and bundle.
        Idempotent; also runs when the ``with`` block ends."""
        with self._lock:
            if self._removed:
                return
            for f in (self.stdin, self.stdout, self.stderr):
                if f is not None:
                    with contextlib.suppress(OSError):
                        f.close()
            sup = self._supervisor
            self._supervisor = None

            def cleanup() -> None:
                force_cleanup(self._lib_root, self.id, self._bundle.path)

            if sup is not None:
                abort(sup, cleanup)
            else:
                cleanup()
            self._removed = True

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> Container:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<tinycontainer.Container {self.id} {self.args!r}>"


def _wrap(fd: int | None, mode: str) -> Any:
    if fd is None:
        return None
    return open(fd, mode, buffering=0 if "w" in mode else -1)


def create(
    spec: Spec | None = None,
    args: Sequence[str] | None = None,
    **options: Any,
) -> Container:
    """Create a container (not started). Use as a context manager to remove it at the end.

    Options: ``stdin`` (default DEVNULL), ``stdout``/``stderr`` (default: captured to logs;
    PIPE makes ``container.stdout`` a readable file), ``env``, ``cwd``, ``lib_root``,
    ``images``, ``pull``, ``launcher``.
    """
    return Container.create(spec, args, **options)


def start(spec: Spec | None = None, args: Sequence[str] | None = None, **options: Any) -> Container:
    """:func:`create` then :meth:`Container.start`; removes the container if the start fails."""
    container = Container.create(spec, args, **options)
    try:
        container.start()
    except BaseException:
        container.remove()
        raise
    return container


__all__ = ["LOGS", "Container", "Status", "create", "start"]
