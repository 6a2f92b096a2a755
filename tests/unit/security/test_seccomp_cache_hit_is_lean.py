"""A start whose seccomp program is in the compile cache (podman passes a profile with every
container) loads neither the compiler, the syscall tables, nor hashlib, json or tempfile; and the
table version the cache key uses is still the digest of the tables it stands for."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import tinycontainer
from tinycontainer.linux.seccomp import _table_version, _tables

SRC = str(Path(tinycontainer.__file__).parent.parent)
HEAVY = {"hashlib", "json", "tempfile", "dataclasses", "tinycontainer.linux.seccomp._compiler",
         "tinycontainer.linux.seccomp._tables", "tinycontainer.linux.seccomp._bpf"}  # fmt: skip


def test_table_version_is_the_digest_of_the_tables() -> None:
    tables = {"x86_64": _tables.X86_64, "i386": _tables.I386, "x32": _tables.X32}
    digest = hashlib.sha256(repr(sorted((a, sorted(t.items())) for a, t in tables.items())).encode()).hexdigest()
    assert _table_version.TABLE_VERSION == digest[:16] == _tables.TABLE_VERSION


def test_a_cache_hit_loads_nothing_heavy(tmp_path: Path) -> None:
    code = f"""
import sys; sys.path[:0] = [{SRC!r}]
from tinycontainer.oci import _defaults
from tinycontainer.linux import seccomp
profile = _defaults.default_seccomp()
before = set(sys.modules)
program = seccomp.compile_cached(profile, {str(tmp_path)!r})
print(sorted(set(sys.modules) - before))
"""
    first = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert "tinycontainer.linux.seccomp._compiler" in first.stdout  # a miss compiles: the probe can see it
    hit = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(hit.stdout.replace("'", '"')))
    assert "tinycontainer.linux.seccomp._cache" in loaded
    assert sorted(loaded & HEAVY) == []
