"""Capability sets applied to real processes (forked children), read back from /proc/self/status."""

from __future__ import annotations

import errno
import os

from tests.integration.security.childrun import run_in_child, status_fields

from tinycontainer import oci
from tinycontainer._errors import KernelError
from tinycontainer.linux import LinuxSyscalls, _libc, caps
from tinycontainer.linux import _consts as C
from tinycontainer.oci._defaults import DOCKER_CAPABILITIES

NOBODY = 65534


def _status() -> dict[str, str]:
    with open("/proc/self/status") as f:
        return status_fields(f.read())


def test_docker_set_as_root() -> None:
    def child(_: int) -> dict[str, object]:
        sys = LinuxSyscalls()
        names = list(DOCKER_CAPABILITIES)
        caps.drop_bounding_set(caps.mask_from_names(names), sys)
        caps.apply_capabilities(
            oci.Capabilities(bounding=names, effective=names, permitted=names, inheritable=[], ambient=[]), sys
        )
        status = _status()
        try:
            _libc.unshare(C.CLONE_NEWNS)
            unshare = 0
        except KernelError as exc:
            unshare = exc.errno or -1
        regain = 0
        try:
            sys.capset(caps.ALL_KNOWN_MASK, caps.ALL_KNOWN_MASK, 0)
        except KernelError as exc:
            regain = exc.errno or -1
        os.chown("/proc/self/fd/0", -1, -1)  # CAP_CHOWN path still usable (no-op chown)
        return {"status": status, "unshare": unshare, "regain": regain}

    got = run_in_child(child)
    status = got["status"]
    assert status["CapEff"] == "00000000a80425fb"
    assert status["CapPrm"] == "00000000a80425fb"
    assert status["CapBnd"] == "00000000a80425fb"
    assert status["CapInh"] == "0000000000000000"
    assert status["CapAmb"] == "0000000000000000"
    assert got["unshare"] == errno.EPERM  # CAP_SYS_ADMIN is gone
    assert got["regain"] == errno.EPERM


def test_ambient_capability_survives_execve_as_non_root() -> None:
    """The documented order: KEEPCAPS, bounding drop, uid change, KEEPCAPS off, capset + ambient."""
    keep = ["CAP_NET_BIND_SERVICE"]

    def child(result_fd: int) -> None:
        sys = LinuxSyscalls()
        sys.prctl(C.PR_SET_KEEPCAPS, 1)
        caps.drop_bounding_set(caps.mask_from_names(keep), sys)
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        sys.prctl(C.PR_SET_KEEPCAPS, 0)
        caps.apply_capabilities(
            oci.Capabilities(bounding=keep, effective=keep, permitted=keep, inheritable=keep, ambient=keep), sys
        )
        os.dup2(result_fd, 1)
        os.execv("/bin/cat", ["cat", "/proc/self/status"])

    status = status_fields(run_in_child(child))
    assert status["Uid"].split()[0] == str(NOBODY)
    assert status["CapAmb"] == "0000000000000400"
    assert status["CapEff"] == "0000000000000400"  # after execve: from the ambient set
    assert status["CapPrm"] == "0000000000000400"
    assert status["CapBnd"] == "0000000000000400"


def test_without_ambient_a_non_root_exec_has_nothing() -> None:
    keep = ["CAP_NET_BIND_SERVICE"]

    def child(result_fd: int) -> None:
        sys = LinuxSyscalls()
        sys.prctl(C.PR_SET_KEEPCAPS, 1)
        caps.drop_bounding_set(caps.mask_from_names(keep), sys)
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        sys.prctl(C.PR_SET_KEEPCAPS, 0)
        caps.apply_capabilities(oci.Capabilities(bounding=keep, effective=keep, permitted=keep), sys)
        os.dup2(result_fd, 1)
        os.execv("/bin/cat", ["cat", "/proc/self/status"])

    status = status_fields(run_in_child(child))
    assert status["CapEff"] == "0000000000000000"
    assert status["CapAmb"] == "0000000000000000"
