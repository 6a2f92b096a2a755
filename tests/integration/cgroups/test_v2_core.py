"""The v2 driver's core (no controllers needed) on a real cgroup2 mount.

On this project's hybrid test machine the cgroup2 mount holds no usable controllers, but
cgroup.procs, cgroup.freeze, cgroup.events, cgroup.kill and BPF device filters work there;
on a v2-only host (the test VM) the same tests run against the main hierarchy. The cgroup is
made beneath our own v2 cgroup and no controller is enabled anywhere.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinycontainer import oci
from tinycontainer.linux import cgroups

from .conftest import Children

LAYOUT = cgroups.detect()
pytestmark = pytest.mark.skipif(LAYOUT.unified is None, reason="no cgroup2 mount")


@pytest.fixture
def v2(children: Children) -> Iterator[cgroups.V2Manager]:
    assert LAYOUT.unified is not None
    own = cgroups.membership().unified or "/"
    mgr = cgroups.V2Manager(
        f"{own.rstrip('/')}/tcontainer-it-{uuid.uuid4().hex[:12]}",
        LAYOUT.unified.mountpoint,
        mount_root=LAYOUT.unified.root,
    )
    mgr.create()
    yield mgr
    children.cleanup()
    mgr.destroy()
    assert not Path(mgr.dir).exists(), f"cgroup left behind: {mgr.dir}"


def _cpu_ticks(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_apply_and_membership(v2: cgroups.V2Manager, children: Children) -> None:
    proc = children.spawn("import time; time.sleep(30)")
    v2.apply(proc.pid)
    assert cgroups.membership(proc.pid).unified == v2.cgroup
    assert v2.pids() == [proc.pid]


def test_freeze_stops_a_busy_child(v2: cgroups.V2Manager, children: Children) -> None:
    proc = children.spawn("while True: pass")
    v2.apply(proc.pid)
    children.go(proc)
    time.sleep(0.1)
    v2.freeze()
    assert v2.frozen()
    before = _cpu_ticks(proc.pid)
    time.sleep(0.3)
    assert _cpu_ticks(proc.pid) == before
    v2.thaw()
    assert not v2.frozen()
    time.sleep(0.3)
    assert _cpu_ticks(proc.pid) > before


def test_kill_all_uses_cgroup_kill(v2: cgroups.V2Manager, children: Children) -> None:
    procs = [children.spawn("import time; time.sleep(30)") for _ in range(2)]
    for proc in procs:
        v2.apply(proc.pid)
    v2.kill_all(signal.SIGKILL)
    for proc in procs:
        proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL


def test_device_filter(v2: cgroups.V2Manager, children: Children) -> None:
    code = (
        "import os\n"
        "for dev in ('/dev/null', '/dev/zero', '/dev/full'):\n"
        "    try:\n"
        "        os.close(os.open(dev, os.O_RDWR)); print(dev, 'ok')\n"
        "    except PermissionError:\n"
        "        print(dev, 'denied')\n"
    )
    proc = children.spawn(code)
    v2.apply(proc.pid)
    rules = [oci.DeviceRule(allow=False, access="rwm"), *cgroups.DEFAULT_ALLOWED_DEVICES]
    rules.append(oci.DeviceRule(allow=False, type="c", major=1, minor=7, access="w"))  # /dev/full: no writes
    v2.set(oci.Resources(devices=[oci.DeviceRule(allow=False, access="rwm")]))
    v2.set(oci.Resources(devices=rules))  # an update replaces the first filter
    children.go(proc)
    out, _ = proc.communicate(timeout=30)
    assert out.decode().split("\n")[:3] == ["/dev/null ok", "/dev/zero ok", "/dev/full denied"]
