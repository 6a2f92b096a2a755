"""``run()``: :func:`subprocess.run` for containers, and the pieces the handle shares with it."""

from __future__ import annotations

import contextlib
import locale
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import _bundle, _channel
from ._communicate import Outcome, abort, communicate, finish_supervisor
from ._errors import TinyContainerError
from ._launch import Launcher, default_launcher
from ._result import Reason, Result, TimeoutExpired, Usage, container_error
from ._spec import Spec
from ._stdio import PIPE, StdioArg, StdioPlan

if TYPE_CHECKING:
    from ._pool import Claimed
    from .image import ImageStore


def effective_spec(spec: Spec | None, env: Mapping[str, str] | None, cwd: str | None) -> Spec:
    spec = spec if spec is not None else Spec()
    changes: dict[str, Any] = {}
    if env is not None:
        changes["env"] = {**spec.env, **env}
    if cwd is not None:
        changes["workdir"] = cwd
    return spec.replace(**changes) if changes else spec


def run_request(
    bundle: _bundle.Bundle, spec: Spec, lib_root: str, *, autostart: bool, autoremove: bool
) -> dict[str, Any]:
    paths = _bundle.LibPaths(lib_root)
    return {
        "mode": "run",
        "state_root": paths.state,
        "id": bundle.container_id,
        "bundle": bundle.path,
        "autostart": autostart,
        "autoremove": autoremove,
        "wall_time": spec.wall_time,
        "cpu_time": spec.cpu_time,
        "seccomp_cache": seccomp_cache(lib_root),
        # Saves the supervisor re-reading config.json to learn whether to expect a pty.
        "terminal": bool(bundle.config.process is not None and bundle.config.process.terminal),
    }


def seccomp_cache(lib_root: str) -> str:
    return os.path.join(lib_root, "seccomp-cache")


def force_cleanup(lib_root: str, container_id: str, bundle_path: str | None) -> None:
    """Remove what a supervisor that died may have left (idempotent)."""
    from ._errors import ContainerNotFound
    from .runtime import Runtime

    with contextlib.suppress(ContainerNotFound):
        Runtime(_bundle.LibPaths(lib_root).state).load(container_id).delete(force=True)
    if bundle_path is not None:
        _bundle.remove_bundle(bundle_path)


def decode_output(data: bytes | bytearray | None, text: bool, encoding: str | None, errors: str | None) -> Any:
    if data is None:
        return None
    if not text:
        return bytes(data)
    # subprocess's universal newlines: decode, then \r\n and \r become \n.
    decoded = bytes(data).decode(encoding or locale.getpreferredencoding(False), errors or "strict")
    return decoded.replace("\r\n", "\n").replace("\r", "\n")


def result_from(
    outcome: Outcome,
    argv: list[str],
    container_id: str,
    stdout: Any,
    stderr: Any,
) -> Result[Any]:
    exited = outcome.exited or {}
    usage_data = exited.get("usage")
    reason: Reason = exited.get("reason", "killed")
    return Result(
        args=argv,
        returncode=int(exited.get("returncode", -9)),
        stdout=stdout,
        stderr=stderr,
        reason=reason,
        usage=Usage.from_dict(usage_data) if usage_data else None,
        container_id=container_id,
    )


