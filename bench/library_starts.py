#!/usr/bin/env python3
"""Library container starts, cold and warm, side by side with `runc run` and `crun run` (/bin/true).

Run as root:  python3 bench/library_starts.py [--rounds 30] [--big-mb 512] [--out bench/results]

Contenders (each starts /bin/true in the same busybox rootfs, read-only, and waits for it):

* `runc run`, `crun run`: the bundle of bench/start_latency.py (`runc spec`, cgroup beneath this
  process's memory cgroup);
* `library spawn (cold)`: `tc.run()` whose supervisor is a fresh `python -I -S` (what a threaded
  caller got before the fork server);
* `library fork (cold)`: `tc.run()` forking the caller; the child imports the engine lazily;
* `library warm`: `tc.run()` through `tc.WarmLauncher` (pre-imported fork server);
* `library warm+pool`: `tc.run()` through `tc.WarmLauncher(pool_size=N)`: the fork server's
  supervisors keep N containers of this spec created ahead (init blocked before execve), a run
  claims one (reads its pipes from the "created" message already waiting in its socket, writes
  the init's exec fifo itself) and launches its replacement; every run still gets a container of
  its own; run() returns at the supervisor's "exited" (usage read from the cgroup), the removal
  follows in the background and the pool's next claim, wait_pool_ready() and close() wait for it;
* `call() warm`: `tc.call(int)` in the host-root mode: container + interpreter + cloudpickle.

Every library contender uses the stdio the CLIs get (stdin and stdout /dev/null, stderr a pipe).

Three measurements:

* latency (start to exit and removal of one container, interleaved rounds). After each pooled
  run the harness waits, untimed, until the pool's replacement is created and the run's
  container removed, so that background work does not slow the next contender: this is a
  pool's best case, a caller whose starts are at least one creation apart;
* sustained, sequential: `--sustained` starts back to back per contender, after as many
  untimed ones as drain a pool to its steady state: starts/s here include the pool's background
  creation, which a run that follows the previous at once has to wait for;
* sustained, concurrent: the same with `--jobs` (default: the number of cores) threads each
  starting back to back (library fork is left out: forking a threaded caller is unsafe, which
  is why the library spawns or uses the fork server there).

Then the caller grows by `--big-mb` (touched pages) and fork vs warm are measured again: fork(2)
copies the caller's page tables, the fork server does not.

Every round runs each contender once in a new random order (load hits all alike); "x crun" is
the median of per-round ratios (contender / crun; below 1 is faster), and "crun / warm+pool" the
median of per-round speed-ups of the pool over crun (issue #6's target: at least 2). Like
start_latency.py this re-executes itself under `unshare -m --propagation private` and unmounts
/sys/fs/cgroup/unified there only (crun 1.8 fails on a hybrid cgroup v1 host otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

import start_latency as sl  # noqa: E402

import tinycontainer as tc  # noqa: E402
from tinycontainer import _launch  # noqa: E402

IN_NS_FLAG = sl.IN_NS_FLAG


def job_index() -> int:
    """Which concurrent job this thread is (-1 outside the concurrent measurement)."""
    name = threading.current_thread().name
    return int(name.removeprefix("job-")) if name.startswith("job-") else -1


def cli(argv_for: Callable[[str, str], list[str]], bundles: list[str]) -> Callable[[], float]:
    # One bundle per concurrent job: each names its own cgroup, which runc and crun remove on delete.
    def once() -> float:
        return sl.timed(argv_for(f"bench-{uuid.uuid4().hex[:12]}", bundles[job_index()])).wall_ms

    return once


# crun given the very container the library makes (the Spec's OCI config: Docker's seccomp
# profile, capabilities, masked paths, its mounts) rather than `runc spec`'s minimal one.
SAME_CONFIG = "crun run (the library's config)"


def library_config_bundle(spec: tc.Spec, runc_bundle: str) -> str:
    """A bundle beside ``runc_bundle`` (same rootfs and cgroup) whose config.json is the one
    ``spec`` makes for the library."""
    bundle = runc_bundle + "-library-config"
    os.makedirs(bundle)
    with open(os.path.join(runc_bundle, "config.json")) as f:
        cgroups_path = json.load(f)["linux"]["cgroupsPath"]
    config = spec.to_oci_config(rootfs_path=os.path.join(runc_bundle, "rootfs")).to_dict()
    config["linux"]["cgroupsPath"] = cgroups_path
    # crun 1.8 refuses runtime-spec versions it does not know (1.2.0); nothing in this config
    # needs more than 1.0.
    config["ociVersion"] = "1.0.2"
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    return bundle


def library(spec: tc.Spec, launcher: Any, settle: bool = False) -> Callable[[], float]:
    """``settle``: after the run, wait (untimed) until the pool's replacements are created, so
    that their background work does not land in the next contender's time."""

    def once() -> float:
        start = time.perf_counter()
        result = tc.run(None, spec=spec, launcher=launcher, stdin=tc.DEVNULL, stdout=tc.DEVNULL, stderr=tc.PIPE)
        wall = (time.perf_counter() - start) * 1000
        if result.returncode != 0:
            raise RuntimeError(f"library run failed: {result}")
        if settle:
            launcher.wait_pool_ready()
        return wall

    return once


