#!/usr/bin/env python3
"""What a podman user sees: `podman run --rm IMAGE /bin/true`, and a detached container's
`podman run -d` + `podman stop` + `podman rm`, with `--runtime` set to tcontainer-oci, runc and crun.

Run as root:  /path/to/venv/bin/python bench/podman_run.py [--rounds 20] [--out bench/results]

The tcontainer-oci measured is the script installed beside the running interpreter
(`sysconfig.get_path("scripts")`), so the venv's python selects the install.

Every round runs each (runtime, scenario) pair once, in a fresh random order, so machine load
hits all of them alike; "x runc" / "x crun" are medians of the per-round ratios against the same
step under runc / crun. Wall time is from just before podman's fork to wait4(2) returning. CPU is
everything the step made run: a cpuacct cgroup holds the podman CLI, and podman's --cgroup-parent
(conmon, the runtime it starts, the container, podman's cleanup process) is beneath the same
cgroup; after each step the harness waits, untimed, until the processes the step started are gone
and reads the cgroup's cpuacct.usage. Podman passes Docker's seccomp profile with every container,
so every runtime loads it as in real use.

Everything podman creates lives in a temp dir (--root, --runroot, --tmpdir, CONTAINERS_CONF,
CONTAINERS_STORAGE_CONF, the runtimes' --root via --runtime-flag), removed at the end. The whole
benchmark runs in a private mount namespace (it re-executes itself under `unshare -m --propagation
private`), where /sys/fs/cgroup/unified is unmounted (crun 1.8 fails on a hybrid cgroup v1 host
otherwise) and where podman's overlay and /dev/shm mounts stay. Cgroups go beneath this process's
own memory cgroup, in every hierarchy, and are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import start_latency as sl  # noqa: E402 (the shared helpers of the benchmarks)

CGROUP_ROOT = "/sys/fs/cgroup"
IN_NS_FLAG = "--in-private-mount-ns"
IMAGE = "localhost/bench-bbox"
BUSYBOX = "/bin/busybox"
SETTLE_TIMEOUT_S = 30.0
PODMAN_TIMEOUT_S = 120.0

# A service that stops on SIGTERM at once: a shell as pid 1 has no default SIGTERM action
# (kernel: signals to a pid namespace's init without a handler are dropped), so `podman stop`
# would otherwise wait its 10 s and send SIGKILL.
SERVICE = ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
SIGTERM_BIT = 1 << (15 - 1)

# CONTAINERS_CONF replaces Debian's containers.conf entirely (capabilities restated). Both ulimits
# are needed: the list replaces the built-in one, and the machine's hard nofile is 20000 (see
# shared/research/podman.md). runtime_supports_json holds basenames, so the counting wrappers
# keep the runtimes' names.
CONTAINERS_CONF = """\
[containers]
default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE",
  "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]
default_sysctls = ["net.ipv4.ping_group_range=0 0"]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "none"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{base}/events.log"
runtime_supports_json = ["crun", "runc", "tcontainer-oci"]
"""

STORAGE_CONF = """\
[storage]
driver = "{driver}"
runroot = "{base}/run"
graphroot = "{base}/storage"
"""

# Appends who called it (conmon or podman) and the arguments, then becomes the real runtime.
# podman calls kill/delete with no PATH: only builtins and absolute paths here.
COUNTING_WRAPPER = """\
#!/bin/sh
read -r caller < /proc/$PPID/comm
read -r cmdline < /proc/$PPID/cmdline
case "$cmdline" in *containercleanup*) caller="$caller container cleanup" ;; esac
printf '%s\\t%s\\n' "$caller" "$*" >> {log}
prev=
for arg in "$@"; do
  [ "$prev" = --bundle ] && /bin/cp "$arg/config.json" {configs}/config-$$.json
  prev=$arg
