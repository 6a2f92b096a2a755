"""htpasswd authentication, and integrity: tampered blobs and manifests are refused, nothing is half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tests.integration.image._builder import OCI_MANIFEST, Blob, build_image, busybox_entries, make_tar, reg
from tests.integration.image._registry_server import Pusher, RegistryProcess, blob_data_path, write_auth_file
from tests.integration.image._trees import describe
from tests.integration.image.conftest import AUTH_PASSWORD, AUTH_USER

from tinycontainer._errors import DigestMismatch, RegistryError
from tinycontainer.image import Credentials, HttpClient, ImageStore, RetryPolicy

pytestmark = pytest.mark.registry


def _fast_store(root: Path, **kwargs: object) -> ImageStore:
    http = HttpClient(timeout=10, retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05))
    return ImageStore(str(root), http=http, **kwargs)  # type: ignore[arg-type]


def test_htpasswd_auth(
    registry: RegistryProcess, auth_registry: RegistryProcess, pusher: Pusher, tmp_path: Path
) -> None:
    built = build_image([make_tar([reg("secret", b"auth-ok")])])
    pusher.image("tests/private", built, "latest")
    ref = f"{auth_registry.host}/tests/private:latest"

    anonymous = _fast_store(tmp_path / "anon", credential_files=[])
    with pytest.raises(RegistryError, match="authentication required") as info:
        anonymous.pull(ref)
    assert info.value.status == 401

    wrong = _fast_store(tmp_path / "wrong", credential_files=[])
    with pytest.raises(RegistryError, match="access denied") as info:
        wrong.pull(ref, auth=Credentials(AUTH_USER, "not-the-password"))
    assert info.value.status == 401

    explicit = _fast_store(tmp_path / "explicit", credential_files=[])
    img = explicit.pull(ref, auth=Credentials(AUTH_USER, AUTH_PASSWORD))
    assert describe(explicit.layer_dirs(img)[0]) == {"secret": "file:auth-ok"}

    auth_file = tmp_path / "config.json"
    write_auth_file(str(auth_file), auth_registry.host, AUTH_USER, AUTH_PASSWORD)
    from_file = _fast_store(tmp_path / "file", credential_files=[str(auth_file)])
    assert from_file.pull(ref).id == img.id


def _assert_nothing_half_written(store: ImageStore, layer_diff_id: str) -> None:
    assert store.list() == []
    assert os.listdir(store.content.tmp) == []
    assert not os.path.exists(store.layer_path(layer_diff_id))
    assert not os.path.exists(os.path.join(store.root, "refs.json"))


def test_tampered_layer_blob(registry: RegistryProcess, pusher: Pusher, store: ImageStore) -> None:
    built = build_image([make_tar(busybox_entries()), make_tar([reg("victim", b"original")])])
    pusher.image("tests/tampered", built, "latest")
    target = built.layers[1]
    data_path = blob_data_path(registry.storage, target.digest)
    with open(data_path, "rb") as fh:
        original = fh.read()
    assert original == target.data
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0xFF
    with open(data_path, "wb") as fh:
        fh.write(bytes(tampered))
    try:
        with pytest.raises(DigestMismatch) as info:
            store.pull(f"{registry.host}/tests/tampered:latest")
        assert info.value.expected == target.digest
        _assert_nothing_half_written(store, built.diff_ids[1])
        assert not store.content.has(target.digest)
    finally:
        with open(data_path, "wb") as fh:
            fh.write(original)


def test_layer_whose_content_does_not_match_diff_id(
    registry: RegistryProcess, pusher: Pusher, store: ImageStore
) -> None:
    # The blob digest is right (the registry verifies it on upload) but the config lies about diff_id.
    honest_layer = build_image([make_tar([reg("x", b"1")])]).layers[0]
    forged = build_image([make_tar([reg("x", b"2")])])
    forged.layers[0] = honest_layer
    manifest = json.loads(forged.manifest.data)
    manifest["layers"] = [honest_layer.descriptor()]
    forged.manifest = Blob(json.dumps(manifest).encode(), OCI_MANIFEST)
    pusher.image("tests/diffid", forged, "latest")
    with pytest.raises(DigestMismatch, match="diff_id"):
        store.pull(f"{registry.host}/tests/diffid:latest")
    _assert_nothing_half_written(store, forged.diff_ids[0])


def test_tampered_manifest_pulled_by_digest(registry: RegistryProcess, pusher: Pusher, store: ImageStore) -> None:
    built = build_image([make_tar([reg("m", b"m")])])
    pusher.image("tests/tampered-manifest", built)
    data_path = blob_data_path(registry.storage, built.manifest.digest)
    with open(data_path, "rb") as fh:
        original = fh.read()
    with open(data_path, "wb") as fh:
        fh.write(original.replace(b'"schemaVersion": 2', b'"schemaVersion":  2'))
    try:
        with pytest.raises(DigestMismatch, match="manifest"):
            store.pull(f"{registry.host}/tests/tampered-manifest@{built.manifest.digest}")
        assert store.list() == []
    finally:
        with open(data_path, "wb") as fh:
            fh.write(original)
