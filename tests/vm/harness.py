"""Run a command (usually pytest) inside a throwaway cgroup v2-only Linux VM.

The guest boots Debian's own generic kernel with ``cgroup_no_v1=all`` and sees the host's root
filesystem read-only with a tmpfs overlay on top, so it runs the same Python, the same project
checkout and the same Debian packages as the host, while the host's own cgroup v1 layout stays
untouched. Results come back through a writable 9p share (the "job" directory).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ._errors import VMBootError, VMUnavailable
from ._initramfs import FAIL_MARKER, GUEST_BUSYBOX, GUEST_JOB_DIR, build_initramfs
from ._kernel import Kernel, obtain_kernel
from ._qemu import DONE_MARKER, READY_MARKER, MachineSpec, boot_and_run, qemu_binary

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PYTEST_ARGS = ("-m", "cgroupv2", "tests/cgroupv2")
DEFAULT_TEST_PATH = "tests/cgroupv2"
# Set in the guest: tests/cgroupv2 runs only where this (or an explicit opt-in) says the cgroup
# tree is ours to change.
GUEST_ENV_FLAG = "TC_VM_GUEST"
GUEST_TEST_TIMEOUT_S = 90


@dataclass(frozen=True)
class Prepared:
    kernel: Kernel
    initramfs: Path


@dataclass(frozen=True)
class JUnitCounts:
    tests: int
    failures: int
    errors: int
    skipped: int

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped


@dataclass(frozen=True)
class VMRun:
    exit_code: int
    output: str
    console: str
    kernel_version: str
    boot_seconds: float
    run_seconds: float
    attempts: int
    counts: JUnitCounts | None = None

    def timing(self) -> str:
        retry = f", {self.attempts} boot attempts" if self.attempts > 1 else ""
        return (
            f"cgroup v2 VM (kernel {self.kernel_version}): boot {self.boot_seconds:.1f} s, "
            f"command {self.run_seconds:.1f} s{retry}, exit code {self.exit_code}"
        )


def vm_required() -> bool:
    """In CI (or when asked) a VM that cannot be had is a failure, not a skip."""
    return os.environ.get("CI") == "1" or os.environ.get("TC_REQUIRE_VM") == "1"


def prepare() -> Prepared:
    """Check prerequisites, download/unpack the kernel and build the initramfs (all cached)."""
    qemu_binary()
    kernel = obtain_kernel()
    return Prepared(kernel=kernel, initramfs=build_initramfs(kernel))


def _guest_env(extra: Mapping[str, str]) -> dict[str, str]:
    # The interpreter's own directory goes first: the host's `python3` may be a pyenv shim, a bash
    # script that costs seconds per call under emulation.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])
    env = {
        "PATH": path,
        "HOME": "/root",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        # The host root is read-only under the overlay; writing .pyc files only costs time there.
        "PYTHONDONTWRITEBYTECODE": "1",
        GUEST_ENV_FLAG: "1",
    }
    for name, value in os.environ.items():
        if name.startswith("TC_") or name in ("CI", "PYTHONPATH"):
            env.setdefault(name, value)
    env.update(extra)
    return env


def _stage2(command: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
    """The guest's stage 2, run by static busybox as PID 1 after switch_root into the overlay."""
    assignments = " ".join(shlex.quote(f"{key}={value}") for key, value in sorted(env.items()))
    argv = " ".join(shlex.quote(arg) for arg in command)
    return f"""B={GUEST_BUSYBOX}
J={GUEST_JOB_DIR}
fail() {{
    echo "{FAIL_MARKER} $*"
    $B sync
    $B poweroff -f
}}
$B mkdir -p /dev/pts /dev/shm /dev/mqueue
$B mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || fail "mount devpts"
$B mount -t tmpfs -o mode=1777 tmpfs /dev/shm
$B mount -t mqueue mqueue /dev/mqueue
$B ln -sf /proc/self/fd /dev/fd
$B ln -sf /proc/self/fd/0 /dev/stdin
$B ln -sf /proc/self/fd/1 /dev/stdout
$B ln -sf /proc/self/fd/2 /dev/stderr
$B mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
# One controller per write: a single "+a +b" write fails as a whole if one is missing.
for c in $($B cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || echo "warning: cannot enable controller $c"
done
$B hostname tc-vm
$B ip link set lo up
echo "{READY_MARKER} cpus=$($B nproc) controllers=$($B cat /sys/fs/cgroup/cgroup.subtree_control)"
{_bind_host_tmp(cwd)}cd {shlex.quote(str(cwd))} || fail "cd {cwd}"
$B env -i {assignments} {argv} >"$J/output" 2>&1 </dev/null
rc=$?
echo "$rc" >"$J/rc"
$B sync
echo "{DONE_MARKER} rc=$rc"
$B poweroff -f
"""


def _bind_host_tmp(cwd: Path) -> str:
    """The guest's /tmp is a fresh tmpfs: a checkout under the host's /tmp (CI may clone there)
    is bound back read-only from /tmp/.host-tmp, which stage 1 keeps."""
    resolved = cwd.resolve()
    if not resolved.is_relative_to("/tmp"):
        return ""
    target = shlex.quote(str(resolved))
    source = shlex.quote(str(Path("/tmp/.host-tmp") / resolved.relative_to("/tmp")))
    return f'$B mkdir -p {target} && $B mount --bind {source} {target} || fail "bind {resolved}"\n'


