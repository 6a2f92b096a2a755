"""Hostile input to ``tcontainer-oci``: every case must end in one clear error line or a
contained container, never a traceback, a leak (the ``oci`` fixture's ScopedLeakCheck) or a
change outside the test's temp dirs (its host snapshot)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from typing import Any

import pytest
from tests.helpers.oci import OCIRuntime
from tests.integration.security_oci._support import default_config, tree_snapshot

# Max RSS of one tcontainer-oci process in KiB (resource.getrusage units). An idle start of
# the pyenv interpreter with its site-packages is ~30-40 MiB.
RSS_BOUND_KIB = 200 * 1024


def _fails_cleanly(rt: OCIRuntime, r: subprocess.CompletedProcess[bytes], cid: str | None = None) -> str:
    assert r.returncode != 0, "the runtime accepted hostile input"
    err = r.stderr.decode(errors="replace")
    assert "Traceback" not in err, err
    assert err.strip() and len(err.strip().splitlines()) <= 3, err
    if cid is not None:
        assert rt("state", cid, check=False).returncode != 0, "a failed create left state behind"
    return err


def _raw_bundle(rt: OCIRuntime, raw: bytes) -> str:
    bundle = rt.bundle(["true"])
    with open(os.path.join(bundle, "config.json"), "wb") as f:
        f.write(raw)
    return bundle


def _run_measured(cmd: list[str], timeout: float, **kwargs: Any) -> tuple[int, int, bytes]:
    """Run ``cmd``; return (exit status, max RSS in KiB from wait4(2), stderr)."""
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, **kwargs)
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    err = b""
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        with contextlib.suppress(BlockingIOError):
            err += proc.stderr.read() or b""
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            proc.stderr.close()
            return proc.returncode, usage.ru_maxrss, err
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{cmd} did not finish in {timeout}s")
        time.sleep(0.02)


# ---------------------------------------------------------------- config.json


def test_100mb_config_is_refused_with_bounded_memory(oci: OCIRuntime) -> None:
    cfg = default_config(oci.rootfs, ["true"])
    head = json.dumps(cfg)[:-1] + ', "annotations": {"big": "'
    bundle = oci.bundle(["true"])
    with open(os.path.join(bundle, "config.json"), "w") as f:
        f.write(head)
        chunk = "x" * (1 << 20)
        for _ in range(100):
            f.write(chunk)
        f.write('"}}')
    cid = oci.new_id()
    code, rss, err = _run_measured([*oci.command, "--root", oci.root, "create", "--bundle", bundle, cid], 120)
    assert code != 0
    assert b"Traceback" not in err and err.strip(), err
    assert b"config" in err.lower(), err
    assert rss < RSS_BOUND_KIB, f"runtime max RSS {rss} KiB for a 100 MB config"
    assert oci("state", cid, check=False).returncode != 0


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b"null",
        b"{" * 100000,
        b'{"ociVersion": "1.0.2", "process": "sh"}',
        b"\xff\xfe\x00garbage",
    ],
    ids=["empty", "array", "null", "deep-nesting", "process-string", "binary"],
)
def test_malformed_config(oci: OCIRuntime, raw: bytes) -> None:
    cid = oci.new_id()
    r = oci("create", "--bundle", _raw_bundle(oci, raw), cid, check=False)
    _fails_cleanly(oci, r, cid)


def _set(cfg: dict[str, Any], path: str, value: Any) -> None:
    node: Any = cfg
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("process.args", "sh -c true"),
        ("process.args", [1, 2]),
        ("process.user.uid", -1),
        ("process.user.uid", 2**70),
        ("process.user.gid", "0"),
        ("process.env", {"A": "B"}),
        ("process.rlimits.0.hard", "lots"),
        ("process.capabilities.bounding", ["CAP_NOT_A_CAP"]),
        ("root", "/"),
        ("mounts", {"destination": "/x"}),
        ("mounts.0.options", "nosuid"),
        ("linux.namespaces", [{"type": 7}]),
        ("linux.resources.pids.limit", "many"),
        ("linux.seccomp.defaultAction", "SCMP_ACT_WHATEVER"),
        ("linux.maskedPaths", "/proc/kcore"),
    ],
)
def test_wrong_types(oci: OCIRuntime, path: str, value: Any) -> None:
    cfg = default_config(oci.rootfs, ["true"])
    _set(cfg, path, value)
    cid = oci.new_id()
    r = oci("create", "--bundle", oci.bundle(None, cfg), cid, check=False)
    _fails_cleanly(oci, r, cid)


def test_20mb_environment(oci: OCIRuntime) -> None:
    """One 20 MB variable is beyond execve(2)'s MAX_ARG_STRLEN: the error must say so plainly
    and nothing may stay behind; the runtime's memory stays bounded."""
    cfg = default_config(oci.rootfs, ["true"])
    cfg["process"]["env"].append("BIG=" + "y" * (20 << 20))
    bundle = oci.bundle(None, cfg)
    cid = oci.new_id()
    code, rss, err = _run_measured([*oci.command, "--root", oci.root, "run", "--bundle", bundle, cid], 120)
    assert code != 0
    assert b"Traceback" not in err and err.strip(), err
    assert rss < RSS_BOUND_KIB + 4 * 20 * 1024, rss
    assert oci("state", cid, check=False).returncode != 0


