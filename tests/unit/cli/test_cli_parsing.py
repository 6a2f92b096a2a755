"""Pure parsing of the ``tcontainer`` command line: seed flags, option scanning, units, names."""

from __future__ import annotations

import datetime
import os

import pytest

from tinycontainer._errors import SpecError, StateError
from tinycontainer._records import RecordStore, StateDirs
from tinycontainer.cli._argv import normalize_seed_flag, split_options
from tinycontainer.cli._commands import parse_detach_keys
from tinycontainer.cli._main import split_globals
from tinycontainer.cli._parsers import run_parser
from tinycontainer.cli._runspec import build_run_plan, parse_tmpfs, parse_ulimit, parse_volume
from tinycontainer.cli._units import parse_duration, parse_since, parse_size

# ----------------------------------------------------------------------------- seed flags


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("-name", ["--name"]),
        ("-name=t1", ["--name=t1"]),
        ("-fs", ["--rootfs"]),
        ("-memlimit", ["--memory"]),
        ("-cpuset", ["--cpuset-cpus"]),
        ("-cpushare", ["--cpu-shares"]),
        ("-net", ["--network=host"]),
        ("-net=true", ["--network=host"]),
        ("-net=false", ["--network=none"]),
        ("-tty", ["--tty", "--interactive"]),
        ("-tty=false", []),
        ("--name", None),
        ("-n", None),
        ("-it", None),
    ],
)
def test_seed_flag_normalisation(token: str, expected: list[str] | None) -> None:
    assert normalize_seed_flag(token) == expected


def test_seed_bool_with_garbage_value_is_an_error() -> None:
    with pytest.raises(SpecError, match="-net=maybe"):
        normalize_seed_flag("-net=maybe")


def _run_args(argv: list[str]) -> tuple[object, list[str], bool]:
    parser = run_parser()
    split = split_options(parser, argv, "run")
    return parser.parse_args(split.options), split.positionals, split.dashdash


def test_seed_command_line_means_what_it_meant() -> None:
    args, positionals, dashdash = _run_args(
        ["-name", "t1", "-fs", "/srv/r", "-memlimit", "64m", "-cpuset", "0", "-cpushare", "512", "-net", "-tty",
         "--", "/bin/sh", "-c", "echo hi"]
    )
    assert (args.name, args.rootfs, args.memory, args.cpuset_cpus, args.cpu_shares) == (  # type: ignore[attr-defined]
        "t1", "/srv/r", "64m", "0", 512)
    assert args.network == "host" and args.tty and args.interactive  # type: ignore[attr-defined]
    assert positionals == ["/bin/sh", "-c", "echo hi"] and dashdash


def test_options_stop_at_the_image_like_docker() -> None:
    args, positionals, dashdash = _run_args(["-it", "--rm", "-e", "A=1", "-eB=2", "-m64m", "busybox", "ls", "-l", "-e"])
    assert args.tty and args.interactive and args.rm  # type: ignore[attr-defined]
    assert args.env == ["A=1", "B=2"] and args.memory == "64m"  # type: ignore[attr-defined]
    assert positionals == ["busybox", "ls", "-l", "-e"] and not dashdash


