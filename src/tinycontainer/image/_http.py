"""A small HTTP client on ``http.client`` that follows redirects itself.

Why not urllib: ``urllib`` forwards an ``Authorization`` header set on the ``Request`` across a
cross-host 307 (measured against a fake CDN in research/registry.md), which leaks registry
credentials to blob stores and breaks signed URLs ("Only one auth mechanism allowed"). Here the
caller's ``Authorization`` is only sent to the origin it was meant for.

Retries: 429 and 5xx answers and broken connections are retried with bounded exponential backoff,
honouring ``Retry-After`` (containers/image retries 5 times, 2 s to 60 s).
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import ipaddress
import ssl
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from .._errors import RegistryError

USER_AGENT = "tinycontainer/0.1"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 8


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        wanted = self.base_delay * (2**attempt)
        hinted = _parse_retry_after(retry_after)
        if hinted is not None:
            wanted = max(wanted, hinted)
        return float(min(wanted, self.max_delay))


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> tuple[str, str, int]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


class Response:
    """A streamed response; read it to the end or :meth:`close` it."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, url: str) -> None:
        self._conn = conn
        self._resp = resp
        self.url = url
        self.status = resp.status
        self.headers = resp.headers

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def read(self, amount: int | None = None) -> bytes:
        return self._resp.read(amount)

    def read_capped(self, cap: int, what: str) -> bytes:
        length = self.header("Content-Length")
        if length and length.isdigit() and int(length) > cap:
            self.close()
            raise RegistryError(f"{what} is {length} bytes, more than the limit of {cap}")
        data = self._resp.read(cap + 1)
        if len(data) > cap:
            self.close()
            raise RegistryError(f"{what} is larger than the limit of {cap} bytes")
        self.close()
        return data

    def close(self) -> None:
        self._resp.close()
        self._conn.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HttpClient:
    """Redirect-following, retrying, proxy-aware requests; one connection per request."""

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        ssl_context: ssl.SSLContext | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> None:
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._ssl_context = ssl_context
        self._proxies = dict(proxies) if proxies is not None else urllib.request.getproxies_environment()

    @property
    def _ssl(self) -> ssl.SSLContext:
        # Loading the system CA bundle costs ~30 ms: only pay it when https is used.
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        authorization: str | None = None,
        body: bytes | None = None,
        retry: bool = True,
    ) -> Response:
        """Send a request; ``authorization`` goes only to ``url``'s own origin, never to a redirect target."""
        attempt = 0
        while True:
            try:
                resp = self._follow(method, url, headers or {}, authorization, body)
            except (OSError, http.client.HTTPException) as exc:
                if not retry or attempt + 1 >= self.retry.attempts:
                    raise RegistryError(f"{method} {_redact(url)}: {exc}") from None
                time.sleep(self.retry.delay(attempt, None))
                attempt += 1
                continue
            if retry and resp.status in RETRY_STATUSES and attempt + 1 < self.retry.attempts:
                retry_after = resp.header("Retry-After")
                resp.close()
                time.sleep(self.retry.delay(attempt, retry_after))
                attempt += 1
                continue
            return resp

    def _follow(
        self, method: str, url: str, headers: Mapping[str, str], authorization: str | None, body: bytes | None
    ) -> Response:
        auth_origin = origin_of(url)
        for _ in range(_MAX_REDIRECTS + 1):
            sent = dict(headers)
            sent.setdefault("User-Agent", USER_AGENT)
            if authorization and origin_of(url) == auth_origin:
                sent["Authorization"] = authorization
            resp = self._send(method, url, sent, body)
            if resp.status not in _REDIRECT_STATUSES or method not in ("GET", "HEAD"):
                return resp
            location = resp.header("Location")
            resp.close()
            if not location:
                raise RegistryError(f"{method} {_redact(url)}: redirect without a Location", status=resp.status)
            url = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
                raise RegistryError(f"refusing redirect to {_redact(url)}")
        raise RegistryError(f"{method} {_redact(url)}: more than {_MAX_REDIRECTS} redirects")

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> Response:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        scheme = parts.scheme.lower()
        port = parts.port or (443 if scheme == "https" else 80)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        proxy = self._proxy_for(scheme, host)
        conn: http.client.HTTPConnection
        if proxy is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._ssl)
            else:
                conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        else:
            proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            proxy_headers: dict[str, str] = {}
            if proxy_parts.username:
                user = urllib.parse.unquote(proxy_parts.username)
                secret = urllib.parse.unquote(proxy_parts.password or "")
                proxy_headers["Proxy-Authorization"] = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
            proxy_host, proxy_port = proxy_parts.hostname or "", proxy_parts.port or 3128
            if scheme == "https":
                conn = http.client.HTTPSConnection(proxy_host, proxy_port, timeout=self.timeout, context=self._ssl)
                conn.set_tunnel(host, port, headers=proxy_headers)
            else:
                conn = http.client.HTTPConnection(proxy_host, proxy_port, timeout=self.timeout)
                target = urllib.parse.urlunsplit((scheme, parts.netloc.rpartition("@")[2], target, "", ""))
                headers = {**headers, **proxy_headers}
        try:
            conn.request(method, target, body=body, headers=headers)
            raw = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        return Response(conn, raw, url)

    def _proxy_for(self, scheme: str, host: str) -> str | None:
        # Loopback registries (tests, local mirrors) are never proxied.
        if is_loopback(host):
            return None
        proxy = self._proxies.get(scheme)
        if not proxy:
            return None
        if _no_proxy_matches(host, self._proxies.get("no", "")):
            return None
        return proxy


def _no_proxy_matches(host: str, no_proxy: str) -> bool:
    """curl/Go semantics: ``*`` matches all; ``example.com`` and ``.example.com`` match it and subdomains."""
    host = host.lower().strip("[]")
    for entry in no_proxy.split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry = entry.split(":")[0] if entry.count(":") == 1 else entry
        entry = entry.lstrip(".")
        if host == entry or host.endswith("." + entry):
            return True
    return False


def _redact(url: str) -> str:
    """Drop the query: signed CDN URLs carry credentials there."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
