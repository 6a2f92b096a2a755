"""The code pack of tcontainer-oci (tinycontainer/_codepack.py): modules are served from it only
while their source is unchanged, it is rewritten when a command needed something it lacked, and
no state of the pack file (missing, foreign, truncated, damaged, unwritable) makes an import fail.

Each case runs a fresh interpreter on a private copy of the package, as the installed script does.
"""

from __future__ import annotations

import json
import marshal
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tinycontainer

PACKAGE_SRC = Path(tinycontainer.__file__).parent

# What the script does, then a report of where each module came from.
PROBE = """
import json, sys
from tinycontainer import _codepack
pack = _codepack.install()
import tinycontainer.runtime._store, tinycontainer.oci
from tinycontainer.oci import _record
_codepack.save(pack)
loaders = {n: type(m.__loader__).__name__ for n, m in sys.modules.items() if n.startswith("tinycontainer.")}
print(json.dumps({"loaders": loaders, "missed": pack.missed, "file": _record.__file__,
                  "canary": getattr(_record, "CANARY", None)}))
"""


@pytest.fixture
def package_root(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    shutil.copytree(PACKAGE_SRC, root / "tinycontainer", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def probe(root: Path, *, write_bytecode: bool = True) -> dict[str, object]:
    code = f"import sys; sys.path.insert(0, {str(root)!r})\n" + PROBE
    flags = ["-I"] if write_bytecode else ["-I", "-B"]  # -I: no PYTHON* variables of ours apply
    out = subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def pack_file(root: Path) -> Path:
    tag = sys.implementation.cache_tag
    return root / "tinycontainer" / "__pycache__" / f"oci-codepack.{tag}.bin"


def packed(result: dict[str, object]) -> set[str]:
    loaders = result["loaders"]
    assert isinstance(loaders, dict)
    return {name for name, loader in loaders.items() if loader == "_PackedLoader"}


def test_first_command_writes_the_pack_and_the_next_one_uses_it(package_root: Path) -> None:
    first = probe(package_root)
    assert packed(first) == set() and first["missed"] is True
    assert pack_file(package_root).is_file()
    stamp = pack_file(package_root).stat().st_mtime_ns

    second = probe(package_root)
    assert {"tinycontainer.runtime._store", "tinycontainer.oci", "tinycontainer.oci._record"} <= packed(second)
    assert second["missed"] is False
    assert second["file"] == str(package_root / "tinycontainer" / "oci" / "_record.py")
    assert pack_file(package_root).stat().st_mtime_ns == stamp  # nothing to rewrite


def test_a_changed_source_is_imported_from_itself_then_repacked(package_root: Path) -> None:
    probe(package_root)
    record_py = package_root / "tinycontainer" / "oci" / "_record.py"
    record_py.write_text(record_py.read_text() + "\nCANARY = 'changed'\n")

    changed = probe(package_root)
    assert changed["canary"] == "changed"
    assert "tinycontainer.oci._record" not in packed(changed) and changed["missed"] is True

    again = probe(package_root)
    assert again["canary"] == "changed" and "tinycontainer.oci._record" in packed(again)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"something else entirely" + data, id="foreign"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
    ],
)
def test_a_bad_pack_never_breaks_an_import(package_root: Path, damage: object) -> None:
    probe(package_root)
    pack = pack_file(package_root)
    assert callable(damage)
    pack.write_bytes(damage(pack.read_bytes()))
    result = probe(package_root)
    assert result["canary"] is None and result["file"]  # the modules were imported all the same


def test_no_pack_is_written_where_bytecode_may_not_be(package_root: Path) -> None:
    probe(package_root, write_bytecode=False)
    assert not pack_file(package_root).exists()
    cache = package_root / "tinycontainer" / "__pycache__"
    cache.mkdir(exist_ok=True)
    cache.chmod(0o555)
    try:
        if os.geteuid() == 0:
            pytest.skip("root writes into a read-only directory")
        probe(package_root)  # no error
        assert not pack_file(package_root).exists()
    finally:
        cache.chmod(0o755)


def test_damaged_code_in_an_intact_pack_falls_back_to_the_source(package_root: Path) -> None:
    from tinycontainer import _codepack

    probe(package_root)
    entries = _codepack._read(str(pack_file(package_root)))
    record, store = entries["tinycontainer.oci._record"], entries["tinycontainer.runtime._store"]
    entries["tinycontainer.oci._record"] = (*record[:4], marshal.dumps(42))  # valid marshal, not code
    entries["tinycontainer.runtime._store"] = (*store[:4], b"\xff" * len(store[4]))  # not marshal at all
    pack_file(package_root).write_bytes(_codepack._serialized(entries))

    result = probe(package_root)
    assert result["file"] and "tinycontainer.oci" in packed(result)  # the intact entries still serve
