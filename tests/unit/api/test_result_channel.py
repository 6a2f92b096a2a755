"""Result/Usage conventions and error transport between supervisor and library."""

from __future__ import annotations

import pickle
import subprocess

import pytest

import tinycontainer as tc
from tinycontainer import _channel
from tinycontainer._result import Result, Usage, container_error


def test_result_signal_and_check() -> None:
    killed = Result(args=["x"], returncode=-9, reason="killed")
    assert killed.signal == 9 and not killed.ok
    with pytest.raises(tc.ContainerError) as info:
        killed.check_returncode()
    assert info.value.returncode == -9 and info.value.reason == "killed"  # type: ignore[attr-defined]
    ok = Result(args=["x"], returncode=0)
    ok.check_returncode()
    assert ok.ok and ok.signal is None


def test_usage_dict_round_trip() -> None:
    usage = Usage(wall_time=1.5, cpu_time=0.5, memory_peak=10, oom_kills=1)
    assert Usage.from_dict(usage.to_dict()) == usage
    assert Usage.from_dict({"wall_time": 2.0, "oom_kills": None}).oom_kills == 0


def test_timeout_expired_is_both() -> None:
    exc = tc.TimeoutExpired(["sleep", "9"], 0.5, b"out", b"err")
    assert isinstance(exc, subprocess.TimeoutExpired) and isinstance(exc, tc.LimitExceeded)
    assert exc.reason == "wall-time" and exc.stdout == b"out" and exc.stderr == b"err"
    assert "timed out after 0.5" in str(exc)


def test_container_error_carries_result() -> None:
    err = container_error(Result(args=["a"], returncode=2, stderr=b"e", reason="exited"))
    assert err.stderr == b"e" and err.result.returncode == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "exc",
    [
        tc.SpecError("bad value", field="memory"),
        tc.KernelError(2, "mount", "/x", "detail"),
        tc.ContainerNotFound("tc-1"),
        tc.WrongStatus("tc-1", "stopped", "running"),
        tc.UnsupportedError("no"),
        ValueError("odd"),
    ],
)
def test_errors_cross_the_channel(exc: Exception) -> None:
    back = _channel.decode_error(_channel.encode_error(exc))
    assert isinstance(back, tc.TinyContainerError)
    assert str(back) == str(exc)
    if isinstance(exc, tc.TinyContainerError):
        assert type(back) is type(exc)
    if isinstance(exc, tc.SpecError):
        assert back.field == "memory"  # type: ignore[attr-defined]
    if isinstance(exc, tc.KernelError):
        assert back.errno == 2 and back.syscall == "mount"  # type: ignore[attr-defined]


def test_channel_messages_and_eof() -> None:
    a, b = _channel.pair()
    _channel.send(a, {"event": "created", "pid": 5})
    assert _channel.recv(b, 1) == {"event": "created", "pid": 5}
    with pytest.raises(TimeoutError):
        _channel.recv(b, 0.01)
    a.close()
    assert _channel.recv(b, 1) is None
    b.close()


def test_public_classes_pickle_by_public_name() -> None:
    spec = tc.Spec(command=["true"], memory="10m")
    assert type(spec).__module__ == "tinycontainer"
    assert pickle.loads(pickle.dumps(spec)) == spec
