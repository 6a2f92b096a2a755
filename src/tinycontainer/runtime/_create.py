"""The parent side of ``create``: validate, fork, put the init in its cgroups, wait for READY.

See :mod:`._sync` for the ladder. On any failure the half-made container is taken apart in
reverse (kill the init by pid, remove the cgroups, remove the state directory), so a failed
create leaves no process, cgroup or state behind.
"""

from __future__ import annotations

import os
import time

from .. import oci
from .._errors import KernelError, SpecError, TinyContainerError, suppressed
from ..linux import _consts as C
from ..linux import cgroups as _cgroups
from ..linux import namespaces, proc
from ..linux import rootfs as _rootfs
from ..linux._syscalls import LinuxSyscalls, Syscalls
from ..oci._record import record
from . import _child, _hooks, _init, _store, _sync
from ._validate import validate

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:
    # The C module under signal.py: same functions and constants, without the IntEnum
    # wrappers whose import (enum, functools) costs every runtime command ~3 ms.
    import _signal as signal
if TYPE_CHECKING:
    from typing import Any

SETUP_TIMEOUT = 120.0


@record
class CreateOptions:
    console_socket: str | None = None
    pid_file: str | None = None
    no_pivot: bool = False
    no_new_keyring: bool = False
    preserve_fds: int = 0
    # Keep the container's init as our child (PR_SET_CHILD_SUBREAPER) so ``run`` can wait(2)
    subreaper: bool = False
    # ``run`` attached with a terminal: the pty master comes back to us instead of a socket
    keep_console: bool = False
    detached: bool = True
    rootless: bool = False
    seccomp_cache: str | None = None


@record
class Created:
    pid: int
    state: dict[str, Any]
    console_fd: int | None
    # The cgroup driver that made the container's cgroups (what state["cgroup"] loads back to)
    manager: Any = None


def load_bundle_config(bundle: str) -> oci.Config:
    return _load_bundle(bundle)[0]


_MAX_CONFIG = 64 << 20


def _load_bundle(bundle: str) -> tuple[oci.Config, bytes]:
    """The bundle's config, and the bytes it was parsed from."""
    path = os.path.join(bundle, "config.json")
    try:
        raw = proc.read_file(path, _MAX_CONFIG)
    except FileNotFoundError:
        raise SpecError(f"no config.json in bundle {bundle}") from None
    except OSError as exc:
        raise KernelError.from_oserror(exc, "open", path) from None
    return oci.Config.from_json(raw), raw



def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


def _unshare_flags(config: oci.Config) -> tuple[int, dict[str, str], bool, bool]:
    flags = 0
    join: dict[str, str] = {}
    new_user = False
    new_cgroup = False
    for ns in (config.linux.namespaces if config.linux else None) or []:
        if ns.path:
            join[ns.type] = ns.path
        elif ns.type == "user":
            new_user = True
        elif ns.type == "cgroup":
            new_cgroup = True
        else:
            flags |= namespaces.FLAGS[ns.type]
    return flags, join, new_user, new_cgroup


def _plan(config: oci.Config, options: CreateOptions) -> _child.ProcessPlan:
    assert config.process is not None
    plan = _child.ProcessPlan(process=config.process, preserve_fds=options.preserve_fds)
    linux = config.linux
    if linux and linux.seccomp is not None:
        from ..linux import seccomp

        plan.seccomp_bpf = seccomp.compile_cached(linux.seccomp, options.seccomp_cache)
        for flag in linux.seccomp.flags or []:
            if flag not in _child.SECCOMP_FLAG_BITS:
                raise SpecError(f"unknown seccomp flag {flag!r}", field="linux.seccomp.flags")
            plan.seccomp_flags |= _child.SECCOMP_FLAG_BITS[flag]
    if linux and linux.personality is not None:
        plan.personality = 0x0008 if linux.personality.domain == "LINUX32" else 0
    if options.preserve_fds:
        plan.extra_env.append(f"LISTEN_FDS={options.preserve_fds}")
    from ._reaper import ANNOTATION

    plan.reaper = (config.annotations or {}).get(ANNOTATION) == "true"
    return plan


