"""One function per ``tcontainer`` command: arguments -> library call -> output."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import _containers as ops
from .._containers import Home
from .._errors import SpecError, StateError, TinyContainerError
from .._records import Record
from . import _output as out
from . import _parsers
from ._argv import split_options
from ._main import VERSION, Globals

if TYPE_CHECKING:
    from .._spec import Spec

# ------------------------------------------------------------------------------- helpers


def _parse(build: Callable[[], argparse.ArgumentParser], argv: list[str]) -> argparse.Namespace:
    return build().parse_args(argv)


def _each(home: Home, refs: list[str], action: Callable[[Record], str | None]) -> int:
    """Apply ``action`` to every named container; report failures one line each (docker's way)."""
    status = 0
    for ref in refs:
        try:
            record = home.records.resolve(ref)
            printed = action(record)
            if printed is not None:
                print(printed)
        except (TinyContainerError, OSError) as exc:
            print(f"tcontainer: {ref}: {exc}", file=sys.stderr)
            status = 1
    return status


def parse_detach_keys(text: str) -> bytes:
    """docker's ``ctrl-p,ctrl-q`` notation -> the bytes a terminal sends."""
    out_bytes = bytearray()
    for key in text.split(","):
        key = key.strip().lower()
        if key.startswith("ctrl-") and len(key) == 6:
            ch = key[5]
            if "a" <= ch <= "z":
                out_bytes.append(ord(ch) - ord("a") + 1)
                continue
            specials = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if ch in specials:
                out_bytes.append(specials[ch])
                continue
        elif len(key) == 1:
            out_bytes.append(ord(key))
            continue
        raise SpecError(f"--detach-keys {text!r}: use keys like ctrl-p,ctrl-q or single characters")
    return bytes(out_bytes)


# ------------------------------------------------------------------------------- run / exec


def cmd_run(g: Globals, argv: list[str]) -> int:
    from .._spec_json import spec_to_dict
    from ..runtime._console import raw_terminal
    from ._run import ensure_image
    from ._runspec import build_run_plan

    parser = _parsers.run_parser()
    split = split_options(parser, argv, "run")
    args = parser.parse_args(split.options)
    plan = build_run_plan(args, split.positionals, split.dashdash)
    detach_keys = parse_detach_keys(args.detach_keys)
    if os.geteuid() != 0:
        _rootless_run_setup(plan.spec)
    home = Home(g.root)
    image_id = ""
    if plan.image is not None:
        image_id = ensure_image(home, plan.image)
    spec = plan.spec

    def fill(r: Record) -> None:
        r.command = list(plan.command or [])
        r.image = plan.image or ""
        r.image_id = image_id
        r.rootfs = spec.rootfs or ""
        r.spec = spec_to_dict(spec)
        r.labels = plan.labels
        r.auto_remove = args.rm
        r.tty = args.tty
        r.interactive = args.interactive
        r.stop_signal = str(spec.stop_signal or "SIGTERM")
        r.stop_timeout = spec.stop_timeout
        r.log_max_size = plan.log_max_size
        r.log_max_files = plan.log_max_files
        r.init = args.init

    record = home.records.create(args.name, fill)
    # -it: raw mode before the monitor starts reading our terminal; restored on every exit.
    raw = raw_terminal(0) if args.tty and args.interactive and not args.detach else contextlib.nullcontext(False)
    with raw:
        return _launch_run(home, record, args, detach_keys)


def _rootless_run_setup(spec: Spec) -> None:
    """As an ordinary user: refuse unenforceable limits before a record exists or
    anything is pulled (exit 125), and let the engine's warnings (no cgroup limits) reach
    stderr; the monitor is our fork and inherits the sink."""
    from .._unprivileged import check_spec

    check_spec(spec)
    _engine_warnings_to_stderr()


def _engine_warnings_to_stderr() -> None:
    from ..runtime._log import set_sink

    set_sink(lambda message: print(f"tcontainer: warning: {message}", file=sys.stderr, flush=True))


def _launch_run(home: Home, record: Record, args: argparse.Namespace, detach_keys: bytes) -> int:
    from .._monitor import STATUS_FAILED, LaunchError, launch
    from ._run import attach_and_wait

    try:
        channel = launch(home.dirs, record.id, attached=not args.detach, detach_keys=detach_keys)
    except BaseException:
        home.records.remove(record)
        raise
    try:
        try:
            started = channel.wait_started()
        except LaunchError as exc:
            # A container that never ran is not kept (its name is free again).
            ops.wait_exit(home, record, ops.EXIT_WAIT)
            home.records.remove(record)
            if exc.status == STATUS_FAILED:
                raise
            print(f"tcontainer: {exc}", file=sys.stderr)
            return exc.status
        if args.detach:
            print(record.id)
            return 0
        return attach_and_wait(home, record, channel, started)
    finally:
        channel.close()


def cmd_exec(g: Globals, argv: list[str]) -> int:
    from ..runtime._console import proxy

    parser = _parsers.exec_parser()
    split = split_options(parser, argv, "exec")
    args = parser.parse_args(split.options)
    if not split.positionals:
        raise SpecError("exec needs a container and a command: tcontainer exec NAME COMMAND [ARG...]")
    ref, command = split.positionals[0], split.positionals[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    home = Home(g.root)
    record = home.records.resolve(ref)
    keys = parse_detach_keys(args.detach_keys)
    request = ops.ExecRequest(
        argv=command,
        tty=args.tty,
        interactive=args.interactive,
        detach=args.detach,
        env=args.env,
        workdir=args.workdir,
        user=args.user,
    )

    def attach(master: int) -> None:
        if args.interactive:
            proxy(master, detach_keys=keys)
        else:
            r, w = os.pipe()  # -t without -i: output only; a never-readable stdin
            try:
                proxy(master, stdin_fd=r)
            finally:
                os.close(r)
                os.close(w)

    try:
        return ops.run_exec(home, record, request, attach=attach)
    except TinyContainerError as exc:
        from .._monitor import status_of_failure

        status = status_of_failure(exc)
        if status == 125:
            raise
        print(f"tcontainer: {exc}", file=sys.stderr)
        return status


def cmd_attach(g: Globals, argv: list[str]) -> int:
    from .._attach import attach
    from .._bundle import LibPaths

    args = _parse(_parsers.attach_parser, argv)
    keys = parse_detach_keys(args.detach_keys)
    home = Home(g.root)
    record = home.records.resolve(args.container)
    if record.live_state != "running":
        raise StateError(f"container {record.name} is not running (tcontainer start {record.name})")
    try:
        outcome = attach(LibPaths(home.dirs.run).bundle(record.id), stdin=record.interactive and not args.no_stdin,
                         detach_keys=keys, tty_hint=record.tty)
    except KeyboardInterrupt:
        # Our control socket closes with us: the monitor lets go of our stdio at once.
        print(f"\ndetached from {record.name}", file=sys.stderr)
        return 0
    if outcome.detached:
        sys.stderr.write(f"\r\ndetached from {record.name}\r\n")
        return 0
    return outcome.code


def split_cp_arg(arg: str) -> tuple[str | None, str]:
    """docker cp's rule: ``NAME:PATH`` names a container unless the text before ':' holds a
    '/' (or the whole starts with '/' or '.'), so ``./a:b`` is a host path."""
    if arg.startswith(("/", ".")):
        return None, arg
    name, sep, path = arg.partition(":")
    if sep and name and "/" not in name:
        return name, path or "/"
    return None, arg


def cmd_cp(g: Globals, argv: list[str]) -> int:
    from .._copy import container_root, copy_in, copy_out

    args = _parse(_parsers.cp_parser, argv)
    src_ref, src = split_cp_arg(args.src)
    dst_ref, dst = split_cp_arg(args.dst)
    if (src_ref is None) == (dst_ref is None):
        raise SpecError("exactly one of SRC and DST must be CONTAINER:PATH (see tcontainer cp --help)")
    if "-" in (args.src, args.dst):
        raise SpecError("'-' (a tar stream on stdin/stdout) is not supported: give a host path")
    home = Home(g.root)
    record = home.records.resolve(src_ref or dst_ref or "")
    root = container_root(home, record)
    try:
        if src_ref is not None:
            copy_out(root, src, dst, follow=args.follow_link, archive=args.archive)
        else:
            copy_in(root, src, dst, follow=args.follow_link, archive=args.archive)
    finally:
        os.close(root)
    return 0


# ------------------------------------------------------------------------------- listing


def _record_json(home: Home, record: Record) -> dict[str, Any]:
    st = ops.status_of(home, record)
    data = record.to_dict()
    data["status"] = st.state
    data["running"] = st.running
    data["paused"] = st.paused
    data["log_path"] = home.log_path(record)
    return data


def cmd_ps(g: Globals, argv: list[str]) -> int:
    args = _parse(_parsers.ps_parser, argv)
    home = Home(g.root)
    rows = []
    items = []
    now = datetime.datetime.now(datetime.UTC)
    for record in home.records.list():
        st = ops.status_of(home, record)
        if not args.all and not st.running:
            continue
        items.append(_record_json(home, record) if args.format == "json" else None)
        if args.quiet:
            rows.append([record.id if args.no_trunc else record.short_id])
            continue
        rows.append([
            record.id if args.no_trunc else record.short_id,
            out.source_text(record),
            out.command_text(record.command, None if args.no_trunc else 20),
            out.created_text(record, now),
            out.status_text(record, st.state, now),
            record.name,
        ])
    if args.format == "json":
        out.print_json([i for i in items if i is not None])
    elif args.quiet:
        for row in rows:
            print(row[0])
    else:
        out.print_table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"], rows)
    return 0


def cmd_inspect(g: Globals, argv: list[str]) -> int:
    args = _parse(_parsers.inspect_parser, argv)
    home = Home(g.root)
    found: list[dict[str, Any]] = []
    def collect(record: Record) -> None:
        found.append(_record_json(home, record))

    status = _each(home, args.containers, collect)
    out.print_json(found)
    return status


def cmd_logs(g: Globals, argv: list[str]) -> int:
    from .._logs import follow_logs, read_logs
    from ._units import parse_since

    args = _parse(_parsers.logs_parser, argv)
    home = Home(g.root)
    record = home.records.resolve(args.container)
    path = home.log_path(record)
    since = parse_since(args.since) if args.since else None
    until = parse_since(args.until) if args.until else None
    tail: int | None = None
    if args.tail != "all":
        if not str(args.tail).isdigit():
            raise SpecError(f"--tail {args.tail!r}: a number of lines or 'all'")
        tail = int(args.tail)
    stdout = sys.stdout.buffer
    stderr = sys.stderr.buffer

    def emit(entry: Any) -> None:
        stream = stderr if entry.stream == "stderr" else stdout
        text = entry.log
        if args.timestamps:
            text = f"{entry.time} {text}"
        stream.write(text.encode("utf-8", "surrogateescape"))
        stream.flush()

    for entry in read_logs(path, tail=tail, since=since, until=until):
        emit(entry)
    if args.follow:

        def running() -> bool:
            try:
                current = home.records.load(record.id)
            except TinyContainerError:
                return False
            return current.live_state in ("running", "created")

        for entry in follow_logs(path, running, since=since):
            emit(entry)
    return 0


def cmd_top(g: Globals, argv: list[str]) -> int:
    from ..linux import proc

    args = _parse(_parsers.top_parser, argv)
    home = Home(g.root)
    record = home.records.resolve(args.container)
    container = ops._running_engine(home, record)
    rows = []
    clock = os.sysconf("SC_CLK_TCK")
    for pid in container.processes():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(f"/proc/{pid}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw[raw.rindex(b")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / clock
        uid = (proc.status_field(pid, "Uid") or "0").split()[0]
        st = proc.read_stat(pid)
        rows.append([uid, str(pid), str(st.ppid if st else 0), f"{int(cpu // 60):02d}:{cpu % 60:05.2f}", cmdline])
    if args.format == "json":
        out.print_json([dict(zip(["uid", "pid", "ppid", "time", "cmd"], r, strict=True)) for r in rows])
    else:
        out.print_table(["UID", "PID", "PPID", "TIME", "CMD"], rows)
    return 0


def cmd_stats(g: Globals, argv: list[str]) -> int:
    from ._units import format_size

    args = _parse(_parsers.stats_parser, argv)
    home = Home(g.root)
    if args.containers:
        records = [home.records.resolve(r) for r in args.containers]
    else:
        records = [r for r in home.records.list() if ops.status_of(home, r).running]

    def sample() -> dict[str, tuple[float, Any]]:
        result = {}
        for r in records:
            container = home.engine(r)
            if container is None:
                continue
            try:
                result[r.id] = (time.monotonic(), container.stats())
            except (TinyContainerError, OSError):
                continue
        return result

    cpus = os.cpu_count() or 1
    first = sample()
    while True:
        time.sleep(0.5)
        second = sample()
        rows = []
        data = []
        for r in records:
            if r.id not in second:
                continue
            t1, s1 = second[r.id]
            cpu_pct = 0.0
            if r.id in first and s1.cpu_usage_ns is not None and first[r.id][1].cpu_usage_ns is not None:
                t0, s0 = first[r.id]
                elapsed = max(1e-6, t1 - t0)
                cpu_pct = (s1.cpu_usage_ns - s0.cpu_usage_ns) / (elapsed * 1e9) * 100
            mem = s1.memory_current or 0
            limit = s1.memory_limit
            mem_pct = (mem / limit * 100) if limit else 0.0
            rows.append([
                r.short_id, r.name, f"{cpu_pct:.2f}%",
                f"{format_size(mem)} / {format_size(limit) if limit else 'unlimited'}",
                f"{mem_pct:.2f}%", str(s1.pids_current if s1.pids_current is not None else "-"),
            ])
            data.append({"id": r.id, "name": r.name, "cpu_percent": round(cpu_pct, 2), "memory": mem,
                         "memory_limit": limit, "pids": s1.pids_current, "cpus": cpus})
        if args.format == "json":
            out.print_json(data)
        else:
            if not args.no_stream:
                sys.stdout.write("\x1b[2J\x1b[H")
            out.print_table(["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"], rows)
        sys.stdout.flush()
        if args.no_stream or args.format == "json":
            return 0
        first = second


# ------------------------------------------------------------------------------- lifecycle


def cmd_stop(g: Globals, argv: list[str]) -> int:
    args = _parse(_parsers.stop_parser, argv)
    home = Home(g.root)

    def stop(record: Record) -> str:
        ops.stop(home, record, args.time, args.signal)
        return record.name

    return _each(home, args.containers, stop)


def cmd_kill(g: Globals, argv: list[str]) -> int:
    args = _parse(_parsers.kill_parser, argv)
    home = Home(g.root)

    def kill(record: Record) -> str:
        ops.kill(home, record, args.signal)
        return record.name

    return _each(home, args.containers, kill)


def cmd_rm(g: Globals, argv: list[str]) -> int:
    args = _parse(_parsers.rm_parser, argv)
    home = Home(g.root)

    def rm(record: Record) -> str:
        ops.remove(home, record, force=args.force)
        return record.name

    return _each(home, args.containers, rm)


def cmd_wait(g: Globals, argv: list[str]) -> int:
    args = _parse(_parsers.wait_parser, argv)
    home = Home(g.root)

    def wait(record: Record) -> str:
        final = ops.wait_exit(home, record)
        return str(final.exit_code if final.exit_code is not None else 255)

    return _each(home, args.containers, wait)


def cmd_pause(g: Globals, argv: list[str]) -> int:
    args = _parse(_parsers.pause_parser("pause"), argv)
    home = Home(g.root)
    def pause(record: Record) -> str:
        ops.pause(home, record)
        return record.name

    return _each(home, args.containers, pause)


def cmd_unpause(g: Globals, argv: list[str]) -> int:
    args = _parse(_parsers.pause_parser("unpause"), argv)
    home = Home(g.root)
    def unpause(record: Record) -> str:
        ops.resume(home, record)
        return record.name

    return _each(home, args.containers, unpause)


def _start_detached(home: Home, record: Record) -> None:
    from .._monitor import launch

    current = home.records.load(record.id)
    if current.live_state in ("running", "created") and current.monitor_pid:
        return
    if current.live_state == "dead":
        ops.cleanup_dead(home, current)
    if os.geteuid() != 0:
        _engine_warnings_to_stderr()  # rootless: "no cgroup limits", from the monitor (our fork)
    channel = launch(home.dirs, record.id, attached=False)
    try:
        channel.wait_started()
    finally:
        channel.close()

    def count(r: Record) -> None:
        r.restart_count += 1

    home.records.update(record.id, count)


def cmd_start(g: Globals, argv: list[str]) -> int:
    args = _parse(_parsers.start_parser, argv)
    home = Home(g.root)
    def start(record: Record) -> str:
        _start_detached(home, record)
        return record.name

    return _each(home, args.containers, start)


def cmd_restart(g: Globals, argv: list[str]) -> int:
    args = _parse(_parsers.restart_parser, argv)
    home = Home(g.root)

    def restart(record: Record) -> str:
        ops.stop(home, record, args.time)
        _start_detached(home, record)
        return record.name

    return _each(home, args.containers, restart)


def cmd_rename(g: Globals, argv: list[str]) -> int:
    args = _parse(_parsers.rename_parser, argv)
    home = Home(g.root)
    home.records.rename(home.records.resolve(args.container), args.new_name)
    return 0


def cmd_prune(g: Globals, argv: list[str]) -> int:
    _parse(_parsers.simple_parser("prune", "Remove all stopped containers."), argv)
    home = Home(g.root)
    for record in ops.prune(home):
        print(record.id)
    return 0


def cmd_gc(g: Globals, argv: list[str]) -> int:
    _parse(_parsers.simple_parser(
        "gc", "Clean up state, mounts and cgroups of containers whose monitor died (e.g. after kill -9)."), argv)
    home = Home(g.root)
    for line in ops.gc(home):
        print(line)
    return 0


# ------------------------------------------------------------------------------- images


def cmd_pull(g: Globals, argv: list[str]) -> int:
    from ._run import pull_image

    args = _parse(_parsers.pull_parser, argv)
    home = Home(g.root)
    img = pull_image(home, args.image, platform=args.platform, quiet=args.quiet)
    print(img.id)
    return 0


def cmd_images(g: Globals, argv: list[str]) -> int:
    from ._units import format_size

    args = _parse(_parsers.images_parser, argv)
    home = Home(g.root)
    images = home.images.list()
    if args.format == "json":
        out.print_json([
            {"id": i.id, "references": list(i.references), "digest": i.digest, "size": i.size, "created": i.created}
            for i in images
        ])
        return 0
    rows = []
    for img in images:
        short = img.id if args.no_trunc else img.id.removeprefix("sha256:")[:12]
        if args.quiet:
            rows.append([short])
            continue
        for ref in img.references or ("<none>",):
            repo, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "<none>")
            rows.append([repo, tag, short, img.created or "", format_size(img.size)])
    if args.quiet:
        for row in dict.fromkeys(tuple(r) for r in rows):
            print(row[0])
    else:
        out.print_table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows)
    return 0