def test_values_that_look_like_options_are_kept() -> None:
    args, _, _ = _run_args(["--name", "x", "-e", "--weird=1", "-w", "-dir", "busybox"])
    assert args.env == ["--weird=1"] and args.workdir == "-dir"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus", "img"], "unknown option --bogus"),
        (["-Z", "img"], "unknown option -Z"),
        (["--name"], "--name needs a value"),
        (["-name"], "-name needs a value"),
    ],
)
def test_scanner_errors_name_the_option(argv: list[str], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        _run_args(argv)


def test_host_dash_h_is_hostname_in_run() -> None:
    args, _, _ = _run_args(["-h", "box", "img"])
    assert args.hostname == "box"  # type: ignore[attr-defined]


def test_globals_before_the_command() -> None:
    g, rest = split_globals(["--root", "/x", "--debug", "ps", "-a"])
    assert (g.root, g.debug, rest) == ("/x", True, ["ps", "-a"])


# ----------------------------------------------------------------------------- run plan


def test_run_plan_rootfs_image_and_host(tmp_path: object) -> None:
    d = str(tmp_path)
    args, pos, dd = _run_args(["--rootfs", d, "echo", "a b"])
    plan = build_run_plan(args, pos, dd)  # type: ignore[arg-type]
    assert plan.spec.rootfs == d and plan.command == ["echo", "a b"] and plan.image is None
    args, pos, dd = _run_args(["busybox", "--", "echo"])
    plan = build_run_plan(args, pos, dd)  # type: ignore[arg-type]
    assert plan.image == "busybox" and plan.command == ["echo"]
    args, pos, dd = _run_args(["--", "/usr/bin/id"])
    plan = build_run_plan(args, pos, dd)  # type: ignore[arg-type]
    assert plan.spec.host_root and plan.command == ["/usr/bin/id"]
    args, pos, dd = _run_args(["-fs", "/", "--", "/usr/bin/id"])  # the seed's default fs
    assert build_run_plan(args, pos, dd).spec.host_root  # type: ignore[arg-type]


def test_run_plan_limits_and_unsupported(tmp_path: object) -> None:
    args, pos, dd = _run_args(["-m", "64m", "--cpus", "0.5", "--pids-limit", "10", "--rootfs", str(tmp_path), "true"])
    spec = build_run_plan(args, pos, dd).spec  # type: ignore[arg-type]
    assert spec.memory == 64 << 20 and spec.memory_swap_bytes == 64 << 20 and spec.cpus == 0.5 and spec.pids == 10
    for extra in (["-p", "80:80"], ["--network", "bridge"], ["--security-opt", "apparmor=x"]):
        args, pos, dd = _run_args([*extra, "--rootfs", str(tmp_path), "true"])
        with pytest.raises(Exception, match=r"not supported|supported are|only 'none'"):
            build_run_plan(args, pos, dd)  # type: ignore[arg-type]
    args, pos, dd = _run_args([])
    with pytest.raises(SpecError, match="needs an IMAGE"):
        build_run_plan(args, pos, dd)  # type: ignore[arg-type]


def test_volume_tmpfs_ulimit_parsing() -> None:
    m = parse_volume("/host:/data:ro")
    assert (m.type, m.source, m.target, m.read_only) == ("bind", "/host", "/data", True)
    assert parse_volume("cache:/c").type == "volume"
    with pytest.raises(SpecError):
        parse_volume("/only-target")
    t = parse_tmpfs("/scratch:size=1m,mode=700,noexec")
    assert (t.type, t.size, t.mode, t.options) == ("tmpfs", 1 << 20, 0o700, ("noexec",))
    assert parse_ulimit("nofile=1024:2048") == ("nofile", (1024, 2048))
    assert parse_ulimit("nproc=10") == ("nproc", 10)
    with pytest.raises(SpecError):
        parse_ulimit("nofile")


def test_detach_keys() -> None:
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-@,a") == b"\x00a"
    with pytest.raises(SpecError):
        parse_detach_keys("ctrl-pp")


# ----------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("text", "value"),
    [("64m", 64 << 20), ("64M", 64 << 20), ("64MiB", 64 << 20), ("64mb", 64 << 20), ("1g", 1 << 30),
     ("512k", 512 << 10), ("100", 100), ("100b", 100), ("1.5k", 1536)],
)
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "m", "64x", "-1m", "64 m b", "1e3"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(SpecError, match=r"e\.g\. 64m"):
        parse_size(text)


def test_durations_and_since() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("500ms") == 0.5 and parse_duration("2") == 2
    with pytest.raises(SpecError):
        parse_duration("soon")
    now = datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.UTC)
    assert parse_since("10m", now) == now - datetime.timedelta(minutes=10)
    assert parse_since("2026-01-01T11:00:00Z", now).hour == 11
    with pytest.raises(SpecError, match="--since"):
        parse_since("yesterday", now)


# ----------------------------------------------------------------------------- names and ids


@pytest.fixture
def store(tmp_path: object) -> RecordStore:
    return RecordStore(StateDirs(lib=os.path.join(str(tmp_path), "lib"), run=os.path.join(str(tmp_path), "run")))


def test_ids_are_64_hex_and_names_generated_unique(store: RecordStore) -> None:
    records = [store.create(None) for _ in range(30)]
    assert all(len(r.id) == 64 and int(r.id, 16) >= 0 for r in records)
    assert len({r.name for r in records}) == 30


def test_resolution_by_name_id_and_unique_prefix(store: RecordStore) -> None:
    a = store.create("alpha")
    b = store.create("beta")
    assert store.resolve("alpha").id == a.id
    assert store.resolve(b.id).name == "beta"
    prefix = next(n for n in range(1, 64) if a.id[:n] != b.id[:n])
    assert store.resolve(a.id[:prefix]).id == a.id
    common = a.id[: prefix - 1]
    if common:
        with pytest.raises(StateError, match="ambiguous"):
            store.resolve(common)
    with pytest.raises(StateError, match=r"no such container: gamma"):
        store.resolve("gamma")


def test_duplicate_names_and_rename(store: RecordStore) -> None:
    a = store.create("web")
    with pytest.raises(StateError, match="already used"):
        store.create("web")
    with pytest.raises(SpecError, match="invalid container name"):
        store.create("../evil")
    store.rename(a, "web2")
    assert store.resolve("web2").id == a.id
    with pytest.raises(StateError):
        store.resolve("web")
    store.create("web")  # the old name is free again
    store.remove(store.resolve("web2"))
    with pytest.raises(StateError):
        store.resolve("web2")


def test_stale_name_link_is_reclaimed(store: RecordStore) -> None:
    a = store.create("stale")
    import shutil

    shutil.rmtree(store.dir(a.id))  # a CLI killed between removing the dir and the name
    assert store.create("stale").name == "stale"
