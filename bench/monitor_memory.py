"""Memory of the per-container monitor that keeps a detached `tcontainer run -d` container.

Starts N detached busybox containers with `tcontainer` under a throwaway --root, reads each
monitor's Rss and Pss from /proc/PID/smaps_rollup (Pss shares the interpreter's pages fairly
between the monitors), and compares with an idle `python3 -I -S` (the floor of any Python
monitor). For scale: conmon, podman's monitor, is a small C program of ~2 MB RSS. Run as root:

    sudo python3 bench/monitor_memory.py [--containers 5] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.rootfs import build_busybox_rootfs  # noqa: E402


def smaps(pid: int) -> tuple[float, float]:
    rss = pss = 0.0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == "Rss":
                rss = int(value.split()[0]) / 1024
            elif key == "Pss":
                pss = int(value.split()[0]) / 1024
    return rss, pss


def monitors() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if f.read().startswith(b"tcontainer-monitor"):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    tcontainer = [sys.executable, "-m", "tinycontainer"]
    work = Path(tempfile.mkdtemp(prefix="tc-monbench-"))
    os.chmod(work, 0o755)
    state = work / "state"
    before = set(monitors())
    try:
        rootfs = build_busybox_rootfs(str(work / "rootfs"))
        for i in range(args.containers):
            subprocess.run(
                [
                    *tcontainer,
                    "--root",
                    str(state),
                    "run",
                    "-d",
                    "--name",
                    f"mon{i}",
                    "--rootfs",
                    rootfs,
                    "--",
                    "sleep",
                    "600",
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
        time.sleep(1.0)
        mine = [p for p in monitors() if p not in before]
        figures = [smaps(p) for p in mine]
        floor = subprocess.Popen([sys.executable, "-I", "-S", "-c", "import time; time.sleep(30)"])
        time.sleep(0.5)
        floor_rss, floor_pss = smaps(floor.pid)
        floor.kill()
        floor.wait()
        result = {
            "containers": args.containers,
            "monitors_found": len(mine),
            "rss_mb_median": round(statistics.median(r for r, _ in figures), 2),
            "pss_mb_median": round(statistics.median(p for _, p in figures), 2),
            "pss_mb_total": round(sum(p for _, p in figures), 2),
            "idle_python_IS_rss_mb": round(floor_rss, 2),
            "idle_python_IS_pss_mb": round(floor_pss, 2),
        }
    finally:
        names = [f"mon{i}" for i in range(args.containers)]
        subprocess.run([*tcontainer, "--root", str(state), "rm", "-f", *names], capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "monitor_memory.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