def call_once() -> float:
    start = time.perf_counter()
    assert tc.call(int, "7") == 7
    return (time.perf_counter() - start) * 1000


def measure(contenders: dict[str, Callable[[], float]], rounds: int, warmup: int,
            settle: float = 0.0) -> dict[str, list[float]]:  # fmt: skip
    """``settle``: seconds of pause after each sample (see :func:`idle_gaps`: idle time before
    a start makes it slower on this VM, for every contender)."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    for n in range(rounds):
        order = list(contenders.items())
        random.shuffle(order)
        for name, fn in order:
            samples[name].append(fn())
            time.sleep(settle)
        print(f"round {n + 1}/{rounds}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return samples


def idle_gaps(contenders: dict[str, Callable[[], float]], gaps_ms: list[float], rounds: int) -> list[dict[str, Any]]:
    """Latency against the idle time before the start: each sample sleeps ``gap`` first (after
    the previous sample and, for the pool, after its settling). On this VM every start is
    slower after the CPUs idled (crun: ~7 ms back to back, ~20 ms after 50 ms of idle), so the
    interleaved table above mixes both; here each gap is its own row, contenders alternating."""
    rows: list[dict[str, Any]] = []
    for gap in gaps_ms:
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(rounds):
            order = list(contenders.items())
            random.shuffle(order)
            for name, fn in order:
                time.sleep(gap / 1000)
                samples[name].append(fn())
        row: dict[str, Any] = {"idle gap ms": gap}
        for name, values in samples.items():
            row[f"{name} median ms"] = round(statistics.median(values), 2)
        if "crun run" in samples and "library warm+pool" in samples:
            ratios = [c / p for c, p in zip(samples["crun run"], samples["library warm+pool"], strict=True)]
            row["crun / warm+pool (median per round)"] = round(statistics.median(ratios), 2)
        rows.append(row)
        print(f"idle gap {gap} ms done", file=sys.stderr)
    return rows


def back_to_back(contenders: dict[str, Callable[[], float]], rounds: int) -> list[dict[str, Any]]:
    """Each contender ``rounds`` times in a row, not interleaved: crun's best case on this VM
    (a crun start right after another crun start is about twice as fast as one after
    anything else, idle time included)."""
    rows: list[dict[str, Any]] = []
    for name, fn in contenders.items():
        values = [fn() for _ in range(rounds)]
        rows.append({"name": name, "median_ms": round(statistics.median(values), 2), "min_ms": round(min(values), 2),
                     "p90_ms": round(statistics.quantiles(values, n=10)[-1], 2)})  # fmt: skip
    return rows


def sustained(contenders: dict[str, Callable[[], float]], starts: int, jobs: int, drain: int,
              rounds: int) -> list[dict[str, Any]]:  # fmt: skip
    """Starts per second, back to back, ``jobs`` threads at once; ``drain`` untimed starts
    first. ``rounds`` times, each contender once per round in a new random order (load on the
    shared machine then hits all alike): the median rate, and the median of per-round ratios."""
    per_job = max(1, starts // jobs)
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for n in range(rounds):
        order = list(contenders.items())
        random.shuffle(order)
        for name, fn in order:
            for _ in range(drain):
                fn()
            errors: list[BaseException] = []

            def worker(fn: Callable[[], float] = fn, errors: list[BaseException] = errors) -> None:
                try:
                    for _ in range(per_job):
                        fn()
                except BaseException as exc:  # reported after the join
                    errors.append(exc)

            threads = [threading.Thread(target=worker, name=f"job-{i}") for i in range(jobs)]
            began = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - began
            if errors:
                raise errors[0]
            rates[name].append(per_job * jobs / elapsed)
        print(f"sustained x{jobs}: round {n + 1}/{rounds}", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    for name, values in rates.items():
        row: dict[str, Any] = {"name": name, "starts": per_job * jobs, "jobs": jobs, "rounds": rounds,
                               "starts_per_s": round(statistics.median(values), 1)}
        if "crun run" in rates:
            ratios = [v / c for v, c in zip(values, rates["crun run"], strict=True)]
            row["x crun run (throughput)"] = round(statistics.median(ratios), 2)
        rows.append(row)
    return rows


def summarize(samples: dict[str, list[float]], reference: str | None) -> list[dict[str, Any]]:
    rows = []
    for name, values in samples.items():
        median = statistics.median(values)
        row: dict[str, Any] = {"name": name, "median_ms": round(median, 1), "min_ms": round(min(values), 1),
                               "1000/median": round(1000 / median, 1)}
        if reference is not None and reference in samples:
            ratios = [v / r for v, r in zip(values, samples[reference], strict=True)]
            row[f"x {reference}"] = round(statistics.median(ratios), 2)
        rows.append(row)
    return rows


def speedup(samples: dict[str, list[float]], fast: str = "library warm+pool", ref: str = "crun run") -> str:
    """The median of per-round ``ref / fast`` ratios, with their quartiles."""
    if fast not in samples or ref not in samples:
        return ""
    ratios = sorted(r / f for f, r in zip(samples[fast], samples[ref], strict=True))
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    return (f"{ref} / {fast}, per round: median {statistics.median(ratios):.2f} "
            f"(quartiles {q1:.2f}-{q3:.2f}, min {ratios[0]:.2f}, {len(ratios)} rounds)\n\n")


def table(title: str, rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = [f"### {title}", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--settle-ms", type=float, default=0.0, help="pause after each latency sample")
    ap.add_argument("--big-mb", type=int, default=512, help="caller growth for the second phase (0: skip)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--gaps", default="0,50", help="idle ms before crun / pool starts, comma-separated ('': skip)")
    ap.add_argument("--pool", type=int, default=os.cpu_count() or 2, help="pool size of `library warm+pool`")
    ap.add_argument("--sustained", type=int, default=40, help="starts per sustained measurement (0: skip)")
    ap.add_argument("--sustained-rounds", type=int, default=3, help="interleaved rounds of the sustained runs")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="threads of the concurrent measurement")
    ap.add_argument(IN_NS_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    status = sl.enter_private_mount_ns(args.in_private_mount_ns)
    if status is not None:
        return status

    cgroups_path = os.path.join(sl.own_cgroup("memory"), f"tc-bench-{uuid.uuid4().hex[:8]}")
    hierarchies = [os.path.join(sl.CGROUP_ROOT, n) for n in os.listdir(sl.CGROUP_ROOT)
                   if not os.path.islink(os.path.join(sl.CGROUP_ROOT, n))]  # fmt: skip
    # One cgroup per concurrent job too (siblings: a v1 devices cgroup with children refuses
    # the runtimes' devices.deny writes).
    job_cgroups = [f"{cgroups_path}-job-{i}" for i in range(args.jobs)]
    created = {path: {h: sl.missing_dirs(os.path.join(h, path.lstrip("/"))) for h in hierarchies}
               for path in [cgroups_path, *job_cgroups]}  # fmt: skip
    base = tempfile.mkdtemp(prefix="tc-libbench-")
    warm = tc.WarmLauncher().start()
    pooled = tc.WarmLauncher(pool_size=args.pool).start()
    results: dict[str, Any] = {}
    notes: dict[str, str] = {}
    try:
        bundle = sl.make_bundle(base, cgroups_path)
        bundles = [sl.make_bundle(os.path.join(base, f"job-{i}"), path)
                   for i, path in enumerate(job_cgroups)] + [bundle]  # fmt: skip
        spec = tc.Spec(rootfs=os.path.join(bundle, "rootfs"), read_only=True, command=["/bin/true"])
        same = [library_config_bundle(spec, b) for b in bundles]
        contenders: dict[str, Callable[[], float]] = {
            "runc run": cli(lambda cid, b: ["runc", "--root", os.path.join(base, "runc"), "run", "--bundle", b, cid],
                            bundles),
            "crun run": cli(lambda cid, b: ["crun", "--root", os.path.join(base, "crun"), "run", "--bundle", b, cid],
                            bundles),
            SAME_CONFIG: cli(lambda cid, b: ["crun", "--root", os.path.join(base, "crun"), "run", "--bundle", b, cid],
                             same),
            "library spawn (cold)": library(spec, _launch.SpawnLauncher()),
            "library fork (cold)": library(spec, _launch.ForkLauncher()),
            "library warm": library(spec, warm),
            "library warm+pool": library(spec, pooled, settle=True),
            "call() warm": call_once,
        }
        small = measure(contenders, args.rounds, args.warmup, args.settle_ms / 1000)
        results["latency, small caller"] = summarize(small, "crun run")
        notes["latency, small caller"] = (speedup(small) + speedup(small, ref=SAME_CONFIG)
                                          + speedup(small, fast="library warm", ref=SAME_CONFIG))
        if args.gaps:
            gaps = [float(g) for g in args.gaps.split(",")]
            pair = {"crun run": contenders["crun run"], "library warm+pool": contenders["library warm+pool"]}
            results["latency against idle time before the start"] = idle_gaps(pair, gaps, args.rounds)
            results["latency, each contender back to back"] = back_to_back(pair, args.rounds)
        if args.sustained:
            names = ("runc run", "crun run", SAME_CONFIG, "library fork (cold)", "library warm")
            steady = {name: contenders[name] for name in names}
            steady["library warm+pool"] = library(spec, pooled)  # no settling: creation counts here
            results["sustained, sequential"] = sustained(steady, args.sustained, 1, 2 * args.pool,
                                                         args.sustained_rounds)
            steady.pop("library fork (cold)")
            results[f"sustained, {args.jobs} threads"] = sustained(steady, args.sustained, args.jobs,
                                                                   2 * args.pool, args.sustained_rounds)
        if args.big_mb:
            ballast = bytearray(args.big_mb << 20)
            for i in range(0, len(ballast), 4096):
                ballast[i] = 1
            big = measure({"library fork (cold)": contenders["library fork (cold)"],
                           "library warm": contenders["library warm"],
                           "library warm+pool": contenders["library warm+pool"],
                           "crun run": contenders["crun run"]}, max(10, args.rounds // 2), 1,
                          args.settle_ms / 1000)
            results[f"latency, caller +{args.big_mb} MB"] = summarize(big, "crun run")
            notes[f"latency, caller +{args.big_mb} MB"] = speedup(big)
            del ballast
    finally:
        pooled.close()
        warm.close()
        shutil.rmtree(base, ignore_errors=True)
        for path, made in created.items():
            sl.remove_cgroup(path, made)
    os.makedirs(args.out, exist_ok=True)
    text = (f"`library warm+pool`: WarmLauncher(pool_size={args.pool}); concurrent jobs: {args.jobs}; "
            f"{args.rounds} latency rounds, {args.settle_ms:g} ms pause after each sample; "
            f"{args.sustained} sustained starts x {args.sustained_rounds} rounds. "
            "See bench/README.md.\n\n")
    text += "".join(table(title, rows) + "\n" + notes.get(title, "") for title, rows in results.items())
    with open(os.path.join(args.out, "library_starts.json"), "w") as f:
        json.dump({**results, "notes": notes}, f, indent=1)
    with open(os.path.join(args.out, "library_starts.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
