"""More config.json fields: hooks, terminal over --console-socket, user namespaces, joining
namespaces by path, sysctl, cgroup and time namespaces, update, ps, spec, features."""

from __future__ import annotations

import array
import json
import os
import socket
import threading
import time

import pytest
from tests.helpers.oci import OCIRuntime, base_config


def _wait(rt: OCIRuntime, cid: str, status: str, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if rt.state(cid)["status"] == status:
            return True
        time.sleep(0.05)
    return False


def test_hooks_run_in_order_with_state_on_stdin(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    log = os.path.join(rt.workdir, "hooks.log")
    script = os.path.join(rt.workdir, "hook.sh")
    with open(script, "w") as f:
        # The state arrives on stdin; keep its status and the stage name.
        f.write(f'#!/bin/sh\nread -r state\necho "$1 $state" >> {log}\n')
    os.chmod(script, 0o755)
    cfg = base_config(rt.rootfs, ["true"])
    # startContainer hooks run in the container's mount namespace: the script and the log must
    # be visible there too (the container's /tmp is a tmpfs, so the mount point can be made).
    cfg["mounts"].append({"destination": rt.workdir, "type": "bind", "source": rt.workdir, "options": ["rbind", "rw"]})
    cfg["hooks"] = {
        stage: [{"path": script, "args": ["hook.sh", stage]}]
        for stage in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
    }
    cid = rt.new_id()
    rt("create", "--bundle", rt.bundle(config=cfg), cid)
    rt("start", cid)
    assert _wait(rt, cid, "stopped")
    rt("delete", cid)
    lines = open(log).read().splitlines()
    stages = [line.split(" ", 1)[0] for line in lines]
    expected = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    if rt.name == "runc":
        # A known runc 1.1 deviation: poststart hooks run before the process starts
        # (before startContainer), not after it.
        expected = ["prestart", "createRuntime", "createContainer", "poststart", "startContainer", "poststop"]
    assert stages == expected
    states = {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1]) for line in lines}
    assert states["prestart"]["id"] == cid
    # The environment exists by then: "created", as crun and the runtime-tools suite have it.
    assert states["prestart"]["status"] in ("created", "creating")
    if rt.name == "tcontainer-oci":
        assert states["prestart"]["status"] == "created"
    assert states["poststop"]["status"] == "stopped"
    assert states["prestart"]["pid"] > 0


def test_failing_prestart_hook_fails_create(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    cfg = base_config(rt.rootfs, ["true"])
    cfg["hooks"] = {"prestart": [{"path": "/bin/false"}]}
    cid = rt.new_id()
    r = rt("create", "--bundle", rt.bundle(config=cfg), cid, check=False)
    assert r.returncode != 0
    assert rt("state", cid, check=False).returncode != 0


def _console_server(path: str) -> tuple[socket.socket, list[int]]:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    received: list[int] = []

    def accept() -> None:
        server.settimeout(30)
        conn, _ = server.accept()
        with conn:
            fds = array.array("i")
            _, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(4))
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:4])
            received.extend(fds)

    threading.Thread(target=accept, daemon=True).start()
    return server, received


