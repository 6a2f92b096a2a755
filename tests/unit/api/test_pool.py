"""The container pool's client side, against fake supervisors (no root, no containers)."""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import time
from typing import Any

import pytest

import tinycontainer as tc
from tinycontainer._bundle import Bundle
from tinycontainer._launch import Supervisor
from tinycontainer._pool import ContainerPool, stdio_kinds
from tinycontainer._spec import ImageDefaults
from tinycontainer.oci import Config


def test_only_fresh_stdio_can_be_pooled() -> None:
    pipe, null, out = subprocess.PIPE, subprocess.DEVNULL, subprocess.STDOUT
    assert stdio_kinds(null, null, pipe) == ("devnull", "devnull", "pipe")
    assert stdio_kinds(pipe, pipe, out) == ("pipe", "pipe", "stdout")
    assert stdio_kinds(None, null, null) is None  # inherited
    assert stdio_kinds(null, 1, null) is None  # a given fd
    assert stdio_kinds(null, out, null) is None  # STDOUT only means something for stderr
    assert stdio_kinds(null, True, null) is None


class FakeSupervisor(Supervisor):
    """The library side of a socketpair; ``other`` plays the supervisor."""

    def __init__(self) -> None:
        ours, self.other = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        super().__init__(ours, os.getpid())
        self.sent: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def poll(self) -> int | None:
        return 0

    def close(self) -> None:
        super().close()
        self.other.close()


class Harness:
    def __init__(self, tmp: str) -> None:
        self.tmp = tmp
        self.launched: list[tuple[dict[str, Any], FakeSupervisor]] = []
        self.made = 0

    def launch(self, request: dict[str, Any], stdio: Any) -> Supervisor:
        assert all(isinstance(fd, int) for fd in stdio)  # /dev/null, never the caller's fds
        supervisor = FakeSupervisor()
        self.launched.append((request, supervisor))
        return supervisor

    def make(self) -> tuple[Bundle, dict[str, Any], str]:
        self.made += 1
        cid = f"tc-{self.made:016x}"
        return _bundle(cid, self.tmp), {"mode": "run", "id": cid, "autostart": True}, self.tmp


def _bundle(cid: str, tmp: str) -> Bundle:
    return Bundle(cid, os.path.join(tmp, "bundles", cid), Config(), ImageDefaults(), 15, False)


def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_claim_fills_then_hands_over_the_pipes(tmp_path: Any) -> None:
    h = Harness(str(tmp_path))
    pool = ContainerPool(h.launch, size=2)
    kinds = ("devnull", "pipe", "pipe")
    assert pool.claim("k", h.make, kinds, None) is None  # empty: the caller starts one itself
    _until(lambda: len(h.launched) == 2)  # the pool fills in the background
    assert [r["autostart"] for r, _ in h.launched] == [False, False]
    assert all(r["pool_stdio"] == list(kinds) for r, _ in h.launched)
    first = h.launched[0][1]
    # The fake supervisor: created, then (on the claim) the caller's pipe ends.
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    first.other.send(json.dumps({"event": "created", "pid": 42}).encode())
    socket.send_fds(first.other, [b'{"event":"claimed"}'], [out_r, err_r])
    claimed = pool.claim("k", h.make, kinds, None)
    assert claimed is not None
    try:
        assert first.sent == [{"cmd": "claim"}]
        assert claimed.supervisor is first and claimed.outcome.created_pid == 42
        assert claimed.parent_fds[0] is None
        os.write(out_w, b"o")
        os.write(err_w, b"e")
        assert os.read(claimed.parent_fds[1] or -1, 1) == b"o"
        assert os.read(claimed.parent_fds[2] or -1, 1) == b"e"
        assert len(h.launched) == 2 and pool.pooled("k") == 1  # the replacement comes after the run
        claimed.refill()  # on the pool's thread
        _until(lambda: pool.pooled("k") == 2)
        assert pool.wait_ready(0.01) is False  # the replacement is launched, not created
        assert len(h.launched) == 3
        for _, fake in h.launched[1:]:
            fake.other.send(json.dumps({"event": "created", "pid": 7}).encode())
        assert pool.wait_ready(5) is True
    finally:
        for fd in (out_r, out_w, err_r, err_w, *(fd for fd in claimed.parent_fds if fd is not None)):
            os.close(fd)
        first.close()
    pool.close()
    assert all({"cmd": "remove"} in s.sent for _, s in h.launched[1:])
    assert pool.claim("k", h.make, kinds, None) is None and len(h.launched) == 3  # closed: no refills


def test_a_failed_pooled_container_falls_back(tmp_path: Any) -> None:
    h = Harness(str(tmp_path))
    pool = ContainerPool(h.launch, size=1)
    kinds = ("devnull", "devnull", "devnull")
    assert pool.claim("k", h.make, kinds, None) is None
    _until(lambda: pool.pooled("k") == 1)
    dead = h.launched[0][1]
    dead.other.send(json.dumps({"event": "error", "error": {"type": "TinyContainerError", "message": "x"}}).encode())
    assert pool.claim("k", h.make, kinds, None) is None
    assert {"cmd": "remove"} in dead.sent
    pool.close()


def test_least_recently_used_keys_are_evicted(tmp_path: Any) -> None:
    h = Harness(str(tmp_path))
    pool = ContainerPool(h.launch, size=1, max_keys=2)
    kinds = ("devnull", "devnull", "devnull")
    for n, key in enumerate(("a", "b", "c")):
        pool.claim(key, h.make, kinds, None)
        _until(lambda n=n: len(h.launched) == n + 1)  # type: ignore[misc]
    assert [pool.pooled(k) for k in ("a", "b", "c")] == [0, 1, 1]
    assert {"cmd": "remove"} in h.launched[0][1].sent
    pool.close()


def test_pool_size_survives_pickling() -> None:
    launcher = pickle.loads(pickle.dumps(tc.WarmLauncher(pool_size=3)))
    assert launcher.pool_size == 3
    with pytest.raises(ValueError):
        tc.WarmLauncher(pool_size=-1)


def test_forget_drops_the_pool_without_telling_the_supervisors(tmp_path: Any) -> None:
    h = Harness(str(tmp_path))
    pool = ContainerPool(h.launch, size=1)
    kinds = ("devnull", "devnull", "devnull")
    pool.claim("k", h.make, kinds, None)
    _until(lambda: pool.pooled("k") == 1)
    fake = h.launched[0][1]
    pool.forget()  # what a forked child does with its parent's pool
    assert fake.sent == [] and fake.sock.fileno() == -1
    assert pool.claim("k", h.make, kinds, None) is None and len(h.launched) == 1
    fake.other.close()
    pool.close()  # stops its filler thread
