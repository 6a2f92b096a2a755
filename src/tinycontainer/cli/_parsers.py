"""Argument definitions of every ``tcontainer`` command (kept apart from what they do)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .._errors import SpecError


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (SpecError) instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SpecError(f"{message} (see {self.prog} --help)")


def _parser(name: str, description: str, examples: str = "", add_help: bool = True) -> Parser:
    epilog = "examples:\n" + examples if examples else None
    p = Parser(
        prog=f"tcontainer {name}",
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        add_help=add_help,
    )
    if not add_help:
        p.add_argument("--help", action="help", help="show this help and exit")
    return p


def _format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["table", "json"], default="table", help="output format (default: table)")


def run_parser() -> Parser:
    # -h is --hostname, as in docker run: help is --help only.
    p = _parser(
        "run",
        "Run a command in a new container.\n\n"
        "The root filesystem is an IMAGE (pulled if missing), a directory (--rootfs DIR), or, with\n"
        "neither, the host's / read-only with private /tmp, /run, /proc and /dev. The command comes\n"
        "after the image, or after '--'; it is passed word for word (no shell).\n\n"
        "The seed's flags work too: -name, -fs, -memlimit, -cpuset, -cpushare, -net (host network),\n"
        "-tty (a terminal, like -it).",
        "  tcontainer run --rm busybox echo hello\n"
        "  tcontainer run -it --rootfs /srv/rootfs -- /bin/sh\n"
        "  tcontainer run -d --name web -m 64m --cpus 0.5 alpine httpd -f\n"
        "  tcontainer run --rm -- /usr/bin/id                      # the host's /, read-only\n"
        "  tcontainer run -name t1 -fs ROOTFS -memlimit 64m -cpuset 0 -cpushare 512 -- /bin/sh -c 'echo hi'\n",
        add_help=False,
    )
    g = p.add_argument_group("container")
    g.add_argument("--name", help="container name (unique; generated when absent)")
    g.add_argument("--rootfs", metavar="DIR", help="use DIR as the root filesystem (no image); seed: -fs")
    g.add_argument("-d", "--detach", action="store_true", help="run in the background, print the id")
    g.add_argument("--rm", action="store_true", help="remove the container when it exits")
    g.add_argument("-t", "--tty", action="store_true", help="allocate a terminal (seed: -tty)")
    g.add_argument("-i", "--interactive", action="store_true", help="keep stdin attached")
    g.add_argument("--detach-keys", default="ctrl-p,ctrl-q", help="keys that detach from a -it container")
    g.add_argument("--init", action="store_true", help="run a reaper as PID 1 that forwards signals")
    g.add_argument("--entrypoint", help="override the image's entrypoint (one program)")
    g.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE")
    g.add_argument("--log-opt", action="append", default=[], metavar="max-size=10m|max-file=3")
    g = p.add_argument_group("process")
    g.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE", help="set (or pass on KEY)")
    g.add_argument("--env-file", action="append", default=[], metavar="FILE", help="KEY=VALUE lines")
    g.add_argument("-w", "--workdir", help="working directory in the container")
    g.add_argument("-u", "--user", help="user[:group] or uid[:gid]")
    g.add_argument("-h", "--hostname", help="the container's hostname")
    g.add_argument("--stop-signal", help="signal for tcontainer stop (default SIGTERM)")
    g.add_argument("--stop-timeout", type=float, help="seconds tcontainer stop waits before SIGKILL (default 10)")
    g.add_argument("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]")
    g = p.add_argument_group("resources")
    g.add_argument("-m", "--memory", help="memory limit, e.g. 64m (no swap); seed: -memlimit")
    g.add_argument("--memory-swap", help="memory + swap limit")
    g.add_argument("--cpus", type=float, help="CPU quota in CPUs, e.g. 0.5")
    g.add_argument("--cpuset-cpus", metavar="LIST", help="CPUs to run on, e.g. 0-1; seed: -cpuset")
    g.add_argument("--cpu-shares", type=int, help="relative CPU weight (default 1024); seed: -cpushare")
    g.add_argument("--pids-limit", type=int, help="maximum number of tasks (default 4096)")
    g = p.add_argument_group("file systems")
    g.add_argument("-v", "--volume", action="append", default=[], metavar="SRC:DST[:ro]")
    g.add_argument("--tmpfs", action="append", default=[], metavar="DST[:size=64m,mode=1777]")
    g.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    g = p.add_argument_group("network and security")
    g.add_argument("--network", "--net", default=None, help="none (default: loopback only) or host; seed: -net")
    g.add_argument("-p", "--publish", action="append", default=[], help="not supported yet (needs bridge networking)")
    g.add_argument("--cap-add", action="append", default=[])
    g.add_argument("--cap-drop", action="append", default=[])
    g.add_argument("--privileged", action="store_true", help="all capabilities, no seccomp (needs an image/rootfs)")
    g.add_argument("--security-opt", action="append", default=[],
                   metavar="seccomp=unconfined|PATH, no-new-privileges[=false]")
    return p


def exec_parser() -> Parser:
    p = _parser(
        "exec",
        "Run a command in a running container.",
        "  tcontainer exec web ps\n  tcontainer exec -it web /bin/sh\n  tcontainer exec -e A=1 -w /tmp web env\n",
    )
    p.add_argument("-d", "--detach", action="store_true", help="do not wait for the command")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("--detach-keys", default="ctrl-p,ctrl-q")
    return p


def attach_parser() -> Parser:
    p = _parser(
        "attach",
        "Attach your terminal (or stdin/stdout/stderr) to a running container.\n\n"
        "A -t container gets your keys (the terminal is put in raw mode; the detach keys leave it\n"
        "running). Without -t you see its new output, and your stdin goes to it if it was started\n"
        "with -i. Ctrl-C (SIGINT) on a non-tty attach detaches; it does not stop the container.\n"
        "The exit status is the container's when it exits while attached, 0 after detaching.",
        "  tcontainer run -dit --name shell --rootfs ROOTFS -- /bin/sh && tcontainer attach shell\n"
        "  tcontainer attach --no-stdin web                 # watch the output only\n"
        "  echo hello | tcontainer attach --detach-keys ctrl-x worker\n",
    )
    p.add_argument("--detach-keys", default="ctrl-p,ctrl-q", help="keys that detach (default ctrl-p,ctrl-q)")
    p.add_argument("--no-stdin", action="store_true", help="do not attach stdin")
    p.add_argument("container", metavar="CONTAINER")
    return p


def cp_parser() -> Parser:
    p = _parser(
        "cp",
        "Copy files or directories between a container and the host: CONTAINER:PATH on one side.\n\n"
        "Paths in the container are resolved inside its root filesystem (openat2 RESOLVE_IN_ROOT,\n"
        "as the container sees them): a symlink in the container can never lead outside it\n"
        "(CVE-2018-15664, CVE-2019-10152). A running container's root is that of its init; a stopped\n"
        "one's is its --rootfs directory (image containers keep no filesystem once stopped).\n"
        "As docker cp: a directory SRC is copied into DST if DST exists, else as DST; SRC/. copies\n"
        "the contents. '-' as the host side is not supported.",
        "  tcontainer cp web:/etc/hostname ./hostname\n"
        "  tcontainer cp ./site web:/www\n"
        "  tcontainer cp web:/var/log/. ./logs\n",
    )
    p.add_argument("-a", "--archive", action="store_true", help="keep uid/gid (default: the copier's)")
    p.add_argument("-L", "--follow-link", action="store_true",
                   help="follow a symlink given as SRC (still only inside the container)")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    return p


def completion_parser() -> Parser:
    p = _parser(
        "completion",
        "Print a shell completion script: commands, their options, and container names.",
        "  source <(tcontainer completion bash)\n"
        "  tcontainer completion zsh > \"${fpath[1]}/_tcontainer\"\n",
    )
    p.add_argument("shell", nargs="?", choices=["bash", "zsh"])
    p.add_argument("--names", action="store_true", help=argparse.SUPPRESS)  # used by the script itself
    return p


def ps_parser() -> Parser:
    p = _parser("ps", "List containers (running ones unless -a).", "  tcontainer ps -a\n  tcontainer ps -q\n")
    p.add_argument("-a", "--all", action="store_true", help="include stopped containers")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--no-trunc", action="store_true", help="full ids and commands")
    _format(p)
    return p


def _names(name: str, description: str, examples: str, *, many: bool = True) -> Parser:
    p = _parser(name, description, examples)
    p.add_argument("containers", nargs="+" if many else None, metavar="CONTAINER")
    return p


def logs_parser() -> Parser:
    p = _parser("logs", "Show the output of a detached container.",
                "  tcontainer logs web\n  tcontainer logs -f --tail 10 web\n  tcontainer logs --since 5m web\n")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output until the container exits")
    p.add_argument("-n", "--tail", default="all", help="only the last N lines")
    p.add_argument("--since", help="only output since a time (RFC 3339, Unix time, or a duration like 10m)")
    p.add_argument("--until", help="only output before a time")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("container", metavar="CONTAINER")
    return p


def stop_parser() -> Parser:
    p = _names("stop", "Stop containers: the stop signal, then SIGKILL after the timeout.",
               "  tcontainer stop web\n  tcontainer stop -t 1 web db\n")
    p.add_argument("-t", "--time", type=float, default=None, help="seconds to wait before SIGKILL")
    p.add_argument("-s", "--signal", default=None, help="signal to send first (default: the container's)")
    return p


def restart_parser() -> Parser:
    p = _names("restart", "Stop (if running) and start containers again, detached.", "  tcontainer restart web\n")
    p.add_argument("-t", "--time", type=float, default=None, help="seconds to wait before SIGKILL")
    return p


def kill_parser() -> Parser:
    p = _names("kill", "Send a signal to containers (default SIGKILL).", "  tcontainer kill -s HUP web\n")
    p.add_argument("-s", "--signal", default="SIGKILL")
    return p


def rm_parser() -> Parser:
    p = _names("rm", "Remove containers.", "  tcontainer rm web\n  tcontainer rm -f $(tcontainer ps -aq)\n")
    p.add_argument("-f", "--force", action="store_true", help="kill running containers first")
    return p


def inspect_parser() -> Parser:
    p = _names("inspect", "Show everything about containers, as JSON.",
               "  tcontainer inspect web\n  tcontainer inspect --format json web db\n")
    p.add_argument("--format", choices=["json"], default="json", help="output format (JSON only)")
    return p


def wait_parser() -> Parser:
    return _names("wait", "Wait for containers to exit and print their exit codes.", "  tcontainer wait web\n")


def stats_parser() -> Parser:
    p = _parser("stats", "Show resource use (running containers unless named).",
                "  tcontainer stats --no-stream\n  tcontainer stats web\n")
    p.add_argument("--no-stream", action="store_true", help="print one sample and exit")
    p.add_argument("-a", "--all", action="store_true")
    _format(p)
    p.add_argument("containers", nargs="*", metavar="CONTAINER")
    return p


def top_parser() -> Parser:
    p = _parser("top", "Show the processes of a container.", "  tcontainer top web\n")
    p.add_argument("container", metavar="CONTAINER")
    _format(p)
    return p


def rename_parser() -> Parser:
    p = _parser("rename", "Rename a container.", "  tcontainer rename web web-old\n")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")
    return p


def simple_parser(name: str, description: str, examples: str = "") -> Callable[[], Parser]:
    def build() -> Parser:
        p = _parser(name, description, examples or f"  tcontainer {name}\n")
        if name in ("prune", "gc"):
            p.add_argument("-f", "--force", action="store_true", help="do not ask (accepted for docker compatibility)")
        if name in ("version", "info"):
            _format(p)
        return p

    return build


def pull_parser() -> Parser:
    p = _parser("pull", "Fetch an image from a registry.", "  tcontainer pull busybox\n  tcontainer pull "
                "127.0.0.1:5000/test/app:1\n")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--platform", help="os/arch[/variant] (default: this host)")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def images_parser() -> Parser:
    p = _parser("images", "List images.", "  tcontainer images\n  tcontainer images -q\n")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--no-trunc", action="store_true")
    _format(p)
    return p


def rmi_parser() -> Parser:
    p = _parser("rmi", "Remove images (references; content goes with tcontainer image prune).",
                "  tcontainer rmi busybox\n")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true", help="remove even if containers use it")
    p.add_argument("--prune", action="store_true", help="also delete unused layers and blobs")
    return p


def start_parser() -> Parser:
    p = _names("start", "Start stopped containers again, detached.", "  tcontainer start web\n")
    return p


def pause_parser(name: str) -> Callable[[], Parser]:
    def build() -> Parser:
        verb = "Freeze" if name == "pause" else "Thaw"
        return _names(name, f"{verb} every process of containers (cgroup freezer).", f"  tcontainer {name} web\n")

    return build


def login_parser() -> Parser:
    p = _parser(
        "login",
        "Check credentials against a registry and store them in the containers auth file\n"
        "($REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json, else /run/containers/UID/auth.json),\n"
        "which podman and skopeo read too. The password is read from stdin (--password-stdin) or asked\n"
        "for on the terminal; it is never printed.",
        "  echo \"$TOKEN\" | tcontainer login -u me --password-stdin registry.example.com\n"
        "  tcontainer login 127.0.0.1:5000\n",
    )
    p.add_argument("registry", nargs="?", default="docker.io", metavar="REGISTRY")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password", help="insecure: visible in ps and shell history; use --password-stdin")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--authfile", help="credentials file to write (default: see above)")
    p.add_argument("--insecure", action="store_true", help="talk plain http to a non-loopback registry")
    return p


def logout_parser() -> Parser:
    p = _parser("logout", "Remove a registry's stored credentials.", "  tcontainer logout registry.example.com\n")
    p.add_argument("registry", nargs="?", default="docker.io", metavar="REGISTRY")
    p.add_argument("--authfile", help="credentials file (default: as for login)")
    return p


def save_parser() -> Parser:
    p = _parser(
        "save",
        "Write images to a tar archive: an OCI image layout that also carries docker's manifest.json,\n"
        "so podman load, skopeo (oci-archive:) and docker load read it.",
        "  tcontainer save -o busybox.tar busybox\n  tcontainer save busybox alpine > images.tar\n",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="archive to write (default: stdout, if not a terminal)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    return p


def load_parser() -> Parser:
    p = _parser(
        "load",
        "Load images from a tar archive: an OCI image layout (oci-layout, index.json, blobs/) or the\n"
        "output of docker save (manifest.json + layer tars). Digests are verified and layers unpacked\n"
        "with the same containment as pulls.",
        "  tcontainer load -i busybox.tar\n"
        "  skopeo copy docker://busybox docker-archive:/dev/stdout | tcontainer load\n",
    )
    p.add_argument("-i", "--input", metavar="FILE", help="archive to read (default: stdin)")
    p.add_argument("--repository", metavar="NAME",
                   help="repository for OCI entries whose ref.name is only a tag (skopeo's oci:DIR:TAG)")
    p.add_argument("--platform", help="os/arch[/variant] to pick from multi-platform entries (default: this host)")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def image_inspect_parser() -> Parser:
    p = _parser("image inspect", "Show images as JSON: ids, digests, tags, config, layers, sizes.",
                "  tcontainer image inspect busybox\n")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    return p


def image_prune_parser() -> Parser:
    p = _parser("image prune", "Remove unused images and free their layers and blobs.",
                "  tcontainer image prune\n  tcontainer image prune -a -f\n")
    p.add_argument("-a", "--all", action="store_true",
                   help="remove every image no container uses (default: only untagged ones)")
    p.add_argument("-f", "--force", action="store_true", help="do not ask (accepted for docker compatibility)")
    return p
