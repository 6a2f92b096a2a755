"""Run the cgroup v2 tests (tests/cgroupv2) inside a cgroup v2-only VM and report their result here.

The host keeps its cgroup v1 layout; the VM (tests/vm) boots Debian's generic kernel with
cgroup_no_v1=all over the host's root filesystem, read-only with a tmpfs overlay. Missing qemu,
busybox-static or kernel package is a skip locally and a failure with CI=1 or TC_REQUIRE_VM=1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from vm.harness import GUEST_ENV_FLAG, VMBootError, VMRun, VMUnavailable, prepare, run_pytest_in_vm, vm_required  # noqa: E402

pytestmark = pytest.mark.slow

# The guest's own pytest run; the boot (~3-7 s, one retry at most) comes on top.
GUEST_TIMEOUT_S = 240.0


@pytest.fixture(scope="session")
def cgroupv2_vm_run(request: pytest.FixtureRequest) -> VMRun:
    if os.environ.get(GUEST_ENV_FLAG) == "1":
        pytest.skip("already inside the test VM")
    try:
        prepared = prepare()
    except VMUnavailable as exc:
        message = f"cannot run the cgroup v2 test VM: {exc}"
        if vm_required():
            pytest.fail(message + " (required because CI=1 or TC_REQUIRE_VM=1)", pytrace=False)
        pytest.skip(message)
    try:
        run = run_pytest_in_vm(prepared=prepared, timeout=GUEST_TIMEOUT_S)
    except VMBootError as exc:
        pytest.fail(f"the cgroup v2 test VM failed: {exc}", pytrace=False)
    # Shown even with output capture on: the VM's cost is worth seeing in every CI log.
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{run.timing()}")
    return run


@pytest.mark.timeout(GUEST_TIMEOUT_S + 300)
def test_cgroupv2_tests_pass_inside_the_vm(cgroupv2_vm_run: VMRun) -> None:
    run = cgroupv2_vm_run
    if run.exit_code != 0:
        pytest.fail(
            f"pytest -m cgroupv2 tests/cgroupv2 failed inside the VM (exit code {run.exit_code}); "
            f"{run.timing()}\n--- guest output ---\n{run.output}",
            pytrace=False,
        )
    # Guard against a guest run that passes because nothing ran (everything skipped).
    assert run.counts is not None, f"the guest wrote no junit XML:\n{run.output}"
    assert run.counts.passed > 0, f"no cgroup v2 test passed in the VM:\n{run.output}"
