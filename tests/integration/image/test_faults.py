"""A fault-injecting HTTP proxy in front of the real registry: 500s, 429 + Retry-After, cut bodies.

Every fault ends in either a successful retry/resume or a clear error, and never in anything
half-written in the store (its tmp/ and blob directories are checked).
"""

from __future__ import annotations

import http.client
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.integration.image._builder import BuiltImage, build_image, make_tar, reg
from tests.integration.image._registry_server import Pusher, RegistryProcess

from tinycontainer._errors import RegistryError
from tinycontainer.image import HttpClient, ImageStore, RetryPolicy

pytestmark = pytest.mark.registry

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


@dataclass
class Fault:
    pattern: str
    """regex matched against the request path"""
    kind: str
    """"status" (answer ``status`` with ``headers``) or "cut" (forward, but stop the body after ``cut_after`` bytes)"""
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int = 0
    times: int = 1
    """how many matching requests it hits (then it is used up)"""


class FaultProxy:
    """Forwards to the registry; the first matching unused fault replaces or cuts the answer."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, str | None, str]] = []  # method, path, Range, what happened
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _serve(self) -> None:
                fault = proxy._take(self.path)
                rng = self.headers.get("Range")
                if fault is not None and fault.kind == "status":
                    proxy._note(self.command, self.path, rng, f"fault {fault.status}")
                    body = b'{"errors": [{"code": "UNAVAILABLE", "message": "injected"}]}'
                    self.send_response(fault.status)
                    for key, value in {"Content-Length": str(len(body)), **fault.headers}.items():
                        self.send_header(key, value)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP | {"host"}}
                    conn.request(self.command, self.path, headers=headers)
                    resp = conn.getresponse()
                    self.send_response(resp.status)
                    for key, value in resp.getheaders():
                        if key.lower() not in _HOP_BY_HOP:
                            self.send_header(key, value)
                    if fault is not None:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    if self.command == "HEAD":
                        proxy._note(self.command, self.path, rng, str(resp.status))
                        return
                    sent = 0
                    limit = fault.cut_after if fault is not None else None
                    while chunk := resp.read(64 * 1024):
                        if limit is not None and sent + len(chunk) >= limit:
                            self.wfile.write(chunk[: limit - sent])
                            self.wfile.flush()
                            self.close_connection = True
                            proxy._note(self.command, self.path, rng, f"cut after {limit}")
                            return
                        self.wfile.write(chunk)
                        sent += len(chunk)
                    proxy._note(self.command, self.path, rng, str(resp.status))
                finally:
                    conn.close()

            do_GET = _serve
            do_HEAD = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def _take(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and re.search(fault.pattern, path):
                    fault.times -= 1
                    return fault
        return None

    def _note(self, method: str, path: str, rng: str | None, what: str) -> None:
        with self._lock:
            self.log.append((method, path, rng, what))


@pytest.fixture
def proxy(registry: RegistryProcess) -> Iterator[FaultProxy]:
    p = FaultProxy(registry.host)
    p.thread.start()
    try:
        yield p
    finally:
        p.httpd.shutdown()
        p.httpd.server_close()
        p.thread.join(timeout=5)


@pytest.fixture(scope="module")
def big_image(registry: RegistryProcess, pusher: Pusher) -> BuiltImage:
    # Incompressible, so the blob is big enough to be cut in the middle.
    built = build_image([make_tar([reg("blob", os.urandom(600_000))]), make_tar([reg("small", b"s")])])
    pusher.image("faults/img", built, "latest")
    return built


def _store(root: Path, attempts: int = 3) -> ImageStore:
    http = HttpClient(timeout=10, retry=RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=2.0))
    return ImageStore(str(root), http=http, credential_files=[], max_parallel=1)


def _assert_clean(store: ImageStore, built: BuiltImage) -> None:
    assert os.listdir(store.content.tmp) == []
    for layer in built.layers:
        assert not store.content.has(layer.digest)
    for diff_id in built.diff_ids:
        assert not os.path.exists(store.layer_path(diff_id))
    assert store.list() == []


def test_500s_are_retried(proxy: FaultProxy, big_image: BuiltImage, tmp_path: Path) -> None:
    proxy.faults = [Fault("/manifests/", "status", 500, times=2), Fault("/blobs/", "status", 503)]
    img = _store(tmp_path / "s").pull(f"{proxy.host}/faults/img")
    assert img.id == big_image.config.digest
    assert sum(1 for entry in proxy.log if entry[3].startswith("fault")) == 3


def test_429_honours_retry_after(proxy: FaultProxy, big_image: BuiltImage, tmp_path: Path) -> None:
    proxy.faults = [Fault("/manifests/", "status", 429, {"Retry-After": "1"})]
    started = time.monotonic()
    img = _store(tmp_path / "s").pull(f"{proxy.host}/faults/img")
    assert time.monotonic() - started >= 1.0  # the base delay is 0.01 s: only Retry-After explains it
    assert img.id == big_image.config.digest


def test_cut_blob_is_resumed_with_range(proxy: FaultProxy, big_image: BuiltImage, tmp_path: Path) -> None:
    big = big_image.layers[0]
    proxy.faults = [Fault(f"/blobs/{big.digest}", "cut", cut_after=len(big.data) // 2, times=2)]
    store = _store(tmp_path / "s")
    img = store.pull(f"{proxy.host}/faults/img")
    assert img.id == big_image.config.digest
    ranges = [entry[2] for entry in proxy.log if big.digest in entry[1]]
    assert ranges[0] is None and ranges[1] == f"bytes={len(big.data) // 2}-"
    with open(store.content.path(big.digest), "rb") as fh:
        assert fh.read() == big.data
    assert os.listdir(store.content.tmp) == []


def test_persistent_500_is_a_clear_error_and_leaves_nothing(
    proxy: FaultProxy, big_image: BuiltImage, tmp_path: Path
) -> None:
    proxy.faults = [Fault(f"/blobs/{big_image.layers[0].digest}", "status", 500, times=100)]
    store = _store(tmp_path / "s")
    with pytest.raises(RegistryError, match="HTTP 500") as info:
        store.pull(f"{proxy.host}/faults/img")
    assert info.value.status == 500
    _assert_clean(store, big_image)


def test_persistent_cuts_give_up_and_leave_nothing(proxy: FaultProxy, big_image: BuiltImage, tmp_path: Path) -> None:
    big = big_image.layers[0]
    proxy.faults = [Fault(f"/blobs/{big.digest}", "cut", cut_after=1000, times=100)]
    store = _store(tmp_path / "s")
    with pytest.raises(RegistryError, match="resumes"):
        store.pull(f"{proxy.host}/faults/img")
    _assert_clean(store, big_image)
    # Each resume asked for the bytes after what it had (1000 more each time).
    ranges = [entry[2] for entry in proxy.log if big.digest in entry[1]]
    assert ranges[:3] == [None, "bytes=1000-", "bytes=2000-"]