def cmd_rmi(g: Globals, argv: list[str]) -> int:
    args = _parse(_parsers.rmi_parser, argv)
    home = Home(g.root)
    status = 0
    for ref in args.images:
        try:
            img = home.images.get(ref)
            users = [r.name for r in home.records.list() if r.image_id == img.id]
            if users and not args.force:
                raise StateError(
                    f"image is used by container(s) {', '.join(users)}: remove them first or use rmi -f"
                )
            home.images.remove(ref)
            print(f"Untagged: {ref}")
        except (TinyContainerError, OSError) as exc:
            print(f"tcontainer: {ref}: {exc}", file=sys.stderr)
            status = 1
    if args.prune:
        freed = home.images.prune()
        print(f"Freed {freed} bytes")
    return status


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        if args.password is not None:
            raise SpecError("--password and --password-stdin cannot be used together")
        text = sys.stdin.read()
        # Only the line end a shell pipe adds: a password may legitimately end in spaces.
        return text.removesuffix("\n").removesuffix("\r")
    if args.password is not None:
        print("tcontainer: warning: --password is visible to other users (ps) and kept in shell history; "
              "use --password-stdin", file=sys.stderr)
        return str(args.password)
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("Password: ")
    raise SpecError("no password: pass it on stdin with --password-stdin (or run on a terminal)")


