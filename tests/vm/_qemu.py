"""Boot the guest under qemu's TCG, watch its serial console, enforce timeouts.

KVM is not used: /dev/kvm on the development machine is a paravirtual KVM that stock kernels do
not boot on ("failed to set MSR 0x10a", then a hang after "Probing EDD"; cgroup-v2-vm.md).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ._errors import VMBootError, VMUnavailable
from ._initramfs import FAIL_MARKER, INIT_MARKER

READY_MARKER = "@@TC-VM-READY@@"
DONE_MARKER = "@@TC-VM-DONE@@"

# cgroup_no_v1=all keeps every controller off v1 so that all of them are available on the
# cgroup2 root; systemd.unified_cgroup_hierarchy=1 is what a systemd host would pass for the same.
# panic=-1 reboots at once on a panic, which -no-reboot turns into a qemu exit instead of a hang.
KERNEL_CMDLINE = (
    "console=ttyS0 rdinit=/init panic=-1 quiet mitigations=off systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all"
)
# TC_VM_ACCEL=kvm is for hosts with a real KVM (not the development machine, see above).
ACCELERATORS = {"tcg": ("tcg,thread=multi", "max"), "kvm": ("kvm", "host")}


def qemu_binary() -> Path:
    found = shutil.which("qemu-system-x86_64")
    if not found:
        raise VMUnavailable("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
    return Path(found)


@dataclass(frozen=True)
class MachineSpec:
    kernel_image: Path
    initramfs: Path
    job_dir: Path
    cpus: int = 2
    memory_mb: int = 2048
    accel: str = "tcg"
    # Kernel messages on the console (drops "quiet"): slower, for diagnosing a boot that hangs.
    verbose_kernel: bool = False

    def argv(self) -> list[str]:
        if self.accel not in ACCELERATORS:
            raise VMUnavailable(f"unknown accelerator {self.accel!r} (use one of {', '.join(ACCELERATORS)})")
        accel, cpu = ACCELERATORS[self.accel]
        cmdline = KERNEL_CMDLINE.replace(" quiet", "") if self.verbose_kernel else KERNEL_CMDLINE
        return [
            str(qemu_binary()),
            # -M microvm hung under TCG (no timer calibration): use the pc machine.
            *("-M", "pc", "-accel", accel, "-cpu", cpu),
            *("-smp", str(self.cpus), "-m", str(self.memory_mb)),
            *("-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none", "-serial", "stdio"),
            *("-kernel", str(self.kernel_image), "-initrd", str(self.initramfs), "-append", cmdline),
            "-virtfs",
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            "-virtfs",
            f"local,path={self.job_dir},mount_tag=job,security_model=none,multidevs=remap",
        ]


@dataclass
class _Console:
    """Collects the serial console and the monotonic time at which each marker first appeared."""

    lines: list[str] = field(default_factory=list)
    seen: dict[str, float] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)
    closed: bool = False

    def pump(self, stream: object, log: Path) -> None:
        """Read the console until EOF; also append it to ``log`` (kept with TC_VM_KEEP/TC_VM_DEBUG)."""
        assert hasattr(stream, "readline")
        with log.open("a", encoding="utf-8") as log_file:
            for raw in iter(stream.readline, b""):
                self._add(raw.decode(errors="replace").rstrip("\r\n"), log_file)
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    def _add(self, line: str, log_file: TextIO) -> None:
        log_file.write(line + "\n")
        log_file.flush()
        with self.changed:
            self.lines.append(line)
            for marker in (INIT_MARKER, READY_MARKER, DONE_MARKER, FAIL_MARKER):
                if marker in line and marker not in self.seen:
                    self.seen[marker] = time.monotonic()
            self.changed.notify_all()

    def wait_for(self, markers: tuple[str, ...], deadline: float) -> str | None:
        """The first of ``markers`` seen before ``deadline``; None on timeout or console EOF."""
        with self.changed:
            while True:
                for marker in markers:
                    if marker in self.seen:
                        return marker
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    return None
                self.changed.wait(remaining)

    def text(self) -> str:
        with self.changed:
            return "\n".join(self.lines)


@dataclass(frozen=True)
class BootTimes:
    boot_seconds: float  # qemu start until stage 2 has mounted cgroup2 and starts the command
    run_seconds: float  # the command inside the guest
    attempts: int
    console: str


class _Machine:
    def __init__(self, spec: MachineSpec) -> None:
        self.started = time.monotonic()
        self.console = _Console()
        self.proc = subprocess.Popen(
            spec.argv(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._pump = threading.Thread(
            target=self.console.pump, args=(self.proc.stdout, spec.job_dir / "console.log"), daemon=True
        )
        self._pump.start()

    def stop(self, grace: float = 10.0) -> None:
        """Wait up to ``grace`` seconds for qemu to exit after poweroff, then kill it (our own child)."""
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._pump.join(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()


def _console_tail(console: str, lines: int = 60) -> str:
    return "\n".join(console.splitlines()[-lines:])


def boot_and_run(
    spec: MachineSpec,
    *,
    init_timeout: float = 60.0,
    ready_timeout: float = 120.0,
    run_timeout: float = 300.0,
) -> BootTimes:
    """Boot, wait for the guest's job to finish, power off. Retries once if init never starts.

    One early-boot hang in ~45 boots was seen during research; it never got as far as the init
    marker, so a missing marker after ``init_timeout`` means "boot again", anything later is a failure.
    """
    attempts = 0
    while True:
        attempts += 1
        machine = _Machine(spec)
        try:
            got = machine.console.wait_for((INIT_MARKER,), machine.started + init_timeout)
            if got is None:
                machine.proc.kill()
                machine.stop()
                if attempts < 2:
                    continue
                raise VMBootError(
                    f"no {INIT_MARKER} on the serial console within {init_timeout:g} s or before qemu "
                    f"exited (attempt {attempts}, qemu exit code {machine.proc.returncode}):\n"
                    + _console_tail(machine.console.text())
                )
            got = machine.console.wait_for((READY_MARKER, FAIL_MARKER), time.monotonic() + ready_timeout)
            if got != READY_MARKER:
                machine.proc.kill()
                machine.stop()
                raise VMBootError(
                    f"guest init did not get ready (attempt {attempts}):\n" + _console_tail(machine.console.text())
                )
            ready_at = machine.console.seen[READY_MARKER]
            got = machine.console.wait_for((DONE_MARKER, FAIL_MARKER), ready_at + run_timeout)
            if got != DONE_MARKER:
                machine.proc.kill()
                machine.stop()
                raise VMBootError(
                    f"guest command did not finish within {run_timeout:.0f} s (or the guest died):\n"
                    + _console_tail(machine.console.text())
                )
            done_at = machine.console.seen[DONE_MARKER]
            machine.stop()
            return BootTimes(
                boot_seconds=ready_at - machine.started,
                run_seconds=done_at - ready_at,
                attempts=attempts,
                console=machine.console.text(),
            )
        finally:
            if machine.proc.poll() is None:
                machine.proc.kill()
                machine.proc.wait(timeout=30)
