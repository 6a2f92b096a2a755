"""Docker Hub's flows against the real registry: a JWT token server, and blobs redirected to a "CDN".

The token server signs ES256 JWTs with an ``x5c`` header whose self-signed certificate is also
the registry's ``rootcertbundle`` (research/registry.md); the CDN refuses any request carrying
``Authorization``, as S3 signed URLs do.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.integration.image._builder import build_image, make_tar, reg
from tests.integration.image._registry_server import Pusher, RegistryProcess, start_registry
from tests.integration.image._trees import describe
from tests.integration.image.conftest import AUTH_PASSWORD, AUTH_USER

from tinycontainer._errors import RegistryError
from tinycontainer.image import Credentials, HttpClient, ImageStore, RetryPolicy

pytestmark = pytest.mark.registry

crypto = pytest.importorskip("cryptography")

SERVICE = "registry.test"
ISSUER = "test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Signer:
    def __init__(self, workdir: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token-signer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.bundle = workdir / "token-cert.pem"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def token(self, access: list[dict[str, object]]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": AUTH_USER,
            "aud": SERVICE,  # a string: distribution 2.8 rejects a list
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": os.urandom(8).hex(),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class _Server:
    def __init__(self, handler_cls: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def token_setup(
    tmp_path_factory: pytest.TempPathFactory, registry_storage: Path, registry: RegistryProcess
) -> Iterator[tuple[RegistryProcess, list[dict[str, str]]]]:
    workdir = tmp_path_factory.mktemp("token")
    signer = _Signer(workdir)
    seen: list[dict[str, str]] = []
    expected_basic = "Basic " + base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode()

    class TokenHandler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            seen.append({"scope": " ".join(query.get("scope", [])), "auth": self.headers.get("Authorization", "")})
            if self.headers.get("Authorization") != expected_basic:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            access = []
            for scope in query.get("scope", []):
                kind, name, actions = scope.split(":")
                access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a == "pull"]})
            body = json.dumps({"token": signer.token(access), "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = _Server(TokenHandler)
    auth_yaml = (
        "auth:\n  token:\n"
        f"    realm: http://127.0.0.1:{server.port}/token\n"
        f"    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {signer.bundle}\n"
    )
    try:
        reg_proc = start_registry(str(workdir), str(registry_storage), auth_yaml)
    except BaseException:
        server.stop()
        raise
    try:
        yield reg_proc, seen
    finally:
        reg_proc.stop()
        server.stop()


def _store(root: Path) -> ImageStore:
    return ImageStore(
        str(root), http=HttpClient(timeout=10, retry=RetryPolicy(attempts=2, base_delay=0.01)), credential_files=[]
    )


def test_token_auth(token_setup: tuple[RegistryProcess, list[dict[str, str]]], pusher: Pusher, tmp_path: Path) -> None:
    token_registry, seen = token_setup
    built = build_image([make_tar([reg("t", b"token")])])
    pusher.image("tests/token", built, "latest")
    ref = f"{token_registry.host}/tests/token:latest"

    with pytest.raises(RegistryError, match=r"token server .* answered 401"):
        _store(tmp_path / "anon").pull(ref)

    store = _store(tmp_path / "ok")
    img = store.pull(ref, auth=Credentials(AUTH_USER, AUTH_PASSWORD))
    assert describe(store.layer_dirs(img)[0]) == {"t": "file:token"}
    assert seen[-1]["scope"] == "repository:tests/token:pull"
    requests_before = len(seen)
    store.pull(ref, auth=Credentials(AUTH_USER, AUTH_PASSWORD))
    assert len(seen) == requests_before  # the token was cached per scope


@pytest.fixture(scope="module")
def cdn_setup(
    tmp_path_factory: pytest.TempPathFactory, registry_storage: Path, registry: RegistryProcess
) -> Iterator[tuple[RegistryProcess, list[dict[str, str]]]]:
    from tests.integration.image.conftest import _bcrypt_hash

    hashed = _bcrypt_hash(AUTH_PASSWORD)
    if hashed is None:
        pytest.skip("needs python bcrypt or htpasswd (apache2-utils)")
    workdir = tmp_path_factory.mktemp("cdn")
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(f"{AUTH_USER}:{hashed}\n")
    seen: list[dict[str, str]] = []

    class CdnHandler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)

        def do_GET(self) -> None:
            seen.append({"path": self.path, "auth": self.headers.get("Authorization", "")})
            if self.headers.get("Authorization"):
                self._reply(400, b"Only one auth mechanism allowed")
                return
            rel = urllib.parse.urlsplit(self.path).path.lstrip("/")
            full = os.path.realpath(os.path.join(registry_storage, rel))
            if not full.startswith(str(registry_storage) + os.sep) or not os.path.isfile(full):
                self._reply(404, b"")
                return
            with open(full, "rb") as fh:
                self._reply(200, fh.read())

        do_HEAD = do_GET

    server = _Server(CdnHandler)
    auth_yaml = (
        f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n"
        f"middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: http://localhost:{server.port}\n"
    )
    try:
        reg_proc = start_registry(str(workdir), str(registry_storage), auth_yaml)
    except BaseException:
        server.stop()
        raise
    try:
        yield reg_proc, seen
    finally:
        reg_proc.stop()
        server.stop()


def test_blobs_redirected_to_a_cdn_get_no_authorization(
    cdn_setup: tuple[RegistryProcess, list[dict[str, str]]], pusher: Pusher, tmp_path: Path
) -> None:
    cdn_registry, seen = cdn_setup
    built = build_image([make_tar([reg("cdn", b"via-cdn")])])
    pusher.image("tests/cdn", built, "latest")
    store = _store(tmp_path / "s")
    img = store.pull(f"{cdn_registry.host}/tests/cdn:latest", auth=Credentials(AUTH_USER, AUTH_PASSWORD))
    assert describe(store.layer_dirs(img)[0]) == {"cdn": "file:via-cdn"}
    assert seen, "the registry did not redirect to the CDN"
    assert all(entry["auth"] == "" for entry in seen)
