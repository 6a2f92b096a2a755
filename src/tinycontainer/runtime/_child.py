"""The last steps of every container process, shared by the init and by ``exec``.

Runs in a forked child: imports only ``linux``, ``oci``, ``_errors`` and the stdlib. The order
follows runc's ``finalizeNamespace``/``standard_init_linux.go`` because each step needs the
privileges the next one drops:

1. rlimits, oom_score_adj, personality (need CAP_SYS_RESOURCE-free kernel checks only)
2. seccomp when no_new_privs is off: loading a filter without NNP needs CAP_SYS_ADMIN,
   which step 4 removes
3. PR_SET_KEEPCAPS, setgroups/setresgid/setresuid: a uid change would otherwise clear the
   permitted set (capabilities(7), "Effect of user ID changes on capabilities")
4. bounding set drop, capset, ambient raise (inheritable and ambient empty by default:
   CVE-2022-29162 and siblings)
5. no_new_privs, then seccomp (as late as possible, so the filter need not allow the
   runtime's own syscalls), then execve
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat

from .. import oci
from .._errors import KernelError, SpecError, suppressed
from ..linux import _consts as C
from ..linux import _libc
from ..linux import caps as _caps
from ..linux._syscalls import Syscalls
from ..oci._record import field, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:
    # The C module under signal.py: same functions and constants, without the IntEnum
    # wrappers whose import (enum, functools) costs every runtime command ~3 ms.
    import _signal as signal

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RLIMIT_NUMBERS = C.RLIMIT_NUMBERS

SECCOMP_FLAG_BITS = {
    "SECCOMP_FILTER_FLAG_TSYNC": C.SECCOMP_FILTER_FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": C.SECCOMP_FILTER_FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": C.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
}


@record
class ProcessPlan:
    """What the parent computed before forking, so the child does no parsing of its own."""

    process: oci.Process
    seccomp_bpf: bytes | None = None
    seccomp_flags: int = 0
    personality: int | None = None
    preserve_fds: int = 0
    extra_env: list[str] = field(default_factory=list)
    # Keep PID 1 as a reaper that forwards signals and execs the program in a child (--init)
    reaper: bool = False
    # Worked out by the parent before fork (prepare_in_parent), so the child, whose every write
    # to memory shared with the parent costs a copy-on-write fault, only executes them (~0.15 ms
    # in a fresh child). None: the child works them out itself (``exec``'s tenant does).
    bounding_drop: tuple[int, ...] | None = None
    """Capability numbers to drop from the bounding set."""
    capability_masks: tuple[int, int, int, int] | None = None
    """caps.capability_masks(process.capabilities)"""
    ignored_signals: tuple[int, ...] | None = None
    """Signals ignored (SIG_IGN) at fork time: the only ones reset_signals must reset."""


def prepare_in_parent(plan: ProcessPlan) -> None:
    """Fill the plan's precomputed fields; call it in the parent right before fork(2) (the
    signal dispositions the child inherits are those of that moment)."""
    caps = plan.process.capabilities
    plan.bounding_drop = _caps.bounding_to_drop(_bounding_keep_mask(caps), _caps.last_cap())
    plan.capability_masks = _caps.capability_masks(caps)
    plan.ignored_signals = ignored_signals()


def _bounding_keep_mask(caps: oci.Capabilities | None) -> int:
    bounding = (caps.bounding if caps else None) or []
    return _caps.mask_from_names(bounding, field="process.capabilities.bounding")


def ignored_signals() -> tuple[int, ...]:
    """The signals this process ignores (SIG_IGN), SIGKILL and SIGSTOP aside."""
    found = []
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            if signal.getsignal(sig) == signal.SIG_IGN:
                found.append(sig)
        except (OSError, ValueError):
            continue
    return tuple(found)


def env_dict(entries: list[str] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in entries or []:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def lookup_executable(name: str, env: dict[str, str]) -> str:
    """execvp(3)'s search, done inside the container's root with the container's PATH."""
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(d or ".", name) for d in env.get("PATH", DEFAULT_PATH).split(":")]
    denied = False
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            denied = True
            continue
        if os.access(path, os.X_OK):
            return path
        denied = True
    if denied:
        raise KernelError(errno.EACCES, "exec", name, "permission denied")
    raise KernelError(errno.ENOENT, "exec", name, "executable file not found in $PATH")


def apply_rlimits(rlimits: list[oci.Rlimit] | None) -> None:
    for rl in rlimits or []:
        try:
            _libc.setrlimit(RLIMIT_NUMBERS[rl.type], rl.soft, rl.hard)
        except OSError as exc:
            detail = f"{rl.type} soft={rl.soft} hard={rl.hard}"
            raise KernelError(exc.errno or errno.EINVAL, "setrlimit", None, detail) from None


def write_oom_score_adj(value: int | None) -> None:
    if value is None:
        return
    path = "/proc/self/oom_score_adj"
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    except OSError as exc:
        raise KernelError.from_oserror(exc, "write", path) from None
    finally:
        os.close(fd)


