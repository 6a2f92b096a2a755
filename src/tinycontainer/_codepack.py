"""One file with the compiled code of the modules ``tcontainer-oci`` runs, so a command imports
them without the import system's search for each of them.

podman and conmon start ``tcontainer-oci`` several times per container. Each of the ~40 modules a
command loads costs the import machinery ~50 µs of path searching, stat(2)s and pyc reading on
top of running the module (``bench/start_latency.py``): ~2 ms of every start. The pack is read
with one read(2) and serves those modules' code objects directly.

It is a cache in the same sense as ``__pycache__``: it lives there, holds the bytecode of the
package's own source files, and is checked against each source file (modification time and
size, as the pyc header is) before a module is served from it. A module whose source changed,
or that the pack does not hold, is imported the usual way, and the pack is rebuilt when the
command ends (``save``): it holds the modules the commands actually used. Nothing here ever
makes an import fail: a missing, unreadable, foreign or corrupt pack means the usual import.
Writing follows Python's pyc rules: not with ``sys.dont_write_bytecode``, atomically, and
silently not at all where the package directory is read-only.
"""

from __future__ import annotations

import marshal
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec, SourceFileLoader
    from types import CodeType, ModuleType
else:
    # The import system's own classes, from its frozen modules (importlib.machinery re-exports
    # them, at ~1 ms of imports: importlib/__init__.py loads warnings).
    from _frozen_importlib import ModuleSpec
    from _frozen_importlib_external import SourceFileLoader

PACKAGE = __name__.rpartition(".")[0]
_CODE_TYPE = type((lambda: None).__code__)  # types.CodeType, without importing types
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# The interpreter's full version: bytecode is only ever read by the interpreter that wrote it.
_MAGIC = b"tinycontainer-codepack-1 " + sys.version.encode() + b"\n"
# name -> (path relative to PACKAGE_DIR, is a package, source mtime_ns, source size, marshalled
# code). On disk: _MAGIC, the index's length (8 bytes), the index (marshal of name -> the entry
# with (offset, length) of its code in the blob area instead of the code), then the code blobs.
Entry = tuple[str, bool, int, int, "bytes | memoryview"]


def pack_path(package_dir: str = PACKAGE_DIR) -> str:
    return os.path.join(package_dir, "__pycache__", f"oci-codepack.{sys.implementation.cache_tag}.bin")


class _PackedLoader(SourceFileLoader):
    """A source loader whose code comes from the pack; everything else (get_source for
    tracebacks, resource readers, __file__) is the standard loader's."""

    def __init__(self, fullname: str, path: str, code: bytes | memoryview) -> None:
        super().__init__(fullname, path)
        self._packed_code = code

    def get_code(self, fullname: str) -> CodeType | None:
        try:
            code = marshal.loads(self._packed_code)
        except (ValueError, EOFError, TypeError):
            code = None
        if type(code) is not _CODE_TYPE:  # a damaged pack: the usual pyc or source
            return super().get_code(fullname)
        result: CodeType = code
        return result


class PackFinder:
    """A sys.meta_path finder for the modules of one package that the pack holds."""

    def __init__(self, entries: dict[str, Entry], package_dir: str) -> None:
        self.entries = entries
        self.package_dir = package_dir
        # Set when a module of the package was imported the usual way: the pack should change.
        self.missed = False

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        entry = self.entries.get(fullname)
        if entry is None:
            if fullname.startswith(PACKAGE + "."):
                self.missed = True
            return None
        relpath, is_package, mtime_ns, size, code = entry
        origin = os.path.join(self.package_dir, relpath)
        try:
            st = os.stat(origin)
        except OSError:
            self.missed = True
            return None
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            self.missed = True  # the source changed since the pack was written
            return None
        spec = ModuleSpec(fullname, _PackedLoader(fullname, origin, code), origin=origin, is_package=is_package)
        spec.has_location = True
        if is_package:
            spec.submodule_search_locations = [os.path.dirname(origin)]
        return spec


def install(package_dir: str = PACKAGE_DIR) -> PackFinder:
    """Put a finder for the pack first on sys.meta_path (an empty one when there is no usable
    pack: it still notes which modules the command imports, for ``save``)."""
    finder = PackFinder(_read(pack_path(package_dir)), package_dir)
    sys.meta_path.insert(0, finder)
    return finder


def save(finder: PackFinder) -> None:
    """Rewrite the pack if this command imported package modules it did not serve."""
    if not finder.missed or sys.dont_write_bytecode:
        return
    from ._errors import suppressed  # loaded by now, through the pack or not

    with suppressed(OSError):  # a read-only install, a full disk: the pack is only a cache
        write_pack(finder.package_dir, _loaded_modules(finder), finder.entries)