def cmd_login(g: Globals, argv: list[str]) -> int:
    from ..image import Credentials, login_key, save_credentials, verify_login

    args = _parse(_parsers.login_parser, argv)
    registry = login_key(args.registry)
    username = args.username
    if not username:
        if args.password_stdin or not sys.stdin.isatty():
            raise SpecError("no username: give -u USER")
        username = input("Username: ").strip()
    if not username or ":" in username:
        raise SpecError("a username is required and may not contain ':'")
    password = _read_password(args)
    if not password:
        raise SpecError("the password is empty")
    credentials = Credentials(username, password)
    verify_login(registry, credentials, insecure=True if args.insecure else None)
    path = save_credentials(registry, credentials, args.authfile)
    print(f"Login Succeeded (credentials for {registry} stored in {path})")
    return 0


def cmd_logout(g: Globals, argv: list[str]) -> int:
    from ..image import login_key, remove_credentials

    args = _parse(_parsers.logout_parser, argv)
    registry = login_key(args.registry)
    if remove_credentials(registry, args.authfile):
        print(f"Removed login credentials for {registry}")
        return 0
    print(f"tcontainer: not logged in to {registry}", file=sys.stderr)
    return 1


def cmd_save(g: Globals, argv: list[str]) -> int:
    from ..image import save_archive

    args = _parse(_parsers.save_parser, argv)
    home = Home(g.root)
    if args.output:
        save_archive(home.images, args.images, args.output)
        return 0
    if sys.stdout.isatty():
        raise SpecError("refusing to write an archive to a terminal: use -o FILE or redirect stdout")
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(dir=home.images.content.tmp, prefix="save-") as work:
        path = os.path.join(work, "images.tar")
        save_archive(home.images, args.images, path)
        with open(path, "rb") as fh:
            shutil.copyfileobj(fh, sys.stdout.buffer, 1 << 20)
        sys.stdout.flush()
    return 0


