"""Pieces of ``create`` that need no root: the config copy the state keeps."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests.integration.rootfs._spec import runc_spec

from tinycontainer import oci
from tinycontainer.runtime import _create, _store


def test_the_state_keeps_the_bundle_bytes_it_parsed(tmp_path: Path) -> None:
    spec = runc_spec()
    spec["x-unknown"] = {"kept": True}  # a field the parser ignores stays in the copy
    raw = json.dumps(spec, indent=1).encode()
    (tmp_path / "config.json").write_bytes(raw)
    config, got = _create._load_bundle(str(tmp_path))
    assert got == raw
    assert config == _create.load_bundle_config(str(tmp_path))
    state = tmp_path / "state"
    state.mkdir()
    _create._write_config_copy(str(state), got)
    copy = state / _store.CONFIG_COPY
    assert copy.read_bytes() == raw
    assert oci.Config.from_json(copy.read_bytes()) == config
    # the config may hold secrets (process.env): only the owner reads it
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600


def test_a_shorter_copy_replaces_a_longer_one(tmp_path: Path) -> None:
    _create._write_config_copy(str(tmp_path), b"x" * 100_000)
    _create._write_config_copy(str(tmp_path), b"{}")
    assert (tmp_path / _store.CONFIG_COPY).read_bytes() == b"{}"
