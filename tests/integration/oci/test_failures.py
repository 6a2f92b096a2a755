"""Bad input gets one clear line and leaves nothing behind (the fixture checks mounts, cgroups,
processes and state dirs after every test)."""

from __future__ import annotations

import json
import os

from tests.helpers.oci import OCIRuntime, base_config


def _create_fails(rt: OCIRuntime, bundle: str) -> bytes:
    cid = rt.new_id()
    r = rt("create", "--bundle", bundle, cid, check=False)
    assert r.returncode != 0, "create should have failed"
    assert b"Traceback" not in r.stderr
    assert rt("state", cid, check=False).returncode != 0, "a failed create left state behind"
    return r.stderr


def _bundle_with(rt: OCIRuntime, raw: str) -> str:
    path = rt.bundle(["true"])
    with open(os.path.join(path, "config.json"), "w") as f:
        f.write(raw)
    return path


def test_malformed_json(oci_runtime: OCIRuntime) -> None:
    err = _create_fails(oci_runtime, _bundle_with(oci_runtime, "{not json"))
    assert err.count(b"\n") == 1


def test_wrong_type_names_the_field(oci_runtime: OCIRuntime) -> None:
    cfg = base_config(oci_runtime.rootfs, ["true"])
    cfg["process"]["user"]["uid"] = "root"
    err = _create_fails(oci_runtime, _bundle_with(oci_runtime, json.dumps(cfg)))
    if oci_runtime.name == "tcontainer-oci":
        assert b"process.user.uid" in err


def test_unknown_namespace(oci_runtime: OCIRuntime) -> None:
    cfg = base_config(oci_runtime.rootfs, ["true"])
    cfg["linux"]["namespaces"].append({"type": "bogus"})
    err = _create_fails(oci_runtime, _bundle_with(oci_runtime, json.dumps(cfg)))
    assert b"bogus" in err


def test_missing_rootfs(oci_runtime: OCIRuntime) -> None:
    cfg = base_config("/nonexistent/rootfs", ["true"])
    err = _create_fails(oci_runtime, _bundle_with(oci_runtime, json.dumps(cfg)))
    assert b"/nonexistent/rootfs" in err or b"no such file" in err.lower()


def test_missing_program(oci_runtime: OCIRuntime) -> None:
    _create_fails(oci_runtime, oci_runtime.bundle(["/no/such/program"]))


def test_mount_destination_escaping_the_rootfs(oci_runtime: OCIRuntime, tmp_path: object) -> None:
    cfg = base_config(oci_runtime.rootfs, ["true"])
    cfg["mounts"].append({"destination": "/../../../tmp/tc-escape", "type": "tmpfs", "source": "tmpfs"})
    if oci_runtime.name == "tcontainer-oci":
        _create_fails(oci_runtime, _bundle_with(oci_runtime, json.dumps(cfg)))
    else:
        r = oci_runtime.run_container(["true"], cfg)
        assert r.returncode == 0
    assert not os.path.exists("/tmp/tc-escape")


def test_config_not_an_object(oci_runtime: OCIRuntime) -> None:
    _create_fails(oci_runtime, _bundle_with(oci_runtime, "[1, 2, 3]"))


def test_hostname_without_uts_namespace(oci_runtime: OCIRuntime) -> None:
    cfg = base_config(oci_runtime.rootfs, ["true"])
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "uts"]
    _create_fails(oci_runtime, _bundle_with(oci_runtime, json.dumps(cfg)))
