"""What the v1 and v2 drivers share: directory bookkeeping, process lists, kill and destroy."""

from __future__ import annotations

import errno
import os
import posixpath

from ..._errors import KernelError
from . import _fs
from ._layout import parse_proc_cgroup


class BaseManager:
    version = "?"

    def __init__(self, cgroup: str, *, created: list[str] | None, rootless: bool, proc: str) -> None:
        self.cgroup = cgroup
        self.rootless = rootless
        self.proc = proc
        # Directories this manager made, top-down; destroy removes exactly these.
        self._created: list[str] = list(created or [])

    # -- subclasses provide
    def paths(self) -> dict[str, str]:
        raise NotImplementedError

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def _process_dir(self) -> str:
        raise NotImplementedError

    # -- shared
    def _directories(self) -> list[str]:
        """Each distinct directory once (co-mounted v1 controllers share one)."""
        return sorted(set(self.paths().values()))

    def _chain(self, mountpoint: str, directory: str) -> list[str]:
        """``directory`` and its ancestors below ``mountpoint``, top-down."""
        top = mountpoint.rstrip("/")
        if directory.startswith(top + "/") and "/." not in directory and "//" not in directory:
            # The usual case, a clean path below the mount point: no relpath (abspath, split
            # and commonprefix of both, on every create) to find what is below it.
            below: list[str] = []
            path = top
            for part in directory[len(top) + 1 :].split("/"):
                if part:
                    path = f"{path}/{part}"
                    below.append(path)
            return below
        rel = posixpath.relpath(directory, mountpoint)
        chain: list[str] = []
        current = mountpoint
        for part in rel.split("/"):
            if part in ("", "."):
                continue
            current = posixpath.join(current, part)
            chain.append(current)
        return chain

    def _mkdirs(self, mountpoint: str, directory: str) -> list[str]:
        """Make ``directory`` and its missing ancestors below ``mountpoint``; those made, top-down.

        The deepest one first: usually only the container's own cgroup is missing, and then
        one mkdir(2) does, instead of a failed mkdir and a stat per ancestor (3 per hierarchy
        here, 9 hierarchies, on every create). ENOENT means its parent is missing too."""
        chain = self._chain(mountpoint, directory)
        if not chain:
            return []
        start = len(chain) - 1
        while True:
            try:
                first = _fs.mkdir(chain[start])
                break
            except KernelError as exc:
                if exc.errno != errno.ENOENT or start == 0:
                    raise
                start -= 1
        made = [chain[start]] if first else []
        for path in chain[start + 1 :]:
            if _fs.mkdir(path):
                made.append(path)
        for path in made:
            if path not in self._created:
                self._created.append(path)
        return made

    def _write_procs(self, directory: str, pid: int) -> None:
        _fs.write(directory, "cgroup.procs", str(pid))

    def _proc_cgroup_text(self, pid: int) -> str:
        # Plain read(2)s: open() would add fstat, ioctl and lseek calls to every check.
        return _fs.read(f"{self.proc}/{pid}", "cgroup")

    def _membership(self, pid: int) -> tuple[dict[str, str], str | None]:
        member = parse_proc_cgroup(self._proc_cgroup_text(pid))
        return member.v1, member.unified

    def pids(self) -> list[int]:
        """Every process in the cgroup and in cgroups beneath it, sorted."""
        found: set[int] = set()
        top = self._process_dir()
        if not os.path.isdir(top):
            return []
        for directory, _subdirs, _files in os.walk(top):
            text = _fs.read_optional(directory, "cgroup.procs")
            for line in (text or "").split():
                found.add(int(line))
        return sorted(found)

    def kill_all(self, sig: int) -> None:
        # Frozen processes cannot fork, so no child escapes between reading cgroup.procs and
        # signalling; the signal is delivered on thaw (SIGKILL even while frozen).
        self.freeze()
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    continue
                except OSError as exc:
                    raise KernelError.from_oserror(exc, "kill", f"pid {pid}") from None
        finally:
            self.thaw()

    def destroy(self) -> None:
        """Remove the container's cgroup(s) and the ancestors this manager created; idempotent.

        The container's own (leaf) cgroup goes even when this manager did not record making
        it (a state saved before create(), or a cgroup left by a crashed run): path
        resolution never lets the leaf be the caller's cgroup, an ancestor of it, or the root.
        Ancestors are removed only when this manager created them, and only when empty.
        """
        # What is left is known from the rmdir(2) results: no stat(2) per directory afterwards.
        left: set[str] = set()
        targets = self._directories()
        for path in targets:
            if not _fs.remove_tree(path):
                left.add(path)
        leaves = set(targets)
        for path in reversed(self._created):
            # An ancestor we made: another container may have a cgroup in it by now.
            if path not in leaves and not _fs.remove_dir(path):
                left.add(path)
        self._created = [p for p in self._created if p in left]

    def _ensure_moved(self, pid: int, ok: bool, detail: str) -> None:
        if not ok:
            raise KernelError(errno.EIO, "write", f"{self._process_dir()}/cgroup.procs", detail)
