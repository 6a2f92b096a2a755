"""Our root filesystem equals what skopeo + umoci and podman make of the same image from the same registry.

Compared: file types, permission bits (setuid included), owners, symlink targets, contents,
device numbers and which paths are hard links of one another; whiteouts must be resolved (no
``.wh.`` entries, no 0/0 devices). Everything happens in temp dirs; podman runs with its own
--root/--runroot inside a private mount namespace (``unshare -m``), so no mount reaches the host.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from tests.integration.image._builder import (
    Entry,
    build_image,
    busybox_entries,
    chardev,
    directory,
    hardlink,
    make_tar,
    reg,
    symlink,
    whiteout,
)
from tests.integration.image._registry_server import Pusher, RegistryProcess
from tests.integration.image.test_whiteouts import LAYER1, LAYER2, LAYER3, LAYER4

from tinycontainer.image import ImageStore

pytestmark = pytest.mark.registry

def _hardlink_like(name: str, target: str, mode: int, uid: int, gid: int) -> Entry:
    """A hard link whose header repeats its target's metadata, as GNU tar and docker write it.

    (With differing headers the peers disagree: podman applies the link entry's mode and owner
    to the shared inode, umoci and tinycontainer keep the target's.)
    """
    info, data = hardlink(name, target)
    info.mode, info.uid, info.gid = mode, uid, gid
    return info, data


METADATA_LAYERS = [
    [
        *busybox_entries(),
        directory("srv", 0o750),
        reg("srv/owned", b"owned", 0o640, uid=1234, gid=5678),
        reg("srv/setuid", b"#!", 0o4755),
        reg("srv/setgid", b"#!", 0o2711, gid=42),
        directory("srv/sticky", 0o1777),
        reg("srv/orig", b"linked"),
        hardlink("srv/link1", "srv/orig"),
        chardev("srv/null", 1, 3),
        reg("gone/file", b"x"),
    ],
    [
        # A hard link may only name a file of its own layer (layer-per-directory stores like
        # overlay cannot link across layers; docker's overlay2 refuses too).
        reg("srv/orig2", b"linked-2", 0o700, uid=5, gid=6),
        _hardlink_like("srv/link2", "srv/orig2", 0o700, 5, 6),
        whiteout("gone"),
        symlink("srv/abs", "/srv/orig"),
        symlink("srv/dangling", "../nowhere"),
        reg("srv/owned", b"replaced", 0o600, uid=99, gid=98),
    ],
]


def snapshot(root: str) -> dict[str, str]:
    """path -> type, mode, owner and content; hard links share a group label."""
    out: dict[str, str] = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            kind = stat.S_IFMT(st.st_mode)
            meta = f"{stat.S_IMODE(st.st_mode):04o} {st.st_uid}:{st.st_gid}"
            if stat.S_ISDIR(st.st_mode):
                out[rel] = f"dir {meta}"
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = f"link {st.st_uid}:{st.st_gid} -> {os.readlink(full)}"
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()[:16]
                out[rel] = f"file {meta} {digest}"
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                out[rel] = f"dev {kind:o} {meta} {os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
            else:
                out[rel] = f"other {kind:o} {meta}"
    for group in inodes.values():
        label = min(group)
        for rel in group:
            out[rel] += f" hardlink-group={label}"
    return out


def _run(argv: list[str], timeout: float = 120) -> None:
    proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{argv}: {proc.stderr.decode(errors='replace')}"


def _skopeo_umoci(ref: str, work: Path) -> str:
    layout, rootfs = work / "layout", work / "umoci-rootfs"
    _run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:img"])
    _run(["umoci", "raw", "unpack", "--image", f"{layout}:img", str(rootfs)])
    return str(rootfs)


def _podman_vfs(ref: str, work: Path) -> str:
    root, copy = work / "podman-root", work / "podman-rootfs"
    runroot = tempfile.mkdtemp(prefix="tc-pr-")  # podman refuses a runroot longer than 50 characters
    base = ["podman", "--root", str(root), "--runroot", runroot, "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    podman = " ".join(base)
    # vfs "mounts" are plain directories; copy the tree out (cp -a keeps owners, modes and hard links)
    # from inside the same private mount namespace, so nothing podman does there reaches the host.
    script = (
        f"{podman} pull -q --tls-verify=false {ref} >/dev/null && "
        f"dir=$({podman} image mount {ref}) && cp -a \"$dir\" {copy} && "
        f"{podman} image unmount {ref} >/dev/null"
    )
    try:
        _run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], timeout=180)
    finally:
        # Not `podman system reset`: it also deletes host-wide network configuration.
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(runroot, ignore_errors=True)
    return str(copy)


@pytest.fixture(scope="module")
def parity_images(registry: RegistryProcess, pusher: Pusher) -> dict[str, str]:
    whiteouts = build_image([make_tar(LAYER1), make_tar(LAYER2), make_tar(LAYER3), make_tar(LAYER4)])
    metadata = build_image([make_tar(layer) for layer in METADATA_LAYERS])
    pusher.image("parity/whiteouts", whiteouts, "latest")
    pusher.image("parity/metadata", metadata, "latest")
    return {name: f"{registry.host}/parity/{name}:latest" for name in ("whiteouts", "metadata")}


def _ours(store: ImageStore, ref: str, dest: Path) -> str:
    img = store.pull(ref)
    store.flatten(img, str(dest))
    return str(dest)


@pytest.mark.parametrize("name", ["whiteouts", "metadata"])
def test_same_tree_as_skopeo_and_umoci(parity_images: dict[str, str], store: ImageStore, tmp_path: Path,
                                       name: str) -> None:
    if shutil.which("skopeo") is None or shutil.which("umoci") is None:
        pytest.skip("needs skopeo and umoci")
    ref = parity_images[name]
    ours = snapshot(_ours(store, ref, tmp_path / "ours"))
    theirs = snapshot(_skopeo_umoci(ref, tmp_path))
    assert not [p for p in ours if ".wh." in p or ours[p].startswith("dev 20000 0000 0:0 0,0")]
    assert ours == theirs
    if name == "metadata":
        assert ours["srv/setuid"].startswith("file 4755 0:0")
        assert ours["srv/owned"].startswith("file 0600 99:98")
        assert "hardlink-group=srv/link1" in ours["srv/orig"]
        assert "hardlink-group=srv/link2" in ours["srv/orig2"]
        assert "gone" not in ours


@pytest.mark.parametrize("name", ["whiteouts", "metadata"])
def test_same_tree_as_podman(parity_images: dict[str, str], store: ImageStore, tmp_path: Path, name: str) -> None:
    if shutil.which("podman") is None:
        pytest.skip("needs podman")
    ref = parity_images[name]
    ours = snapshot(_ours(store, ref, tmp_path / "ours"))
    theirs = snapshot(_podman_vfs(ref, tmp_path))
    assert ours == theirs
