"""The call protocol without a container: the bootstrap runs as a plain child process."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import tinycontainer as tc
from tinycontainer import _pyworker as pw
from tinycontainer._spec import Spec


def _square(x: int) -> int:
    return x * x


def _noisy(x: int) -> int:
    print("this goes to stderr, not into the reply stream")
    os.write(1, b"raw fd 1 too\n")
    return x + 1


def _fails() -> None:
    raise KeyError("missing thing")


def _lock() -> object:
    import threading

    return threading.Lock()


@pytest.fixture
def worker() -> Iterator[subprocess.Popen[bytes]]:
    _, argv = pw.python_spec(Spec())
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    yield proc
    proc.kill()
    proc.wait()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None and not f.closed:
            f.close()


def _ask(proc: subprocess.Popen[bytes], fn: object, *args: object) -> object:
    assert proc.stdin is not None and proc.stdout is not None
    pw.write_frame(proc.stdin.fileno(), pw.dumps_call(fn, args, {}))  # type: ignore[arg-type]
    reply = pw.read_frame(proc.stdout.fileno(), time.monotonic() + 30)
    assert reply is not None
    return pw.unpack_reply(reply)


def test_values_cross_and_the_worker_is_reusable(worker: subprocess.Popen[bytes]) -> None:
    assert _ask(worker, _square, 7) == 49
    assert _ask(worker, _square, 8) == 64
    assert _ask(worker, lambda a, b: a + b, "x", "y") == "xy"


def test_prints_do_not_corrupt_the_reply(worker: subprocess.Popen[bytes]) -> None:
    assert _ask(worker, _noisy, 1) == 2
    assert worker.stdin is not None and worker.stderr is not None
    worker.stdin.close()
    worker.wait(30)
    err = worker.stderr.read()
    assert b"this goes to stderr" in err and b"raw fd 1 too" in err


def test_remote_exception_carries_the_remote_traceback(worker: subprocess.Popen[bytes]) -> None:
    with pytest.raises(KeyError, match="missing thing") as info:
        _ask(worker, _fails)
    cause = info.value.__cause__
    assert isinstance(cause, tc.RemoteTraceback)
    assert "_fails" in cause.tb and "Traceback (most recent call last)" in cause.tb


def test_unpicklable_result_is_an_error_not_a_hang(worker: subprocess.Popen[bytes]) -> None:
    with pytest.raises(RuntimeError, match="could not be pickled"):
        _ask(worker, _lock)
    assert _ask(worker, _square, 3) == 9


def test_version_mismatch_is_reported() -> None:
    _, argv = pw.python_spec(Spec())
    argv[-1] = argv[-1].replace(f"[{sys.version_info[0]}, {sys.version_info[1]}]", "[2, 7]")
    proc = subprocess.run(argv, input=b"", capture_output=True, timeout=30, check=False)
    assert proc.returncode == 3
    data = proc.stdout[pw.HEADER.size :]
    with pytest.raises(tc.TinyContainerError, match="same version"):
        pw.unpack_reply(data)


def test_read_frame_times_out_and_sees_death() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(TimeoutError):
            pw.read_frame(r, time.monotonic() + 0.05)
        os.write(w, pw.HEADER.pack(3) + b"ab")
        assert pw.read_frame(r, None, gone=lambda: True) is None
    finally:
        os.close(r)
        os.close(w)


def test_death_errors_name_the_limit() -> None:
    class R:
        def __init__(self, reason: str, returncode: int) -> None:
            self.reason = reason
            self.returncode = returncode

    oom = pw.death_error(R("oom", -9), 64 << 20)
    assert isinstance(oom, tc.LimitExceeded) and oom.reason == "oom" and "OOM" in str(oom)
    assert pw.death_error(R("cpu-time", -9), None).reason == "cpu-time"  # type: ignore[attr-defined]
    killed = pw.death_error(R("killed", -9), None)
    assert isinstance(killed, tc.WorkerDied) and "SIGKILL" in str(killed)
    assert "status 3" in str(pw.death_error(R("exited", 3), None))


def test_python_spec_host_mode_binds_only_hidden_paths() -> None:
    spec, argv = pw.python_spec(Spec(memory="64m"))
    assert spec.host_root and spec.memory_bytes == 64 << 20
    # The host's / is visible read-only: only what the private /tmp, /run, /var/tmp hide (a
    # virtualenv in a checkout under /tmp, for one) is bound back, read-only, at the same path.
    for m in spec.mounts:
        assert m.target.startswith(("/tmp/", "/run/", "/var/tmp/")), m
        assert m.source == m.target and m.read_only
    assert argv[0] == sys.executable and argv[1:4] == ["-I", "-S", "-c"]


def test_python_spec_rootfs_mode_mounts_the_interpreter(tmp_path: object) -> None:
    spec, _ = pw.python_spec(Spec(rootfs=str(tmp_path)))
    targets = {m.target for m in spec.mounts}
    assert any(sys.base_prefix == t or sys.base_prefix.startswith(t + "/") for t in targets)
    assert all(m.read_only for m in spec.mounts)
    _, image_argv = pw.python_spec(Spec(rootfs=str(tmp_path)), python="python3")
    assert image_argv[0] == "python3"


def test_pickle_of_reply_roundtrip() -> None:
    assert pw.unpack_reply(pickle.dumps((True, [1, 2]))) == [1, 2]
