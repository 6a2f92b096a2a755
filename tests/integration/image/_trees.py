"""Describe a directory tree as a dict (for exact comparisons) and run code in a private mount namespace."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import traceback
from collections.abc import Callable
from typing import Any

from tinycontainer.linux import _consts as C
from tinycontainer.linux import _libc


def describe(root: str) -> dict[str, str]:
    """path -> "dir" | "file:<content or sha256>" | "link:<target>" | "chr:<maj>,<min>" ..."""
    out: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if stat.S_ISDIR(st.st_mode):
                out[rel] = "dir"
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = "link:" + os.readlink(full)
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as fh:
                    data = fh.read()
                out[rel] = "file:" + (data.decode() if len(data) < 64 else hashlib.sha256(data).hexdigest())
            elif stat.S_ISCHR(st.st_mode):
                out[rel] = f"chr:{os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
            else:
                out[rel] = "other"
    return out


def in_private_mount_ns(fn: Callable[[], Any], timeout_note: str = "") -> Any:
    """Run ``fn`` in a forked child that has its own mount namespace with private propagation.

    Mounts made by ``fn`` vanish with the child, so the host's mount table never changes.
    Returns what ``fn`` returned (JSON-serialisable); re-raises its failure as AssertionError.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 0
        try:
            os.close(read_end)
            _libc.unshare(C.CLONE_NEWNS)
            _libc.mount(None, "/", None, C.MS_REC | C.MS_PRIVATE)
            payload = {"ok": fn()}
        except BaseException:
            payload = {"error": traceback.format_exc()}
            status = 1
        try:
            data = json.dumps(payload).encode()
            while data:
                data = data[os.write(write_end, data) :]
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    result = json.loads(b"".join(chunks) or b'{"error": "child died"}')
    if "error" in result:
        raise AssertionError(f"child failed {timeout_note}:\n{result['error']}")
    return result["ok"]