def test_terminal_via_console_socket(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    sock_path = os.path.join(rt.workdir, "console.sock")
    server, received = _console_server(sock_path)
    cfg = base_config(rt.rootfs, ["sh", "-c", "tty; stty size; echo done"])
    cfg["process"]["terminal"] = True
    cfg["process"]["consoleSize"] = {"height": 33, "width": 101}
    cid = rt.new_id()
    try:
        rt("create", "--bundle", rt.bundle(config=cfg), "--console-socket", sock_path, cid)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert received, "no pty master arrived on the console socket"
        master = received[0]
        rt("start", cid)
        out = b""
        deadline = time.monotonic() + 15
        while b"done" not in out and time.monotonic() < deadline:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        text = out.decode(errors="replace").replace("\r", "")
        assert "/dev/pts/0" in text or "/dev/console" in text
        assert "33 101" in text
    finally:
        server.close()
        rt("delete", "--force", cid, check=False)


def test_user_namespace_mappings(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    cfg = base_config(rt.rootfs, ["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u"])
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    # The rootfs belongs to host root, which is unmapped (nobody) inside: read-only is fine.
    r = rt.run_container(cfg["process"]["args"], cfg)
    assert r.returncode == 0, r.stderr
    lines = [line.split() for line in r.stdout.decode().splitlines()]
    assert lines[0] == ["0", "100000", "65536"]
    assert lines[1] == ["0", "100000", "65536"]
    assert lines[2] == ["0"]


def test_joining_a_network_namespace_by_path(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    first = rt.new_id()
    rt("create", "--bundle", rt.bundle(["sleep", "60"]), first)
    pid = rt.state(first)["pid"]
    cfg = base_config(rt.rootfs, ["sh", "-c", "readlink /proc/self/ns/net"])
    cfg["linux"]["namespaces"] = [
        {"type": "network", "path": f"/proc/{pid}/ns/net"} if n["type"] == "network" else n
        for n in cfg["linux"]["namespaces"]
    ]
    r = rt.run_container(cfg["process"]["args"], cfg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == os.readlink(f"/proc/{pid}/ns/net")
    rt("delete", "--force", first)


def test_sysctl(oci_runtime: OCIRuntime) -> None:
    cfg = base_config(oci_runtime.rootfs, ["cat", "/proc/sys/net/ipv4/ip_forward"])
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    r = oci_runtime.run_container(cfg["process"]["args"], cfg)
    assert r.stdout.strip() == b"1"
    assert open("/proc/sys/net/ipv4/ip_forward").read().strip() in ("0", "1")


def test_cgroup_namespace(oci_runtime: OCIRuntime) -> None:
    cfg = base_config(oci_runtime.rootfs, ["cat", "/proc/self/cgroup"])
    cfg["linux"]["namespaces"].append({"type": "cgroup"})
    r = oci_runtime.run_container(cfg["process"]["args"], cfg)
    # Inside a cgroup namespace every hierarchy's path is its root.
    paths = {line.split(":", 2)[2] for line in r.stdout.decode().splitlines() if line}
    assert paths == {"/"}


def test_time_namespace_offsets(oci_runtime: OCIRuntime) -> None:
    if oci_runtime.name == "runc":
        pytest.skip("runc 1.1 has no time namespace support")
    cfg = base_config(oci_runtime.rootfs, ["cat", "/proc/uptime"])
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 864000, "nanosecs": 0}, "monotonic": {"secs": 0}}
    r = oci_runtime.run_container(cfg["process"]["args"], cfg)
    assert r.returncode == 0, r.stderr
    inside = float(r.stdout.split()[0])
    host = float(open("/proc/uptime").read().split()[0])
    assert inside - host > 863000


def test_update_memory_limit(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    cfg = base_config(rt.rootfs, ["sleep", "60"])
    cfg["linux"]["resources"]["memory"] = {"limit": 64 * 1024 * 1024}
    cid = rt.new_id()
    rt("create", "--bundle", rt.bundle(config=cfg), cid)
    pid = rt.state(cid)["pid"]
    res = os.path.join(rt.workdir, "res.json")
    with open(res, "w") as f:
        json.dump({"memory": {"limit": 128 * 1024 * 1024}, "pids": {"limit": 99}}, f)
    rt("update", "--resources", res, cid)
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    mem = [line.split(":", 2)[2] for line in lines if ":memory:" in line][0]
    pids = [line.split(":", 2)[2] for line in lines if ":pids:" in line][0]
    assert int(open(f"/sys/fs/cgroup/memory{mem}/memory.limit_in_bytes").read()) == 128 * 1024 * 1024
    assert open(f"/sys/fs/cgroup/pids{pids}/pids.max").read().strip() == "99"
    rt("delete", "--force", cid)


def test_ps_lists_container_processes(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    cid = rt.new_id()
    rt("create", "--bundle", rt.bundle(["sh", "-c", "sleep 60 & sleep 61; true"]), cid)
    rt("start", cid)
    deadline = time.monotonic() + 10
    pids: list[int] = []
    while time.monotonic() < deadline:
        pids = json.loads(rt("ps", "--format", "json", cid).stdout)
        if len(pids) >= 3:
            break
        time.sleep(0.05)
    assert len(pids) == 3
    assert rt.state(cid)["pid"] in pids
    rt("delete", "--force", cid)


def test_kill_all_signals_every_process(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    cfg = base_config(rt.rootfs, ["sh", "-c", "sleep 60 & sleep 61 & wait"])
    cid = rt.new_id()
    rt("create", "--bundle", rt.bundle(config=cfg), cid)
    rt("start", cid)
    time.sleep(0.3)
    rt("kill", "--all", cid, "KILL")
    assert _wait(rt, cid, "stopped")
    rt("delete", cid)


def test_spec_writes_a_config_that_runs(oci_runtime: OCIRuntime) -> None:
    rt = oci_runtime
    bundle = os.path.join(rt.workdir, "specbundle")
    os.makedirs(bundle)
    r = rt("spec", "--bundle", bundle)
    assert r.returncode == 0
    cfg = json.load(open(os.path.join(bundle, "config.json")))
    assert cfg["process"]["args"] == ["sh"]
    cfg["root"] = {"path": rt.rootfs, "readonly": True}
    cfg["process"]["terminal"] = False  # runc spec asks for one
    cfg["process"]["args"] = ["sh", "-c", "grep CapEff /proc/self/status"]
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    r = rt("run", "--bundle", bundle, rt.new_id(), check=False)
    assert r.returncode == 0, r.stderr
    if rt.name == "tcontainer-oci":
        # Docker's 14 default capabilities
        assert r.stdout.split()[-1] == b"00000000a80425fb"


def test_features_document(oci_runtime: OCIRuntime) -> None:
    if oci_runtime.name == "runc":
        pytest.skip("runc 1.1.5 predates the features command")
    doc = json.loads(oci_runtime("features").stdout)
    assert doc["ociVersionMax"].startswith("1.")
    assert "pid" in doc["linux"]["namespaces"]
    assert "CAP_SYS_ADMIN" in doc["linux"]["capabilities"]
    assert "createRuntime" in doc["hooks"]
