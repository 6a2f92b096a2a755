"""Hostile images and configs: symlinks and ".." aimed at canary directories outside the rootfs.

Each test builds a canary directory next to the bundle (standing in for a host directory) and
an image that tries to reach it.  The checks run in the isolated child *before* pivot_root,
where an escaped mount would be visible at the canary's path, and again from the test process
for files that an escaped mkdir/mknod would have left on disk.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.integration.rootfs._spec import runc_spec

from tinycontainer import oci
from tinycontainer.linux import LinuxSyscalls, rootfs

Isolated = Callable[..., Any]


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    path = tmp_path / "canary"
    path.mkdir()
    (path / "keep").write_text("host data")
    return path


def mirror_of(bundle: Path, host_path: Path) -> Path:
    """Where ``host_path`` lands when resolved inside the rootfs (and create it there)."""
    mirror = bundle / "rootfs" / str(host_path).lstrip("/")
    mirror.mkdir(parents=True)
    return mirror


def mount_points() -> set[str]:
    with open("/proc/self/mountinfo") as fh:
        return {line.split()[4] for line in fh}


def prepare_and_look(config: oci.Config, bundle: Path, *paths: Path) -> Callable[[], Any]:
    """Child body: prepare_rootfs, then list the given directories and the mount points."""

    def body() -> dict[str, Any]:
        rootfs.prepare_rootfs(config, str(bundle), LinuxSyscalls())
        return {
            "listings": [sorted(os.listdir(p)) for p in paths],
            "mounts": sorted(mount_points()),
        }

    return body


@pytest.mark.parametrize("style", ["absolute", "relative"])
def test_destination_symlink_to_outside_lands_inside(
    bundle: Path, canary: Path, isolated: Isolated, tmp_path: Path, style: str
) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "marker").write_text("volume")
    mirror = mirror_of(bundle, canary)
    target = str(canary) if style == "absolute" else "../" * 12 + str(canary).lstrip("/")
    os.symlink(target, bundle / "rootfs" / "evil")
    spec = runc_spec()
    spec["mounts"].append({"destination": "/evil", "type": "bind", "source": str(volume), "options": ["rbind"]})
    result = isolated(prepare_and_look(oci.Config.from_dict(spec), bundle, canary, mirror))
    assert "ok" in result, result
    canary_listing, mirror_listing = result["ok"]["listings"]
    assert canary_listing == ["keep"], "the bind escaped onto the host canary"
    assert mirror_listing == ["marker"], "the bind should land on the symlink's target inside the rootfs"
    assert str(mirror) in result["ok"]["mounts"]
    assert str(canary) not in result["ok"]["mounts"]


def test_dangling_symlink_in_destination_creates_nothing_outside(
    bundle: Path, canary: Path, isolated: Isolated
) -> None:
    # CVE-2024-45310: MkdirAll through a symlink created directories on the host.
    os.symlink(str(canary / "made"), bundle / "rootfs" / "evil")
    spec = runc_spec()
    spec["mounts"].append({"destination": "/evil/a/b", "type": "tmpfs", "source": "tmpfs"})
    result = isolated(prepare_and_look(oci.Config.from_dict(spec), bundle, canary))
    assert result.get("errno") == errno.ELOOP, result
    assert sorted(os.listdir(canary)) == ["keep"]
    assert not (bundle / "rootfs" / str(canary).lstrip("/")).exists()


def test_dotdot_destination_stays_inside(bundle: Path, canary: Path, isolated: Isolated) -> None:
    destination = "/../../../../../.." + str(canary) + "/dotdot"
    spec = runc_spec()
    spec["mounts"].append({"destination": destination, "type": "tmpfs", "source": "tmpfs"})
    inside = bundle / "rootfs" / str(canary).lstrip("/") / "dotdot"
    result = isolated(prepare_and_look(oci.Config.from_dict(spec), bundle, canary))
    assert "ok" in result, result
    assert result["ok"]["listings"] == [["keep"]]
    assert str(inside) in result["ok"]["mounts"]
    assert str(canary / "dotdot") not in result["ok"]["mounts"]
    assert sorted(os.listdir(canary)) == ["keep"]
    assert inside.is_dir()


@pytest.mark.parametrize("with_mirror", [True, False])
def test_proc_symlink_is_refused(bundle: Path, canary: Path, isolated: Isolated, with_mirror: bool) -> None:
    # CVE-2019-19921: procfs must be mounted on an ordinary directory, never through a symlink.
    if with_mirror:
        mirror_of(bundle, canary)
    (bundle / "rootfs" / "proc").rmdir()
    os.symlink(str(canary), bundle / "rootfs" / "proc")
    result = isolated(prepare_and_look(oci.Config.from_dict(runc_spec()), bundle, canary))
    assert result.get("errno") == errno.ELOOP, result
    assert sorted(os.listdir(canary)) == ["keep"]


def test_mount_inside_proc_through_a_symlink_is_refused(bundle: Path, isolated: Isolated) -> None:
    # CVE-2023-27561: a lexically harmless destination that resolves into /proc.
    os.symlink("/proc", bundle / "rootfs" / "foo")
    spec = runc_spec()
    spec["mounts"].append({"destination": "/foo/sys", "type": "tmpfs", "source": "tmpfs"})
    result = isolated(prepare_and_look(oci.Config.from_dict(spec), bundle))
    assert result.get("error") == "SpecError", result
    assert "inside /proc" in result["message"]


@pytest.mark.parametrize("dev_is_tmpfs", [True, False])
def test_dev_symlink_is_refused(bundle: Path, canary: Path, isolated: Isolated, dev_is_tmpfs: bool) -> None:
    # CVE-2026-41579: device nodes created through a symlinked /dev.
    mirror = mirror_of(bundle, canary)
    shutil.rmtree(bundle / "rootfs" / "dev")
    os.symlink(str(canary), bundle / "rootfs" / "dev")
    spec = runc_spec()
    if not dev_is_tmpfs:
        spec["mounts"] = [m for m in spec["mounts"] if not m["destination"].startswith("/dev")]
    result = isolated(prepare_and_look(oci.Config.from_dict(spec), bundle, canary))
    assert result.get("errno") == errno.ELOOP, result
    assert sorted(os.listdir(canary)) == ["keep"]
    assert sorted(os.listdir(mirror)) == []


def test_masked_symlink_masks_only_inside(bundle: Path, canary: Path, isolated: Isolated) -> None:
    mirror = mirror_of(bundle, canary)
    (mirror / "inside").write_text("image data")
    os.symlink(str(canary), bundle / "rootfs" / "masklink")
    spec = runc_spec(maskedPaths=["/masklink"], readonlyPaths=[])
    spec["root"]["readonly"] = False
    config = oci.Config.from_dict(spec)

    def body() -> dict[str, Any]:
        sys = LinuxSyscalls()
        path = rootfs.prepare_rootfs(config, str(bundle), sys)
        # Masking before pivot_root is the hard case: the host is still reachable by path.
        rootfs.finalize_rootfs(config, sys, root=path)
        return {"canary": sorted(os.listdir(canary)), "mirror": sorted(os.listdir(mirror))}

    result = isolated(body)
    assert "ok" in result, result
    assert result["ok"] == {"canary": ["keep"], "mirror": []}


def test_masked_path_through_magic_link_is_refused(bundle: Path, isolated: Isolated) -> None:
    os.symlink("/proc/self/root/etc", bundle / "rootfs" / "magic")
    spec = runc_spec(maskedPaths=["/magic"])
    config = oci.Config.from_dict(spec)

    def body() -> str:
        sys = LinuxSyscalls()
        rootfs.enter_rootfs(rootfs.prepare_rootfs(config, str(bundle), sys), sys)
        rootfs.finalize_rootfs(config, sys)
        return "masked"

    result = isolated(body)
    assert result.get("errno") == errno.ELOOP, result


def test_mask_source_must_be_the_null_device(bundle: Path, isolated: Isolated, tmp_path: Path) -> None:
    # CVE-2025-31133: the /dev/null used for masking must be verified on the fd that is mounted.
    fake_dev = tmp_path / "fake-dev"
    fake_dev.mkdir()
    (fake_dev / "null").write_text("not a device")
    spec = runc_spec(maskedPaths=["/proc/keys"], readonlyPaths=[])
    spec["mounts"] = [m for m in spec["mounts"] if not m["destination"].startswith("/dev")]
    spec["mounts"].append({"destination": "/dev", "type": "bind", "source": str(fake_dev), "options": ["rbind"]})
    config = oci.Config.from_dict(spec)

    def body() -> str:
        sys = LinuxSyscalls()
        rootfs.enter_rootfs(rootfs.prepare_rootfs(config, str(bundle), sys), sys)
        rootfs.finalize_rootfs(config, sys)
        return open("/proc/keys").read()

    result = isolated(body)
    assert result.get("error") == "SpecError", result
    assert "char 1:3" in result["message"]


def test_missing_rootfs_is_refused(tmp_path: Path, isolated: Isolated) -> None:
    config = oci.Config.from_dict(runc_spec())
    result = isolated(lambda: rootfs.prepare_rootfs(config, str(tmp_path / "nothing"), LinuxSyscalls()))
    assert result.get("error") == "SpecError"
    assert str(tmp_path / "nothing" / "rootfs") in result["message"]
