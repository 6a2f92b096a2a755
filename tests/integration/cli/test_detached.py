"""Detached containers: the monitor, logs, exec, stop, rm, log capping, concurrency, gc."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time

from tests.integration.cli.conftest import TC


def _inspect(tc: TC, name: str) -> dict[str, object]:
    data = json.loads(tc("inspect", name).stdout)
    assert len(data) == 1
    return dict(data[0])


def _wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_detached_logs_exec_stop_rm(tc: TC) -> None:
    script = 'trap "" TERM; echo started; echo oops >&2; i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.1; done'
    cid = tc("run", "-d", "--name", "web", "--rootfs", tc.rootfs, "--", "/bin/sh", "-c", script).stdout.strip()
    assert len(cid) == 64 and all(c in b"0123456789abcdef" for c in cid)
    assert tc("ps", "-q").stdout.strip() == cid[:12]
    _wait_for(lambda: b"tick 3" in tc("logs", "web").stdout)
    logs = tc("logs", "web")
    assert logs.stdout.startswith(b"started\n") and logs.stderr == b"oops\n"
    assert tc("logs", "--tail", "1", "web").stdout.count(b"\n") == 1
    # The raw log is docker's json-file format.
    with open(_inspect(tc, "web")["log_path"]) as f:  # type: ignore[arg-type]
        first = json.loads(f.readline())
    assert first["stream"] == "stdout" and first["log"] == "started\n" and first["time"].endswith("Z")
    # exec joins the container: same hostname, sees PID 1, env and workdir applied, status passed back.
    exe = tc("exec", "-e", "X=42", "-w", "/tmp", "web", "/bin/sh", "-c",
             'echo "$X $(pwd)"; cat /proc/1/cmdline; exit 7', check=False)
    assert exe.returncode == 7
    assert exe.stdout.startswith(b"42 /tmp\n/bin/sh\0-c\0")
    assert tc("exec", "web", "/no/such", check=False).returncode == 127
    assert tc("exec", cid[:6].decode(), "true").returncode == 0  # unique id prefix
    # rm without -f refuses a running container, with one line saying what to do.
    refused = tc("rm", "web", check=False)
    assert refused.returncode == 1 and b"stop it first" in refused.stderr
    # stop: SIGTERM is ignored, so SIGKILL follows after the 1 s grace.
    started = time.monotonic()
    tc("stop", "-t", "1", "web")
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 6
    info = _inspect(tc, "web")
    assert info["status"] == "exited" and info["exit_code"] == 137
    assert b"Exited (137)" in tc("ps", "-a").stdout
    assert tc("ps", "-q").stdout == b""
    tc("rm", "web")
    assert tc("ps", "-aq").stdout == b""
    missing = tc("logs", "web", check=False)
    assert missing.returncode == 1 and b"no such container" in missing.stderr


def test_logs_follow_ends_with_the_container(tc: TC) -> None:
    tc("run", "-d", "--name", "f", "--rootfs", tc.rootfs, "--", "/bin/sh", "-c",
       "for i in 1 2 3; do echo $i; sleep 0.2; done")
    followed = tc("logs", "-f", "f", timeout=20)
    assert followed.stdout == b"1\n2\n3\n"
    assert tc("wait", "f").stdout.strip() == b"0"


def test_log_is_capped_under_a_big_writer(tc: TC) -> None:
    # ~50 MB of output against a 1 MiB x 2 file cap.
    tc("run", "-d", "--name", "big", "--log-opt", "max-size=1m", "--log-opt", "max-file=2", "--rootfs", tc.rootfs,
       "--", "/bin/sh", "-c", "head -c 50000000 /dev/zero | tr '\\0' 'x' | fold -w 1000; echo; echo END")
    assert tc("wait", "big", timeout=120).stdout.strip() == b"0"
    log_path = str(_inspect(tc, "big")["log_path"])
    directory = os.path.dirname(log_path)
    files = [n for n in os.listdir(directory) if n.startswith("container.log")]
    assert sorted(files) == ["container.log", "container.log.1"]
    total = sum(os.path.getsize(os.path.join(directory, n)) for n in files)
    assert total <= 2 * (1 << 20)
    assert tc("logs", "--tail", "1", "big").stdout == b"END\n"


def test_twenty_concurrent_containers_get_unique_names(tc: TC) -> None:
    def start(_: int) -> bytes:
        return tc("run", "-d", "--rootfs", tc.rootfs, "--", "/bin/sleep", "30").stdout.strip()

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        ids = list(pool.map(start, range(20)))
    assert len(set(ids)) == 20
    listing = json.loads(tc("ps", "--format", "json").stdout)
    names = [c["name"] for c in listing]
    assert len(listing) == 20 and len(set(names)) == 20
    assert all(c["status"] == "running" for c in listing)
    tc("rm", "-f", *[i.decode() for i in ids], timeout=120)
    assert tc("ps", "-aq").stdout == b""


def test_pause_unpause_restart_rename(tc: TC) -> None:
    tc("run", "-d", "--name", "p1", "--rootfs", tc.rootfs, "--", "/bin/sh", "-c", "echo run; exec sleep 30")
    tc("pause", "p1")
    assert _inspect(tc, "p1")["status"] == "paused"
    assert b"(Paused)" in tc("ps").stdout
    tc("unpause", "p1")
    assert _inspect(tc, "p1")["status"] == "running"
    tc("rename", "p1", "p2")
    assert tc("inspect", "p1", check=False).returncode == 1
    first_pid = _inspect(tc, "p2")["pid"]
    tc("restart", "-t", "0", "p2")
    info = _inspect(tc, "p2")
    assert info["status"] == "running" and info["pid"] != first_pid and info["restart_count"] == 1
    _wait_for(lambda: tc("logs", "p2").stdout == b"run\nrun\n")
    tc("rm", "-f", "p2")


def test_gc_cleans_up_after_a_killed_monitor(tc: TC) -> None:
    tc("run", "-d", "--name", "orphan", "--rootfs", tc.rootfs, "--", "/bin/sleep", "60")
    info = _inspect(tc, "orphan")
    os.kill(int(info["monitor_pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    _wait_for(lambda: _inspect(tc, "orphan")["status"] == "dead")
    assert b"cleaned up orphan" in tc("gc").stdout
    info = _inspect(tc, "orphan")
    assert info["status"] == "exited"
    assert not os.path.exists(f"/proc/{info['pid'] or 0}/cgroup") or info["pid"] == 0
    tc("rm", "orphan")


def test_run_rm_detached_removes_itself(tc: TC) -> None:
    tc("run", "-d", "--rm", "--name", "gone", "--rootfs", tc.rootfs, "--", "/bin/true")
    _wait_for(lambda: tc("ps", "-aq").stdout == b"")
