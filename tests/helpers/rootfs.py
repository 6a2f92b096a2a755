"""Minimal root filesystems for tests, built from Debian's busybox-static (no network needed)."""

from __future__ import annotations

import os
import shutil
import subprocess

BUSYBOX = "/bin/busybox"


def busybox_available() -> bool:
    # Debian's busybox-static: a static binary that runs in any rootfs without libraries.
    return os.path.exists(BUSYBOX) and os.access(BUSYBOX, os.X_OK)


def build_busybox_rootfs(dest: str) -> str:
    """A rootfs with /bin/busybox, a symlink per applet, and the directories containers expect."""
    for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "root", "home", "var", "run", "usr/bin", "sbin"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    target = os.path.join(dest, "bin", "busybox")
    shutil.copy2(BUSYBOX, target)
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for name in applets:
        link = os.path.join(dest, "bin", name)
        if not os.path.lexists(link) and name != "busybox":
            os.symlink("busybox", link)
    with open(os.path.join(dest, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(os.path.join(dest, "etc", "group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    return dest
