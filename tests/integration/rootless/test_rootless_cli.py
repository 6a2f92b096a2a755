"""``tcontainer run`` and ``tinycontainer.run`` as an ordinary user: the caller is root inside
(plus its /etc/subuid range), state lives under $XDG_RUNTIME_DIR and ~/.local/share, the
host's / is read-only in host-root mode, limits that cgroup v1 cannot give a user fail with
exit 125 instead of running unlimited. Images: test_rootless_image.py."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator

import pytest
from tests.integration.rootless.conftest import SUBID_COUNT, SYSTEM_PYTHON, RootlessUser

pytestmark = pytest.mark.rootless

RUN_FAILED = 125


def tcontainer(user: RootlessUser, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    r = user.run(SYSTEM_PYTHON, "-m", "tinycontainer", *args, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def _no_containers_left(user: RootlessUser) -> None:
    code, out, err = tcontainer(user, "ps", "-a", "-q")
    assert code == 0, err
    assert out.split() == []
    assert user.pids(grace=5.0) == []


def test_run_rootfs_is_root_inside_and_the_user_outside(rootless_user: RootlessUser) -> None:
    user = rootless_user
    script = "id -u; id -g; wc -l < /proc/self/uid_map; touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u:%g /tmp/f"
    code, out, err = tcontainer(user, "run", "--rm", "-fs", user.rootfs, "--", "sh", "-c", script)
    assert code == 0, err
    assert out.split() == ["0", "0", "2", "1000:1000"]  # caller -> 0, subuid range -> 1..N
    assert "without cgroup limits" in err and "Traceback" not in err, err

    name = "rl-" + uuid.uuid4().hex[:8]
    code, out, err = tcontainer(user, "run", "-d", "--name", name, "-fs", user.rootfs, "--", "sleep", "30")
    assert code == 0, err
    try:
        code, out, err = tcontainer(user, "inspect", name)
        assert code == 0, err
        pid = json.loads(out)[0]["pid"]
        # On the host the container's process belongs to the user, not to root.
        assert os.stat(f"/proc/{pid}").st_uid == user.uid
        with open(f"/proc/{pid}/status") as f:
            uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        assert uids == [str(user.uid)] * 4
        with open(f"/proc/{pid}/uid_map") as f:
            assert f.read().split() == ["0", str(user.uid), "1", "1", str(user.subid_start), str(SUBID_COUNT)]
        # Records in ~/.local/share, the engine's state in $XDG_RUNTIME_DIR, all the user's.
        records = os.path.join(user.home, ".local", "share", "tcontainer", "containers")
        assert len(os.listdir(records)) == 1 and os.stat(records).st_uid == user.uid
        engine = os.path.join(user.xdg, "tcontainer")
        assert os.path.isdir(engine) and os.stat(engine).st_uid == user.uid
    finally:
        tcontainer(user, "rm", "-f", name)
    _no_containers_left(user)


@pytest.fixture
def user_owned_dir(rootless_user: RootlessUser) -> Iterator[str]:
    """A directory the user may write on the host, outside /tmp, /run and /var/tmp (host-root
    mode gives the container private tmpfs mounts there)."""
    path = tempfile.mkdtemp(prefix="tc-rootless-canary-", dir="/srv" if os.path.isdir("/srv") else "/opt")
    try:
        os.chmod(path, 0o755)
        os.chown(path, rootless_user.uid, rootless_user.gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_detached_lifecycle(rootless_user: RootlessUser) -> None:
    """exec, stop and rm work without cgroups (the init is signalled; SIGKILL to a pid
    namespace's init ends all of it); pause, which needs the freezer, says why it cannot."""
    user = rootless_user
    name = "rl-" + uuid.uuid4().hex[:8]
    code, out, err = tcontainer(user, "run", "-d", "--name", name, "-fs", user.rootfs, "--", "sleep", "60")
    assert code == 0, err
    try:
        code, out, err = tcontainer(user, "exec", name, "id", "-u")
        assert (code, out.strip()) == (0, "0"), err
        code, out, err = tcontainer(user, "pause", name)
        assert code != 0 and "cannot be paused" in err and "Traceback" not in err, err
        code, out, err = tcontainer(user, "stop", "-t", "1", name)  # sleep as PID 1 ignores SIGTERM
        assert code == 0, err
        code, out, err = tcontainer(user, "inspect", name)
        assert json.loads(out)[0]["state"] == "exited", out
        assert user.pids(grace=5.0) == []
    finally:
        tcontainer(user, "rm", "-f", name)
    _no_containers_left(user)


def test_host_root_mode_is_read_only(rootless_user: RootlessUser, user_owned_dir: str) -> None:
    user = rootless_user
    # Writable for the user on the host, so only the read-only mount (not permissions) can
    # stop root-in-the-namespace here.
    canary = os.path.join(user_owned_dir, "canary")
    assert user.run("touch", canary + "-host").returncode == 0  # the host user can
    script = f"id -u; test -d {user_owned_dir} && echo seen; touch {canary}; echo write=$?; touch /tmp/x; echo tmp=$?"
    code, out, err = tcontainer(user, "run", "--rm", "--", "sh", "-c", script)
    assert code == 0, err
    words = out.split()
    assert words[:2] == ["0", "seen"], out
    assert words[2] != "write=0" and words[3] == "tmp=0", out
    assert "Read-only file system" in err, err
    assert not os.path.exists(canary)
    _no_containers_left(user)


def test_network_none_by_default_host_on_request(rootless_user: RootlessUser) -> None:
    user = rootless_user
    code, out, err = tcontainer(user, "run", "--rm", "-fs", user.rootfs, "--", "ls", "/sys/class/net")
    assert code == 0, err
    assert out.split() == ["lo"]
    code, out, err = tcontainer(user, "run", "--rm", "-net", "-fs", user.rootfs, "--", "ls", "/sys/class/net")
    assert code == 0, err
    assert sorted(out.split()) == sorted(os.listdir("/sys/class/net"))
    _no_containers_left(user)


@pytest.mark.parametrize("limit", [["-memlimit", "64m"], ["--memory", "64m"], ["--pids-limit", "64"], ["--cpus", "1"]])
def test_limits_that_cannot_be_enforced_fail(rootless_user: RootlessUser, limit: list[str]) -> None:
    user = rootless_user
    canary = os.path.join(user.home, "ran-" + uuid.uuid4().hex[:6])
    code, out, err = tcontainer(user, "run", *limit, "-fs", user.rootfs, "--", "touch", canary)
    assert code == RUN_FAILED, (out, err)
    assert "cannot be enforced as an ordinary user" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not os.path.exists(canary), "the container ran without the limit it asked for"
    _no_containers_left(user)


LIBRARY_SCRIPT = r"""
import json, sys
import tinycontainer
from tinycontainer import Spec

rootfs = sys.argv[1]
r = tinycontainer.run(["sh", "-c", "id -u; wc -l < /proc/self/uid_map; echo hi >&2"],
                      spec=Spec(rootfs=rootfs), capture_output=True, text=True, timeout=30)
out = {"returncode": r.returncode, "stdout": r.stdout, "stderr": r.stderr}
try:
    tinycontainer.run(["true"], spec=Spec(rootfs=rootfs, memory="64m"))
    out["limited"] = "ran"
except tinycontainer.TinyContainerError as exc:
    out["limited"] = type(exc).__name__ + ": " + str(exc)
with tinycontainer.start(Spec(rootfs=rootfs), ["sleep", "60"]) as c:
    out["exec"] = c.exec(["id", "-u"], text=True).stdout
    out["stopped"] = c.stop(timeout=1).returncode  # SIGKILL after the grace (PID 1 ignores TERM)
print(json.dumps(out))
"""


def test_library_run_as_user(rootless_user: RootlessUser) -> None:
    user = rootless_user
    r = user.run(SYSTEM_PYTHON, "-c", LIBRARY_SCRIPT, user.rootfs, timeout=60)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, err
    result = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert result["returncode"] == 0
    assert result["stdout"].split() == ["0", "2"]
    assert result["stderr"] == "hi\n"
    assert result["exec"] == "0\n" and result["stopped"] == -9, result
    assert result["limited"].startswith("UnsupportedError: resource limits (memory)"), result
    assert "without cgroup limits" in err, err  # the warning, through the logging module
    lib = os.path.join(user.xdg, "tcontainer", "lib")
    assert os.stat(lib).st_uid == user.uid
    for sub in ("bundles", "state"):
        assert os.listdir(os.path.join(lib, sub)) == [], "run() left its bundle or state behind"
    assert user.pids(grace=5.0) == []