done
exec {real} "$@"
"""


@dataclass
class Sample:
    wall_ms: float
    cpu_ms: float | None


@dataclass
class Runtime:
    name: str
    path: str


@dataclass
class Scenario:
    name: str
    steps: tuple[str, ...]


RUN_RM = Scenario("run --rm", ("run --rm /bin/true",))
DETACHED = Scenario("detached", ("run -d", "stop", "rm"))
LIFECYCLE_TOTAL = "run -d + stop + rm"


@dataclass
class Contender:
    runtime: Runtime
    scenario: Scenario
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def add(self, step: str, sample: Sample) -> None:
        self.samples.setdefault(step, []).append(sample)


@dataclass
class Cgroups:
    """The benchmark's cgroup (the same path in every hierarchy, beneath our memory cgroup) and,
    when our cpuacct cgroup is one of its ancestors, a `cli` child there for podman itself."""

    path: str
    created: dict[str, list[str]]
    cpuacct: str | None

    @property
    def parent(self) -> str:
        return os.path.join(self.path, "pods")

    @property
    def cli(self) -> str | None:
        return os.path.join(self.cpuacct, "cli") if self.cpuacct else None

    def usage_ms(self) -> float | None:
        if self.cpuacct is None:
            return None
        with open(os.path.join(self.cpuacct, "cpuacct.usage")) as f:
            return int(f.read()) / 1e6

    def tasks(self, top: str | None) -> list[int]:
        if top is None or not os.path.isdir(top):
            return []
        pids: list[int] = []
        for dirpath, _, files in os.walk(top):
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError), open(os.path.join(dirpath, "cgroup.procs")) as f:
                    pids += [int(x) for x in f.read().split()]
        return pids

    def wait_empty(self, top: str | None, what: str) -> None:
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while self.tasks(top):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} still has processes after {SETTLE_TIMEOUT_S} s: {self.tasks(top)}")
            time.sleep(0.002)

    def enter_cli(self) -> None:
        """preexec_fn: move the forked podman into the cli cgroup (cgroups(7): writing a PID to
        cgroup.procs moves that process; its children are born there)."""
        if self.cli is not None:
            fd = os.open(os.path.join(self.cli, "cgroup.procs"), os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)


def make_cgroups() -> Cgroups:
    path = os.path.join(sl.own_cgroup("memory"), f"tc-podbench-{uuid.uuid4().hex[:8]}")
    created = {h: sl.missing_dirs(os.path.join(h, path.lstrip("/"))) for h in sl.cgroup_hierarchies().values()}
    acct_dir = next((d for n, d in sl.cgroup_hierarchies().items() if "cpuacct" in n.split(",")), None)
    own_acct = sl.own_cgroup("cpuacct").rstrip("/") + "/"
    cpuacct = None
    # Only beneath our own cpuacct cgroup: podman's parent must be inside the measured one.
    if acct_dir is not None and (path + "/").startswith(own_acct):
        cpuacct = os.path.join(acct_dir, path.lstrip("/"))
        os.makedirs(os.path.join(cpuacct, "cli"))
    return Cgroups(path, created, cpuacct)


def remove_cgroups(cg: Cgroups) -> None:
    for hierarchy, missing in cg.created.items():
        top = os.path.join(hierarchy, cg.path.lstrip("/"))
        # cgroupfs directories go with rmdir(2) only; one whose last task just exited can stay
        # busy for a moment.
        for dirpath, _, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
            for _ in range(50):
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
        for d in missing[1:]:
            try:
                os.rmdir(d)
            except OSError:
                break


@dataclass
class Podman:
    base: str
    driver: str
    cgroups: Cgroups
    env: dict[str, str]

    def argv(self, runtime: Runtime, *args: str) -> list[str]:
        return [
            "podman",
            "--root", f"{self.base}/storage",
            "--runroot", f"{self.base}/run",
            "--tmpdir", f"{self.base}/tmp",
            "--storage-driver", self.driver,
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
            "--runtime", runtime.path,
            *args,
        ]  # fmt: skip

    def run(self, runtime: Runtime, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.argv(runtime, *args), env=self.env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=PODMAN_TIMEOUT_S, check=False)  # fmt: skip
        if check and proc.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)} ({runtime.name}) -> {proc.returncode}: {proc.stderr[-2000:]}")
        return proc

    def timed(self, runtime: Runtime, *args: str) -> tuple[float, str]:
        """Wall ms of one podman command (fork to wait4) and its stdout."""
        argv = self.argv(runtime, *args)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    preexec_fn=self.cgroups.enter_cli)  # fmt: skip
            _, status, _ = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"podman {' '.join(args)} ({runtime.name}) -> {proc.returncode}: "
                    f"{err.read().decode(errors='replace')[-2000:]}"
                )
            return wall * 1000, out.read().decode().strip()


def build_rootfs_tar(base: str) -> str:
    """A busybox-static rootfs (a symlink per applet) as a tarball for `podman import`."""
    rootfs = os.path.join(base, "rootfs")
    for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "root", "run", "var"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for name in applets:
        if name != "busybox":
            os.symlink("busybox", os.path.join(rootfs, "bin", name))
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    tarball = os.path.join(base, "rootfs.tar")
    with tarfile.open(tarball, "w") as tar:
        tar.add(rootfs, arcname=".")
    shutil.rmtree(rootfs)
    return tarball


def private_run_dir(base: str) -> None:
    """Bind an empty directory of ours over /run, in this private mount namespace only: the
    runtimes keep their state in their default roots (/run/runc, /run/crun, /run/tcontainer-oci),
    as podman users run them, and podman writes /run/containers and /run/libpod, all of which
    then land in the temp dir. (A `--runtime-flag root=...` is no substitute: the `delete` of
    podman's cleanup process, which conmon starts, is made without it.)"""
    run = os.path.join(base, "host-run")
    os.makedirs(run)
    subprocess.run(["mount", "--bind", run, "/run"], check=True)


def setup_podman(base: str, driver: str, cgroups: Cgroups) -> Podman:
    for name in ("tmp", "run", "storage"):
        os.makedirs(os.path.join(base, name))
    conf = os.path.join(base, "containers.conf")
    with open(conf, "w") as f:
        f.write(CONTAINERS_CONF.format(base=base))
    storage_conf = os.path.join(base, "storage.conf")
    with open(storage_conf, "w") as f:
        f.write(STORAGE_CONF.format(base=base, driver=driver))
    return Podman(base, driver, cgroups, podman_env(base))


def podman_env(base: str) -> dict[str, str]:
    # No PYTHONDONTWRITEBYTECODE (a benchmark's shell may set it): the runtime's first calls
    # write its code pack, as after a user's install.
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": base,
        "CONTAINERS_CONF": os.path.join(base, "containers.conf"),
        "CONTAINERS_STORAGE_CONF": os.path.join(base, "storage.conf"),
        "TMPDIR": os.path.join(base, "tmp"),
    }


