"""Test tiers: tests/unit needs no root; tests/integration needs root and a real kernel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).relative_to(HERE).parts
        if rel and rel[0] == "unit":
            item.add_marker(pytest.mark.unit)
        elif rel and rel[0] == "integration":
            item.add_marker(pytest.mark.integration)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="integration tests need root"))
