"""The v1 driver against this machine's real v1 hierarchies (root needed)."""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tinycontainer import oci
from tinycontainer.linux import cgroups

from .conftest import Children

pytestmark = pytest.mark.skipif(cgroups.detect().version != "v1", reason="needs a cgroup v1 host")

M = 1 << 20
Make = Callable[..., cgroups.CgroupManager]


def _state(pid: int) -> str:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2]


def _started(mgr: cgroups.CgroupManager, children: Children, code: str, resources: oci.Resources | None = None):  # type: ignore[no-untyped-def]
    proc = children.spawn(code)
    mgr.apply(proc.pid)
    if resources is not None:
        mgr.set(resources)
    return proc


def test_create_apply_moves_a_child_into_every_hierarchy(new_manager: Make, children: Children) -> None:
    mgr = new_manager()
    mgr.create()
    for path in mgr.paths().values():
        assert os.path.isdir(path)
    proc = _started(mgr, children, "import time; time.sleep(30)")
    member = cgroups.membership(proc.pid)
    own = cgroups.membership()
    for controller, path in mgr.paths().items():
        # The kernel's own view agrees with the directory the manager chose.
        assert path.endswith(member.v1[controller])
        assert member.v1[controller] == f"{own.v1.get(controller, '/').rstrip('/')}/{Path(path).name}"
    assert mgr.pids() == [proc.pid]


def test_memory_limit_oom_kills_a_big_allocation(new_manager: Make, children: Children) -> None:
    mgr = new_manager()
    mgr.create()
    proc = _started(
        mgr,
        children,
        "b = bytearray(200 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('survived')",
        oci.Resources(memory=oci.Memory(limit=50 * M, swap=50 * M)),
    )
    children.go(proc)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, out
    stats = mgr.stats()
    assert stats.oom_kills is not None and stats.oom_kills >= 1
    assert stats.memory_limit == 50 * M


def test_pids_max_refuses_forks(new_manager: Make, children: Children) -> None:
    mgr = new_manager()
    mgr.create()
    code = (
        "import os\n"
        "try:\n"
        "    pid = os.fork()\n"
        "except BlockingIOError:\n"
        "    print('refused')\n"
        "else:\n"
        "    if pid == 0: os._exit(0)\n"
        "    os.waitpid(pid, 0); print('forked')\n"
    )
    proc = _started(mgr, children, code, oci.Resources(pids=oci.Pids(limit=1)))
    assert mgr.stats().pids_limit == 1
    children.go(proc)
    out, err = proc.communicate(timeout=30)
    assert out.decode().strip() == "refused", err


def test_cpuset_pins_to_cpu0(new_manager: Make, children: Children) -> None:
    if os.cpu_count() == 1:
        pytest.skip("one CPU: pinning is not observable")
    mgr = new_manager()
    mgr.create()
    proc = _started(mgr, children, "import time; time.sleep(30)")
    assert len(os.sched_getaffinity(proc.pid)) > 1
    mgr.set(oci.Resources(cpu=oci.CPU(cpus="0")))
    assert os.sched_getaffinity(proc.pid) == {0}


def test_freeze_and_thaw_change_the_childs_state(new_manager: Make, children: Children) -> None:
    mgr = new_manager()
    mgr.create()
    proc = _started(mgr, children, "import time; time.sleep(30)")
    deadline = time.monotonic() + 10
    while _state(proc.pid) != "S" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _state(proc.pid) == "S"
    mgr.freeze()
    assert mgr.frozen()
    # The v1 freezer parks tasks in an uninterruptible sleep ("D").
    assert _state(proc.pid) == "D"
    mgr.thaw()
    assert not mgr.frozen()
    deadline = time.monotonic() + 5
    while _state(proc.pid) != "S" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _state(proc.pid) == "S"


