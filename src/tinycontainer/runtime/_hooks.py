"""OCI hooks (runtime-spec config.md "POSIX-platform Hooks"): run a program with the container
state as JSON on its stdin, honouring ``timeout``; a failing hook is an error for the stages
the spec says must abort (prestart, createRuntime, createContainer, startContainer) and only a
warning for poststart/poststop, which never stop the remaining hooks from running.
"""

from __future__ import annotations

from .. import oci
from .._errors import TinyContainerError
from ..oci import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class HookFailed(TinyContainerError):
    pass


def run_hook(hook: oci.Hook, state: dict[str, Any], stage: str) -> None:
    # Imported here: most containers have no hooks. create imports it before fork when they do.
    import subprocess

    args = hook.args or [hook.path]
    env = {}
    for item in hook.env or []:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    try:
        proc = subprocess.Popen(
            args,
            executable=hook.path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
            cwd="/",
        )
    except OSError as exc:
        raise HookFailed(f"{stage} hook {hook.path}: {exc.strerror}") from None
    try:
        out, err = proc.communicate(_json.dumps(state).encode(), timeout=hook.timeout if hook.timeout else None)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise HookFailed(f"{stage} hook {hook.path} timed out after {hook.timeout}s") from None
    except BrokenPipeError:
        # The hook exited without reading its stdin: allowed (crun once died of EPIPE here).
        out, err = b"", b""
        proc.wait()
    if proc.returncode != 0:
        detail = (err or out).decode(errors="replace").strip().splitlines()
        tail = f": {detail[-1]}" if detail else ""
        raise HookFailed(f"{stage} hook {hook.path} exited with status {proc.returncode}{tail}")


def run_hooks(
    hooks: list[oci.Hook] | None, state: dict[str, Any], stage: str, *, keep_going: bool = False
) -> list[str]:
    """Run ``hooks`` in order. With ``keep_going`` failures are collected and returned instead of raised."""
    failures: list[str] = []
    for hook in hooks or []:
        try:
            run_hook(hook, state, stage)
        except HookFailed as exc:
            if not keep_going:
                raise
            failures.append(str(exc))
    return failures


def hook_state(
    container_id: str, status: str, pid: int, bundle: str, annotations: dict[str, str] | None
) -> dict[str, Any]:
    return {
        "ociVersion": oci.OCI_VERSION,
        "id": container_id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
        "annotations": annotations or {},
    }
