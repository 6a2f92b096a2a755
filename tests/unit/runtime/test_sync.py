"""The parent<->init channel: a child's ERROR must reach the parent even when the child exits
with the parent's messages unread (the kernel then reports ECONNRESET before the queue)."""

from __future__ import annotations

import os

import pytest

from tinycontainer.runtime import _sync


def test_error_of_a_child_that_left_messages_unread_is_delivered() -> None:
    parent, child = _sync.socketpair()
    try:
        _sync.send(parent, _sync.CGROUP_DONE)  # never read: the child fails first
        _sync.send_error(child, OSError(2, "no such file", "/proc"))
        child.close()
        with pytest.raises(_sync.ChildFailed) as info:
            _sync.recv(parent, _sync.READY, timeout=5)
        assert "no such file" in str(info.value)
        assert info.value.path == "/proc"
    finally:
        parent.close()
        child.close()


def test_eof_is_reported_as_an_unexpected_exit() -> None:
    parent, child = _sync.socketpair()
    child.close()
    try:
        with pytest.raises(_sync.ChildFailed, match="exited unexpectedly"):
            _sync.recv(parent, _sync.READY, timeout=5)
    finally:
        parent.close()


def test_messages_keep_their_boundaries() -> None:
    parent, child = _sync.socketpair()
    try:
        _sync.send(child, _sync.PID, pid=42)
        _sync.send(child, _sync.READY)
        msg, fds = _sync.recv(parent, _sync.PID, timeout=5)
        assert (msg["pid"], fds) == (42, [])
        assert _sync.recv(parent, _sync.READY, timeout=5)[0]["type"] == _sync.READY
        assert os.get_inheritable(parent.fd) is False
    finally:
        parent.close()
        child.close()
