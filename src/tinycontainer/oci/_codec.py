"""camelCase JSON <-> snake_case dataclasses, with errors that name the field path.

The OCI spec says unknown properties MUST be ignored (config.md, "Extensibility"), so the
decoder skips keys it does not know; a key it knows with the wrong type is a :class:`SpecError`
naming the dotted path (``process.user.uid: expected an integer, got str``).
"""

from __future__ import annotations

import sys

from .._errors import SpecError
from ._record import fields as _record_fields
from ._record import is_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T")

# What annotations name, without importing typing (~8 ms of every tcontainer-oci start): the
# record modules write ``str | None``, ``list[X]``, ``dict[str, Any]`` (PEP 604/585 forms,
# whose origin and arguments are plain attributes), and name ``Any`` only for type checkers.
_UNION_TYPE: Any = type(int | None)


class _AnyValue:
    """Stands for ``typing.Any`` in evaluated annotations: the value is kept as it is."""

    def __repr__(self) -> str:
        return "typing.Any"


ANY = _AnyValue()
_ANNOTATION_NAMES = {"Any": ANY}

_JSON_NAME = "json"


def json_name(python_name: str) -> str:
    head, *rest = python_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# (module, annotation text) -> the type it names; most annotations repeat ("str | None").
_EVALUATED: dict[tuple[str, str], Any] = {}


def _type_hints(cls: Any) -> dict[str, Any]:
    """``typing.get_type_hints`` for the record classes, whose annotations are plain strings
    (PEP 563) of builtin and same-module names: eval() each distinct text once. The result is
    the same (tests/unit/security/test_oci_records.py compares them); typing's version costs
    6 ms per start in ForwardRef bookkeeping, as much as the rest of decoding a config."""
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):
        namespace = sys.modules[klass.__module__].__dict__
        for name, annotation in klass.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
            if isinstance(annotation, str):
                key = (klass.__module__, annotation)
                if key not in _EVALUATED:
                    _EVALUATED[key] = _evaluate(annotation, namespace)
                annotation = _EVALUATED[key]
            hints[name] = annotation
    return hints


def _evaluate(annotation: str, namespace: dict[str, Any]) -> Any:
    """eval(annotation) for the annotations the records write (``str``, ``int | None``,
    ``list[Mount] | None``, ``dict[str, Any]``), built with the same operators eval would apply.
    eval() compiles each text first: ~8 µs apiece, ~0.25 ms of decoding the first config.
    Any other text is eval()'d."""
    try:
        value, end = _union(annotation, 0, namespace)
    except (AttributeError, KeyError, ValueError):
        value, end = None, -1
    if end != len(annotation):
        return eval(annotation, namespace, _ANNOTATION_NAMES)
    return value


def _union(text: str, pos: int, namespace: dict[str, Any]) -> tuple[Any, int]:
    """``atom ( " | " atom )*`` from text[pos:]: (the type, the position after it)."""
    value, pos = _atom(text, pos, namespace)
    while text.startswith(" | ", pos):
        right, pos = _atom(text, pos + 3, namespace)
        value = value | right
    return value, pos


def _atom(text: str, pos: int, namespace: dict[str, Any]) -> tuple[Any, int]:
    """``NAME`` or ``NAME[union, ...]``: a KeyError or ValueError for anything else."""
    end = pos
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    name = text[pos:end]
    if not name.isidentifier():
        raise ValueError(name)
    value = _name(name, namespace)
    if not text.startswith("[", end):
        return value, end
    args: list[Any] = []
    pos = end + 1
    while True:
        arg, pos = _union(text, pos, namespace)
        args.append(arg)
        if text.startswith("]", pos):
            return value[args[0] if len(args) == 1 else tuple(args)], pos + 1
        if not text.startswith(", ", pos):
            raise ValueError(text)
        pos += 2


def _name(name: str, namespace: dict[str, Any]) -> Any:
    """What eval() finds for ``name`` with _ANNOTATION_NAMES as locals and ``namespace`` as globals."""
    if name == "None":
        return None
    if name in _ANNOTATION_NAMES:
        return _ANNOTATION_NAMES[name]
    if name in namespace:
        return namespace[name]
    builtins = namespace.get("__builtins__", __builtins__)
    return builtins[name] if isinstance(builtins, dict) else getattr(builtins, name)


_FIELDS: dict[type, tuple[tuple[str, str, Any], ...]] = {}


def _fields(cls: Any) -> tuple[tuple[str, str, Any], ...]:
    known = _FIELDS.get(cls)
    if known is None:
        hints = _type_hints(cls)
        known = _FIELDS[cls] = tuple(
            (f.name, f.metadata.get(_JSON_NAME, json_name(f.name)), hints[f.name]) for f in _record_fields(cls)
        )
    return known


def _type_name(tp: Any) -> str:
    if tp is int:
        return "an integer"
    if tp is str:
        return "a string"
    if tp is bool:
        return "a boolean"
    if tp is float:
        return "a number"
    origin = getattr(tp, "__origin__", None)
    if origin is list:
        return "a list"
    if origin is dict or is_record(tp):
        return "an object"
    return str(tp)


def _json_type(value: object) -> str:
    return {
        dict: "object",
        list: "list",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def decode(tp: Any, value: object, path: str) -> Any:
    if type(tp) is _UNION_TYPE:
        if value is None:
            return None
        return decode(next(a for a in tp.__args__ if a is not type(None)), value, path)
    if tp is ANY:
        return value
    origin = getattr(tp, "__origin__", None)
    if is_record(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise SpecError(f"expected an object, got {_json_type(value)}", field=path)
        kwargs: dict[str, Any] = {}
        for py_name, js_name, ftype in _fields(tp):
            if js_name in value:
                kwargs[py_name] = decode(ftype, value[js_name], f"{path}.{js_name}" if path else js_name)
        try:
            return tp(**kwargs)
        except TypeError as exc:  # a required field is missing
            missing = str(exc).split("argument", 1)[-1].strip(": ")
            raise SpecError(f"missing required field {missing}", field=path or None) from None
    if origin is list:
        if not isinstance(value, list):
            raise SpecError(f"expected a list, got {_json_type(value)}", field=path)
        (item,) = tp.__args__
        return [decode(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise SpecError(f"expected an object, got {_json_type(value)}", field=path)
        _, item = tp.__args__
        return {str(k): decode(item, v, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise SpecError(f"expected a boolean, got {_json_type(value)}", field=path)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"expected an integer, got {_json_type(value)}", field=path)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"expected a number, got {_json_type(value)}", field=path)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise SpecError(f"expected a string, got {_json_type(value)}", field=path)
        return value
    raise TypeError(f"unsupported field type {tp!r} at {path}")  # a bug in the dataclasses


def encode(value: object) -> Any:
    if is_record(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        cls: Any = type(value)
        for py_name, js_name, _ in _fields(cls):
            v = getattr(value, py_name)
            if v is None:
                continue
            out[js_name] = encode(v)
        return out
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def from_json(cls: type[T], value: object, path: str = "") -> T:
    result: T = decode(cls, value, path)
    return result


def field_name(name: str) -> dict[str, str]:
    """Metadata for a field whose JSON name is not the plain camelCase of its Python name."""
    return {_JSON_NAME: name}
