"""Warnings of the engine. The library never prints: by default they go to the
``tinycontainer`` logger; a command line installs its own sink (one line on stderr and, with
``--log``, an entry in the log file) so that ``logging`` stays off tcontainer-oci's start-up."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_sink: Callable[[str], None] | None = None


def set_sink(sink: Callable[[str], None] | None) -> None:
    global _sink
    _sink = sink


def warn(message: str) -> None:
    if _sink is not None:
        _sink(message)
        return
    import logging

    logging.getLogger("tinycontainer").warning(message)
