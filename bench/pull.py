#!/usr/bin/env python3
"""Pull throughput: tinycontainer against skopeo and podman, from a local docker-registry.

Run as root:  python3 bench/pull.py [--rounds 5] [--layers 3] [--layer-mb 100] [--out bench/results]

Builds one image of LAYERS layers of LAYER_MB MB of os.urandom data each (incompressible, so the
wire carries the full size), pushes it once to a docker-registry started on 127.0.0.1, then runs
interleaved rounds; every round runs each contender once in a fresh random order, into fresh
temp directories, so machine load hits all alike. Wall time is spawn to wait4(2); CPU is the
child's rusage (user + system, with the descendants it reaped). Ratios are medians of the
per-round ratios. sync(2) runs before every timed command, so each pays only for its own writes.

Contenders:
  download (blobs only, verified, stored):
    tc-download   the image client as `ImageStore.pull` uses it (manifest, config, parallel blob
                  downloads into the content store with sha256 checks), without unpacking
    skopeo        skopeo copy docker://REF oci:DIR (also stores blobs unchanged)
  unpack (from blobs already on disk):
    tc-unpack     the store's layer unpacking (parallel, contained applier, diff_id checks)
    umoci         umoci raw unpack of skopeo's layout (reference only: one flattened tree)
  end to end:
    tc-pull       `python3 -m tinycontainer --root DIR pull -q REF` (download + unpack, CLI start)
    podman        podman pull with its own --root/--runroot (overlay driver), in a private mount ns
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import io
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(REPO, "src"), REPO]

PAIRS = (("tc-download", "skopeo"), ("tc-unpack", "umoci"), ("tc-pull", "podman"))


@dataclass
class Sample:
    wall: float
    cpu: float


@dataclass
class Results:
    samples: dict[str, list[Sample]] = field(default_factory=dict)


def timed(argv: list[str], env: dict[str, str] | None = None) -> Sample:
    # Each round writes ~1.5 GB: without this, a contender pays for the writeback of the one
    # before it (wall times swung 2x). Outside the timed window.
    os.sync()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return Sample(wall, usage.ru_utime + usage.ru_stime)


# ------------------------------------------------------------------------------------ the image


def build_and_push(registry_url: str, layers: int, layer_mb: int) -> str:
    import gzip

    from tests.integration.image._builder import DOCKER_CONFIG, DOCKER_MANIFEST, Blob
    from tests.integration.image._registry_server import Pusher

    pusher = Pusher(registry_url)
    descriptors, diff_ids = [], []
    for index in range(layers):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            data = os.urandom(layer_mb * 1_000_000)
            info = tarfile.TarInfo(f"data/layer{index}.bin")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
            del data
        raw = buf.getvalue()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        blob = Blob(gzip.compress(raw, compresslevel=1, mtime=0), "application/vnd.docker.image.rootfs.diff.tar.gzip")
        del raw, buf
        pusher.blob("bench/pull", blob)
        descriptors.append(blob.descriptor())
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config_blob = Blob(json.dumps(config).encode(), DOCKER_CONFIG)
    pusher.blob("bench/pull", config_blob)
    manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": config_blob.descriptor(),
                "layers": descriptors}
    pusher.manifest("bench/pull", "latest", json.dumps(manifest).encode(), DOCKER_MANIFEST)
    return "bench/pull:latest"


# ------------------------------------------------------------------------------------ workers


def worker_download(ref: str, root: str) -> None:
    """What ImageStore.pull does up to (not including) the unpack of each layer."""
    from tinycontainer.image import ImageStore, parse_reference
    from tinycontainer.image._registry import RegistryClient

    store = ImageStore(root, credential_files=[])
    reference = parse_reference(ref)
    client = RegistryClient(reference, store.http)
    manifest = client.get_manifest(reference.object)
    store.content.put(manifest.digest, manifest.raw)
    jobs = store._plan(client, reference, manifest)

    def fetch(job: Any) -> None:
        with store.content.writer(job.blob) as out:
            client.download_blob(job.blob, job.size, out)

    with concurrent.futures.ThreadPoolExecutor(store.max_parallel) as pool:
        for future in [pool.submit(fetch, job) for job in jobs]:
            future.result()
    with open(os.path.join(root, "manifest-digest"), "w") as fh:
        fh.write(manifest.digest)


def worker_unpack(root: str) -> None:
    """The store's unpack of every layer whose blob worker_download left in ``root``."""
    from tinycontainer.image import ImageStore
    from tinycontainer.image._registry import Manifest

    store = ImageStore(root, credential_files=[])
    with open(os.path.join(root, "manifest-digest")) as fh:
        digest = fh.read().strip()
    raw = store.content.read(digest)
    manifest = Manifest(raw, digest, "", json.loads(raw))
    jobs = store._plan(None, digest, manifest)
    store._fetch_layers(None, jobs, lambda event: None)


