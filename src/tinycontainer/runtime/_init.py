"""The child side of ``create``: the intermediate process and the container's init.

Runs in forked children of the runtime, so it imports only ``linux``, ``oci``, ``_errors``,
the stdlib and its siblings ``_sync``/``_child``/``_hooks`` (which do the same). Every module it
needs is imported by the parent before fork(2): nothing is loaded from disk once the child may
be inside an untrusted root (CVE-2019-14271 loaded the container's libraries that way).

The sync points (1)-(6) are those of the ladder in :mod:`._sync`.
"""

from __future__ import annotations

import fcntl
import os
import select

from .. import oci
from .._errors import KernelError, suppressed
from ..linux import _consts as C
from ..linux import _libc, namespaces, netdev
from ..linux import proc as proc_info
from ..linux import rootfs as _rootfs
from ..linux._syscalls import Syscalls
from ..oci._record import record
from . import _child, _hooks, _reaper, _sync

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:
    # The C module under signal.py: same functions and constants, without the IntEnum
    # wrappers whose import (enum, functools) costs every runtime command ~3 ms.
    import _signal as signal
if TYPE_CHECKING:
    from typing import NoReturn


@record
class InitContext:
    container_id: str
    config: oci.Config
    bundle: str
    state_dir: str
    plan: _child.ProcessPlan
    sock: _sync.Channel
    fifo_fd: int
    syscalls: Syscalls
    no_pivot: bool = False
    new_userns: bool = False
    # Namespaces to create (clone flags) and to join (kind -> path)
    unshare_flags: int = 0
    join_paths: dict[str, str] | None = None
    new_cgroupns: bool = False
    new_keyring: bool = True
    # (fd, path) of the ``tasks`` file in each of the container's v1 cgroups, opened by the
    # parent: the init moves itself in first thing (V1Manager.self_attach_paths says why).
    # None: the parent moves the init and sends (3) CGROUP_DONE.
    cgroup_tasks: list[tuple[int, str]] | None = None
    # Send (2) JOINED once in them (the runtime forked us directly: no PID message to race with)
    report_joined: bool = False
    # Clone flags the init unshares itself: set when the runtime forked it directly, without
    # the intermediate (which otherwise unshares them before forking the init)
    init_unshares: int = 0
    # The runtime's argv area (proc.argv_area), which the forked init shares
    argv_area: tuple[int, int] | None = None
    # rootfs.plan_rootfs(config, bundle), worked out by the parent before fork
    rootfs_plan: _rootfs.RootfsPlan | None = None
    # When the runtime runs `run` attached, stdio stays; a detached create keeps it too
    # (conmon hands us pipes). Only a terminal replaces it.


# ---------------------------------------------------------------- intermediate


def intermediate_main(ctx: InitContext) -> NoReturn:
    code = 1
    try:
        _intermediate(ctx)
        code = 0
    except BaseException as exc:
        _sync.send_error(ctx.sock, exc)
    os._exit(code)


def _intermediate(ctx: InitContext) -> None:
    sys = ctx.syscalls
    opened = namespaces.open_paths(ctx.join_paths or {})
    # Joined user namespace first: it gives the capabilities the other setns(2) calls need.
    namespaces.join(opened, sys, only=("user",))
    if ctx.new_userns:
        sys.unshare(C.CLONE_NEWUSER)
        # (1) the parent writes uid_map/gid_map: only a process outside may map ids (user_namespaces(7))
        _sync.send(ctx.sock, _sync.USERNS)
        _sync.recv(ctx.sock, _sync.USERNS_DONE)
    if ctx.new_userns or "user" in (ctx.join_paths or {}):
        # Become the namespace's root so that files created in the rootfs belong to it.
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    namespaces.join(opened, sys, only=("ipc", "uts", "network", "pid", "time", "mount"))
    flags = ctx.unshare_flags
    if flags:
        sys.unshare(flags)
    if flags & C.CLONE_NEWTIME:
        _write_time_offsets(ctx.config)
    # The init shares our socket to the parent and must send nothing before (2) PID: with
    # nothing else to wait for it could reach READY (or fail) first, and a parent that never
    # learnt its pid could neither wait for nor kill it. It reads this pipe first.
    pid_sent_r, pid_sent_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(pid_sent_w)
        init_main(ctx, opened, after_pid_sent=pid_sent_r)
    os.close(pid_sent_r)
    try:
        namespaces.close_all(opened)
        _close_tasks(ctx)
        # (2) the init's pid as the parent sees it (we are still in the parent's pid namespace)
        _sync.send(ctx.sock, _sync.PID, pid=pid)
        os.write(pid_sent_w, b"1")
    finally:
        os.close(pid_sent_w)  # should we fail, the init reads EOF: the parent has our ERROR


