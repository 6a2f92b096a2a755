"""One function per ``tcontainer-oci`` command: arguments -> engine call -> output."""

from __future__ import annotations

import os
import sys

from ... import oci
from ..._errors import SpecError, UnsupportedError
from ...oci import _json
from ...runtime import DEFAULT_ROOT, Runtime
from .._exit import LogTarget

TYPE_CHECKING = False

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable


def _runtime(args: argparse.Namespace) -> Runtime:
    if args.systemd_cgroup:
        raise UnsupportedError("--systemd-cgroup is not supported: tinycontainer manages cgroupfs directly")
    return Runtime(args.root or _default_root())


def _default_root() -> str:
    if os.geteuid() == 0:
        return DEFAULT_ROOT
    # An ordinary user cannot write /run: $XDG_RUNTIME_DIR/tcontainer-oci, like runc.
    from ...runtime._rootless import default_root

    return default_root()


def _warn(log: LogTarget, message: str) -> None:
    log.write("warning", message)
    print(f"{log.prog}: warning: {message}", file=sys.stderr)


def _warn_rootless(container: object, log: LogTarget) -> None:
    """Say when a rootless container got no cgroups (v1 is never delegated to users)."""
    if os.geteuid() == 0:
        return
    from ...runtime._rootless import cgroup_problem

    manager = container._manager()  # type: ignore[attr-defined]
    problem = cgroup_problem(manager.paths()) if manager is not None else None
    if problem:
        _warn(log, problem)


def cmd_create(args: argparse.Namespace, log: LogTarget) -> int:
    from ._run import create_from_args

    _warn_rootless(create_from_args(_runtime(args), args), log)
    return 0


def cmd_run(args: argparse.Namespace, log: LogTarget) -> int:
    from ._run import run

    return run(_runtime(args), args, lambda container: _warn_rootless(container, log))


def cmd_start(args: argparse.Namespace, log: LogTarget) -> int:
    _runtime(args).load(args.id).start()
    return 0


def cmd_state(args: argparse.Namespace, log: LogTarget) -> int:
    state = _runtime(args).load(args.id).state()
    print(_json.dumps(state.to_dict(), indent=2))
    return 0


def cmd_kill(args: argparse.Namespace, log: LogTarget) -> int:
    _runtime(args).load(args.id).kill(args.signal, all_processes=args.all)
    return 0


def cmd_delete(args: argparse.Namespace, log: LogTarget) -> int:
    from ..._errors import ContainerNotFound

    try:
        container = _runtime(args).load(args.id)
    except ContainerNotFound:
        if args.force:
            return 0  # runc: delete --force of a missing container succeeds
        raise
    container.delete(force=args.force)
    return 0


def cmd_pause(args: argparse.Namespace, log: LogTarget) -> int:
    _runtime(args).load(args.id).pause()
    return 0


def cmd_resume(args: argparse.Namespace, log: LogTarget) -> int:
    _runtime(args).load(args.id).resume()
    return 0


def cmd_ps(args: argparse.Namespace, log: LogTarget) -> int:
    pids = _runtime(args).load(args.id).processes()
    if args.format == "json":
        print(_json.dumps(pids))
        return 0
    import subprocess

    ps_args = args.ps_args or ["-ef"]
    out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=False).stdout.splitlines()
    if not out:
        return 0
    header = out[0]
    print(header)
    try:
        pid_col = header.split().index("PID")
    except ValueError:
        raise SpecError("ps output has no PID column") from None
    wanted = set(pids)
    for line in out[1:]:
        fields = line.split()
        if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in wanted:
            print(line)
    return 0


def cmd_list(args: argparse.Namespace, log: LogTarget) -> int:
    rows = []
    for c in _runtime(args).list():
        st = c.state()
        rows.append(
            {
                "ociVersion": st.oci_version,
                "id": c.id,
                "pid": st.pid,
                "status": st.status,
                "bundle": c.bundle,
                "rootfs": str(c._state.get("rootfs", "")),
                "created": c.created,
                "owner": _owner(str(c._state.get("owner", ""))),
            }
        )
    if args.quiet:
        for row in rows:
            print(row["id"])
    elif args.format == "json":
        print(_json.dumps(rows))
    else:
        fmt = "{:<20} {:<10} {:<10} {:<40} {:<31} {}"
        print(fmt.format("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"))
        for row in rows:
            print(fmt.format(row["id"], row["pid"], row["status"], row["bundle"], row["created"], row["owner"]))
    return 0


def _owner(uid: str) -> str:
    import pwd

    try:
        return pwd.getpwuid(int(uid)).pw_name
    except (KeyError, ValueError):
        return f"#{uid}"


def cmd_spec(args: argparse.Namespace, log: LogTarget) -> int:
    from ...oci._defaults import default_config

    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise SpecError(f"{path} already exists: remove it first")
    config = default_config(rootless=args.rootless)
    if args.rootless:
        _add_subid_mappings(config, log)
    with open(path, "w") as f:
        f.write(config.to_json(indent=2) + "\n")
    return 0


def _add_subid_mappings(config: oci.Config, log: LogTarget) -> None:
    """Map the caller's /etc/subuid and /etc/subgid range after root (runc spec --rootless maps
    only the caller; with a range, images that chown to other ids work). newuidmap(1) enforces
    the range at create time."""
    from ...runtime._rootless import extra_mappings, tun_problem, user_name

    linux = config.linux
    assert linux is not None
    name = user_name(os.geteuid())
    uid = os.geteuid()
    # Both files are keyed by user name or uid (subuid(5), subgid(5)), never by gid.
    for kind, maps in (("uid", linux.uid_mappings), ("gid", linux.gid_mappings)):
        extra = extra_mappings(kind, uid, name)
        if maps is not None:
            maps.extend(oci.IDMapping(container_id=c, host_id=h, size=n) for c, h, n in extra)
        if not extra and uid != 0:
            _warn(log, f"no /etc/sub{kind} range for {name or uid}: only id 0 exists in the container")
    problem = tun_problem()
    if problem:
        _warn(log, problem)


def _parse_bytes(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().rstrip("b")
    if t in ("-1", "max"):
        return -1
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def cmd_update(args: argparse.Namespace, log: LogTarget) -> int:
    if args.resources:
        if args.resources == "-":
            raw = sys.stdin.read()
        else:
            with open(args.resources) as f:
                raw = f.read()
        try:
            data = _json.loads(raw)
        except ValueError as exc:
            raise SpecError(f"resources file is not valid JSON: {exc}") from None
        resources = oci.resources_from_dict(data)
    else:
        resources = oci.Resources()
    if args.memory is not None or args.memory_swap is not None:
        resources.memory = resources.memory or oci.Memory()
        if args.memory is not None:
            resources.memory.limit = _parse_bytes(args.memory)
        if args.memory_swap is not None:
            resources.memory.swap = _parse_bytes(args.memory_swap)
    if any(
        v is not None for v in (args.cpu_shares, args.cpu_quota, args.cpu_period, args.cpuset_cpus, args.cpuset_mems)
    ):
        resources.cpu = resources.cpu or oci.CPU()
        for name in ("cpu_shares", "cpu_quota", "cpu_period"):
            value = getattr(args, name)
            if value is not None:
                setattr(resources.cpu, name[4:], value)
        if args.cpuset_cpus is not None:
            resources.cpu.cpus = args.cpuset_cpus
        if args.cpuset_mems is not None:
            resources.cpu.mems = args.cpuset_mems
    if args.pids_limit is not None:
        resources.pids = oci.Pids(limit=args.pids_limit)
    _runtime(args).load(args.id).update(resources)
    return 0


def cmd_features(args: argparse.Namespace, log: LogTarget) -> int:
    from ._features import features

    print(_json.dumps(features(), indent=2))
    return 0


def cmd_exec(args: argparse.Namespace, log: LogTarget) -> int:
    from ._exec import exec_command

    return exec_command(_runtime(args), args)


COMMANDS: dict[str, Callable[[argparse.Namespace, LogTarget], int]] = {
    "create": cmd_create,
    "run": cmd_run,
    "start": cmd_start,
    "state": cmd_state,
    "kill": cmd_kill,
    "delete": cmd_delete,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "ps": cmd_ps,
    "list": cmd_list,
    "ls": cmd_list,
    "spec": cmd_spec,
    "update": cmd_update,
    "features": cmd_features,
    "exec": cmd_exec,
}


def dispatch(args: argparse.Namespace, log: LogTarget) -> int:
    return COMMANDS[args.subcommand](args, log)
