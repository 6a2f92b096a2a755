from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest
from tests.helpers.leaks import LeakCheck
from tests.helpers.oci import OCIRuntime
from tests.helpers.rootfs import build_busybox_rootfs, busybox_available


@pytest.fixture(scope="session")
def busybox_rootfs() -> Iterator[str]:
    if not busybox_available():
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    with tempfile.TemporaryDirectory(prefix="tc-rootfs-") as d:
        # Traversable by the ids a user namespace maps root to.
        os.chmod(d, 0o755)
        yield build_busybox_rootfs(os.path.join(d, "rootfs"))


@pytest.fixture
def oci_runtime(busybox_rootfs: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OCIRuntime]:
    base = tmp_path_factory.mktemp("oci")
    root = os.path.join(base, "state")
    rt = OCIRuntime(root, str(base), busybox_rootfs)
    check = LeakCheck(state_root=root, container_ids=lambda: rt.ids)
    yield rt
    for cid in rt("list", "-q", check=False).stdout.decode().split():
        rt("delete", "--force", cid, check=False)
    check.assert_clean()
