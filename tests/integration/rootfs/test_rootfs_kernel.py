"""prepare_rootfs / enter_rootfs / finalize_rootfs against the real kernel (root, private mount ns)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.rootfs._spec import runc_spec

from tinycontainer import oci
from tinycontainer.linux import LinuxSyscalls, rootfs

Isolated = Callable[..., Any]


def mountinfo() -> dict[str, tuple[str, set[str]]]:
    """mount point -> (fstype, per-mount options) of the calling process (last mount wins)."""
    result: dict[str, tuple[str, set[str]]] = {}
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            sep = fields.index("-", 6)
            result[fields[4]] = (fields[sep + 1], set(fields[5].split(",")))
    return result


def try_errno(action: Callable[[], object]) -> int:
    try:
        action()
    except OSError as exc:
        return exc.errno or -1
    return 0


def open_for_writing(path: str) -> int:
    """Open a file for writing and close it without writing: on a read-only mount the open itself
    fails with EROFS, and if a defence is broken nothing on the host changes."""
    os.close(os.open(path, os.O_WRONLY))
    return 0


def probe_cgroup_root() -> int:
    """v1: mkdir in the container's own tmpfs is harmless; v2: cgroupfs, so only open a file."""
    if mountinfo()["/sys/fs/cgroup"][0] == "tmpfs":
        os.mkdir("/sys/fs/cgroup/new")
        return 0
    return open_for_writing("/sys/fs/cgroup/cgroup.procs")


