"""Warnings of the engine go to the ``tinycontainer`` logger; the library never prints."""

from __future__ import annotations

import logging

logger = logging.getLogger("tinycontainer")


def warn(message: str) -> None:
    logger.warning(message)
