"""The OCI runtime engine: create/start/state/kill/delete/exec of containers from bundles."""

from __future__ import annotations

from ._container import DEFAULT_ROOT as DEFAULT_ROOT
from ._container import Container as Container
from ._container import Runtime as Runtime
from ._container import Status as Status
from ._container import release_init as release_init
from ._signals import parse_signal as parse_signal

__all__ = ["DEFAULT_ROOT", "Container", "Runtime", "Status", "parse_signal", "release_init"]
