"""Pre-created containers for repeated :func:`~tinycontainer.run` of one spec (``WarmLauncher(pool_size=N)``).

A container start is mostly *create* (namespaces, cgroups, mounts, seccomp: the engine's
work up to the init blocking before execve(2)); *start* only releases the init. A pool keeps
up to ``size`` containers per key created ahead, each in its own supervisor. Its "created"
message carries the caller's pipe ends and the state dir, so a claim takes no round trip: read
that message, tell the supervisor (its clock starts), write the init's exec fifo
(``runtime.release_init``). Each claimed container is used once. The result is complete at its
"exited" (usage is read from the cgroup before the removal), so the supervisor's removal runs
after ``run()`` returned; the pool keeps following it, and the next claim, :meth:`wait_ready`
and :meth:`close` wait for it. Once its run is over, a background thread of the pool prepares
the replacement's bundle and launches its supervisor, which creates it in its own process
(after the run, so that the creation does not compete with the run for the CPU).

Why this is the same as a start on demand:

* the key is everything the container is made from: the :class:`~tinycontainer.Spec`, the
  command, the stdio *kinds*, the lib root and ``pull``. Only ``DEVNULL``, ``PIPE`` and
  ``stderr=STDOUT`` can be pooled: their fds are new per container anyway. The supervisor makes
  the pipes before it creates the container and passes the caller's ends with "created"
  (SCM_RIGHTS, unix(7)); they stay in flight in the caller's socket, in no fd table, until the
  claim reads them, so no other process of the caller (a fork) can hold a copy that would keep
  the container's stdin open. Inherited or given fds,
  ttys and explicit image stores are never pooled;
* limits run from the start: wall-time and cpu-time are counted from the claim;
* an image is resolved (and its overlay mounted) when the pooled container is made.

Nothing leaks: every pooled supervisor watches its channel like any other, so the caller's
death removes its container (EOF); :meth:`ContainerPool.close` (``WarmLauncher.close``)
removes all of them and waits; a key evicted (more than ``max_keys`` specs) is removed at once.
A pooled container that died or failed to be created is removed and the call starts a fresh
one instead (which reports the error, if it is one).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any

from ._communicate import Outcome
from ._launch import StdioFds, Supervisor
from ._stdio import DEVNULL, PIPE, STDOUT

if TYPE_CHECKING:
    from ._bundle import Bundle

StdioKinds = tuple[str, str, str]
# What a refill makes: the bundle, the supervisor's request, the lib root.
Maker = Callable[[], "tuple[Bundle, dict[str, Any], str]"]
Launch = Callable[[dict[str, Any], StdioFds], Supervisor]
DEFAULT_MAX_KEYS = 4


def stdio_kinds(stdin: Any, stdout: Any, stderr: Any) -> StdioKinds | None:
    """The pool's name for these subprocess-style stdio arguments, None if they cannot be pooled."""
    kinds: list[str] = []
    for index, arg in enumerate((stdin, stdout, stderr)):
        if isinstance(arg, bool) or not isinstance(arg, int):
            return None
        if arg == PIPE:
            kinds.append("pipe")
        elif arg == DEVNULL:
            kinds.append("devnull")
        elif arg == STDOUT and index == 2:
            kinds.append("stdout")
        else:
            return None
    return (kinds[0], kinds[1], kinds[2])


@dataclass
class Pooled:
    supervisor: Supervisor
    bundle: Bundle
    lib_root: str
    # Events read before the claim (wait_ready): "created", or how it failed.
    outcome: Outcome = field(default_factory=Outcome)
    # Held by whoever reads its channel (a claim, wait_ready): one reader at a time.
    reading: threading.Lock = field(default_factory=threading.Lock)

    @property
    def settled(self) -> bool:
        o = self.outcome
        return o.created_pid is not None or o.error is not None or o.exited is not None or o.removed


@dataclass
class Claimed:
    """A pooled container handed to one caller: started, with the caller's pipe ends."""

    supervisor: Supervisor
    bundle: Bundle
    lib_root: str
    parent_fds: list[int | None]
    outcome: Outcome
    refill: Callable[[], None]
    # After its "exited" (usage read from the cgroup before the removal): the supervisor's
    # removal finishes in the background, awaited by wait_ready(), close() and later claims.
    remove_later: Callable[[], None]


