"""The one place where exceptions become a message and an exit status (pip's ``_run_wrapper``).

Library code raises; the command lines call :func:`run_command`, which prints one line to
stderr (and, for ``tcontainer-oci --log-format json``, one JSON object to the log file, the
form conmon and podman read back) and returns the status.
"""

from __future__ import annotations

import os
import sys

from .._errors import KernelError, SpecError, TinyContainerError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

SUCCESS = 0
ERROR = 1
USAGE = 2


class LogTarget:
    def __init__(self, path: str | None = None, fmt: str = "text", prog: str = "tcontainer") -> None:
        self.path = path
        self.fmt = fmt
        self.prog = prog

    def write(self, level: str, message: str) -> None:
        if not self.path:
            return
        # Imported here: most commands log nothing, and start-up time matters (tcontainer-oci).
        import datetime

        from ..oci import _json

        now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        if self.fmt == "json":
            line = _json.dumps({"level": level, "msg": message, "time": now})
        else:
            line = f'time="{now}" level={level} msg="{message}"'
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        except OSError:
            pass


def describe(exc: BaseException) -> str:
    if isinstance(exc, KernelError):
        return str(exc)
    if isinstance(exc, (SpecError, TinyContainerError)):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return f"{type(exc).__name__}: {exc}"


def run_command(func: Callable[[], int], log: LogTarget, error_status: int = ERROR, debug: bool = False) -> int:
    try:
        return func()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return ERROR
    except (TinyContainerError, OSError) as exc:
        message = describe(exc)
        log.write("error", message)
        print(f"{log.prog}: {message}", file=sys.stderr)
        return error_status
    except Exception as exc:  # a bug: still one line, the traceback only with --debug
        if debug:
            import traceback

            traceback.print_exc()
        message = f"internal error: {describe(exc)}"
        log.write("error", message)
        print(f"{log.prog}: {message}", file=sys.stderr)
        return error_status
