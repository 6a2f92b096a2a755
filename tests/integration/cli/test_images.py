"""``run IMAGE`` pulls from a local registry and runs with the image's defaults on an overlay."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from tests.integration.cli.conftest import TC
from tests.integration.image._builder import build_image, busybox_entries, directory, make_tar
from tests.integration.image._registry_server import Pusher, RegistryProcess, start_registry

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    if shutil.which("docker-registry") is None and not os.path.exists("/usr/bin/docker-registry"):
        pytest.skip("Debian's docker-registry is not installed")
    reg = start_registry(str(tmp_path_factory.mktemp("cli-registry")), str(tmp_path_factory.mktemp("cli-storage")))
    try:
        yield reg
    finally:
        reg.stop()


def test_run_pulls_and_uses_image_defaults(tc: TC, registry: RegistryProcess) -> None:
    # The image's WorkingDir is /tmp; docker would create it when missing, we need it in the image.
    image = build_image([make_tar([*busybox_entries(("id", "pwd", "touch", "sleep")), directory("tmp", 0o1777)])])
    Pusher(registry.url).image("cli/bb", image, tag="1")
    ref = f"{registry.host}/cli/bb:1"
    first = tc("run", "--rm", ref)  # entrypoint ["/bin/sh", "-c"], cmd ["echo hello"]
    assert first.stdout == b"hello\n" and b"Unable to find image" in first.stderr
    out = tc("run", "--rm", ref, "id -u; pwd; echo $GREETING; touch /tmp/new && echo writable").stdout.split()
    assert out == [b"1000", b"/tmp", b"hi", b"writable"]
    repo = f"{registry.host}/cli/bb".encode()
    assert tc("images").stdout.splitlines()[1].split()[:2] == [repo, b"1"]
    tc("run", "-d", "--name", "img", ref, "exec sleep 30")
    assert tc("rmi", ref, check=False).returncode == 1  # in use
    tc("rm", "-f", "img")
    tc("rmi", ref)
    assert repo not in tc("images").stdout
