"""Container handles: lifecycle operations on a stored container, status derived from live facts."""

from __future__ import annotations

import errno
import os
import time

from .. import oci
from .._errors import ContainerNotFound, KernelError, TinyContainerError, WrongStatus, suppressed
from ..linux import proc
from . import _store

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:
    # The C module under signal.py: same functions and constants, without the IntEnum
    # wrappers whose import (enum, functools) costs every runtime command ~3 ms.
    import _signal as signal
if TYPE_CHECKING:
    from typing import Any

DEFAULT_ROOT = "/run/tcontainer-oci"


if TYPE_CHECKING:
    from enum import StrEnum as _StrEnum
else:

    class _StrEnum(str):
        """What the runtime uses of enum.StrEnum (members are instances of the class, equal to
        their strings; ``.value``) without importing enum: ~3 ms of every runtime command."""

        __slots__ = ()

        def __init_subclass__(cls) -> None:
            for name, value in list(vars(cls).items()):
                if name.isupper() and isinstance(value, str):
                    setattr(cls, name, cls(value))

        @property
        def value(self) -> str:
            return str.__str__(self)


class Status(_StrEnum):
    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value


def derive_status(state: dict[str, Any], state_dir: str, frozen: Any = None) -> Status:
    """runc's refreshState: the stored pid is only trusted together with its start time."""
    if state.get("creating"):
        creator = int(state.get("creator_pid", 0))
        if creator and proc.is_alive(creator, int(state.get("creator_start", 0))):
            return Status.CREATING
        # The runtime died mid-create (SIGKILL): nothing will finish it.
        return Status.STOPPED
    pid = int(state.get("pid", 0))
    if not proc.is_alive(pid, int(state.get("pid_start", 0))):
        return Status.STOPPED
    if os.path.exists(_store.fifo_path(state_dir)):
        return Status.CREATED
    if frozen is not None and frozen():
        return Status.PAUSED
    return Status.RUNNING


def exit_code(wait_status: int) -> int:
    """A wait(2) status as a shell reports it: the exit code, or 128 + the signal number."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def wait_exit(pid: int) -> int:
    """Wait for our child ``pid`` (the init, when we are its subreaper) to exit; its exit code."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return 255
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            return exit_code(status)


def release_init(state_dir: str) -> bool:
    """Let a created container's init go on to execve(2), without waiting for it: False if
    the init is gone. Only for the one process that owns the container (no store lock) and
    knows it has no poststart hooks: ``start`` must return only once the program runs, so that
    those hooks follow it (runtime-spec), which costs a wake-up of the init and its execve."""
    # Status derives "created" from the fifo's presence: the container is running once it is gone.
    return _store.signal_fifo(state_dir, wait_for_exec=False)


