"""Library containers for call()/ContainerExecutor: checks that each test leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.helpers.leaks import LeakCheck

from tinycontainer import _bundle


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    # Scoped to library containers ("tc-<hex>" ids): other suites may run containers meanwhile.
    root = _bundle.default_lib_root()
    check = LeakCheck(state_root=_bundle.LibPaths(root).state, container_ids=lambda: ["tcontainer-tc-", root])
    yield
    check.assert_clean(grace=5.0)