class _Tail:
    """Copies the guest's output file to ``sink`` while the VM runs (the job share is live)."""

    def __init__(self, path: Path, sink: TextIO) -> None:
        self._path, self._sink = path, sink
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        offset = 0
        while True:
            stopping = self._stop.wait(0.5)
            try:
                with self._path.open("rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
            except FileNotFoundError:
                chunk = b""
            if chunk:
                offset += len(chunk)
                self._sink.write(chunk.decode(errors="replace"))
                self._sink.flush()
            if stopping:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _read_counts(junit: Path) -> JUnitCounts | None:
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in total:
            total[key] += int(suite.get(key, "0"))
    return JUnitCounts(**total)


def run_in_vm(
    command: Sequence[str],
    *,
    cwd: Path = PROJECT_ROOT,
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
    cpus: int = 2,
    memory_mb: int = 2048,
    stream: TextIO | None = None,
    prepared: Prepared | None = None,
) -> VMRun:
    """Boot a fresh VM, run ``command`` as root in ``cwd``, return its exit code and output.

    Raises VMUnavailable when a prerequisite is missing, VMBootError when the VM misbehaves.
    ``timeout`` bounds the command; the boot has its own watchdog (see _qemu.boot_and_run).
    """
    prepared = prepared or prepare()
    job_dir = Path(tempfile.mkdtemp(prefix="tc-vm-job-"))
    debug = os.environ.get("TC_VM_DEBUG") == "1"
    keep = debug or os.environ.get("TC_VM_KEEP") == "1"
    try:
        (job_dir / "stage2.sh").write_text(_stage2(command, cwd, _guest_env(env or {})))
        spec = MachineSpec(
            kernel_image=prepared.kernel.image,
            initramfs=prepared.initramfs,
            job_dir=job_dir,
            cpus=cpus,
            memory_mb=memory_mb,
            accel=os.environ.get("TC_VM_ACCEL", "tcg"),
            verbose_kernel=debug,
        )
        tail = _Tail(job_dir / "output", stream) if stream is not None else None
        output_file, rc_file = job_dir / "output", job_dir / "rc"
        try:
            times = boot_and_run(spec, run_timeout=timeout)
        except VMBootError as exc:
            partial = output_file.read_text(errors="replace") if output_file.exists() else ""
            if partial:
                raise VMBootError(f"{exc}\n--- guest command output so far ---\n{partial[-20000:]}") from exc
            raise
        finally:
            if tail is not None:
                tail.close()
        output = output_file.read_text(errors="replace") if output_file.exists() else ""
        try:
            exit_code = int(rc_file.read_text().strip())
        except (OSError, ValueError) as exc:
            raise VMBootError(f"the guest wrote no exit code ({exc}); console:\n{times.console}\n{output}") from exc
        return VMRun(
            exit_code=exit_code,
            output=output,
            console=times.console,
            kernel_version=prepared.kernel.version,
            boot_seconds=times.boot_seconds,
            run_seconds=times.run_seconds,
            attempts=times.attempts,
            counts=_read_counts(job_dir / "junit.xml"),
        )
    finally:
        if keep:
            print(f"tc-vm: job directory kept at {job_dir}", file=sys.stderr)
        else:
            shutil.rmtree(job_dir, ignore_errors=True)


def pytest_command(pytest_args: Sequence[str]) -> list[str]:
    """pytest as run in the guest: no cache (the host root is read-only), junit XML to the job share.

    Plugin autoloading is off (see run_pytest_in_vm) because every plugin import costs seconds under
    TCG; pytest-timeout is loaded explicitly since pyproject's ``timeout`` needs it (--strict-config).
    A per-test timeout well below the VM's own turns a hung test into a traceback instead of a
    killed VM with no report (later arguments override it).
    """
    return [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "pytest_timeout",
        f"--junitxml={GUEST_JOB_DIR}/junit.xml",
        f"--timeout={GUEST_TEST_TIMEOUT_S}",
        *pytest_args,
    ]


def guest_pytest_args(user_args: Sequence[str]) -> list[str]:
    """``-m cgroupv2`` plus the user's arguments, and tests/cgroupv2 unless they name a test path.

    Only the marker's tests belong in the VM: the rest of the suite runs on the host, and
    running the host-side VM test in the guest would try to nest a VM.
    """
    names_a_path = any(not arg.startswith("-") and (PROJECT_ROOT / arg.split("::", 1)[0]).exists() for arg in user_args)
    return ["-m", "cgroupv2", *user_args, *(() if names_a_path else (DEFAULT_TEST_PATH,))]


def run_pytest_in_vm(
    pytest_args: Sequence[str] = DEFAULT_PYTEST_ARGS,
    *,
    timeout: float = 300.0,
    stream: TextIO | None = None,
    prepared: Prepared | None = None,
) -> VMRun:
    return run_in_vm(
        pytest_command(pytest_args),
        env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        timeout=timeout,
        stream=stream,
        prepared=prepared,
    )


def timed_prepare() -> tuple[Prepared, float]:
    started = time.monotonic()
    prepared = prepare()
    return prepared, time.monotonic() - started


__all__ = [
    "DEFAULT_PYTEST_ARGS",
    "DEFAULT_TEST_PATH",
    "GUEST_ENV_FLAG",
    "PROJECT_ROOT",
    "Prepared",
    "JUnitCounts",
    "VMBootError",
    "VMRun",
    "VMUnavailable",
    "guest_pytest_args",
    "prepare",
    "pytest_command",
    "run_in_vm",
    "run_pytest_in_vm",
    "timed_prepare",
    "vm_required",
]