def cmd_load(g: Globals, argv: list[str]) -> int:
    from ..image import load_archive
    from ._progress import PullProgress

    args = _parse(_parsers.load_parser, argv)
    home = Home(g.root)
    progress = PullProgress.for_stream(sys.stderr, quiet=args.quiet)

    def load(path: str) -> list[Any]:
        try:
            return load_archive(home.images, path, platform=args.platform, repository=args.repository,
                                progress=progress)
        finally:
            progress.finish()

    if args.input:
        images = load(args.input)
    else:
        if sys.stdin.isatty():
            raise SpecError("no archive: use -i FILE or pipe one to stdin")
        import shutil
        import tempfile

        # tarfile needs to seek to look members up: spool the stream into the store's tmp first.
        with tempfile.TemporaryDirectory(dir=home.images.content.tmp, prefix="load-") as work:
            path = os.path.join(work, "stdin.tar")
            with open(path, "wb") as fh:
                shutil.copyfileobj(sys.stdin.buffer, fh, 1 << 20)
            images = load(path)
    for img in images:
        for ref in img.references:
            print(f"Loaded image: {ref}")
        if not img.references:
            print(f"Loaded image ID: {img.id}")
    return 0


def cmd_image(g: Globals, argv: list[str]) -> int:
    """``tcontainer image SUBCOMMAND``: docker's management command, mostly aliases."""
    aliases = {"ls": cmd_images, "list": cmd_images, "pull": cmd_pull, "rm": cmd_rmi, "remove": cmd_rmi,
               "save": cmd_save, "load": cmd_load, "inspect": _image_inspect, "prune": _image_prune}
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("usage: tcontainer image {" + ",".join(sorted(aliases)) + "} ...\n\n"
              "Manage images; 'tcontainer image SUBCOMMAND --help' for each one's options.")
        return 0 if argv else 2
    sub = aliases.get(argv[0])
    if sub is None:
        raise SpecError(f"unknown image command {argv[0]!r} (see tcontainer image --help)")
    return sub(g, argv[1:])