def _read(path: str) -> dict[str, Entry]:
    try:
        with open(path, "rb") as f:
            data = f.read()
        if not data.startswith(_MAGIC):
            return {}
        view = memoryview(data)
        start = len(_MAGIC) + 8
        index_end = start + int.from_bytes(data[len(_MAGIC) : start], "little")
        index = marshal.loads(view[start:index_end])
        if any(offset + length > len(data) - index_end for *_, offset, length in index.values()):
            return {}  # truncated
        # Slices of the one buffer read: a module's code is unmarshalled only if it is imported.
        return {
            name: (relpath, is_package, mtime_ns, size, view[index_end + offset : index_end + offset + length])
            for name, (relpath, is_package, mtime_ns, size, offset, length) in index.items()
        }
    except (OSError, ValueError, EOFError, TypeError):
        return {}


def _loaded_modules(finder: PackFinder) -> dict[str, str]:
    """name -> source path of the package's modules loaded from source files under package_dir."""
    root = finder.package_dir + os.sep
    loaded: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith(PACKAGE + ".") or name == __name__:
            continue  # the package and this module are imported before the finder is in place
        origin = getattr(getattr(module, "__spec__", None), "origin", None)
        if isinstance(origin, str) and origin.startswith(root) and origin.endswith(".py"):
            loaded[name] = origin
    return loaded


def write_pack(package_dir: str, modules: dict[str, str], previous: dict[str, Entry]) -> None:
    """Write a pack holding ``modules`` (name -> source path) and the still-current entries of
    ``previous``: the union of what the commands have needed."""
    entries: dict[str, Entry] = {}
    for name, entry in previous.items():
        fresh = _fresh_entry(name, os.path.join(package_dir, entry[0]), package_dir, entry)
        if fresh is not None:
            entries[name] = fresh
    for name, origin in modules.items():
        if name not in entries:
            made = _fresh_entry(name, origin, package_dir, None)
            if made is not None:
                entries[name] = made
    path = pack_path(package_dir)
    tmp = f"{path}.{os.getpid()}.tmp"
    # O_EXCL: a leftover of a crashed writer with our pid is not followed or reused.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        try:
            os.write(fd, _serialized(entries))
        finally:
            os.close(fd)
        os.replace(tmp, path)  # concurrent writers: each file is whole, the last one stays
    except BaseException:
        from ._errors import suppressed

        with suppressed(OSError):
            os.unlink(tmp)
        raise


def _serialized(entries: dict[str, Entry]) -> bytes:
    index: dict[str, tuple[str, bool, int, int, int, int]] = {}
    blobs: list[bytes] = []
    offset = 0
    for name, (relpath, is_package, mtime_ns, size, code) in sorted(entries.items()):
        index[name] = (relpath, is_package, mtime_ns, size, offset, len(code))
        blobs.append(bytes(code))
        offset += len(code)
    packed_index = marshal.dumps(index)
    return b"".join([_MAGIC, len(packed_index).to_bytes(8, "little"), packed_index, *blobs])


def _fresh_entry(name: str, origin: str, package_dir: str, old: Entry | None) -> Entry | None:
    try:
        st = os.stat(origin)
    except OSError:
        return None
    relpath = os.path.relpath(origin, package_dir)
    is_package = os.path.basename(origin) == "__init__.py"
    if old is not None and (old[2], old[3]) == (st.st_mtime_ns, st.st_size):
        return old
    code = _compiled(origin, st)
    return (relpath, is_package, st.st_mtime_ns, st.st_size, code)


def _compiled(origin: str, st: os.stat_result) -> bytes:
    """The module's bytecode: from its pyc when that matches the source (the check the import
    system makes, PEP 552 timestamp pycs), else compiled here."""
    import importlib.util

    try:
        with open(importlib.util.cache_from_source(origin), "rb") as f:
            pyc = f.read()
        flags = int.from_bytes(pyc[4:8], "little")
        if (
            pyc[:4] == importlib.util.MAGIC_NUMBER
            and flags == 0
            and int.from_bytes(pyc[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(pyc[12:16], "little") == st.st_size & 0xFFFFFFFF
        ):
            marshal.loads(pyc[16:])  # a truncated pyc raises here, not at import time
            return pyc[16:]
    except (OSError, ValueError, EOFError, TypeError):
        pass
    with open(origin, "rb") as f:
        source = f.read()
    return marshal.dumps(compile(source, origin, "exec", dont_inherit=True))
