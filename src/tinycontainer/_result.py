"""What a finished container reports: :class:`Result`, its :class:`Usage` and the reason it ended.

Conventions (same as :func:`subprocess.run`): ``returncode`` is the exit status, or ``-N`` when
the container's main process was killed by signal N (the CLI's ``128+N`` is for shells, not
for Python). ``reason`` says *why* it ended, BenchExec-style:

* ``"exited"``    the process exited by itself (any status)
* ``"oom"``       the kernel's OOM killer killed a process of the container (memory limit)
* ``"cpu-time"``  the container used up ``cpu_time`` (RLIMIT_CPU's SIGXCPU, or the cgroup total)
* ``"wall-time"`` ``wall_time`` (or ``timeout=``) ran out and the container was killed
* ``"killed"``    a signal ended it: ``Container.kill``/``stop``, or one the program got
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from ._errors import ContainerError, LimitExceeded

Reason = Literal["exited", "oom", "cpu-time", "wall-time", "killed"]
REASONS: tuple[Reason, ...] = ("exited", "oom", "cpu-time", "wall-time", "killed")
LIMIT_REASONS: frozenset[str] = frozenset({"oom", "cpu-time", "wall-time"})

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Resources the container used, read from its cgroup after the last process exited.

    ``None`` means the host does not account for it (e.g. no blkio controller). Times are
    seconds, sizes bytes.
    """

    wall_time: float
    cpu_time: float | None = None
    cpu_user: float | None = None
    cpu_system: float | None = None
    memory_peak: int | None = None
    pids_peak: int | None = None
    io_read: int | None = None
    io_write: int | None = None
    oom_kills: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "wall_time": self.wall_time,
            "cpu_time": self.cpu_time,
            "cpu_user": self.cpu_user,
            "cpu_system": self.cpu_system,
            "memory_peak": self.memory_peak,
            "pids_peak": self.pids_peak,
            "io_read": self.io_read,
            "io_write": self.io_write,
            "oom_kills": self.oom_kills,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        values: dict[str, Any] = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        values.setdefault("wall_time", 0.0)
        if values.get("oom_kills") is None:
            values["oom_kills"] = 0
        return cls(**values)


def usage_from_stats(stats: Any, wall_time: float) -> Usage:
    """A :class:`Usage` from a :class:`~tinycontainer.linux.cgroups.CgroupStats` snapshot."""

    def seconds(ns: int | None) -> float | None:
        return None if ns is None else ns / 1e9

    return Usage(
        wall_time=wall_time,
        cpu_time=seconds(stats.cpu_usage_ns),
        cpu_user=seconds(stats.cpu_user_ns),
        cpu_system=seconds(stats.cpu_system_ns),
        memory_peak=stats.memory_peak,
        pids_peak=stats.pids_peak,
        io_read=stats.io_read_bytes,
        io_write=stats.io_write_bytes,
        oom_kills=stats.oom_kills or 0,
    )


@dataclass(frozen=True, kw_only=True)
class Result(Generic[T]):
    """A finished container, shaped like :class:`subprocess.CompletedProcess`."""

    args: list[str]
    returncode: int
    stdout: T = None  # type: ignore[assignment]
    stderr: T = None  # type: ignore[assignment]
    reason: Reason = "exited"
    usage: Usage | None = None
    container_id: str = ""

    @property
    def signal(self) -> int | None:
        """The signal that killed the main process, else None."""
        return -self.returncode if self.returncode < 0 else None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.reason == "exited"

    def check_returncode(self) -> None:
        """Raise :class:`ContainerError` if the returncode is non-zero (like subprocess)."""
        if self.returncode != 0:
            raise container_error(self)


def container_error(result: Result[Any]) -> ContainerError:
    err = ContainerError(result.returncode, result.args, result.stdout, result.stderr)
    err.reason = result.reason  # type: ignore[attr-defined]
    err.result = result  # type: ignore[attr-defined]
    return err


class TimeoutExpired(LimitExceeded, subprocess.TimeoutExpired):
    """``timeout=`` ran out; the container was killed and removed before this was raised.

    Also a :class:`subprocess.TimeoutExpired`, so code written for subprocess keeps working.
    ``output``/``stdout``/``stderr`` hold what was captured until then; ``result`` the full
    :class:`Result` (reason ``"wall-time"``).
    """

    def __init__(
        self,
        cmd: object,
        timeout: float,
        output: Any = None,
        stderr: Any = None,
        result: Result[Any] | None = None,
    ) -> None:
        subprocess.TimeoutExpired.__init__(self, cmd, timeout, output, stderr)  # type: ignore[arg-type]
        self.reason = "wall-time"
        self.result = result
        self.args = (f"command {cmd!r} in the container timed out after {timeout} seconds",)

    def __str__(self) -> str:
        return f"command {self.cmd!r} in the container timed out after {self.timeout} seconds"

    def __reduce__(self) -> tuple[object, ...]:
        # Not LimitExceeded's recipe: this constructor takes subprocess.TimeoutExpired's arguments.
        return (type(self), (self.cmd, self.timeout, self.output, self.stderr, self.result))


__all__ = [
    "LIMIT_REASONS",
    "REASONS",
    "Reason",
    "Result",
    "TimeoutExpired",
    "Usage",
    "container_error",
    "usage_from_stats",
]