def device_rules(config: oci.Config) -> list[oci.DeviceRule]:
    """The devices cgroup list: the config's rules (deny-all when absent), then runc's default
    allow-list, then every device the config creates - podman sends only deny-all and
    expects /dev/null & co. to keep working."""
    linux = config.linux
    resources = linux.resources if linux else None
    rules = list((resources.devices if resources else None) or [oci.DeviceRule(allow=False, access="rwm")])
    rules.extend(_cgroups.DEFAULT_ALLOWED_DEVICES)
    for dev in (linux.devices if linux else None) or []:
        if dev.type in ("c", "b", "u") and dev.major is not None and dev.minor is not None:
            rules.append(
                oci.DeviceRule(
                    allow=True,
                    type="c" if dev.type == "u" else dev.type,
                    major=dev.major,
                    minor=dev.minor,
                    access="rwm",
                )
            )
    return rules


def write_id_maps(pid: int, config: oci.Config, rootless: bool) -> None:
    linux = config.linux
    assert linux is not None
    uid_maps = linux.uid_mappings or []
    gid_maps = linux.gid_mappings or []
    if os.geteuid() == 0 and not rootless:
        for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
            path = f"/proc/{pid}/{name}"
            text = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, text.encode())
            except OSError as exc:
                raise KernelError(exc.errno or 0, "write", path, text.strip().replace("\n", "; ")) from None
            finally:
                os.close(fd)
        return
    # Rootless: only the setuid helpers from the uidmap package may map more than our own id
    # (user_namespaces(7), "Defining user and group ID mappings").
    import shutil
    import subprocess

    for tool, maps in (("newuidmap", uid_maps), ("newgidmap", gid_maps)):
        exe = shutil.which(tool) or f"/usr/bin/{tool}"
        args = [exe, str(pid)]
        for m in maps:
            args += [str(m.container_id), str(m.host_id), str(m.size)]
        try:
            result = subprocess.run(args, capture_output=True, timeout=30, check=False)
        except OSError as exc:
            raise KernelError.from_oserror(exc, "exec", exe) from None
        if result.returncode != 0:
            msg = result.stderr.decode(errors="replace").strip()
            raise TinyContainerError(f"{tool} failed: {msg or 'exit status ' + str(result.returncode)}")


