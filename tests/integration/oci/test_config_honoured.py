"""The config.json fields a container must honour, checked from inside the container (busybox is the probe)."""

from __future__ import annotations

from tests.helpers.oci import OCIRuntime, base_config


def _status_field(out: bytes, name: str) -> str:
    for line in out.decode().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in /proc/self/status")


def test_hostname(oci_runtime: OCIRuntime) -> None:
    assert oci_runtime.run_container(["hostname"]).stdout == b"tc-test\n"


def test_env_is_exactly_the_configs(oci_runtime: OCIRuntime, monkeypatch: object) -> None:
    import os

    os.environ["TC_HOST_SECRET"] = "leak"
    try:
        cfg = base_config(oci_runtime.rootfs, ["/bin/env"])
        cfg["process"]["env"] = ["PATH=/bin", "FOO=bar baz"]
        out = oci_runtime.run_container(["/bin/env"], cfg).stdout.decode().splitlines()
    finally:
        del os.environ["TC_HOST_SECRET"]
    # HOME comes from the container's /etc/passwd when the config does not set it (as runc does)
    assert sorted(out) == ["FOO=bar baz", "HOME=/root", "PATH=/bin"]


def test_capabilities_are_the_configs(oci_runtime: OCIRuntime) -> None:
    out = oci_runtime.run_container(["cat", "/proc/self/status"]).stdout
    # AUDIT_WRITE (29), KILL (5), NET_BIND_SERVICE (10)
    want = f"{(1 << 29) | (1 << 5) | (1 << 10):016x}"
    assert _status_field(out, "CapEff") == want
    assert _status_field(out, "CapPrm") == want
    assert _status_field(out, "CapBnd") == want
    assert _status_field(out, "CapInh") == "0000000000000000"
    assert _status_field(out, "CapAmb") == "0000000000000000"
    assert _status_field(out, "NoNewPrivs") == "1"


def test_user_and_groups(oci_runtime: OCIRuntime) -> None:
    cfg = base_config(oci_runtime.rootfs)
    cfg["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [2000, 2001]}
    out = oci_runtime.run_container(["cat", "/proc/self/status"], cfg).stdout
    assert _status_field(out, "Uid").split() == ["1000"] * 4
    assert _status_field(out, "Gid").split() == ["1001"] * 4
    assert _status_field(out, "Groups").split() == ["2000", "2001"]


def test_rlimits(oci_runtime: OCIRuntime) -> None:
    cfg = base_config(oci_runtime.rootfs)
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]
    out = oci_runtime.run_container(["sh", "-c", "ulimit -n; ulimit -Hn"], cfg).stdout
    assert out == b"256\n512\n"


def test_cwd(oci_runtime: OCIRuntime) -> None:
    cfg = base_config(oci_runtime.rootfs)
    cfg["process"]["cwd"] = "/tmp"
    assert oci_runtime.run_container(["pwd"], cfg).stdout == b"/tmp\n"


def test_masked_and_readonly_paths(oci_runtime: OCIRuntime) -> None:
    # /proc/kcore does not exist on this kernel; /proc/timer_list is masked the same way
    # and has content on the host.
    assert open("/proc/timer_list", "rb").read(10)
    script = (
        "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; "
        "echo x > /proc/sys/kernel/domainname && echo WROTE || echo ro; "
        "touch /newfile && echo WROTE || echo rootro"
    )
    out = oci_runtime.run_container(["sh", "-c", script]).stdout.split()
    assert out == [b"0", b"0", b"ro", b"rootro"]


def test_default_devices(oci_runtime: OCIRuntime) -> None:
    script = (
        "for d in null zero full random urandom tty; do stat -c '%n %t:%T %a' /dev/$d; done; "
        "readlink /dev/fd; readlink /dev/ptmx"
    )
    out = oci_runtime.run_container(["sh", "-c", script]).stdout.decode().splitlines()
    assert out[:6] == [
        "/dev/null 1:3 666",
        "/dev/zero 1:5 666",
        "/dev/full 1:7 666",
        "/dev/random 1:8 666",
        "/dev/urandom 1:9 666",
        "/dev/tty 5:0 666",
    ]
    assert out[6:] == ["/proc/self/fd", "pts/ptmx"]
    assert (
        oci_runtime.run_container(["sh", "-c", "echo hi > /dev/null && head -c 4 /dev/zero | wc -c"]).stdout == b"4\n"
    )


def test_network_namespace_has_only_loopback_up(oci_runtime: OCIRuntime) -> None:
    out = oci_runtime.run_container(["sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/operstate"]).stdout.split()
    assert out[0] == b"lo"
    assert len(out) == 2


def test_memory_limit_oom_kills(oci_runtime: OCIRuntime) -> None:
    cfg = base_config(oci_runtime.rootfs)
    cfg["linux"]["resources"]["memory"] = {"limit": 50 * 1024 * 1024, "swap": 50 * 1024 * 1024}
    r = oci_runtime.run_container(["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"], cfg)
    assert r.returncode == 137


def test_pids_limit(oci_runtime: OCIRuntime) -> None:
    cfg = base_config(oci_runtime.rootfs)
    cfg["linux"]["resources"]["pids"] = {"limit": 5}
    r = oci_runtime.run_container(["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; echo all-forked"], cfg)
    assert b"all-forked" not in r.stdout
    assert b"can't fork" in r.stderr
    cfg["linux"]["resources"]["pids"] = {"limit": 20}
    r = oci_runtime.run_container(["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 0.1 & done; echo all-forked"], cfg)
    assert b"all-forked" in r.stdout


def test_cgroup_membership_is_real(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    cfg = base_config(rt.rootfs, ["sleep", "60"])
    cfg["linux"]["resources"]["memory"] = {"limit": 64 * 1024 * 1024}
    cid = rt.new_id()
    rt("create", "--bundle", rt.bundle(config=cfg), cid)
    pid = rt.state(cid)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        memline = [line for line in f if ":memory:" in line][0].strip()
    path = memline.split(":", 2)[2]
    with open(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes") as f:
        assert int(f.read()) == 64 * 1024 * 1024
    rt("delete", "--force", cid)


def test_signals_start_with_default_dispositions(oci_runtime: OCIRuntime) -> None:
    # CPython ignores SIGPIPE; an ignored disposition survives execve, so the runtime must reset
    # it or `yes | head` in a container would spin forever. SigIgn lists ignored signals.
    out = oci_runtime.run_container(["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]).stdout.split()
    assert out == [b"SigBlk:", b"0000000000000000", b"SigIgn:", b"0000000000000000"]