def runtimes() -> list[Runtime]:
    script = sl.console_script()
    with open(script, "rb") as f:
        shebang = f.readline()
    # podman calls kill/delete with no PATH: `#!/usr/bin/env python3` would fail there.
    if not shebang.startswith(b"#!/") or b"/env " in shebang:
        raise SystemExit(f"{script} needs an absolute interpreter in its first line: {shebang!r}")
    found = [Runtime("tcontainer-oci", script)]
    for name in ("runc", "crun"):
        path = shutil.which(name)
        if path is None:
            raise SystemExit(f"{name} is not installed")
        found.append(Runtime(name, os.path.realpath(path)))
    return found


def container_init(cg: Cgroups, cid: str) -> int | None:
    if cg.cpuacct is None:
        return None
    pids = cg.tasks(os.path.join(cg.cpuacct, "pods", f"libpod-{cid}"))
    return min(pids) if pids else None


def wait_sigterm_handler(pid: int | None) -> None:
    """Wait until the service's shell has its SIGTERM trap installed (SigCgt in
    /proc/PID/status, proc(5)), so that `stop` never races its start."""
    if pid is None:
        time.sleep(0.05)
        return
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/status") as f:
                caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
        except (OSError, StopIteration):
            return
        if caught & SIGTERM_BIT:
            return
        time.sleep(0.001)


