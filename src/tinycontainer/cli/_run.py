"""The attached side of ``tcontainer run``: the terminal, signals, the exit status."""

from __future__ import annotations

import contextlib
import signal
import sys
from typing import TYPE_CHECKING

from .. import _containers as ops
from .._containers import Home
from .._records import Record

if TYPE_CHECKING:
    from .._monitor import Channel, Started
    from ..image import Image


def pull_image(home: Home, ref: str, *, platform: str | None = None, quiet: bool = False) -> Image:
    from ._progress import PullProgress

    # Progress goes to stderr: stdout carries only the result (the image id), for scripts.
    progress = PullProgress.for_stream(sys.stderr, quiet=quiet)
    if not quiet:
        print(f"Pulling {ref}", file=sys.stderr)
    try:
        img = home.images.pull(ref, platform=platform, progress=progress)
    finally:
        progress.finish()
    if not quiet:
        print(f"Digest: {img.digest}", file=sys.stderr)
    return img


def ensure_image(home: Home, ref: str) -> str:
    """The image's id, pulling it first when it is not in the local store (docker's message)."""
    from ..image import ImageNotFound

    try:
        return home.images.get(ref).id
    except ImageNotFound:
        print(f"Unable to find image '{ref}' locally", file=sys.stderr)
    return pull_image(home, ref).id


def _oom_message(record: Record, limit: int | None) -> str:
    from ._units import format_size

    what = f"its memory limit of {format_size(limit)}" if limit else "its memory limit"
    return (
        f"tcontainer: container {record.name} was killed by the kernel's OOM killer: it exceeded {what} "
        "(raise it with --memory)"
    )


def attach_and_wait(home: Home, record: Record, channel: Channel, started: Started) -> int:
    """Wait for an attached run: the monitor copies the container's output to our stdio (and
    our terminal's keys to a -it container) itself; we pass on window sizes or signals."""
    if started.tty:
        # Raw terminal: Ctrl-C reaches the container as a key, so no signals to forward.
        outcome = channel.wait_outcome(resize=True)
        if outcome.detached:
            sys.stderr.write(f"\r\ndetached from {record.name} (tcontainer attach {record.name})\r\n")
            return 0
    else:
        previous = ops.forward_signals_to(started.pid)
        try:
            outcome = channel.wait_outcome(resize=False)
        finally:
            for sig, handler in previous.items():
                with contextlib.suppress(TypeError, ValueError):
                    signal.signal(sig, handler)
    if outcome.oom_killed:
        print(_oom_message(record, outcome.memory_limit), file=sys.stderr)
    return outcome.code
