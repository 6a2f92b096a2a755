"""A :class:`~tinycontainer.Spec` as plain JSON data, so a container record can rebuild it
(``tcontainer restart``/``start`` and the monitor process start from the stored record)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ._spec import Mount, Spec


def _plain(value: Any) -> Any:
    if isinstance(value, Mount):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def spec_to_dict(spec: Spec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if value == f.default or (f.default_factory is not dataclasses.MISSING and value == f.default_factory()):
            continue
        out[f.name] = _plain(value)
    return out


def spec_from_dict(data: Mapping[str, Any]) -> Spec:
    kwargs = dict(data)
    if "mounts" in kwargs:
        kwargs["mounts"] = tuple(
            Mount(**{**m, "options": tuple(m.get("options") or ())}) for m in kwargs["mounts"]
        )
    if "ulimits" in kwargs:
        kwargs["ulimits"] = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs["ulimits"].items()}
    for name in ("command", "entrypoint", "cap_add", "cap_drop"):
        if isinstance(kwargs.get(name), list):
            kwargs[name] = tuple(kwargs[name])
    return Spec(**kwargs)