def step(pm: Podman, c: Contender, name: str, args: list[str], settle: str | None) -> str:
    """One timed podman command; then, untimed, wait until what it started is gone (the CLI's
    cgroup, or with settle="all" everything beneath ours) and charge the CPU used meanwhile."""
    cg = pm.cgroups
    before = cg.usage_ms()
    wall, out = pm.timed(c.runtime, *args)
    cg.wait_empty(cg.cli, "podman's cgroup")
    if settle == "all" and cg.cpuacct is not None:
        cg.wait_empty(cg.cpuacct, "the benchmark's cgroup")
    after = cg.usage_ms()
    c.add(name, Sample(wall, None if before is None or after is None else after - before))
    return out


def run_contender(pm: Podman, c: Contender) -> None:
    parent = ["--cgroup-parent", pm.cgroups.parent]
    if c.scenario is RUN_RM:
        step(pm, c, "run --rm /bin/true", ["run", "--rm", *parent, IMAGE, "/bin/true"], settle="all")
        return
    name = f"bench-{uuid.uuid4().hex[:12]}"
    cid = step(pm, c, "run -d", ["run", "-d", "--name", name, *parent, IMAGE, *SERVICE], settle="cli")
    wait_sigterm_handler(container_init(pm.cgroups, cid))
    step(pm, c, "stop", ["stop", name], settle="cli")
    step(pm, c, "rm", ["rm", name], settle="all")
    parts = [c.samples[s][-1] for s in DETACHED.steps]
    cpus = [p.cpu_ms for p in parts]
    total_cpu = None if any(x is None for x in cpus) else sum(x for x in cpus if x is not None)
    c.add(LIFECYCLE_TOTAL, Sample(sum(p.wall_ms for p in parts), total_cpu))


def summarize(cs: list[Contender]) -> list[dict[str, Any]]:
    by_key = {(c.runtime.name, s): samples for c in cs for s, samples in c.samples.items()}
    rows = []
    for c in cs:
        for s, samples in c.samples.items():
            walls = [x.wall_ms for x in samples]
            cpus = [x.cpu_ms for x in samples if x.cpu_ms is not None]
            row: dict[str, Any] = {
                "runtime": c.runtime.name,
                "step": s,
                "n": len(walls),
                "median_ms": round(statistics.median(walls), 1),
                "p90_ms": round(sl.pct(walls, 0.9), 1),
                "min_ms": round(min(walls), 1),
                "cpu_median_ms": round(statistics.median(cpus), 1) if cpus else None,
            }
            for ref in ("runc", "crun"):
                against = by_key.get((ref, s))
                if against is not None:
                    ratios = [a.wall_ms / b.wall_ms for a, b in zip(samples, against, strict=True)]
                    row[f"x_{ref}"] = round(statistics.median(ratios), 2)
                    if cpus and len(cpus) == len(samples):
                        ref_cpu = [x.cpu_ms for x in against]
                        cpu_ratios = [a / b for a, b in zip(cpus, ref_cpu, strict=True) if b]
                        row[f"cpu_x_{ref}"] = round(statistics.median(cpu_ratios), 2)
            rows.append(row)
    order = [RUN_RM.steps[0], *DETACHED.steps, LIFECYCLE_TOTAL]
    names = [c.runtime.name for c in cs]
    rows.sort(key=lambda r: (order.index(r["step"]), names.index(r["runtime"])))
    return rows


