"""Spec: validation (SpecError names the field), sizes, OCI conversion, pickling, replace."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

import tinycontainer as tc
from tinycontainer import oci
from tinycontainer._spec import HOST_PRIVATE_DIRS, ImageDefaults, Spec
from tinycontainer.oci._defaults import DOCKER_CAPABILITIES

ROOTFS = "/srv/rootfs"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (1024, 1024),
        ("1024", 1024),
        ("512k", 512 << 10),
        ("64m", 64 << 20),
        ("64M", 64 << 20),
        ("64MiB", 64 << 20),
        ("64mb", 64 << 20),
        ("2g", 2 << 30),
        ("1.5g", 3 << 29),
        ("1t", 1 << 40),
        (-1, -1),
        ("-1", -1),
    ],
)
def test_parse_size(text: int | str, expected: int) -> None:
    assert tc.parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "m", "12x", "-5", "1.2.3m", True, -2, 3.5])
def test_parse_size_rejects(bad: object) -> None:
    with pytest.raises(tc.SpecError) as info:
        tc.parse_size(bad, "memory")  # type: ignore[arg-type]
    assert info.value.field == "memory"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"image": "alpine", "rootfs": ROOTFS}, "image"),
        ({"rootfs": "relative/path"}, "rootfs"),
        ({"rootfs": "/"}, "rootfs"),
        ({"command": "echo hi"}, "command"),
        ({"command": ["echo", 3]}, "command[1]"),
        ({"command": ["a\0b"]}, "command[0]"),
        ({"workdir": "tmp"}, "workdir"),
        ({"user": "a:b:c"}, "user"),
        ({"user": -1}, "user"),
        ({"hostname": "bad_host!"}, "hostname"),
        ({"memory": "5m"}, "memory"),
        ({"memory": "lots"}, "memory"),
        ({"memory_swap": "1g"}, "memory_swap"),
        ({"memory": "64m", "memory_swap": "32m"}, "memory_swap"),
        ({"cpus": 0}, "cpus"),
        ({"cpus": -1.0}, "cpus"),
        ({"cpus": float("nan")}, "cpus"),
        ({"cpuset": "0-a"}, "cpuset"),
        ({"cpu_shares": 1}, "cpu_shares"),
        ({"pids": 0}, "pids"),
        ({"cpu_time": 0}, "cpu_time"),
        ({"wall_time": -3}, "wall_time"),
        ({"network": "bad name"}, "network"),
        ({"cap_add": ["CAP_NOPE"]}, "cap_add"),
        ({"cap_drop": ["bogus"]}, "cap_drop"),
        ({"seccomp": "relative.json"}, "seccomp"),
        ({"privileged": True}, "privileged"),
        ({"tty": "yes"}, "tty"),
        ({"env": {"A=B": "x"}}, "env.A=B"),
        ({"env": {"A": 1}}, "env"),
        ({"env": ["NOEQUALS"]}, "env"),
        ({"ulimits": {"nofile": (10, 5)}}, "ulimits.nofile"),
        ({"ulimits": {"bogus": 5}}, "ulimits.bogus"),
        ({"ulimits": {"cpu": 5}, "cpu_time": 3}, "ulimits.cpu"),
        ({"stop_signal": "SIGNOPE"}, "stop_signal"),
        ({"stop_timeout": -1}, "stop_timeout"),
        ({"mounts": ["/data"]}, "mounts[0]"),
    ],
)
def test_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(tc.SpecError) as info:
        Spec(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"target": "data"}, "mounts['data'].target"),
        ({"target": "/"}, "mounts['/'].target"),
        ({"target": "/a/../b", "source": "/x"}, "mounts['/a/../b'].target"),
        ({"target": "/d"}, "mounts['/d'].source"),
        ({"target": "/d", "source": "rel"}, "mounts['/d'].source"),
        ({"target": "/d", "type": "tmpfs", "source": "/x"}, "mounts['/d'].source"),
        ({"target": "/d", "type": "volume", "source": "../x"}, "mounts['/d'].source"),
        ({"target": "/d", "type": "nfs"}, "mounts['/d'].type"),
        ({"target": "/d", "source": "/x", "size": "1m"}, "mounts['/d'].size"),
        ({"target": "/d", "type": "tmpfs", "options": ("a,b",)}, "mounts['/d'].options"),
    ],
)
def test_mount_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(tc.SpecError) as info:
        tc.Mount(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_duplicate_mount_targets() -> None:
    with pytest.raises(tc.SpecError) as info:
        Spec(mounts=[tc.Mount(target="/d", type="tmpfs"), tc.Mount(target="/d/", type="tmpfs")])
    assert info.value.field == "mounts[1].target"


def _spec() -> Spec:
    return Spec(
        rootfs=ROOTFS,
        memory="64m",
        cpus=1.5,
        pids=256,
        env={"A": "1"},
        mounts=[
            tc.Mount(target="/data", source="/srv/data", read_only=True),
            tc.Mount(target="/scratch", type="tmpfs", size="16m"),
        ],
        cap_drop=["NET_RAW"],
        cap_add=["sys_ptrace"],
        cpu_time=2.5,
        wall_time=9.5,
        ulimits={"nofile": (100, 200)},
        labels={"team": "x"},
        annotations={"note": "y"},
        hostname="box",
        user="1000:1000",
        workdir="/work",
        command=["sh", "-c", "true"],
    )


def test_frozen_hashable_picklable_and_replace() -> None:
    spec = _spec()
    with pytest.raises(AttributeError):
        spec.memory = "1g"  # type: ignore[misc]
    assert hash(spec) == hash(_spec())
    clone = pickle.loads(pickle.dumps(spec))
    assert clone == spec and hash(clone) == hash(spec)
    changed = spec.replace(memory="128m")
    assert changed.memory_bytes == 128 << 20 and spec.memory_bytes == 64 << 20
    with pytest.raises(tc.SpecError) as info:
        spec.replace(memroy="1g")
    assert info.value.field == "memroy"
    with pytest.raises(tc.SpecError):
        spec.replace(cpus=0)


def test_to_oci_config_limits_and_process() -> None:
    config = _spec().to_oci_config()
    assert config.root is not None and config.root.path == ROOTFS and not config.root.readonly
    res = config.linux.resources  # type: ignore[union-attr]
    assert res is not None and res.memory is not None and res.cpu is not None and res.pids is not None
    assert res.memory.limit == 64 << 20
    assert res.memory.swap == 64 << 20  # no swap unless asked for
    assert (res.cpu.quota, res.cpu.period) == (150_000, 100_000)
    assert res.pids.limit == 256
    proc = config.process
    assert proc is not None
    assert proc.args == ["sh", "-c", "true"]
    assert (proc.user.uid, proc.user.gid) == (1000, 1000)
    assert proc.cwd == "/work"
    assert proc.no_new_privileges
    rl = {r.type: (r.soft, r.hard) for r in proc.rlimits or []}
    assert rl["RLIMIT_NOFILE"] == (100, 200)
    assert rl["RLIMIT_CPU"] == (3, 4)
    assert config.hostname == "box"
    assert config.annotations == {
        "note": "y",
        "org.tinycontainer.label.team": "x",
        "org.tinycontainer.cpu-time": "2.5",
        "org.tinycontainer.wall-time": "9.5",
    }


def test_environment_has_nothing_from_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "leak")
    env = _spec().to_oci_config().process.env  # type: ignore[union-attr]
    assert env is not None
    assert not any("SECRET_TOKEN" in e for e in env)
    keys = [e.split("=", 1)[0] for e in env]
    assert keys == ["PATH", "HOME", "A"]


def test_capabilities_follow_docker_plus_changes() -> None:
    caps = _spec().to_oci_config().process.capabilities  # type: ignore[union-attr]
    assert caps is not None and caps.bounding is not None
    expected = (set(DOCKER_CAPABILITIES) - {"CAP_NET_RAW"}) | {"CAP_SYS_PTRACE"}
    assert set(caps.bounding) == expected
    assert set(caps.effective or []) == expected
    default = Spec(rootfs=ROOTFS, command=["true"]).to_oci_config()
    assert set(default.process.capabilities.bounding or []) == set(DOCKER_CAPABILITIES)  # type: ignore[union-attr]
    assert default.linux.seccomp is not None  # type: ignore[union-attr]


def test_privileged_and_unconfined() -> None:
    priv = Spec(rootfs=ROOTFS, command=["true"], privileged=True).to_oci_config()
    assert priv.linux.seccomp is None and not priv.linux.masked_paths  # type: ignore[union-attr]
    assert "CAP_SYS_ADMIN" in (priv.process.capabilities.bounding or [])  # type: ignore[union-attr]
    unconfined = Spec(rootfs=ROOTFS, command=["true"], seccomp="unconfined").to_oci_config()
    assert unconfined.linux.seccomp is None  # type: ignore[union-attr]
    assert unconfined.linux.masked_paths  # type: ignore[union-attr]


def test_mounts_conversion() -> None:
    mounts = {m.destination: m for m in _spec().to_oci_config(volume_root="/vols").mounts}
    data = mounts["/data"]
    assert data.type == "bind" and data.source == "/srv/data" and "ro" in data.options and "rbind" in data.options
    scratch = mounts["/scratch"]
    assert scratch.type == "tmpfs" and f"size={16 << 20}" in scratch.options and "nosuid" in scratch.options
    vol = Spec(rootfs=ROOTFS, command=["true"], mounts=[tc.Mount(target="/v", type="volume", source="cache")])
    (converted,) = [m for m in vol.to_oci_config(volume_root="/vols").mounts if m.destination == "/v"]
    assert converted.source == "/vols/cache/_data" and "rw" in converted.options
    # A spec mount replaces a default one at the same place.
    shm = Spec(rootfs=ROOTFS, command=["true"], mounts=[tc.Mount(target="/dev/shm", type="tmpfs", size="1g")])
    shms = [m for m in shm.to_oci_config().mounts if m.destination == "/dev/shm"]
    assert len(shms) == 1 and f"size={1 << 30}" in shms[0].options


def test_network_modes() -> None:
    def netns(spec: Spec, **kw: object) -> list[oci.Namespace]:
        return [ns for ns in spec.to_oci_config(**kw).linux.namespaces or [] if ns.type == "network"]  # type: ignore

    base = Spec(rootfs=ROOTFS, command=["true"])
    assert netns(base) == [oci.Namespace(type="network")]
    assert netns(base.replace(network="host")) == []
    with pytest.raises(tc.UnsupportedError):
        netns(base.replace(network="mybridge"))
    assert netns(base.replace(network="mybridge"), network_namespace="/run/netns/x") == [
        oci.Namespace(type="network", path="/run/netns/x")
    ]


def test_host_root_mode() -> None:
    config = Spec(command=["true"]).to_oci_config()
    assert config.root is not None and config.root.path == "/" and config.root.readonly
    tmpfs = {m.destination for m in config.mounts if m.type == "tmpfs"}
    assert set(HOST_PRIVATE_DIRS) <= tmpfs
    assert {"/proc", "/dev"} <= {m.destination for m in config.mounts}


def test_image_defaults_follow_docker_rules() -> None:
    image = ImageDefaults(entrypoint=("/entry",), command=("serve",), env=("LANG=C.UTF-8", "A=image"),
                          workdir="/app", user="")
    spec = Spec(rootfs=ROOTFS, env={"A": "spec"})
    config = spec.to_oci_config(image=image)
    assert config.process.args == ["/entry", "serve"]  # type: ignore[union-attr]
    assert config.process.cwd == "/app"  # type: ignore[union-attr]
    assert "A=spec" in (config.process.env or []) and "LANG=C.UTF-8" in (config.process.env or [])  # type: ignore
    assert spec.to_oci_config(image=image, args=["x"]).process.args == ["/entry", "x"]  # type: ignore[union-attr]
    with pytest.raises(tc.SpecError) as info:
        spec.replace(entrypoint=()).to_oci_config(image=image)
    assert info.value.field == "command"
    assert spec.replace(entrypoint=["/bin/sh"]).to_oci_config(image=image).process.args == ["/bin/sh"]  # type: ignore


def test_user_names_need_a_resolver() -> None:
    spec = Spec(rootfs=ROOTFS, command=["true"], user="nobody")
    with pytest.raises(tc.SpecError) as info:
        spec.to_oci_config()
    assert info.value.field == "user"
    config = spec.to_oci_config(resolve_user=lambda text: (65534, 65534, (), "/nonexistent"))
    assert (config.process.user.uid, config.process.user.gid) == (65534, 65534)  # type: ignore[union-attr]
    assert "HOME=/nonexistent" in (config.process.env or [])  # type: ignore[union-attr]


def test_from_oci_config_round_trip() -> None:
    spec = _spec()
    back = Spec.from_oci_config(spec.to_oci_config(volume_root="/vols"), volume_root="/vols")
    for name in ("rootfs", "memory", "cpus", "pids", "env", "mounts", "hostname", "workdir", "cpu_time",
                 "labels", "annotations", "ulimits", "command", "network", "wall_time"):
        left, right = getattr(back, name), getattr(spec, name)
        if name == "memory":
            right = spec.memory_bytes
        assert left == right, name
    assert set(back.cap_add) == {"CAP_SYS_PTRACE"} and set(back.cap_drop) == {"CAP_NET_RAW"}
    assert back.user == "1000:1000"
    # And once more: a second round trip is stable.
    assert Spec.from_oci_config(back.to_oci_config(volume_root="/vols"), volume_root="/vols") == back


def test_import_is_lazy() -> None:
    code = (
        "import sys, tinycontainer as tc; "
        "assert not [m for m in sys.modules if m.startswith('tinycontainer.')], sorted(sys.modules); "
        "tc.Spec; assert 'tinycontainer._spec' in sys.modules; "
        "assert tc.Spec.__module__ == 'tinycontainer'; "
        "assert tc.__all__ == sorted(tc.__all__); "
        "[getattr(tc, n) for n in tc.__all__]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
