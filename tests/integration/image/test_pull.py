"""Pulling real images from a local docker-registry: formats, compression, store operations."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
from tests.integration.image._builder import BUSYBOX, build_image, busybox_entries, make_tar, reg
from tests.integration.image._registry_server import Pusher, RegistryProcess
from tests.integration.image._trees import describe, in_private_mount_ns

from tinycontainer._errors import ImageError
from tinycontainer.image import ImageConfig, ImageNotFound, ImageStore, ProgressEvent

pytestmark = pytest.mark.registry


def _busybox_sha() -> str:
    with open(BUSYBOX, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def test_single_layer_oci_image(registry: RegistryProcess, pusher: Pusher, store: ImageStore, tmp_path: Path) -> None:
    built = build_image([make_tar(busybox_entries())])
    pusher.image("tests/single", built, "v1")
    events: list[ProgressEvent] = []

    img = store.pull(f"{registry.host}/tests/single:v1", progress=events.append)

    assert img.id == built.config.digest
    assert img.digest == img.manifest_digest == built.manifest.digest
    assert img.references == (f"{registry.host}/tests/single:v1",)
    assert img.layers == tuple(built.diff_ids)
    assert img.config == ImageConfig(
        entrypoint=["/bin/sh", "-c"],
        cmd=["echo hello"],
        env=["PATH=/bin", "GREETING=hi"],
        working_dir="/tmp",
        user="1000:1000",
        exposed_ports=["8080/tcp"],
        stop_signal="SIGINT",
        labels={"org.example": "yes"},
        volumes=["/data"],
        os="linux",
        architecture="amd64",
    )
    assert img.size >= os.path.getsize(BUSYBOX)
    # "waiting" first (the renderer learns every layer and the total), then the download.
    assert [e.phase for e in events[:2]] == ["waiting", "downloading"]
    assert events[0].total == len(built.layers[0].data)
    assert events[-1].phase == "done" and events[-1].done == events[-1].total == len(built.layers[0].data)

    (layer,) = store.layer_dirs(img)
    tree = describe(layer)
    assert tree["bin/busybox"] == "file:" + _busybox_sha()
    assert tree["bin/sh"] == "link:busybox"
    assert os.stat(os.path.join(layer, "bin/busybox")).st_mode & 0o777 == 0o755

    flat = tmp_path / "flat"
    store.flatten(img, str(flat))
    assert describe(str(flat)) == tree

    # A second pull finds every layer in place and downloads nothing.
    again: list[ProgressEvent] = []
    assert store.pull(f"{registry.host}/tests/single:v1", progress=again.append).id == img.id
    assert [e.phase for e in again] == ["waiting", "exists"]


def test_docker_media_types(registry: RegistryProcess, pusher: Pusher, store: ImageStore) -> None:
    built = build_image([make_tar(busybox_entries()), make_tar([reg("etc/motd", b"docker\n")])], docker=True)
    pusher.image("tests/docker", built, "latest")
    img = store.pull(f"{registry.host}/tests/docker")
    assert img.id == built.config.digest
    assert len(store.layer_dirs(img)) == 2
    assert describe(store.layer_dirs(img)[1]) == {"etc": "dir", "etc/motd": "file:docker\n"}


def test_zstd_layer(registry: RegistryProcess, pusher: Pusher, store: ImageStore, tmp_path: Path) -> None:
    pytest.importorskip("zstandard")
    built = build_image([make_tar(busybox_entries()), make_tar([reg("z", b"zstd!")])], compression="zstd")
    assert built.layers[0].data[:4] == b"\x28\xb5\x2f\xfd"
    pusher.image("tests/zstd", built, "latest")
    img = store.pull(f"{registry.host}/tests/zstd:latest")
    store.flatten(img, str(tmp_path / "flat"))
    tree = describe(str(tmp_path / "flat"))
    assert tree["z"] == "file:zstd!"
    assert tree["bin/busybox"] == "file:" + _busybox_sha()


def test_uncompressed_layer_and_pull_by_digest(registry: RegistryProcess, pusher: Pusher, store: ImageStore) -> None:
    built = build_image([make_tar([reg("plain", b"tar")])], compression="none")
    pusher.image("tests/plain", built)  # by digest only
    img = store.pull(f"{registry.host}/tests/plain@{built.manifest.digest}")
    assert img.references == (f"{registry.host}/tests/plain@{built.manifest.digest}",)
    assert describe(store.layer_dirs(img)[0]) == {"plain": "file:tar"}


def test_store_get_list_remove_prune(registry: RegistryProcess, pusher: Pusher, store: ImageStore) -> None:
    shared = make_tar(busybox_entries())
    one = build_image([shared, make_tar([reg("one", b"1")])])
    two = build_image([shared, make_tar([reg("two", b"2")])])
    pusher.image("tests/ops", one, "one")
    pusher.image("tests/ops", two, "two")
    img1 = store.pull(f"{registry.host}/tests/ops:one")
    img2 = store.pull(f"{registry.host}/tests/ops:two")
    assert img1.layers[0] == img2.layers[0]
    assert store.layer_dirs(img1)[0] == store.layer_dirs(img2)[0]  # the shared layer is stored once

    assert store.get(img1.id).id == img1.id
    assert store.get(img1.id[7:19]).id == img1.id  # short id, as `docker images` prints it
    assert store.get(f"{registry.host}/tests/ops:two").id == img2.id
    assert store.get(f"{registry.host}/tests/ops@{two.manifest.digest}").id == img2.id
    assert sorted(i.id for i in store.list()) == sorted([img1.id, img2.id])

    store.remove(f"{registry.host}/tests/ops:one")
    with pytest.raises(ImageNotFound):
        store.get(f"{registry.host}/tests/ops:one")
    freed = store.prune()
    assert freed >= len(one.layers[1].data)
    assert [i.id for i in store.list()] == [img2.id]
    assert os.path.isdir(store.layer_dirs(img2)[0])
    assert not os.path.exists(store.layer_path(img1.layers[1]))
    assert store.prune() == 0


def test_unknown_tag_and_platform_errors(registry: RegistryProcess, pusher: Pusher, store: ImageStore) -> None:
    with pytest.raises(ImageError, match="not found"):
        store.pull(f"{registry.host}/tests/nothing-here:v9")
    assert store.list() == []


def test_mount_rootfs_single_layer(
    registry: RegistryProcess, pusher: Pusher, store: ImageStore, tmp_path: Path
) -> None:
    built = build_image([make_tar(busybox_entries())])
    pusher.image("tests/mount1", built, "latest")
    img = store.pull(f"{registry.host}/tests/mount1")
    container = tmp_path / "ctr"

    def body() -> dict[str, object]:
        rootfs = store.mount_rootfs(img, str(container))
        tree = describe(rootfs)
        with open(os.path.join(rootfs, "new-file"), "w") as fh:
            fh.write("upper")
        os.unlink(os.path.join(rootfs, "bin", "cat"))
        upper = describe(str(container / "upper"))
        store.unmount_rootfs(str(container))
        return {"tree": tree, "upper": upper, "left": sorted(os.listdir(container)), "after": os.listdir(rootfs)}

    result = in_private_mount_ns(body)
    assert result["tree"] == describe(store.layer_dirs(img)[0])
    assert result["upper"] == {"new-file": "file:upper", "bin": "dir", "bin/cat": "chr:0,0"}
    assert result["left"] == ["rootfs"]
    assert result["after"] == []
    # The image's layer is untouched by writes through the container.
    assert describe(store.layer_dirs(img)[0])["bin/cat"] == "link:busybox"


def test_concurrent_pulls_of_the_same_image(registry: RegistryProcess, pusher: Pusher, tmp_path: Path) -> None:
    built = build_image([make_tar(busybox_entries()), make_tar([reg("c", b"concurrent")])])
    pusher.image("tests/concurrent", built, "latest")
    root = str(tmp_path / "shared-store")
    results: list[object] = []
    unpacked: list[str] = []

    def worker() -> None:
        store = ImageStore(root)
        try:
            img = store.pull(
                f"{registry.host}/tests/concurrent",
                # The first "unpacking" event of a layer (done == 0) marks the start of its unpack.
                progress=lambda e: unpacked.append(e.layer) if e.phase == "unpacking" and e.done == 0 else None,
            )
            results.append(img.id)
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [built.config.digest] * 4
    assert sorted(unpacked) == sorted(b.digest for b in built.layers)  # each layer unpacked exactly once
    store = ImageStore(root)
    assert [i.id for i in store.list()] == [built.config.digest]
    assert os.listdir(store.content.tmp) == []


def test_same_layer_compressed_differently(
    registry: RegistryProcess, pusher: Pusher, store: ImageStore, tmp_path: Path
) -> None:
    pytest.importorskip("zstandard")
    layer = make_tar([reg("same", b"content")])
    gz = build_image([layer], compression="gzip")
    zst = build_image([layer], compression="zstd", config={"Cmd": ["zstd"]})
    pusher.image("tests/recompressed", gz, "gz")
    pusher.image("tests/recompressed", zst, "zst")
    store.pull(f"{registry.host}/tests/recompressed:gz")
    img = store.pull(f"{registry.host}/tests/recompressed:zst")  # layer already unpacked: the zstd blob is skipped
    store.flatten(img, str(tmp_path / "flat"))
    assert describe(str(tmp_path / "flat")) == {"same": "file:content"}
    store.remove(f"{registry.host}/tests/recompressed:gz")
    store.prune()  # the gzip blob is still the source of the shared layer
    store.flatten(img, str(tmp_path / "flat2"))
    assert describe(str(tmp_path / "flat2")) == {"same": "file:content"}


def test_mount_many_layers(registry: RegistryProcess, pusher: Pusher, store: ImageStore, tmp_path: Path) -> None:
    count = 100  # absolute lowerdir paths would overflow mount(2)'s one-page option limit
    layers = [make_tar([reg(f"f{i:03}", str(i).encode()), reg("top", str(i).encode())]) for i in range(count)]
    built = build_image(layers)
    pusher.image("tests/many", built, "latest")
    img = store.pull(f"{registry.host}/tests/many")
    assert len(":".join(store.layer_dirs(img))) > 4096
    container = tmp_path / "ctr"

    def body() -> dict[str, str]:
        rootfs = store.mount_rootfs(img, str(container))
        try:
            return describe(rootfs)
        finally:
            store.unmount_rootfs(str(container))

    tree = in_private_mount_ns(body)
    assert tree["top"] == f"file:{count - 1}"
    assert len(tree) == count + 1
    assert sorted(os.listdir(container)) == ["rootfs"]


def test_get_by_digest_for_image_pulled_by_digest(registry: RegistryProcess, pusher: Pusher, store: ImageStore) -> None:
    built = build_image([make_tar([reg("d", b"d")])])
    pusher.image("tests/bydigest", built)
    ref = f"{registry.host}/tests/bydigest@{built.manifest.digest}"
    store.pull(ref)
    assert store.get(ref).id == built.config.digest
    assert store.get(f"{registry.host}/tests/bydigest:sometag@{built.manifest.digest}").id == built.config.digest
    with pytest.raises(ImageNotFound):
        store.get(f"{registry.host}/tests/other@{built.manifest.digest}")
