"""JSON for the start-up path, on CPython's C accelerator without the ``json`` package.

``import json`` imports ``re`` (``json.decoder`` and ``json.encoder`` compile regular
expressions at import), and ``re`` imports ``enum`` and ``functools``: about 4 ms of a
``tcontainer-oci`` command that podman runs several times per container. The scanner and the
string escaper that ``json`` itself uses live in the C module ``_json``; this module drives them
directly and produces what ``json.loads``/``json.dumps`` produce (tests/unit/oci/test_json.py
compares them on the same inputs). Where ``_json`` is missing (another Python implementation)
the ``json`` package does the work.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def _accelerator() -> Any:
    try:
        import _json
    except ImportError:  # pragma: no cover - CPython always has it
        return None
    return _json


_json: Any = _accelerator()

# RFC 8259 section 2: the only insignificant whitespace.
_WHITESPACE = " \t\n\r"
_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class _ScannerContext:
    """The attributes ``_json.make_scanner`` reads: json.JSONDecoder's defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None

    def __init__(self) -> None:
        self.parse_float = float
        self.parse_int = int
        self.parse_constant = _CONSTANTS.__getitem__


_scan_once: Callable[[str, int], tuple[Any, int]] | None = None


def _scanner() -> Callable[[str, int], tuple[Any, int]]:
    global _scan_once
    if _scan_once is None:
        _scan_once = _json.make_scanner(_ScannerContext())
    return _scan_once


def loads(text: str | bytes) -> Any:
    """``json.loads``: the document in ``text``; ValueError (``json.JSONDecodeError``) when
    it is not one JSON value with only whitespace around it."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8-sig" if text[:3] == b"\xef\xbb\xbf" else "utf-8")
    if _json is None:  # pragma: no cover
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scanner()(text, start)
    except StopIteration as stop:
        raise _decode_error("Expecting value", text, stop.value) from None
    except SystemError:
        # The C scanner reports a syntax error inside a value by raising
        # json.decoder.JSONDecodeError, which it looks up in sys.modules without importing it
        # (Modules/_json.c, raise_errmsg): with json not loaded it fails without an exception.
        # Let the json package parse the text again and raise the error it describes.
        import json

        return json.loads(text)
    rest = text[end:]
    if rest.strip(_WHITESPACE):
        raise _decode_error("Extra data", text, end + len(rest) - len(rest.lstrip(_WHITESPACE)))
    return value


def _decode_error(message: str, text: str, pos: int) -> ValueError:
    # The error path may pay for the full package: json.JSONDecodeError is what callers of
    # json.loads catch (it is a ValueError), with line and column in its message.
    from json import JSONDecodeError

    return JSONDecodeError(message, text, pos)


def dumps(value: Any, *, indent: int | None = None, sort_keys: bool = False, compact: bool = False) -> str:
    """``json.dumps(value, indent=indent, sort_keys=sort_keys)``; ``compact`` is
    ``separators=(",", ":")``. ASCII output, NaN and infinities as ``json`` writes them."""
    if _json is None:  # pragma: no cover
        import json

        separators = (",", ":") if compact else None
        return json.dumps(value, indent=indent, sort_keys=sort_keys, separators=separators)
    if indent is not None:
        parts: list[str] = []
        _pretty(value, " " * indent, "\n", sort_keys, parts)
        return "".join(parts)
    item_separator, key_separator = (",", ":") if compact else (", ", ": ")
    encoder = _json.make_encoder(
        {}, _not_serializable, _json.encode_basestring_ascii, None, key_separator, item_separator, sort_keys,
        False, True,
    )  # fmt: skip
    return "".join(encoder(value, 0))


def _not_serializable(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return str(_json.encode_basestring_ascii(value))
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    return _scalar(_not_serializable(value))


def _pretty(value: object, step: str, newline: str, sort_keys: bool, out: list[str]) -> None:
    """``json.dumps(indent=...)``: the C encoder of Python < 3.13 cannot indent."""
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + step
        items = sorted(value.items()) if sort_keys else value.items()
        out.append("{")
        first = True
        for key, item in items:
            out.append(inner if first else "," + inner)
            first = False
            out.append(_scalar(key if isinstance(key, str) else _key(key)))
            out.append(": ")
            _pretty(item, step, inner, sort_keys, out)
        out.append(newline + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = newline + step
        out.append("[")
        for i, item in enumerate(value):
            out.append(inner if i == 0 else "," + inner)
            _pretty(item, step, inner, sort_keys, out)
        out.append(newline + "]")
    else:
        out.append(_scalar(value))


def _key(key: object) -> str:
    # json.dumps turns int, float, bool and None keys into strings and refuses the rest.
    if key is None or isinstance(key, (bool, int, float)):
        return _scalar(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
