"""Fixtures for the real-kernel cgroup tests: a manager beneath our own cgroups, and children.

Every cgroup is created beneath the caller's own cgroup in each hierarchy (create_manager's
default), and each test ends by killing the children it started (by PID), destroying the
manager and asserting that no directory is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinycontainer.linux import cgroups

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


class Children:
    """Python children that wait for a line on stdin before running their code."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, code: str) -> subprocess.Popen[bytes]:
        script = "import sys\nsys.stdin.readline()\n" + code
        proc = subprocess.Popen(
            [PYTHON, "-I", "-S", "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    @staticmethod
    def go(proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)


@pytest.fixture
def children() -> Iterator[Children]:
    kids = Children()
    yield kids
    kids.cleanup()


@pytest.fixture
def new_manager(children: Children) -> Iterator[object]:
    made: list[cgroups.CgroupManager] = []

    def make(cgroups_path: str | None = None, **kwargs: object) -> cgroups.CgroupManager:
        mgr = cgroups.create_manager(cgroups_path, f"it-{uuid.uuid4().hex[:12]}", **kwargs)  # type: ignore[arg-type]
        made.append(mgr)
        return mgr

    yield make
    children.cleanup()  # processes first: a cgroup with live members cannot be removed
    for mgr in made:
        mgr.destroy()
    for mgr in made:
        for path in mgr.paths().values():
            assert not Path(path).exists(), f"cgroup left behind: {path}"
