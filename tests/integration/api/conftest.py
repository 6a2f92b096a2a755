from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest
from tests.helpers.leaks import LeakCheck
from tests.helpers.rootfs import build_busybox_rootfs, busybox_available

import tinycontainer as tc


@pytest.fixture(scope="session")
def busybox_rootfs() -> Iterator[str]:
    if not busybox_available():
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    with tempfile.TemporaryDirectory(prefix="tc-api-rootfs-") as d:
        os.chmod(d, 0o755)
        yield build_busybox_rootfs(os.path.join(d, "rootfs"))


@pytest.fixture
def lib_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private library root per test; fails the test if anything is left behind."""
    root = str(tmp_path_factory.mktemp("lib"))
    # Library container ids start with "tc-"; their cgroups are named tcontainer-tc-<hex>.
    check = LeakCheck(state_root=os.path.join(root, "state"), container_ids=lambda: ["tcontainer-tc-", root])
    yield root
    check.assert_clean()
    assert os.listdir(os.path.join(root, "bundles")) == [] if os.path.isdir(os.path.join(root, "bundles")) else True


@pytest.fixture
def spec(busybox_rootfs: str) -> tc.Spec:
    return tc.Spec(rootfs=busybox_rootfs, read_only=True, memory="64m", pids=64)
