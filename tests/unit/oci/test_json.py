"""The start-up path's JSON codec gives what the json package gives."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from tinycontainer.oci import _json

DOCUMENTS = [
    {},
    [],
    {"ociVersion": "1.2.0", "process": {"args": ["sh", "-c", "echo é ✓ \u2028"], "env": [], "terminal": False}},
    {"n": [0, -1, 2**70, 1.5, -0.0, 1e300, 3.0], "t": True, "f": False, "z": None, "s": "\"\\\n\t\x00"},
    [[], {}, [[1]], {"a": {"b": {"c": []}}}],
    "just a string",
    12,
    None,
    {"unicode key ✓": "\ud83d\ude00", "": ""},
]


@pytest.mark.parametrize("doc", DOCUMENTS)
@pytest.mark.parametrize("indent", [None, 2, 4])
@pytest.mark.parametrize("sort_keys", [False, True])
def test_dumps_matches_json(doc: object, indent: int | None, sort_keys: bool) -> None:
    assert _json.dumps(doc, indent=indent, sort_keys=sort_keys) == json.dumps(doc, indent=indent, sort_keys=sort_keys)


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_compact_matches_json_separators(doc: object) -> None:
    assert _json.dumps(doc, compact=True) == json.dumps(doc, separators=(",", ":"))


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_loads_round_trips(doc: object) -> None:
    for text in (json.dumps(doc), json.dumps(doc, indent=3), f" \n\t{json.dumps(doc)}\r\n "):
        assert _json.loads(text) == json.loads(text)
        assert _json.loads(text.encode()) == json.loads(text.encode())


def test_non_string_keys_and_constants_like_json() -> None:
    doc = {1: "a", 2.5: "b", False: "c", None: "d"}
    assert _json.dumps(doc, indent=1) == json.dumps(doc, indent=1)
    assert _json.dumps([math.inf, -math.inf], indent=1) == json.dumps([math.inf, -math.inf], indent=1)
    assert math.isnan(_json.loads("NaN"))
    assert _json.loads("[Infinity, -Infinity]") == [math.inf, -math.inf]
    with pytest.raises(TypeError, match="not JSON serializable"):
        _json.dumps({"a": object()})
    with pytest.raises(TypeError, match="not JSON serializable"):
        _json.dumps({"a": object()}, indent=2)
    with pytest.raises(TypeError, match="keys must be"):
        _json.dumps({(1, 2): 1}, indent=2)


@pytest.mark.parametrize("bad", ["", "   ", "{", '{"a": 1} x', "[1,]", "{'a': 1}", '"\x01"', "01", '{"a" 1}'])
def test_invalid_documents_raise_json_decode_error(bad: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        _json.loads(bad)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(bad)
    assert ours.value.pos == theirs.value.pos


def test_utf8_bom_bytes_accepted_like_json() -> None:
    raw = b"\xef\xbb\xbf" + json.dumps({"a": "\u00e9"}).encode()
    assert _json.loads(raw) == json.loads(raw)


@pytest.mark.parametrize("bad", ['{"a": "unterminated', '{"a": 1 "b": 2}', '["\\q"]', '{"a": [1, 2}'])
def test_syntax_errors_inside_values_without_the_json_package_loaded(bad: str) -> None:
    code = (
        "import sys; from tinycontainer.oci import _json\n"
        "try:\n"
        f"    _json.loads({bad!r})\n"
        "except ValueError as exc:\n"
        "    print(type(exc).__name__, exc.pos)\n"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}\n{code}"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(bad)
    assert out.stdout.split() == ["JSONDecodeError", str(theirs.value.pos)]


def test_importing_it_does_not_import_re() -> None:
    code = (
        "import sys; from tinycontainer.oci import _json; _json.loads('{\"a\": [1]}');"
        "_json.dumps({'a': 1}, indent=2); print('re' in sys.modules, 'json' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}; {code}"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert out.stdout.split() == ["False", "False"]
