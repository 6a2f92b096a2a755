"""A Python process in a container that runs pickled calls: the piece :func:`call` and
:class:`ContainerExecutor` share.

The container runs ``<python> -I -S -c BOOTSTRAP <json>``: isolated mode (no environment
variables, no user site) and no ``site`` (the pyenv interpreter here spends 100-280 ms importing
site-packages at start); the caller's ``sys.path`` is passed in the JSON instead, so the
function's modules and cloudpickle import from the same directories as in the caller.

Frames on the pipes: 8-byte big-endian length + a cloudpickle. stdin carries calls
``(fn, args, kwargs)``; the worker's original stdout carries replies ``(True, value)`` or
``(False, exception, traceback text)``. The function's own stdout is redirected to the
container's stderr, so a ``print`` cannot corrupt the reply stream. One frame and EOF is a
one-shot call; a kept-open stdin makes a reusable worker.
"""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from ._errors import LimitExceeded, TinyContainerError
from ._spec import HOST_PRIVATE_DIRS, Mount, Spec

HEADER = struct.Struct(">Q")
MAX_FRAME = 1 << 34

BOOTSTRAP = r"""
import json, os, struct, sys
cfg = json.loads(sys.argv[1])
sys.path[:0] = [p for p in cfg["path"] if p not in sys.path]
H = struct.Struct(">Q")
out = os.dup(1)
os.dup2(2, 1)
def send(obj):
    try:
        data = cloudpickle.dumps(obj)
    except Exception as exc:
        data = cloudpickle.dumps((False, RuntimeError(f"the result could not be pickled: {exc!r}"), ""))
    view = memoryview(H.pack(len(data)) + data)
    while view:
        view = view[os.write(out, view):]
def read(n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(0, min(n - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)
try:
    if tuple(sys.version_info[:2]) != tuple(cfg["version"]):
        raise RuntimeError("the container's Python is %d.%d, the caller's %d.%d: pickled functions need the same "
                           "version" % (*sys.version_info[:2], *cfg["version"]))
    import cloudpickle
except BaseException as exc:
    import pickle
    data = pickle.dumps((False, None, "%s: %s" % (type(exc).__name__, exc)))
    os.write(out, H.pack(len(data)) + data)
    raise SystemExit(3)
import traceback
while True:
    head = read(8)
    if head is None:
        break
    body = read(H.unpack(head)[0])
    if body is None:
        break
    try:
        fn, args, kwargs = cloudpickle.loads(body)
        reply = (True, fn(*args, **kwargs))
    except Exception as exc:
        reply = (False, exc, traceback.format_exc())
    del body
    sys.stdout.flush()
    send(reply)
"""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in the container (set as ``__cause__``)."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


class WorkerDied(TinyContainerError):
    """The container's Python process ended without a reply (exit, signal, killed)."""

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


def host_python_paths() -> list[str]:
    """The caller's import path, absolute and existing (``''`` is the caller's cwd)."""
    paths: list[str] = []
    for entry in sys.path:
        path = os.path.abspath(entry or os.getcwd())
        if path not in paths and os.path.exists(path):
            paths.append(path)
    try:
        import cloudpickle  # type: ignore[import-untyped]

        cp_dir = os.path.dirname(os.path.dirname(os.path.abspath(cloudpickle.__file__)))
        if cp_dir not in paths:
            paths.append(cp_dir)
    except ImportError:
        raise TinyContainerError(
            "tinycontainer.call needs cloudpickle: pip install 'tinycontainer[call]'"
        ) from None
    return paths


def _covered(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def python_spec(spec: Spec | None, python: str | None = None) -> tuple[Spec, list[str]]:
    """The spec and argv that run the bootstrap in a container.

    ``python=None`` runs the caller's own interpreter (``sys.executable``): in host-root mode
    it is already visible (the host's / read-only) and only import directories hidden by the
    private ``/tmp``, ``/run``, ``/var/tmp`` are bind-mounted read-only; with ``image`` or
    ``rootfs`` the interpreter's prefixes and the import directories are bind-mounted
    read-only at the same paths (the rootfs must provide the C library the interpreter links).
    ``python="python3"`` (or a path) uses the container's own interpreter, which must be the
    caller's major.minor version; only the import directories are mounted.
    """
    spec = spec if spec is not None else Spec()
    paths = host_python_paths()
    mounted = [m.target for m in spec.mounts]
    want: list[str] = []
    if spec.host_root:
        # The host's / is visible read-only, except under the container's private /tmp, /run
        # and /var/tmp: an interpreter (a virtualenv in a checkout under /tmp, say) or import
        # directories there are bound back read-only at the same paths.
        hidden = list(HOST_PRIVATE_DIRS)
        candidates = list(paths)
        if python is None:
            candidates = [sys.prefix, os.path.dirname(os.path.abspath(sys.executable)), *candidates]
        for p in candidates:
            if _covered(p, hidden) and os.path.isdir(p) and not _covered(p, want):
                want = [w for w in want if not _covered(w, [p])] + [p]
    else:
        candidates = list(paths)
        if python is None:
            candidates = [sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable)), *candidates]
        for p in candidates:
            if os.path.isdir(p) and not _covered(p, want):
                want = [w for w in want if not _covered(w, [p])] + [p]
    mounts = list(spec.mounts)
    for p in want:
        if not _covered(p, mounted):
            mounts.append(Mount(target=p, source=p, read_only=True))
    interpreter = python or sys.executable
    config = json.dumps({"path": paths, "version": list(sys.version_info[:2])})
    argv = [interpreter, "-I", "-S", "-c", BOOTSTRAP, config]
    return spec.replace(mounts=tuple(mounts), entrypoint=(), command=None), argv