def _image_inspect(g: Globals, argv: list[str]) -> int:
    from ..image import image_inspect

    args = _parse(_parsers.image_inspect_parser, argv)
    home = Home(g.root)
    found: list[dict[str, Any]] = []
    status = 0
    for ref in args.images:
        try:
            found.append(image_inspect(home.images, ref))
        except TinyContainerError as exc:
            print(f"tcontainer: {ref}: {exc}", file=sys.stderr)
            status = 1
    out.print_json(found)
    return status


def _image_prune(g: Globals, argv: list[str]) -> int:
    from ._progress import human_mb

    args = _parse(_parsers.image_prune_parser, argv)
    home = Home(g.root)
    used = {r.image_id for r in home.records.list() if r.image_id}
    removed = []
    for img in home.images.list():
        if img.id in used or (img.references and not args.all):
            continue
        home.images.remove(img.id)
        removed.append(img.id)
    freed = home.images.prune()
    if removed:
        print("Deleted Images:")
        for image_id in removed:
            print(f"deleted: {image_id}")
    print(f"Total reclaimed space: {human_mb(freed)}")
    return 0


# ------------------------------------------------------------------------------- about


def cmd_completion(g: Globals, argv: list[str]) -> int:
    from ._completion import bash_script, zsh_script

    args = _parse(_parsers.completion_parser, argv)
    if args.names:
        home = Home(g.root)
        for record in home.records.list():
            print(record.name)
        return 0
    if args.shell is None:
        raise SpecError("which shell? tcontainer completion bash|zsh")
    sys.stdout.write(bash_script() if args.shell == "bash" else zsh_script())
    return 0


