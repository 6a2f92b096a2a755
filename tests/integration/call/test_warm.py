"""The warm fork server as a launcher for run() and create()."""

from __future__ import annotations

import os
import threading

import tinycontainer as tc


def test_run_through_the_fork_server() -> None:
    with tc.WarmLauncher() as launcher:
        server = launcher.server_pid
        assert server is not None
        result = tc.run(["/bin/sh", "-c", "echo hi; exit 3"], capture_output=True, launcher=launcher)
        assert (result.returncode, result.stdout, result.reason) == (3, b"hi\n", "exited")
        results: list[int] = []

        def one() -> None:
            results.append(tc.run(["/bin/true"], spec=tc.Spec(memory="64m"), launcher=launcher).returncode)

        threads = [threading.Thread(target=one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == [0] * 6
        assert launcher.server_pid == server  # one server for all
    assert not os.path.exists(f"/proc/{server}/status") or "zombie" in open(f"/proc/{server}/status").read()


def test_kill_and_inherited_stdio_through_the_fork_server() -> None:
    with tc.WarmLauncher() as launcher, tc.create(tc.Spec(), ["sleep", "30"], launcher=launcher) as c:
        c.start()
        c.kill()
        assert c.wait(10).returncode == -9


def test_server_restarts_after_it_died() -> None:
    launcher = tc.WarmLauncher().start()
    try:
        first = launcher.server_pid
        assert first is not None
        os.kill(first, 9)
        assert tc.run(["/bin/true"], launcher=launcher).returncode == 0
        assert launcher.server_pid not in (None, first)
    finally:
        launcher.close()
