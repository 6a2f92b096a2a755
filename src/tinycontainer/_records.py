"""What ``tcontainer`` remembers about its containers: ids, names, status, exit codes.

The engine (``tinycontainer.runtime``) forgets a container once it is deleted; docker-style
containers outlive their process (``ps -a``, ``logs``, ``restart``, ``rm``). Each one has a
directory ``<lib>/containers/<id>/`` holding ``record.json`` (written with temp file + rename(2),
so readers never see half a file; changed under an exclusive flock(2) on the directory), the bundle
and the log. Names are symlinks ``<lib>/names/<name> -> <id>``: symlink(2) fails with EEXIST
when the name exists, so of several concurrent CLIs wanting one name exactly one wins.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._errors import ContainerNotFound, SpecError, StateError
from .linux import proc
from .runtime._store import locked_dir, write_atomic

RECORD_FILE = "record.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_ID_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StateDirs:
    """``lib``: records, bundles, logs, images (survives reboots); ``run``: the engine's state
    (tmpfs: a reboot kills every container, so its state must go too)."""

    lib: str
    run: str

    @classmethod
    def default(cls, root: str | None = None) -> StateDirs:
        if root:
            root = os.path.abspath(root)
            return cls(lib=root, run=os.path.join(root, "run"))
        if os.geteuid() == 0:
            return cls(lib="/var/lib/tcontainer", run="/run/tcontainer")
        data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        from ._unprivileged import user_runtime_dir

        # Not a bare /tmp path: another user could have planted it (user_runtime_dir checks).
        return cls(lib=os.path.join(data, "tcontainer"), run=os.path.join(user_runtime_dir(), "tcontainer"))

    @property
    def containers(self) -> str:
        return os.path.join(self.lib, "containers")

    @property
    def names(self) -> str:
        return os.path.join(self.lib, "names")

    @property
    def images(self) -> str:
        return os.path.join(self.lib, "images")

    @property
    def engine(self) -> str:
        return os.path.join(self.run, "engine")


@dataclass
class Record:
    id: str
    name: str
    created: str
    command: list[str] = field(default_factory=list)
    image: str = ""
    """the reference as given (empty for --rootfs or the host's root)"""
    image_id: str = ""
    rootfs: str = ""
    """the --rootfs directory, when one was given"""
    spec: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    auto_remove: bool = False
    tty: bool = False
    interactive: bool = False
    stop_signal: str = "SIGTERM"
    stop_timeout: float = 10.0
    log_max_size: int = 10 << 20
    log_max_files: int = 3
    init: bool = False
    """run a reaper as PID 1 (``--init``)"""
    state: str = "created"
    """created | running | exited | removing"""
    pid: int = 0
    pid_start: int = 0
    monitor_pid: int = 0
    monitor_start: int = 0
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""
    restart_count: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def monitor_alive(self) -> bool:
        return bool(self.monitor_pid) and proc.is_alive(self.monitor_pid, self.monitor_start)

    def process_alive(self) -> bool:
        return bool(self.pid) and proc.is_alive(self.pid, self.pid_start)

    @property
    def live_state(self) -> str:
        """The stored state checked against the processes: ``running`` whose monitor died
        (SIGKILL, OOM, reboot) is ``dead`` until ``tcontainer gc`` tidies it up."""
        if self.state in ("running", "created") and self.monitor_pid and not self.monitor_alive():
            return "dead"
        return self.state


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise SpecError(
            f"invalid container name {name[:80]!r}: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    return name


_ADJECTIVES = (
    "brave", "busy", "calm", "clever", "cosy", "eager", "fast", "fond", "gentle", "happy", "jolly", "keen",
    "kind", "lucid", "merry", "nifty", "proud", "quick", "quiet", "sharp", "shy", "silly", "sleepy", "smart",
    "stoic", "swift", "tender", "tidy", "vivid", "wise", "witty", "zealous",
)
_NOUNS = (
    "ant", "badger", "bee", "bison", "crane", "crow", "deer", "dingo", "eagle", "ferret", "finch", "fox",
    "gecko", "heron", "ibis", "koala", "lemur", "lynx", "marmot", "mole", "newt", "otter", "owl", "panda",
    "puffin", "quail", "raven", "seal", "shrew", "stoat", "swan", "tapir", "toad", "wren", "yak",
)


def generate_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}_{secrets.randbelow(1000)}"


class RecordStore:
    def __init__(self, dirs: StateDirs) -> None:
        self.dirs = dirs

    def dir(self, container_id: str) -> str:
        if not _ID_RE.match(container_id):
            raise SpecError(f"invalid container id {container_id[:80]!r}")
        return os.path.join(self.dirs.containers, container_id)

    # -------------------------------------------------------------- creation and names
    def create(self, name: str | None, fill: Callable[[Record], None] | None = None) -> Record:
        """A new record with a fresh 64-hex id and ``name`` (generated when None), saved."""
        for path in (self.dirs.containers, self.dirs.names):
            os.makedirs(path, mode=0o700, exist_ok=True)
        while True:
            container_id = secrets.token_hex(32)
            try:
                os.mkdir(os.path.join(self.dirs.containers, container_id), 0o700)
                break
            except FileExistsError:  # 2**-256: but never silently share a directory
                continue
        try:
            if name is None:
                for _ in range(50):
                    candidate = generate_name()
                    if self._claim_name(candidate, container_id):
                        name = candidate
                        break
                else:
                    raise StateError("could not generate a free container name: give one with --name")
            else:
                check_name(name)
                if not self._claim_name(name, container_id):
                    owner = self._name_owner(name) or "?"
                    raise StateError(
                        f"the name {name!r} is already used by container {owner[:12]}: "
                        f"choose another --name or remove that container (tcontainer rm {name})"
                    )
            record = Record(id=container_id, name=name, created=now_iso())
            if fill is not None:
                fill(record)
            self.save(record)
        except BaseException:
            if name is not None:
                self._release_name(name, container_id)
            shutil.rmtree(os.path.join(self.dirs.containers, container_id), ignore_errors=True)
            raise
        return record

    def _name_link(self, name: str) -> str:
        return os.path.join(self.dirs.names, name)

    def _name_owner(self, name: str) -> str | None:
        try:
            return os.readlink(self._name_link(name))
        except OSError:
            return None

    def _claim_name(self, name: str, container_id: str) -> bool:
        link = self._name_link(name)
        for _ in range(3):
            try:
                os.symlink(container_id, link)
                return True
            except FileExistsError:
                owner = self._name_owner(name)
                if owner and os.path.isdir(os.path.join(self.dirs.containers, owner)):
                    return False
                # A name left behind by a CLI killed between rmtree and unlink: reclaim it,
                # but only if it still points where we looked (another CLI may be faster).
                with contextlib.suppress(FileNotFoundError):
                    if self._name_owner(name) == owner:
                        os.unlink(link)
        return False

    def _release_name(self, name: str, container_id: str) -> None:
        if self._name_owner(name) == container_id:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._name_link(name))

    def rename(self, record: Record, new_name: str) -> Record:
        check_name(new_name)
        if new_name == record.name:
            return record
        if not self._claim_name(new_name, record.id):
            owner = self._name_owner(new_name) or "?"
            raise StateError(f"the name {new_name!r} is already used by container {owner[:12]}: choose another name")
        try:
            with self.locked(record.id):
                current = self.load(record.id)
                old = current.name
                current.name = new_name
                self.save(current)
        except BaseException:
            self._release_name(new_name, record.id)
            raise
        self._release_name(old, record.id)
        return current

    # -------------------------------------------------------------- reading and writing
    def load(self, container_id: str) -> Record:
        path = os.path.join(self.dir(container_id), RECORD_FILE)
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            raise ContainerNotFound(container_id) from None
        except ValueError:
            raise StateError(f"the record of container {container_id[:12]} is corrupt ({path})") from None
        return Record.from_dict(data)

    def save(self, record: Record) -> None:
        write_atomic(self.dir(record.id), RECORD_FILE, json.dumps(record.to_dict(), indent=1).encode())

    def locked(self, container_id: str) -> contextlib.AbstractContextManager[None]:
        return locked_dir(self.dir(container_id), container_id)

    def update(self, container_id: str, change: Callable[[Record], None]) -> Record:
        """Read, change and write one record under its lock."""
        with self.locked(container_id):
            record = self.load(container_id)
            change(record)
            self.save(record)
        return record

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.dirs.containers)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _ID_RE.match(n))

    def list(self) -> list[Record]:
        out = []
        for cid in self.ids():
            with contextlib.suppress(ContainerNotFound, StateError):
                out.append(self.load(cid))
        return sorted(out, key=lambda r: r.created, reverse=True)

    def resolve(self, ref: str) -> Record:
        """A container by name, full id, or unique id prefix (docker's order)."""
        if not ref:
            raise SpecError("empty container name or id")
        owner = self._name_owner(ref) if _NAME_RE.match(ref) else None
        if owner and _ID_RE.match(owner):
            with contextlib.suppress(ContainerNotFound):
                return self.load(owner)
        if _ID_RE.match(ref):
            with contextlib.suppress(ContainerNotFound):
                return self.load(ref)
        if re.fullmatch(r"[0-9a-f]{1,63}", ref):
            matches = [cid for cid in self.ids() if cid.startswith(ref)]
            if len(matches) > 1:
                raise StateError(
                    f"container id prefix {ref!r} is ambiguous ({len(matches)} containers match): give more characters"
                )
            if matches:
                with contextlib.suppress(ContainerNotFound):
                    return self.load(matches[0])
        raise StateError(f"no such container: {ref} (see tcontainer ps -a)")

    def remove(self, record: Record) -> None:
        """Forget the container: its directory and its name."""
        shutil.rmtree(self.dir(record.id), ignore_errors=True)
        self._release_name(record.name, record.id)
        # The record may have been renamed meanwhile by another CLI.
        with contextlib.suppress(OSError):
            for name in os.listdir(self.dirs.names):
                if self._name_owner(name) == record.id:
                    os.unlink(self._name_link(name))
