"""Regression tests for published container escapes, driven through ``tcontainer-oci``.

Each test names its CVE. Each was shown to fail once by breaking the defence it guards
(see docs/security.md, "Regression tests"): an escape test that cannot fail proves nothing.
"""

from __future__ import annotations

import fcntl
import os
import pty
import subprocess
import sys
import termios
import threading
import tty
from typing import Any

import pytest
from tests.helpers.oci import OCIRuntime
from tests.integration.security_oci._support import default_bundle, default_config, tree_snapshot


def _interpreter_identity() -> tuple[int, int]:
    """(st_dev, st_ino) of the interpreter that runs tcontainer-oci: what /proc/<pid>/exe of a
    runtime process inside the container points at."""
    st = os.stat(os.path.realpath(sys.executable))
    return st.st_dev, st.st_ino


def _parse(out: bytes) -> dict[str, str]:
    facts: dict[str, str] = {}
    for word in out.decode(errors="replace").split():
        key, sep, value = word.partition("=")
        if sep:
            facts[key] = value
    return facts


def _start_sleeper(rt: OCIRuntime, cfg: dict[str, Any] | None = None) -> str:
    cid = rt.new_id()
    bundle = rt.bundle(["sleep", "60"], cfg or default_config(rt.rootfs, ["sleep", "60"]))
    rt("create", "--bundle", bundle, cid)
    rt("start", cid)
    return cid


# ---------------------------------------------------------------- CVE-2019-5736


def test_cve_2019_5736_created_init_exe_not_openable(oci: OCIRuntime) -> None:
    """CVE-2019-5736: a container process opened the runtime's binary through /proc/<pid>/exe and
    later overwrote it. Our init runs the host's Python until execve; a container created but
    not started waits there (after its capabilities were dropped). Another container sharing
    its pid namespace (a pod) must not be able to open /proc/<init>/exe: the init is
    non-dumpable (PR_SET_DUMPABLE 0), so the kernel's ptrace access check refuses."""
    dev, ino = _interpreter_identity()
    pod = _start_sleeper(oci)
    pod_pid = oci.state(pod)["pid"]
    cfg = default_config(oci.rootfs, ["true"])
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "pid":
            ns["path"] = f"/proc/{pod_pid}/ns/pid"
    waiting = oci.new_id()
    oci("create", "--bundle", oci.bundle(["true"], cfg), waiting)
    assert oci.state(waiting)["status"] == "created"
    r = oci("exec", pod, "/bin/probe", "exe", str(dev), str(ino), "200", timeout=60)
    facts = _parse(r.stdout)
    assert facts["hits"] == "0", f"the host interpreter was opened from inside: {facts}"
    # The probe did see the waiting init (and was refused): the test observed the window.
    assert int(facts["denied"]) >= 1, facts


def test_cve_2019_5736_exec_tenant_exe_not_openable(oci: OCIRuntime) -> None:
    """CVE-2019-5736 through ``exec``: while tcontainer-oci exec sets a process up inside the
    container (Python until execve), a container process loops over /proc/*/exe. It must never
    open the host interpreter. Best effort: the window of one exec is short, so many execs run
    while the probe loops."""
    dev, ino = _interpreter_identity()
    cid = _start_sleeper(oci)
    probe_out: list[bytes] = []

    def probe() -> None:
        r = oci("exec", cid, "/bin/probe", "exe", str(dev), str(ino), "4000", timeout=60)
        probe_out.append(r.stdout)

    t = threading.Thread(target=probe)
    t.start()
    execs = 0
    while t.is_alive() and execs < 40:
        oci("exec", cid, "true", timeout=60)
        execs += 1
    t.join(60)
    facts = _parse(probe_out[0])
    assert facts["hits"] == "0", f"the host interpreter was opened from inside: {facts}"
    assert int(facts["rounds"]) > 10 and execs >= 3, (facts, execs)


# ---------------------------------------------------------------- CVE-2024-21626


def test_cve_2024_21626_no_runtime_fd_reaches_the_container(oci: OCIRuntime, tmp_path: Any) -> None:
    """CVE-2024-21626 ("Leaky Vessels"): runc leaked an fd of the host's /sys/fs/cgroup into the
    container. Here the caller also hands the runtime an inheritable directory fd: the
    container must see exactly fds 0, 1 and 2."""
    host_dir = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        bundle = default_bundle(oci, ["/bin/probe", "fds"])
        r = oci("run", "--bundle", bundle, oci.new_id(), pass_fds=(host_dir,), timeout=60)
    finally:
        os.close(host_dir)
    fds = sorted(int(line.split()[1]) for line in r.stdout.decode().splitlines() if line.startswith("fd "))
    assert fds == [0, 1, 2], r.stdout.decode()


