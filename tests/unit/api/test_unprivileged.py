"""The non-root rules of ``tinycontainer._unprivileged`` that need no kernel: where state goes,
which limits need which controllers, and the refusal of images."""

from __future__ import annotations

import os
import stat

import pytest

from tinycontainer import oci
from tinycontainer._errors import UnsupportedError
from tinycontainer._spec import Spec
from tinycontainer._unprivileged import add_subid_mappings, check_spec, user_runtime_dir, wanted_controllers

# An id nobody on a test host has: /run/user/<it> never exists.
NOBODY_UID = 3_999_999_937


def test_runtime_dir_prefers_xdg() -> None:
    assert user_runtime_dir(NOBODY_UID, {"XDG_RUNTIME_DIR": "/run/user/x"}) == "/run/user/x"


def test_runtime_dir_ignores_a_relative_xdg(tmp_path: os.PathLike[str]) -> None:
    tmp = str(tmp_path)
    uid = os.geteuid()
    path = user_runtime_dir(uid, {"XDG_RUNTIME_DIR": "relative"}, tmp=tmp)
    assert path in (os.path.join(tmp, f"tcontainer-{uid}"), f"/run/user/{uid}")


def test_runtime_dir_refuses_one_made_by_someone_else(tmp_path: os.PathLike[str]) -> None:
    # mkdir makes it for the caller, so for NOBODY it is someone else's directory.
    with pytest.raises(UnsupportedError, match="not a private directory"):
        user_runtime_dir(NOBODY_UID, {}, tmp=str(tmp_path))


def test_runtime_dir_fallback_is_made_private(tmp_path: os.PathLike[str]) -> None:
    tmp = str(tmp_path)
    uid = os.geteuid()
    os.umask(old := os.umask(0))
    path = user_runtime_dir(uid, {}, tmp=tmp)
    os.umask(old)
    st = os.lstat(path)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == uid and st.st_mode & 0o077 == 0
    assert user_runtime_dir(uid, {}, tmp=tmp) == path  # ours: accepted again


def test_runtime_dir_refuses_a_planted_symlink(tmp_path: os.PathLike[str]) -> None:
    tmp = str(tmp_path)
    uid = os.geteuid()
    target = os.path.join(tmp, "elsewhere")
    os.mkdir(target, 0o700)
    os.symlink(target, os.path.join(tmp, f"tcontainer-{uid}"))
    with pytest.raises(UnsupportedError, match="XDG_RUNTIME_DIR"):
        user_runtime_dir(uid, {}, tmp=tmp)


def test_runtime_dir_refuses_a_shared_directory(tmp_path: os.PathLike[str]) -> None:
    tmp = str(tmp_path)
    uid = os.geteuid()
    path = os.path.join(tmp, f"tcontainer-{uid}")
    os.mkdir(path)
    os.chmod(path, 0o777)
    with pytest.raises(UnsupportedError):
        user_runtime_dir(uid, {}, tmp=tmp)


def test_wanted_controllers() -> None:
    assert wanted_controllers(Spec()) == []
    assert wanted_controllers(Spec(memory="64m", pids=10)) == ["memory", "pids"]
    assert wanted_controllers(Spec(cpus=0.5, cpuset="0")) == ["cpu", "cpuset"]


def test_images_are_accepted() -> None:
    # They run from a flattened copy (the copy fallback); only limits can still be refused.
    check_spec(Spec(image="busybox"))


def test_subid_mappings_only_extend_a_single_mapping() -> None:
    two = [oci.IDMapping(container_id=0, host_id=5, size=1), oci.IDMapping(container_id=1, host_id=9, size=3)]
    config = oci.Config(linux=oci.Linux(uid_mappings=list(two), gid_mappings=list(two)))
    assert add_subid_mappings(config).linux is not None
    assert config.linux is not None and config.linux.uid_mappings == two
