"""Tests that need a cgroup v2-only kernel; run inside the test VM by tests/vm (marker: cgroupv2)."""

from __future__ import annotations
