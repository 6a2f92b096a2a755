"""Test helpers that ship with tinycontainer (like ``trio.testing``): fakes for the kernel seam."""

from __future__ import annotations

from ._fake import Call as Call
from ._fake import FakeSyscalls as FakeSyscalls

__all__ = ["Call", "FakeSyscalls"]
