"""WWW-Authenticate parsing and credentials files."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tinycontainer._errors import RegistryError
from tinycontainer.image import Credentials, load_credentials, parse_www_authenticate


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:x/y:pull,push"',
            [
                (
                    "bearer",
                    {
                        "realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:x/y:pull,push",
                    },
                )
            ],
        ),
        ('Basic realm="basic-realm"', [("basic", {"realm": "basic-realm"})]),
        ("basic realm=unquoted", [("basic", {"realm": "unquoted"})]),
        (
            'Basic realm="a, b", Bearer realm="https://t/token", error="invalid_token"',
            [("basic", {"realm": "a, b"}), ("bearer", {"realm": "https://t/token", "error": "invalid_token"})],
        ),
        ('Bearer realm = "x" ,  service=y', [("bearer", {"realm": "x", "service": "y"})]),
        (r'Bearer realm="quo\"ted"', [("bearer", {"realm": 'quo"ted'})]),
        ("Negotiate abc==, Basic realm=z", [("negotiate", {"token68": "abc=="}), ("basic", {"realm": "z"})]),
        ("Bearer", [("bearer", {})]),
        ("", []),
        (
            'Bearer scope="repository:a:pull repository:b:pull"',
            [("bearer", {"scope": "repository:a:pull repository:b:pull"})],
        ),
    ],
)
def test_parse_www_authenticate(header: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    got = [(c.scheme, c.params) for c in parse_www_authenticate(header)]
    assert got == expected


def _write(path: Path, auths: dict[str, object]) -> str:
    path.write_text(json.dumps({"auths": auths}))
    return str(path)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_credentials_from_files(tmp_path: Path) -> None:
    podman = _write(
        tmp_path / "auth.json", {"quay.io/org": {"auth": _b64("orguser:orgpw")}, "quay.io": {"auth": _b64("u:p")}}
    )
    docker = _write(
        tmp_path / "config.json",
        {
            "https://index.docker.io/v1/": {"auth": _b64("hub:pw:with:colons")},
            "http://localhost:5000": {"username": "l", "password": "pw"},
            "ghcr.io": {"identitytoken": "tok"},
        },
    )
    files = [podman, docker]
    assert load_credentials("quay.io", "org/app", files) == Credentials("orguser", "orgpw")
    assert load_credentials("quay.io", "other/app", files) == Credentials("u", "p")
    assert load_credentials("docker.io", "library/alpine", files) == Credentials("hub", "pw:with:colons")
    assert load_credentials("localhost:5000", "x", files) == Credentials("l", "pw")
    assert load_credentials("ghcr.io", "x", files) == Credentials("<token>", "", "tok")
    assert load_credentials("example.com", "x", files) is None
    assert load_credentials("quay.io", "org/app", [str(tmp_path / "missing.json")]) is None


def test_first_file_wins_and_bad_entries_are_reported(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.json", {"r.io": {"auth": _b64("one:1")}})
    second = _write(tmp_path / "b.json", {"r.io": {"auth": _b64("two:2")}})
    assert load_credentials("r.io", "x", [first, second]) == Credentials("one", "1")
    bad = _write(tmp_path / "bad.json", {"r.io": {"auth": _b64("no-colon")}})
    with pytest.raises(RegistryError, match="no ':'"):
        load_credentials("r.io", "x", [bad])
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(RegistryError, match="cannot read credentials"):
        load_credentials("r.io", "x", [str(tmp_path / "broken.json")])


def test_credentials_do_not_print_the_password() -> None:
    assert "hunter2" not in repr(Credentials("me", "hunter2"))
    assert Credentials("me", "hunter2").basic() == "Basic " + _b64("me:hunter2")


def test_default_files_follow_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = tmp_path / "run"
    (runtime / "containers").mkdir(parents=True)
    _write(runtime / "containers" / "auth.json", {"r.io": {"auth": _b64("xdg:1")}})
    docker_dir = tmp_path / "docker"
    docker_dir.mkdir()
    _write(docker_dir / "config.json", {"d.io": {"auth": _b64("dock:2")}})
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_dir))
    assert load_credentials("r.io", "x") == Credentials("xdg", "1")
    assert load_credentials("d.io", "x") == Credentials("dock", "2")
