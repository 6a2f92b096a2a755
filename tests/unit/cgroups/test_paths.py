from __future__ import annotations

import pytest

from tinycontainer._errors import SpecError, UnsupportedError
from tinycontainer.linux.cgroups import resolve_path


def test_default_is_a_child_of_the_callers_cgroup() -> None:
    assert resolve_path(None, "abc", "/process_api/x") == "/process_api/x/tcontainer-abc"
    assert resolve_path(None, "abc", "/") == "/tcontainer-abc"
    assert resolve_path("", "abc", "/u") == "/u/tcontainer-abc"


def test_relative_is_beneath_the_callers_cgroup() -> None:
    assert resolve_path("machine/c1", "abc", "/process_api/x") == "/process_api/x/machine/c1"
    assert resolve_path("./c1/", "abc", "/u") == "/u/c1"


def test_absolute_is_from_the_hierarchy_root() -> None:
    assert resolve_path("/libpod_parent/libpod-abc", "abc", "/process_api/x") == "/libpod_parent/libpod-abc"
    assert resolve_path("//a//b/", "abc", "/") == "/a/b"


@pytest.mark.parametrize("path", ["../x", "/a/../../b", "a/..", "/a/b/..", "c/../../../etc"])
def test_dotdot_is_rejected(path: str) -> None:
    with pytest.raises(SpecError) as info:
        resolve_path(path, "abc", "/u")
    assert info.value.field == "linux.cgroupsPath"


@pytest.mark.parametrize("path", ["/", "/process_api", "/process_api/x", "."])
def test_root_own_cgroup_and_its_ancestors_are_rejected(path: str) -> None:
    with pytest.raises(SpecError):
        resolve_path(path, "abc", "/process_api/x")


def test_systemd_style_is_unsupported() -> None:
    with pytest.raises(UnsupportedError, match="systemd cgroup driver is not supported"):
        resolve_path("machine.slice:libpod:abc", "abc", "/")


@pytest.mark.parametrize("cid", ["", "a/b", "..", ".", "a\0b"])
def test_container_id_must_be_one_path_component(cid: str) -> None:
    with pytest.raises(SpecError):
        resolve_path(None, cid, "/")
