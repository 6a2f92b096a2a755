"""A store without overlay layers (what an ordinary user gets): layers are verified and kept as
blobs, flatten builds the rootfs, and overlay-only calls say why they cannot work."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tests.integration.image._builder import make_tar, reg, whiteout
from tests.unit.image.test_archive import _docker_members, _tar

from tinycontainer._errors import DigestMismatch, ImageError
from tinycontainer.image import ImageStore, load_archive


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(str(tmp_path / "store"), credential_files=[], overlay_layers=False)


def test_layers_are_blobs_and_flatten_applies_whiteouts(store: ImageStore, tmp_path: Path) -> None:
    layers = [make_tar([reg("etc/gone", b"1"), reg("etc/kept", b"2")]), make_tar([whiteout("etc/gone")])]
    (img,) = load_archive(store, _tar(tmp_path / "d.tar", _docker_members(layers, ["t:1"])))
    for diff_id in img.layers:
        assert sorted(os.listdir(store.layer_path(diff_id))) == ["blob", "size"]
    assert img.size > 0
    dest = tmp_path / "rootfs"
    store.flatten(img, str(dest))
    assert sorted(os.listdir(dest / "etc")) == ["kept"]
    with pytest.raises(ImageError, match="flatten"):
        store.layer_dirs(img)


def test_wrong_diff_id_fails_the_load_not_the_run(store: ImageStore, tmp_path: Path) -> None:
    members = _docker_members([make_tar([reg("x", b"x")])], ["t:1"])
    config = json.loads(members[0][1] or b"")
    config["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
    members[0] = ("cfg.json", json.dumps(config).encode(), None)
    with pytest.raises(DigestMismatch, match="diff_id"):
        load_archive(store, _tar(tmp_path / "d.tar", members))
    assert os.listdir(store.layers_dir) == []
