"""Build the guest's initramfs: static busybox, a few modules and the stage-1 init.

Stage 1 mounts the host root read-only over virtio-9p, puts a tmpfs overlay on top, mounts the
job share and switch_roots into the overlay, where the job's own ``stage2.sh`` runs.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from pathlib import Path

from ._errors import VMUnavailable
from ._kernel import Kernel, resolve_modules

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
# The guest path of the job share and of the copy of busybox that stage 2 uses: on a tmpfs
# /run, so neither depends on what the host has at those paths.
GUEST_JOB_DIR = "/run/tc-vm/job"
GUEST_BUSYBOX = "/run/tc-vm/bin/busybox"
INIT_MARKER = "@@TC-VM-INIT@@"
FAIL_MARKER = "@@TC-VM-FAIL@@"

# Static busybox only: under TCG each dynamically linked exec costs ~70 ms, and the file must be
# called "busybox" because busybox picks the applet from argv[0] (a renamed copy as PID 1 exited
# and panicked the kernel; cgroup-v2-vm.md).
_STAGE1 = f"""#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo "{INIT_MARKER}"
fail() {{
    echo "{FAIL_MARKER} $*"
    $B sync
    $B poweroff -f
}}
for m in $($B cat /modules.list); do
    $B insmod "/modules/$m" || fail "insmod $m"
done
$B mkdir -p /lower /rw /newroot
# cache=loose: the host root is shared read-only and does not change under a test run, and
# page-caching it makes Python's many small reads cheap. The job share below must stay uncached.
$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /lower \\
    || fail "mount hostroot"
$B mount -t tmpfs -o mode=0755 tmpfs /rw
$B mkdir /rw/upper /rw/work
$B mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \\
    || fail "mount overlay"
$B mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
# The host's /tmp stays reachable (read-only) for a checkout that lives there; stage 2 binds it.
$B mkdir /newroot/tmp/.host-tmp
$B mount --bind /lower/tmp /newroot/tmp/.host-tmp || fail "bind the host's /tmp"
$B mount -t tmpfs -o mode=0755 tmpfs /newroot/run
$B mkdir -p /newroot{GUEST_JOB_DIR} /newroot{GUEST_BUSYBOX.rsplit("/", 1)[0]}
$B cp /bin/busybox /newroot{GUEST_BUSYBOX}
$B mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=512000 job /newroot{GUEST_JOB_DIR} \\
    || fail "mount job share"
$B mount --move /proc /newroot/proc
$B mount --move /sys /newroot/sys
$B mount --move /dev /newroot/dev
exec $B switch_root /newroot {GUEST_BUSYBOX} sh {GUEST_JOB_DIR}/stage2.sh
"""


def find_static_busybox() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        if path.is_file() and _is_static_elf(path.read_bytes()):
            return path
    raise VMUnavailable("no static busybox found (apt-get install busybox-static)")


def _is_static_elf(data: bytes) -> bool:
    """True for an ELF64 executable without a PT_INTERP program header (no dynamic loader)."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return False
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    pt_interp = 3
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != pt_interp for i in range(phnum))


class _Cpio:
    """A minimal writer of the "newc" cpio format the kernel unpacks (Documentation/driver-api/early-userspace)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        self._ino += 1
        header = b"070701" + b"".join(b"%08x" % value for value in fields)
        self._chunks.append(header + encoded + b"\0" * (-(len(header) + len(encoded)) % 4))
        self._chunks.append(data + b"\0" * (-len(data) % 4))

    def directory(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | perm, data)

    def char_device(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return b"".join(self._chunks)


def build_initramfs(kernel: Kernel) -> Path:
    """Build (or reuse) the initramfs for ``kernel``; the file name carries a hash of its content."""
    busybox = find_static_busybox().read_bytes()
    modules = resolve_modules(kernel)
    digest = hashlib.sha256(_STAGE1.encode() + busybox)
    for ko in modules:
        digest.update(ko.name.encode())
    target = kernel.tree / f"initramfs-{digest.hexdigest()[:16]}.cpio"
    if target.exists():
        return target
    cpio = _Cpio()
    for directory in ("bin", "dev", "proc", "sys", "modules"):
        cpio.directory(directory)
    # Without /dev/console in the archive the kernel starts init with no stdin/stdout.
    cpio.char_device("dev/console", 5, 1)
    cpio.file("bin/busybox", busybox, 0o755)
    cpio.file("init", _STAGE1.encode(), 0o755)
    cpio.file("modules.list", "".join(f"{ko.name}\n" for ko in modules).encode())
    for ko in modules:
        cpio.file(f"modules/{ko.name}", ko.read_bytes())
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(cpio.finish())
    tmp.replace(target)
    for stale in kernel.tree.glob("initramfs-*.cpio"):
        if stale != target:
            stale.unlink()
    return target
