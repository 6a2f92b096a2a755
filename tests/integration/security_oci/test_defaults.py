"""What a process sees inside a container made from the ``tcontainer-oci spec`` defaults: Docker's
14 capabilities, no_new_privs, a seccomp filter, no mount/unshare/keyctl, masked and read-only
kernel interfaces. Each line of the probe script is one "name=value" fact."""

from __future__ import annotations

import pytest
from tests.helpers.oci import OCIRuntime
from tests.integration.security_oci._support import default_bundle

DOCKER_CAP_MASK = "00000000a80425fb"

PROBE_SCRIPT = r"""
status() { grep "^$1:" /proc/self/status | tr -d ' \t' | cut -d: -f2; }
echo "capeff=$(status CapEff)"
echo "capprm=$(status CapPrm)"
echo "capbnd=$(status CapBnd)"
echo "capinh=$(status CapInh)"
echo "capamb=$(status CapAmb)"
echo "nnp=$(status NoNewPrivs)"
echo "seccomp=$(status Seccomp)"
unshare -m true 2>/dev/null; echo "unshare_mnt=$?"
unshare -U true 2>/dev/null; echo "unshare_user=$?"
mkdir -p /tmp/m; mount -t tmpfs none /tmp/m 2>/dev/null; echo "mount=$?"
/bin/probe keyctl
echo "timer_list_bytes=$(cat /proc/timer_list 2>/dev/null | wc -c)"
echo "timer_list_rdev=$(stat -c '%t:%T' /proc/timer_list)"
echo "kcore=$(test -e /proc/kcore && stat -c '%t:%T' /proc/kcore || echo absent)"
echo "keys_bytes=$(cat /proc/keys 2>/dev/null | wc -c)"
echo "firmware=$(ls -A /sys/firmware 2>/dev/null | wc -l)"
(echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null; echo "proc_sys_write=$?"
(echo c > /proc/sysrq-trigger) 2>/dev/null; echo "sysrq_write=$?"
touch /sys/tc-probe 2>/dev/null; echo "sys_write=$?"
echo "sys_ro=$(grep ' /sys ' /proc/self/mounts | grep -c '[ ,]ro[ ,]')"
touch /sys/fs/cgroup/tc-probe 2>/dev/null; echo "cgroup_write=$?"
mkdir /sys/fs/cgroup/pids/tc-probe 2>/dev/null; echo "cgroup_mkdir=$?"
echo "cgroup_rw_mounts=$(grep ' /sys/fs/cgroup' /proc/self/mounts | grep -vc '[ ,]ro[ ,]')"
echo "dev_null=$(stat -c '%F %t:%T' /dev/null | tr ' ' _)"
echo "hostname=$(hostname)"
echo "sid=$(cut -d' ' -f6 /proc/self/stat) pid=$$"
"""


def _facts(out: bytes) -> dict[str, str]:
    facts = {}
    for line in out.decode().splitlines():
        for word in line.split():
            key, sep, value = word.partition("=")
            if sep:
                facts[key] = value
    return facts


@pytest.fixture
def facts(oci: OCIRuntime) -> dict[str, str]:
    bundle = default_bundle(oci, ["sh", "-c", PROBE_SCRIPT])
    r = oci("run", "--bundle", bundle, oci.new_id(), check=False, timeout=60)
    assert r.returncode == 0, r.stderr
    return _facts(r.stdout)


def test_capabilities_are_dockers_14(facts: dict[str, str]) -> None:
    assert facts["capeff"] == DOCKER_CAP_MASK
    assert facts["capprm"] == DOCKER_CAP_MASK
    assert facts["capbnd"] == DOCKER_CAP_MASK
    # CVE-2022-29162 and siblings: inheritable/ambient must stay empty.
    assert facts["capinh"] == "0000000000000000"
    assert facts["capamb"] == "0000000000000000"


def test_no_new_privs_and_seccomp_filter(facts: dict[str, str]) -> None:
    assert facts["nnp"] == "1"
    assert facts["seccomp"] == "2"


def test_namespace_and_mount_syscalls_denied(facts: dict[str, str]) -> None:
    assert facts["unshare_mnt"] != "0"
    assert facts["unshare_user"] != "0"
    assert facts["mount"] != "0"
    assert facts["keyctl"] == "EPERM"


def test_kernel_interfaces_masked(facts: dict[str, str]) -> None:
    assert facts["timer_list_bytes"] == "0"
    assert facts["timer_list_rdev"] == "1:3"  # /dev/null bound over it
    assert facts["kcore"] in ("absent", "1:3")
    assert facts["keys_bytes"] == "0"
    assert facts["firmware"] == "0"


def test_proc_sys_and_sysrq_read_only(facts: dict[str, str]) -> None:
    assert facts["proc_sys_write"] != "0"
    assert facts["sysrq_write"] != "0"


def test_sysfs_and_cgroupfs_read_only(facts: dict[str, str]) -> None:
    assert facts["sys_write"] != "0"
    assert facts["sys_ro"] == "1"
    assert facts["cgroup_write"] != "0"
    assert facts["cgroup_mkdir"] != "0"
    assert facts["cgroup_rw_mounts"] == "0"


def test_dev_null_is_the_null_device(facts: dict[str, str]) -> None:
    assert facts["dev_null"] == "character_special_file_1:3"


def test_container_process_leads_its_own_session(facts: dict[str, str]) -> None:
    sid, pid = facts["sid"], facts["pid"]
    # `sh` is pid 1 and, after the runtime's setsid(2), the leader of its own session.
    assert pid == "1"
    assert sid == "1"