def create(
    store: _store.Store,
    container_id: str,
    bundle: str,
    config: oci.Config | None = None,
    options: CreateOptions | None = None,
    syscalls: Syscalls | None = None,
) -> Created:
    options = options or CreateOptions()
    _store.check_id(container_id)
    bundle = os.path.abspath(bundle)
    # The state keeps a copy of the config create used: the bytes it was parsed from when it
    # came from the bundle (parsing them again gives the same config), saving the encoding.
    raw_config: bytes | None = None
    if config is None:
        config, raw_config = _load_bundle(bundle)
    validate(
        config, bundle, console_socket=options.console_socket, detached=options.detached and not options.keep_console
    )
    plan = _plan(config, options)
    if config.hooks is not None:
        import subprocess  # noqa: F401  (hooks run in the child: nothing may be imported there)
    if config.process is not None and config.process.terminal:
        _sync.preload_fd_passing()  # the init sends the pty master

    flags, join, new_user, new_cgroup = _unshare_flags(config)
    # Worked out here, before anything is made: a bad mount fails without a fork, and the init
    # (whose every write to memory shared with us costs a copy-on-write fault) only executes it.
    # Paths resolve alike only when the init copies our mount namespace, not when it joins one.
    rootfs_plan = None if "mount" in join else _rootfs.plan_rootfs(config, bundle, same_mount_ns=True)
    sys = syscalls or LinuxSyscalls()
    linux = config.linux
    resources = linux.resources if linux else None
    cgroups_path = linux.cgroups_path if linux else None
    manager = _cgroups.create_manager(cgroups_path, container_id, rootless=options.rootless)

    state_dir = store.create_dir(container_id)
    state: dict[str, Any] = {
        "id": container_id,
        "pid": 0,
        "pid_start": 0,
        "bundle": bundle,
        "rootfs": _rootfs_path(config, bundle),
        "created": _now(),
        "owner": str(os.geteuid()),
        "annotations": config.annotations or {},
        "cgroup": manager.to_dict(),
        "creating": True,
        "creator_pid": os.getpid(),
        "creator_start": proc.own_start_time(),
        "terminal": bool(config.process and config.process.terminal),
        "hook_stages": _later_hook_stages(config),
    }
    intermediate = 0
    init_pid = 0
    init_start = 0
    parent_sock = child_sock = None
    fifo_fd = -1
    console_fd: int | None = None
    warmer = 0
    cgroup_tasks: list[tuple[int, str]] | None = None
    # Without a user namespace, joined namespaces or a time namespace, the intermediate process
    # has nothing to do that the init cannot: we fork the init ourselves (one fork less, ~1.5 ms)
    # when it is to be our child anyway (subreaper).
    direct = options.subreaper and not new_user and not join and not flags & C.CLONE_NEWTIME
    try:
        limits = _with_devices(resources, config) if resources is not None or not options.rootless else None
        _make_cgroups(store, container_id, state, manager, limits)
        # The init moves itself in first thing, through files we open: opened here, they work
        # even from the user namespace the intermediate may put it in.
        cgroup_tasks = _open_tasks(manager)
        if cgroup_tasks is None:
            warmer = _start_migration_warmup(manager)
        fifo = _store.make_fifo(state_dir)
        # crun's order: we open the read end and the init inherits it; ``start`` opens the
        # write end. Opening for read with O_NONBLOCK does not wait for a writer (fifo(7)).
        fifo_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        parent_sock, child_sock = _sync.socketpair()
        child_sock.set_inheritable(True)
        if options.subreaper:
            sys.prctl(C.PR_SET_CHILD_SUBREAPER, 1)
        ctx = _init.InitContext(
            container_id=container_id,
            config=config,
            bundle=bundle,
            state_dir=state_dir,
            plan=plan,
            sock=child_sock,
            fifo_fd=fifo_fd,
            syscalls=sys,
            no_pivot=options.no_pivot,
            new_userns=new_user,
            unshare_flags=flags,
            join_paths=join,
            new_cgroupns=new_cgroup,
            new_keyring=not options.no_new_keyring,
            cgroup_tasks=cgroup_tasks,
            report_joined=direct and cgroup_tasks is not None,
            init_unshares=flags & ~C.CLONE_NEWPID if direct else 0,
            argv_area=_argv_area(),
            rootfs_plan=rootfs_plan,
        )
        _write_config_copy(state_dir, raw_config if raw_config is not None else config.to_json(indent=None).encode())
        _child.prepare_in_parent(plan)
        # From fork(2) to READY we do as little as we can: every page either side writes first
        # costs a copy-on-write fault (~1.5 us here), and on this VM the new child waits for our
        # CPU until we block in recv (the scheduler packs a fork onto its parent's vCPU). What
        # needs no answer from the child comes before the fork; what needs the init's pid
        # (its start time, the state with the pid, the cgroup check) comes after READY.
        if direct:
            init_pid = _fork_init(ctx, parent_sock, new_pidns=bool(flags & C.CLONE_NEWPID))
        else:
            intermediate = os.fork()
            if intermediate == 0:
                parent_sock.close()
                _init.intermediate_main(ctx)
        # Our copy closed, the socket reports EOF as soon as the child side dies.
        child_sock.close()
        child_sock = None

        staged = None
        if ctx.report_joined:
            # (2) the init moved itself into its cgroups: what READY would otherwise wait for
            # (the cgroup check, the init's start time, the state with its pid) is done now,
            # on the other CPU, while the init builds its mounts. Our child, not reaped: its
            # pid stays its own until we wait(2) for it. The state goes in only after READY:
            # until then the container is "creating" (derive_status).
            _sync.recv(parent_sock, _sync.JOINED, SETUP_TIMEOUT)
            try:
                manager.verify(init_pid)
            except (OSError, TinyContainerError):
                # An init that failed just after JOINED has exited, and an exited task shows the
                # root cgroups (kernel/cgroup: cgroup_exit): its ERROR, queued before it exited,
                # says why, not this check.
                _sync.raise_pending_error(parent_sock)
                raise
            init_start = _start_time(init_pid)
            staged = store.stage(container_id, _final_state(state, init_pid, init_start))
        if new_user:
            _sync.recv(parent_sock, _sync.USERNS, SETUP_TIMEOUT)
            write_id_maps(intermediate, config, options.rootless)
            _sync.send(parent_sock, _sync.USERNS_DONE)
        if not direct:
            msg, _ = _sync.recv(parent_sock, _sync.PID, SETUP_TIMEOUT)
            init_pid = int(msg["pid"])
            # Not our child: once it dies, whoever reaps it frees the pid for reuse, so its
            # start time is read now, while it cannot have got far.
            init_start = _start_time(init_pid)
        if cgroup_tasks is None:
            # A cold move into a cgroup waits for an RCU grace period (see _start_migration_warmup);
            # the init meanwhile builds its mounts and waits for (3) before anything that depends
            # on its cgroups (see _init._init).
            try:
                manager.apply(init_pid)
                _sync.send(parent_sock, _sync.CGROUP_DONE)
            except (OSError, TinyContainerError):
                _sync.raise_pending_error(parent_sock)
                raise
        if intermediate:
            _reap(intermediate)
            intermediate = 0

        if config.process and config.process.terminal:
            _, fds = _sync.recv(parent_sock, _sync.CONSOLE, SETUP_TIMEOUT)
            if not fds:
                raise TinyContainerError("the container's init sent no terminal")
            console_fd = fds[0]
            if options.console_socket:
                try:
                    _init.send_console_to_socket(options.console_socket, console_fd)
                except OSError as exc:
                    raise KernelError.from_oserror(exc, "connect", options.console_socket) from None
                finally:
                    if not options.keep_console:
                        os.close(console_fd)
                        console_fd = None
        hooks = config.hooks
        if hooks and (hooks.prestart or hooks.create_runtime):
            _sync.recv(parent_sock, _sync.HOOKS, SETUP_TIMEOUT)
            # runtime-spec state.md: "created" is the status once the environment exists (after
            # lifecycle step 2); prestart/createRuntime hooks are steps 3-4 (runtime.md), as crun does.
            hstate = _hooks.hook_state(container_id, "created", init_pid, bundle, config.annotations)
            _hooks.run_hooks(hooks.prestart, hstate, "prestart")
            _hooks.run_hooks(hooks.create_runtime, hstate, "createRuntime")
            _sync.send(parent_sock, _sync.HOOKS_DONE)
        _sync.recv(parent_sock, _sync.READY, None if config.hooks else SETUP_TIMEOUT)
        if staged is None:
            if direct:
                # Our child, not reaped: its pid stays its own until we wait(2) for it.
                init_start = _start_time(init_pid)
            if cgroup_tasks is not None:
                manager.verify(init_pid)  # the init moved itself: check it, as apply() does
        os.close(fifo_fd)  # from now on only the init holds the read end: ``start`` relies on it
        fifo_fd = -1
        _close_tasks(cgroup_tasks)
        # One state write for the init: while "creating", status and ``state`` never read the
        # pid (derive_status), so writing it before READY would only cost the init time.
        state = _final_state(state, init_pid, init_start)
        if staged is not None:
            store.commit(container_id, staged)
        else:
            store.write(container_id, state)
        if options.pid_file:
            write_pid_file(options.pid_file, init_pid)
    except BaseException:
        if console_fd is not None:
            os.close(console_fd)
        if intermediate:
            with suppressed(OSError):
                os.kill(intermediate, signal.SIGKILL)
            _reap(intermediate)
        if direct and init_pid:
            # Our unreaped child (a zombie at worst): the pid cannot belong to anyone else.
            with suppressed(OSError):
                os.kill(init_pid, signal.SIGKILL)
            _reap(init_pid)
        elif init_pid and proc.is_alive(init_pid, init_start):
            with suppressed(OSError):
                os.kill(init_pid, signal.SIGKILL)
            if options.subreaper:
                _reap(init_pid)
            _wait_gone(init_pid, init_start)
        if warmer:
            _reap(warmer)  # it may still sit in a cgroup, which rmdir(2) would refuse
            warmer = 0
        with suppressed(Exception):
            _kill_leftovers(manager)
        with suppressed(Exception):
            manager.destroy()
        store.remove(container_id)
        raise
    finally:
        _close_tasks(cgroup_tasks)
        if warmer:
            _reap(warmer)
        if fifo_fd >= 0:
            os.close(fifo_fd)
        if parent_sock is not None:
            parent_sock.close()
        if child_sock is not None:
            child_sock.close()
    return Created(pid=init_pid, state=state, console_fd=console_fd, manager=manager)


