"""The image configuration (OCI image-spec config.md / Docker's container config) as plain data."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import ImageError


@dataclass(frozen=True)
class ImageConfig:
    """What the image asks the runtime for; ``None`` means the image did not set it."""

    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    exposed_ports: list[str] = field(default_factory=list)
    stop_signal: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    os: str = "linux"
    architecture: str = ""
    variant: str = ""


@dataclass(frozen=True)
class ParsedConfig:
    config: ImageConfig
    diff_ids: list[str]
    created: str | None


def _str_list(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ImageError(f"image config: {what} must be a list of strings")


def _keys(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return sorted(str(k) for k in value)
    raise ImageError(f"image config: {what} must be an object")


def parse_image_config(raw: bytes) -> ParsedConfig:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ImageError("image config is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ImageError("image config is not a JSON object")
    conf = doc.get("config") or {}
    if not isinstance(conf, dict):
        raise ImageError("image config: config must be an object")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers" or not isinstance(rootfs.get("diff_ids"), list):
        raise ImageError("image config: rootfs must be {type: layers, diff_ids: [...]}")
    diff_ids = rootfs["diff_ids"]
    if not all(isinstance(d, str) and d.startswith("sha256:") and len(d) == 71 for d in diff_ids):
        raise ImageError("image config: diff_ids must be sha256 digests")
    labels = conf.get("Labels") or {}
    if not isinstance(labels, dict):
        raise ImageError("image config: Labels must be an object")
    stop_signal = conf.get("StopSignal")
    config = ImageConfig(
        entrypoint=_str_list(conf.get("Entrypoint"), "Entrypoint"),
        cmd=_str_list(conf.get("Cmd"), "Cmd"),
        env=_str_list(conf.get("Env"), "Env") or [],
        working_dir=str(conf.get("WorkingDir") or ""),
        user=str(conf.get("User") or ""),
        exposed_ports=_keys(conf.get("ExposedPorts"), "ExposedPorts"),
        stop_signal=str(stop_signal) if stop_signal else None,
        labels={str(k): str(v) for k, v in labels.items()},
        volumes=_keys(conf.get("Volumes"), "Volumes"),
        os=str(doc.get("os") or "linux"),
        architecture=str(doc.get("architecture") or ""),
        variant=str(doc.get("variant") or ""),
    )
    created = doc.get("created")
    return ParsedConfig(config, list(diff_ids), created if isinstance(created, str) else None)