@pytest.mark.parametrize(
    "cid", ["..", ".", ".seccomp-cache", "a/b", "../escape", "x" * 1000, "", "-rf", "a\nb", "/abs"]
)
def test_hostile_container_ids(oci: OCIRuntime, cid: str) -> None:
    bundle = oci.bundle(["true"])
    before = tree_snapshot(os.path.dirname(oci.root))
    r = oci("create", "--bundle", bundle, cid, check=False)
    _fails_cleanly(oci, r)
    assert tree_snapshot(os.path.dirname(oci.root)) == before


def test_rootfs_symlink_to_host_root(oci: OCIRuntime, tmp_path: Any) -> None:
    link = tmp_path / "rootfs-link"
    link.symlink_to("/")
    cid = oci.new_id()
    r = oci("create", "--bundle", oci.bundle(None, default_config(str(link), ["true"])), cid, check=False)
    _fails_cleanly(oci, r, cid)


@pytest.mark.parametrize("dest", ["/../../../tmp/tc-escape", "/a/../../b", "/proc/../..", "relative/path"])
def test_mount_destination_with_dotdot(oci: OCIRuntime, dest: str) -> None:
    cfg = default_config(oci.rootfs, ["true"])
    cfg["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs"})
    cid = oci.new_id()
    r = oci("create", "--bundle", oci.bundle(None, cfg), cid, check=False)
    _fails_cleanly(oci, r, cid)
    assert not os.path.exists("/tmp/tc-escape")


def test_dev_symlink_in_rootfs(oci: OCIRuntime, fresh_rootfs: str, tmp_path: Any) -> None:
    """CVE-2026-41579: an image whose /dev is a symlink sent mknod out of the rootfs."""
    canary = tmp_path / "canary"
    canary.mkdir()
    before = tree_snapshot(str(canary))
    os.rmdir(os.path.join(fresh_rootfs, "dev"))
    os.symlink(str(canary), os.path.join(fresh_rootfs, "dev"))
    cid = oci.new_id()
    r = oci("run", "--bundle", oci.bundle(None, default_config(fresh_rootfs, ["true"])), cid, check=False)
    assert b"Traceback" not in r.stderr
    assert tree_snapshot(str(canary)) == before, "device nodes were made outside the rootfs"
    if r.returncode != 0:
        assert b"/dev" in r.stderr, r.stderr


# ---------------------------------------------------------------- resource abuse


def _cgroup_file(pid: int, controller: str, name: str) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return f"/sys/fs/cgroup/{controller}{path}/{name}"
    raise AssertionError(f"no {controller} cgroup for {pid}")