def test_cve_2024_21626_cwd_through_proc_self_fd(oci: OCIRuntime, tmp_path: Any) -> None:
    """CVE-2024-21626: process.cwd = /proc/self/fd/N put the container's cwd on the host through
    a leaked directory fd. For N over the runtime's low fds (including one the caller passed
    in on purpose), the container must be refused or stay inside its root."""
    canary_dir = tmp_path / "host-side"
    canary_dir.mkdir()
    (canary_dir / "HOST-CANARY").write_text("host")
    before = tree_snapshot(str(tmp_path))
    host_dir = os.open(str(canary_dir), os.O_RDONLY | os.O_DIRECTORY)
    try:
        for n in sorted({*range(3, 10), host_dir}):
            cfg = default_config(oci.rootfs, ["sh", "-c", "pwd; ls -a; ls -a ..; ls -a ../../.."])
            cfg["process"]["cwd"] = f"/proc/self/fd/{n}"
            bundle = oci.bundle(None, cfg)
            r = oci("run", "--bundle", bundle, oci.new_id(), check=False, pass_fds=(host_dir,), timeout=60)
            assert b"HOST-CANARY" not in r.stdout + r.stderr, f"fd {n}: cwd reached the host"
            if r.returncode == 0:
                assert not r.stdout.startswith(b"/proc/self/fd"), r.stdout
            else:
                assert b"Traceback" not in r.stderr and r.stderr.strip(), r.stderr
    finally:
        os.close(host_dir)
    assert tree_snapshot(str(tmp_path)) == before


# ---------------------------------------------------------------- CVE-2021-30465 / CVE-2024-45310


def _trap_rootfs(rootfs: str, outside: str) -> None:
    """Symlinks in the rootfs that point out of it, absolute and with '..'."""
    depth = "../" * 12
    os.symlink(outside, os.path.join(rootfs, "abs"))
    os.symlink(depth + outside.lstrip("/"), os.path.join(rootfs, "rel"))
    os.makedirs(os.path.join(rootfs, "nest"))
    os.symlink("../rel", os.path.join(rootfs, "nest", "up"))


def test_cve_2021_30465_mount_targets_through_symlinks_stay_inside(
    oci: OCIRuntime, fresh_rootfs: str, tmp_path: Any
) -> None:
    """CVE-2021-30465 (symlink-exchange of mount targets) and CVE-2024-45310 (MkdirAll of
    mountpoints created files on the host): every mount destination is resolved inside the
    rootfs (openat2 RESOLVE_IN_ROOT), missing components are made with mkdirat relative to
    the root fd. The canary directory outside must not change, and no mount may land there."""
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "sentinel").write_text("untouched")
    _trap_rootfs(fresh_rootfs, str(canary))
    src = tmp_path / "bindsrc"
    src.mkdir()
    (src / "payload").write_text("from the bundle")
    before = tree_snapshot(str(canary))
    cfg = default_config(fresh_rootfs, ["sh", "-c", "ls /abs /rel /nest/up /abs/made/deep; cat /rel/b/payload"])
    # The deep destinations come first: their missing parents get created (mkdir) before any
    # mount could hide where they went.
    cfg["mounts"] += [
        {"destination": "/abs/made/deep", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/abs", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/rel/b", "type": "bind", "source": str(src), "options": ["rbind", "ro"]},
        {"destination": "/nest/up/c", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
    ]
    r = oci("run", "--bundle", oci.bundle(None, cfg), oci.new_id(), check=False, timeout=60)
    assert tree_snapshot(str(canary)) == before, "a mount target escaped the rootfs"
    with open("/proc/self/mountinfo") as f:
        assert str(canary) not in f.read()
    if r.returncode == 0:
        # Resolved in the root: the mounts exist inside the container, and the payload too.
        assert b"sentinel" not in r.stdout and b"from the bundle" in r.stdout, r.stdout
    else:
        assert b"Traceback" not in r.stderr and r.stderr.strip(), r.stderr


# ---------------------------------------------------------------- CVE-2019-16884 / CVE-2019-19921


@pytest.mark.parametrize("target", ["inside", "outside"])
def test_cve_2019_19921_proc_symlink_refused(oci: OCIRuntime, fresh_rootfs: str, tmp_path: Any, target: str) -> None:
    """CVE-2019-16884 / CVE-2019-19921: /proc in the image was a symlink (or raced into one), so
    runc mounted procfs elsewhere and wrote security attributes into a fake file. A /proc that
    is not a real procfs at /proc must be refused."""
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "sentinel").write_text("untouched")
    before = tree_snapshot(str(canary))
    os.rmdir(os.path.join(fresh_rootfs, "proc"))
    if target == "inside":
        os.makedirs(os.path.join(fresh_rootfs, "fakeproc", "self"))
        os.symlink("/fakeproc", os.path.join(fresh_rootfs, "proc"))
    else:
        os.symlink(str(canary), os.path.join(fresh_rootfs, "proc"))
    bundle = oci.bundle(None, default_config(fresh_rootfs, ["true"]))
    r = oci("run", "--bundle", bundle, oci.new_id(), check=False, timeout=60)
    assert r.returncode != 0, "a container with a symlinked /proc was started"
    assert b"/proc" in r.stderr and b"Traceback" not in r.stderr, r.stderr
    assert tree_snapshot(str(canary)) == before


