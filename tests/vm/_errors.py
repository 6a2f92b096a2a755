"""Why the test VM could not be used (distinct from a guest test failure)."""

from __future__ import annotations


class VMUnavailable(RuntimeError):
    """A prerequisite is missing: qemu, busybox-static or the kernel package (skip locally, fail in CI)."""


class VMBootError(RuntimeError):
    """The prerequisites exist but the VM did not boot or did not report a result (always a failure)."""
