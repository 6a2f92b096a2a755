"""A throwaway podman installation in a temp dir that drives tcontainer-oci as its OCI runtime.

Set PODMAN_OCI_RUNTIME=/usr/sbin/runc (an absolute path) to run the same tests against runc.

Everything podman would normally keep under /var/lib/containers, /run/containers and /etc lives in
the temp dir (--root, --runroot, --tmpdir, CONTAINERS_CONF, CONTAINERS_STORAGE_CONF). Containers'
cgroups go beneath a --cgroup-parent under this process's own cgroup, removed at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from tests.helpers.rootfs import build_busybox_rootfs, busybox_available

CGROUP_ROOT = "/sys/fs/cgroup"
IMAGE = "localhost/bbox"

# CONTAINERS_CONF replaces Debian's containers.conf entirely, so the capabilities are restated.
# Both ulimits are listed: the list replaces the built-in one, which also has nproc.
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
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "tcontainer-oci"]
"""

STORAGE_CONF = """\
[storage]
driver = "vfs"
runroot = "{base}/run"
graphroot = "{base}/storage"
"""


def tcontainer_oci_launcher() -> str:
    """The pip console script: podman runs kill/delete/state with no PATH, so it must start
    its interpreter by absolute path (an `#!/usr/bin/env python3` script would fail there)."""
    path = os.path.join(sysconfig.get_path("scripts"), "tcontainer-oci")
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is not installed (pip install -e .)")
    with open(path, "rb") as f:
        shebang = f.readline()
    assert shebang.startswith(b"#!/") and b"/env " not in shebang, f"{path} needs an absolute interpreter: {shebang!r}"
    return path


def chosen_runtime() -> str:
    chosen = os.environ.get("PODMAN_OCI_RUNTIME")
    if chosen:
        assert os.path.isabs(chosen), "PODMAN_OCI_RUNTIME must be an absolute path"
        return chosen
    return tcontainer_oci_launcher()


def _own_cgroup(controller: str) -> str:
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path
    return "/"


def _hierarchies() -> list[str]:
    return sorted(
        os.path.join(CGROUP_ROOT, name)
        for name in os.listdir(CGROUP_ROOT)
        if os.path.isdir(os.path.join(CGROUP_ROOT, name)) and not os.path.islink(os.path.join(CGROUP_ROOT, name))
    )


def _missing_dirs(path: str) -> list[str]:
    """``path`` and those of its ancestors that do not exist yet, deepest first."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def _remove_cgroup_tree(top: str) -> None:
    # cgroupfs directories are removed with rmdir(2) only (their files cannot be unlinked);
    # a cgroup whose last task just exited can stay busy for a moment.
    for dirpath, _, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
        for _ in range(50):
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)


@dataclass
class Podman:
    base: str
    runtime: str
    cgroup_parent: str
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, *args: str) -> list[str]:
        return [
            "podman",
            "--root", f"{self.base}/storage",
            "--runroot", f"{self.base}/run",
            "--tmpdir", f"{self.base}/tmp",
            "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
            "--runtime", self.runtime,
            *args,
        ]  # fmt: skip

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 60, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            self.argv(*args),
            env=self.env,
            capture_output=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            check=False,
        )
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace")
            raise AssertionError(f"podman {' '.join(args)} -> {proc.returncode}\n{err}")
        return proc

    def run_args(self, *args: str) -> list[str]:
        """Arguments for `podman run` that every test uses (its cgroups go under our parent)."""
        return ["run", "--cgroup-parent", self.cgroup_parent, *args]

    def cgroup_dir(self, controller: str, container_id: str) -> str:
        return os.path.join(CGROUP_ROOT, controller, self.cgroup_parent.lstrip("/"), f"libpod-{container_id}")

    def remove_all(self) -> None:
        self("rm", "--all", "--force", "--time", "0", check=False, timeout=120)


def _unmount_beneath(base: str) -> None:
    # podman mounts a tmpfs per container for /dev/shm under --runroot; `rm` unmounts it, this
    # catches what a failed test left. Only mounts of our own temp dir are touched.
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p == base or p.startswith(base + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


@pytest.fixture(scope="session")
def podman() -> Iterator[Podman]:
    if os.geteuid() != 0:
        pytest.skip("podman tests run rootful")
    if shutil.which("podman") is None or shutil.which("conmon") is None:
        pytest.skip("podman and conmon are not installed (apt-get install podman)")
    if not busybox_available():
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    runtime = chosen_runtime()
    base = tempfile.mkdtemp(prefix="tc-podman-")
    # Absolute cgroupsPath: podman joins it under every hierarchy's root. Our own memory cgroup
    # is not the root on this kind of host, so the parent is placed beneath it for all of them.
    parent = os.path.join(_own_cgroup("memory"), f"tc-podman-{uuid.uuid4().hex[:8]}")
    created = {h: _missing_dirs(os.path.join(h, parent.lstrip("/"))) for h in _hierarchies()}
    try:
        for name in ("tmp", "run", "storage"):
            os.makedirs(os.path.join(base, name))
        conf = os.path.join(base, "containers.conf")
        with open(conf, "w") as f:
            f.write(CONTAINERS_CONF.format(base=base))
        storage_conf = os.path.join(base, "storage.conf")
        with open(storage_conf, "w") as f:
            f.write(STORAGE_CONF.format(base=base))
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": base,
            "CONTAINERS_CONF": conf,
            "CONTAINERS_STORAGE_CONF": storage_conf,
            "TMPDIR": os.path.join(base, "tmp"),
        }
        pm = Podman(base=base, runtime=runtime, cgroup_parent=parent, env=env)
        rootfs = build_busybox_rootfs(os.path.join(base, "rootfs"))
        tarball = os.path.join(base, "rootfs.tar")
        with tarfile.open(tarball, "w") as tar:
            tar.add(rootfs, arcname=".")
        pm("import", "--change", 'CMD ["/bin/sh"]', "--change", "ENV PATH=/bin", tarball, IMAGE, timeout=120)
        yield pm
        pm.remove_all()
    finally:
        _unmount_beneath(base)
        for hierarchy, missing in created.items():
            top = os.path.join(hierarchy, parent.lstrip("/"))
            if os.path.isdir(top):
                _remove_cgroup_tree(top)
            # Ancestors that did not exist before (podman makes the whole chain in every hierarchy).
            for d in missing[1:]:
                try:
                    os.rmdir(d)
                except OSError:
                    break
        shutil.rmtree(base, ignore_errors=True)
