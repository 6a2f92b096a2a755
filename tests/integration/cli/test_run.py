"""``tcontainer run`` in the foreground: the seed's flags, limits, exit statuses, argv, env."""

from __future__ import annotations

import os

import pytest
from tests.integration.cli.conftest import TC


def _cgroup_file(pid_cgroup: str, controller: str, name: str) -> str:
    for line in pid_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            base = f"/sys/fs/cgroup/{controllers}"
            with open(os.path.join(base, path.lstrip("/"), name)) as f:
                return f.read().strip()
    raise AssertionError(f"no {controller} hierarchy in {pid_cgroup!r}")


def test_seed_flags_apply_all_three_limits(tc: TC) -> None:
    # The container reads its own cgroup membership; the test reads the limit files of exactly
    # those cgroups while the container is still running (it waits for a marker file).
    result = tc(
        "run", "-name", "t1", "-fs", tc.rootfs, "-memlimit", "64m", "-cpuset", "0", "-cpushare", "512",
        "--", "/bin/sh", "-c", "cat /proc/self/cgroup; "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || true",
    )
    cgroup = result.stdout.decode()
    assert "tcontainer-" in cgroup
    # The cgroups are gone after exit: check them through a detached twin instead.
    tc("run", "-d", "-name", "t2", "-fs", tc.rootfs, "-memlimit", "64m", "-cpuset", "0", "-cpushare", "512",
       "--", "/bin/sleep", "30")
    pid = int(tc("inspect", "t2").stdout.decode().split('"pid": ')[1].split(",")[0])
    with open(f"/proc/{pid}/cgroup") as f:
        membership = f.read()
    assert _cgroup_file(membership, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert _cgroup_file(membership, "cpuset", "cpuset.cpus") == "0"
    assert _cgroup_file(membership, "cpu", "cpu.shares") == "512"
    tc("rm", "-f", "t2")


def test_oom_kill_is_reported_with_status_137(tc: TC) -> None:
    result = tc("run", "--rm", "-fs", tc.rootfs, "-memlimit", "64m", "--",
                "/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1", check=False)
    assert result.returncode == 137, result.stderr
    assert b"OOM killer" in result.stderr and b"64MiB" in result.stderr


@pytest.mark.parametrize("code", [0, 3, 255])
def test_exit_status_is_the_containers(tc: TC, code: int) -> None:
    assert tc("run", "--rm", "--rootfs", tc.rootfs, "--", "sh", "-c", f"exit {code}", check=False).returncode == code


def test_signal_death_is_128_plus_n(tc: TC) -> None:
    result = tc("run", "--rm", "--rootfs", tc.rootfs, "--", "sh", "-c", "sh -c 'kill -9 $$'; exit $?", check=False)
    assert result.returncode == 137


def test_command_not_found_127_and_not_executable_126(tc: TC) -> None:
    missing = tc("run", "--rm", "--rootfs", tc.rootfs, "--", "/no/such/program", check=False)
    assert missing.returncode == 127
    assert b"/no/such/program" in missing.stderr and len(missing.stderr.splitlines()) == 1
    not_exec = tc("run", "--rm", "--rootfs", tc.rootfs, "--", "/etc/passwd", check=False)
    assert not_exec.returncode == 126
    assert tc("ps", "-aq").stdout == b""  # a container that never ran is not kept


def test_own_failures_are_125_with_one_line(tc: TC) -> None:
    bad = tc("run", "--rm", "--rootfs", "/no/such/dir", "--", "true", check=False)
    assert bad.returncode == 125
    assert bad.stderr.count(b"\n") == 1 and b"/no/such/dir" in bad.stderr
    unknown = tc("run", "--bogus", "--rootfs", tc.rootfs, "--", "true", check=False)
    assert unknown.returncode == 125 and b"--bogus" in unknown.stderr
    publish = tc("run", "-p", "80:80", "--rootfs", tc.rootfs, "--", "true", check=False)
    assert publish.returncode == 125 and b"not supported yet" in publish.stderr


def test_argv_is_passed_word_for_word(tc: TC) -> None:
    words = ["a b", "'q'", '"dq"', "$HOME", "*", "", "-l", "--x=1"]
    result = tc("run", "--rm", "--rootfs", tc.rootfs, "--", "/bin/sh", "-c", 'for a in "$@"; do echo "[$a]"; done',
                "sh", *words)
    assert result.stdout.decode().splitlines() == [f"[{w}]" for w in words]


def test_environment_is_isolated_and_set(tc: TC, tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TC_SECRET_FROM_HOST", "leak")
    monkeypatch.setenv("TC_PASSED", "passed-on")
    env_file = os.path.join(str(tmp_path), "env")
    with open(env_file, "w") as f:
        f.write("# comment\nFROM_FILE=yes\n")
    result = tc("run", "--rm", "-e", "A=1", "-e", "TC_PASSED", "--env-file", env_file, "--rootfs", tc.rootfs,
                "--", "/bin/env")
    env = dict(line.split("=", 1) for line in result.stdout.decode().splitlines())
    assert "TC_SECRET_FROM_HOST" not in env
    assert env["A"] == "1" and env["TC_PASSED"] == "passed-on" and env["FROM_FILE"] == "yes"
    assert env["PATH"].startswith("/usr/local/sbin")


def test_options_reach_the_container(tc: TC, tmp_path: object) -> None:
    host_dir = os.path.join(str(tmp_path), "vol")
    os.mkdir(host_dir)
    with open(os.path.join(host_dir, "f"), "w") as f:
        f.write("from-host\n")
    script = (
        "hostname; pwd; id -u; cat /data/f; touch /data/g 2>/dev/null && echo rw || echo ro; "
        "grep ' /scratch ' /proc/mounts | cut -d' ' -f3; ulimit -n; touch /x 2>/dev/null && echo rootrw || echo rootro"
    )
    result = tc("run", "--rm", "-h", "box", "-w", "/tmp", "-u", "65534", "-v", f"{host_dir}:/data:ro",
                "--tmpfs", "/scratch:size=1m", "--ulimit", "nofile=512", "--read-only", "--rootfs", tc.rootfs,
                "--", "/bin/sh", "-c", script)
    assert result.stdout.decode().split() == ["box", "/tmp", "65534", "from-host", "ro", "tmpfs", "512", "rootro"]


def test_network_none_by_default_and_host_with_seed_net(tc: TC) -> None:
    none = tc("run", "--rm", "--rootfs", tc.rootfs, "--", "/bin/ls", "/sys/class/net").stdout.split()
    assert none == [b"lo"]
    host = tc("run", "--rm", "-net", "-fs", tc.rootfs, "--", "/bin/ls", "/sys/class/net").stdout.split()
    assert sorted(host) == sorted(os.fsencode(n) for n in os.listdir("/sys/class/net"))


def test_host_root_is_read_only_with_private_tmp(tc: TC) -> None:
    result = tc("run", "--rm", "--", "/bin/sh", "-c",
                "touch /etc/tc-should-fail 2>/dev/null && echo etc-rw || echo etc-ro; "
                "touch /tmp/ok && echo tmp-rw; ls /tmp; echo $$")
    lines = result.stdout.decode().split()
    assert lines[:3] == ["etc-ro", "tmp-rw", "ok"] and lines[3] == "1"
    assert not os.path.exists("/etc/tc-should-fail")


def test_init_forwards_the_stop_signal(tc: TC) -> None:
    import time

    result = tc("run", "--rm", "--init", "--rootfs", tc.rootfs, "--", "/bin/sh", "-c", "echo $$")
    assert result.stdout.strip() != b"1"  # with --init the program is not PID 1
    # A program as PID 1 gets no default action for SIGTERM (pid_namespaces(7)): sleep would
    # ignore it. Behind the reaper it dies of it at once.
    tc("run", "-d", "--init", "--name", "sleeper", "--rootfs", tc.rootfs, "--", "/bin/sleep", "60")
    started = time.monotonic()
    tc("stop", "-t", "20", "sleeper")
    assert time.monotonic() - started < 10
    assert tc("wait", "sleeper").stdout.strip() == b"143"
    tc("rm", "sleeper")


def test_names_are_unique(tc: TC) -> None:
    tc("run", "-d", "--name", "same", "--rootfs", tc.rootfs, "--", "/bin/sleep", "30")
    again = tc("run", "-d", "--name", "same", "--rootfs", tc.rootfs, "--", "/bin/true", check=False)
    assert again.returncode == 125 and b"already used" in again.stderr and again.stderr.count(b"\n") == 1
    tc("rm", "-f", "same")