class Container:
    """A stored container. Obtain one from :class:`Runtime` (``create``/``load``)."""

    def __init__(self, store: _store.Store, container_id: str, state: dict[str, Any]) -> None:
        self._store = store
        self.id = container_id
        self._state = state
        self._cgroup_cache: tuple[Any] | None = None

    # ------------------------------------------------------------------ facts
    @property
    def state_dir(self) -> str:
        return self._store.dir(self.id)

    @property
    def bundle(self) -> str:
        return str(self._state.get("bundle", ""))

    @property
    def pid(self) -> int:
        return int(self._state.get("pid", 0))

    @property
    def created(self) -> str:
        return str(self._state.get("created", ""))

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self._state.get("annotations") or {})

    def refresh(self) -> None:
        self._state = self._store.read(self.id)

    def _manager(self) -> Any:
        saved = self._state.get("cgroup")
        if not saved:
            return None
        from ..linux import cgroups

        return cgroups.load_manager(saved)

    def cgroup(self) -> Any:
        """The container's cgroup driver as recorded at create (None: it has none), loaded
        once: a monitor that reads its counters after every exit need not re-read the state."""
        if self._cgroup_cache is None:
            self._cgroup_cache = (self._manager(),)
        return self._cgroup_cache[0]

    def _frozen(self) -> bool:
        # Read the freezer file recorded at create instead of loading the cgroup driver:
        # `state` is on podman's hot path.
        path = str(self._state.get("freeze_file") or "")
        if not path:
            return False
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            return False
        if path.endswith("freezer.state"):
            return text.strip() == "FROZEN"
        return "frozen 1" in text.splitlines()

    @property
    def status(self) -> Status:
        return derive_status(self._state, self.state_dir, self._frozen)

    def state(self) -> oci.State:
        status = self.status
        return oci.State(
            id=self.id,
            status=status.value,
            # runc and crun report pid 0 once the container stopped: the number may be reused.
            pid=self.pid if status not in (Status.STOPPED, Status.CREATING) else 0,
            bundle=self.bundle,
            annotations=self.annotations,
        )

    def config(self) -> oci.Config:
        path = os.path.join(self.state_dir, _store.CONFIG_COPY)
        with open(path, "rb") as f:
            return oci.Config.from_json(f.read())

    def has_hooks(self, stage: str) -> bool:
        """Whether the config has hooks for ``stage`` ("poststart", "poststop", ...): from the
        stages create recorded, or a look at the raw config (most containers have no hooks,
        and decoding the whole config would cost more than the command itself)."""
        stages = self._state.get("hook_stages")
        if isinstance(stages, list):  # recorded by create: not even the config need be read
            return stage in stages
        from ..oci import _json

        try:
            with open(os.path.join(self.state_dir, _store.CONFIG_COPY), "rb") as f:
                raw = _json.loads(f.read())
        except (OSError, ValueError):
            return False
        hooks = raw.get("hooks") if isinstance(raw, dict) else None
        return isinstance(hooks, dict) and bool(hooks.get(stage))

    # ------------------------------------------------------------------ operations
    def start(self, *, fresh_state: bool = False) -> None:
        """Release the created container's init into its program.

        ``fresh_state``: this handle's state is the one ``create`` returned in this process
        (``run``). Nothing but ``delete`` (which removes it) changes a state after create, so it
        need not be read again, and the status check is the fifo's own: only the waiting init
        holds its read end (create closed its copy), so the open for writing succeeds exactly
        when the container is *created* and its init alive - the cases the full check tells
        apart are only looked at when it fails, to say why."""
        with self._store.locked(self.id):
            if not fresh_state:
                self.refresh()
                status = self.status
                if status != Status.CREATED:
                    raise WrongStatus(self.id, status.value, "created")
            if not _store.signal_fifo(self.state_dir):
                if fresh_state:
                    self.refresh()
                    status = self.status
                    if status != Status.CREATED:
                        raise WrongStatus(self.id, status.value, "created")
                raise TinyContainerError(f"container {self.id!r} init exited before start")
        if not self.has_hooks("poststart"):
            return
        config = self.config()
        if config.hooks and config.hooks.poststart:
            from ._hooks import hook_state, run_hooks

            state = hook_state(self.id, "running", self.pid, self.bundle, config.annotations)
            failures = run_hooks(config.hooks.poststart, state, "poststart", keep_going=True)
            if failures:
                # The spec: a failing poststart hook is logged, the container keeps running.
                from ._log import warn

                for text in failures:
                    warn(text)

    def kill(self, sig: int | str = signal.SIGTERM, *, all_processes: bool = False) -> None:
        from ._signals import parse_signal  # only kill parses signal names: not on run's path

        signum = parse_signal(sig)
        self.refresh()
        status = self.status
        if status in (Status.STOPPED, Status.CREATING):
            raise WrongStatus(self.id, status.value, "created, running or paused")
        if all_processes:
            mgr = self._manager()
            # Rootless without delegated cgroups (v1): there is no cgroup to freeze and list,
            # so only the init can be signalled; SIGKILL to a pid namespace's init still
            # kills every process in it (pid_namespaces(7)).
            from ._control import rootless_without_cgroups

            if mgr is not None and not rootless_without_cgroups(mgr):
                mgr.kill_all(signum)
                return
        self._signal_init(signum)

    def _signal_init(self, signum: int) -> None:
        pid = self.pid
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        except OSError as exc:
            raise KernelError.from_oserror(exc, "pidfd_open", f"pid {pid}") from None
        try:
            # The pidfd pins the process: re-check the start time through it so a reused pid
            # is never signalled.
            if not proc.is_alive(pid, int(self._state.get("pid_start", 0))):
                return
            signal.pidfd_send_signal(pidfd, signum)
        except ProcessLookupError:
            return
        finally:
            os.close(pidfd)

    # Rare operations live in ._control, imported when called (see there).
    def pause(self) -> None:
        from ._control import pause

        pause(self)

    def resume(self) -> None:
        from ._control import resume

        resume(self)

    def processes(self) -> list[int]:
        from ._control import processes

        return processes(self)

    def update(self, resources: oci.Resources) -> None:
        from ._control import update

        update(self, resources)

    def stats(self) -> Any:
        from ._control import stats

        return stats(self)

    def delete(self, *, force: bool = False, fresh_state: bool = False) -> None:
        """Remove a stopped container (``force``: any, killing its processes first).

        ``fresh_state``: as for :meth:`start` - this handle's state is the one ``create``
        returned in this process, which only ``delete`` changes: it is not read again."""
        with self._store.locked(self.id):
            if not fresh_state:
                self.refresh()
            status = self.status
            if status != Status.STOPPED:
                if not force:
                    # runtime-spec: deleting a container that is not stopped MUST fail and MUST
                    # have no effect (runc and crun delete a "created" one anyway).
                    raise WrongStatus(self.id, status.value, "stopped (use --force)")
                self._kill_everything()
            # A fresh state's driver is the one create made (cached by Runtime.create); another
            # handle's cache may predate a refresh, so it loads the state's.
            mgr = self.cgroup() if fresh_state else self._manager()
            if mgr is not None:
                mgr.destroy()
            poststop = None
            if self.has_hooks("poststop"):
                with suppressed(Exception):
                    cfg = self.config()
                    poststop = cfg.hooks.poststop if cfg.hooks else None
            if poststop:
                from ._hooks import hook_state, run_hooks
                from ._log import warn

                state = hook_state(self.id, "stopped", 0, self.bundle, self.annotations)
                for text in run_hooks(poststop, state, "poststop", keep_going=True):
                    warn(text)
            self._store.remove(self.id)

    def _kill_everything(self) -> None:
        mgr = self._manager()
        pid = self.pid
        start = int(self._state.get("pid_start", 0))
        if mgr is not None:
            with suppressed(OSError, TinyContainerError):
                mgr.kill_all(signal.SIGKILL)
            with suppressed(OSError, TinyContainerError):
                mgr.thaw()
        if pid and proc.is_alive(pid, start):
            self._signal_init(signal.SIGKILL)
        # SIGKILL of a pid namespace's init kills every process in it (pid_namespaces(7)).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = pid and proc.is_alive(pid, start)
            left = mgr.pids() if mgr is not None else []
            if not alive and not left:
                return
            if left:
                for p in left:
                    with suppressed(OSError):
                        os.kill(p, signal.SIGKILL)
            time.sleep(0.01)
        raise KernelError(errno.EBUSY, "kill", f"pid {pid}", "container processes did not exit after SIGKILL")


class Runtime:
    """Containers stored under ``root`` (runc's --root)."""

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.store = _store.Store(root)

    def load(self, container_id: str) -> Container:
        _store.check_id(container_id)
        state = self.store.read(container_id)
        return Container(self.store, container_id, state)

    def list(self) -> list[Container]:
        out = []
        for cid in self.store.ids():
            with suppressed(ContainerNotFound):
                out.append(self.load(cid))
        return out

    @property
    def seccomp_cache(self) -> str:
        """Compiled seccomp filters are cached next to the state (hidden names are no ids)."""
        return os.path.join(self.store.root, ".seccomp-cache")

    def create(self, container_id: str, bundle: str, config: oci.Config | None = None, **options: Any) -> Container:
        from ._create import CreateOptions, create

        options.setdefault("seccomp_cache", self.seccomp_cache)

        result = create(self.store, container_id, bundle, config, CreateOptions(**options))
        container = Container(self.store, container_id, result.state)
        container.console_fd = result.console_fd  # type: ignore[attr-defined]
        # The driver create used, which saved what _manager() would load back: ``run`` removes
        # the cgroups with it, without decoding the state's copy (delete(fresh_state=True)).
        container._cgroup_cache = (result.manager,)
        return container
