"""``tcontainer run`` options -> a :class:`~tinycontainer._spec.Spec` (docker's meanings)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from .._errors import SpecError, UnsupportedError
from .._spec import Mount, Spec
from ._units import parse_size

# runtime/_reaper.py: the engine keeps a reaper as PID 1 when the config carries this annotation.
INIT_ANNOTATION = "org.tinycontainer.init"


@dataclass
class RunPlan:
    spec: Spec
    image: str | None
    command: list[str] | None
    labels: dict[str, str] = field(default_factory=dict)
    log_max_size: int = 10 << 20
    log_max_files: int = 3


def parse_env(items: list[str], files: list[str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """``-e KEY=VALUE``, ``-e KEY`` (the caller's value, skipped when unset) and --env-file lines."""
    environ = dict(os.environ) if environ is None else environ
    env: dict[str, str] = {}

    def add(item: str, where: str) -> None:
        key, eq, value = item.partition("=")
        if not key:
            raise SpecError(f"{where} {item!r}: expected KEY=VALUE or KEY")
        if key != key.strip():
            raise SpecError(f"{where} {item!r}: the name has surrounding spaces")
        if eq:
            env[key] = value
        elif key in environ:
            env[key] = environ[key]

    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as exc:
            raise SpecError(f"--env-file {path}: {exc.strerror}") from None
        for line in lines:
            stripped = line.lstrip()
            if stripped and not stripped.startswith("#"):
                add(stripped, f"--env-file {path}:")
    for item in items:
        add(item, "--env")
    return env


def parse_volume(text: str) -> Mount:
    """``SRC:DST[:ro|rw]``; SRC is a host path (absolute) or a volume name."""
    parts = text.split(":")
    if len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1]:
        raise SpecError(f"--volume {text!r}: expected SRC:DST[:ro] (anonymous volumes are not supported)")
    source, target = parts[0], parts[1]
    read_only = False
    if len(parts) == 3:
        for opt in parts[2].split(","):
            if opt == "ro":
                read_only = True
            elif opt in ("rw", "z", "Z", ""):
                continue
            else:
                raise SpecError(f"--volume {text!r}: unknown option {opt!r} (ro or rw)")
    if source.startswith(("/", ".")):
        source = os.path.abspath(source)
        return Mount(target=target, source=source, type="bind", read_only=read_only)
    return Mount(target=target, source=source, type="volume", read_only=read_only)


def parse_tmpfs(text: str) -> Mount:
    """``DST[:size=64m,mode=1777,ro,...]``."""
    target, _, opts = text.partition(":")
    size: str | None = None
    mode: int | None = None
    read_only = False
    rest: list[str] = []
    for opt in filter(None, opts.split(",")):
        if opt.startswith("size="):
            size = opt[5:]
        elif opt.startswith("mode="):
            try:
                mode = int(opt[5:], 8)
            except ValueError:
                raise SpecError(f"--tmpfs {text!r}: mode must be octal, e.g. mode=1777") from None
        elif opt == "ro":
            read_only = True
        elif opt == "rw":
            continue
        else:
            rest.append(opt)
    return Mount(target=target, type="tmpfs", size=size, mode=mode, read_only=read_only, options=tuple(rest))


def parse_ulimit(text: str) -> tuple[str, int | tuple[int, int]]:
    name, eq, value = text.partition("=")
    if not eq or not name:
        raise SpecError(f"--ulimit {text!r}: expected NAME=SOFT[:HARD], e.g. nofile=1024:2048")
    soft, colon, hard = value.partition(":")
    try:
        soft_n = -1 if soft == "unlimited" else int(soft)
        hard_n = soft_n if not colon else (-1 if hard == "unlimited" else int(hard))
    except ValueError:
        raise SpecError(f"--ulimit {text!r}: limits are numbers") from None
    unlimited = (1 << 64) - 1
    soft_n = unlimited if soft_n == -1 else soft_n
    hard_n = unlimited if hard_n == -1 else hard_n
    return name, soft_n if soft_n == hard_n else (soft_n, hard_n)


def parse_labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise SpecError(f"--label {item!r}: expected KEY=VALUE")
        labels[key] = value
    return labels


