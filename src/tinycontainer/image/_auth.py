"""Registry credentials and ``WWW-Authenticate`` challenges.

Credentials come from the caller, then ``$REGISTRY_AUTH_FILE`` / ``$XDG_RUNTIME_DIR/containers/auth.json``
(podman, skopeo) and ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json`` (docker), whose ``auths``
entries hold ``auth`` = base64("user:password") or ``username``/``password`` or ``identitytoken``.
Credential helpers (``credsStore``) are not run.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .._errors import RegistryError
from ._reference import DOCKER_HUB


@dataclass(frozen=True)
class Credentials:
    """A user name and password (or an identity token used as an OAuth2 refresh token)."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Challenge:
    scheme: str
    params: dict[str, str]


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Parse RFC 7235 challenges; quoted values may contain commas (``scope="repo:x:pull,push"``)."""
    challenges: list[Challenge] = []
    pos, n = 0, len(header)
    current: Challenge | None = None
    after_scheme = False  # a bare token right after the scheme (no comma between) is a token68
    while pos < n:
        while pos < n and header[pos] in " \t,":
            if header[pos] == ",":
                after_scheme = False
            pos += 1
        if pos >= n:
            break
        start = pos
        while pos < n and header[pos] not in " \t,=":
            pos += 1
        token = header[start:pos]
        look = pos
        while look < n and header[look] in " \t":
            look += 1
        is_param = look < n and header[look] == "=" and look + 1 < n and header[look + 1] not in "=,"
        if token and is_param and current is not None:
            pos = look + 1
            while pos < n and header[pos] in " \t":
                pos += 1
            value, pos = _read_value(header, pos)
            current.params[token.lower()] = value
            after_scheme = False
        elif after_scheme and current is not None:
            while pos < n and header[pos] == "=":
                pos += 1
            current.params["token68"] = header[start:pos]
            after_scheme = False
        elif token:
            current = Challenge(token.lower(), {})
            challenges.append(current)
            after_scheme = True
            pos = look
        else:
            pos += 1
    return challenges


def _read_value(header: str, pos: int) -> tuple[str, int]:
    n = len(header)
    if pos < n and header[pos] == '"':
        pos += 1
        out: list[str] = []
        while pos < n and header[pos] != '"':
            if header[pos] == "\\" and pos + 1 < n:
                pos += 1
            out.append(header[pos])
            pos += 1
        return "".join(out), pos + 1
    start = pos
    while pos < n and header[pos] not in ",":
        pos += 1
    return header[start:pos].strip(), pos


def default_auth_file() -> str:
    """Where ``login`` writes: podman's and skopeo's file, so all three tools share credentials.

    containers-auth.json(5): ``$REGISTRY_AUTH_FILE``, else ``$XDG_RUNTIME_DIR/containers/auth.json``,
    else ``/run/containers/$UID/auth.json`` (what podman uses for root without a runtime dir).
    """
    explicit = os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        return explicit
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return os.path.join(runtime_dir, "containers", "auth.json")
    return os.path.join("/run/containers", str(os.getuid()), "auth.json")


def _auth_files() -> Iterable[str]:
    # Added with login: the runtime-dir fallback of default_auth_file, so what login wrote is read back.
    yield default_auth_file()
    docker_dir = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    yield os.path.join(docker_dir, "config.json")


def _keys_for(domain: str, repository: str) -> list[str]:
    """Keys an ``auths`` map may use for this image, most specific first."""
    keys: list[str] = []
    parts = repository.split("/")
    for i in range(len(parts), 0, -1):
        keys.append(f"{domain}/{'/'.join(parts[:i])}")
    keys.append(domain)
    if domain == DOCKER_HUB:
        keys += ["index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"]
    return keys


def _normalize_key(key: str) -> str:
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            if key.endswith(("/v1/", "/v2/", "/v1", "/v2")):
                key = key.rsplit("/v", 1)[0]
            return key.rstrip("/")
    return key.rstrip("/")


def _decode_entry(path: str, key: str, entry: object) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    token = entry.get("identitytoken") or ""
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded_user, sep, decoded_password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise RegistryError(f"{path}: auths[{key!r}].auth is not base64 of user:password") from None
        if not sep:
            raise RegistryError(f"{path}: auths[{key!r}].auth has no ':' between user and password")
        return Credentials(decoded_user, decoded_password, str(token))
    user, password = entry.get("username"), entry.get("password")
    if isinstance(user, str) and isinstance(password, str):
        return Credentials(user, password, str(token))
    if token:
        return Credentials("<token>", "", str(token))
    return None


def load_credentials(domain: str, repository: str, files: Iterable[str] | None = None) -> Credentials | None:
    """Find stored credentials for ``domain/repository``; None when no file has an entry."""
    wanted = _keys_for(domain, repository)
    for path in files if files is not None else _auth_files():
        try:
            with open(path, "rb") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise RegistryError(f"cannot read credentials file {path}: {exc}") from None
        auths = doc.get("auths") if isinstance(doc, dict) else None
        if not isinstance(auths, dict):
            continue
        normalized = {_normalize_key(k): (k, v) for k, v in auths.items()}
        for key in wanted:
            if key in normalized:
                original, entry = normalized[key]
                creds = _decode_entry(path, original, entry)
                if creds is not None:
                    return creds
    return None


def login_key(registry: str) -> str:
    """The ``auths`` key for a registry given as ``host[:port]``, a URL, or Docker Hub's aliases."""
    key = _normalize_key(registry.strip())
    if "/" in key:
        key = key.split("/", 1)[0]
    if not key:
        raise RegistryError("no registry given")
    if key in ("index.docker.io", "registry-1.docker.io"):
        return DOCKER_HUB
    return key.lower()


def _read_auth_doc(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read credentials file {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"credentials file {path} is not a JSON object")
    return doc


def _write_auth_doc(path: str, doc: dict[str, object]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    # mkstemp creates the file 0600 before a byte of the secret is written; rename(2) makes the
    # switch atomic, so a reader (a concurrent pull) never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".auth-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent="\t")
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_credentials(registry: str, credentials: Credentials, path: str | None = None) -> str:
    """Store ``credentials`` for ``registry`` (file mode 0600, atomic); return the file's path.

    Other registries' entries and unknown top-level keys (``credHelpers``...) are kept.
    """
    path = path or default_auth_file()
    key = login_key(registry)
    with _locked(path):
        doc = _read_auth_doc(path)
        auths = doc.get("auths")
        if not isinstance(auths, dict):
            auths = {}
        for other in [k for k in auths if _normalize_key(k) == key]:
            del auths[other]
        raw = f"{credentials.username}:{credentials.password}".encode()
        auths[key] = {"auth": base64.b64encode(raw).decode("ascii")}
        doc["auths"] = auths
        _write_auth_doc(path, doc)
    return path


def remove_credentials(registry: str, path: str | None = None) -> bool:
    """Forget ``registry``'s credentials; False when there were none."""
    path = path or default_auth_file()
    key = login_key(registry)
    with _locked(path):
        doc = _read_auth_doc(path)
        auths = doc.get("auths")
        if not isinstance(auths, dict):
            return False
        matching = [k for k in auths if _normalize_key(k) == key]
        if not matching:
            return False
        for other in matching:
            del auths[other]
        _write_auth_doc(path, doc)
    return True


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """Serialise read-modify-write of the file between concurrent logins (a sibling lock file)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