def switch_user(user: oci.User, sys: Syscalls) -> None:
    sys.prctl(C.PR_SET_KEEPCAPS, 1)
    try:
        if user.additional_gids is not None:
            os.setgroups(user.additional_gids)
        elif user.gid is not None:
            os.setgroups([])
    except OSError as exc:
        # setgroups(2) is refused in a user namespace whose setgroups file says "deny".
        if exc.errno != errno.EPERM or user.additional_gids:
            raise KernelError.from_oserror(exc, "setgroups", None) from None
    try:
        os.setresgid(user.gid, user.gid, user.gid)
    except OSError as exc:
        raise KernelError(exc.errno or errno.EPERM, "setresgid", None, f"gid {user.gid}") from None
    try:
        os.setresuid(user.uid, user.uid, user.uid)
    except OSError as exc:
        raise KernelError(exc.errno or errno.EPERM, "setresuid", None, f"uid {user.uid}") from None
    os.umask(user.umask if user.umask is not None else 0o022)


def chdir_checked(cwd: str, sys: Syscalls) -> None:
    sys.chdir(cwd)
    # CVE-2024-21626: a cwd reached through a leaked fd lies outside the root; getcwd(3) then
    # fails with ENOENT ("(unreachable)") - refuse to exec there.
    try:
        os.getcwd()
    except OSError as exc:
        raise KernelError(
            exc.errno or errno.ENOENT, "getcwd", cwd, "working directory is outside the container"
        ) from None


def mark_fds_cloexec(keep_until: int) -> None:
    """Every fd above ``keep_until`` gets O_CLOEXEC: nothing of the runtime leaks into the
    container (CVE-2024-21626), while fds the runtime still needs work until execve."""
    try:
        _libc.close_range(keep_until + 1, 0xFFFFFFFF, C.CLOSE_RANGE_CLOEXEC)
    except KernelError:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd > keep_until:
                with suppressed(OSError):
                    os.set_inheritable(fd, False)


def home_of(uid: int, passwd: str = "/etc/passwd") -> str:
    """The uid's home from the container's own /etc/passwd (runc sets HOME the same way).

    Parsed by hand: NSS would load the container's libraries into the runtime
    (CVE-2019-14271). The file is untrusted, so no FIFOs, devices or huge reads."""
    try:
        fd = os.open(passwd, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return "/"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "/"
        data = os.read(fd, 1 << 20).decode(errors="replace")
    finally:
        os.close(fd)
    for line in data.splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[2] == str(uid):
            return fields[5] or "/"
    return "/"


def resolve_program(plan: ProcessPlan) -> tuple[str, list[str], dict[str, str]]:
    proc = plan.process
    env = env_dict((proc.env or []) + plan.extra_env)
    if "HOME" not in env:
        env["HOME"] = home_of(proc.user.uid)
    if not proc.args:
        raise SpecError("process.args is empty", field="process.args")
    path = lookup_executable(proc.args[0], env)
    return path, list(proc.args), env


def drop_privileges(plan: ProcessPlan, sys: Syscalls) -> None:
    proc = plan.process
    if plan.seccomp_bpf is not None and not proc.no_new_privileges:
        sys.seccomp_set_filter(plan.seccomp_bpf, plan.seccomp_flags)
    # The bounding set is dropped first: PR_CAPBSET_DROP needs CAP_SETPCAP in the effective
    # set, which a switch to a non-root uid clears.
    caps = proc.capabilities
    numbers = plan.bounding_drop
    if numbers is None:
        numbers = _caps.bounding_to_drop(_bounding_keep_mask(caps), _caps.last_cap(sys))
    _caps.drop_from_bounding_set(numbers, sys)
    switch_user(proc.user, sys)
    _caps.apply_capabilities(caps, sys, masks=plan.capability_masks)
    sys.prctl(C.PR_SET_KEEPCAPS, 0)
    if proc.no_new_privileges:
        sys.prctl(C.PR_SET_NO_NEW_PRIVS, 1)


def enter_session(console_slave: int | None) -> None:
    """A new session; with a terminal, the pty slave as controlling terminal and stdio.

    The container gets its own session and controlling terminal, never the caller's
    (CVE-2017-5226: TIOCSTI pushed input into the parent's terminal)."""
    os.setsid()
    if console_slave is None:
        return
    fcntl.ioctl(console_slave, C.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(console_slave, fd)
    if console_slave > 2:
        os.close(console_slave)


def reset_signals(ignored: tuple[int, ...] | None = None) -> None:
    """Give the program default signal dispositions and an empty mask.

    execve(2) resets handled signals but keeps ignored ones and the blocked mask
    (signal(7), "Signal mask and pending signals"). CPython ignores SIGPIPE, so without this
    every container would inherit an ignored SIGPIPE and `yes | head` would never end.
    ``ignored``: the ignored signals, when known (ProcessPlan.ignored_signals)."""
    for sig in ignored_signals() if ignored is None else ignored:
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            continue
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def exec_program(plan: ProcessPlan, sys: Syscalls, path: str, args: list[str], env: dict[str, str]) -> None:
    reset_signals(plan.ignored_signals)
    if plan.seccomp_bpf is not None and plan.process.no_new_privileges:
        sys.seccomp_set_filter(plan.seccomp_bpf, plan.seccomp_flags)
    try:
        os.execve(path, args, env)
    except OSError as exc:
        raise KernelError.from_oserror(exc, "execve", path) from None
