from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest
from tests.helpers.leaks import LeakCheck
from tests.helpers.rootfs import build_busybox_rootfs, busybox_available


@pytest.fixture(scope="session")
def busybox_rootfs() -> Iterator[str]:
    if not busybox_available():
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    with tempfile.TemporaryDirectory(prefix="tc-cli-rootfs-") as d:
        yield build_busybox_rootfs(os.path.join(d, "rootfs"))


class TC:
    """``tcontainer --root ROOT ...`` as a subprocess; remembers every container id it saw."""

    def __init__(self, root: str, rootfs: str) -> None:
        self.root = root
        self.rootfs = rootfs
        self.seen: set[str] = set()

    @property
    def base(self) -> list[str]:
        return [sys.executable, "-m", "tinycontainer", "--root", self.root]

    def _note_ids(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.seen.update(os.listdir(os.path.join(self.root, "containers")))

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 60, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        # Files, not pipes: a detached container's monitor must not hold our pipes open.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run([*self.base, *args], input=input, stdout=out, stderr=err, timeout=timeout,
                                  check=False)
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
        self._note_ids()
        if check and result.returncode != 0:
            raise AssertionError(f"tcontainer {' '.join(args)} exited {result.returncode}: {result.stderr.decode()}")
        return result

    def ids(self) -> list[str]:
        self._note_ids()
        return sorted(self.seen)


@pytest.fixture
def tc(busybox_rootfs: str, tmp_path: object) -> Iterator[TC]:
    root = os.path.join(str(tmp_path), "state")
    runner = TC(root, busybox_rootfs)
    check = LeakCheck(state_root=os.path.join(root, "containers"), container_ids=runner.ids)
    yield runner
    runner("rm", "-f", *runner("ps", "-aq", "--no-trunc", check=False).stdout.decode().split(), check=False)
    check.assert_clean()