@dataclass
class Removing:
    """A claimed container whose supervisor is removing it (cgroups, state, bundle) after
    having reported its exit."""

    supervisor: Supervisor
    bundle: Bundle
    lib_root: str
    error: bool = False

    def poll(self, timeout: float | None) -> bool:
        """Read the supervisor's last messages; True once it is done (removed or gone)."""
        from ._channel import recv

        sock = self.supervisor.sock
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                readable, _, _ = select.select([sock], [], [], left)
                if not readable:
                    return False
                message = recv(sock)
            except Exception:
                message = None
            if message is None:
                self.error = True  # no "removed": make sure
                return True
            if message.get("event") == "removed":
                self.error = message.get("error") is not None
                return True

    def finish(self) -> None:
        from ._api import force_cleanup
        from ._communicate import finish_supervisor

        with contextlib.suppress(Exception):
            finish_supervisor(self.supervisor, removed=not self.error)
        if self.error:
            with contextlib.suppress(Exception):
                force_cleanup(self.lib_root, self.bundle.container_id, self.bundle.path)


class ContainerPool:
    def __init__(self, launch: Launch, size: int, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.size = size
        self.max_keys = max_keys
        self._launch = launch
        self._lock = threading.Lock()
        self._queues: OrderedDict[Hashable, deque[Pooled]] = OrderedDict()
        self._filling: dict[Hashable, int] = {}
        self._closed = False
        self.owner = os.getpid()
        # Refills run on one background thread: a run() returns without waiting for its
        # replacement's bundle and launch (a few ms); creating it is the supervisor's work anyway.
        self._jobs: SimpleQueue[tuple[Hashable, Maker, StdioKinds] | None] = SimpleQueue()
        self._filler: threading.Thread | None = None
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._removing: list[Removing] = []

    def pooled(self, key: Hashable) -> int:
        """How many containers wait for ``key`` (created or still being created)."""
        with self._lock:
            return len(self._queues.get(key, ()))

    def claim(self, key: Hashable, make: Maker, kinds: StdioKinds, deadline: float | None) -> Claimed | None:
        """Take and start a pooled container for ``key``; None when there is none (the caller
        starts one on demand; the pool fills meanwhile). ``Claimed.refill`` launches the
        replacement: call it once the claimed container is done, so that its creation does
        not compete with the claimed container's run for the CPU."""
        with self._lock:
            if self._closed:
                return None
            queue = self._queues.pop(key, None) or deque()
            self._queues[key] = queue  # most recently used last
            entry = queue.popleft() if queue else None
            evicted = self._evict()
        _remove_all(evicted)

        def refill() -> None:
            self.refill_later(key, make, kinds)

        if entry is None:
            refill()
            self.reap_removals(block=False)
            return None
        with entry.reading:
            claimed = self._await_claimed(entry, kinds, deadline, refill)
        if claimed is None:
            refill()
        # Earlier runs' removals that are done (after the release: the container runs meanwhile).
        self.reap_removals(block=False)
        return claimed

    def refill(self, key: Hashable, make: Maker, kinds: StdioKinds) -> None:
        """Launch containers for ``key`` until ``size`` wait or are being made."""
        with self._lock:
            if self._closed or key not in self._queues:
                return
            wanted = max(0, self.size - len(self._queues[key]) - self._filling.get(key, 0))
            self._filling[key] = self._filling.get(key, 0) + wanted
        self._fill(key, make, kinds, wanted)

    def refill_later(self, key: Hashable, make: Maker, kinds: StdioKinds) -> None:
        """:meth:`refill` on the pool's background thread."""
        with self._lock:
            if self._closed:
                return
            self._pending += 1
            if self._filler is None:
                self._filler = threading.Thread(target=self._fill_forever, name="tc-pool-filler", daemon=True)
                self._filler.start()
        self._jobs.put((key, make, kinds))

    def _fill_forever(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self.refill(*job)
            except Exception:
                pass  # the next claim starts a container on demand and tries again
            finally:
                with self._lock:
                    self._pending -= 1
                    self._idle.notify_all()

    def _remove_later(self, removing: Removing) -> None:
        with self._lock:
            if not self._closed:
                self._removing.append(removing)
                return
        # close() has run (another thread): nobody would wait for this one.
        from ._communicate import CLEANUP_TIMEOUT

        if not removing.poll(CLEANUP_TIMEOUT):
            removing.supervisor.kill()
            removing.error = True
        removing.finish()

    def reap_removals(self, *, block: bool, timeout: float | None = None) -> bool:
        """Finish the background removals that are done (``block``: wait for all, up to
        ``timeout``); False if some are still under way."""
        from ._communicate import CLEANUP_TIMEOUT

        with self._lock:
            removing, self._removing = self._removing, []
        deadline = time.monotonic() + (CLEANUP_TIMEOUT if timeout is None else timeout)
        left: list[Removing] = []
        for item in removing:
            wait = max(0.0, deadline - time.monotonic()) if block else 0.0
            if item.poll(wait):
                item.finish()
            elif block and timeout is None:
                # The supervisor hangs: kill it, then remove what it left.
                item.supervisor.kill()
                item.error = True
                item.finish()
            else:
                left.append(item)
        if left:
            with self._lock:
                closed = self._closed
                if not closed:
                    self._removing[:0] = left
            if closed:
                # close() ran meanwhile (another thread) and did not see these.
                for item in left:
                    self._remove_later(item)
                left = []
        return not left

    def wait_ready(self, timeout: float) -> bool:
        """Wait until every pooled container is created (or failed) and every claimed one
        removed; False on timeout."""
        from ._channel import MAX_MESSAGE, recv

        deadline = time.monotonic() + timeout
        if not self.reap_removals(block=True, timeout=timeout):
            return False
        with self._lock:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                return False
            entries = [entry for queue in self._queues.values() for entry in queue]
        for entry in entries:
            if not entry.reading.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return False
            try:
                while not entry.settled:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    sock = entry.supervisor.sock
                    try:
                        readable, _, _ = select.select([sock], [], [], left)
                        if not readable:
                            return False
                        # A peek: "created" carries the pipes, which stay in the socket
                        # until the claim (a peek without room for them leaves them there).
                        data = sock.recv(MAX_MESSAGE, socket.MSG_PEEK)
                        message: dict[str, Any] | None = json.loads(data) if data else None
                        if message is not None and message.get("event") != "created":
                            message = recv(sock)  # how it failed: no fds
                    except OSError:
                        message = None
                    if message is None:
                        entry.outcome.removed = True  # the channel closed: it is gone
                    else:
                        entry.outcome.apply(message)
            finally:
                entry.reading.release()
        return True

    def _evict(self) -> list[Pooled]:
        out: list[Pooled] = []
        while len(self._queues) > self.max_keys:
            _, queue = self._queues.popitem(last=False)
            out.extend(queue)
        return out

    def _fill(self, key: Hashable, make: Maker, kinds: StdioKinds, count: int) -> None:
        made: list[Pooled] = []
        try:
            for _ in range(count):
                entry = self._make_one(make, kinds)
                if entry is None:
                    break
                made.append(entry)
        finally:
            with self._lock:
                self._filling[key] = max(0, self._filling.get(key, 0) - count)
                queue = self._queues.get(key)
                keep = not self._closed and queue is not None
                if keep and queue is not None:
                    queue.extend(made)
            if not keep:
                _remove_all(made)

    def _make_one(self, make: Maker, kinds: StdioKinds) -> Pooled | None:
        from ._api import force_cleanup

        try:
            bundle, request, lib_root = make()
        except Exception:
            return None  # the same error reaches the caller from its start on demand
        request = {**request, "autostart": False, "pool_stdio": list(kinds)}
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            supervisor = self._launch(request, (null, null, null))
        except Exception:
            force_cleanup(lib_root, bundle.container_id, bundle.path)
            return None
        finally:
            os.close(null)
        return Pooled(supervisor, bundle, lib_root)

    def _await_claimed(
        self, entry: Pooled, kinds: StdioKinds, deadline: float | None, refill: Callable[[], None]
    ) -> Claimed | None:
        from ._channel import MAX_MESSAGE

        outcome = entry.outcome
        sock = entry.supervisor.sock
        wanted_fds = sum(1 for kind in kinds if kind == "pipe")
        try:
            while outcome.error is None and outcome.exited is None and not outcome.removed:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                readable, _, _ = select.select([sock], [], [], timeout)
                if not readable:
                    break
                data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 3)
                message: dict[str, Any] = json.loads(data) if data else {}
                released = False
                try:
                    if message.get("event") == "created" and len(fds) == wanted_fds:
                        outcome.apply(message)
                        released = self._release(entry, message.get("release"))
                finally:
                    if not released:
                        for fd in fds:
                            os.close(fd)
                if released:
                    for fd in fds:
                        os.set_inheritable(fd, False)  # like os.pipe()'s (PEP 446)
                    it = iter(fds)
                    parent: list[int | None] = [next(it) if kind == "pipe" else None for kind in kinds]
                    removing = Removing(entry.supervisor, entry.bundle, entry.lib_root)
                    return Claimed(
                        entry.supervisor, entry.bundle, entry.lib_root, parent, outcome, refill,
                        functools.partial(self._remove_later, removing),
                    )  # fmt: skip
                break  # it failed, died or the channel closed: start one on demand
        except Exception:
            pass  # (OSError, ValueError, ChannelClosed): start one on demand
        _remove_all([entry])
        return None

    @staticmethod
    def _release(entry: Pooled, state_dir: Any) -> bool:
        """Start a created pooled container: release its init ourselves (one write into its
        exec fifo, no round trip through the supervisor), after telling the supervisor, whose
        wall-time clock starts then; or, when it gave no state dir (poststart hooks, which
        only a full ``start`` runs), let the supervisor start it. False if the init is gone."""
        if state_dir is None:
            entry.supervisor.send({"cmd": "claim", "start": True})
            return True
        from .runtime import release_init

        # The claim is queued before the init can run, so the supervisor reads it no later
        # than the init's exit (it serves commands before the exit) and reports "started".
        entry.supervisor.send({"cmd": "claim", "at": time.monotonic()})
        return release_init(str(state_dir))

    def close(self) -> None:
        """Remove every pooled container and wait until they are gone."""
        with self._lock:
            self._closed = True
            filler, self._filler = self._filler, None
        if filler is not None:
            self._jobs.put(None)
            filler.join()  # a refill under way removes what it made once it sees _closed
        with self._lock:
            entries = [entry for queue in self._queues.values() for entry in queue]
            self._queues.clear()
        _remove_all(entries)
        self.reap_removals(block=True)

    def forget(self) -> None:
        """In a forked child: the pooled containers are the parent's; drop our copies of their
        channels (closing a copy does not close the parent's) without telling them anything.
        Takes no lock: the parent's filler thread may have held it at the fork."""
        self._closed = True
        queues, self._queues = self._queues, OrderedDict()
        removing, self._removing = self._removing, []
        socks = [entry.supervisor.sock for queue in queues.values() for entry in queue]
        for sock in [*socks, *(item.supervisor.sock for item in removing)]:
            with contextlib.suppress(OSError):
                sock.close()


def _remove_all(entries: list[Pooled]) -> None:
    """Tell each supervisor to remove its container, then wait for all (in parallel: each
    removal takes a few ms), then make sure (a supervisor may have been killed)."""
    from ._api import force_cleanup
    from ._communicate import finish_supervisor

    for entry in entries:
        with contextlib.suppress(Exception):
            entry.supervisor.send({"cmd": "remove"})
    for entry in entries:
        with contextlib.suppress(Exception):
            finish_supervisor(entry.supervisor)
        with contextlib.suppress(Exception):
            force_cleanup(entry.lib_root, entry.bundle.container_id, entry.bundle.path)


__all__ = ["Claimed", "ContainerPool", "Pooled", "StdioKinds", "stdio_kinds"]
