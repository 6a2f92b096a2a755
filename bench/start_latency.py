#!/usr/bin/env python3
"""Start-to-exit latency of `tcontainer-oci run` against runc, crun and bwrap (/bin/true, busybox bundle).

Run as root:  python3 bench/start_latency.py [--rounds 40] [--out bench/results]

Every round runs each command once, in a fresh random order, so machine load hits all of them
alike; "x crun" / "x runc" are medians of the per-round ratios (stable even when absolute times
swing). Wall time is from just before fork to wait4(2) returning; CPU is the child's rusage
(user + system, including the descendants it reaped).

The whole benchmark runs in a private mount namespace (it re-executes itself under
`unshare -m --propagation private`), where /sys/fs/cgroup/unified is unmounted: crun 1.8 on a
hybrid cgroup v1 host otherwise fails. Nothing is changed in the host's mount namespace.
Container cgroups go beneath this process's own memory cgroup and are removed at the end.
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
import sysconfig
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
CGROUP_ROOT = "/sys/fs/cgroup"
IN_NS_FLAG = "--in-private-mount-ns"

# A lean launcher: no site (no .pth files, no site-packages scan), isolated mode, and the
# source tree put on sys.path by hand. This is what a launcher script written for speed does.
LEAN_ENTRY = (
    "import sys; sys.path[:0] = [{src!r}]; from tinycontainer import _codepack; pack = _codepack.install(); "
    "from tinycontainer.cli.oci import exit_without_teardown, main; status = main(sys.argv[1:]); "
    "_codepack.save(pack); exit_without_teardown(status)"
)

# What `tcontainer-oci run` imports at its top level (see the -X importtime profile).
RUN_PATH_MODULES = ("tinycontainer.cli.oci", "tinycontainer.cli.oci._commands", "tinycontainer.cli.oci._run",
                    "tinycontainer.runtime._log", "tinycontainer.runtime._create")  # fmt: skip


@dataclass
class Sample:
    wall_ms: float
    cpu_ms: float
    status: int


@dataclass
class Contender:
    name: str
    argv_for: Any  # Callable[[str], list[str]]: container id -> argv
    samples: list[Sample] = field(default_factory=list)
    # Ratios are taken against runc and crun running the same config.
    config: str = "runc spec"


def enter_private_mount_ns(inside: bool) -> int | None:
    """Check for root, re-run this script under `unshare -m` and, once inside, unmount the
    cgroup2 mount crun 1.8 refuses (only in this private namespace). Returns the exit status to
    end with, or None to carry on inside."""
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 2
    if not inside:
        argv = ["unshare", "-m", "--propagation", "private", sys.executable, *sys.argv, IN_NS_FLAG]
        return subprocess.run(argv, check=False).returncode
    unified = f"{CGROUP_ROOT}/unified"
    if os.path.ismount(unified):
        subprocess.run(["umount", unified], check=True)
        # A tmpfs of this namespace in its place: without it, the directory left is the host's
        # /sys/fs/cgroup tmpfs, and what the runtimes (crun 1.8) and podman write there as "cgroups" on a
        # hybrid host (libpod-ID/cgroup.procs, as plain files) would outlive the benchmark.
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tc-bench-empty", unified], check=True)
    return None


def own_cgroup(controller: str) -> str:
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path
    return "/"


def timed(argv: list[str]) -> Sample:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read() if proc.stderr else b""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return Sample(wall * 1000, (usage.ru_utime + usage.ru_stime) * 1000, proc.returncode)


def make_bundle(base: str, cgroups_path: str) -> str:
    bundle = os.path.join(base, "bundle")
    rootfs = os.path.join(bundle, "rootfs")
    for d in ("bin", "dev", "proc", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy2("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    for applet in ("true", "sh"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    # `runc spec` is the reference shape every runtime here accepts.
    subprocess.run(["runc", "spec", "--bundle", bundle], check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    config["linux"]["cgroupsPath"] = cgroups_path
    # `runc spec` lists ambient capabilities that are not inheritable, which the kernel cannot
    # raise (prctl(2) PR_CAP_AMBIENT_RAISE: EPERM). runc and crun ignore the failure, tcontainer-oci
    # refuses the config; without the list all of them start the same process.
    config["process"]["capabilities"].pop("ambient", None)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    return bundle


def console_script() -> str:
    return os.path.join(sysconfig.get_path("scripts"), "tcontainer-oci")


def with_docker_seccomp(base: str, bundle: str) -> str:
    """The same bundle with Docker's default seccomp profile, as podman passes with every
    container (the profile tcontainer-oci's `spec` writes; runc and crun compile it with libseccomp
    at every start)."""
    from tinycontainer.oci import _defaults
    from tinycontainer.oci._codec import encode

    variant = os.path.join(base, "bundle-seccomp")
    os.makedirs(variant)
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    config["root"]["path"] = os.path.join(bundle, "rootfs")  # the same tree (an absolute root.path)
    config["linux"]["seccomp"] = encode(_defaults.default_seccomp())
    with open(os.path.join(variant, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    return variant


def contenders(base: str, bundle: str, want: set[str]) -> list[Contender]:
    py = os.path.realpath(sys.executable)
    lean = LEAN_ENTRY.format(src=SRC)
    bwrap = ["bwrap", "--unshare-all", "--ro-bind", f"{bundle}/rootfs", "/", "--proc", "/proc", "--dev", "/dev"]
    imports = (
        f"import sys; sys.path[:0] = [{SRC!r}]; import {', '.join(RUN_PATH_MODULES)}; "
        # the arguments as `run` reads them: the fast path (argparse only for rarer forms)
        "from tinycontainer.cli.oci import _fastargs; _fastargs.parse(['run', 'x'])"
    )
    roots = {n: os.path.join(base, f"state-{n}") for n in ("tc", "tclean", "runc", "crun")}
    all_: list[Contender] = [
        Contender("tcontainer-oci", lambda i: [console_script(), "--root", roots["tc"], "run", "--bundle", bundle, i]),
        Contender(
            "tcontainer-oci (python3 -I -S)",
            lambda i: [py, "-I", "-S", "-c", lean, "--root", roots["tclean"], "run", "--bundle", bundle, i],
        ),
        Contender("runc", lambda i: ["runc", "--root", roots["runc"], "run", "--bundle", bundle, i]),
        Contender("crun", lambda i: ["crun", "--root", roots["crun"], "run", "--bundle", bundle, i]),
        Contender("bwrap --unshare-all", lambda i: [*bwrap, "/bin/true"]),
        *seccomp_contenders(base, bundle, roots),
        # Where the time goes: the same lean interpreter doing only part of the work.
        Contender("lean: imports of the run path + parser, no container", lambda i: [py, "-I", "-S", "-c", imports]),
        Contender("python3 -I -S -c pass", lambda i: [py, "-I", "-S", "-c", "pass"]),
        Contender("python3 -I -S -c 'import _ctypes'", lambda i: [py, "-I", "-S", "-c", "import _ctypes"]),
        Contender("python3 -c pass (with site)", lambda i: [py, "-c", "pass"]),
    ]
    return [c for c in all_ if not want or any(w in c.name for w in want)]


def seccomp_contenders(base: str, bundle: str, roots: dict[str, str]) -> list[Contender]:
    sec = with_docker_seccomp(base, bundle)
    argv = {
        "tcontainer-oci": lambda i: [console_script(), "--root", roots["tc"], "run", "--bundle", sec, i],
        "runc": lambda i: ["runc", "--root", roots["runc"], "run", "--bundle", sec, i],
        "crun": lambda i: ["crun", "--root", roots["crun"], "run", "--bundle", sec, i],
    }
    return [Contender(f"{name}, Docker seccomp profile", a, config="seccomp") for name, a in argv.items()]


def write_code_pack(base: str, bundles: list[str]) -> str | None:
    """Run the installed script on each bundle as a user's first calls after install do: they
    write the package's code pack (tinycontainer/_codepack.py), which honours
    PYTHONDONTWRITEBYTECODE like pyc files do; a benchmark's environment may set it. The pack's
    path, None if none was made."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for bundle in bundles:
        argv = [console_script(), "--root", os.path.join(base, "state-pack"), "run", "--bundle", bundle, "bench-pack"]
        subprocess.run(argv, env=env, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return code_pack()


def code_pack() -> str | None:
    """The installed script's code pack, None when there is none."""
    code = "import os; from tinycontainer import _codepack as c; p = c.pack_path(); print(p * os.path.exists(p))"
    out = subprocess.run([_shebang(console_script()), "-c", code], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarize(cs: list[Contender]) -> list[dict[str, Any]]:
    refs = {(c.name.split(",")[0], c.config): c for c in cs if c.name.split(",")[0] in ("runc", "crun")}
    rows = []
    for c in cs:
        walls = [s.wall_ms for s in c.samples]
        row: dict[str, Any] = {
            "command": c.name,
            "n": len(walls),
            "median_ms": round(statistics.median(walls), 2),
            "p90_ms": round(pct(walls, 0.9), 2),
            "min_ms": round(min(walls), 2),
            "cpu_median_ms": round(statistics.median(s.cpu_ms for s in c.samples), 2),
        }
        for ref in ("crun", "runc"):
            against = refs.get((ref, c.config)) or refs.get((ref, "runc spec"))
            if against is not None:
                ratios = [a.wall_ms / b.wall_ms for a, b in zip(c.samples, against.samples, strict=True)]
                row[f"x_{ref}"] = round(statistics.median(ratios), 2)
        rows.append(row)
    return rows


def _shebang(script: str) -> str:
    with open(script) as f:
        return f.readline()[2:].split()[0]


def import_profile(run_argv: list[str], lean: bool) -> dict[str, Any]:
    """`python3 -X importtime` of one real `tcontainer-oci run`: every module the parent loads
    (children are forked and import nothing). Best of 5 runs by total self time."""
    # The console script runs under the interpreter its first line names (a venv's python).
    py = os.path.realpath(sys.executable) if lean else _shebang(console_script())
    entry = ["-I", "-S", "-c", LEAN_ENTRY.format(src=SRC)] if lean else [console_script()]
    runs = []
    for _ in range(5):
        argv = [py, "-X", "importtime", *entry, *run_argv, f"bench-{uuid.uuid4().hex[:12]}"]
        err = subprocess.run(argv, capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL).stderr
        rows = []
        for line in err.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
            if m:
                rows.append((int(m.group(1)), int(m.group(2)), len(m.group(3)), m.group(4)))
        runs.append(rows)
    best = min(runs, key=lambda rows: sum(r[0] for r in rows))
    top_level = [r for r in best if r[2] == 1]
    ours = [r for r in best if r[3].startswith("tinycontainer")]
    return {
        "modules": len(best),
        "tinycontainer_modules": len(ours),
        "total_self_ms": round(sum(r[0] for r in best) / 1000, 2),
        "tinycontainer_self_ms": round(sum(r[0] for r in ours) / 1000, 2),
        "top_level_cumulative_ms": {r[3]: round(r[1] / 1000, 2) for r in sorted(top_level, key=lambda r: -r[1])[:8]},
        "top_self_ms": {r[3]: round(r[0] / 1000, 2) for r in sorted(best, key=lambda r: -r[0])[:10]},
    }


def syscall_counts(cs: list[Contender]) -> dict[str, Any]:
    if shutil.which("strace") is None:
        return {}
    out: dict[str, Any] = {}
    for c in cs:
        if not c.name.startswith(("tcontainer", "runc", "crun", "bwrap")):
            continue
        with tempfile.NamedTemporaryFile(prefix="strace-", suffix=".txt") as tf:
            argv = ["strace", "-f", "-c", "-o", tf.name, *c.argv_for(f"bench-{uuid.uuid4().hex[:12]}")]
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False, timeout=120)  # fmt: skip
            text = tf.read().decode()
        total = re.search(r"^\S+\s+\S+\s+\S+\s+(\d+)\s+(\d+)?\s*total$", text, re.M)
        rows = [
            r
            for r in re.findall(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", text, re.M)
            if r[1] != "total"
        ]
        out[c.name] = {
            "total": int(total.group(1)) if total else None,
            "top": dict(sorted(((n, int(k)) for k, n in rows), key=lambda t: -t[1])[:8]),
        }
    return out


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]], extra: dict[str, Any]) -> str:
    lines = [
        f"# Start-to-exit of /bin/true ({meta['rounds']} interleaved rounds, {meta['date']})",
        "",
        f"Host: {meta['host']}; Python {meta['python']}; {meta['cpus']} CPUs.",
        "Wall = fork to wait4; CPU = the child's rusage (user + system, with the descendants it reaped).",
        "Rows with Docker's seccomp profile are compared with runc and crun running that same config.",
        f"Code pack of the console script: {meta.get('code_pack') or 'none (the script imports module by module)'}.",
        "",
        "| command | median ms | p90 ms | min ms | CPU ms | x crun | x runc |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['command']} | {r['median_ms']} | {r['p90_ms']} | {r['min_ms']} | {r['cpu_median_ms']} "
            f"| {r.get('x_crun', '')} | {r.get('x_runc', '')} |"
        )
    for label, key in (("console script (site on)", "imports_console"), ("lean (-I -S)", "imports_lean")):
        imp = extra.get(key)
        if imp:
            heaviest = ", ".join(f"{k} {v}" for k, v in list(imp["top_level_cumulative_ms"].items())[:5])
            lines += [
                "",
                f"Imports during one `tcontainer-oci run`, {label}: {imp['modules']} modules "
                f"({imp['tinycontainer_modules']} of tinycontainer), {imp['total_self_ms']} ms self time in total "
                f"({imp['tinycontainer_self_ms']} ms in tinycontainer's own modules); heaviest top-level (ms, "
                f"cumulative): {heaviest}",
            ]
    sc = extra.get("syscalls") or {}
    if sc:
        lines += ["", "| command | syscalls (strace -f -c) | most frequent |", "|---|---:|---|"]
        for name, v in sc.items():
            lines.append(f"| {name} | {v['total']} | " + ", ".join(f"{k} {n}" for k, n in v["top"].items()) + " |")
    return "\n".join(lines) + "\n"


