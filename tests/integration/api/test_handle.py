"""tc.create()/Container: lifecycle, exec, logs, stop, kill, removal."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import pytest

import tinycontainer as tc


def test_lifecycle_exec_logs_stop(spec: tc.Spec, lib_root: str) -> None:
    script = 'echo started; trap "echo stopping; exit 7" TERM; while :; do sleep 0.05; done'
    with tc.create(spec, ["sh", "-c", script], lib_root=lib_root) as c:
        assert c.status == "created"
        c.start()
        assert c.status == "running" and c.pid
        deadline = time.monotonic() + 10
        while b"started" not in c.output()[0] and time.monotonic() < deadline:
            time.sleep(0.02)
        r = c.exec(["sh", "-c", "echo in-exec; echo err >&2; exit 5"], text=True)
        assert (r.returncode, r.stdout, r.stderr) == (5, "in-exec\n", "err\n")
        assert c.stats().pids_current is not None
        assert c.processes()
        result = c.stop(timeout=5)
        assert result.returncode == 7 and result.reason == "exited"
        assert c.status == "exited"
        assert c.output() == (b"started\nstopping\n", b"")
        assert b"".join(c.logs(follow=True)) == b"started\nstopping\n"
        with pytest.raises(tc.WrongStatus):
            c.kill()
    assert c.status == "removed"
    assert not os.path.exists(c.bundle)


def test_stop_escalates_to_sigkill(spec: tc.Spec, lib_root: str) -> None:
    # sh as PID 1 without a TERM trap ignores SIGTERM (pid_namespaces(7)).
    with tc.start(spec, ["sh", "-c", "while :; do sleep 0.05; done"], lib_root=lib_root) as c:
        started = time.monotonic()
        r = c.stop(timeout=0.3)
        assert r.returncode == -signal.SIGKILL and r.reason == "killed"
        assert time.monotonic() - started < 5


def test_init_forwards_sigterm(spec: tc.Spec, lib_root: str) -> None:
    with tc.start(spec.replace(init=True), ["sleep", "30"], lib_root=lib_root) as c:
        # The reaper installs its handlers only after start; a SIGTERM before that would be
        # dropped (PID 1 without a handler), so wait until it has forked the program.
        deadline = time.monotonic() + 10
        while len(c.processes()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        r = c.stop(timeout=5)
        # The reaper exits like a shell would: 128 + SIGTERM.
        assert r.returncode == 128 + signal.SIGTERM and r.reason == "exited"


def test_logs_follow_streams(spec: tc.Spec, lib_root: str) -> None:
    with tc.start(spec, ["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.1; done"], lib_root=lib_root) as c:
        assert b"".join(c.logs("stdout", follow=True)) == b"1\n2\n3\n"
        assert c.wait(5).returncode == 0


def test_pipes_and_wait_timeout(spec: tc.Spec, lib_root: str) -> None:
    with tc.create(spec, ["cat"], lib_root=lib_root, stdin=tc.PIPE, stdout=tc.PIPE, stderr=subprocess.DEVNULL) as c:
        c.start()
        with pytest.raises(TimeoutError):
            c.wait(0.2)
        assert c.stdin is not None and c.stdout is not None
        c.stdin.write(b"piped\n")
        c.stdin.close()
        assert c.stdout.read() == b"piped\n"
        assert c.wait(10).returncode == 0


def test_remove_on_exception_kills(spec: tc.Spec, lib_root: str) -> None:
    with pytest.raises(KeyboardInterrupt), tc.start(spec, ["sleep", "30"], lib_root=lib_root) as c:
        pid = c.pid
        raise KeyboardInterrupt
    assert pid is not None and not os.path.exists(f"/proc/{pid}/cmdline")


def test_create_failure_leaves_nothing(spec: tc.Spec, lib_root: str) -> None:
    with pytest.raises(tc.TinyContainerError):
        tc.start(spec, ["/no/such/program"], lib_root=lib_root)


def test_aio(spec: tc.Spec, lib_root: str) -> None:
    async def main() -> tuple[str, int]:
        r = await tc.aio.run(["echo", "async"], spec=spec, lib_root=lib_root, capture_output=True, text=True)
        c = await tc.aio.create(spec, ["sh", "-c", "exit 9"], lib_root=lib_root)
        try:
            await tc.aio.start(c)
            waited = await tc.aio.wait(c, 10)
        finally:
            await tc.aio.remove(c)
        return r.stdout, waited.returncode

    assert asyncio.run(main()) == ("async\n", 9)
