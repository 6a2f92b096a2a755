"""Fixtures for the black-box security tests (tcontainer-oci driven as a CLI).

Every test gets a fresh state root, a LeakCheck (mounts, cgroups, processes, state dirs) and a
host snapshot that must be unchanged afterwards: hostile input may only touch the test's temp
dirs."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from tests.helpers.oci import OCIRuntime
from tests.helpers.rootfs import build_busybox_rootfs, busybox_available
from tests.integration.security_oci._support import (
    ScopedLeakCheck,
    TrackedRuntime,
    compile_probe,
    host_snapshot,
    install_probe,
)


@pytest.fixture(scope="session")
def probe_binary() -> Iterator[str]:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the test probe")
    with tempfile.TemporaryDirectory(prefix="tc-probe-") as d:
        yield compile_probe(d)


@pytest.fixture(scope="session")
def probe_rootfs(probe_binary: str) -> Iterator[str]:
    """A busybox rootfs with /bin/probe; shared, so tests must not change it."""
    if not busybox_available():
        pytest.skip("busybox-static is not installed")
    with tempfile.TemporaryDirectory(prefix="tc-secrootfs-") as d:
        rootfs = build_busybox_rootfs(os.path.join(d, "rootfs"))
        install_probe(rootfs, probe_binary)
        yield rootfs


@pytest.fixture
def fresh_rootfs(tmp_path: object, probe_binary: str) -> str:
    """A rootfs of this test's own, which the test may booby-trap."""
    if not busybox_available():
        pytest.skip("busybox-static is not installed")
    rootfs = build_busybox_rootfs(os.path.join(str(tmp_path), "rootfs"))
    install_probe(rootfs, probe_binary)
    return rootfs


@pytest.fixture
def oci(probe_rootfs: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OCIRuntime]:
    base = tmp_path_factory.mktemp("secoci")
    root = os.path.join(base, "state")
    rt = TrackedRuntime(root, str(base), probe_rootfs)
    check = ScopedLeakCheck(root, lambda: [str(base), probe_rootfs, *rt.ids])
    before = host_snapshot()
    yield rt
    for cid in rt("list", "-q", check=False).stdout.decode().split():
        rt("delete", "--force", cid, check=False)
    check.assert_clean()
    assert host_snapshot() == before, "the host changed outside the test's temp dirs"