def first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30).stdout.splitlines()
    except OSError:
        return ""
    return out[0] if out else ""


def remove_cgroup(path: str, created: dict[str, list[str]]) -> None:
    for hierarchy, missing in created.items():
        top = os.path.join(hierarchy, path.lstrip("/"))
        for dirpath, _, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)
        for d in missing[1:]:
            try:
                os.rmdir(d)
            except OSError:
                break


def cgroup_hierarchies() -> dict[str, str]:
    """The cgroup v1 hierarchies mounted beneath /sys/fs/cgroup, by directory name: only real
    cgroup mounts (proc(5) mountinfo: the filesystem type follows the " - " separator), never
    a plain directory of the tmpfs there."""
    found = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields, _, tail = line.partition(" - ")
            point = fields.split()[4]
            if tail.split()[0] == "cgroup" and os.path.dirname(point) == CGROUP_ROOT:
                found[os.path.basename(point)] = point
    return found


def missing_dirs(path: str) -> list[str]:
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--only", action="append", default=[], help="substring of the commands to run (repeatable)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument(IN_NS_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    status = enter_private_mount_ns(args.in_private_mount_ns)
    if status is not None:
        return status

    cgroups_path = os.path.join(own_cgroup("memory"), f"tc-bench-{uuid.uuid4().hex[:8]}")
    hierarchies = sorted(set(cgroup_hierarchies().values()))
    created = {h: missing_dirs(os.path.join(h, cgroups_path.lstrip("/"))) for h in hierarchies}
    base = tempfile.mkdtemp(prefix="tc-bench-")
    try:
        bundle = make_bundle(base, cgroups_path)
        cs = contenders(base, bundle, set(args.only))
        pack = write_code_pack(base, [bundle, os.path.join(base, "bundle-seccomp")])
        for _ in range(args.warmup):
            for c in cs:
                timed(c.argv_for(f"bench-{uuid.uuid4().hex[:12]}"))
        for n in range(args.rounds):
            order = cs[:]
            random.shuffle(order)
            for c in order:
                c.samples.append(timed(c.argv_for(f"bench-{uuid.uuid4().hex[:12]}")))
            print(f"round {n + 1}/{args.rounds}", file=sys.stderr, end="\r")
        print(file=sys.stderr)
        rows = summarize(cs)
        run_argv = ["--root", os.path.join(base, "state-imports"), "run", "--bundle", bundle]
        extra: dict[str, Any] = {
            "imports_console": import_profile(run_argv, lean=False),
            "imports_lean": import_profile(run_argv, lean=True),
        }
        if not args.no_strace:
            extra["syscalls"] = syscall_counts(cs)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        remove_cgroup(cgroups_path, created)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds": args.rounds,
        "host": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "versions": {tool: first_line([tool, "--version"]) for tool in ("runc", "crun", "bwrap") if shutil.which(tool)},
        "code_pack": pack,
    }
    write_results(args.out, "start_latency", {"meta": meta, "results": rows, **extra}, markdown(meta, rows, extra))
    return 0


def write_results(out: str, name: str, data: dict[str, Any], md: str) -> None:
    """``out/name.json`` and ``out/name.md``; the markdown is printed too."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(data, f, indent=1)
    with open(os.path.join(out, f"{name}.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    raise SystemExit(main())
