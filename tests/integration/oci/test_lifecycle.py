"""Lifecycle of a container through the runc command line: create, start, state, kill, delete, run."""

from __future__ import annotations

import json
import os
import time

import pytest
from tests.helpers.oci import OCIRuntime


def _wait_status(rt: OCIRuntime, cid: str, want: str, timeout: float = 10) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        st = rt.state(cid)
        if st["status"] == want or time.monotonic() > deadline:
            return st
        time.sleep(0.05)


def test_run_prints_output_and_returns_exit_status(oci_runtime: OCIRuntime) -> None:
    r = oci_runtime.run_container(["sh", "-c", "echo hello; echo oops >&2; exit 3"])
    assert r.stdout == b"hello\n"
    assert b"oops" in r.stderr
    assert r.returncode == 3


def test_argv_is_passed_exactly(oci_runtime: OCIRuntime) -> None:
    r = oci_runtime.run_container(["/bin/echo", "hello  world", "'quoted'", "$HOME"])
    assert r.stdout == b"hello  world 'quoted' $HOME\n"


def test_process_is_pid_1(oci_runtime: OCIRuntime) -> None:
    r = oci_runtime.run_container(["sh", "-c", "echo $$"])
    assert r.stdout.strip() == b"1"


def test_signal_exit_status_is_128_plus_signal(oci_runtime: OCIRuntime) -> None:
    import subprocess

    rt = oci_runtime
    cid = rt.new_id()
    # A pid namespace's init cannot be SIGKILLed from inside it (pid_namespaces(7)), so the
    # signal comes from outside, through the runtime.
    run = subprocess.Popen(
        [*rt.command, "--root", rt.root, "run", "--bundle", rt.bundle(["sleep", "60"]), cid],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait_status_quiet(rt, cid, "running")
        rt("kill", cid, "KILL")
        assert run.wait(timeout=30) == 137
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def _wait_status_quiet(rt: OCIRuntime, cid: str, want: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = rt("state", cid, check=False)
        if r.returncode == 0 and json.loads(r.stdout)["status"] == want:
            return True
        time.sleep(0.05)
    return False


def test_create_start_state_kill_delete(oci_runtime: OCIRuntime, tmp_path: object) -> None:
    rt = oci_runtime
    cid = rt.new_id()
    bundle = rt.bundle(["sleep", "60"])
    pid_file = os.path.join(rt.workdir, cid + ".pid")
    rt("create", "--bundle", bundle, "--pid-file", pid_file, cid)
    st = rt.state(cid)
    assert st["status"] == "created"
    assert st["id"] == cid
    assert st["bundle"] == bundle
    pid = int(open(pid_file).read())
    assert st["pid"] == pid > 0
    # The init waits for start: it has not exec'd sleep yet.
    assert open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0] != b"sleep"
    rt("start", cid)
    st = rt.state(cid)
    assert st["status"] == "running"
    assert open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0] == b"sleep"
    rt("kill", cid, "KILL")
    st = _wait_status(rt, cid, "stopped")
    assert st["status"] == "stopped"
    rt("delete", cid)
    r = rt("state", cid, check=False)
    assert r.returncode != 0
    assert b"does not exist" in r.stderr or b"not exist" in r.stderr


