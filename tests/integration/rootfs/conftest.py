"""Run rootfs setup for real, in a forked child that has its own private mount namespace.

The child unshares CLONE_NEWNS and makes / rprivate before anything else, so no mount it does
can reach the test process or the host; when it exits, its namespace and every mount in it are
gone.  The test body runs in the child and returns a JSON-able value through a pipe; exceptions
come back as {"error": type name, "errno": ..., "message": ...}.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.rootfs import build_busybox_rootfs, busybox_available

from tinycontainer.linux import _consts as C
from tinycontainer.linux import _libc

CHILD_TIMEOUT = 30.0


def _mountinfo() -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        return sorted(" ".join(line.split()[3:5]) for line in fh)


@pytest.fixture(autouse=True)
def no_mount_leaks() -> Iterator[None]:
    before = _mountinfo()
    yield
    assert _mountinfo() == before, "a mount leaked into the test process's namespace"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A bundle directory holding a fresh busybox rootfs (tests may change it freely)."""
    if not busybox_available():
        pytest.skip("busybox-static is not installed")
    build_busybox_rootfs(str(tmp_path / "bundle" / "rootfs"))
    return tmp_path / "bundle"


def run_isolated(body: Callable[[], Any], timeout: float = CHILD_TIMEOUT) -> Any:
    """Run ``body`` in a forked child inside a new, private mount namespace; return its result."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 0
        try:
            os.close(read_end)
            _libc.unshare(C.CLONE_NEWNS)
            _libc.mount(None, "/", None, C.MS_REC | C.MS_PRIVATE)
            try:
                payload: Any = {"ok": body()}
            except OSError as exc:
                payload = {"error": type(exc).__name__, "errno": exc.errno, "message": str(exc)}
            except Exception as exc:
                payload = {"error": type(exc).__name__, "errno": None, "message": str(exc)}
                payload["traceback"] = traceback.format_exc()
            os.write(write_end, json.dumps(payload).encode())
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError("the isolated child timed out")
            ready, _, _ = select.select([read_end], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the isolated child crashed"
    return json.loads(b"".join(chunks))


@pytest.fixture
def isolated() -> Callable[..., Any]:
    return run_isolated
