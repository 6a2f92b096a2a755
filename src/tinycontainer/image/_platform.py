"""Platforms (``os/arch[/variant]``) and the choice of one manifest from an index.

Normalisation and fallbacks follow containerd's ``platforms`` package (read for facts): arm64
without a variant means v8; an arm/v7 host also runs v6 and v5 images; buildkit's attestation
manifests are listed with platform ``unknown/unknown`` and must never be picked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import ImageError

_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "armhf": "arm",
    "armel": "arm",
    "i386": "386",
    "i686": "386",
}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


def normalize(os_name: str, arch: str, variant: str = "") -> Platform:
    os_name = os_name.lower()
    arch = arch.lower()
    variant = variant.lower()
    if arch.startswith("armv") and arch[4:5].isdigit():
        arch, variant = "arm", variant or f"v{arch[4]}"
    arch = _ARCH_ALIASES.get(arch, arch)
    if arch == "arm64" and variant in ("", "8"):
        variant = "v8"
    elif arch == "arm" and variant == "":
        variant = "v7"
    elif arch == "arm" and variant.isdigit():
        variant = f"v{variant}"
    elif arch == "amd64" and variant == "v1":
        variant = ""
    return Platform(os_name, arch, variant)


def parse_platform(text: str) -> Platform:
    """Parse ``os/arch[/variant]`` (``linux/arm64``, ``linux/arm/v7``); ``arch`` alone means linux."""
    parts = text.strip().split("/")
    if len(parts) == 1 and parts[0]:
        parts = ["linux", parts[0]]
    if len(parts) not in (2, 3) or not all(parts):
        raise ImageError(f"invalid platform {text!r}: expected os/arch[/variant]")
    return normalize(*parts)


def host_platform() -> Platform:
    return normalize("linux", os.uname().machine)


def _compatible_variants(wanted: Platform) -> list[str]:
    """Variants of ``wanted.architecture`` that ``wanted`` can run, best first."""
    if wanted.architecture == "arm":
        order = ["v8", "v7", "v6", "v5"]
        start = order.index(wanted.variant) if wanted.variant in order else 1
        return order[start:]
    if wanted.architecture == "amd64":
        if wanted.variant:
            level = int(wanted.variant[1:]) if wanted.variant[1:].isdigit() else 1
            return [f"v{n}" for n in range(level, 1, -1)] + [""]
        return [""]
    return [wanted.variant]


def entry_platform(entry: Mapping[str, Any]) -> Platform | None:
    plat = entry.get("platform")
    if not isinstance(plat, Mapping):
        return None
    os_name, arch = plat.get("os"), plat.get("architecture")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        return None
    variant = plat.get("variant")
    return normalize(os_name, arch, variant if isinstance(variant, str) else "")


def _is_attestation(entry: Mapping[str, Any]) -> bool:
    annotations = entry.get("annotations")
    if isinstance(annotations, Mapping) and annotations.get("vnd.docker.reference.type") == "attestation-manifest":
        return True
    plat = entry.get("platform")
    return isinstance(plat, Mapping) and plat.get("os") == "unknown" and plat.get("architecture") == "unknown"


def select_manifest(entries: Sequence[Mapping[str, Any]], wanted: Platform) -> Mapping[str, Any]:
    """Pick the index entry that best runs on ``wanted``; raise :class:`ImageError` listing the offer."""
    ranked: list[tuple[int, int, Mapping[str, Any]]] = []
    variants = _compatible_variants(wanted)
    offered: list[str] = []
    for position, entry in enumerate(entries):
        if _is_attestation(entry):
            continue
        plat = entry_platform(entry)
        if plat is None:
            continue
        offered.append(str(plat))
        if plat.os != wanted.os or plat.architecture != wanted.architecture:
            continue
        if plat.variant not in variants:
            continue
        ranked.append((variants.index(plat.variant), position, entry))
    if not ranked:
        listing = ", ".join(offered) or "none"
        raise ImageError(f"no image for platform {wanted} in the index (offered: {listing})")
    ranked.sort(key=lambda item: (item[0], item[1]))
    return ranked[0][2]
