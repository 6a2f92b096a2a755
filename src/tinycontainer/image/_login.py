"""Check credentials against a registry before ``login`` stores them (what ``docker login`` does).

``GET /v2/`` anonymously; a 200 means the registry needs no login (accepted, as docker does). A
Basic challenge is answered with the credentials on the same URL; a Bearer challenge sends them
to the token realm without a scope (docker's login asks for no repository), and the realm's 401
is the verdict.
"""

from __future__ import annotations

import urllib.parse

from .._errors import RegistryError
from ._auth import Credentials, login_key, parse_www_authenticate
from ._http import HttpClient, is_loopback, origin_of
from ._reference import DOCKER_HUB, DOCKER_HUB_API


def verify_login(
    registry: str, credentials: Credentials, *, http: HttpClient | None = None, insecure: bool | None = None
) -> None:
    """Raise :class:`RegistryError` (status 401) unless ``registry`` accepts ``credentials``."""
    http = http or HttpClient(timeout=30)
    host = login_key(registry)
    api_host = DOCKER_HUB_API if host == DOCKER_HUB else host
    hostname = urllib.parse.urlsplit(f"//{api_host}").hostname or api_host
    plain = insecure if insecure is not None else is_loopback(hostname)
    url = f"{'http' if plain else 'https'}://{api_host}/v2/"
    resp = http.request("GET", url, {"Accept": "application/json"})
    resp.close()
    if resp.status == 200:
        return
    if resp.status != 401:
        raise RegistryError(f"{host}: /v2/ answered HTTP {resp.status}: is this a registry?", status=resp.status)
    challenges = {c.scheme: c.params for c in parse_www_authenticate(resp.header("WWW-Authenticate") or "")}
    if "bearer" in challenges:
        params = challenges["bearer"]
        realm = params.get("realm", "")
        scheme, realm_host, _port = origin_of(realm)
        if scheme not in ("http", "https"):
            raise RegistryError(f"{host}: bad token realm {realm!r}", status=401)
        if scheme != "https" and not is_loopback(realm_host):
            raise RegistryError(f"{host}: refusing to send a password to the plain-http realm {realm}", status=401)
        query = [("account", credentials.username)]
        if params.get("service"):
            query.append(("service", params["service"]))
        target = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        check = http.request("GET", target, {"Accept": "application/json"}, authorization=credentials.basic())
    elif "basic" in challenges:
        if plain and not is_loopback(hostname):
            raise RegistryError(f"{host}: refusing to send a password over plain http", status=401)
        check = http.request("GET", url, {"Accept": "application/json"}, authorization=credentials.basic())
    else:
        raise RegistryError(f"{host}: unsupported authentication challenge", status=401)
    check.close()
    if check.status in (401, 403):
        raise RegistryError(f"{host}: login failed: wrong username or password", status=check.status)
    if check.status != 200:
        raise RegistryError(f"{host}: login check answered HTTP {check.status}", status=check.status)
