"""Fixtures: a real docker-registry on 127.0.0.1 (plain and htpasswd), a pusher and a fresh store."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.image._registry_server import Pusher, RegistryProcess, start_registry

from tinycontainer.image import HttpClient, ImageStore, RetryPolicy

AUTH_USER = "tester"
AUTH_PASSWORD = "s3cret-pass"


def _bcrypt_hash(password: str) -> str | None:
    """A cost-4 bcrypt hash: the registry re-checks it on every request (cost 10 is ~4x slower)."""
    try:
        import bcrypt
    except ImportError:
        htpasswd = shutil.which("htpasswd")
        if htpasswd is None:
            return None
        out = subprocess.run(
            [htpasswd, "-n", "-b", "-B", "-C", "4", AUTH_USER, password], capture_output=True, text=True, check=True
        ).stdout
        return out.strip().split(":", 1)[1]
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


@pytest.fixture(scope="session")
def registry_storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registry-storage")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, registry_storage: Path) -> Iterator[RegistryProcess]:
    if not os.path.exists("/usr/bin/docker-registry") and shutil.which("docker-registry") is None:
        pytest.skip("Debian's docker-registry is not installed")
    reg = start_registry(str(tmp_path_factory.mktemp("registry")), str(registry_storage))
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def auth_registry(
    tmp_path_factory: pytest.TempPathFactory, registry_storage: Path, registry: RegistryProcess
) -> Iterator[RegistryProcess]:
    hashed = _bcrypt_hash(AUTH_PASSWORD)
    if hashed is None:
        pytest.skip("needs python bcrypt or htpasswd (apache2-utils) to write an htpasswd file")
    workdir = tmp_path_factory.mktemp("auth-registry")
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(f"{AUTH_USER}:{hashed}\n")
    auth_yaml = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n"
    reg = start_registry(str(workdir), str(registry_storage), auth_yaml)
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def pusher(registry: RegistryProcess) -> Pusher:
    return Pusher(registry.url)


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    http = HttpClient(timeout=10, retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05))
    return ImageStore(str(tmp_path / "store"), http=http, credential_files=[])
