"""Path confinement and whiteout logic of the layer applier (flatten mode needs no root)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from tinycontainer._errors import UnpackError
from tinycontainer.image import UnpackOptions, apply_layer
from tinycontainer.image._compression import HashingReader, detect, open_decompressed
from tinycontainer.image._unpack import clean_path, pax_xattrs

OPTS = UnpackOptions(devices=False, chown=False)


def tar(*members: tuple[str, str, bytes | str]) -> io.BytesIO:
    """members: (name, kind f/d/l/h, data or link target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            data = None
            if kind == "f":
                assert isinstance(payload, bytes)
                info.size = len(payload)
                info.mode = 0o644
                data = io.BytesIO(payload)
            elif kind == "d":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "l":
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
            elif kind == "h":
                info.type, info.linkname = tarfile.LNKTYPE, str(payload)
            tf.addfile(info, data)
    buf.seek(0)
    return buf


def tree(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            full = Path(dirpath) / name
            rel = str(full.relative_to(root))
            if full.is_symlink():
                out[rel] = "->" + os.readlink(full)
            elif full.is_dir():
                out[rel] = "/"
            else:
                out[rel] = full.read_text()
    return out


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        ("a/b", "a/b"),
        ("./a/b/", "a/b"),
        ("/etc/passwd", "etc/passwd"),
        ("//x//y/./z", "x/y/z"),
        ("a/../b", "b"),
        (".", ""),
        ("./", ""),
        ("/", ""),
        ("a/b/../../c", "c"),
    ],
)
def test_clean_path(name: str, clean: str) -> None:
    assert clean_path(name) == clean


@pytest.mark.parametrize("name", ["..", "../x", "a/../../x", "/../x", "./../x", "a/b/../../../x"])
def test_clean_path_refuses_escapes(name: str) -> None:
    # "/../x" is refused too: a name that needs clamping is a hostile name, not a typo.
    with pytest.raises(UnpackError, match="outside the layer root"):
        clean_path(name)


