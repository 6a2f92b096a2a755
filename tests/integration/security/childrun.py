"""Run a function in a forked child and get its JSON result back (seccomp/caps never touch pytest)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time
import traceback
from collections.abc import Callable
from typing import Any


class ChildDied(Exception):
    def __init__(self, status: int, output: str) -> None:
        self.status = status
        self.signal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        super().__init__(f"child ended with status {status:#x} (signal {self.signal}), output {output!r}")


def run_in_child(func: Callable[[int], Any], timeout: float = 20.0) -> Any:
    """Call ``func(result_fd)`` in a fork; its return value (JSON) comes back through a pipe.

    ``func`` gets the pipe's write end so it may also dup it onto stdout and execve.
    """
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            os.close(rfd)
            result = func(wfd)
            os.write(wfd, json.dumps({"ok": result}).encode())
        except BaseException:
            code = 1
            with contextlib.suppress(BaseException):
                os.write(wfd, json.dumps({"error": traceback.format_exc()}).encode())
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                raise TimeoutError("child did not finish")
            ready, _, _ = select.select([rfd], [], [], left)
            if not ready:
                continue
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(rfd)
        _, status = os.waitpid(pid, 0)
    output = b"".join(chunks).decode(errors="replace")
    if os.WIFSIGNALED(status):
        raise ChildDied(status, output)
    try:
        message = json.loads(output)
    except ValueError:
        return output  # the child exec'd a program that wrote plain text
    if "error" in message:
        raise AssertionError(f"child failed:\n{message['error']}")
    return message["ok"]


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields
