"""The full ``tcontainer-oci`` argument parser (argparse): help, errors and the rarer commands.

The hot commands are usually parsed by :mod:`._fastargs` without it (see there why).
"""

from __future__ import annotations

import argparse
import sys

from .._exit import USAGE


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line and runc's usage status, never argparse's multi-line dump.
        print(f"tcontainer-oci: {message}", file=sys.stderr)
        raise SystemExit(USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tcontainer-oci", description="An OCI runtime (runc-compatible command line).")
    p.add_argument("--root", default=None, help="state directory (default /run/tcontainer-oci)")
    p.add_argument("--log", default=None, help="log file for errors and warnings")
    p.add_argument("--log-format", default="text", choices=["text", "json"])
    p.add_argument("--debug", action="store_true")
    p.add_argument("--systemd-cgroup", action="store_true", help="not supported: tinycontainer drives cgroupfs")
    p.add_argument("--rootless", default="auto", help="accepted for runc compatibility")
    p.add_argument("--criu", default=None, help=argparse.SUPPRESS)
    p.add_argument("-v", "--version", action="store_true")
    sub = p.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=_Parser)

    def create_like(name: str, help_text: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_text)
        c.add_argument("-b", "--bundle", default=".")
        c.add_argument("--console-socket")
        c.add_argument("--pid-file")
        c.add_argument("--no-pivot", action="store_true")
        c.add_argument("--no-new-keyring", action="store_true")
        c.add_argument("--preserve-fds", type=int, default=0)
        c.add_argument("id")
        return c

    create_like("create", "create a container (its process waits for start)")
    r = create_like("run", "create and start a container, wait for it, delete it")
    r.add_argument("-d", "--detach", action="store_true")
    r.add_argument("--keep", action="store_true", help="do not delete the container after it exits")

    s = sub.add_parser("start", help="start a created container")
    s.add_argument("id")
    s = sub.add_parser("state", help="print the OCI state of a container")
    s.add_argument("id")
    k = sub.add_parser("kill", help="send a signal to a container's init (or all its processes)")
    k.add_argument("-a", "--all", action="store_true")
    k.add_argument("id")
    k.add_argument("signal", nargs="?", default="SIGTERM")
    d = sub.add_parser("delete", help="delete a container")
    d.add_argument("-f", "--force", action="store_true")
    d.add_argument("id")
    for name in ("pause", "resume"):
        s = sub.add_parser(name, help=f"{name} all processes of a container")
        s.add_argument("id")
    ps = sub.add_parser("ps", help="list the processes of a container")
    ps.add_argument("-f", "--format", default="table", choices=["table", "json"])
    ps.add_argument("id")
    ps.add_argument("ps_args", nargs=argparse.REMAINDER)
    ls = sub.add_parser("list", aliases=["ls"], help="list containers")
    ls.add_argument("-f", "--format", default="table", choices=["table", "json"])
    ls.add_argument("-q", "--quiet", action="store_true")
    sp = sub.add_parser("spec", help="write a default config.json")
    sp.add_argument("-b", "--bundle", default=".")
    sp.add_argument("--rootless", action="store_true")
    u = sub.add_parser("update", help="change a container's resource limits")
    u.add_argument("-r", "--resources", help="JSON file with linux.resources ('-' for stdin)")
    u.add_argument("--memory", help="memory limit in bytes")
    u.add_argument("--memory-swap")
    u.add_argument("--cpu-shares", type=int)
    u.add_argument("--cpu-quota", type=int)
    u.add_argument("--cpu-period", type=int)
    u.add_argument("--cpuset-cpus")
    u.add_argument("--cpuset-mems")
    u.add_argument("--pids-limit", type=int)
    u.add_argument("id")
    sub.add_parser("features", help="print what this runtime supports (JSON)")
    e = sub.add_parser("exec", help="run a process in a running container")
    e.add_argument("-p", "--process", help="process.json")
    e.add_argument("-d", "--detach", action="store_true")
    e.add_argument("-t", "--tty", action="store_true")
    e.add_argument("--console-socket")
    e.add_argument("--pid-file")
    e.add_argument("-w", "--cwd")
    e.add_argument("-e", "--env", action="append", default=[])
    e.add_argument("-u", "--user")
    e.add_argument("-g", "--additional-gids", action="append", default=[])
    e.add_argument("-c", "--cap", action="append", default=[])
    e.add_argument("--no-new-privs", action="store_true")
    e.add_argument("--preserve-fds", type=int, default=0)
    e.add_argument("--process-label")
    e.add_argument("--apparmor")
    e.add_argument("--cgroup")
    e.add_argument("--ignore-paused", action="store_true")
    e.add_argument("id")
    e.add_argument("command", nargs=argparse.REMAINDER)
    # podman probes `RUNTIME checkpoint --help`: exit 0 would claim checkpoint support.
    return p
