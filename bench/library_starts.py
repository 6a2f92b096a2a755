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
* `call() warm`: `tc.call(int)` in the host-root mode: container + interpreter + cloudpickle.

Then the caller grows by `--big-mb` (touched pages) and fork vs warm are measured again: fork(2)
copies the caller's page tables, the fork server does not.

Every round runs each contender once in a new random order (load hits all alike); "x crun" is
the median of per-round ratios. Like start_latency.py this re-executes itself under
`unshare -m --propagation private` and unmounts /sys/fs/cgroup/unified there only (crun 1.8
fails on a hybrid cgroup v1 host otherwise).
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


def cli(argv_for: Callable[[str], list[str]]) -> Callable[[], float]:
    def once() -> float:
        return sl.timed(argv_for(f"bench-{uuid.uuid4().hex[:12]}")).wall_ms

    return once


def library(spec: tc.Spec, launcher: Any) -> Callable[[], float]:
    def once() -> float:
        start = time.perf_counter()
        result = tc.run(None, spec=spec, launcher=launcher)
        wall = (time.perf_counter() - start) * 1000
        if result.returncode != 0:
            raise RuntimeError(f"library run failed: {result}")
        return wall

    return once


def call_once() -> float:
    start = time.perf_counter()
    assert tc.call(int, "7") == 7
    return (time.perf_counter() - start) * 1000


def measure(contenders: dict[str, Callable[[], float]], rounds: int, warmup: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    for n in range(rounds):
        order = list(contenders.items())
        random.shuffle(order)
        for name, fn in order:
            samples[name].append(fn())
        print(f"round {n + 1}/{rounds}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return samples


def summarize(samples: dict[str, list[float]], reference: str | None) -> list[dict[str, Any]]:
    rows = []
    for name, values in samples.items():
        median = statistics.median(values)
        row: dict[str, Any] = {"name": name, "median_ms": round(median, 1), "min_ms": round(min(values), 1),
                               "starts_per_s": round(1000 / median, 1)}
        if reference is not None and reference in samples:
            ratios = [v / r for v, r in zip(values, samples[reference], strict=True)]
            row[f"x {reference}"] = round(statistics.median(ratios), 2)
        rows.append(row)
    return rows


def table(title: str, rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = [f"### {title}", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--big-mb", type=int, default=512, help="caller growth for the second phase (0: skip)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument(IN_NS_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    status = sl.enter_private_mount_ns(args.in_private_mount_ns)
    if status is not None:
        return status

    cgroups_path = os.path.join(sl.own_cgroup("memory"), f"tc-bench-{uuid.uuid4().hex[:8]}")
    hierarchies = [os.path.join(sl.CGROUP_ROOT, n) for n in os.listdir(sl.CGROUP_ROOT)
                   if not os.path.islink(os.path.join(sl.CGROUP_ROOT, n))]  # fmt: skip
    created = {h: sl.missing_dirs(os.path.join(h, cgroups_path.lstrip("/"))) for h in hierarchies}
    base = tempfile.mkdtemp(prefix="tc-libbench-")
    warm = tc.WarmLauncher().start()
    results: dict[str, Any] = {}
    try:
        bundle = sl.make_bundle(base, cgroups_path)
        spec = tc.Spec(rootfs=os.path.join(bundle, "rootfs"), read_only=True, command=["/bin/true"])
        contenders: dict[str, Callable[[], float]] = {
            "runc run": cli(lambda cid: ["runc", "--root", os.path.join(base, "runc"), "run", "--bundle", bundle,
                                         cid]),
            "crun run": cli(lambda cid: ["crun", "--root", os.path.join(base, "crun"), "run", "--bundle", bundle,
                                         cid]),
            "library spawn (cold)": library(spec, _launch.SpawnLauncher()),
            "library fork (cold)": library(spec, _launch.ForkLauncher()),
            "library warm": library(spec, warm),
            "call() warm": call_once,
        }
        small = measure(contenders, args.rounds, args.warmup)
        results["small caller"] = summarize(small, "crun run")
        if args.big_mb:
            ballast = bytearray(args.big_mb << 20)
            for i in range(0, len(ballast), 4096):
                ballast[i] = 1
            big = measure({"library fork (cold)": contenders["library fork (cold)"],
                           "library warm": contenders["library warm"],
                           "crun run": contenders["crun run"]}, max(10, args.rounds // 2), 1)
            results[f"caller +{args.big_mb} MB"] = summarize(big, "crun run")
            del ballast
    finally:
        warm.close()
        shutil.rmtree(base, ignore_errors=True)
        sl.remove_cgroup(cgroups_path, created)
    os.makedirs(args.out, exist_ok=True)
    text = "".join(table(title, rows) + "\n" for title, rows in results.items())
    with open(os.path.join(args.out, "library_starts.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "library_starts.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
