"""Multi-platform images: an OCI index and a Docker manifest list, with an attestation entry."""

from __future__ import annotations

import pytest
from tests.integration.image._builder import Blob, build_attestation, build_image, build_index, make_tar, reg
from tests.integration.image._registry_server import Pusher, RegistryProcess
from tests.integration.image._trees import describe

from tinycontainer._errors import ImageError
from tinycontainer.image import ImageStore, host_platform

pytestmark = pytest.mark.registry

PLATFORMS = [
    {"os": "linux", "architecture": "amd64"},
    {"os": "linux", "architecture": "arm64", "variant": "v8"},
    {"os": "linux", "architecture": "arm", "variant": "v6"},
    {"os": "linux", "architecture": "arm", "variant": "v7"},
]


def _push_index(pusher: Pusher, repo: str, *, docker: bool) -> Blob:
    entries = []
    for plat in PLATFORMS:
        label = "/".join(plat.values())
        image = build_image(
            [make_tar([reg("arch", label.encode())])],
            docker=docker,
            arch=plat["architecture"],
            variant=plat.get("variant"),
        )
        pusher.image(repo, image)
        entries.append((image.manifest, plat))
    attestation = build_attestation()
    pusher.image(repo, attestation)
    # The attestation entry comes first: a client that ignores its unknown/unknown platform would pick it.
    index = build_index(entries, docker=docker, attestation_for=entries[0][0], attestation=attestation)
    assert b"attestation-manifest" in index.data
    pusher.manifest(repo, "latest", index.data, index.media_type)
    return index


@pytest.mark.parametrize("docker", [False, True], ids=["oci-index", "docker-manifest-list"])
def test_platform_selection(registry: RegistryProcess, pusher: Pusher, store: ImageStore, docker: bool) -> None:
    repo = f"tests/multi-{'docker' if docker else 'oci'}"
    index = _push_index(pusher, repo, docker=docker)
    ref = f"{registry.host}/{repo}:latest"

    cases = {
        "linux/arm64": "linux/arm64/v8",
        "linux/arm64/v8": "linux/arm64/v8",
        "linux/arm/v7": "linux/arm/v7",
        "linux/arm": "linux/arm/v7",
        "linux/amd64": "linux/amd64",
    }
    for wanted, label in cases.items():
        img = store.pull(ref, platform=wanted)
        assert img.digest == index.digest
        assert img.manifest_digest != index.digest
        assert describe(store.layer_dirs(img)[0]) == {"arch": f"file:{label}"}, wanted

    if host_platform().architecture == "amd64":
        assert describe(store.layer_dirs(store.pull(ref))[0]) == {"arch": "file:linux/amd64"}

    with pytest.raises(ImageError, match=r"no image for platform linux/s390x.*offered: linux/amd64"):
        store.pull(ref, platform="linux/s390x")
    with pytest.raises(ImageError, match="no image for platform linux/arm/v5"):
        store.pull(ref, platform="linux/arm/v5")


def test_arm_v7_falls_back_to_v6(registry: RegistryProcess, pusher: Pusher, store: ImageStore) -> None:
    repo = "tests/armv6-only"
    image = build_image([make_tar([reg("arch", b"v6")])], arch="arm", variant="v6")
    pusher.image(repo, image)
    index = build_index([(image.manifest, {"os": "linux", "architecture": "arm", "variant": "v6"})])
    pusher.manifest(repo, "latest", index.data, index.media_type)
    img = store.pull(f"{registry.host}/{repo}", platform="linux/arm/v7")
    assert describe(store.layer_dirs(img)[0]) == {"arch": "file:v6"}


def test_nested_index(registry: RegistryProcess, pusher: Pusher, store: ImageStore) -> None:
    repo = "tests/nested"
    image = build_image([make_tar([reg("nested", b"yes")])])
    pusher.image(repo, image)
    inner = build_index([(image.manifest, {"os": "linux", "architecture": "arm64"})])
    pusher.manifest(repo, inner.digest, inner.data, inner.media_type)
    outer = build_index([(inner, {"os": "linux", "architecture": "arm64"})])
    pusher.manifest(repo, "latest", outer.data, outer.media_type)
    img = store.pull(f"{registry.host}/{repo}", platform="linux/arm64")
    assert img.digest == outer.digest
    assert img.manifest_digest == image.manifest.digest
    assert describe(store.layer_dirs(img)[0]) == {"nested": "file:yes"}
