"""``tcontainer cp``: both directions, running and stopped containers, and hostile symlinks in
the container aimed at canary files on the host (CVE-2018-15664 / CVE-2019-10152)."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator

import pytest
from tests.helpers.rootfs import build_busybox_rootfs
from tests.integration.cli.conftest import TC


def _snapshot(path: str) -> dict[str, tuple[int, str]]:
    """Every file under ``path`` with its mode and content hash, and the directory itself."""
    seen: dict[str, tuple[int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            digest = ""
            if stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            seen[full] = (st.st_mode, digest)
    return seen


@pytest.fixture
def hostile(tc: TC, tmp_path: object) -> Iterator[tuple[str, str]]:
    """(own rootfs, canary dir): the rootfs holds symlinks that point at the canary on the host."""
    base = str(tmp_path)
    canary = os.path.join(base, "canary")
    os.makedirs(os.path.join(canary, "dir"))
    with open(os.path.join(canary, "secret"), "w") as f:
        f.write("HOST-SECRET\n")
    with open(os.path.join(canary, "dir", "victim"), "w") as f:
        f.write("HOST-VICTIM\n")
    rootfs = build_busybox_rootfs(os.path.join(base, "rootfs"))
    os.symlink(os.path.join(canary, "secret"), os.path.join(rootfs, "abs-secret"))
    os.symlink("../../../../../../../../" + canary.lstrip("/") + "/secret", os.path.join(rootfs, "rel-secret"))
    os.symlink(os.path.join(canary, "dir"), os.path.join(rootfs, "abs-dir"))
    os.symlink("../../../../../../../../" + canary.lstrip("/") + "/dir", os.path.join(rootfs, "rel-dir"))
    os.symlink("/proc/self/root" + canary, os.path.join(rootfs, "magic-dir"))
    os.makedirs(os.path.join(rootfs, "data", "sub"))
    with open(os.path.join(rootfs, "data", "a.txt"), "w") as f:
        f.write("inside-a\n")
    os.symlink("a.txt", os.path.join(rootfs, "data", "link-a"))
    os.symlink(os.path.join(canary, "secret"), os.path.join(rootfs, "data", "sub", "evil"))
    yield rootfs, canary


def test_copy_out_and_in_of_a_running_container(tc: TC, tmp_path: object, hostile: tuple[str, str]) -> None:
    rootfs, _ = hostile
    out = os.path.join(str(tmp_path), "out")
    os.makedirs(out)
    tc("run", "-d", "--name", "cp1", "--tmpfs", "/scratch", "--rootfs", rootfs, "--", "/bin/sleep", "60")
    # Out: a directory into an existing host directory, symlinks kept as symlinks.
    tc("cp", "cp1:/data", out)
    with open(os.path.join(out, "data", "a.txt")) as f:
        assert f.read() == "inside-a\n"
    assert os.readlink(os.path.join(out, "data", "link-a")) == "a.txt"
    # In: into the container's own tmpfs mount (only visible through the init's root).
    host_file = os.path.join(str(tmp_path), "hello.txt")
    with open(host_file, "w") as f:
        f.write("from-host\n")
    os.chmod(host_file, 0o640)
    tc("cp", host_file, "cp1:/scratch/")
    assert tc("exec", "cp1", "/bin/cat", "/scratch/hello.txt").stdout == b"from-host\n"
    assert tc("exec", "cp1", "/bin/stat", "-c", "%a", "/scratch/hello.txt").stdout == b"640\n"
    assert not os.path.exists(os.path.join(rootfs, "scratch", "hello.txt"))
    # A directory's contents with SRC/. into a new directory name.
    tc("cp", "cp1:/data/.", os.path.join(out, "copy"))
    assert sorted(os.listdir(os.path.join(out, "copy"))) == ["a.txt", "link-a", "sub"]


def test_hostile_symlinks_never_reach_the_host(tc: TC, tmp_path: object, hostile: tuple[str, str]) -> None:
    rootfs, canary = hostile
    before = _snapshot(canary)
    out = os.path.join(str(tmp_path), "out")
    os.makedirs(out)
    payload = os.path.join(str(tmp_path), "payload")
    with open(payload, "w") as f:
        f.write("PAYLOAD\n")
    tc("run", "-d", "--name", "cp2", "--rootfs", rootfs, "--", "/bin/sleep", "60")
    for state in ("running", "stopped"):
        # Reading: -L follows a link only inside the container, where the host path does not exist.
        for link in ("abs-secret", "rel-secret", "abs-dir/victim", "rel-dir/victim", "magic-dir/secret"):
            result = tc("cp", "-L", f"cp2:/{link}", os.path.join(out, "x"), check=False)
            assert result.returncode != 0, (state, link)
            assert not os.path.exists(os.path.join(out, "x"))
        # Without -L the link itself is copied: its text, not the host file.
        tc("cp", "cp2:/abs-secret", os.path.join(out, f"link-{state}"))
        assert os.path.islink(os.path.join(out, f"link-{state}"))
        # A directory copy keeps a nested hostile link as a link.
        tc("cp", "cp2:/data", os.path.join(out, f"data-{state}"))
        assert os.path.islink(os.path.join(out, f"data-{state}", "sub", "evil"))
        # Writing: through directory links the parent does not exist in the container ...
        for target in ("abs-dir/victim", "rel-dir/victim", "abs-dir/new", "magic-dir/secret"):
            result = tc("cp", payload, f"cp2:/{target}", check=False)
            assert result.returncode != 0, (state, target)
        # ... and a file link is replaced inside the container, never written through.
        tc("cp", payload, "cp2:/abs-secret")
        assert not os.path.islink(os.path.join(rootfs, "abs-secret"))
        with open(os.path.join(rootfs, "abs-secret")) as f:
            assert f.read() == "PAYLOAD\n"
        os.unlink(os.path.join(rootfs, "abs-secret"))
        os.symlink(os.path.join(canary, "secret"), os.path.join(rootfs, "abs-secret"))
        # A directory copied in over a nested hostile link is refused, the link stays a link.
        src_dir = os.path.join(str(tmp_path), "srcdir", "sub")
        os.makedirs(src_dir, exist_ok=True)
        with open(os.path.join(src_dir, "evil"), "w") as f:
            f.write("PAYLOAD\n")
        tc("cp", os.path.join(str(tmp_path), "srcdir", "sub"), "cp2:/data")
        assert os.path.islink(os.path.join(rootfs, "data", "sub", "evil")) is False  # replaced in the container
        os.unlink(os.path.join(rootfs, "data", "sub", "evil"))
        os.symlink(os.path.join(canary, "secret"), os.path.join(rootfs, "data", "sub", "evil"))
        assert _snapshot(canary) == before, state
        if state == "running":
            tc("stop", "-t", "0", "cp2")
    assert _snapshot(canary) == before


def test_stopped_image_less_container_without_files_is_a_clear_error(tc: TC, tmp_path: object) -> None:
    tc("run", "--name", "hostroot", "--", "/bin/true")
    result = tc("cp", "hostroot:/etc/hostname", os.path.join(str(tmp_path), "h"), check=False)
    assert result.returncode == 1 and b"not running" in result.stderr
    both = tc("cp", "a:/x", "b:/y", check=False)
    assert both.returncode == 1 and b"exactly one" in both.stderr
