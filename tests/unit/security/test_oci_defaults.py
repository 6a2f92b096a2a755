"""The default config: Docker's baseline, round-trips through config.json, cap tweaks."""

from __future__ import annotations

import json

from tinycontainer import oci
from tinycontainer.linux import caps, seccomp
from tinycontainer.oci._defaults import (
    DOCKER_CAPABILITIES,
    DOCKER_MASKED_PATHS,
    default_config,
    default_devices,
    default_seccomp,
    privileged,
    with_capabilities,
)


def test_round_trip() -> None:
    for kwargs in ({}, {"rootless": True, "host_uid": 1000, "host_gid": 1000}, {"terminal": True, "args": ["ls"]}):
        config = default_config(**kwargs)  # type: ignore[arg-type]
        assert oci.Config.from_dict(config.to_dict()) == config
        assert oci.Config.from_json(config.to_json()) == config
        json.dumps(config.to_dict())


def test_baseline() -> None:
    config = default_config()
    proc = config.process
    assert proc is not None and proc.capabilities is not None and config.linux is not None
    assert proc.args == ["sh"] and proc.terminal is False and proc.cwd == "/"
    assert proc.env == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]
    assert proc.no_new_privileges is True
    for name in ("bounding", "effective", "permitted"):
        assert caps.mask_from_names(getattr(proc.capabilities, name)) == 0xA80425FB
    assert proc.capabilities.inheritable == [] and proc.capabilities.ambient == []
    assert proc.rlimits == [oci.Rlimit(type="RLIMIT_NOFILE", hard=1024, soft=1024)]
    assert config.root == oci.Root(path="rootfs", readonly=False)
    assert [ns.type for ns in config.linux.namespaces or []] == ["pid", "network", "ipc", "uts", "mount"]
    assert config.linux.uid_mappings is None
    assert config.linux.resources is not None and config.linux.resources.pids == oci.Pids(limit=4096)
    assert config.linux.seccomp == default_seccomp()
    assert list(DOCKER_MASKED_PATHS) == (config.linux.masked_paths or [])[: len(DOCKER_MASKED_PATHS)]
    assert "/proc/kcore" in (config.linux.masked_paths or [])
    assert config.linux.readonly_paths == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    mounts = {m.destination: m for m in config.mounts}
    assert list(mounts) == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
    assert mounts["/dev/pts"].options == ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
    assert "size=65536k" in mounts["/dev/shm"].options and "mode=1777" in mounts["/dev/shm"].options
    assert "ro" in mounts["/sys"].options and "ro" in mounts["/sys/fs/cgroup"].options
    assert mounts["/sys/fs/cgroup"].type == "cgroup"


def test_rootless() -> None:
    config = default_config(rootless=True, host_uid=1234, host_gid=4321)
    assert config.linux is not None
    assert [ns.type for ns in config.linux.namespaces or []][-2:] == ["user", "cgroup"]
    assert config.linux.uid_mappings == [oci.IDMapping(container_id=0, host_id=1234, size=1)]
    assert config.linux.gid_mappings == [oci.IDMapping(container_id=0, host_id=4321, size=1)]
    assert config.linux.resources is None
    devpts = next(m for m in config.mounts if m.destination == "/dev/pts")
    assert not any(o.startswith("gid=") for o in devpts.options)


def test_default_devices() -> None:
    devices = {d.path: d for d in default_devices()}
    assert list(devices) == ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]
    assert (devices["/dev/null"].major, devices["/dev/null"].minor) == (1, 3)
    assert (devices["/dev/tty"].major, devices["/dev/tty"].minor) == (5, 0)
    assert all(d.type == "c" and d.file_mode == 0o666 for d in devices.values())


def _caps_of(config: oci.Config) -> list[str]:
    assert config.process is not None and config.process.capabilities is not None
    assert config.process.capabilities.bounding == config.process.capabilities.effective
    return config.process.capabilities.bounding or []


def test_with_capabilities() -> None:
    base = default_config()
    added = with_capabilities(base, add=["net_admin", "SYS_ADMIN"], drop=["cap_mknod"])
    names = _caps_of(added)
    assert "CAP_NET_ADMIN" in names and "CAP_SYS_ADMIN" in names and "CAP_MKNOD" not in names
    assert names == sorted(names, key=caps.CAP_NUMBERS.__getitem__)
    assert _caps_of(base) == list(DOCKER_CAPABILITIES)  # the input is not modified
    # the default profile follows: CAP_SYS_ADMIN allows mount
    assert added.linux is not None and added.linux.seccomp == default_seccomp(names)
    assert _caps_of(with_capabilities(base, drop=["ALL"], add=["chown"])) == ["CAP_CHOWN"]
    assert _caps_of(with_capabilities(base, add=["ALL"], drop=["sys_admin"])) == [
        c for c in caps.CAP_NUMBERS if c != "CAP_SYS_ADMIN"
    ]
    assert "CAP_KILL" in _caps_of(with_capabilities(base, add=["kill"], drop=["kill"]))


def test_with_capabilities_keeps_a_custom_profile() -> None:
    base = default_config()
    assert base.linux is not None
    custom = oci.Seccomp(default_action="SCMP_ACT_ALLOW")
    base.linux.seccomp = custom
    assert with_capabilities(base, add=["SYS_ADMIN"]).linux.seccomp == custom  # type: ignore[union-attr]


def test_privileged() -> None:
    config = privileged(default_config())
    assert caps.mask_from_names(_caps_of(config)) == caps.ALL_KNOWN_MASK
    assert config.linux is not None and config.linux.seccomp is None
    assert config.linux.masked_paths == [] and config.linux.readonly_paths == []
    assert config.linux.resources is not None
    assert config.linux.resources.devices == [oci.DeviceRule(allow=True, access="rwm")]
    sys_mount = next(m for m in config.mounts if m.destination == "/sys")
    assert "rw" in sys_mount.options and "ro" not in sys_mount.options


def test_default_config_compiles() -> None:
    config = default_config()
    assert config.linux is not None and config.linux.seccomp is not None
    compiled = seccomp.compile_filter(config.linux.seccomp)
    assert compiled.unknown_syscalls == () and compiled.flags == 0