# The hierarchy the warm-up child joins: one whose membership costs the container nothing.
_WARMUP_ORDER = ("freezer", "cpuacct", "cpu", "blkio", "devices", "unified")


def _start_migration_warmup(manager: _cgroups.CgroupManager) -> int:
    """Start the cgroup subsystem's slow path now, in a short-lived child; its pid.

    Every move into a cgroup takes the global cgroup_threadgroup_rwsem for writing
    (kernel/cgroup/cgroup.c, cgroup_attach_lock), and when nobody has done so for a moment
    that waits for an RCU grace period (rcu_sync_enter: synchronize_rcu): 5-20 ms of sleep on
    this machine, the largest single cost of a container start. Writers arriving during the
    wait share it, and after it the lock stays cheap for about another grace period. So a
    child of ours moves itself into one of the new (already limited) cgroups and exits,
    while we go on to fork the container; our move of the init then finds the lock warm or
    half-way there. (Writing a pid that does not exist would not do: this kernel looks the
    pid up before taking the lock.) Nothing depends on it: if it fails, we lose the overlap.
    """
    paths = manager.paths()
    chosen = next((paths[c] for c in _WARMUP_ORDER if c in paths), None)
    if chosen is None:
        return 0
    procs = os.path.join(chosen, "cgroup.procs")
    pid = os.fork()
    if pid == 0:
        try:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
        except OSError:
            pass
        os._exit(0)
    return pid


