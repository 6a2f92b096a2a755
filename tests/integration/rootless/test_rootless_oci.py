"""``tcontainer-oci`` as an ordinary user: state under $XDG_RUNTIME_DIR, a user namespace that maps
the caller to root plus its /etc/subuid range (newuidmap/newgidmap), cgroups skipped with a
warning where they are not delegated (cgroup v1 here), loopback-only networking, and a clear
diagnosis of an unusable /dev/net/tun for slirp4netns."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest
from tests.integration.rootless.conftest import SUBID_COUNT, RootlessUser

pytestmark = pytest.mark.rootless

DOCKER_CAP_MASK = "00000000a80425fb"


def _bundle(user: RootlessUser, args: list[str], edit: Any = None) -> str:
    bundle = os.path.join(user.home, "b-" + uuid.uuid4().hex[:8])
    user.run("mkdir", bundle, check=True)
    r = user.oci("spec", "--rootless", "--bundle", bundle, check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        cfg = json.load(f)
    cfg["root"]["path"] = user.rootfs
    cfg["process"]["args"] = args
    if edit is not None:
        edit(cfg)
    data = json.dumps(cfg)
    user.run("sh", "-c", f"cat > {bundle}/config.json", input=data.encode(), check=True)
    _ = r
    return bundle


def _facts(out: bytes) -> dict[str, str]:
    facts = {}
    for word in out.decode(errors="replace").split():
        key, sep, value = word.partition("=")
        if sep:
            facts[key] = value
    return facts


def test_spec_rootless_maps_caller_and_subuid_range(rootless_user: RootlessUser) -> None:
    bundle = os.path.join(rootless_user.home, "spec-only")
    rootless_user.run("mkdir", bundle, check=True)
    r = rootless_user.oci("spec", "--rootless", "--bundle", bundle, check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        cfg = json.load(f)
    kinds = {ns["type"] for ns in cfg["linux"]["namespaces"]}
    assert {"user", "network", "mount", "pid"} <= kinds
    for key, own in (("uidMappings", rootless_user.uid), ("gidMappings", rootless_user.gid)):
        assert cfg["linux"][key] == [
            {"containerID": 0, "hostID": own, "size": 1},
            {"containerID": 1, "hostID": rootless_user.subid_start, "size": SUBID_COUNT},
        ]
    assert "resources" not in cfg["linux"] or not cfg["linux"]["resources"]
    # Advice about what rootless cannot do here goes to stderr, not into the config.
    err = r.stderr.decode()
    assert "/dev/net/tun" in err, err


def test_run_as_root_in_a_user_namespace(rootless_user: RootlessUser) -> None:
    script = r"""
echo "uid=$(id -u) gid=$(id -g)"
echo "maplines=$(wc -l < /proc/self/uid_map)"
status() { grep "^$1:" /proc/self/status | tr -d ' \t' | cut -d: -f2; }
echo "capeff=$(status CapEff) nnp=$(status NoNewPrivs) seccomp=$(status Seccomp)"
touch /tmp/f && chown 1000:1000 /tmp/f && echo "owner=$(stat -c %u:%g /tmp/f)"
echo "netdevs=$(ls /sys/class/net | tr '\n' ,)"
echo "lo=$(cat /sys/class/net/lo/operstate)"
echo "hostname=$(hostname)"
unshare -m true 2>/dev/null; echo "unshare=$?"
"""
    bundle = _bundle(rootless_user, ["sh", "-c", script])
    r = rootless_user.oci("run", "--bundle", bundle, "rl-" + uuid.uuid4().hex[:8])
    assert r.returncode == 0, r.stderr
    facts = _facts(r.stdout)
    assert facts["uid"] == "0" and facts["gid"] == "0"
    assert facts["maplines"] == "2"
    assert facts["capeff"] == DOCKER_CAP_MASK
    assert facts["nnp"] == "1" and facts["seccomp"] == "2"
    assert facts["owner"] == "1000:1000", r.stdout  # a subuid-mapped id works
    assert facts["netdevs"] == "lo,"
    assert facts["lo"] in ("unknown", "up")
    assert facts["unshare"] != "0"
    assert b"cgroup" in r.stderr.lower(), "the skipped cgroups were not reported"


def test_state_lives_under_xdg_runtime_dir(rootless_user: RootlessUser) -> None:
    bundle = _bundle(rootless_user, ["sleep", "30"])
    cid = "rl-" + uuid.uuid4().hex[:8]
    rootless_user.oci("create", "--bundle", bundle, cid, check=True)
    try:
        state_dir = os.path.join(rootless_user.xdg, "tcontainer-oci", cid)
        assert os.path.isdir(state_dir)
        assert os.stat(state_dir).st_uid == rootless_user.uid
        listed = rootless_user.oci("list", "-q", check=True).stdout.decode().split()
        assert cid in listed
        rootless_user.oci("start", cid, check=True)
        state = json.loads(rootless_user.oci("state", cid, check=True).stdout)
        assert state["status"] == "running"
        # The container's init runs as the caller on the host (root only inside).
        assert os.stat(f"/proc/{state['pid']}").st_uid == rootless_user.uid
        rootless_user.oci("kill", cid, "KILL", check=True)
    finally:
        rootless_user.oci("delete", "--force", cid)
    assert not os.path.exists(os.path.join(rootless_user.xdg, "tcontainer-oci", cid))
    assert rootless_user.pids(grace=5.0) == []


def test_resource_limits_without_delegation_fail_clearly(rootless_user: RootlessUser) -> None:
    def limit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}}

    bundle = _bundle(rootless_user, ["true"], limit)
    cid = "rl-" + uuid.uuid4().hex[:8]
    r = rootless_user.oci("run", "--bundle", bundle, cid)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "cgroup" in err and "Traceback" not in err, err
    assert rootless_user.oci("state", cid).returncode != 0


def test_cannot_touch_host_files(rootless_user: RootlessUser, tmp_path: Any) -> None:
    """A host directory owned by root, bind-mounted in: root in the user namespace is the
    caller outside, so it cannot write there."""
    target = tempfile_dir(rootless_user)
    bundle = _bundle(
        rootless_user,
        ["sh", "-c", "echo pwned > /host/x 2>/dev/null; echo write=$?"],
        lambda cfg: cfg["mounts"].append(
            {"destination": "/host", "type": "bind", "source": target, "options": ["rbind", "rw"]}
        ),
    )
    r = rootless_user.oci("run", "--bundle", bundle, "rl-" + uuid.uuid4().hex[:8])
    assert r.returncode == 0, r.stderr
    assert _facts(r.stdout)["write"] != "0"
    assert os.listdir(target) == []


def tempfile_dir(user: RootlessUser) -> str:
    path = os.path.join(user.base, "root-owned-" + uuid.uuid4().hex[:6])
    os.mkdir(path, 0o755)
    return path
