"""Obtain Debian's generic amd64 kernel and the modules the guest needs.

The generic flavour is required: Debian's ``-cloud-amd64`` kernel has no 9p, and bookworm ships
no virtiofsd, so the host root can only reach the guest through virtio-9p.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ._errors import VMUnavailable

META_PACKAGE = "linux-image-amd64"
# The guest needs 9p over virtio-pci for the host root and the job share, overlay for the
# writable tmpfs layer, and loop for the io.max/io.weight tests.
GUEST_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay", "loop")
_XZ_MAGIC = b"\xfd7zXZ\x00"


@dataclass(frozen=True)
class Kernel:
    """An unpacked kernel package: ``image`` is what qemu boots, ``tree`` the dpkg -x root."""

    version: str  # e.g. 6.1.0-56-amd64 (the /lib/modules name)
    package_version: str  # e.g. 6.1.192-2
    tree: Path
    image: Path

    @property
    def modules_dir(self) -> Path:
        return self.tree / "lib" / "modules" / self.version


def cache_dir() -> Path:
    return Path(os.environ.get("TC_VM_CACHE", "/var/cache/tinycontainer-vm"))


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 300) -> str:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise VMUnavailable(f"{argv[0]} not found: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise VMUnavailable(f"{' '.join(argv)} timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise VMUnavailable(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def _kernel_package_name() -> str:
    """The concrete linux-image-6.1.0-NN-amd64 that the meta package currently depends on."""
    out = _run(["apt-cache", "depends", META_PACKAGE], timeout=60)
    for line in out.splitlines():
        match = re.match(r"\s*Depends:\s*(linux-image-\S+-amd64)\s*$", line)
        if match:
            return match.group(1)
    raise VMUnavailable(f"apt-cache depends {META_PACKAGE} names no linux-image-*-amd64 package:\n{out}")


def _cached_debs(root: Path) -> list[Path]:
    return sorted(root.glob("linux-image-*-amd64_*_amd64.deb"), key=lambda p: p.stat().st_mtime)


def _download(root: Path) -> Path:
    """apt-get download the kernel; fall back to the newest cached .deb when apt cannot help (offline)."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        name = _kernel_package_name()
        existing = sorted(root.glob(f"{name}_*_amd64.deb"))
        if existing:
            return existing[-1]
        _run(["apt-get", "download", name], cwd=root, timeout=600)
        fetched = sorted(root.glob(f"{name}_*_amd64.deb"))
        if fetched:
            return fetched[-1]
        raise VMUnavailable(f"apt-get download {name} left no .deb in {root}")
    except VMUnavailable:
        cached = _cached_debs(root)
        if cached:
            return cached[-1]
        raise


def _extract_vmlinux(bzimage: Path, dest: Path) -> Path:
    """Decompress the ELF vmlinux from the bzImage's xz payload.

    Under TCG the uncompressed ELF boots about twice as fast (PVH entry, no in-guest
    decompression, measured in cgroup-v2-vm.md). Falls back to the bzImage if no xz stream is found.
    """
    data = bzimage.read_bytes()
    start = data.find(_XZ_MAGIC)
    while start >= 0:
        try:
            elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[start:])
        except lzma.LZMAError:
            start = data.find(_XZ_MAGIC, start + 1)
            continue
        if elf[:4] == b"\x7fELF":
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            tmp.write_bytes(elf)
            tmp.replace(dest)
            return dest
        start = data.find(_XZ_MAGIC, start + 1)
    return bzimage


def obtain_kernel(root: Path | None = None) -> Kernel:
    """Download (once) and unpack (once per version) the kernel; cached under ``root``."""
    root = root or cache_dir()
    deb = _download(root)
    match = re.match(r"linux-image-(.+-amd64)_(.+)_amd64\.deb$", deb.name)
    if not match:
        raise VMUnavailable(f"unexpected kernel package name {deb.name}")
    version, package_version = match.group(1), match.group(2)
    tree = root / f"{version}_{package_version}"
    done = tree / ".unpacked"
    if not done.exists():
        tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
        try:
            _run(["dpkg-deb", "-x", str(deb), str(tmp)], timeout=300)
            if tree.exists():
                shutil.rmtree(tree)
            tmp.rename(tree)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        bzimage = tree / "boot" / f"vmlinuz-{version}"
        _extract_vmlinux(bzimage, tree / "vmlinux")
        done.touch()
        _prune(root, keep_deb=deb, keep_tree=tree)
    vmlinux = tree / "vmlinux"
    image = vmlinux if vmlinux.exists() else tree / "boot" / f"vmlinuz-{version}"
    return Kernel(version=version, package_version=package_version, tree=tree, image=image)


def _prune(root: Path, keep_deb: Path, keep_tree: Path) -> None:
    """Drop other kernel versions: the cache holds one kernel (~70 MB .deb + ~400 MB unpacked)."""
    for deb in root.glob("linux-image-*_amd64.deb"):
        if deb != keep_deb:
            deb.unlink(missing_ok=True)
    for tree in root.glob("*-amd64_*"):
        if tree.is_dir() and tree != keep_tree:
            shutil.rmtree(tree, ignore_errors=True)


def _elf_section(data: bytes, wanted: str) -> bytes:
    """Return the bytes of one section of an ELF64 little-endian relocatable (.ko)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not an ELF64 little-endian object")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(index: int) -> tuple[int, int, int]:
        base = shoff + index * shentsize
        name_off = struct.unpack_from("<I", data, base)[0]
        offset, size = struct.unpack_from("<QQ", data, base + 0x18)
        return name_off, offset, size

    _, str_off, _ = header(shstrndx)
    for index in range(shnum):
        name_off, offset, size = header(index)
        end = data.index(b"\0", str_off + name_off)
        if data[str_off + name_off : end].decode() == wanted:
            return data[offset : offset + size]
    raise ValueError(f"no {wanted} section")


def module_depends(ko: Path) -> list[str]:
    """The ``depends=`` list of a module's .modinfo (the host has no kmod/modinfo)."""
    for field in _elf_section(ko.read_bytes(), ".modinfo").split(b"\0"):
        if field.startswith(b"depends="):
            return [name for name in field[len(b"depends=") :].decode().split(",") if name]
    return []


def _normalise(name: str) -> str:
    return name.replace("-", "_")


def resolve_modules(kernel: Kernel, wanted: tuple[str, ...] = GUEST_MODULES) -> list[Path]:
    """The .ko files for ``wanted`` and their dependencies, dependencies first (insmod order)."""
    index = {_normalise(ko.name.removesuffix(".ko")): ko for ko in kernel.modules_dir.rglob("*.ko")}
    builtin_file = kernel.modules_dir / "modules.builtin"
    builtin = {
        _normalise(Path(line).name.removesuffix(".ko"))
        for line in builtin_file.read_text().splitlines()
        if line.strip()
    }
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = _normalise(name)
        if name in seen or name in builtin:
            return
        if name in chain:
            raise VMUnavailable(f"module dependency cycle: {' -> '.join((*chain, name))}")
        ko = index.get(name)
        if ko is None:
            raise VMUnavailable(f"kernel {kernel.version} has no module {name} (needed by {chain or 'the guest'})")
        for dep in module_depends(ko):
            visit(dep, (*chain, name))
        seen.add(name)
        order.append(ko)

    for name in wanted:
        visit(name, ())
    return order