def _write_time_offsets(config: oci.Config) -> None:
    offsets = (config.linux.time_offsets if config.linux else None) or {}
    lines = []
    for clock, off in offsets.items():
        lines.append(f"{clock} {off.secs} {off.nanosecs}")
    if not lines:
        return
    fd = os.open("/proc/self/timens_offsets", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, "\n".join(lines).encode())
    finally:
        os.close(fd)


# ---------------------------------------------------------------- init


def init_main(ctx: InitContext, opened: list[tuple[str, int, str]], after_pid_sent: int = -1) -> NoReturn:
    if after_pid_sent >= 0:  # forked by the intermediate: see _intermediate
        with suppressed(OSError):
            os.read(after_pid_sent, 1)
        os.close(after_pid_sent)
    # PID 1's cmdline is readable inside the container: show ours, not the caller's argv.
    with suppressed(OSError, ValueError, IndexError):
        proc_info.set_cmdline("tcontainer-init", ctx.argv_area)
    try:
        _init(ctx, opened)
    except BaseException as exc:
        # _init closes the socket right after READY: from then on the parent has gone (create
        # returned), so a failure of execve(2) itself (E2BIG for a 20 MB environment, ENOEXEC)
        # can only go to the container's stderr, with runc's 126/127. Before this check the
        # error went to the closed socket and vanished, leaving a bare exit status 1.
        if ctx.sock.fileno() != -1:
            _sync.send_error(ctx.sock, exc)
            os._exit(1)
        _report_late(exc)
        os._exit(127 if getattr(exc, "errno", None) == 2 else 126)
    os._exit(1)  # _init only returns by execve or by raising


def _report_late(exc: BaseException) -> None:
    with suppressed(OSError):
        os.write(2, f"tcontainer-oci: {exc}\n".encode(errors="replace"))


