"""Reference parsing: Docker's normalisation rules and clear errors."""

from __future__ import annotations

import pytest

from tinycontainer._errors import InvalidReference
from tinycontainer.image import parse_reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "domain", "repository", "tag", "digest", "registry"),
    [
        ("alpine", "docker.io", "library/alpine", "latest", None, "registry-1.docker.io"),
        ("alpine:3.19", "docker.io", "library/alpine", "3.19", None, "registry-1.docker.io"),
        ("library/alpine", "docker.io", "library/alpine", "latest", None, "registry-1.docker.io"),
        ("docker.io/alpine", "docker.io", "library/alpine", "latest", None, "registry-1.docker.io"),
        ("index.docker.io/library/alpine", "docker.io", "library/alpine", "latest", None, "registry-1.docker.io"),
        ("user/repo:tag", "docker.io", "user/repo", "tag", None, "registry-1.docker.io"),
        ("quay.io/org/app", "quay.io", "org/app", "latest", None, "quay.io"),
        ("localhost/app", "localhost", "app", "latest", None, "localhost"),
        ("localhost:5000/x", "localhost:5000", "x", "latest", None, "localhost:5000"),
        ("127.0.0.1:5000/a/b/c:v1", "127.0.0.1:5000", "a/b/c", "v1", None, "127.0.0.1:5000"),
        (f"alpine@{DIGEST}", "docker.io", "library/alpine", None, DIGEST, "registry-1.docker.io"),
        (f"alpine:3@{DIGEST}", "docker.io", "library/alpine", "3", DIGEST, "registry-1.docker.io"),
        (
            "my-registry.example.com:443/a_b/c.d__e-f",
            "my-registry.example.com:443",
            "a_b/c.d__e-f",
            "latest",
            None,
            "my-registry.example.com:443",
        ),
        ("[::1]:5000/img", "[::1]:5000", "img", "latest", None, "[::1]:5000"),
        ("Registry.Example.com/app", "Registry.Example.com", "app", "latest", None, "Registry.Example.com"),
    ],
)
def test_parse(text: str, domain: str, repository: str, tag: str | None, digest: str | None, registry: str) -> None:
    ref = parse_reference(text)
    assert (ref.domain, ref.repository, ref.tag, ref.digest) == (domain, repository, tag, digest)
    assert ref.registry == registry
    assert parse_reference(str(ref)) == ref  # the canonical form round-trips


def test_canonical_forms() -> None:
    assert str(parse_reference("alpine")) == "docker.io/library/alpine:latest"
    assert str(parse_reference(f"alpine@{DIGEST}")) == f"docker.io/library/alpine@{DIGEST}"
    ref = parse_reference(f"alpine:3@{DIGEST}")
    assert ref.object == DIGEST  # a digest wins over a tag
    assert parse_reference("alpine:3").object == "3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("Alpine", "lowercase"),
        ("docker.io/Library/alpine", "lowercase"),
        ("UPPER/repo", "lowercase"),
        ("alpine:", "bad tag"),
        ("alpine:-x", "bad tag"),
        ("alpine:" + "a" * 129, "bad tag"),
        ("alpine@sha256:abc", "bad digest"),
        ("alpine@md5:" + "a" * 32, "only sha256"),
        ("alpine@sha256:" + "A" * 64, "only sha256"),
        ("a//b", "bad repository component"),
        ("a/-b", "bad repository component"),
        ("https://quay.io/x", "not a URL"),
        (" alpine", "whitespace"),
        ("al pine", "whitespace"),
        ("bad_host.:5000/x", "bad registry host"),
        ("x/" + "a" * 260, "longer than 255"),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message):
        parse_reference(text)