def test_start_twice_fails(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    cid = rt.new_id()
    rt("create", "--bundle", rt.bundle(["sleep", "60"]), cid)
    rt("start", cid)
    assert rt("start", cid, check=False).returncode != 0
    rt("delete", "--force", cid)


def test_delete_running_without_force_is_refused(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    cid = rt.new_id()
    rt("create", "--bundle", rt.bundle(["sleep", "60"]), cid)
    rt("start", cid)
    r = rt("delete", cid, check=False)
    assert r.returncode != 0
    assert rt.state(cid)["status"] == "running"
    rt("delete", "--force", cid)
    assert rt("state", cid, check=False).returncode != 0


def test_kill_with_signal_names_and_numbers(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    cid = rt.new_id()
    # The shell traps USR1 and exits 7: the signal must reach it by name.
    rt("create", "--bundle", rt.bundle(["sh", "-c", "trap 'exit 7' USR1; while :; do sleep 0.1; done"]), cid)
    rt("start", cid)
    time.sleep(0.3)
    rt("kill", cid, "USR1")
    assert _wait_status(rt, cid, "stopped")["status"] == "stopped"
    rt("delete", cid)
    cid = rt.new_id()
    rt("create", "--bundle", rt.bundle(["sleep", "60"]), cid)
    rt("start", cid)
    rt("kill", cid, "9")
    assert _wait_status(rt, cid, "stopped")["status"] == "stopped"
    rt("delete", cid)


def test_pause_and_resume(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    cid = rt.new_id()
    rt("create", "--bundle", rt.bundle(["sleep", "60"]), cid)
    rt("start", cid)
    rt("pause", cid)
    assert rt.state(cid)["status"] == "paused"
    rt("resume", cid)
    assert rt.state(cid)["status"] == "running"
    rt("delete", "--force", cid)


def test_exec_runs_in_the_container(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    cid = rt.new_id()
    rt("create", "--bundle", rt.bundle(["sleep", "60"]), cid)
    rt("start", cid)
    r = rt("exec", cid, "sh", "-c", "hostname; cat /proc/1/cmdline; exit 5", check=False)
    assert r.returncode == 5
    lines = r.stdout.split(b"\n")
    assert lines[0] == b"tc-test"
    assert lines[1].startswith(b"sleep")
    r = rt("exec", cid, "/nonexistent", check=False)
    assert r.returncode != 0
    rt("delete", "--force", cid)


def test_list_shows_containers(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    cid = rt.new_id()
    rt("create", "--bundle", rt.bundle(["sleep", "60"]), cid)
    rows = json.loads(rt("list", "--format", "json").stdout)
    assert [r["id"] for r in rows] == [cid]
    assert rows[0]["status"] == "created"
    rt("delete", "--force", cid)


def test_concurrent_creates_of_one_id_exactly_one_wins(oci_runtime: OCIRuntime) -> None:
    import subprocess

    rt = oci_runtime
    cid = rt.new_id()
    bundles = [rt.bundle(["sleep", "60"]) for _ in range(4)]
    procs = [
        subprocess.Popen(
            [*rt.command, "--root", rt.root, "create", "--bundle", b, cid],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for b in bundles
    ]
    codes = [p.wait(timeout=60) for p in procs]
    for p in procs:
        p.stdout.close()  # type: ignore[union-attr]
        p.stderr.close()  # type: ignore[union-attr]
    assert sorted(codes)[0] == 0 and codes.count(0) == 1, codes
    assert rt.state(cid)["status"] == "created"
    rt("delete", "--force", cid)


@pytest.mark.parametrize("bad_id", ["../x", "a/b", "x" * 1000, ".."])
def test_bad_ids_are_refused(oci_runtime: OCIRuntime, bad_id: str) -> None:
    r = oci_runtime("create", "--bundle", oci_runtime.bundle(["true"]), bad_id, check=False)
    assert r.returncode != 0
    assert b"Traceback" not in r.stderr
    assert not os.path.exists(os.path.join(oci_runtime.root, "x"))


def test_exec_with_workdir_env_and_user(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    cid = rt.new_id()
    rt("create", "--bundle", rt.bundle(["sleep", "60"]), cid)
    rt("start", cid)
    r = rt(
        "exec",
        "--cwd",
        "/tmp",
        "-e",
        "GREETING=hello there",
        "-u",
        "1000:1001",
        cid,
        "sh",
        "-c",
        'pwd; echo "$GREETING"; id -u; id -g',
        check=False,
    )
    assert r.stdout.decode().splitlines() == ["/tmp", "hello there", "1000", "1001"], r.stderr
    rt("delete", "--force", cid)
