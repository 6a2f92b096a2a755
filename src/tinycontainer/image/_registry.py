"""A client for the OCI distribution spec v2 (pull side): manifests, blobs, authentication.

Integrity: every manifest and blob is checked by sha256 over the raw bytes against the digest that
the reference or the parent descriptor names; ``Docker-Content-Digest`` is never trusted.
Authentication: an anonymous request first, then whatever the 401's ``WWW-Authenticate`` asks for:
a Bearer token from the realm (cached per realm/service/scope until it expires) or Basic.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from .._errors import DigestMismatch, ImageError, RegistryError
from . import _media as M
from ._auth import Credentials, parse_www_authenticate
from ._http import HttpClient, Response, is_loopback, origin_of
from ._reference import Reference

_CHUNK = 1 << 20
_MAX_TOKEN_BYTES = 1 << 20


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as fetched: raw bytes, their digest, media type and parsed JSON."""

    raw: bytes
    digest: str
    media_type: str
    doc: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in M.INDEX_TYPES


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class TokenCache:
    """Bearer tokens shared by all clients of one store, keyed by realm, service, scope and user."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}

    def get(self, key: tuple[str, str, str, str]) -> str | None:
        with self._lock:
            entry = self._tokens.get(key)
            if entry is None or entry[1] <= time.monotonic():
                return None
            return entry[0]

    def put(self, key: tuple[str, str, str, str], token: str, lifetime: float) -> None:
        with self._lock:
            # Renew 10 s early so a token does not expire between check and use.
            self._tokens[key] = (token, time.monotonic() + max(lifetime - 10, 1))


class RegistryClient:
    """Pull-side access to one repository."""

    def __init__(
        self,
        ref: Reference,
        http: HttpClient,
        *,
        insecure: bool | None = None,
        credentials: Credentials | None = None,
        tokens: TokenCache | None = None,
    ) -> None:
        host = ref.registry
        hostname = urllib.parse.urlsplit(f"//{host}").hostname or host
        plain = insecure if insecure is not None else is_loopback(hostname)
        self.base = f"{'http' if plain else 'https'}://{host}"
        self.ref = ref
        self.http = http
        self.credentials = credentials
        self.tokens = tokens or TokenCache()
        self._authorization: str | None = None
        self._lock = threading.Lock()

    # -- requests -------------------------------------------------------------------------

    def _request(self, method: str, path: str, headers: Mapping[str, str] | None = None) -> Response:
        url = self.base + path
        resp = self.http.request(method, url, headers, authorization=self._authorization)
        if resp.status != 401:
            return resp
        challenge_header = resp.header("WWW-Authenticate") or ""
        body = _error_text(resp)
        with self._lock:
            self._authenticate(challenge_header, body)
        resp = self.http.request(method, url, headers, authorization=self._authorization)
        if resp.status == 401:
            body = _error_text(resp)
            who = f"as {self.credentials.username!r}" if self.credentials else "anonymously"
            raise RegistryError(f"{self.ref.name}: access denied {who} ({body or 'unauthorized'})", status=401)
        return resp

    def _authenticate(self, header: str, body: str) -> None:
        challenges = parse_www_authenticate(header)
        by_scheme = {c.scheme: c for c in challenges}
        if "bearer" in by_scheme:
            params = by_scheme["bearer"].params
            self._authorization = "Bearer " + self._fetch_token(params)
            return
        if "basic" in by_scheme:
            if self.credentials is None:
                raise RegistryError(
                    f"{self.ref.registry}: authentication required and no credentials found", status=401
                )
            if not self.base.startswith("https://") and not is_loopback(origin_of(self.base)[1]):
                raise RegistryError(f"{self.ref.registry}: refusing to send a password over plain http", status=401)
            self._authorization = self.credentials.basic()
            return
        raise RegistryError(
            f"{self.ref.registry}: unsupported authentication challenge {header!r} ({body})", status=401
        )

    def _fetch_token(self, params: Mapping[str, str]) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{self.ref.registry}: bearer challenge without realm", status=401)
        service = params.get("service", "")
        scope = params.get("scope") or f"repository:{self.ref.repository}:pull"
        user = self.credentials.username if self.credentials else ""
        key = (realm, service, scope, user)
        cached = self.tokens.get(key)
        if cached is not None:
            return cached
        query: list[tuple[str, str]] = []
        if service:
            query.append(("service", service))
        for one in scope.split(" "):
            query.append(("scope", one))
        if self.credentials and self.credentials.username and self.credentials.username != "<token>":
            query.append(("account", self.credentials.username))
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        realm_origin = origin_of(realm)
        if realm_origin[0] not in ("http", "https"):
            raise RegistryError(f"{self.ref.registry}: bad token realm {realm!r}")
        # Credentials go to the realm only over https (or to a loopback test server).
        may_send = self.credentials is not None and (realm_origin[0] == "https" or is_loopback(realm_origin[1]))
        if may_send and self.credentials is not None and self.credentials.identity_token:
            # An identity token is an OAuth2 refresh token: exchanged by POST (docker's "oauth" flow).
            form = {
                "grant_type": "refresh_token",
                "refresh_token": self.credentials.identity_token,
                "client_id": "tinycontainer",
                "access_type": "offline",
                "service": service,
                "scope": scope,
            }
            resp = self.http.request(
                "POST",
                realm,
                {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
                body=urllib.parse.urlencode(form).encode(),
            )
        else:
            authorization = self.credentials.basic() if may_send and self.credentials is not None else None
            resp = self.http.request("GET", url, {"Accept": "application/json"}, authorization=authorization)
        if resp.status != 200:
            text = _error_text(resp)
            raise RegistryError(f"token server {realm} answered {resp.status}: {text}", status=resp.status)
        raw = resp.read_capped(_MAX_TOKEN_BYTES, "token response")
        try:
            doc = json.loads(raw)
        except ValueError:
            raise RegistryError(f"token server {realm} sent invalid JSON") from None
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"token server {realm} sent no token")
        expires = doc.get("expires_in", 60)
        lifetime = float(expires) if isinstance(expires, (int, float)) and expires > 0 else 60.0
        self.tokens.put(key, token, lifetime)
        return token

    # -- manifests ------------------------------------------------------------------------

    def get_manifest(self, reference: str, expected_digest: str | None = None) -> Manifest:
        """Fetch a manifest or index by tag or digest; verify it when the digest is known."""
        path = f"/v2/{self.ref.repository}/manifests/{reference}"
        resp = self._request("GET", path, {"Accept": M.MANIFEST_ACCEPT})
        if resp.status != 200:
            raise _status_error(
                resp,
                f"manifest {self.ref.name}:{reference}"
                if ":" not in reference
                else f"manifest {self.ref.name}@{reference}",
            )
        content_type = (resp.header("Content-Type") or "").split(";")[0].strip()
        raw = resp.read_capped(M.MAX_MANIFEST_BYTES, "manifest")
        digest = sha256_digest(raw)
        if expected_digest is not None and digest != expected_digest:
            raise DigestMismatch(expected_digest, digest, "manifest")
        try:
            doc = json.loads(raw)
        except ValueError:
            raise RegistryError(f"{self.ref.name}: manifest is not valid JSON") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"{self.ref.name}: manifest is not a JSON object")
        media_type = doc.get("mediaType") if isinstance(doc.get("mediaType"), str) else content_type
        if media_type in M.DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
            raise ImageError(
                f"{self.ref}: the registry serves a Docker schema 1 manifest, which is deprecated and not supported"
            )
        if not media_type:
            media_type = M.OCI_INDEX if "manifests" in doc else M.OCI_MANIFEST
        if media_type not in M.INDEX_TYPES and media_type not in M.MANIFEST_TYPES:
            raise ImageError(f"{self.ref}: unsupported manifest media type {media_type!r}")
        return Manifest(raw, digest, str(media_type), doc)

    # -- blobs ----------------------------------------------------------------------------

    def read_blob(self, digest: str, size: int, cap: int) -> bytes:
        """Fetch a small blob (a config) into memory, verified."""
        if size > cap:
            raise RegistryError(f"blob {digest} is {size} bytes, more than the limit of {cap}")
        resp = self._request("GET", f"/v2/{self.ref.repository}/blobs/{digest}")
        if resp.status != 200:
            raise _status_error(resp, f"blob {digest}")
        raw = resp.read_capped(cap, f"blob {digest}")
        actual = sha256_digest(raw)
        if actual != digest:
            raise DigestMismatch(digest, actual)
        return raw

    def download_blob(
        self,
        digest: str,
        size: int,
        out: BinaryIO,
        progress: Callable[[int], None] | None = None,
        max_resumes: int = 5,
    ) -> None:
        """Stream a blob into ``out`` (empty, seekable), resuming a cut transfer with ``Range``.

        Raises :class:`DigestMismatch` when the bytes do not hash to ``digest`` or exceed ``size``.
        """
        hasher = hashlib.sha256()
        done = 0
        resumes = 0
        path = f"/v2/{self.ref.repository}/blobs/{digest}"
        while True:
            headers = {"Range": f"bytes={done}-"} if done else {}
            resp = self._request("GET", path, headers)
            try:
                if resp.status == 200 and done:
                    # The server ignored Range: start over.
                    out.seek(0)
                    out.truncate()
                    hasher = hashlib.sha256()
                    done = 0
                elif resp.status == 206 and not _range_starts_at(resp, done):
                    raise RegistryError(f"blob {digest}: server answered a range we did not ask for")
                elif resp.status not in (200, 206):
                    raise _status_error(resp, f"blob {digest}")
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    done += len(chunk)
                    if done > size:
                        raise DigestMismatch(digest, f"more than the {size} bytes the descriptor announced")
                    hasher.update(chunk)
                    _write(out, chunk, digest)
                    if progress is not None:
                        progress(done)
                if done < size:
                    raise http.client.IncompleteRead(b"", size - done)
            except (OSError, http.client.HTTPException) as exc:
                # Only network failures get here: local write errors are re-raised as ImageError.
                resumes += 1
                if resumes > max_resumes:
                    raise RegistryError(
                        f"blob {digest}: download failed after {max_resumes} resumes: {exc!r}"
                    ) from None
                time.sleep(min(self.http.retry.base_delay * resumes, self.http.retry.max_delay))
                continue
            finally:
                resp.close()
            break
        out.flush()
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            raise DigestMismatch(digest, actual)


def _write(out: BinaryIO, chunk: bytes, digest: str) -> None:
    try:
        out.write(chunk)
    except OSError as exc:
        raise ImageError(f"cannot store blob {digest}: {exc}") from None


def _range_starts_at(resp: Response, offset: int) -> bool:
    content_range = resp.header("Content-Range") or ""
    # "bytes START-END/TOTAL"
    unit, _, spec = content_range.partition(" ")
    start = spec.split("-", 1)[0]
    return unit == "bytes" and start.isdigit() and int(start) == offset


def _error_text(resp: Response) -> str:
    try:
        raw = resp.read(64 * 1024)
    except (OSError, http.client.HTTPException):
        raw = b""
    finally:
        resp.close()
    try:
        doc = json.loads(raw)
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if isinstance(errors, list) and errors:
            return "; ".join(
                f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors if isinstance(e, dict)
            )
    except ValueError:
        pass
    return raw.decode("utf-8", "replace").strip()[:300]


def _status_error(resp: Response, what: str) -> RegistryError:
    status = resp.status
    text = _error_text(resp)
    if status == 404:
        return RegistryError(f"{what} not found ({text or 'not found'})", status=404)
    if status == 403:
        return RegistryError(f"{what}: access denied ({text or 'forbidden'})", status=403)
    if status == 429:
        return RegistryError(f"{what}: rate limited by the registry ({text or 'too many requests'})", status=429)
    return RegistryError(f"{what}: registry answered HTTP {status} ({text})", status=status)
