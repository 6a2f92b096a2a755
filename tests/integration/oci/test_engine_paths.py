"""The engine's two ways to start an init, seen from the caller's process.

``create`` with ``subreaper=True`` and no user/joined/time namespace forks the init itself
(unshare(CLONE_NEWPID), fork, setns back); otherwise an intermediate process forks it. Either
way the init moves itself into its cgroups through ``tasks`` files the runtime opened. These
run the library in a child interpreter: a subreaper flag or a namespace left behind must not
stay in the test process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests.helpers.oci import OCIRuntime, base_config

SCRIPT = r"""
import json, os, sys
from tinycontainer.runtime import Runtime

root, bundle, cid, subreaper = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
rt = Runtime(root)
c = rt.create(cid, bundle, subreaper=subreaper)
try:
    out = {
        "own_pidns": os.readlink("/proc/self/ns/pid"),
        "own_for_children": os.readlink("/proc/self/ns/pid_for_children"),
        "init_pidns": os.readlink(f"/proc/{c.pid}/ns/pid"),
        "init_ppid": int(open(f"/proc/{c.pid}/stat").read().rsplit(")", 1)[1].split()[1]),
        "init_cgroup": open(f"/proc/{c.pid}/cgroup").read(),
        "init_fds": [os.readlink(f"/proc/{c.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{c.pid}/fd")],
        "me": os.getpid(),
    }
    # A child forked after create lands in our own pid namespace, not the container's.
    pid = os.fork()
    if pid == 0:
        os._exit(0 if os.readlink("/proc/self/ns/pid") == out["own_pidns"] else 1)
    out["child_in_own_pidns"] = os.waitpid(pid, 0)[1] == 0
finally:
    c.delete(force=True)
    if subreaper:
        os.waitpid(c.pid, 0)
print(json.dumps(out))
"""


@pytest.mark.parametrize("subreaper", [True, False], ids=["direct", "intermediate"])
def test_init_starts_in_its_namespaces_and_cgroups(oci_runtime: OCIRuntime, subreaper: bool) -> None:
    bundle = oci_runtime.bundle(["true"], base_config(oci_runtime.rootfs, ["true"]))
    cid = oci_runtime.new_id()
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, oci_runtime.root, bundle, cid, "1" if subreaper else "0"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out = json.loads(proc.stdout)
    assert out["init_pidns"] != out["own_pidns"]
    # The caller's namespace for new children is its own again (setns back after the fork).
    assert out["own_for_children"] == out["own_pidns"]
    assert out["child_in_own_pidns"]
    if subreaper:
        assert out["init_ppid"] == out["me"]  # forked by the caller itself
    # In the container's cgroup in every v1 controller hierarchy.
    v1 = [ln for ln in out["init_cgroup"].splitlines() if ln.split(":")[1] and not ln.split(":")[1].startswith("name=")]
    assert v1 and all(ln.endswith(f"/tcontainer-{cid}") for ln in v1), v1
    # The tasks files the runtime opened for the move are not left open in the init.
    assert not [t for t in out["init_fds"] if t.endswith("/tasks")], out["init_fds"]
