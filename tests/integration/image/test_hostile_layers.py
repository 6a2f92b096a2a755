"""Hostile layers must never change anything outside the layer directory.

Every case aims at canary files in a temp directory (never at real host files: research/registry.md
reports a test that damaged a host file through tarfile). The invariant asserted is that the
canary directory is byte-for-byte and mode-for-mode unchanged; where the applier refuses the
layer it must say so with UnpackError.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.integration.image._builder import (
    Entry,
    build_image,
    chardev,
    directory,
    hardlink,
    make_tar,
    reg,
    symlink,
)
from tests.integration.image._registry_server import Pusher, RegistryProcess
from tests.integration.image._trees import describe

from tinycontainer._errors import UnpackError
from tinycontainer.image import ImageStore, UnpackOptions, apply_layer


class Canary:
    def __init__(self, base: Path) -> None:
        self.dir = base / "outside"
        self.dir.mkdir()
        self.file = self.dir / "canary"
        self.file.write_text("precious")
        os.chmod(self.dir, 0o755)
        os.chmod(self.file, 0o644)
        self.snapshot = self._state()

    def _state(self) -> tuple[dict[str, str], list[tuple[str, int, int]]]:
        modes = [
            (str(p), os.lstat(p).st_mode, os.lstat(p).st_mtime_ns) for p in (self.dir, self.file, *self.dir.iterdir())
        ]
        return describe(str(self.dir)), sorted(modes)

    def assert_untouched(self) -> None:
        assert self._state() == self.snapshot


@pytest.fixture
def canary(tmp_path: Path) -> Canary:
    return Canary(tmp_path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


def _apply(entries: list[Entry], dest: Path, mode: str = "flatten", **options: object) -> None:
    apply_layer(io.BytesIO(make_tar(entries)), str(dest), mode=mode, options=UnpackOptions(**options))  # type: ignore[arg-type]


MODES = ["flatten", "overlay"]


@pytest.mark.parametrize("mode", MODES)
def test_dotdot_is_refused(canary: Canary, root: Path, mode: str) -> None:
    with pytest.raises(UnpackError, match="outside the layer root"):
        _apply([reg("../outside/canary", b"pwned")], root, mode)
    with pytest.raises(UnpackError, match="outside the layer root"):
        _apply([reg("a/../../outside/canary", b"pwned")], root, mode)
    canary.assert_untouched()


@pytest.mark.parametrize("mode", MODES)
def test_absolute_names_land_inside(canary: Canary, root: Path, mode: str) -> None:
    _apply([reg(str(canary.file), b"inside")], root, mode)
    canary.assert_untouched()
    assert (root / str(canary.file).lstrip("/")).read_text() == "inside"


@pytest.mark.parametrize("mode", MODES)
def test_file_through_symlink_to_outside_dir(canary: Canary, root: Path, mode: str) -> None:
    with pytest.raises(UnpackError, match="dangling symlink"):
        _apply([symlink("evil", str(canary.dir)), reg("evil/canary", b"pwned")], root, mode)
    canary.assert_untouched()


@pytest.mark.parametrize("mode", MODES)
def test_relative_symlink_climbing_out_is_confined(canary: Canary, root: Path, mode: str) -> None:
    _apply([symlink("up", "../../../../../../.."), reg("up/outside/canary", b"pwned")], root, mode)
    canary.assert_untouched()
    assert (root / "outside" / "canary").read_text() == "pwned"  # resolved as if root were /


@pytest.mark.parametrize("mode", MODES)
def test_regular_file_replaces_symlink_instead_of_writing_through_it(canary: Canary, root: Path, mode: str) -> None:
    _apply([symlink("victim", str(canary.file)), reg("victim", b"pwned", mode=0o777)], root, mode)
    canary.assert_untouched()
    assert not (root / "victim").is_symlink()
    assert (root / "victim").read_text() == "pwned"


@pytest.mark.parametrize("mode", MODES)
def test_directory_metadata_not_applied_through_a_later_symlink(canary: Canary, root: Path, mode: str) -> None:
    _apply([directory("d", mode=0o777), symlink("d", str(canary.dir))], root, mode)
    _apply([symlink("e", str(canary.dir)), directory("e", mode=0o700)], root, mode)
    canary.assert_untouched()
    assert (root / "e").is_dir() and not (root / "e").is_symlink()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("target", ["abs", "dotdot", "via-symlink"])
def test_hardlink_to_outside_canary_is_refused(canary: Canary, root: Path, mode: str, target: str) -> None:
    entries: list[Entry] = []
    if target == "abs":
        entries.append(hardlink("hl", str(canary.file)))
    elif target == "dotdot":
        entries.append(hardlink("hl", "../outside/canary"))
    else:
        entries += [symlink("s", str(canary.dir)), hardlink("hl", "s/canary")]
    entries.append(reg("hl", b"pwned"))
    with pytest.raises(UnpackError):
        _apply(entries, root, mode)
    canary.assert_untouched()
    assert os.stat(canary.file).st_nlink == 1


def test_cross_layer_symlink_swap_flatten(canary: Canary, root: Path) -> None:
    _apply([symlink("swap", str(canary.dir))], root)
    with pytest.raises(UnpackError):
        _apply([reg("swap/canary", b"pwned")], root)
    _apply([symlink("swap2", str(canary.dir))], root)
    _apply([reg(".wh.canary", b""), directory("swap2"), reg("swap2/canary", b"inside")], root)  # replaces the link
    _apply([symlink("swap3", str(canary.dir))], root)
    _apply([reg("swap3/.wh.canary", b"")], root)  # a whiteout through a lower symlink
    canary.assert_untouched()
    assert (root / "swap2" / "canary").read_text() == "inside"


def test_cross_layer_symlink_swap_overlay(canary: Canary, tmp_path: Path) -> None:
    lower, upper = tmp_path / "l1", tmp_path / "l2"
    lower.mkdir()
    upper.mkdir()
    _apply([symlink("swap", str(canary.dir))], lower, "overlay")
    _apply([reg("swap/canary", b"pwned"), reg("swap/.wh.other", b"")], upper, "overlay")
    canary.assert_untouched()
    assert describe(str(upper)) == {"swap": "dir", "swap/canary": "file:pwned", "swap/other": "chr:0,0"}


def test_devices_created_only_when_allowed(canary: Canary, root: Path, tmp_path: Path) -> None:
    _apply([chardev("dev/null", 1, 3)], root, devices=True)
    assert describe(str(root))["dev/null"] == "chr:1,3"
    other = tmp_path / "nodev"
    other.mkdir()
    _apply([chardev("dev/null", 1, 3), chardev(str(canary.dir / "dev"), 1, 3), reg("ok", b"ok")], other, devices=False)
    assert describe(str(other)) == {"ok": "file:ok"}  # skipped devices do not even create parents
    canary.assert_untouched()


def _run_as_nobody(fn: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            fn()
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_device_node_as_non_root_is_skipped(canary: Canary) -> None:
    # pytest's tmp_path sits under a 0700 directory that nobody cannot enter.
    top = Path(tempfile.mkdtemp(prefix="tc-unpriv-"))
    try:
        _device_node_as_non_root(top, canary)
    finally:
        shutil.rmtree(top)


def _device_node_as_non_root(top: Path, canary: Canary) -> None:
    os.chmod(top, 0o711)
    dest = top / "unpriv"
    dest.mkdir()
    os.chown(dest, 65534, 65534)
    data = make_tar([chardev("null", 1, 3), chardev("outside-dev", 8, 0), reg("file", b"f", uid=0, gid=0)])

    def body() -> None:
        result = apply_layer(io.BytesIO(data), str(dest), mode="flatten")
        assert sorted(result.skipped) == ["null", "outside-dev"], result.skipped

    assert _run_as_nobody(body) == 0
    assert describe(str(dest)) == {"file": "file:f"}
    assert os.stat(dest / "file").st_uid == 65534  # numeric owners are only applied by root
    canary.assert_untouched()


def _gnu_sparse_member(name: str, real_size: int, data: bytes) -> bytes:
    """A PAX GNU sparse 1.0 member: tiny in the archive, ``real_size`` bytes once expanded."""
    sparse_map = f"1\n0\n{len(data)}\n".encode().ljust(512, b"\0")
    info = tarfile.TarInfo(f"GNUSparseFile.0/{name}")
    payload = sparse_map + data.ljust(512, b"\0")
    info.size = len(payload)
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": name,
        "GNU.sparse.realsize": str(real_size),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def test_absurd_sparse_file_is_refused(root: Path) -> None:
    bomb = _gnu_sparse_member("bomb", 1 << 40, b"A" * 512)
    with pytest.raises(UnpackError, match="exceeds the unpacked size limit"):
        apply_layer(io.BytesIO(bomb), str(root), mode="flatten")
    assert describe(str(root)) == {}


def test_small_sparse_file_is_written_sparse(root: Path) -> None:
    apply_layer(io.BytesIO(_gnu_sparse_member("holey", 64 << 20, b"B" * 512)), str(root), mode="flatten")
    st = os.stat(root / "holey")
    assert st.st_size == 64 << 20
    assert st.st_blocks * 512 < 1 << 20
    with open(root / "holey", "rb") as fh:
        assert fh.read(512) == b"B" * 512


def test_total_size_cap(root: Path) -> None:
    entries = [reg(f"f{i}", b"x" * 400_000) for i in range(4)]
    with pytest.raises(UnpackError, match="size limit of 1000000"):
        _apply(entries, root, max_bytes=1_000_000)


@pytest.mark.registry
def test_hostile_image_pull_leaves_nothing(
    registry: RegistryProcess, pusher: Pusher, store: ImageStore, canary: Canary
) -> None:
    built = build_image([make_tar([symlink("evil", str(canary.dir)), reg("evil/canary", b"pwned")])])
    pusher.image("tests/hostile", built, "latest")
    with pytest.raises(UnpackError):
        store.pull(f"{registry.host}/tests/hostile:latest")
    canary.assert_untouched()
    assert store.list() == []
    assert os.listdir(store.content.tmp) == []
    assert not os.path.exists(store.layer_path(built.diff_ids[0]))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", [".wh...", ".wh..", "sub/.wh...", ".wh."])
def test_whiteouts_naming_dot_entries_are_refused(tmp_path: Path, mode: str, name: str) -> None:
    # The layer root's parent holds a canary: a whiteout of ".." must not remove it.
    parent = tmp_path / "parent"
    root = parent / "root"
    root.mkdir(parents=True)
    (parent / "canary").write_text("precious")
    (root / "sub").mkdir()
    with pytest.raises(UnpackError, match="names no valid entry"):
        _apply([reg(name, b"")], root, mode)
    assert (parent / "canary").read_text() == "precious"
    assert (root / "sub").is_dir()
