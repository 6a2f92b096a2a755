"""Run Debian's docker-registry (distribution 2.8) on 127.0.0.1 for tests, and push to it.

Several instances may share one storage directory (research/registry.md): tests seed content
through an unauthenticated instance and read it back through an authenticated one.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from tests.integration.image._builder import Blob, BuiltImage

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RegistryProcess:
    proc: subprocess.Popen[bytes]
    port: int
    storage: str
    workdir: str

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_registry(workdir: str, storage: str, auth_yaml: str = "") -> RegistryProcess:
    port = free_port()
    os.makedirs(workdir, exist_ok=True)
    config = os.path.join(workdir, f"config-{port}.yml")
    with open(config, "w") as fh:
        fh.write(
            "version: 0.1\n"
            "log:\n  level: error\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n  secret: tinycontainer-tests\n"
            f"{auth_yaml}"
        )
    log = open(os.path.join(workdir, f"registry-{port}.log"), "wb")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", config], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    reg = RegistryProcess(proc, port, storage, workdir)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited with {proc.returncode}; see {workdir}")
        try:
            with urllib.request.urlopen(f"{reg.url}/v2/", timeout=1) as resp:
                if resp.status == 200:
                    return reg
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                return reg
        except OSError:
            pass
        time.sleep(0.05)
    reg.stop()
    raise RuntimeError("docker-registry did not become ready in 15 s")


class Pusher:
    """Monolithic uploads: POST /v2/NAME/blobs/uploads/, PUT ?digest=..., PUT the manifest."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url

    def _call(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers)

    def blob(self, repo: str, blob: Blob) -> None:
        status, headers = self._call("POST", f"{self.base}/v2/{repo}/blobs/uploads/", b"", {})
        assert status == 202, status
        location = headers["Location"]
        if location.startswith("/"):
            location = self.base + location
        sep = "&" if "?" in location else "?"
        status, _ = self._call(
            "PUT",
            f"{location}{sep}digest={blob.digest}",
            blob.data,
            {"Content-Type": "application/octet-stream", "Content-Length": str(len(blob.data))},
        )
        assert status == 201, status

    def manifest(self, repo: str, ref: str, raw: bytes, media_type: str) -> None:
        status, _ = self._call("PUT", f"{self.base}/v2/{repo}/manifests/{ref}", raw, {"Content-Type": media_type})
        assert status == 201, status

    def image(self, repo: str, image: BuiltImage, tag: str | None = None) -> None:
        for blob in [*image.layers, image.config]:
            self.blob(repo, blob)
        self.manifest(repo, tag or image.manifest.digest, image.manifest.data, image.manifest.media_type)


def blob_data_path(storage: str, digest: str) -> str:
    hexd = digest.split(":", 1)[1]
    return os.path.join(storage, "docker", "registry", "v2", "blobs", "sha256", hexd[:2], hexd, "data")


def write_auth_file(path: str, host: str, user: str, password: str) -> None:
    import base64

    with open(path, "w") as fh:
        json.dump({"auths": {host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}}, fh)