def count_calls(pm: Podman, rt: Runtime, scenario: Scenario) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The runtime calls podman and conmon make for one scenario, through a wrapper script
    (basename kept: podman passes --log-format=json by basename) that logs and execs the
    runtime; and a summary of the config.json podman gave `create`."""
    wrap_dir = os.path.join(pm.base, "count", f"{rt.name}-{uuid.uuid4().hex[:6]}")
    os.makedirs(wrap_dir)
    log = os.path.join(wrap_dir, "calls.log")
    wrapper = os.path.join(wrap_dir, os.path.basename(rt.path))
    with open(wrapper, "w") as f:
        f.write(COUNTING_WRAPPER.format(log=log, real=rt.path, configs=wrap_dir))
    os.chmod(wrapper, 0o755)
    counted = Contender(Runtime(rt.name, wrapper), scenario)
    run_contender(pm, counted)
    calls = []
    with open(log) as f:
        for line in f:
            caller, _, args = line.rstrip("\n").partition("\t")
            args = args.replace(pm.base, "$TMP")
            args = re.sub(r"\b[0-9a-f]{64}\b", "ID", args)
            calls.append({"caller": caller, "subcommand": subcommand(args.split()), "argv": args})
    configs = [os.path.join(wrap_dir, n) for n in os.listdir(wrap_dir) if n.startswith("config-")]
    return calls, (config_summary(configs[0]) if configs else {})


def config_summary(path: str) -> dict[str, Any]:
    """What makes the runtimes' work comparable: the seccomp profile and the mounts podman asks for."""
    with open(path) as f:
        config = json.load(f)
    linux = config.get("linux", {})
    seccomp = linux.get("seccomp") or {}
    rules = seccomp.get("syscalls") or []
    return {
        "seccomp_default_action": seccomp.get("defaultAction"),
        "seccomp_rules": len(rules),
        "seccomp_syscall_names": sum(len(r.get("names", [])) for r in rules),
        "mounts": len(config.get("mounts", [])),
        "masked_paths": len(linux.get("maskedPaths", [])),
        "readonly_paths": len(linux.get("readonlyPaths", [])),
        "namespaces": sorted(n["type"] for n in linux.get("namespaces", [])),
        "capabilities": len(config.get("process", {}).get("capabilities", {}).get("bounding", [])),
    }


def subcommand(argv: list[str]) -> str:
    takes_value = {"--log", "--root", "--log-format"}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in takes_value else 1
    return argv[i] if i < len(argv) else "?"


def unmount_beneath(base: str) -> None:
    # podman mounts overlays and a /dev/shm tmpfs per container under --root/--runroot; `rm`
    # unmounts them, this catches what a failure left. Only mounts of our own temp dir.
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p == base or p.startswith(base + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]], seen: dict[str, Any]) -> str:
    lines = [
        f"# podman with each OCI runtime ({meta['rounds']} interleaved rounds, {meta['date']})",
        "",
        f"Host: {meta['host']}; {meta['cpus']} CPUs; {meta['versions'].get('podman', 'podman')}, "
        f"{meta['versions'].get('conmon', 'conmon')}; storage driver {meta['storage_driver']}; network none; "
        "cgroup manager cgroupfs (v1); Docker's seccomp profile (podman's default) on every container.",
        f"tcontainer-oci: {meta['tcontainer_oci']} (code pack: {meta.get('code_pack') or 'none'}).",
        "Wall = podman's fork to wait4. CPU = cpuacct of everything the step ran (podman, conmon, the runtime, "
        "the container, podman's cleanup process). `x runc` / `x crun`: median of per-round ratios, same step.",
        "Detached container: `sh -c \"trap 'exit 0' TERM; sleep 1000 & wait\"` (stops on SIGTERM).",
        "",
        "| step | runtime | median ms | p90 ms | min ms | CPU ms | x runc | x crun | CPU x runc | CPU x crun |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['step']} | {r['runtime']} | {r['median_ms']} | {r['p90_ms']} | {r['min_ms']} "
            f"| {r['cpu_median_ms'] if r['cpu_median_ms'] is not None else ''} "
            f"| {r.get('x_runc', '')} | {r.get('x_crun', '')} | {r.get('cpu_x_runc', '')} | {r.get('cpu_x_crun', '')} |"
        )
    for rt, conf in seen["podman_config"].items():
        if conf:
            lines += [
                "",
                f"config.json podman gave {rt}'s `create`: seccomp default {conf['seccomp_default_action']}, "
                f"{conf['seccomp_rules']} rules over {conf['seccomp_syscall_names']} syscall names; "
                f"{conf['mounts']} mounts, {conf['masked_paths']} masked and {conf['readonly_paths']} read-only paths, "
                f"{conf['capabilities']} capabilities, namespaces {', '.join(conf['namespaces'])}.",
            ]
            break  # the same for every runtime (the full set is in the JSON)
    for scenario, per_runtime in seen["runtime_calls"].items():
        lines += ["", f"Runtime calls for one `podman {scenario}` (caller: arguments; `$TMP` = the temp dir):", ""]
        for rt, cs in per_runtime.items():
            subs = ", ".join(c["subcommand"] for c in cs)
            lines.append(f"- {rt}: {len(cs)} calls ({subs})")
            lines += [f"  - {c['caller']}: `{c['argv']}`" for c in cs]
    return "\n".join(lines) + "\n"


