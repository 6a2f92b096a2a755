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
    # The fake supervisor: created, with the caller's pipe ends; no state dir to release
    # (a container with poststart hooks): the supervisor is asked to start it.
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    _created(first, [out_r, err_r], release=None)
    claimed = pool.claim("k", h.make, kinds, None)
    assert claimed is not None
    try:
        assert first.sent == [{"cmd": "claim", "start": True}]
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
        for fd in (out_w, err_w, *(fd for fd in claimed.parent_fds if fd is not None)):
            os.close(fd)
        first.close()
    pool.close()
    assert all({"cmd": "remove"} in s.sent for _, s in h.launched[1:])
    assert pool.claim("k", h.make, kinds, None) is None and len(h.launched) == 3  # closed: no refills


def _created(fake: FakeSupervisor, fds: list[int], release: str | None, pid: int = 42) -> None:
    message = {"event": "created", "pid": pid, "release": release}
    socket.send_fds(fake.other, [json.dumps(message).encode()], fds)
    for fd in fds:
        os.close(fd)  # in flight now: the socket holds them


def _one_pooled(tmp: Any, kinds: tuple[str, str, str]) -> tuple[Harness, ContainerPool, Any]:
    """A pool of one whose first claim found it empty and launched one (fake) supervisor."""
    h = Harness(str(tmp))
    pool = ContainerPool(h.launch, size=1)
    assert pool.claim("k", h.make, kinds, None) is None
    _until(lambda: pool.pooled("k") == 1)
    return h, pool, h.launched[0][1]


def _fifo_state_dir(tmp: Any) -> tuple[str, int]:
    """A state dir with an exec fifo whose reader (the init, here) is us."""
    from tinycontainer.runtime._store import fifo_path

    state_dir = os.path.join(str(tmp), "state-x")
    os.mkdir(state_dir)
    os.mkfifo(fifo_path(state_dir))
    return state_dir, os.open(fifo_path(state_dir), os.O_RDONLY | os.O_NONBLOCK)


def test_the_claim_releases_the_init_itself(tmp_path: Any) -> None:
    from tinycontainer.runtime._store import fifo_path

    kinds = ("devnull", "devnull", "pipe")
    h, pool, fake = _one_pooled(tmp_path, kinds)
    state_dir, init_end = _fifo_state_dir(tmp_path)
    err_r, err_w = os.pipe()
    _created(fake, [err_r], release=state_dir)
    assert pool.wait_ready(5) is True  # a peek: the pipe stays in the socket for the claim
    before = time.monotonic()
    claimed = pool.claim("k", h.make, kinds, None)
    assert claimed is not None
    try:
        # Told first (its wall-time clock starts at "at"), then the init's fifo got its byte
        # and is gone (status "running"), all without waiting for the supervisor.
        assert [m["cmd"] for m in fake.sent] == ["claim"] and fake.sent[0]["at"] >= before
        assert os.read(init_end, 1) == b"0"
        assert not os.path.exists(fifo_path(state_dir))
        os.write(err_w, b"e")
        assert os.read(claimed.parent_fds[2] or -1, 1) == b"e"
    finally:
        for fd in (init_end, err_w, *(fd for fd in claimed.parent_fds if fd is not None)):
            os.close(fd)
    # The run is over ("exited" came): the supervisor removes the container in the background,
    # which wait_ready() waits for.
    claimed.remove_later()
    assert pool.wait_ready(0.05) is False
    fake.other.send(json.dumps({"event": "removed"}).encode())
    assert pool.wait_ready(5) is True
    assert fake.sock.fileno() == -1  # finished: its channel closed
    pool.close()


def test_a_pooled_container_whose_init_died_falls_back(tmp_path: Any) -> None:
    kinds = ("devnull", "devnull", "pipe")
    h, pool, fake = _one_pooled(tmp_path, kinds)
    state_dir, init_end = _fifo_state_dir(tmp_path)
    os.close(init_end)  # no reader: the init is gone
    err_r, err_w = os.pipe()
    _created(fake, [err_r], release=state_dir)
    os.close(err_w)
    assert pool.claim("k", h.make, kinds, None) is None  # started on demand instead
    assert {"cmd": "remove"} in fake.sent
    pool.close()


def test_close_waits_for_background_removals(tmp_path: Any) -> None:
    import threading

    kinds = ("devnull", "devnull", "devnull")
    h, pool, fake = _one_pooled(tmp_path, kinds)
    _created(fake, [], release=None)
    claimed = pool.claim("k", h.make, kinds, None)
    assert claimed is not None
    claimed.remove_later()
    closer = threading.Thread(target=pool.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive()  # the removal is still under way
    fake.other.send(json.dumps({"event": "removed"}).encode())
    closer.join(5)
    assert not closer.is_alive() and fake.sock.fileno() == -1


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