def test_stats_count_cpu_time(new_manager: Make, children: Children) -> None:
    mgr = new_manager()
    mgr.create()
    before = mgr.stats()
    proc = _started(mgr, children, "import time\nend = time.monotonic() + 0.3\nwhile time.monotonic() < end: pass")
    children.go(proc)
    proc.communicate(timeout=30)
    after = mgr.stats()
    assert before.cpu_usage_ns == 0
    assert after.cpu_usage_ns is not None and after.cpu_usage_ns >= 200_000_000
    assert after.cpu_user_ns is not None and after.cpu_user_ns > 0


def test_devices_deny(new_manager: Make, children: Children) -> None:
    mgr = new_manager()
    mgr.create()
    rules = [oci.DeviceRule(allow=False, access="rwm"), *cgroups.DEFAULT_ALLOWED_DEVICES]
    rules.append(oci.DeviceRule(allow=False, type="c", major=1, minor=5, access="rwm"))  # /dev/zero
    code = (
        "import os\n"
        "for dev in ('/dev/null', '/dev/zero'):\n"
        "    try:\n"
        "        os.close(os.open(dev, os.O_RDONLY)); print(dev, 'ok')\n"
        "    except PermissionError:\n"
        "        print(dev, 'denied')\n"
    )
    proc = _started(mgr, children, code, oci.Resources(devices=rules))
    children.go(proc)
    out, err = proc.communicate(timeout=30)
    assert out.decode().split("\n")[:2] == ["/dev/null ok", "/dev/zero denied"], err


def test_kill_all_signals_every_process(new_manager: Make, children: Children) -> None:
    mgr = new_manager()
    mgr.create()
    procs = [_started(mgr, children, "import time; time.sleep(30)") for _ in range(2)]
    mgr.kill_all(signal.SIGKILL)
    for proc in procs:
        proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
    assert not mgr.frozen()


def test_destroy_removes_created_parents_and_is_idempotent(new_manager: Make, children: Children) -> None:
    mgr = new_manager("tc-it-parent/child")
    mgr.create()
    parents = {str(Path(p).parent) for p in mgr.paths().values()}
    proc = _started(mgr, children, "import time; time.sleep(30)")
    proc.kill()
    proc.communicate(timeout=10)
    mgr.destroy()
    mgr.destroy()
    for path in [*mgr.paths().values(), *parents]:
        assert not os.path.exists(path)


def test_destroy_with_a_live_process_fails_and_keeps_the_cgroup(new_manager: Make, children: Children) -> None:
    mgr = new_manager()
    mgr.create()
    _started(mgr, children, "import time; time.sleep(30)")
    with pytest.raises(OSError) as info:
        mgr.destroy()
    assert info.value.errno == errno.EBUSY
    assert all(os.path.isdir(p) for p in mgr.paths().values())


@pytest.mark.parametrize("userns", [False, True], ids=["same-creds", "in-a-user-namespace"])
def test_a_child_moves_itself_through_tasks_files_its_parent_opened(new_manager: Make, userns: bool) -> None:
    """The container init's way in: "0" written to ``tasks`` moves the writer, and the kernel
    checks the opener's credentials, so it works from a new user namespace too."""
    from tinycontainer.linux import _consts as C
    from tinycontainer.linux import _libc

    mgr = new_manager()
    mgr.create()
    paths = mgr.self_attach_paths()
    assert paths is not None
    fds = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in paths]
    moved_r, moved_w = os.pipe()  # child -> parent: done (or failed)
    done_r, done_w = os.pipe()  # parent -> child: looked, you may exit
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            if userns:
                _libc.unshare(C.CLONE_NEWUSER)
            for fd in fds:
                os.write(fd, b"0")
            code = 0
        finally:
            os.write(moved_w, b"x")
            os.read(done_r, 1)  # stay alive until the parent has looked
            os._exit(code)
    try:
        assert os.read(moved_r, 1) == b"x"
        mgr.verify(pid)  # raises unless in every hierarchy
        assert pid in mgr.pids()
    finally:
        for fd in fds:
            os.close(fd)
        os.write(done_w, b"x")
        _, status = os.waitpid(pid, 0)
        for fd in (moved_r, moved_w, done_r, done_w):
            os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