def dumps_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    try:
        import cloudpickle
    except ImportError:
        raise TinyContainerError("tinycontainer.call needs cloudpickle: pip install 'tinycontainer[call]'") from None
    data: bytes = cloudpickle.dumps((fn, args, kwargs))
    return data


def write_frame(fd: int, data: bytes) -> None:
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def read_frame(fd: int, deadline: float | None, gone: Callable[[], bool] | None = None) -> bytes | None:
    """One frame, None at EOF; TimeoutError at ``deadline`` (monotonic).

    ``gone`` is asked every :data:`POLL_SLICE` seconds without data: a library container's
    supervisor keeps the pipe's write end open until the container is removed, so the death
    of the process is seen through its result, not through EOF.
    """
    head = _read_exact(fd, HEADER.size, deadline, gone)
    if head is None:
        return None
    size = HEADER.unpack(head)[0]
    if size > MAX_FRAME:
        raise TinyContainerError(f"reply frame of {size} bytes is not plausible")
    return _read_exact(fd, size, deadline, gone)


POLL_SLICE = 0.05


def _read_exact(fd: int, n: int, deadline: float | None, gone: Callable[[], bool] | None) -> bytes | None:
    buf = bytearray()
    dead = False
    while len(buf) < n:
        if not dead:
            timeout = None if gone is None else POLL_SLICE
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                timeout = left if timeout is None else min(timeout, left)
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                if gone is not None and gone():
                    # Everything it wrote is in the pipe by now; read what is left, then stop.
                    dead = True
                    os.set_blocking(fd, False)
                continue
        try:
            chunk = os.read(fd, min(n - len(buf), 1 << 20))
        except BlockingIOError:
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def unpack_reply(data: bytes) -> Any:
    """The value of a reply frame, or raise the remote exception with its traceback."""
    import pickle

    ok, value, *rest = pickle.loads(data)
    if ok:
        return value
    tb = rest[0] if rest else ""
    if value is None:
        raise TinyContainerError(f"the container's Python could not start the call: {tb}")
    if isinstance(value, BaseException):
        value.__cause__ = RemoteTraceback(tb)
        raise value
    raise TinyContainerError(f"the function raised {value!r}")


def death_error(result: Any, memory: int | None) -> TinyContainerError:
    """The exception for a worker that ended without replying, from its container's Result."""
    reason = getattr(result, "reason", "killed")
    code = getattr(result, "returncode", None)
    if reason == "oom":
        limit = f" of {memory} bytes" if memory else ""
        return LimitExceeded("oom", f"the function's container was killed by the OOM killer (memory limit{limit})")
    if reason == "cpu-time":
        return LimitExceeded("cpu-time", "the function's container used up its cpu_time")
    if reason == "wall-time":
        return LimitExceeded("wall-time", "the function's container ran past its wall_time")
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return WorkerDied(f"the function's process was killed by {name}", result)
    return WorkerDied(f"the function's process exited with status {code} without a result", result)


__all__ = [
    "BOOTSTRAP",
    "RemoteTraceback",
    "WorkerDied",
    "death_error",
    "dumps_call",
    "host_python_paths",
    "python_spec",
    "read_frame",
    "unpack_reply",
    "write_frame",
]


class PyContainer:
    """One container running the bootstrap; :meth:`request` sends a call and reads its reply."""

    def __init__(
        self,
        spec: Spec | None,
        *,
        python: str | None = None,
        launcher: Any = None,
        lib_root: str | None = None,
    ) -> None:
        from ._handle import Container
        from ._stdio import PIPE

        self.spec, argv = python_spec(spec, python)
        if launcher is None:
            from ._warm import shared_launcher

            launcher = shared_launcher()
        self.container = Container.create(self.spec, argv, stdin=PIPE, stdout=PIPE, stderr=None,
                                          launcher=launcher, lib_root=lib_root)
        try:
            self.container.start()
        except BaseException:
            self.container.remove()
            raise
        assert self.container.stdin is not None and self.container.stdout is not None
        self._in = self.container.stdin.fileno()
        self._out = self.container.stdout.fileno()
        self.killed = False

    @property
    def id(self) -> str:
        return self.container.id

    def request(self, payload: bytes, deadline: float | None = None, *, last: bool = False) -> bytes:
        """The reply frame for ``payload``. ``last`` closes stdin after it (a one-shot worker
        then exits). Raises :class:`TimeoutError` at ``deadline`` (the worker is left running:
        the caller kills it) or the error for a worker that died."""
        try:
            write_frame(self._in, payload)
            if last:
                self.container.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:
            pass
        reply = read_frame(self._out, deadline, self._exited)
        if reply is None:
            raise self.death()
        return reply

    def _exited(self) -> bool:
        try:
            self.container.wait(timeout=0.001)
        except TimeoutError:
            return False
        except Exception:
            return True
        return True

    def death(self) -> TinyContainerError:
        try:
            result = self.container.wait(timeout=30)
        except Exception:
            result = None
        return death_error(result, self.spec.memory_bytes)

    def kill(self) -> None:
        """SIGKILL every process of the container (a blocked :meth:`request` then fails)."""
        self.killed = True
        from contextlib import suppress

        with suppress(Exception):
            self.container.kill(signal.SIGKILL, all_processes=True)

    def close(self) -> None:
        self.container.remove()