def _init(ctx: InitContext, opened: list[tuple[str, int, str]]) -> bool:
    sys = ctx.syscalls
    config = ctx.config
    proc = config.process
    assert proc is not None
    in_cgroups = False

    def enter_cgroups() -> None:
        """Be in our (already limited) cgroups before anything that depends on them.

        With cgroup_tasks we moved ourselves first thing; otherwise wait for (3): the parent
        moves us while we build the mounts that do not depend on it (its move sleeps for an
        RCU grace period when the lock is cold). Everything after this point
        needs it: a cgroup namespace made before would be rooted in the wrong place, cgroup
        mounts show our cgroups, the devices cgroup governs mknod(2), and hooks, the console
        and the container's program must run inside the limits."""
        nonlocal in_cgroups
        if in_cgroups:
            return
        if ctx.cgroup_tasks is None:
            _sync.recv(ctx.sock, _sync.CGROUP_DONE)
        in_cgroups = True
        namespaces.join(opened, sys, only=("cgroup",))
        namespaces.close_all(opened)
        if ctx.new_cgroupns:
            sys.unshare(C.CLONE_NEWCGROUP)

    # CVE-2019-5736 / CVE-2016-9962: a non-dumpable process cannot be ptraced or have its
    # /proc/PID/exe (the host interpreter) opened by processes in the container.
    sys.prctl(C.PR_SET_DUMPABLE, 0)
    _move_into_cgroups(ctx)
    if ctx.report_joined:
        # (2) the parent checks our cgroups and stages its state while we build the mounts
        _sync.send(ctx.sock, _sync.JOINED)
    if ctx.init_unshares:
        sys.unshare(ctx.init_unshares)
    if ctx.new_keyring:
        _join_new_keyring(ctx.container_id)

    # A joined mount namespace (linux.namespaces[].path) still gets config.root and config.mounts
    # set up inside it, as runc and crun do (runtime-spec config-linux.md: only *where* the
    # process lives changes). _validate refuses joining the runtime's own mount namespace.
    joined_mnt = False
    console_master: int | None = None
    console_slave: int | None = None
    if not joined_mnt:
        root_path = _rootfs.prepare_rootfs(
            config,
            ctx.bundle,
            sys,
            in_userns=config.namespace("user") is not None,
            before_cgroup_work=enter_cgroups,
            # The host's / as root is staged in our state dir, which delete removes.
            host_root_stage=os.path.join(ctx.state_dir, "hostroot"),
            rootfs_plan=ctx.rootfs_plan,
        )
        if proc.terminal:
            console_master, console_slave = _open_console(root_path, proc, sys)
    else:
        enter_cgroups()
        root_path = "/"
        if proc.terminal:
            console_master, console_slave = _open_console("/", proc, sys)
    enter_cgroups()  # a no-op after prepare_rootfs; the console and hooks need it too
    if console_master is not None:
        # (4) hand the pty master to the parent (which passes it to --console-socket)
        _sync.send(ctx.sock, _sync.CONSOLE, fds=[console_master])
        os.close(console_master)

    hooks = config.hooks
    if hooks and (hooks.prestart or hooks.create_runtime):
        # (5) prestart and createRuntime hooks run in the runtime's namespaces: the parent runs them
        _sync.send(ctx.sock, _sync.HOOKS)
        _sync.recv(ctx.sock, _sync.HOOKS_DONE)
    # "created", as for prestart in _create (runtime-spec state.md: the environment exists)
    state = _hooks.hook_state(ctx.container_id, "created", os.getpid(), ctx.bundle, config.annotations)
    if hooks and hooks.create_container:
        _hooks.run_hooks(hooks.create_container, state, "createContainer")

    sysctl = config.linux.sysctl if config.linux else None
    if not joined_mnt:
        _rootfs.enter_rootfs(root_path, sys, no_pivot=ctx.no_pivot)
        # Sysctls go in before finalize_rootfs: /proc/sys is usually a readonlyPath (podman's
        # config has it), and write_sysctls refuses a path with a mount over it.
        _rootfs.write_sysctls(sysctl, sys)
        _rootfs.finalize_rootfs(config, sys)
    else:
        _rootfs.write_sysctls(sysctl, sys)
    if config.hostname is not None and config.namespace("uts"):
        sys.sethostname(config.hostname)
    if config.domainname is not None and config.namespace("uts"):
        sys.setdomainname(config.domainname)
    net = config.namespace("network")
    if net is not None and net.path is None:
        netdev.set_up("lo")
    _child.write_oom_score_adj(proc.oom_score_adj)
    _child.apply_rlimits(proc.rlimits)
    if ctx.plan.personality is not None:
        sys.personality(ctx.plan.personality)

    if console_slave is not None:
        os.fchown(console_slave, proc.user.uid, proc.user.gid)
    _child.chdir_checked(proc.cwd, sys)
    path, args, env = _child.resolve_program(ctx.plan)

    _child.enter_session(console_slave)
    keep = 2 + ctx.plan.preserve_fds
    _child.mark_fds_cloexec(keep)
    for fd in (ctx.fifo_fd, ctx.sock.fileno()):
        os.set_inheritable(fd, False)

    _child.drop_privileges(ctx.plan, sys)

    if ctx.plan.reaper:
        # Signals sent between `start` and the reaper's handlers must not be lost: PID 1 of a
        # pid namespace drops signals it has no handler for, but a blocked signal stays
        # pending (kernel/signal.c sig_ignored: "Blocked signals are never ignored").
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    # (6) setup is complete; from here on errors can only go to the container's stderr
    _sync.send(ctx.sock, _sync.READY)
    ctx.sock.close()
    _wait_for_start(ctx.fifo_fd)
    if hooks and hooks.start_container:
        state["status"] = "created"
        _hooks.run_hooks(hooks.start_container, state, "startContainer")
    if ctx.plan.reaper:
        _reaper.run(lambda: _child.exec_program(ctx.plan, sys, path, args, env), close_in_reaper=ctx.fifo_fd)
    _child.exec_program(ctx.plan, sys, path, args, env)
    return True


