"""Black-box driving of an OCI runtime CLI: tcontainer-oci by default, any runc-compatible one
with OCI_RUNTIME=/path (the suite is run against runc to show its tests can fail)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from typing import Any

DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def runtime_command() -> list[str]:
    chosen = os.environ.get("OCI_RUNTIME", "tcontainer-oci")
    if chosen == "tcontainer-oci":
        return [sys.executable, "-m", "tinycontainer.cli.oci"]
    path = shutil.which(chosen) or chosen
    return [path]


def runtime_name() -> str:
    return os.path.basename(os.environ.get("OCI_RUNTIME", "tcontainer-oci"))


def base_config(rootfs: str, args: list[str] | None = None) -> dict[str, Any]:
    """The shape of `runc spec`, with the rootfs given and a read-only root."""
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args or ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": "tc-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


class OCIRuntime:
    def __init__(self, root: str, workdir: str, rootfs: str) -> None:
        self.root = root
        self.workdir = workdir
        self.rootfs = rootfs
        self.command = runtime_command()
        self.name = runtime_name()
        self.ids: list[str] = []

    def __call__(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 60,
        input: bytes | None = None,
        capture: bool = True,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[bytes]:
        cmd = [*self.command, "--root", self.root, *args]
        # Output goes to files, not pipes: a created container inherits the runtime's stdio
        # and keeps a pipe open long after the runtime exited (conmon reads them the same way).
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(
                cmd,
                input=input,
                timeout=timeout,
                check=False,
                stdout=out if capture else None,
                stderr=err if capture else None,
                **kwargs,
            )
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}: {result.stderr.decode(errors='replace')}"
            )
        return result

    def new_id(self) -> str:
        cid = "t" + uuid.uuid4().hex[:12]
        self.ids.append(cid)
        return cid

    def bundle(self, args: list[str] | None = None, config: dict[str, Any] | None = None) -> str:
        path = os.path.join(self.workdir, uuid.uuid4().hex[:8])
        os.makedirs(path)
        cfg = copy.deepcopy(config) if config is not None else base_config(self.rootfs, args)
        if args is not None:
            cfg["process"]["args"] = args
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(cfg, f)
        return path

    def run_container(
        self, args: list[str], config: dict[str, Any] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[bytes]:
        bundle = self.bundle(args, config)
        return self("run", "--bundle", bundle, self.new_id(), check=False, timeout=timeout)

    def state(self, cid: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self("state", cid).stdout)
        return out
