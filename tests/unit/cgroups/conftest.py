"""Fixtures of the cgroup driver unit tests (the fake cgroupfs lives in _fakefs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.cgroups._fakefs import FakeKernel


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    return FakeKernel(tmp_path, monkeypatch)
