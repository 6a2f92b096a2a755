"""Container logs: docker's ``json-file`` format, size-capped with rotation.

One JSON object per line, ``{"stream": "stdout"|"stderr", "time": RFC 3339 UTC, "log": text}``,
where ``log`` keeps its trailing newline (a line cut at :data:`MAX_LINE` has none, exactly as
docker splits long lines at 16 KiB). When ``path`` would grow past ``max_size`` it is renamed to
``path.1`` (``path.1`` to ``path.2``, ...), keeping ``max_files`` files in all, so a chatty
container can never fill the disk.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MAX_LINE = 16 << 10
DEFAULT_MAX_SIZE = 10 << 20
DEFAULT_MAX_FILES = 3


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LogWriter:
    """Appends container output to ``path``. Not thread-safe: one writer (the monitor) per log."""

    def __init__(self, path: str, max_size: int = DEFAULT_MAX_SIZE, max_files: int = DEFAULT_MAX_FILES) -> None:
        self.path = path
        self.max_size = max(4096, max_size)
        self.max_files = max(1, max_files)
        self._partial: dict[str, bytes] = {}
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, stream: str, data: bytes) -> None:
        """Log a chunk as read from the container; an incomplete last line waits for its end."""
        buffered = self._partial.pop(stream, b"") + data
        lines = buffered.split(b"\n")
        tail = lines.pop()
        complete = [line + b"\n" for line in lines]
        while len(tail) >= MAX_LINE:
            complete.append(tail[:MAX_LINE])
            tail = tail[MAX_LINE:]
        if tail:
            self._partial[stream] = tail
        self._emit(stream, complete)

    def flush_partial(self) -> None:
        """At exit: log the unterminated last lines as they are."""
        for stream, tail in list(self._partial.items()):
            self._emit(stream, [tail])
        self._partial.clear()

    def _emit(self, stream: str, pieces: list[bytes]) -> None:
        if not pieces:
            return
        head = f'{{"stream":"{stream}","time":"{_now()}","log":'
        out: list[bytes] = []
        size = 0
        for piece in pieces:
            # Invalid UTF-8 becomes U+FFFD, as docker does: the log must stay valid JSON.
            line = (head + json.dumps(piece.decode("utf-8", "replace")) + "}\n").encode()
            if self._size + size + len(line) > self.max_size and (self._size + size) > 0:
                self._write(b"".join(out))
                out, size = [], 0
                self._rotate()
            out.append(line)
            size += len(line)
        self._write(b"".join(out))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._size += len(data)

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.max_files == 1:
            os.unlink(self.path)
        else:
            for i in range(self.max_files - 1, 0, -1):
                src = self.path if i == 1 else f"{self.path}.{i - 1}"
                with contextlib.suppress(FileNotFoundError):
                    os.replace(src, f"{self.path}.{i}")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = 0

    def close(self) -> None:
        self.flush_partial()
        os.close(self._fd)


@dataclass(frozen=True)
class LogEntry:
    stream: str
    time: str
    log: str

    @property
    def when(self) -> datetime.datetime | None:
        try:
            return datetime.datetime.fromisoformat(self.time.replace("Z", "+00:00"))
        except ValueError:
            return None


def _parse(line: bytes) -> LogEntry | None:
    try:
        doc = json.loads(line)
    except ValueError:
        return None  # a line cut by a crash: skip it rather than fail the whole read
    if not isinstance(doc, dict):
        return None
    return LogEntry(str(doc.get("stream", "stdout")), str(doc.get("time", "")), str(doc.get("log", "")))


def log_files(path: str) -> list[str]:
    """Oldest first: path.N ... path.1, path."""
    rotated = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        rotated.append(f"{path}.{i}")
        i += 1
    return [*reversed(rotated), path] if os.path.exists(path) else list(reversed(rotated))


def read_logs(
    path: str,
    *,
    tail: int | None = None,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
) -> list[LogEntry]:
    entries: collections.deque[LogEntry] = collections.deque(maxlen=tail if tail is not None and tail >= 0 else None)
    for name in log_files(path):
        try:
            with open(name, "rb") as f:
                for line in f:
                    entry = _parse(line)
                    if entry is None or not _in_window(entry, since, until):
                        continue
                    entries.append(entry)
        except FileNotFoundError:
            continue  # rotated away while we listed
    return list(entries)


def _in_window(entry: LogEntry, since: datetime.datetime | None, until: datetime.datetime | None) -> bool:
    if since is None and until is None:
        return True
    when = entry.when
    if when is None:
        return True
    return not ((since is not None and when < since) or (until is not None and when > until))


def follow_logs(
    path: str,
    still_running: Callable[[], bool],
    *,
    since: datetime.datetime | None = None,
    interval: float = 0.1,
) -> Iterator[LogEntry]:
    """New entries of ``path`` (from its current end) until the writer is gone and all is read.

    Rotation is noticed by the inode changing under the name; the rest of the old file is
    read before the new one is opened."""
    f = None
    inode = None
    buffered = b""
    try:
        while True:
            if f is None:
                try:
                    f = open(path, "rb")  # noqa: SIM115 - kept open across iterations
                except FileNotFoundError:
                    if not still_running():
                        return
                    time.sleep(interval)
                    continue
                inode = os.fstat(f.fileno()).st_ino
                f.seek(0, os.SEEK_END)
            chunk = f.read(1 << 16)
            if chunk:
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    entry = _parse(line)
                    if entry is not None and _in_window(entry, since, None):
                        yield entry
                continue
            try:
                rotated = os.stat(path).st_ino != inode
            except FileNotFoundError:
                rotated = True
            if rotated:
                f.close()
                try:
                    f = open(path, "rb")  # noqa: SIM115
                except FileNotFoundError:
                    f = None
                    continue
                inode = os.fstat(f.fileno()).st_ino
                buffered = b""
                continue
            alive = still_running()
            if not alive:
                # One last read: the writer may have written between our read and its exit.
                rest = f.read()
                for line in (buffered + rest).split(b"\n"):
                    entry = _parse(line) if line else None
                    if entry is not None and _in_window(entry, since, None):
                        yield entry
                return
            time.sleep(interval)
    finally:
        if f is not None:
            f.close()