def parse_log_opts(items: list[str]) -> tuple[int, int]:
    size, files = 10 << 20, 3
    for item in items:
        key, _, value = item.partition("=")
        if key == "max-size":
            size = parse_size(value, "--log-opt max-size")
        elif key == "max-file":
            if not value.isdigit() or int(value) < 1:
                raise SpecError(f"--log-opt {item!r}: max-file is a number >= 1")
            files = int(value)
        else:
            raise SpecError(f"--log-opt {item!r}: supported are max-size=SIZE and max-file=N")
    return size, files


def build_run_plan(args: argparse.Namespace, positionals: list[str], dashdash: bool) -> RunPlan:
    if args.publish:
        raise UnsupportedError(
            "-p/--publish is not supported yet: it needs bridge networking; "
            "use --network host to share the host's ports"
        )
    rootfs = args.rootfs
    if rootfs is not None:
        rootfs = os.path.abspath(rootfs)
        if os.path.realpath(rootfs) == "/":
            rootfs = None  # the seed's default `fs /`: the host's root (read-only here)
        elif not os.path.isdir(rootfs):
            raise SpecError(f"--rootfs {args.rootfs}: no such directory")
    image: str | None = None
    command: list[str] | None
    if args.rootfs is not None or dashdash:
        command = list(positionals)
    else:
        if not positionals:
            raise SpecError(
                "tcontainer run needs an IMAGE, --rootfs DIR, or '-- COMMAND' (the host's /): see tcontainer run --help"
            )
        image = positionals[0]
        command = list(positionals[1:])
        if command[:1] == ["--"]:
            command = command[1:]
    if image is None and not command:
        raise SpecError("no command given: write it after '--', e.g. tcontainer run --rootfs DIR -- /bin/sh")
    if image is not None and not command:
        command = None
    security = {"seccomp": "default", "no_new_privileges": True}
    for opt in args.security_opt:
        key, _, value = opt.partition("=" if "=" in opt else ":")
        if key == "seccomp" and value:
            security["seccomp"] = value if value == "unconfined" else os.path.abspath(value)
        elif key == "no-new-privileges":
            security["no_new_privileges"] = (value or "true").lower() in ("true", "1", "yes")
        else:
            raise UnsupportedError(
                f"--security-opt {opt!r}: supported are seccomp=unconfined|PATH and no-new-privileges[=true|false]"
            )
    ulimits = dict(parse_ulimit(u) for u in args.ulimit)
    mounts = [parse_volume(v) for v in args.volume] + [parse_tmpfs(t) for t in args.tmpfs]
    network = args.network or "none"
    if network not in ("none", "host"):
        raise UnsupportedError(f"--network {network}: only 'none' and 'host' are supported (bridge networks: later)")
    memory = parse_size(args.memory, "--memory") if args.memory is not None else None
    swap = parse_size(args.memory_swap, "--memory-swap") if args.memory_swap is not None else None
    labels = parse_labels(args.label)
    spec = Spec(
        image=image,
        rootfs=rootfs,
        command=tuple(command) if command is not None else None,
        entrypoint=(args.entrypoint,) if args.entrypoint else None,
        env=parse_env(args.env, args.env_file),
        workdir=args.workdir,
        user=args.user,
        hostname=args.hostname,
        mounts=tuple(mounts),
        memory=memory,
        memory_swap=swap,
        cpus=args.cpus,
        cpuset=args.cpuset_cpus,
        cpu_shares=args.cpu_shares,
        pids=args.pids_limit,
        network=network,
        read_only=args.read_only,
        cap_add=tuple(args.cap_add),
        cap_drop=tuple(args.cap_drop),
        privileged=args.privileged,
        seccomp=security["seccomp"],  # type: ignore[arg-type]
        no_new_privileges=bool(security["no_new_privileges"]),
        ulimits=ulimits,
        tty=args.tty,
        stop_signal=args.stop_signal,
        stop_timeout=args.stop_timeout if args.stop_timeout is not None else 10.0,
        labels=labels,
        annotations={INIT_ANNOTATION: "true"} if args.init else {},
    )
    size, files = parse_log_opts(args.log_opt)
    return RunPlan(spec=spec, image=image, command=command, labels=labels, log_max_size=size, log_max_files=files)
