"""Image references: ``[registry/]repository[:tag][@digest]`` with Docker's normalisation.

The grammar follows distribution's ``reference`` package (read for facts): the first path
component names a registry only if it contains ``.`` or ``:`` or is ``localhost``; otherwise the
image lives on Docker Hub, whose one-component names get the ``library/`` prefix and whose API
host is ``registry-1.docker.io``. Repositories are lowercase; a digest wins over a tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .._errors import InvalidReference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_COMPONENT_RE = re.compile(rf"^{_COMPONENT}$")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"^(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]{{1,5}})?$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference. ``str()`` gives the canonical form."""

    domain: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def registry(self) -> str:
        """The host[:port] that serves the distribution API for this image."""
        return DOCKER_HUB_API if self.domain == DOCKER_HUB else self.domain

    @property
    def name(self) -> str:
        """``domain/repository`` without tag or digest."""
        return f"{self.domain}/{self.repository}"

    @property
    def object(self) -> str:
        """What to ask the registry for: the digest if known, else the tag."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse ``text`` like Docker does; raise :class:`InvalidReference` saying what is wrong."""
    if not isinstance(text, str) or not text:
        raise InvalidReference("invalid reference: empty image name")
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReference(f"invalid reference {text!r}: contains whitespace")
    if "://" in text:
        raise InvalidReference(f"invalid reference {text!r}: give a reference, not a URL")
    remainder = text
    digest: str | None = None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        _check_digest(text, digest)
    tag: str | None = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidReference(f"invalid reference {text!r}: bad tag {tag!r}")
    domain, path = _split_domain(text, remainder)
    if digest is None and tag is None:
        tag = "latest"
    return Reference(domain, path, tag, digest)


def _split_domain(text: str, name: str) -> tuple[str, str]:
    if not name:
        raise InvalidReference(f"invalid reference {text!r}: empty repository name")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if first != first.lower() and "." not in first and ":" not in first:
            # distribution treats an uppercase first component as a (bad) domain rather than
            # a repository, so "Foo/bar" fails instead of silently meaning docker.io/foo/bar.
            raise InvalidReference(f"invalid reference {text!r}: repository name must be lowercase")
        if not _DOMAIN_RE.match(first):
            raise InvalidReference(f"invalid reference {text!r}: bad registry host {first!r}")
        domain, path = first, rest
    else:
        domain, path = DOCKER_HUB, name
    if domain in _HUB_ALIASES:
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if path != path.lower():
        raise InvalidReference(f"invalid reference {text!r}: repository name must be lowercase")
    for component in path.split("/"):
        if not _COMPONENT_RE.match(component):
            raise InvalidReference(f"invalid reference {text!r}: bad repository component {component!r}")
    if len(f"{domain}/{path}") > _MAX_NAME:
        raise InvalidReference(f"invalid reference {text!r}: repository name longer than {_MAX_NAME} characters")
    return domain, path


def _check_digest(text: str, digest: str) -> None:
    if not _DIGEST_RE.match(digest):
        raise InvalidReference(f"invalid reference {text!r}: bad digest {digest!r}")
    if not _SHA256_RE.match(digest):
        raise InvalidReference(f"invalid reference {text!r}: only sha256 digests (64 lowercase hex) are supported")


def is_sha256_digest(text: str) -> bool:
    return bool(_SHA256_RE.match(text))
