"""Shared pieces of the black-box security tests: the compiled probe, default bundles written by
``tcontainer-oci spec``, and a check that nothing outside the test's temp dirs changed."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import cache
from typing import Any

from tests.helpers.leaks import LeakCheck
from tests.helpers.oci import OCIRuntime

PROBE_SOURCE = os.path.join(os.path.dirname(__file__), "probe.c")
PROBE_IN_CONTAINER = "/bin/probe"


def compile_probe(dest_dir: str) -> str:
    """gcc -static the probe into ``dest_dir`` (a temp dir: no binary lives in the repository)."""
    out = os.path.join(dest_dir, "probe")
    subprocess.run(["gcc", "-static", "-O1", "-o", out, PROBE_SOURCE], check=True, capture_output=True, timeout=120)
    return out


def install_probe(rootfs: str, probe: str) -> None:
    shutil.copy2(probe, os.path.join(rootfs, PROBE_IN_CONTAINER.lstrip("/")))


@cache
def _spec_json() -> str:
    """What ``tcontainer-oci spec`` writes (always tinycontainer's defaults, whatever runtime runs)."""
    with tempfile.TemporaryDirectory(prefix="tc-spec-") as d:
        subprocess.run(
            [sys.executable, "-m", "tinycontainer.cli.oci", "spec", "--bundle", d],
            check=True,
            capture_output=True,
            timeout=60,
        )
        with open(os.path.join(d, "config.json")) as f:
            return f.read()


def default_config(rootfs: str, args: list[str]) -> dict[str, Any]:
    cfg: dict[str, Any] = copy.deepcopy(json.loads(_spec_json()))
    cfg["root"]["path"] = rootfs
    cfg["process"]["args"] = args
    return cfg


def default_bundle(rt: OCIRuntime, args: list[str], rootfs: str | None = None) -> str:
    return rt.bundle(args, default_config(rootfs or rt.rootfs, args))


def write_config(bundle: str, cfg: dict[str, Any]) -> None:
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)


# ---------------------------------------------------------------- "nothing outside changed"

# Host places a hostile container would aim at. /tmp is left out on purpose: other test
# sessions share it; attacks in these tests aim at canary dirs inside their own temp dirs.
_WATCHED_DIRS = ("/", "/etc", "/root", "/var/tmp", "/usr/bin", "/usr/local/bin")
_WATCHED_FILES = (
    "/proc/sys/kernel/hostname",
    "/proc/sys/kernel/domainname",
    "/proc/sys/kernel/core_pattern",
    "/proc/sys/net/ipv4/ip_forward",
    "/etc/passwd",
    "/etc/subuid",
    "/etc/subgid",
)


def _dir_listing(path: str) -> list[tuple[str, int, int]]:
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return []
    rows = []
    for name in names:
        try:
            st = os.lstat(os.path.join(path, name))
        except OSError:
            continue
        rows.append((name, st.st_mode, st.st_size if not os.path.isdir(os.path.join(path, name)) else 0))
    return rows


def _file_digest(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read(1 << 20)).hexdigest()
    except OSError as exc:
        return f"error {exc.errno}"


def host_snapshot() -> dict[str, Any]:
    return {
        "dirs": {d: _dir_listing(d) for d in _WATCHED_DIRS},
        "files": {f: _file_digest(f) for f in _WATCHED_FILES},
    }


def tree_snapshot(root: str) -> list[tuple[str, int, str]]:
    """Every path below ``root`` with its mode and (for files) content digest."""
    rows = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            digest = _file_digest(path) if os.path.isfile(path) and not os.path.islink(path) else ""
            rows.append((os.path.relpath(path, root), st.st_mode, digest))
    return sorted(rows)


# ---------------------------------------------------------------- leaks, scoped to this test


class TrackedRuntime(OCIRuntime):
    """An OCIRuntime that remembers every container id it handed out (for ScopedLeakCheck)."""

    def __init__(self, root: str, workdir: str, rootfs: str) -> None:
        super().__init__(root, workdir, rootfs)
        self.ids: list[str] = []

    def new_id(self) -> str:
        cid = super().new_id()
        self.ids.append(cid)
        return cid


def _process_text(pid: int) -> str:
    parts = []
    for name in ("cgroup", "cmdline"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as f:
                parts.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    return " ".join(parts)


class ScopedLeakCheck(LeakCheck):
    """LeakCheck, but only for leaks that name this test's containers or temp dirs.

    The machine is shared: other sessions create cgroups and containers at the same time, and
    the plain LeakCheck (which diffs the whole machine) blames them on us."""

    def __init__(self, state_root: str, markers: Callable[[], list[str]]) -> None:
        super().__init__(state_root=state_root)
        self.markers = markers

    def _ours(self, text: str) -> bool:
        return any(m and m in text for m in self.markers())

    def leaks(self) -> list[str]:
        problems = []
        for problem in super().leaks():
            kind, _, rest = problem.partition(": ")
            items = [s.strip(" '[]") for s in rest.split(",")]
            if kind.startswith("container processes"):
                items = [i for i in items if i.isdigit() and self._ours(_process_text(int(i)))]
            else:
                items = [i for i in items if self._ours(i)]
            if items:
                problems.append(f"{kind}: {items}")
        return problems