# ------------------------------------------------------------------------------------ rounds


def run_round(order: list[str], ref: str, registry: str, work: str, res: Results) -> None:
    python = sys.executable
    dirs = {name: tempfile.mkdtemp(prefix=f"{name}-", dir=work) for name in ("tc-dl", "sk", "tc", "pd")}
    podman_run = tempfile.mkdtemp(prefix="tc-bp-")  # podman wants a runroot under 50 characters
    full = f"{registry}/{ref}"
    commands = {
        "tc-download": [python, __file__, "--worker-download", full, dirs["tc-dl"]],
        "skopeo": ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{full}", f"oci:{dirs['sk']}/l:img"],
        "tc-pull": [python, "-m", "tinycontainer", "--root", dirs["tc"], "pull", "-q", full],
        "podman": ["unshare", "-m", "--propagation", "private", "podman", "--root", os.path.join(dirs["pd"], "root"),
                   "--runroot", podman_run, "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
                   "--events-backend", "none", "pull", "-q", "--tls-verify=false", full],
    }
    later = {
        "tc-unpack": [python, __file__, "--worker-unpack", dirs["tc-dl"]],
        "umoci": ["umoci", "raw", "unpack", "--image", f"{dirs['sk']}/l:img", os.path.join(dirs["sk"], "rootfs")],
    }
    try:
        for name in order:
            if name in commands:
                res.samples.setdefault(name, []).append(timed(commands[name]))
        for name in [n for n in order if n in later]:
            res.samples.setdefault(name, []).append(timed(later[name]))
    finally:
        for path in dirs.values():
            shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(podman_run, ignore_errors=True)


def summarize(res: Results) -> dict[str, Any]:
    out: dict[str, Any] = {"contenders": {}, "ratios": {}}
    for name, samples in res.samples.items():
        out["contenders"][name] = {
            "wall_s_median": round(statistics.median(s.wall for s in samples), 3),
            "wall_s_min": round(min(s.wall for s in samples), 3),
            "cpu_s_median": round(statistics.median(s.cpu for s in samples), 3),
            "wall_s": [round(s.wall, 3) for s in samples],
            "cpu_s": [round(s.cpu, 3) for s in samples],
        }
    for ours, theirs in PAIRS:
        if ours in res.samples and theirs in res.samples:
            pairs = list(zip(res.samples[ours], res.samples[theirs], strict=True))
            out["ratios"][f"{ours} / {theirs}"] = {
                "wall": round(statistics.median(a.wall / b.wall for a, b in pairs), 3),
                "cpu": round(statistics.median(a.cpu / b.cpu for a, b in pairs), 3),
            }
    return out


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker-download":
        worker_download(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "--worker-unpack":
        worker_unpack(sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--layer-mb", type=int, default=100)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--only", action="append", help="run only these contenders (repeatable)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (podman's overlay storage and umoci's owners need it)")
    from tests.integration.image._registry_server import start_registry

    contenders = args.only or ["tc-download", "skopeo", "tc-pull", "podman", "tc-unpack", "umoci"]
    with tempfile.TemporaryDirectory(prefix="tc-bench-pull-") as work:
        registry = start_registry(os.path.join(work, "registry"), os.path.join(work, "storage"))
        try:
            started = time.perf_counter()
            ref = build_and_push(registry.url, args.layers, args.layer_mb)
            print(f"built and pushed {args.layers} x {args.layer_mb} MB in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)
            res = Results()
            for index in range(args.warmup + args.rounds):
                order = random.sample(contenders, len(contenders))
                round_res = Results() if index < args.warmup else res
                run_round(order, ref, registry.host, work, round_res)
                print(f"round {index + 1}/{args.warmup + args.rounds} done", file=sys.stderr)
        finally:
            registry.stop()
    summary = summarize(res)
    summary["setup"] = {
        "layers": args.layers, "layer_mb": args.layer_mb, "rounds": args.rounds, "warmup": args.warmup,
        "kernel": platform.release(), "python": platform.python_version(), "cpus": os.cpu_count(),
        "skopeo": _version(["skopeo", "--version"]), "podman": _version(["podman", "--version"]),
        "umoci": _version(["umoci", "--version"]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "pull.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
        fh.write("\n")
    print(json.dumps({"ratios": summary["ratios"], "contenders": {
        k: {m: v[m] for m in ("wall_s_median", "cpu_s_median")} for k, v in summary["contenders"].items()}},
        indent=2))
    return 0


def _version(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    except OSError:
        return "missing"


if __name__ == "__main__":
    sys.exit(main())