def run_busybox(argv: list[str]) -> tuple[int, str]:
    """fork+exec a program of the container (after pivot_root) and capture its stdout."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(write_end, 1)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.close(write_end)
    out = b""
    while chunk := os.read(read_end, 65536):
        out += chunk
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode()


def test_runc_default_config_end_to_end(bundle: Path, isolated: Isolated, tmp_path: Path) -> None:
    canary = tmp_path / "host-canary"
    canary.write_text("host")
    config = oci.Config.from_dict(runc_spec())

    def body() -> dict[str, Any]:
        sys = LinuxSyscalls()
        path = rootfs.prepare_rootfs(config, str(bundle), sys)
        rootfs.enter_rootfs(path, sys)
        rootfs.finalize_rootfs(config, sys)
        mounts = mountinfo()
        null = os.stat("/dev/null")
        with open("/proc/timer_list", "rb") as fh:
            timer_list = fh.read()
        rc, out = run_busybox(["/bin/sh", "-c", "echo hello >/dev/null && ls /dev && cat /proc/self/cgroup"])
        return {
            "returned": path,
            "cwd": os.getcwd(),
            "host_canary_visible": os.path.exists(str(canary)),
            "mounts": {k: [v[0], sorted(v[1])] for k, v in mounts.items()},
            "null": [stat.S_ISCHR(null.st_mode), os.major(null.st_rdev), os.minor(null.st_rdev), null.st_mode & 0o777],
            "ptmx": os.readlink("/dev/ptmx"),
            "fd": os.readlink("/dev/fd"),
            "stderr": os.readlink("/dev/stderr"),
            "timer_list": timer_list.decode(),
            "firmware": os.listdir("/sys/firmware"),
            "root_write": try_errno(lambda: open("/newfile", "w").close()),
            "proc_sys_write": try_errno(lambda: open_for_writing("/proc/sys/kernel/hostname")),
            # Never mkdir here: with the defence broken that would create a cgroup on the host.
            "cgroup_write": try_errno(lambda: open_for_writing("/sys/fs/cgroup/memory/cgroup.procs")),
            "cgroup_tmpfs_write": try_errno(probe_cgroup_root),
            "dev_write": try_errno(lambda: open("/dev/newfile", "w").close()),
            "busybox": [rc, out],
        }

    result = isolated(body)
    assert "ok" in result, result
    got = result["ok"]
    assert got["returned"] == os.path.realpath(bundle / "rootfs")
    assert got["cwd"] == "/"
    assert got["host_canary_visible"] is False
    mounts = got["mounts"]
    # The host tree is gone: every mount point is the container's.
    assert set(mounts) >= {"/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}
    assert not any(p.startswith(str(tmp_path)) for p in mounts)
    assert "ro" in mounts["/"][1]
    assert mounts["/proc"][0] == "proc"
    assert mounts["/dev"][0] == "tmpfs" and "nosuid" in mounts["/dev"][1]
    assert mounts["/dev/pts"][0] == "devpts" and {"nosuid", "noexec"} <= set(mounts["/dev/pts"][1])
    assert {"nosuid", "nodev", "noexec"} <= set(mounts["/dev/shm"][1])
    assert mounts["/sys"][0] == "sysfs" and "ro" in mounts["/sys"][1]
    assert "ro" in mounts["/sys/fs/cgroup"][1]
    cgroup_children = [p for p in mounts if p.startswith("/sys/fs/cgroup/")]
    assert cgroup_children, "no v1 hierarchy was bound"
    assert all("ro" in mounts[p][1] for p in cgroup_children)
    # runc's spec mounts /proc without options, so the read-only bind has only "ro" to add.
    assert mounts["/proc/sys"][0] == "proc" and "ro" in mounts["/proc/sys"][1]
    assert mounts["/sys/firmware"][0] == "tmpfs" and "ro" in mounts["/sys/firmware"][1]
    assert got["null"] == [True, 1, 3, 0o666]
    assert (got["ptmx"], got["fd"], got["stderr"]) == ("pts/ptmx", "/proc/self/fd", "/proc/self/fd/2")
    assert got["timer_list"] == "", "a masked file must read as /dev/null"
    assert got["firmware"] == []
    assert got["root_write"] == errno.EROFS
    assert got["proc_sys_write"] == errno.EROFS
    assert got["cgroup_write"] == errno.EROFS
    assert got["cgroup_tmpfs_write"] == errno.EROFS
    assert got["dev_write"] == 0, "/dev must stay writable (it was not asked to be read-only)"
    rc, out = got["busybox"]
    assert rc == 0
    assert {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue"} <= set(out.split())


def test_bind_mounts_ro_file_and_propagation(bundle: Path, isolated: Isolated, tmp_path: Path) -> None:
    source_dir = tmp_path / "volume"
    source_dir.mkdir()
    (source_dir / "data").write_text("volume")
    source_file = tmp_path / "hosts"
    source_file.write_text("127.0.0.1 localhost\n")
    spec = runc_spec()
    spec["root"]["readonly"] = False
    spec["mounts"] += [
        {"destination": "/mnt/vol", "type": "bind", "source": str(source_dir), "options": ["rbind", "ro", "nosuid"]},
        {"destination": "/etc/hosts", "type": "bind", "source": str(source_file), "options": ["bind", "rprivate"]},
        {"destination": "/new/dir/hosts", "source": "../rel-hosts", "options": ["bind", "ro"]},
        {"destination": "/run/ro-tmpfs", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]},
    ]
    (bundle.parent / "rel-hosts").write_text("relative source\n")
    config = oci.Config.from_dict(spec)

    def body() -> dict[str, Any]:
        sys = LinuxSyscalls()
        rootfs.enter_rootfs(rootfs.prepare_rootfs(config, str(bundle), sys), sys)
        rootfs.finalize_rootfs(config, sys)
        mounts = mountinfo()
        return {
            "vol": [sorted(mounts["/mnt/vol"][1]), open("/mnt/vol/data").read()],
            "vol_write": try_errno(lambda: open("/mnt/vol/x", "w").close()),
            "hosts": [sorted(mounts["/etc/hosts"][1]), open("/etc/hosts").read()],
            "relative": [sorted(mounts["/new/dir/hosts"][1]), open("/new/dir/hosts").read()],
            "tmpfs_ro": sorted(mounts["/run/ro-tmpfs"][1]),
        }

    got = isolated(body)["ok"]
    assert {"ro", "nosuid"} <= set(got["vol"][0]) and got["vol"][1] == "volume"
    assert got["vol_write"] == errno.EROFS
    assert "rw" in got["hosts"][0] and got["hosts"][1] == "127.0.0.1 localhost\n"
    assert "ro" in got["relative"][0] and got["relative"][1] == "relative source\n"
    assert "ro" in got["tmpfs_ro"]
    # Mount points were created inside the rootfs, on the host's disk (the empty file for a file bind).
    assert (bundle / "rootfs" / "new" / "dir" / "hosts").is_file()
    assert source_dir.joinpath("data").read_text() == "volume"


def test_console_and_extra_devices(bundle: Path, isolated: Isolated) -> None:
    spec = runc_spec(
        devices=[
            {"type": "c", "path": "/dev/net/tun", "major": 10, "minor": 200, "fileMode": 0o600, "uid": 0, "gid": 0},
            {"type": "p", "path": "/dev/myfifo", "fileMode": 0o640},
        ]
    )
    config = oci.Config.from_dict(spec)
    master, slave = os.openpty()
    console = os.ttyname(slave)

    def body() -> dict[str, Any]:
        sys = LinuxSyscalls()
        rootfs.enter_rootfs(rootfs.prepare_rootfs(config, str(bundle), sys, console_path=console), sys)
        rootfs.finalize_rootfs(config, sys)
        tun = os.stat("/dev/net/tun")
        fifo = os.stat("/dev/myfifo")
        cons = os.stat("/dev/console")
        return {
            "tun": [stat.S_ISCHR(tun.st_mode), os.major(tun.st_rdev), os.minor(tun.st_rdev), tun.st_mode & 0o7777],
            "fifo": [stat.S_ISFIFO(fifo.st_mode), fifo.st_mode & 0o7777],
            "console": [stat.S_ISCHR(cons.st_mode), cons.st_rdev],
        }

    try:
        got = isolated(body)["ok"]
        assert got["tun"] == [True, 10, 200, 0o600]
        assert got["fifo"] == [True, 0o640]
        assert got["console"] == [True, os.stat(console).st_rdev]
    finally:
        os.close(master)
        os.close(slave)


def test_sysctl_written_through_procfs(bundle: Path, isolated: Isolated) -> None:
    config = oci.Config.from_dict(runc_spec())

    def body() -> dict[str, Any]:
        sys = LinuxSyscalls()
        rootfs.enter_rootfs(rootfs.prepare_rootfs(config, str(bundle), sys), sys)
        # A new network namespace so the sysctl cannot touch the host's value.
        from tinycontainer.linux import _consts as C
        from tinycontainer.linux import _libc

        _libc.unshare(C.CLONE_NEWNET)
        rootfs.write_sysctls({"net.ipv4.ip_forward": "1"}, sys)
        with open("/proc/sys/net/ipv4/ip_forward") as fh:
            value = fh.read().strip()
        rootfs.finalize_rootfs(config, sys)
        try:
            rootfs.write_sysctls({"net.ipv4.ip_forward": "0"}, sys)
            late = "written"
        except Exception as exc:
            late = type(exc).__name__
        return {"value": value, "late": late}

    got = isolated(body)["ok"]
    assert got["value"] == "1"
    assert got["late"] == "SpecError", "after finalize /proc/sys is a separate read-only mount"


def test_no_pivot_moves_root_and_hides_host_mounts(bundle: Path, isolated: Isolated, tmp_path: Path) -> None:
    config = oci.Config.from_dict(runc_spec())

    def body() -> dict[str, Any]:
        sys = LinuxSyscalls()
        rootfs.enter_rootfs(rootfs.prepare_rootfs(config, str(bundle), sys), sys, no_pivot=True)
        rootfs.finalize_rootfs(config, sys)
        points = mountinfo()
        return {"cwd": os.getcwd(), "busybox": os.path.exists("/bin/busybox"), "points": sorted(points)}

    got = isolated(body)["ok"]
    assert got["cwd"] == "/" and got["busybox"]
    assert "/proc/sys" in got["points"]
