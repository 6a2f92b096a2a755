"""A 4-layer image with whiteouts, opaque directories, overwrites and links: flattened and overlay views."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.integration.image._builder import (
    build_image,
    busybox_entries,
    directory,
    hardlink,
    make_tar,
    opaque,
    reg,
    symlink,
    whiteout,
)
from tests.integration.image._registry_server import Pusher, RegistryProcess
from tests.integration.image._trees import describe, in_private_mount_ns

from tinycontainer.image import ImageStore

pytestmark = pytest.mark.registry

LAYER1 = [
    *busybox_entries(),
    directory("etc"),
    reg("etc/a", b"a1"),
    reg("etc/b", b"b1"),
    reg("etc/keep", b"k"),
    directory("dir1"),
    reg("dir1/x", b"x"),
    directory("dir1/sub"),
    reg("dir1/sub/z", b"z"),
    directory("opq"),
    reg("opq/o1", b"o1"),
    directory("opq/o2"),
    reg("opq/o2/f", b"f"),
    directory("opq2"),
    reg("opq2/old", b"old"),
    directory("r"),
    directory("r/a"),
    reg("r/a/keep", b"rk"),
    directory("r/a/b"),
    reg("r/a/b/other", b"other"),
    directory("r/a/b/c"),
    reg("r/a/b/c/bar", b"bar"),
    reg("swap", b"file-then-dir"),
    reg("tobe_link", b"t"),
]
LAYER2 = [
    directory("etc"),
    whiteout("etc/a"),
    whiteout("dir1"),
    directory("opq"),
    reg("opq/new", b"new"),
    opaque("opq"),  # after the layer's own entry: must still hide only the lower ones
    directory("opq2"),
    opaque("opq2"),  # before the layer's own entry
    reg("opq2/n", b"n"),
    reg("etc/b", b"b2"),
    symlink("etc/lnk", "b"),
    symlink("etc/abs", "/etc/keep"),
    hardlink("etc/hard", "etc/b"),
    directory("swap"),
    reg("swap/inside", b"in"),
]
# The opaque marker comes after re-declared subdirectories (a real bug in flattening appliers).
LAYER3 = [
    directory("r"),
    directory("r/a"),
    directory("r/a/b"),
    directory("r/a/b/c"),
    reg("r/a/b/c/foo", b"foo"),
    opaque("r/a/b"),
]
LAYER4 = [
    directory("dir1"),
    reg("dir1/fresh", b"fresh"),
    symlink("tobe_link", "etc/keep"),
]

EXPECTED_NON_BIN = {
    "etc": "dir",
    "etc/b": "file:b2",
    "etc/keep": "file:k",
    "etc/lnk": "link:b",
    "etc/abs": "link:/etc/keep",
    "etc/hard": "file:b2",
    "dir1": "dir",
    "dir1/fresh": "file:fresh",
    "opq": "dir",
    "opq/new": "file:new",
    "opq2": "dir",
    "opq2/n": "file:n",
    "r": "dir",
    "r/a": "dir",
    "r/a/keep": "file:rk",
    "r/a/b": "dir",
    "r/a/b/c": "dir",
    "r/a/b/c/foo": "file:foo",
    "swap": "dir",
    "swap/inside": "file:in",
    "tobe_link": "link:etc/keep",
}


@pytest.fixture
def whiteout_image(registry: RegistryProcess, pusher: Pusher) -> str:
    built = build_image([make_tar(LAYER1), make_tar(LAYER2), make_tar(LAYER3), make_tar(LAYER4)])
    pusher.image("tests/whiteouts", built, "latest")
    return f"{registry.host}/tests/whiteouts:latest"


def _without_bin(tree: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tree.items() if k != "bin" and not k.startswith("bin/")}


def test_flattened_tree(whiteout_image: str, store: ImageStore, tmp_path: Path) -> None:
    img = store.pull(whiteout_image)
    flat = tmp_path / "flat"
    store.flatten(img, str(flat))
    tree = describe(str(flat))
    assert _without_bin(tree) == EXPECTED_NON_BIN
    assert tree["bin/sh"] == "link:busybox"
    assert os.stat(flat / "etc/hard").st_ino == os.stat(flat / "etc/b").st_ino


def test_layers_are_in_overlay_format(whiteout_image: str, store: ImageStore) -> None:
    img = store.pull(whiteout_image)
    _l1, l2, l3, l4 = store.layer_dirs(img)
    t2 = describe(l2)
    assert t2["etc/a"] == "chr:0,0"
    assert t2["dir1"] == "chr:0,0"
    assert ".wh..wh..opq" not in " ".join(t2)
    assert os.getxattr(os.path.join(l2, "opq"), "trusted.overlay.opaque") == b"y"
    assert os.getxattr(os.path.join(l2, "opq2"), "trusted.overlay.opaque") == b"y"
    assert os.getxattr(os.path.join(l3, "r/a/b"), "trusted.overlay.opaque") == b"y"
    with pytest.raises(OSError):
        os.getxattr(os.path.join(l3, "r/a"), "trusted.overlay.opaque")
    assert describe(l4) == {"dir1": "dir", "dir1/fresh": "file:fresh", "tobe_link": "link:etc/keep"}


def test_overlay_view_matches_flattened(whiteout_image: str, store: ImageStore, tmp_path: Path) -> None:
    img = store.pull(whiteout_image)
    flat = tmp_path / "flat"
    store.flatten(img, str(flat))
    container = tmp_path / "ctr"

    def body() -> dict[str, str]:
        rootfs = store.mount_rootfs(img, str(container))
        try:
            return describe(rootfs)
        finally:
            store.unmount_rootfs(str(container))

    merged = in_private_mount_ns(body)
    assert merged == describe(str(flat))
    assert _without_bin(merged) == EXPECTED_NON_BIN