def run(
    args: Sequence[str] | None = None,
    *,
    spec: Spec | None = None,
    capture_output: bool = False,
    text: bool | None = None,
    encoding: str | None = None,
    errors: str | None = None,
    input: bytes | str | None = None,
    timeout: float | None = None,
    check: bool = False,
    stdin: StdioArg = None,
    stdout: StdioArg = None,
    stderr: StdioArg = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    lib_root: str | None = None,
    images: ImageStore | None = None,
    pull: bool = True,
    launcher: Launcher | None = None,
) -> Result[Any]:
    """Run ``args`` in a new container described by ``spec`` and wait for it, like
    :func:`subprocess.run`.

    ``args`` replaces the spec's (or image's) command; the entrypoint stays in front. ``env``
    adds to the spec's environment (nothing comes from the caller's), ``cwd`` sets the working
    directory. stdio arguments work as in subprocess (None inherits the caller's fds).

    Returns a :class:`Result`: ``returncode`` (``-N`` for signal N, like subprocess),
    ``stdout``/``stderr``, ``reason`` and ``usage``. ``check=True`` raises
    :class:`ContainerError` for a non-zero returncode. ``timeout`` kills the container and
    raises :class:`TimeoutExpired` (also a :class:`subprocess.TimeoutExpired`). The container,
    its cgroup, state, overlay mount and bundle are gone when this returns or raises, also on
    KeyboardInterrupt; except for a container from a pool (``WarmLauncher(pool_size=N)``): its
    supervisor removes it right after the result, in the background, and the launcher's next
    claim, ``wait_pool_ready()`` and ``close()`` wait for that removal.
    """
    if capture_output:
        if stdout is not None or stderr is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output")
        stdout = stderr = PIPE
    if input is not None:
        if stdin is not None:
            raise ValueError("stdin and input arguments may not both be used")
        stdin = PIPE
    text_mode = bool(text or encoding or errors)
    input_bytes: bytes | None = None
    if input is not None:
        if isinstance(input, str):
            if not text_mode:
                raise TypeError("input must be bytes unless text=True")
            input_bytes = input.encode(encoding or locale.getpreferredencoding(False), errors or "strict")
        else:
            input_bytes = bytes(input)
    deadline = None if timeout is None else time.monotonic() + timeout
    the_spec = effective_spec(spec, env, cwd)
    root = lib_root or _bundle.default_lib_root()
    argv_override = list(args) if args is not None else None
    if isinstance(args, (str, bytes)):
        raise TypeError("args must be a list of strings (use ['sh', '-c', '...'] for a shell command)")

    chosen = launcher or default_launcher()
    claimed = _claim_pooled(chosen, the_spec, argv_override, root, pull, images, (stdin, stdout, stderr), deadline)
    if claimed is not None:
        bundle, supervisor, parent_fds = claimed.bundle, claimed.supervisor, claimed.parent_fds
        piped = {i for i in (1, 2) if claimed.parent_fds[i] is not None}
        early: Outcome | None = claimed.outcome
    else:
        plan = StdioPlan(stdin, stdout, stderr)
        try:
            bundle = _bundle.prepare_bundle(the_spec, args=argv_override, lib_root=root, images=images, pull=pull)
        except BaseException:
            plan.close_all()
            raise
        try:
            supervisor = chosen.launch(
                run_request(bundle, the_spec, root, autostart=True, autoremove=True), plan.child_fds
            )
        except BaseException:
            plan.close_all()
            force_cleanup(root, bundle.container_id, bundle.path)
            raise
        plan.close_child_ends()
        parent_fds = plan.parent
        piped = {i for i in (1, 2) if plan.parent_was_pipe(i)}
        early = None
    assert bundle.config.process is not None and bundle.config.process.args is not None
    argv = list(bundle.config.process.args)

    def cleanup() -> None:
        force_cleanup(root, bundle.container_id, bundle.path)

    # A pooled container's result is complete at "exited" (its usage is read before the
    # removal); its pool follows the removal, which later claims, wait_ready() and close()
    # wait for. Its id, cgroups and bundle are its own, so nothing can collide meanwhile.
    in_background = False
    try:
        outcome = communicate(supervisor, parent_fds, input_bytes, deadline, early, until_exited=claimed is not None)
        in_background = claimed is not None and outcome.exited is not None and not outcome.removed
        if not in_background:
            finish_supervisor(supervisor, removed=outcome.removed)
        if claimed is not None:
            claimed.refill()  # now: its creation would have competed with this run for the CPU
    except BaseException:
        for fd in parent_fds:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        abort(supervisor, cleanup)
        raise
    if in_background:
        assert claimed is not None
        claimed.remove_later()
    elif not outcome.removed or outcome.cleanup_error is not None:
        cleanup()

    out = decode_output(outcome.stdout if 1 in piped else None, text_mode, encoding, errors)
    err = decode_output(outcome.stderr if 2 in piped else None, text_mode, encoding, errors)
    if outcome.exited is None:
        if outcome.error is not None:
            raise _channel.decode_error(outcome.error)
        raise TinyContainerError("the container's supervisor exited without a result")
    result = result_from(outcome, argv, bundle.container_id, out, err)
    if outcome.timed_out and result.reason == "wall-time":
        assert timeout is not None
        raise TimeoutExpired(argv, timeout, out, err, result)
    if check and result.returncode != 0:
        raise container_error(result)
    return result


def _claim_pooled(
    launcher: Launcher,
    spec: Spec,
    argv_override: list[str] | None,
    root: str,
    pull: bool,
    images: ImageStore | None,
    stdio: tuple[StdioArg, StdioArg, StdioArg],
    deadline: float | None,
) -> Claimed | None:
    """A pre-created container from the launcher's pool (``WarmLauncher(pool_size=N)``), started."""
    claim = getattr(launcher, "claim_run", None)
    if claim is None or getattr(launcher, "pool_size", 0) <= 0 or images is not None or spec.tty:
        return None
    from ._pool import stdio_kinds

    kinds = stdio_kinds(*stdio)
    if kinds is None:
        return None
    key = ("run", spec, None if argv_override is None else tuple(argv_override), kinds, root, pull)
    try:
        hash(key)
    except TypeError:
        return None

    def make() -> tuple[_bundle.Bundle, dict[str, Any], str]:
        made = _bundle.prepare_bundle(spec, args=argv_override, lib_root=root, pull=pull)
        return made, run_request(made, spec, root, autostart=False, autoremove=True), root

    claimed: Claimed | None = claim(key, make, kinds, deadline)
    return claimed


__all__ = ["decode_output", "effective_spec", "force_cleanup", "result_from", "run", "run_request", "seccomp_cache"]
