"""Platform normalisation and the choice of a manifest from an index."""

from __future__ import annotations

from typing import Any

import pytest

from tinycontainer._errors import ImageError
from tinycontainer.image._platform import Platform, normalize, parse_platform, select_manifest


def entry(name: str, os_name: str, arch: str, variant: str | None = None, **extra: Any) -> dict[str, Any]:
    plat: dict[str, str] = {"os": os_name, "architecture": arch}
    if variant:
        plat["variant"] = variant
    return {"digest": name, "platform": plat, **extra}


ATTESTATION = entry("attest", "unknown", "unknown", annotations={"vnd.docker.reference.type": "attestation-manifest"})
INDEX = [
    ATTESTATION,
    entry("amd64", "linux", "amd64"),
    entry("arm64", "linux", "arm64"),  # no variant: means v8
    entry("armv6", "linux", "arm", "v6"),
    entry("armv7", "linux", "arm", "v7"),
    entry("win", "windows", "amd64"),
]


@pytest.mark.parametrize(
    ("wanted", "picked"),
    [
        ("linux/amd64", "amd64"),
        ("linux/x86_64", "amd64"),
        ("amd64", "amd64"),
        ("linux/arm64", "arm64"),
        ("linux/arm64/v8", "arm64"),
        ("linux/aarch64", "arm64"),
        ("linux/arm/v7", "armv7"),
        ("linux/arm", "armv7"),
        ("linux/arm/v6", "armv6"),
        ("windows/amd64", "win"),
    ],
)
def test_select(wanted: str, picked: str) -> None:
    assert select_manifest(INDEX, parse_platform(wanted))["digest"] == picked


def test_arm_fallbacks_prefer_the_closest_variant() -> None:
    only_v5_v6 = [entry("v5", "linux", "arm", "v5"), entry("v6", "linux", "arm", "v6")]
    assert select_manifest(only_v5_v6, parse_platform("linux/arm/v7"))["digest"] == "v6"
    with pytest.raises(ImageError, match="no image for platform linux/arm/v5"):
        select_manifest([entry("v6", "linux", "arm", "v6")], parse_platform("linux/arm/v5"))


def test_attestations_and_unknown_entries_are_never_picked() -> None:
    unknown_first = [entry("attest", "unknown", "unknown"), {"digest": "no-platform"}]
    with pytest.raises(ImageError, match=r"offered: none"):
        select_manifest(unknown_first, parse_platform("linux/amd64"))


def test_error_lists_the_offer() -> None:
    with pytest.raises(ImageError, match=r"linux/s390x.*offered: linux/amd64, linux/arm64/v8"):
        select_manifest(INDEX, parse_platform("linux/s390x"))


def test_normalize() -> None:
    assert normalize("Linux", "AARCH64") == Platform("linux", "arm64", "v8")
    assert normalize("linux", "armv7l") == Platform("linux", "arm", "v7")
    assert normalize("linux", "arm", "7") == Platform("linux", "arm", "v7")
    assert normalize("linux", "x86_64") == Platform("linux", "amd64", "")
    assert str(parse_platform("linux/arm/v6")) == "linux/arm/v6"
    with pytest.raises(ImageError, match="invalid platform"):
        parse_platform("linux/")