@pytest.mark.slow
def test_fork_bomb_is_held_by_the_pids_limit(oci: OCIRuntime) -> None:
    limit = 64
    cfg = default_config(oci.rootfs, ["sh", "-c", "b() { b | b & }; b; sleep 30"])
    cfg["linux"]["resources"]["pids"] = {"limit": limit}
    cid = oci.new_id()
    oci("run", "-d", "--bundle", oci.bundle(None, cfg), cid, timeout=60)
    try:
        pid = oci.state(cid)["pid"]
        current = _cgroup_file(pid, "pids", "pids.current")
        time.sleep(2)
        with open(current) as f:
            assert int(f.read()) <= limit
        # The host still forks.
        assert subprocess.run(["true"], check=False, timeout=10).returncode == 0
        # A counted probe: fork(2) fails with EAGAIN at the limit.
        r = oci("exec", cid, "/bin/probe", "forks", "1000", check=False, timeout=60)
        out = r.stdout.decode() + r.stderr.decode()
        assert "forked=1000" not in out, out
    finally:
        oci("delete", "--force", cid, check=False, timeout=60)


def test_memory_limit_kills_with_137(oci: OCIRuntime) -> None:
    cfg = default_config(oci.rootfs, ["/bin/probe", "alloc", "256"])
    cfg["linux"]["resources"]["memory"] = {"limit": 32 << 20}
    r = oci("run", "--bundle", oci.bundle(None, cfg), oci.new_id(), check=False, timeout=120)
    assert r.returncode == 137, (r.returncode, r.stdout, r.stderr)
    assert b"alloc=ok" not in r.stdout


@pytest.mark.slow
def test_1gb_to_stdout_keeps_runtime_memory_bounded(oci: OCIRuntime) -> None:
    bundle = oci.bundle(None, default_config(oci.rootfs, ["head", "-c", "1073741824", "/dev/zero"]))
    cmd = [*oci.command, "--root", oci.root, "run", "--bundle", bundle, oci.new_id()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    total = 0
    deadline = time.monotonic() + 240
    while chunk := os.read(proc.stdout.fileno(), 1 << 20):
        total += len(chunk)
        assert time.monotonic() < deadline
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0
    assert total == 1 << 30
    assert usage.ru_maxrss < RSS_BOUND_KIB, f"runtime max RSS {usage.ru_maxrss} KiB"


def test_container_closing_its_stdout(oci: OCIRuntime) -> None:
    script = "exec 1>&-; sleep 0.2; echo still-here >&2; exit 3"
    r = oci(
        "run",
        "--bundle",
        oci.bundle(None, default_config(oci.rootfs, ["sh", "-c", script])),
        oci.new_id(),
        check=False,
        timeout=60,
    )
    assert r.returncode == 3
    assert b"still-here" in r.stderr and b"Traceback" not in r.stderr


def test_process_ignoring_sigterm(oci: OCIRuntime) -> None:
    cfg = default_config(oci.rootfs, ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"])
    cid = oci.new_id()
    oci("run", "-d", "--bundle", oci.bundle(None, cfg), cid, timeout=60)
    oci("kill", cid, "TERM")
    time.sleep(1)
    assert oci.state(cid)["status"] == "running", "SIGTERM was not ignored: the test shows nothing"
    oci("kill", cid, "KILL")
    deadline = time.monotonic() + 10
    while oci.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline, "SIGKILL did not stop the container"
        time.sleep(0.05)
    oci("delete", cid)


# ---------------------------------------------------------------- the runtime dies mid-create


@pytest.mark.slow
@pytest.mark.parametrize("delay_ms", [5, 20, 50, 100, 200, 400])
def test_runtime_sigkilled_during_create(oci: OCIRuntime, delay_ms: int) -> None:
    """Kill -9 of tcontainer-oci at some point of ``create``: whatever it left must be gone after
    ``delete --force`` (the fixture's LeakCheck: processes, cgroups, mounts, state dirs)."""
    cid = oci.new_id()
    bundle = oci.bundle(None, default_config(oci.rootfs, ["sleep", "60"]))
    cmd = [*oci.command, "--root", oci.root, "create", "--bundle", bundle, cid]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay_ms / 1000)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    time.sleep(0.2)
    r = oci("delete", "--force", cid, check=False, timeout=60)
    assert b"Traceback" not in r.stderr, r.stderr
    assert oci("state", cid, check=False).returncode != 0