def measure(pm: Podman, rts: list[Runtime], args: argparse.Namespace) -> tuple[list[Contender], dict[str, Any]]:
    """The timed contenders, and what the counting runs saw (calls, config summary)."""
    scenarios = [RUN_RM] if args.no_detached else [RUN_RM, DETACHED]
    cs = [Contender(rt, s) for rt in rts for s in scenarios]
    # Each runtime once, untimed and before anything else: tcontainer-oci writes its code pack
    # and its seccomp compile cache (beneath its --root) on first use.
    for c in cs:
        run_contender(pm, Contender(c.runtime, c.scenario))
    calls: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    for s, label in ((RUN_RM, "run --rm IMAGE /bin/true"), (DETACHED, "run -d IMAGE sh ...; stop; rm")):
        if s in scenarios:
            calls[label] = {}
            for rt in rts:
                calls[label][rt.name], config = count_calls(pm, rt, s)
                configs.setdefault(rt.name, config)
    for _ in range(args.warmup):
        for c in random.sample(cs, len(cs)):
            run_contender(pm, Contender(c.runtime, c.scenario))
    for n in range(args.rounds):
        for c in random.sample(cs, len(cs)):
            run_contender(pm, c)
        print(f"round {n + 1}/{args.rounds}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return cs, {"runtime_calls": calls, "podman_config": configs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--storage-driver", default="overlay", choices=("overlay", "vfs"))
    ap.add_argument("--no-detached", action="store_true", help="only `podman run --rm`")
    ap.add_argument(IN_NS_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    status = sl.enter_private_mount_ns(args.in_private_mount_ns)
    if status is not None:
        return status
    for tool in ("podman", "conmon"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")
    rts = runtimes()

    cgroups = make_cgroups()
    base = tempfile.mkdtemp(prefix="tc-podbench-")
    try:
        private_run_dir(base)
        pm = setup_podman(base, args.storage_driver, cgroups)
        pm.run(rts[0], "import", "--change", 'CMD ["/bin/sh"]', "--change", "ENV PATH=/bin",
               build_rootfs_tar(base), IMAGE)  # fmt: skip
        cs, seen = measure(pm, rts, args)
    finally:
        if os.path.exists(os.path.join(base, "containers.conf")):
            Podman(base, args.storage_driver, cgroups, podman_env(base)).run(
                rts[0], "rm", "--all", "--force", "--time", "0", check=False
            )
        unmount_beneath(base)
        shutil.rmtree(base, ignore_errors=True)
        remove_cgroups(cgroups)
    rows = summarize(cs)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds": args.rounds,
        "warmup": args.warmup,
        "host": f"{platform.system()} {platform.release()}",
        "cpus": os.cpu_count(),
        "storage_driver": args.storage_driver,
        "tcontainer_oci": sl.console_script(),
        "code_pack": sl.code_pack(),
        "cpu_measured": cgroups.cpuacct is not None,
        "versions": {
            "podman": sl.first_line(["podman", "--version"]),
            "conmon": sl.first_line(["conmon", "--version"]),
            "runc": sl.first_line(["runc", "--version"]),
            "crun": sl.first_line(["crun", "--version"]),
        },
    }
    sl.write_results(args.out, "podman_run", {"meta": meta, "results": rows, **seen}, markdown(meta, rows, seen))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