# ---------------------------------------------------------------- CVE-2025-31133


@pytest.mark.parametrize("replacement", ["bind-file", "other-device"])
def test_cve_2025_31133_masking_uses_the_real_dev_null(oci: OCIRuntime, tmp_path: Any, replacement: str) -> None:
    """CVE-2025-31133: maskedPaths are bind mounts of /dev/null; when the container replaced
    /dev/null (a symlink, a file), runc bound that over procfs files instead. Here the config
    puts a regular file (a bind mount) or another device (linux.devices, char 1:5) at
    /dev/null: the runtime must refuse, or still mask with the real null device (char 1:3)."""
    fake = tmp_path / "fake-null"
    fake.write_text("NOT-NULL\n")
    script = "stat -c '%F %t:%T' /proc/timer_list; head -c 64 /proc/timer_list | wc -c"
    cfg = default_config(oci.rootfs, ["sh", "-c", script])
    if replacement == "bind-file":
        cfg["mounts"].append({"destination": "/dev/null", "type": "bind", "source": str(fake), "options": ["bind"]})
    else:
        cfg["linux"]["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666}]
    r = oci("run", "--bundle", oci.bundle(None, cfg), oci.new_id(), check=False, timeout=60)
    if r.returncode == 0:
        assert r.stdout.split(b"\n")[:2] == [b"character special file 1:3", b"0"], r.stdout
    else:
        assert b"/dev/null" in r.stderr and b"Traceback" not in r.stderr, r.stderr
    assert fake.read_text() == "NOT-NULL\n"


# ---------------------------------------------------------------- CVE-2017-5226 (TIOCSTI)


def test_cve_2017_5226_tiocsti_cannot_reach_the_callers_terminal(oci: OCIRuntime) -> None:
    """CVE-2017-5226: a sandboxed process on the caller's terminal pushed characters into its
    input queue with TIOCSTI, which the caller's shell then ran. The runtime runs here with a
    pty as its controlling terminal and stdin; the container process gets its own session
    (setsid), so TIOCSTI on the inherited fd 0 is refused and nothing reaches the queue."""
    legacy = "/proc/sys/dev/tty/legacy_tiocsti"
    if os.path.exists(legacy):
        with open(legacy) as f:
            if f.read().strip() == "0":
                pytest.skip("the kernel refuses TIOCSTI for everybody (dev.tty.legacy_tiocsti=0)")
    master, slave = pty.openpty()
    tty.setraw(slave)
    try:
        bundle = default_bundle(oci, ["/bin/probe", "tiocsti", "INJECTED"])

        def make_ctty() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        cmd = [*oci.command, "--root", oci.root, "run", "--bundle", bundle, oci.new_id()]
        with open(os.devnull, "wb") as null:
            proc = subprocess.run(
                cmd, stdin=slave, stdout=subprocess.PIPE, stderr=null, preexec_fn=make_ctty, timeout=60, check=False
            )
        assert proc.stdout.strip() == b"tiocsti=EPERM", proc.stdout
        os.set_blocking(slave, False)
        try:
            pending = os.read(slave, 4096)
        except BlockingIOError:
            pending = b""
        assert pending == b"", f"the container typed into the caller's terminal: {pending!r}"
    finally:
        os.close(slave)
        os.close(master)


def test_tiocsti_is_possible_without_setsid() -> None:
    """Control for the test above: the probe's TIOCSTI does work in the caller's own session,
    so the test above would see an injection if the runtime did not give the container a
    session of its own."""
    import shutil

    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed")
    legacy = "/proc/sys/dev/tty/legacy_tiocsti"
    if os.path.exists(legacy):
        with open(legacy) as f:
            if f.read().strip() == "0":
                pytest.skip("legacy_tiocsti=0")
    import tempfile

    from tests.integration.security_oci._support import compile_probe

    with tempfile.TemporaryDirectory() as d:
        probe = compile_probe(d)
        master, slave = pty.openpty()
        tty.setraw(slave)
        try:

            def make_ctty() -> None:
                os.setsid()
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

            r = subprocess.run(
                [probe, "tiocsti", "X"], stdin=slave, capture_output=True, preexec_fn=make_ctty, timeout=30, check=False
            )
            assert r.stdout.strip() == b"tiocsti=ok"
            assert os.read(slave, 16) == b"X"
        finally:
            os.close(slave)
            os.close(master)
