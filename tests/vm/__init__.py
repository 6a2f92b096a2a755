"""Test harness: run selected tests inside a cgroup v2-only Linux VM (see README.md here)."""

from __future__ import annotations
