"""Printing: aligned tables for people, JSON for programs."""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Sequence
from typing import Any

from .._records import Record, parse_iso
from ._units import human_ago


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [headers, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print(table(headers, rows))


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def _seconds_since(text: str, now: datetime.datetime) -> float | None:
    when = parse_iso(text)
    return None if when is None else max(0.0, (now - when).total_seconds())


def status_text(record: Record, state: str, now: datetime.datetime | None = None) -> str:
    """docker ps's STATUS column: 'Up 3 seconds', 'Exited (0) 2 minutes ago', 'Created'."""
    now = now or datetime.datetime.now(datetime.UTC)
    if state in ("running", "paused"):
        up = _seconds_since(record.started_at, now)
        text = f"Up {human_ago(up or 0)}"
        return text + " (Paused)" if state == "paused" else text
    if state == "exited":
        ago = _seconds_since(record.finished_at, now)
        text = f"Exited ({record.exit_code if record.exit_code is not None else '?'})"
        return f"{text} {human_ago(ago)} ago" if ago is not None else text
    if state == "dead":
        return "Dead (monitor gone: run tcontainer gc)"
    return state.capitalize()


def created_text(record: Record, now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.UTC)
    ago = _seconds_since(record.created, now)
    return f"{human_ago(ago)} ago" if ago is not None else record.created


def command_text(argv: Sequence[str], limit: int | None = 20) -> str:
    import shlex

    text = shlex.join(argv)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return f'"{text}"'


def source_text(record: Record) -> str:
    if record.image:
        return record.image
    if record.rootfs:
        return record.rootfs
    return "(host /)"
