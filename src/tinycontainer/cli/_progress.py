"""Render the image library's :class:`ProgressEvent` stream like ``docker pull``.

On a terminal: one line per layer plus a total line, redrawn in place (cursor up ``ESC[nA``,
erase line ``ESC[2K``) at most ten times a second; lines are cut to the terminal's width, because
a wrapped line would break the cursor arithmetic. Elsewhere (logs, CI): one line per layer when
it is finished, nothing redrawn. Sizes are decimal MB, as docker prints them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TextIO

if TYPE_CHECKING:
    from ..image import ProgressEvent

Mode = Literal["tty", "plain", "quiet"]
_BAR = 30
_REDRAW_EVERY = 0.1

_STATUS = {
    "waiting": "Waiting",
    "exists": "Already exists",
    "downloading": "Downloading",
    "unpacking": "Extracting",
    "done": "Pull complete",
}


def human_mb(size: float) -> str:
    """docker's units: 1 kB = 1000 B, 1 MB = 1000 kB."""
    if size < 1000:
        return f"{size:.0f}B"
    if size < 1000**2:
        return f"{size / 1000:.1f}kB"
    if size < 1000**3:
        return f"{size / 1000**2:.1f}MB"
    return f"{size / 1000**3:.2f}GB"


def bar(done: int, total: int, width: int = _BAR) -> str:
    if total <= 0:
        return "[" + " " * width + "]"
    filled = min(width, done * width // total)
    arrow = ">" if filled < width else ""
    return "[" + "=" * filled + arrow + " " * (width - filled - len(arrow)) + "]"


@dataclass
class _Layer:
    phase: str
    done: int
    total: int
    downloaded: int = 0


class PullProgress:
    """A ``progress=`` callback for :meth:`ImageStore.pull`; call :meth:`finish` afterwards."""

    def __init__(self, stream: TextIO, mode: Mode, *, width: int | None = None) -> None:
        self.stream = stream
        self.mode = mode
        self.layers: dict[str, _Layer] = {}
        self._drawn = 0
        self._last = 0.0
        self._start = time.monotonic()
        self._width = width

    @classmethod
    def for_stream(cls, stream: TextIO, *, quiet: bool = False) -> PullProgress:
        if quiet:
            return cls(stream, "quiet")
        try:
            tty = stream.isatty() and os.environ.get("TERM") != "dumb"
        except (AttributeError, ValueError):
            tty = False
        return cls(stream, "tty" if tty else "plain")

    # -- events ----------------------------------------------------------------------------------

    def __call__(self, event: ProgressEvent) -> None:
        if self.mode == "quiet":
            return
        layer = self.layers.get(event.layer)
        previous = layer.phase if layer else None
        if layer is None:
            layer = self.layers[event.layer] = _Layer(event.phase, event.done, event.total)
        layer.phase, layer.done, layer.total = event.phase, event.done, event.total
        if event.phase == "downloading":
            layer.downloaded = event.done
        elif event.phase in ("unpacking", "done", "exists"):
            layer.downloaded = event.total
        if self.mode == "plain":
            if event.phase in ("exists", "done") and previous != event.phase:
                size = f" ({human_mb(event.total)})" if event.phase == "done" else ""
                self._write(f"{_short(event.layer)}: {_STATUS[event.phase]}{size}\n")
            return
        now = time.monotonic()
        if previous != event.phase or now - self._last >= _REDRAW_EVERY:
            self._last = now
            self._redraw()

    def finish(self) -> None:
        if self.mode == "tty" and self.layers:
            self._redraw()

    # -- drawing ---------------------------------------------------------------------------------

    def lines(self) -> list[str]:
        out = []
        for digest, layer in self.layers.items():
            status = _STATUS.get(layer.phase, layer.phase)
            text = f"{_short(digest)}: {status:<14}"
            if layer.phase in ("downloading", "unpacking"):
                text += f" {bar(layer.done, layer.total)} {human_mb(layer.done)}/{human_mb(layer.total)}"
            out.append(text)
        total = sum(layer.total for layer in self.layers.values())
        done = sum(layer.downloaded for layer in self.layers.values())
        elapsed = max(time.monotonic() - self._start, 1e-6)
        fetched = sum(layer.downloaded for layer in self.layers.values() if layer.phase != "exists")
        out.append(
            f"{'Total:':<28} {bar(done, total)} {human_mb(done)}/{human_mb(total)}  {human_mb(fetched / elapsed)}/s"
        )
        return out

    def _redraw(self) -> None:
        width = self._width or _terminal_width(self.stream)
        parts = []
        if self._drawn:
            parts.append(f"\x1b[{self._drawn}A")
        lines = self.lines()
        for line in lines:
            parts.append("\r\x1b[2K" + line[: max(width - 1, 10)] + "\n")
        self._drawn = len(lines)
        self._write("".join(parts))

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _terminal_width(stream: TextIO) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 80
    return columns if columns > 0 else 80  # a fresh pty (or a serial console) reports 0 columns
