"""podman 4 + conmon as real clients of the OCI runtime: the calls, fds, ptys and cgroups they use."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest
from tests.integration.podman.conftest import IMAGE, Podman

pytestmark = [pytest.mark.podman, pytest.mark.timeout(180)]


@pytest.fixture
def name(podman: Podman) -> Iterator[str]:
    """A container name that is removed after the test whatever happened."""
    cname = f"tc-{uuid.uuid4().hex[:10]}"
    yield cname
    podman("rm", "--force", "--time", "0", cname, check=False)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def test_run_rm_prints_and_propagates_exit_codes(podman: Podman) -> None:
    out = podman(*podman.run_args("--rm", IMAGE, "echo", "hi"))
    assert out.stdout == b"hi\n"
    assert podman(*podman.run_args("--rm", IMAGE, "sh", "-c", "exit 5"), check=False).returncode == 5
    # podman reads --log as JSON ("runtime_supports_json"): ENOENT maps to 127, EACCES to 126.
    assert podman(*podman.run_args("--rm", IMAGE, "/nonexistent"), check=False).returncode == 127
    assert podman(*podman.run_args("--rm", IMAGE, "/etc/passwd"), check=False).returncode == 126
    assert podman("ps", "--all", "--quiet").stdout == b""


def test_run_rm_feeds_stdin(podman: Podman) -> None:
    out = podman(*podman.run_args("--rm", "-i", IMAGE, "tr", "a-z", "A-Z"), input=b"shout\n")
    assert out.stdout == b"SHOUT\n"


def test_detached_exec_stop_rm(podman: Podman, name: str) -> None:
    cid = podman(*podman.run_args("-d", "--name", name, IMAGE, "sleep", "1000")).stdout.decode().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == b"running"
    # exec joins the running container: it sees the same pid 1 and hostname
    assert podman("exec", name, "cat", "/proc/1/cmdline").stdout == b"sleep\x001000\x00"
    hostname = podman("exec", name, "hostname").stdout.strip()
    assert hostname == cid[:12].encode()
    assert podman("exec", name, "sh", "-c", "exit 7", check=False).returncode == 7
    assert os.path.isdir(podman.cgroup_dir("memory", cid))
    # sleep as pid 1 has no SIGTERM handler, so this goes kill 15 -> 2 s -> kill 9
    podman("stop", "--time", "2", name, timeout=60)
    assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == b"exited"
    podman("rm", name)
    assert name.encode() not in podman("ps", "--all", "--format", "{{.Names}}").stdout
    assert not os.path.exists(podman.cgroup_dir("memory", cid))


def test_pause_freezes_and_unpause_thaws(podman: Podman, name: str) -> None:
    cid = podman(*podman.run_args("-d", "--name", name, IMAGE, "sleep", "1000")).stdout.decode().strip()
    freezer = os.path.join(podman.cgroup_dir("freezer", cid), "freezer.state")
    podman("pause", name)
    assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == b"paused"
    assert _read(freezer) == "FROZEN"
    podman("unpause", name)
    assert _read(freezer) == "THAWED"
    assert podman("exec", name, "echo", "alive").stdout == b"alive\n"
    podman("rm", "--force", "--time", "0", name)


def test_memory_limit_oom_kills(podman: Podman) -> None:
    hog = ["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"]
    # dd allocates its 200 MB buffer at once: over a 64 MB limit the OOM killer sends SIGKILL.
    assert podman(*podman.run_args("--rm", "--memory", "64m", IMAGE, *hog), check=False).returncode == 137
    # the same allocation under a larger limit succeeds, so 137 above is the limit's doing
    assert podman(*podman.run_args("--rm", "--memory", "512m", IMAGE, *hog), check=False).returncode == 0
    limit_file = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    out = podman(*podman.run_args("--rm", "--memory", "64m", IMAGE, "cat", limit_file))
    assert out.stdout.strip() == b"67108864"


def test_update_changes_the_memory_limit(podman: Podman, name: str) -> None:
    # podman passes the new limits as `RUNTIME update --resources=FILE ID`
    cid = podman(*podman.run_args("-d", "--memory", "64m", "--name", name, IMAGE, "sleep", "1000")).stdout.decode()
    limit = os.path.join(podman.cgroup_dir("memory", cid.strip()), "memory.limit_in_bytes")
    assert _read(limit) == str(64 << 20)
    podman("update", "--memory", "128m", name)
    assert _read(limit) == str(128 << 20)
    podman("rm", "--force", "--time", "0", name)


def test_run_it_gets_a_real_tty(podman: Podman) -> None:
    pexpect = pytest.importorskip("pexpect")
    argv = podman.argv(*podman.run_args("-it", "--rm", IMAGE, "sh"))
    child = pexpect.spawn(argv[0], argv[1:], env=podman.env, timeout=60, dimensions=(33, 101), encoding="utf-8")
    try:
        child.expect(r"# ")
        child.sendline("tty; stty size; echo done-$((6*7))")
        child.expect("done-42")
        lines = [ln.strip() for ln in child.before.splitlines()]
        assert any(re.fullmatch(r"/dev/pts/\d+", ln) for ln in lines), lines
        assert "33 101" in lines, lines
        # the terminal's size follows the caller's (podman sends SIGWINCH / resizes the master)
        child.setwinsize(40, 120)
        child.sendline("sleep 0.5; stty size; echo done-$((6*8))")
        child.expect("done-48")
        assert "40 120" in [ln.strip() for ln in child.before.splitlines()]
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 3
