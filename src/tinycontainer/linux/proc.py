"""Reading /proc: process start time and state, used to tell a live init from a reused pid.

runc and crun store the init's start time (field 22 of /proc/PID/stat, in clock ticks since
boot) next to its pid: a pid alone can be reused by an unrelated process after the container
exits, and signalling or reporting that process would be wrong (runc ``refreshState``).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class ProcStat:
    """The fields of /proc/PID/stat the runtime uses; immutable, compared and hashed by value
    (what ``@record(frozen=True, kw_only=False)`` would make). Written out by hand: ``state``,
    ``kill`` and ``delete`` need nothing else of the record machinery, and podman calls them
    for every container. Not a typing.NamedTuple: building one costs ~1 ms."""

    __slots__ = ("pid", "ppid", "start_time", "state")

    pid: int
    state: str  # R, S, D, Z, T, t, X, I ...
    ppid: int
    start_time: int  # clock ticks since boot

    def __init__(self, pid: int, state: str, ppid: int, start_time: int) -> None:
        object.__setattr__(self, "pid", pid)
        object.__setattr__(self, "state", state)
        object.__setattr__(self, "ppid", ppid)
        object.__setattr__(self, "start_time", start_time)

    def _values(self) -> tuple[int, str, int, int]:
        return (self.pid, self.state, self.ppid, self.start_time)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, ProcStat)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return f"ProcStat(pid={self.pid!r}, state={self.state!r}, ppid={self.ppid!r}, start_time={self.start_time!r})"

    def __setattr__(self, name: str, value: Any) -> None:
        _refuse(name)

    def __delattr__(self, name: str) -> None:
        _refuse(name)


def _refuse(name: str) -> None:
    from ..oci._record import FrozenInstanceError

    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def read_stat(pid: int) -> ProcStat | None:
    """Parse /proc/PID/stat; None when the process does not exist."""
    # Plain open(2)/read(2): open() would add fstat, ioctl and two lseek calls and the io
    # objects to every status check. The file is well below one page, so one read(2) gets it.
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        raw = os.read(fd, 4096)
    except ProcessLookupError:  # the task went away between open and read (ESRCH)
        return None
    finally:
        os.close(fd)
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


# pid -> the fields of /proc/self/stat after the command name, for what stays fixed over a
# process's life (its start time, its argv area): a library caller creating containers one after
# another reads them once (inside create that read was seen taking milliseconds there).
_OWN_STAT: dict[int, list[bytes]] = {}


def _own_stat_fields() -> list[bytes]:
    pid = os.getpid()  # a forked child is another process: its own entry
    fields = _OWN_STAT.get(pid)
    if fields is None:
        fd = os.open("/proc/self/stat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            raw = os.read(fd, 4096)  # well below a page: see read_stat
        finally:
            os.close(fd)
        fields = _OWN_STAT[pid] = raw.rsplit(b")", 1)[1].split()
    return fields


def own_start_time() -> int:
    """This process's start time (field 22 of stat(5)), as :func:`read_stat` gives it."""
    return int(_own_stat_fields()[19])


def argv_area() -> tuple[int, int]:
    """This process's argv area (start, end), for :func:`set_cmdline` in a forked child, which
    shares the layout: read once before fork(2), it spares the child reading it again."""
    fields = _own_stat_fields()
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


def read_file(path: str, limit: int | None = None) -> bytes:
    """A whole file (at most ``limit`` bytes of it), with plain read(2)s: open() adds fstat,
    ioctl and lseek calls and the io objects to every read of a procfs file, a container's
    state or a bundle's config."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        size = 0
        while limit is None or size < limit:
            chunk = os.read(fd, 65536 if limit is None else min(65536, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)