def _fork_init(ctx: _init.InitContext, parent_sock: _sync.Channel, *, new_pidns: bool) -> int:
    """Fork the init straight from here; its pid.

    A new pid namespace is for the children of whoever unshares it (pid_namespaces(7),
    /proc/PID/ns/pid_for_children), so we unshare it, fork, and go back to our own with
    setns(2) - allowed, it is our active namespace. Namespaces are per thread: the other threads
    of a library caller never see the change. The init unshares the others itself."""
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC) if new_pidns else -1
    try:
        if new_pidns:
            ctx.syscalls.unshare(C.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            try:
                if own >= 0:
                    os.close(own)
                parent_sock.close()
            except BaseException:
                os._exit(1)  # never fall back into the parent's code below
            _init.init_main(ctx, [])
        return pid
    finally:
        if own >= 0:
            try:
                ctx.syscalls.setns(own, C.CLONE_NEWPID, "/proc/self/ns/pid")
            finally:
                os.close(own)


def _kill_leftovers(manager: _cgroups.CgroupManager, timeout: float = 5.0) -> None:
    """Kill what is still in the container's cgroups after a failed create: an init whose pid
    never reached us (the intermediate failed after forking it) moved itself in first thing,
    and rmdir(2) refuses a cgroup that holds a process."""
    if not manager.pids():
        return
    manager.kill_all(signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while manager.pids() and time.monotonic() < deadline:
        time.sleep(0.001)


def _start_time(pid: int) -> int:
    st = proc.read_stat(pid)
    return st.start_time if st else 0


def _final_state(state: dict[str, Any], pid: int, pid_start: int) -> dict[str, Any]:
    """The state once create is done: the init's pid, no longer "creating"."""
    final = dict(state, pid=pid, pid_start=pid_start)
    for key in ("creating", "creator_pid", "creator_start"):
        final.pop(key, None)
    return final


def _argv_area() -> tuple[int, int] | None:
    try:
        return proc.argv_area()
    except (OSError, ValueError, IndexError):
        return None  # the init then reads it itself, and shows our argv if that fails too


def _later_hook_stages(config: oci.Config) -> list[str]:
    """The hook stages that ``start`` and ``delete`` run, which they read from the state."""
    hooks = config.hooks
    if hooks is None:
        return []
    return [stage for stage, listed in (("poststart", hooks.poststart), ("poststop", hooks.poststop)) if listed]


def _make_cgroups(
    store: _store.Store,
    container_id: str,
    state: dict[str, Any],
    manager: _cgroups.CgroupManager,
    limits: oci.Resources | None,
) -> None:
    # State first, naming the cgroups before they exist: a runtime killed from here on leaves
    # a "stopped" container whose `delete --force` finds and removes them (the leaf goes even
    # when not yet recorded as created). They are made once the state directory has claimed
    # the id: a duplicate id must never touch the other container's cgroups.
    store.write(container_id, state, first=True)
    manager.create()
    # create() records which parent directories it made, so that delete removes exactly those.
    state["cgroup"] = manager.to_dict()
    state["freeze_file"] = _freeze_file(manager)
    # Limits before any process (even the warm-up child) joins: none runs in them unlimited.
    if limits is not None:
        manager.set(limits)
    if _made_ancestors(manager):
        # Only then does the state differ in what delete must remove (it always removes the
        # leaf); otherwise this write waits for the one after READY.
        store.write(container_id, state)


def _made_ancestors(manager: _cgroups.CgroupManager) -> bool:
    """Whether create() made directories above the container's own cgroup(s)."""
    leaves = set(manager.paths().values())
    created = manager.to_dict().get("created")
    return isinstance(created, list) and any(path not in leaves for path in created)


def _open_tasks(manager: _cgroups.CgroupManager) -> list[tuple[int, str]] | None:
    """The ``tasks`` files the init writes to move itself into its cgroups; None when the
    driver cannot do that (see V1Manager.self_attach_paths) and we move it instead."""
    paths = manager.self_attach_paths()
    if paths is None:
        return None
    opened: list[tuple[int, str]] = []
    try:
        for path in paths:
            opened.append((os.open(path, os.O_WRONLY | os.O_CLOEXEC), path))
    except OSError as exc:
        _close_tasks(opened)
        raise KernelError.from_oserror(exc, "open", path) from None
    return opened


def _close_tasks(tasks: list[tuple[int, str]] | None) -> None:
    while tasks:
        fd, _path = tasks.pop()
        os.close(fd)


def _write_config_copy(state_dir: str, data: bytes) -> None:
    path = os.path.join(state_dir, _store.CONFIG_COPY)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _freeze_file(manager: _cgroups.CgroupManager) -> str:
    paths = manager.paths()
    if "freezer" in paths:
        return os.path.join(paths["freezer"], "freezer.state")
    if "unified" in paths:
        return os.path.join(paths["unified"], "cgroup.events")
    return ""


def _with_devices(resources: oci.Resources | None, config: oci.Config) -> oci.Resources:
    from ..oci._record import replace

    base = resources if resources is not None else oci.Resources()
    return replace(base, devices=device_rules(config))


def _rootfs_path(config: oci.Config, bundle: str) -> str:
    assert config.root is not None
    return config.root.path if os.path.isabs(config.root.path) else os.path.join(bundle, config.root.path)


def _reap(pid: int) -> None:
    with suppressed(ChildProcessError):
        os.waitpid(pid, 0)


def _wait_gone(pid: int, start: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while proc.is_alive(pid, start) and time.monotonic() < deadline:
        time.sleep(0.005)


def write_pid_file(path: str, pid: int) -> None:
    path = os.path.abspath(path)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
