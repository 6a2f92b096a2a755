"""The CLI's rendering of pull progress: in-place bars on a terminal, one line per layer elsewhere."""

from __future__ import annotations

import io
import re

from tinycontainer.cli._progress import PullProgress, bar, human_mb
from tinycontainer.image import ProgressEvent

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def _events() -> list[ProgressEvent]:
    return [
        ProgressEvent(A, "waiting", 0, 100_000_000),
        ProgressEvent(B, "waiting", 0, 2_000),
        ProgressEvent(B, "exists", 2_000, 2_000),
        ProgressEvent(A, "downloading", 0, 100_000_000),
        ProgressEvent(A, "downloading", 50_000_000, 100_000_000),
        ProgressEvent(A, "downloading", 100_000_000, 100_000_000),
        ProgressEvent(A, "unpacking", 0, 100_000_000),
        ProgressEvent(A, "done", 100_000_000, 100_000_000),
    ]


def test_units_and_bar() -> None:
    assert human_mb(999) == "999B"
    assert human_mb(1_500) == "1.5kB"
    assert human_mb(104_857_600) == "104.9MB"
    assert human_mb(3_000_000_000) == "3.00GB"
    assert bar(0, 10, 10) == "[>         ]"
    assert bar(5, 10, 10) == "[=====>    ]"
    assert bar(10, 10, 10) == "[==========]"


def test_plain_output_is_one_line_per_layer() -> None:
    out = io.StringIO()
    progress = PullProgress(out, "plain")
    for event in _events():
        progress(event)
    progress.finish()
    assert out.getvalue() == "bbbbbbbbbbbb: Already exists\naaaaaaaaaaaa: Pull complete (100.0MB)\n"
    assert "\x1b" not in out.getvalue()


def test_quiet_prints_nothing() -> None:
    out = io.StringIO()
    progress = PullProgress.for_stream(out, quiet=True)
    for event in _events():
        progress(event)
    progress.finish()
    assert out.getvalue() == ""


def test_a_non_terminal_stream_gets_plain_mode() -> None:
    assert PullProgress.for_stream(io.StringIO()).mode == "plain"


def test_terminal_redraws_in_place() -> None:
    out = io.StringIO()
    progress = PullProgress(out, "tty", width=100)
    for event in _events()[:5]:
        progress(event)
    text = out.getvalue()
    # Each redraw after the first moves the cursor up over the lines drawn before (2 layers + total).
    assert "\x1b[3A" in text
    assert text.count("\x1b[2K") >= 3
    last = progress.lines()
    assert last[0].startswith("aaaaaaaaaaaa: Downloading") and "50.0MB/100.0MB" in last[0]
    assert "[===============>" in last[0]
    assert last[1] == "bbbbbbbbbbbb: Already exists"
    assert re.match(r"Total: +\[=+> *\] 50\.0MB/100\.0MB", last[2])
    for event in _events()[5:]:
        progress(event)
    progress.finish()
    assert progress.lines()[0].startswith("aaaaaaaaaaaa: Pull complete")
    assert progress.lines()[2].split()[2] == "100.0MB/100.0MB"


def test_lines_are_cut_to_the_terminal_width() -> None:
    out = io.StringIO()
    progress = PullProgress(out, "tty", width=40)
    for event in _events()[:5]:
        progress(event)
    for line in out.getvalue().split("\n"):
        visible = re.sub(r"\x1b\[\d*[A-Za-z]|\r", "", line)
        assert len(visible) <= 39
