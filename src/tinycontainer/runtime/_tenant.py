"""``exec``: start another process inside a running container (a "tenant", in youki's words).

Ladder (same message types as :mod:`._sync`)::

    parent                       joiner                              tenant
    fork ----------------------> open /proc/INIT/ns/*, setns(2) in
                                 JOIN_ORDER; fork ------------------> (now in the pid namespace)
      <-- PID {pid} ------------ exit
    join the container's cgroups
      --- CGROUP_DONE ---------------------------------------------->
      <-- CONSOLE + fd ---------------------------------------------- (with a terminal)
      <-- READY ---------------------------------------------------- user, caps, seccomp, execve
      <-- EOF (socket is O_CLOEXEC: execve succeeded) or ERROR --------

Only namespaces the container did not share with the host are joined, so an exec sees what the
init sees. The tenant is made non-dumpable before anything else (CVE-2016-9962: a container
process could ptrace a tenant still holding runtime fds).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import termios
from typing import NoReturn

from .. import oci
from .._errors import WrongStatus
from ..linux import _consts as C
from ..linux import namespaces
from ..linux._syscalls import LinuxSyscalls, Syscalls
from ..oci._record import record
from . import _child, _sync
from ._container import Container, Status


@record
class ExecResult:
    pid: int
    console_fd: int | None


def exec_process(
    container: Container,
    process: oci.Process,
    *,
    console_socket: str | None = None,
    keep_console: bool = False,
    subreaper: bool = False,
    preserve_fds: int = 0,
    seccomp_cache: str | None = None,
    syscalls: Syscalls | None = None,
) -> ExecResult:
    container.refresh()
    status = container.status
    if status != Status.RUNNING:
        raise WrongStatus(container.id, status.value, "running")
    config = container.config()
    plan = _child.ProcessPlan(process=process, preserve_fds=preserve_fds)
    linux = config.linux
    if linux and linux.seccomp is not None:
        from ..linux import seccomp

        plan.seccomp_bpf = seccomp.compile_cached(linux.seccomp, seccomp_cache)
    if linux and linux.personality is not None:
        plan.personality = 0x0008 if linux.personality.domain == "LINUX32" else 0
    init = container.pid
    paths = {}
    for ns in (linux.namespaces if linux else None) or []:
        if not namespaces.same_as_self(init, ns.type):
            paths[ns.type] = f"/proc/{init}/ns/{namespaces.PROC_NAMES[ns.type]}"
    sys = syscalls or LinuxSyscalls()
    opened = namespaces.open_paths(paths)
    if process.terminal:
        _sync.preload_fd_passing()  # the tenant sends the pty master
    parent_sock, child_sock = _sync.socketpair()
    if subreaper:
        sys.prctl(C.PR_SET_CHILD_SUBREAPER, 1)
    joiner = os.fork()
    if joiner == 0:
        parent_sock.close()
        _joiner_main(child_sock, opened, plan, sys, "user" in paths)
    namespaces.close_all(opened)
    child_sock.close()
    tenant = 0
    console_fd = None
    try:
        msg, _ = _sync.recv(parent_sock, _sync.PID, 60)
        tenant = int(msg["pid"])
        with contextlib.suppress(ChildProcessError):
            os.waitpid(joiner, 0)
        joiner = 0
        mgr = container._manager()
        if mgr is not None:
            mgr.apply(tenant)
        _sync.send(parent_sock, _sync.CGROUP_DONE)
        if process.terminal:
            _, fds = _sync.recv(parent_sock, _sync.CONSOLE, 60)
            console_fd = fds[0]
            if console_socket:
                from ._init import send_console_to_socket

                send_console_to_socket(console_socket, console_fd)
                if not keep_console:
                    os.close(console_fd)
                    console_fd = None
        _sync.recv(parent_sock, _sync.READY, 60)
        # EOF now means execve(2) succeeded and closed the O_CLOEXEC socket.
        data = _sync.read_after_ready(parent_sock, 60)
        if data:
            import json

            err = json.loads(data)
            raise _sync.ChildFailed(str(err.get("message")), int(err.get("errno") or 0))
    except BaseException:
        if joiner:
            with contextlib.suppress(OSError):
                os.kill(joiner, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(joiner, 0)
        if tenant:
            with contextlib.suppress(OSError):
                os.kill(tenant, signal.SIGKILL)
            if subreaper:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(tenant, 0)
        if console_fd is not None:
            os.close(console_fd)
        raise
    finally:
        parent_sock.close()
    return ExecResult(pid=tenant, console_fd=console_fd)


def _joiner_main(
    sock: _sync.Channel, opened: list[tuple[str, int, str]], plan: _child.ProcessPlan, sys: Syscalls, userns: bool
) -> NoReturn:
    try:
        sys.prctl(C.PR_SET_DUMPABLE, 0)
        namespaces.join(opened, sys, only=("user",))
        if userns:
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        namespaces.join(opened, sys, only=("ipc", "uts", "network", "pid", "time", "mount", "cgroup"))
        namespaces.close_all(opened)
        pid = os.fork()
        if pid == 0:
            _tenant_main(sock, plan, sys)
        _sync.send(sock, _sync.PID, pid=pid)
    except BaseException as exc:
        _sync.send_error(sock, exc)
        os._exit(1)
    os._exit(0)


def _tenant_main(sock: _sync.Channel, plan: _child.ProcessPlan, sys: Syscalls) -> NoReturn:
    try:
        sys.prctl(C.PR_SET_DUMPABLE, 0)
        _sync.recv(sock, _sync.CGROUP_DONE)
        proc = plan.process
        slave = None
        if proc.terminal:
            master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            fcntl.ioctl(master, C.TIOCSPTLCK, b"\0\0\0\0")
            slave = fcntl.ioctl(master, C.TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
            if proc.console_size is not None:
                import struct

                size = struct.pack("HHHH", proc.console_size.height, proc.console_size.width, 0, 0)
                fcntl.ioctl(master, termios.TIOCSWINSZ, size)
            _sync.send(sock, _sync.CONSOLE, fds=[master])
            os.close(master)
            os.fchown(slave, proc.user.uid, proc.user.gid)
        _child.apply_rlimits(proc.rlimits)
        _child.write_oom_score_adj(proc.oom_score_adj)
        if plan.personality is not None:
            sys.personality(plan.personality)
        _child.chdir_checked(proc.cwd, sys)
        path, args, env = _child.resolve_program(plan)
        _child.enter_session(slave)
        _child.mark_fds_cloexec(2 + plan.preserve_fds)
        sock.set_inheritable(False)
        _child.drop_privileges(plan, sys)
        _sync.send(sock, _sync.READY)
        _child.exec_program(plan, sys, path, args, env)
    except BaseException as exc:
        _sync.send_error(sock, exc)
    os._exit(127)