def cmd_version(g: Globals, argv: list[str]) -> int:
    args = _parse(_parsers.simple_parser("version", "Show the version."), argv)
    import platform

    data = {"version": VERSION, "python": platform.python_version(), "kernel": platform.release(),
            "oci_spec": "1.2.0"}
    if args.format == "json":
        out.print_json(data)
    else:
        print(f"tcontainer version {VERSION}\npython {data['python']}, kernel {data['kernel']}, "
              f"OCI runtime spec {data['oci_spec']}")
    return 0


def cmd_info(g: Globals, argv: list[str]) -> int:
    args = _parse(_parsers.simple_parser("info", "Show where state lives and what the host supports."), argv)
    from ..linux import cgroups

    home = Home(g.root)
    records = home.records.list()
    states = [ops.status_of(home, r).state for r in records]
    cgroup_version: str = "unknown"
    with contextlib.suppress(TinyContainerError, OSError):
        cgroup_version = cgroups.detect().version
    data = {
        "version": VERSION,
        "containers": len(records),
        "running": states.count("running"),
        "paused": states.count("paused"),
        "stopped": len(records) - states.count("running") - states.count("paused"),
        "images": len(home.images.list()) if os.path.isdir(home.dirs.images) else 0,
        "state_dir": home.dirs.lib,
        "run_dir": home.dirs.run,
        "cgroup_version": cgroup_version,
        "rootless": os.geteuid() != 0,
        "cpus": os.cpu_count(),
    }
    if args.format == "json":
        out.print_json(data)
    else:
        for key, value in data.items():
            print(f"{key.replace('_', ' ').capitalize()}: {value}")
    return 0
