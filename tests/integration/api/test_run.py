"""tc.run(): parity with subprocess.run, termination reasons, usage, cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

import tinycontainer as tc
from tinycontainer.runtime import Runtime

SH = ["/bin/busybox", "sh", "-c"]

PARITY_CASES: list[tuple[str, dict[str, Any]]] = [
    ("exit 0", {}),
    ("exit 3", {}),
    ("exit 255", {}),
    ("echo out; echo err >&2", {"capture_output": True}),
    ("echo out; echo err >&2", {"capture_output": True, "text": True}),
    ("printf 'a\\r\\nb\\rc'", {"capture_output": True, "text": True}),
    ("printf '\\377\\000'", {"capture_output": True}),
    ("cat; echo done", {"input": b"x" * 200_000, "capture_output": True}),
    ("tr a-z A-Z", {"input": "hello", "capture_output": True, "text": True}),
    ("cat", {"capture_output": True}),  # stdin inherited from pytest (/dev/null-like): EOF
    ("echo out; echo err >&2", {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}),
    ("echo out; echo err >&2", {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}),
    ("exit 0", {"check": True}),
]


def _compare(script: str, kwargs: dict[str, Any], spec: tc.Spec, lib_root: str) -> None:
    stdin = subprocess.DEVNULL if "input" not in kwargs else None
    expected = subprocess.run([*SH, script], stdin=stdin, timeout=30, **kwargs)
    got = tc.run([*SH, script], spec=spec, lib_root=lib_root, stdin=stdin, timeout=30, **kwargs)
    assert (got.returncode, got.stdout, got.stderr) == (expected.returncode, expected.stdout, expected.stderr)
    assert got.reason == "exited"
    assert got.args == [*SH, script]


@pytest.mark.parametrize(("script", "kwargs"), PARITY_CASES, ids=[f"{s}-{sorted(k)}" for s, k in PARITY_CASES])
def test_parity_with_subprocess(script: str, kwargs: dict[str, Any], spec: tc.Spec, lib_root: str) -> None:
    _compare(script, kwargs, spec, lib_root)


def test_check_raises_like_subprocess(spec: tc.Spec, lib_root: str) -> None:
    with pytest.raises(subprocess.CalledProcessError) as expected:
        subprocess.run([*SH, "echo bad >&2; exit 4"], capture_output=True, check=True)
    with pytest.raises(tc.ContainerError) as got:
        tc.run([*SH, "echo bad >&2; exit 4"], spec=spec, lib_root=lib_root, capture_output=True, check=True)
    assert got.value.returncode == expected.value.returncode == 4
    assert got.value.stderr == expected.value.stderr == b"bad\n"


def test_timeout_raises_like_subprocess(spec: tc.Spec, lib_root: str) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([*SH, "echo early; sleep 5"], capture_output=True, timeout=0.5)
    with pytest.raises(subprocess.TimeoutExpired) as got:
        tc.run([*SH, "echo early; sleep 5"], spec=spec, lib_root=lib_root, capture_output=True, timeout=0.5)
    assert isinstance(got.value, tc.TimeoutExpired) and isinstance(got.value, tc.LimitExceeded)
    assert got.value.reason == "wall-time" and got.value.timeout == 0.5
    assert got.value.stdout == b"early\n"


def test_environment_is_clean(spec: tc.Spec, lib_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_SECRET", "leak")
    r = tc.run(
        ["env"],
        spec=spec.replace(env={"A": "1"}),
        env={"B": "2"},
        cwd="/tmp",
        lib_root=lib_root,
        capture_output=True,
        text=True,
    )
    names = sorted(line.split("=", 1)[0] for line in r.stdout.splitlines())
    assert "HOST_SECRET" not in names
    assert {"A", "B", "PATH", "HOME"} <= set(names)
    r = tc.run(["pwd"], spec=spec, cwd="/tmp", lib_root=lib_root, capture_output=True, text=True)
    assert r.stdout == "/tmp\n"


def test_reason_oom(spec: tc.Spec, lib_root: str) -> None:
    r = tc.run(
        [*SH, "dd if=/dev/zero of=/dev/null bs=200M count=1"],
        spec=spec.replace(memory="50m"),
        lib_root=lib_root,
        capture_output=True,
        timeout=60,
    )
    assert r.reason == "oom"
    assert r.returncode != 0
    assert r.usage is not None and r.usage.oom_kills >= 1
    assert r.usage.memory_peak is not None and r.usage.memory_peak <= 50 << 20


def test_reason_cpu_time(spec: tc.Spec, lib_root: str) -> None:
    r = tc.run([*SH, "while :; do :; done"], spec=spec.replace(cpu_time=1), lib_root=lib_root, timeout=60)
    assert r.reason == "cpu-time"
    assert r.returncode < 0
    assert r.usage is not None and r.usage.cpu_time is not None and 0.9 <= r.usage.cpu_time <= 3.0


def test_reason_cpu_time_across_processes(spec: tc.Spec, lib_root: str) -> None:
    # Two busy children, each under the per-process RLIMIT_CPU: only the cgroup total stops them.
    script = "(while :; do :; done) & (while :; do :; done) & wait"
    r = tc.run([*SH, script], spec=spec.replace(cpu_time=1.5), lib_root=lib_root, timeout=60)
    assert r.reason == "cpu-time"


def test_reason_wall_time(spec: tc.Spec, lib_root: str) -> None:
    r = tc.run(["sleep", "10"], spec=spec.replace(wall_time=0.5), lib_root=lib_root, timeout=60)
    assert r.reason == "wall-time"
    assert r.returncode == -signal.SIGKILL
    assert r.usage is not None and 0.45 <= r.usage.wall_time < 5


def test_reason_killed_and_exited(spec: tc.Spec, lib_root: str) -> None:
    with tc.start(spec, ["sleep", "30"], lib_root=lib_root) as c:
        c.kill(signal.SIGKILL)
        r = c.wait(timeout=10)
    assert r.reason == "killed" and r.returncode == -signal.SIGKILL and r.signal == signal.SIGKILL
    r = tc.run(["true"], spec=spec, lib_root=lib_root)
    assert r.reason == "exited" and r.returncode == 0 and r.signal is None


def test_usage_matches_cgroup_files(spec: tc.Spec, lib_root: str) -> None:
    script = "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done; dd if=/dev/zero of=/dev/null bs=30M count=2"
    with tc.start(spec, [*SH, script], lib_root=lib_root) as c:
        result = c.wait(timeout=60)
        engine = Runtime(os.path.join(lib_root, "state")).load(c.id)
        paths = engine._manager().paths()
        with open(os.path.join(paths["cpuacct"], "cpuacct.usage")) as f:
            cpu_ns = int(f.read())
        with open(os.path.join(paths["memory"], "memory.max_usage_in_bytes")) as f:
            peak = int(f.read())
    usage = result.usage
    assert usage is not None and usage.cpu_time is not None and usage.memory_peak is not None
    assert usage.cpu_time > 0.05
    assert abs(usage.cpu_time - cpu_ns / 1e9) <= 0.1 * cpu_ns / 1e9
    assert peak > 30 << 20
    assert abs(usage.memory_peak - peak) <= 0.1 * peak
    assert usage.pids_peak is None or usage.pids_peak >= 1


def test_keyboard_interrupt_cleans_up(spec: tc.Spec, lib_root: str) -> None:
    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            tc.run(["sleep", "20"], spec=spec, lib_root=lib_root, capture_output=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_spec_errors_leave_nothing(spec: tc.Spec, lib_root: str) -> None:
    with pytest.raises(tc.SpecError) as info:
        tc.run(
            ["true"], spec=spec.replace(mounts=[tc.Mount(target="/x", source="/nonexistent/src")]), lib_root=lib_root
        )
    assert info.value.field == "mounts['/x'].source"
    with pytest.raises(tc.TinyContainerError):
        tc.run(["/no/such/program"], spec=spec, lib_root=lib_root)


def test_from_a_thread_uses_spawned_supervisor(spec: tc.Spec, lib_root: str) -> None:
    results: list[tc.Result[Any]] = []
    worker = threading.Thread(
        target=lambda: results.append(
            tc.run([*SH, "echo threaded"], spec=spec, lib_root=lib_root, capture_output=True, text=True, timeout=60)
        )
    )
    worker.start()
    worker.join(90)
    assert results and results[0].stdout == "threaded\n"


def test_host_root_mode(lib_root: str) -> None:
    r = tc.run(
        ["/bin/sh", "-c", "touch /etc/tc-should-fail; echo $?; echo ok > /tmp/x && cat /tmp/x; ls /run | wc -l"],
        spec=tc.Spec(memory="64m"),
        lib_root=lib_root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = r.stdout.split()
    assert lines[0] != "0"  # read-only root
    assert lines[1] == "ok"  # private writable /tmp
    assert lines[2] == "0"  # private, empty /run
    assert not os.path.exists("/etc/tc-should-fail")


def test_host_root_bind_mount_from_tmp(tmp_path: Path) -> None:
    """In host-root mode the host's / is staged in the state dir, not on a tmpfs over /tmp,
    so a bind source under /tmp stays reachable."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("from-host-tmp\n")
    spec = tc.Spec(mounts=[tc.Mount(target="/mnt", source=str(src), read_only=True)])
    r = tc.run(["cat", "/mnt/f"], spec=spec, capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "from-host-tmp\n"), r.stderr


def test_tty_gives_the_process_a_terminal() -> None:
    """Spec(tty=True): the process runs on a pty of its own; output and input go through it."""
    spec = tc.Spec(tty=True)
    r = tc.run(
        ["sh", "-c", "tty; test -t 0 && echo stdin-is-a-tty; exit 4"],
        spec=spec,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 4, r.stderr
    assert r.stdout.splitlines() == ["/dev/pts/0", "stdin-is-a-tty"]
    r = tc.run(
        ["sh", "-c", "read x; echo got $x"], spec=spec, input="hello\n", capture_output=True, text=True, timeout=60
    )
    assert r.stdout.splitlines()[-1] == "got hello"
