"""Reading /proc: process start time and state, used to tell a live init from a reused pid.

runc and crun store the init's start time (field 22 of /proc/PID/stat, in clock ticks since
boot) next to its pid: a pid alone can be reused by an unrelated process after the container
exits, and signalling or reporting that process would be wrong (runc ``refreshState``).
"""

from __future__ import annotations

import os

from ..oci._record import record


# A record, not a typing.NamedTuple: building a NamedTuple class costs ~1 ms of every start.
@record(frozen=True, kw_only=False)
class ProcStat:
    pid: int
    state: str  # R, S, D, Z, T, t, X, I ...
    ppid: int
    start_time: int  # clock ticks since boot


def read_stat(pid: int) -> ProcStat | None:
    """Parse /proc/PID/stat; None when the process does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and ')' - split after the LAST ')'.
    rest = raw[raw.rindex(b")") + 2 :].split()
    return ProcStat(pid=pid, state=rest[0].decode(), ppid=int(rest[1]), start_time=int(rest[19]))


def is_alive(pid: int, start_time: int) -> bool:
    """True when ``pid`` is the very process that started at ``start_time`` and is not a zombie."""
    if pid <= 0:
        return False
    st = read_stat(pid)
    return st is not None and st.start_time == start_time and st.state not in ("Z", "X")


def status_field(pid: int, name: str) -> str | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key == name:
                    return value.strip()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def children_in_pidns(pid: int) -> list[int]:
    """All host pids whose pid namespace is the one of ``pid`` (for ``ps`` and ``kill --all``)."""

    try:
        target = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") == target:
                found.append(int(entry))
        except OSError:
            continue
    return sorted(found)


def argv_area() -> tuple[int, int]:
    """This process's argv area (start, end), for :func:`set_cmdline` in a forked child, which
    shares the layout: read once before fork(2), it spares the child reading it again."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # stat(5): fields 48 and 49 are arg_start and arg_end; fields[0] here is field 3.
    return int(fields[45]), int(fields[46])


def set_cmdline(title: str, area: tuple[int, int] | None = None) -> None:
    """Overwrite this process's argv area so /proc/PID/cmdline shows ``title``.

    The container's init starts as a fork of the runtime (or of a library user's program), and
    processes in the container can read PID 1's cmdline: without this they would see the
    caller's arguments, which may hold secrets. prctl(PR_SET_MM_ARG_START) needs
    CAP_SYS_RESOURCE; writing our own memory through /proc/self/mem does not. CPython copied
    argv at start-up and never reads the original strings again.
    """
    arg_start, arg_end = area if area is not None else argv_area()
    size = arg_end - arg_start
    if size <= 0:
        return
    data = title.encode()[: size - 1]
    fd = os.open("/proc/self/mem", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.pwrite(fd, data + b"\0" * (size - len(data)), arg_start)
    finally:
        os.close(fd)
