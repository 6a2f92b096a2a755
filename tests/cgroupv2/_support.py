"""Helpers shared by the cgroup v2 tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import errno
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tinycontainer.linux.cgroups import CgroupManager

CGROUP_ROOT = Path("/sys/fs/cgroup")
BUSYBOX = "/bin/busybox"


def write_file(path: Path, data: str) -> None:
    """One write(2) that raises on refusal (a buffered write can hide the error until close)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def read_keyed(path: Path) -> dict[str, int]:
    """A flat-keyed cgroup file (memory.events, cpu.stat, pids.events ...) as a dict."""
    result: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            result[key] = int(value)
    return result


def own_cgroup() -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:] or "/"
    raise RuntimeError("no cgroup v2 line in /proc/self/cgroup")


@dataclass(frozen=True)
class TestParent:
    """A cgroup made for one test, with every available controller delegated to its children.

    ``cgroup`` is its path from the cgroup2 root (for OCI cgroupsPath), ``path`` its directory.
    """

    __test__ = False  # not a test class, despite the name

    cgroup: str
    path: Path

    def child_path(self, name: str) -> str:
        return f"{self.cgroup}/{name}"


def enable_controllers(directory: Path) -> None:
    # One controller per write: a single "+a +b" write fails entirely if one is unavailable.
    for controller in (directory / "cgroup.controllers").read_text().split():
        write_file(directory / "cgroup.subtree_control", f"+{controller}")


def empty_and_remove(directory: Path, deadline: float) -> None:
    for child in sorted((p for p in directory.iterdir() if p.is_dir()), reverse=True):
        empty_and_remove(child, deadline)
    kill = directory / "cgroup.kill"
    if kill.exists():
        write_file(kill, "1")
    while True:
        try:
            directory.rmdir()
            return
        except OSError as exc:
            # EBUSY until the killed processes have been reaped by the kernel.
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class GatedChild:
    """A child Python that starts up, says "ready", then waits for a byte on stdin to run ``code``.

    The handshake lets a test move the process into a cgroup (manager.apply) after the
    interpreter's start-up and before the work the test measures. Python runs with -I -S: its
    start-up is several times faster without site-packages, which matters under emulation.
    """

    def __init__(self, code: str) -> None:
        prologue = "import sys\nsys.stdout.write('ready\\n')\nsys.stdout.flush()\nsys.stdin.buffer.read(1)\n"
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", prologue + code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if readable else b""
        if line != b"ready\n":
            self.kill()
            raise AssertionError(f"child did not start within {timeout} s (got {line!r})")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"g")
        self.proc.stdin.close()
        # communicate() would flush the closed pipe and raise ValueError.
        self.proc.stdin = None

    def wait(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=30)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` (bounded): emulated guests are slow, so fixed sleeps are not used."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class MakeManager(Protocol):
    """The ``make_manager`` fixture: a created manager for ``<test parent>/<name>`` (or ``path``)."""

    def __call__(self, name: str, *, path: str | None = None) -> CgroupManager: ...


class StartIn(Protocol):
    """The ``start_in`` fixture: a GatedChild moved into the manager's cgroup, then released."""

    def __call__(self, manager: CgroupManager, code: str) -> GatedChild: ...