def test_symlink_escapes_are_resolved_inside(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    apply_layer(
        tar(
            ("abs", "l", str(outside)),
            ("rel", "l", "../../../../.."),
            ("rel/outside/x", "f", b"in-root"),
            ("victim", "l", str(outside / "v")),
            ("victim", "f", b"replaced"),
        ),
        str(root),
        mode="flatten",
        options=OPTS,
    )
    assert list(outside.iterdir()) == []
    assert tree(root) == {
        "abs": "->" + str(outside),
        "rel": "->../../../../..",
        "outside": "/",
        "outside/x": "in-root",
        "victim": "replaced",
    }


def test_hardlinks_resolve_inside_the_layer(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(
        tar(("d", "d", ""), ("d/f", "f", b"data"), ("d/g", "h", "d/f"), ("/h", "h", "/d/f")),
        str(root),
        mode="flatten",
        options=OPTS,
    )
    assert os.stat(root / "d/f").st_ino == os.stat(root / "d/g").st_ino == os.stat(root / "h").st_ino
    with pytest.raises(UnpackError, match="target is not in the layer"):
        apply_layer(tar(("x", "h", "missing")), str(root), mode="flatten", options=OPTS)
    with pytest.raises(UnpackError, match="target is a directory"):
        apply_layer(tar(("x", "h", "d")), str(root), mode="flatten", options=OPTS)


def test_flatten_whiteouts_and_opaque(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(
        tar(
            ("a", "d", ""),
            ("a/old", "f", b"1"),
            ("a/sub", "d", ""),
            ("a/sub/deep", "f", b"2"),
            ("gone", "f", b"3"),
            ("dir", "d", ""),
            ("dir/x", "f", b"4"),
        ),
        str(root),
        mode="flatten",
        options=OPTS,
    )
    apply_layer(
        tar(
            ("a", "d", ""),
            ("a/sub", "d", ""),
            ("a/sub/new", "f", b"5"),
            ("a/.wh..wh..opq", "f", b""),
            (".wh.gone", "f", b""),
            (".wh.dir", "f", b""),
            ("dir", "d", ""),
            ("dir/y", "f", b"6"),
            (".wh.never-existed", "f", b""),
            ("z/.wh..wh..opq", "f", b""),
        ),
        str(root),
        mode="flatten",
        options=OPTS,
    )
    assert tree(root) == {"a": "/", "a/sub": "/", "a/sub/new": "5", "dir": "/", "dir/y": "6"}


def test_whiteout_does_not_hide_own_layer_entries(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(tar(("f", "f", b"mine"), (".wh.f", "f", b"")), str(root), mode="flatten", options=OPTS)
    assert tree(root) == {"f": "mine"}


def test_file_replaces_directory_and_directory_replaces_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    apply_layer(tar(("d", "d", ""), ("d/x", "f", b"x"), ("f", "f", b"f")), str(root), mode="flatten", options=OPTS)
    apply_layer(
        tar(("d", "f", b"now a file"), ("f", "d", ""), ("f/in", "f", b"in")), str(root), mode="flatten", options=OPTS
    )
    assert tree(root) == {"d": "now a file", "f": "/", "f/in": "in"}


def test_metadata_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("suid")
        info.mode, info.size, info.mtime = 0o4755, 2, 1_234_567_890
        tf.addfile(info, io.BytesIO(b"#!"))
        info = tarfile.TarInfo("ro")
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o555, 1_000_000_000
        tf.addfile(info)
        info = tarfile.TarInfo("ro/child")
        info.mode, info.size = 0o600, 1
        tf.addfile(info, io.BytesIO(b"c"))
    buf.seek(0)
    apply_layer(buf, str(root), mode="flatten", options=OPTS)
    st = os.stat(root / "suid")
    assert st.st_mode & 0o7777 == 0o4755
    assert st.st_mtime == 1_234_567_890
    ro = os.stat(root / "ro")
    assert ro.st_mode & 0o7777 == 0o555  # applied after its child was written
    assert ro.st_mtime == 1_000_000_000
    assert (root / "ro/child").read_text() == "c"


def test_pax_xattrs_are_raw_bytes_and_overlay_ones_are_dropped() -> None:
    info = tarfile.TarInfo("f")
    info.pax_headers = {
        "SCHILY.xattr.user.bin": b"\xff\x00v".decode("utf-8", "surrogateescape"),
        "SCHILY.xattr.trusted.overlay.opaque": "y",
        "SCHILY.xattr.user.overlay.redirect": "/x",
        "SCHILY.xattr.security.capability": "cap",
        "LIBARCHIVE.xattr.user.b64": "aGk",
        "path": "f",
    }
    assert dict(pax_xattrs(info)) == {"user.bin": b"\xff\x00v", "security.capability": b"cap", "user.b64": b"hi"}


def test_not_a_tar_is_an_unpack_error(tmp_path: Path) -> None:
    with pytest.raises(UnpackError):
        apply_layer(io.BytesIO(b"this is not a tar archive" * 40), str(tmp_path), mode="flatten", options=OPTS)
    truncated = gzip.compress(tar(("f", "f", os.urandom(100_000))).getvalue())[:5000]
    with pytest.raises(UnpackError):
        apply_layer(open_decompressed(io.BytesIO(truncated)), str(tmp_path), mode="flatten", options=OPTS)


def test_entry_and_size_caps(tmp_path: Path) -> None:
    many = tar(*[(f"f{i}", "f", b"") for i in range(20)])
    with pytest.raises(UnpackError, match="more than 10 entries"):
        apply_layer(many, str(tmp_path), mode="flatten", options=UnpackOptions(max_entries=10, chown=False))
    with pytest.raises(UnpackError, match="size limit of 10 bytes"):
        apply_layer(
            tar(("big", "f", b"x" * 11)),
            str(tmp_path),
            mode="flatten",
            options=UnpackOptions(max_bytes=10, chown=False),
        )


def test_compression_detection_and_diff_id_hash() -> None:
    raw = tar(("f", "f", b"x")).getvalue()
    assert detect(raw) == "none"
    assert detect(gzip.compress(raw)) == "gzip"
    assert detect(b"\x28\xb5\x2f\xfd....") == "zstd"
    reader = HashingReader(open_decompressed(io.BytesIO(gzip.compress(raw))))
    reader.drain()
    import hashlib

    assert reader.digest() == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert reader.count == len(raw)
