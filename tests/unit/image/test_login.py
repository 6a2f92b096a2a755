"""login/logout: the auth file (0600, atomic, shared with podman) and the credential check."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from tests.unit.image._fake_http import Reply, Request, serve

from tinycontainer._errors import RegistryError
from tinycontainer.image import (
    Credentials,
    HttpClient,
    RetryPolicy,
    default_auth_file,
    load_credentials,
    login_key,
    remove_credentials,
    save_credentials,
    verify_login,
)

_HTTP = HttpClient(timeout=5, retry=RetryPolicy(attempts=1))


def test_login_keys() -> None:
    assert login_key("https://index.docker.io/v1/") == "docker.io"
    assert login_key("registry-1.docker.io") == "docker.io"
    assert login_key("Quay.IO") == "quay.io"
    assert login_key("127.0.0.1:5000/some/repo") == "127.0.0.1:5000"
    assert login_key("http://127.0.0.1:5000") == "127.0.0.1:5000"


def test_default_auth_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_AUTH_FILE", "/x/auth.json")
    assert default_auth_file() == "/x/auth.json"
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/7")
    assert default_auth_file() == "/run/user/7/containers/auth.json"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_auth_file() == f"/run/containers/{os.getuid()}/auth.json"


def test_save_keeps_other_entries_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "containers" / "auth.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"auths": {"quay.io": {"auth": "eDp5"}, "https://127.0.0.1:5000/v2/": {"auth": "b2xk"}},
                                "credHelpers": {"gcr.io": "gcloud"}}))
    os.chmod(path, 0o644)
    assert save_credentials("127.0.0.1:5000", Credentials("me", "pa:ss"), str(path)) == str(path)
    doc = json.loads(path.read_text())
    assert doc["credHelpers"] == {"gcr.io": "gcloud"}
    assert doc["auths"]["quay.io"] == {"auth": "eDp5"}
    assert set(doc["auths"]) == {"quay.io", "127.0.0.1:5000"}  # the old URL-form key was replaced
    assert base64.b64decode(doc["auths"]["127.0.0.1:5000"]["auth"]) == b"me:pa:ss"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_credentials("127.0.0.1:5000", "any/repo", [str(path)]) == Credentials("me", "pa:ss")
    assert sorted(os.listdir(path.parent)) == ["auth.json", "auth.json.lock"]  # no temporary left

    assert remove_credentials("127.0.0.1:5000", str(path)) is True
    assert remove_credentials("127.0.0.1:5000", str(path)) is False
    assert set(json.loads(path.read_text())["auths"]) == {"quay.io"}


def test_save_creates_private_directory(tmp_path: Path) -> None:
    path = tmp_path / "run" / "containers" / "auth.json"
    save_credentials("docker.io", Credentials("u", "p"), str(path))
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert load_credentials("docker.io", "library/busybox", [str(path)]) == Credentials("u", "p")


def _basic_registry(req: Request) -> Reply:
    good = "Basic " + base64.b64encode(b"u:right").decode()
    if req.headers.get("authorization") == good:
        return Reply(200, b"{}")
    return Reply(401, b'{"errors": []}', {"WWW-Authenticate": 'Basic realm="r"'})


def test_verify_login_basic() -> None:
    with serve(_basic_registry) as server:
        verify_login(server.host, Credentials("u", "right"), http=_HTTP)
        with pytest.raises(RegistryError, match="wrong username or password") as info:
            verify_login(server.host, Credentials("u", "s3cr3t-x"), http=_HTTP)
        assert info.value.status == 401
        assert "s3cr3t-x" not in str(info.value)  # never echo the secret


def test_verify_login_bearer_asks_the_realm_without_scope() -> None:
    seen: list[Request] = []

    def handler(req: Request) -> Reply:
        seen.append(req)
        if req.path.startswith("/token"):
            good = "Basic " + base64.b64encode(b"u:right").decode()
            ok = req.headers.get("authorization") == good
            return Reply(200, b'{"token": "t"}') if ok else Reply(401, b"{}")
        return Reply(401, b"{}", {"WWW-Authenticate": f'Bearer realm="http://{host}/token",service="svc"'})

    with serve(handler) as server:
        host = server.host
        verify_login(host, Credentials("u", "right"), http=_HTTP)
        token_request = [r for r in seen if r.path.startswith("/token")][0]
        assert "scope" not in token_request.path and "service=svc" in token_request.path
        assert "account=u" in token_request.path
        with pytest.raises(RegistryError, match="login failed"):
            verify_login(host, Credentials("u", "nope"), http=_HTTP)


def test_verify_login_open_registry() -> None:
    with serve(lambda req: Reply(200, b"{}")) as server:
        verify_login(server.host, Credentials("u", "p"), http=_HTTP)
