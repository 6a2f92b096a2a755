"""save/load archives without a registry: OCI layouts, docker save tarballs, and hostile archives."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from tests.integration.image._builder import BuiltImage, build_image, make_tar, reg, symlink

from tinycontainer._errors import DigestMismatch, ImageError
from tinycontainer.image import ImageStore, UnpackOptions, image_inspect, load_archive, save_archive, untagged_images

Member = tuple[str, bytes | None, str | None]  # name, data (None: symlink), link target


def _tar(path: Path, members: list[Member]) -> str:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.SYMTYPE
                info.linkname = link or ""
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return str(path)


def _blob(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


def _oci_members(built: BuiltImage, annotations: dict[str, str] | None = None) -> list[Member]:
    entry: dict[str, Any] = {"mediaType": built.manifest.media_type, "digest": built.manifest.digest,
                             "size": len(built.manifest.data)}
    if annotations:
        entry["annotations"] = annotations
    members: list[Member] = [
        ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}', None),
        ("index.json", json.dumps({"schemaVersion": 2, "manifests": [entry]}).encode(), None),
    ]
    for blob in [built.manifest, built.config, *built.layers]:
        members.append((_blob(blob.digest), blob.data, None))
    return members


def _docker_members(layers: list[bytes], tags: list[str], layer_paths: list[str] | None = None) -> list[Member]:
    built = build_image(layers, compression="none", docker=True)
    paths = layer_paths or [f"{i}/layer.tar" for i in range(len(layers))]
    members: list[Member] = [("cfg.json", built.config.data, None)]
    members += [(p, raw, None) for p, raw in zip(paths, layers, strict=False)]
    manifest = [{"Config": "cfg.json", "RepoTags": tags, "Layers": paths}]
    members.append(("manifest.json", json.dumps(manifest).encode(), None))
    return members


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(str(tmp_path / "store"), credential_files=[])


def _flat(store: ImageStore, ref: str, dest: Path) -> dict[str, str]:
    store.flatten(store.get(ref), str(dest))
    out = {}
    for dirpath, dirs, files in os.walk(dest):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, dest)
            if os.path.islink(full):
                out[rel] = "link:" + os.readlink(full)
            elif os.path.isdir(full):
                out[rel] = "dir"
            else:
                out[rel] = "file:" + Path(full).read_text()
    return out


def _nothing_left(store: ImageStore) -> None:
    assert os.listdir(store.content.tmp) == []
    assert store.list() == []


def test_oci_layout_with_full_name(store: ImageStore, tmp_path: Path) -> None:
    built = build_image([make_tar([reg("a", b"1")]), make_tar([reg("b", b"2"), symlink("c", "a")])])
    archive = _tar(tmp_path / "oci.tar", _oci_members(built, {"io.containerd.image.name": "example.com/x/y:1",
                                                                 "org.opencontainers.image.ref.name": "1"}))
    (img,) = load_archive(store, archive)
    assert img.id == built.config.digest and img.manifest_digest == built.manifest.digest
    assert img.references == ("example.com/x/y:1",)
    assert _flat(store, "example.com/x/y:1", tmp_path / "flat") == {"a": "file:1", "b": "file:2", "c": "link:a"}


def test_oci_tag_only_name_needs_repository(store: ImageStore, tmp_path: Path) -> None:
    built = build_image([make_tar([reg("a", b"1")])])
    archive = _tar(tmp_path / "oci.tar", _oci_members(built, {"org.opencontainers.image.ref.name": "v2"}))
    (untagged,) = load_archive(store, archive)
    assert untagged.references == ()
    assert [i.id for i in untagged_images(store)] == [built.config.digest]
    (named,) = load_archive(store, archive, repository="localhost/app")
    assert named.references == ("localhost/app:v2",)
    assert untagged_images(store) == []  # naming it dropped the <none> entry


def test_docker_save_tarball(store: ImageStore, tmp_path: Path) -> None:
    layers = [make_tar([reg("etc/motd", b"hi")]), make_tar([reg("etc/motd", b"bye")])]
    # Old docker save: a duplicate layer is a symlink to another directory's layer.tar.
    members = _docker_members(layers, ["busybox:latest", "localhost:5000/b:2"])
    members.insert(0, ("dup/layer.tar", None, "../0/layer.tar"))
    manifest = json.loads(members[-1][1] or b"")
    members[-1] = ("manifest.json", json.dumps(manifest).encode(), None)
    (img,) = load_archive(store, _tar(tmp_path / "d.tar", members))
    assert img.references == ("docker.io/library/busybox:latest", "localhost:5000/b:2")
    assert _flat(store, "busybox", tmp_path / "flat") == {"etc": "dir", "etc/motd": "file:bye"}
    info = image_inspect(store, "busybox")
    assert info["Id"] == img.id and info["RepoTags"] == list(img.references)
    assert [layer["DiffID"] for layer in info["Layers"]] == list(img.layers)
    assert info["Config"]["Cmd"] == ["echo hello"]


def test_docker_layer_through_symlink_member(store: ImageStore, tmp_path: Path) -> None:
    layer = make_tar([reg("x", b"x")])
    members = _docker_members([layer], ["t:1"], ["real/layer.tar"])
    members.append(("link/layer.tar", None, "../real/layer.tar"))
    manifest = [{"Config": "cfg.json", "RepoTags": ["t:1"], "Layers": ["link/layer.tar"]}]
    members.append(("manifest.json", json.dumps(manifest).encode(), None))
    (img,) = load_archive(store, _tar(tmp_path / "d.tar", members))
    assert img.layers == (img.layer_blobs[0],)  # uncompressed: blob digest == diff_id


@pytest.mark.parametrize("bad_path", ["../../outside.tar", "/etc/passwd", "0/../../x"])
def test_manifest_paths_are_confined(store: ImageStore, tmp_path: Path, bad_path: str) -> None:
    canary = tmp_path / "outside.tar"
    canary.write_bytes(make_tar([reg("evil", b"evil")]))
    members = _docker_members([make_tar([reg("x", b"x")])], ["t:1"])
    manifest = [{"Config": "cfg.json", "RepoTags": ["t:1"], "Layers": [bad_path]}]
    members.append(("manifest.json", json.dumps(manifest).encode(), None))
    archive = _tar(tmp_path / "d.tar", members)
    with pytest.raises(ImageError, match=r"outside|no layer"):
        load_archive(store, archive)
    _nothing_left(store)


def test_symlink_member_cannot_reach_host_files(store: ImageStore, tmp_path: Path) -> None:
    canary = tmp_path / "canary.tar"
    canary.write_bytes(make_tar([reg("evil", b"evil")]))
    members = _docker_members([make_tar([reg("x", b"x")])], ["t:1"], ["l/layer.tar"])
    members = [m for m in members if m[0] != "l/layer.tar"]
    members.append(("l/layer.tar", None, str(canary)))  # absolute: means the archive's root
    members.append(("l2/layer.tar", None, "../../../../../../../" + str(canary)))
    with pytest.raises(ImageError, match=r"no layer|outside"):
        load_archive(store, _tar(tmp_path / "d.tar", members))
    _nothing_left(store)


def test_hostile_member_names_are_never_written(store: ImageStore, tmp_path: Path) -> None:
    built = build_image([make_tar([reg("a", b"1")])])
    members = _oci_members(built, {"io.containerd.image.name": "localhost/x:1"})
    members += [("../../escaped", b"evil", None), ("/abs-escaped", b"evil", None)]
    load_archive(store, _tar(tmp_path / "o.tar", members))
    assert not (tmp_path / "escaped").exists() and not Path("/abs-escaped").exists()
    assert not (tmp_path.parent / "escaped").exists()


def test_tampered_oci_blob_is_refused_and_nothing_stays(store: ImageStore, tmp_path: Path) -> None:
    built = build_image([make_tar([reg("a", b"1")])])
    members = _oci_members(built, {"io.containerd.image.name": "localhost/x:1"})
    layer_name = _blob(built.layers[0].digest)
    members = [(n, (d[:10] + bytes([d[10] ^ 1]) + d[11:]) if n == layer_name and d else d, link)
               for n, d, link in members]
    with pytest.raises(DigestMismatch):
        load_archive(store, _tar(tmp_path / "o.tar", members))
    _nothing_left(store)
    assert not store.content.has(built.layers[0].digest)


def test_wrong_diff_id_is_refused(store: ImageStore, tmp_path: Path) -> None:
    members = _docker_members([make_tar([reg("x", b"x")])], ["t:1"])
    config = json.loads(members[0][1] or b"")
    config["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
    members[0] = ("cfg.json", json.dumps(config).encode(), None)
    with pytest.raises(DigestMismatch, match="diff_id"):
        load_archive(store, _tar(tmp_path / "d.tar", members))
    _nothing_left(store)


def test_layer_over_size_limit(tmp_path: Path) -> None:
    small = ImageStore(str(tmp_path / "small"), unpack_options=UnpackOptions(max_bytes=1000), credential_files=[])
    members = _docker_members([make_tar([reg("big", b"x" * 4_000_000)])], ["t:1"])
    with pytest.raises(ImageError, match="limit"):
        load_archive(small, _tar(tmp_path / "d.tar", members))
    _nothing_left(small)


def test_not_an_archive(store: ImageStore, tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"no tar here" * 100)
    with pytest.raises(ImageError, match="not a tar"):
        load_archive(store, str(junk))
    empty = _tar(tmp_path / "e.tar", [("hello", b"x", None)])
    with pytest.raises(ImageError, match="neither"):
        load_archive(store, empty)


def test_save_then_load_round_trip(store: ImageStore, tmp_path: Path) -> None:
    built = build_image([make_tar([reg("a", b"1")]), make_tar([reg("b", b"2")])])
    load_archive(store, _tar(tmp_path / "in.tar", _oci_members(built, {"io.containerd.image.name": "localhost/r:1"})))
    out = tmp_path / "out.tar"
    save_archive(store, ["localhost/r:1"], str(out))
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        docker = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert {"oci-layout", "index.json", "manifest.json", _blob(built.manifest.digest)} <= names
    assert index["manifests"][0]["digest"] == built.manifest.digest
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "localhost/r:1"
    assert docker == [{"Config": _blob(built.config.digest), "RepoTags": ["localhost/r:1"],
                       "Layers": [_blob(b.digest) for b in built.layers]}]
    again = tmp_path / "again.tar"
    save_archive(store, ["localhost/r:1"], str(again))
    assert again.read_bytes() == out.read_bytes()  # reproducible
    other = ImageStore(str(tmp_path / "other"), credential_files=[])
    (img,) = load_archive(other, str(out))
    assert img.id == built.config.digest and img.references == ("localhost/r:1",)
    assert [n for n in os.listdir(tmp_path) if n.startswith(".tcontainer-save")] == []
