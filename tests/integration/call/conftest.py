"""Library containers for call()/ContainerExecutor: checks that each test leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.helpers.leaks import LeakCheck

from tinycontainer import _bundle


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    check = LeakCheck(state_root=_bundle.LibPaths(_bundle.default_lib_root()).state)
    yield
    check.assert_clean(grace=5.0)
