"""The distribution client against scripted servers on 127.0.0.1: auth, redirects, retries, resume, limits."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from tests.unit.image._fake_http import Reply, Request, serve

from tinycontainer._errors import DigestMismatch, ImageError, RegistryError
from tinycontainer.image import Credentials, HttpClient, ImageStore, RetryPolicy, parse_reference
from tinycontainer.image._http import _no_proxy_matches
from tinycontainer.image._registry import RegistryClient, TokenCache

FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def client_for(host: str, **kwargs: object) -> RegistryClient:
    return RegistryClient(parse_reference(f"{host}/foo/bar:latest"), HttpClient(timeout=5, retry=FAST), **kwargs)  # type: ignore[arg-type]


MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}).encode()


def test_bearer_token_flow_with_quoted_scope_and_cache() -> None:
    scope = "repository:foo/bar:pull,push"

    def token_server(req: Request) -> Reply:
        assert "scope=repository%3Afoo%2Fbar%3Apull%2Cpush" in req.path
        assert "service=svc" in req.path
        assert req.headers.get("authorization") == Credentials("me", "pw").basic()
        return Reply(body=json.dumps({"token": "T1", "expires_in": 300}).encode())

    with serve(token_server) as tokens:

        def registry(req: Request) -> Reply:
            if req.headers.get("authorization") != "Bearer T1":
                challenge = f'Bearer realm="{tokens.url}/token",service="svc",scope="{scope}"'
                return Reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
            return Reply(body=MANIFEST, headers={"Content-Type": OCI_MANIFEST})

        with serve(registry) as reg:
            cache = TokenCache()
            creds = Credentials("me", "pw")
            first = client_for(reg.host, credentials=creds, tokens=cache).get_manifest("latest")
            assert first.digest == sha(MANIFEST)
            client_for(reg.host, credentials=creds, tokens=cache).get_manifest("latest")
            assert len(tokens.requests) == 1  # the second client reused the cached token
            assert all(
                "authorization" not in r.headers or r.headers["authorization"] == "Bearer T1" for r in reg.requests
            )


def test_token_server_refusal_is_a_clear_error() -> None:
    with (
        serve(lambda req: Reply(403, b'{"details":"nope"}')) as tokens,
        serve(lambda req: Reply(401, headers={"WWW-Authenticate": f'Bearer realm="{tokens.url}/t"'})) as reg,
        pytest.raises(RegistryError, match=r"token server .* answered 403"),
    ):
        client_for(reg.host).get_manifest("latest")


def test_authorization_is_not_forwarded_to_a_redirect_target() -> None:
    blob = b"layer bytes" * 1000

    def cdn(req: Request) -> Reply:
        if "authorization" in req.headers:
            return Reply(400, b"Only one auth mechanism allowed")
        assert "sig=abc" in req.path
        return Reply(body=blob)

    with serve(cdn) as cdn_server:

        def registry(req: Request) -> Reply:
            if req.headers.get("authorization") != Credentials("u", "p").basic():
                return Reply(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
            return Reply(307, headers={"Location": f"http://localhost:{cdn_server.port}/blob?sig=abc"})

        with serve(registry) as reg:
            out = io.BytesIO()
            client_for(reg.host, credentials=Credentials("u", "p")).download_blob(sha(blob), len(blob), out)
            assert out.getvalue() == blob
            assert [r.headers.get("authorization") for r in cdn_server.requests] == [None]


def test_retries_on_503_and_honours_retry_after() -> None:
    answers = iter([Reply(503, headers={"Retry-After": "0"}), Reply(502), Reply(body=MANIFEST)])
    with serve(lambda req: next(answers)) as reg:
        assert client_for(reg.host).get_manifest("latest").raw == MANIFEST
        assert len(reg.requests) == 3


def test_gives_up_after_bounded_retries() -> None:
    with serve(lambda req: Reply(429, b"slow down", {"Retry-After": "0"})) as reg:
        with pytest.raises(RegistryError, match="rate limited") as info:
            client_for(reg.host).get_manifest("latest")
        assert info.value.status == 429
        assert len(reg.requests) == FAST.attempts


def test_retry_policy_delays_are_bounded() -> None:
    policy = RetryPolicy(attempts=5, base_delay=2, max_delay=60)
    assert [policy.delay(n, None) for n in range(6)] == [2, 4, 8, 16, 32, 60]
    assert policy.delay(0, "30") == 30
    assert policy.delay(0, "3600") == 60


@pytest.mark.parametrize("honour_range", [True, False])
def test_cut_download_is_resumed(honour_range: bool) -> None:
    blob = bytes(range(256)) * 4096

    def registry(req: Request) -> Reply:
        wanted = req.headers.get("range")
        if wanted is None:
            return Reply(body=blob, cut_after=300_000)
        start = int(wanted.removeprefix("bytes=").rstrip("-"))
        if not honour_range:
            return Reply(body=blob)
        return Reply(206, blob[start:], {"Content-Range": f"bytes {start}-{len(blob) - 1}/{len(blob)}"})

    with serve(registry) as reg:
        out = io.BytesIO()
        seen: list[int] = []
        client_for(reg.host).download_blob(sha(blob), len(blob), out, seen.append)
        assert out.getvalue() == blob
        assert reg.requests[1].headers["range"] == "bytes=300000-"
        assert seen[-1] == len(blob)


def test_blob_digest_and_size_are_enforced() -> None:
    blob = b"x" * 5000
    with serve(lambda req: Reply(body=blob, headers={"Docker-Content-Digest": sha(blob)})) as reg:
        with pytest.raises(DigestMismatch):
            client_for(reg.host).download_blob(sha(b"other"), len(blob), io.BytesIO())
        with pytest.raises(DigestMismatch, match="more than the 100 bytes"):
            client_for(reg.host).download_blob(sha(blob), 100, io.BytesIO())


def test_docker_content_digest_is_only_a_hint() -> None:
    with serve(lambda req: Reply(body=MANIFEST, headers={"Docker-Content-Digest": sha(b"lie")})) as reg:
        assert client_for(reg.host).get_manifest("latest").digest == sha(MANIFEST)
        with pytest.raises(DigestMismatch, match="manifest"):
            client_for(reg.host).get_manifest(sha(b"lie"), sha(b"lie"))


def test_manifest_size_cap_and_schema1() -> None:
    big = b"{" + b" " * (4 * 1024 * 1024) + b"}"
    with serve(lambda req: Reply(body=big)) as reg, pytest.raises(RegistryError, match="limit"):
        client_for(reg.host).get_manifest("latest")
    schema1 = json.dumps({"schemaVersion": 1, "name": "foo/bar", "fsLayers": []}).encode()
    with (
        serve(
            lambda req: Reply(
                body=schema1, headers={"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"}
            )
        ) as reg,
        pytest.raises(ImageError, match="schema 1"),
    ):
        client_for(reg.host).get_manifest("latest")


def test_accept_header_lists_every_manifest_type() -> None:
    with serve(lambda req: Reply(body=MANIFEST)) as reg:
        client_for(reg.host).get_manifest("latest")
        accept = reg.requests[0].headers["accept"]
    for media_type in (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ):
        assert media_type in accept


def test_scheme_choice() -> None:
    assert client_for("example.com").base == "https://example.com"
    assert client_for("127.0.0.1:5000").base == "http://127.0.0.1:5000"
    assert client_for("localhost:5000").base == "http://localhost:5000"
    assert client_for("[::1]:5000").base == "http://[::1]:5000"
    assert client_for("example.com:5000", insecure=True).base == "http://example.com:5000"
    assert client_for("localhost:5000", insecure=False).base == "https://localhost:5000"


def test_proxy_selection() -> None:
    http = HttpClient(proxies={"https": "http://proxy:3128", "no": "internal.example, .corp"})
    assert http._proxy_for("https", "registry-1.docker.io") == "http://proxy:3128"
    assert http._proxy_for("https", "internal.example") is None
    assert http._proxy_for("https", "a.corp") is None
    assert http._proxy_for("https", "127.0.0.1") is None  # loopback is never proxied
    assert http._proxy_for("http", "example.com") is None
    assert _no_proxy_matches("x.y", "*")
    assert not _no_proxy_matches("notcorp", ".corp")


def _tar_gz(name: str, data: bytes) -> tuple[bytes, bytes]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return raw, gzip.compress(raw)


def _registry_with(layer_type: str, tmp: Path) -> tuple[dict[str, bytes], bytes]:
    raw, gz = _tar_gz("f", b"hello")
    config = json.dumps(
        {
            "os": "linux",
            "architecture": "amd64",
            "rootfs": {"type": "layers", "diff_ids": [sha(raw)]},
            "config": {"Cmd": ["sh"]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(config),
                "size": len(config),
            },
            "layers": [{"mediaType": layer_type, "digest": sha(gz), "size": len(gz)}],
        }
    ).encode()
    return {
        f"/v2/foo/bar/blobs/{sha(config)}": config,
        f"/v2/foo/bar/blobs/{sha(gz)}": gz,
        "/v2/foo/bar/manifests/latest": manifest,
    }, gz


def test_foreign_layers_are_refused_before_download(tmp_path: Path) -> None:
    routes, gz = _registry_with("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", tmp_path)
    with serve(lambda req: Reply(body=routes[req.path]) if req.path in routes else Reply(404)) as reg:
        store = ImageStore(str(tmp_path / "s"), http=HttpClient(retry=FAST), credential_files=[])
        with pytest.raises(ImageError, match="foreign"):
            store.pull(f"{reg.host}/foo/bar")
        assert not any(sha(gz) in r.path for r in reg.requests)


def test_pull_through_fake_registry_and_unknown_layer_type(tmp_path: Path) -> None:
    routes, _ = _registry_with("application/vnd.oci.image.layer.v1.tar+gzip", tmp_path)
    with serve(lambda req: Reply(body=routes[req.path]) if req.path in routes else Reply(404)) as reg:
        store = ImageStore(str(tmp_path / "s"), http=HttpClient(retry=FAST), credential_files=[])
        img = store.pull(f"{reg.host}/foo/bar")
        assert img.config.cmd == ["sh"]
        assert (Path(store.layer_dirs(img)[0]) / "f").read_bytes() == b"hello"
    routes, _ = _registry_with("application/vnd.cncf.helm.chart.content.v1.tar+gzip", tmp_path)
    with serve(lambda req: Reply(body=routes[req.path]) if req.path in routes else Reply(404)) as reg:
        store = ImageStore(str(tmp_path / "t"), http=HttpClient(retry=FAST), credential_files=[])
        with pytest.raises(ImageError, match="unsupported layer media type"):
            store.pull(f"{reg.host}/foo/bar")


def test_identity_token_is_exchanged_with_a_post() -> None:
    def token_server(req: Request) -> Reply:
        assert req.method == "POST"
        form = dict(pair.split("=", 1) for pair in req.body.decode().split("&"))
        assert form["grant_type"] == "refresh_token" and form["refresh_token"] == "REFRESH"
        assert "authorization" not in req.headers
        return Reply(body=b'{"access_token": "A1", "expires_in": 60}')

    with serve(token_server) as tokens:

        def registry(req: Request) -> Reply:
            if req.headers.get("authorization") != "Bearer A1":
                return Reply(401, headers={"WWW-Authenticate": f'Bearer realm="{tokens.url}/token",service="s"'})
            return Reply(body=MANIFEST)

        with serve(registry) as reg:
            creds = Credentials("<token>", "", "REFRESH")
            assert client_for(reg.host, credentials=creds).get_manifest("latest").raw == MANIFEST
