"""Human units on the command line: sizes (``64m``), durations (``10s``), times (``--since``)."""

from __future__ import annotations

import datetime
import re

from .._errors import SpecError

# Binary multiples, as docker's RAMInBytes and the kernel's memparse(): 64m = 64 MiB.
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str, what: str = "size") -> int:
    """``64m`` -> 67108864; units b, k, m, g, t, p (also kb/kib/MB...), all powers of 1024."""
    match = _SIZE_RE.match(text)
    if not match:
        raise SpecError(f"invalid {what} {text!r}: use a number with an optional unit b, k, m or g (e.g. 64m)")
    number, unit = match.groups()
    value = int(float(number) * _SIZE_UNITS[unit.lower()])
    return value


def format_size(value: float) -> str:
    """1536 -> '1.5KiB'; docker prints binary units in ``stats``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.4g}{unit}"
        value /= 1024
    return f"{value}B"


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, what: str = "duration") -> float:
    """``1.5s``, ``10m``, ``1h30m`` or a bare number of seconds -> seconds."""
    stripped = text.strip()
    try:
        return float(stripped)
    except ValueError:
        pass
    pos = 0
    total = 0.0
    for match in _DURATION_RE.finditer(stripped):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(stripped) or not stripped:
        raise SpecError(f"invalid {what} {text!r}: use seconds or a duration such as 500ms, 10s, 5m, 1h")
    return total


def parse_since(text: str, now: datetime.datetime | None = None) -> datetime.datetime:
    """``--since``: an RFC 3339 time, a Unix timestamp, or a duration back from now (``10m``)."""
    now = now or datetime.datetime.now(datetime.UTC)
    stripped = text.strip()
    try:
        parsed = datetime.datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
    if re.fullmatch(r"\d+(\.\d+)?", stripped):
        return datetime.datetime.fromtimestamp(float(stripped), datetime.UTC)
    try:
        seconds = parse_duration(stripped, "--since")
    except SpecError:
        raise SpecError(
            f"invalid --since {text!r}: use a time (2024-01-02T15:04:05Z), a Unix timestamp or a duration (10m)"
        ) from None
    return now - datetime.timedelta(seconds=seconds)


def human_ago(seconds: float) -> str:
    """docker's HumanDuration: 'Less than a second', '5 seconds', '3 minutes', 'About an hour'."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = seconds / 60
    if minutes < 2:
        return "About a minute"
    if minutes < 60:
        return f"{int(minutes)} minutes"
    hours = minutes / 60
    if hours < 2:
        return "About an hour"
    if hours < 48:
        return f"{int(hours)} hours"
    days = hours / 24
    return f"{int(days)} days"