def _move_into_cgroups(ctx: InitContext) -> None:
    """Move ourselves into the container's v1 cgroups, before any other setup work: all of it
    is then accounted and limited there. We are single-threaded (fork(2) copies one thread),
    so "0" in ``tasks`` moves the whole process."""
    if ctx.cgroup_tasks is None:
        return
    try:
        for fd, path in ctx.cgroup_tasks:
            try:
                os.write(fd, b"0")
            except OSError as exc:
                raise KernelError(
                    exc.errno or 0, "write", path, "moving the container's init into its cgroup"
                ) from None
    finally:
        _close_tasks(ctx)


def _close_tasks(ctx: InitContext) -> None:
    # Opened with the runtime's credentials, these could move any process into the cgroup:
    # they must be gone long before the container's program runs.
    tasks = ctx.cgroup_tasks or []
    while tasks:
        fd, _path = tasks.pop()
        with suppressed(OSError):
            os.close(fd)


def _join_new_keyring(container_id: str) -> None:
    try:
        _libc.join_session_keyring(f"_ses.{container_id}")
    except KernelError as exc:
        # Keyrings are not namespaced: a kernel or a seccomp policy around the runtime may refuse
        # keyctl; runc then also carries on (ENOSYS/EPERM/EACCES), leaving the session keyring.
        import errno

        if exc.errno not in (errno.ENOSYS, errno.EPERM, errno.EACCES):
            raise


def _wait_for_start(fifo_fd: int) -> None:
    """Block until ``start`` writes to the exec fifo (crun's order: we hold the read end).

    poll(2) on a FIFO whose writer never opened does not report POLLHUP (the kernel compares
    the writer counter with the one seen at open), so this sleeps until the first writer."""
    poller = select.poll()
    poller.register(fifo_fd, select.POLLIN)
    while True:
        events = poller.poll()
        if any(ev & select.POLLIN for _, ev in events):
            try:
                if os.read(fifo_fd, 1):
                    break
            except BlockingIOError:
                continue
        elif events:
            continue
    # The read end stays open (close-on-exec) until execve(2): `start` waits for it to close,
    # so it returns - and runs poststart hooks - only once the program runs, as runtime-spec
    # requires ("after the user-specified process is executed but before start returns").


def _open_console(root_path: str, proc: oci.Process, sys: Syscalls) -> tuple[int, int]:
    """Open a pty in the container's own devpts and bind its peer onto /dev/console.

    The peer is obtained with TIOCGPTPEER from the master fd instead of opening /dev/pts/N by
    path, which a container could race into a symlink (CVE-2025-52565)."""
    root_fd = os.open(root_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        master = sys.openat2(root_fd, "dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC, 0, C.RESOLVE_IN_ROOT)
        fcntl.ioctl(master, C.TIOCSPTLCK, b"\0\0\0\0")
        slave = fcntl.ioctl(master, C.TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
        if proc.console_size is not None:
            import struct

            fcntl.ioctl(
                master, C.TIOCSWINSZ, struct.pack("HHHH", proc.console_size.height, proc.console_size.width, 0, 0)
            )
        console = sys.openat2(
            root_fd, "dev/console", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, C.RESOLVE_IN_ROOT
        )
        try:
            sys.mount(f"/proc/self/fd/{slave}", f"/proc/self/fd/{console}", None, C.MS_BIND)
        finally:
            os.close(console)
    finally:
        os.close(root_fd)
    return master, slave


def send_console_to_socket(path: str, master_fd: int) -> None:
    """Pass the pty master to the --console-socket listener (runc docs/terminals.md)."""
    import array
    import socket  # here: only the parent with --console-socket needs it

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendmsg([b"/dev/ptmx"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [master_fd]))])
