"""The cheaper paths of ``run``: the creator's start and delete without re-reading the state,
the lock on the state directory itself, work the parent does before fork for the init."""

from __future__ import annotations

import fcntl
import os
import select
from pathlib import Path

import pytest

from tinycontainer import oci
from tinycontainer._errors import ContainerNotFound, WrongStatus
from tinycontainer.linux import _consts as C
from tinycontainer.linux import caps, proc
from tinycontainer.linux.cgroups import _fs
from tinycontainer.runtime import _child, _store
from tinycontainer.runtime._container import Container
from tinycontainer.testing import FakeSyscalls

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _created(tmp_path: Path) -> tuple[_store.Store, dict[str, Any]]:
    """A stored container whose "init" is this test process (alive, with its start time)."""
    store = _store.Store(str(tmp_path / "root"))
    store.create_dir("c1")
    me = proc.read_stat(os.getpid())
    assert me is not None
    state: dict[str, Any] = {"id": "c1", "pid": os.getpid(), "pid_start": me.start_time, "bundle": "/b"}
    store.write("c1", state)
    _store.make_fifo(store.dir("c1"))
    return store, state


def _fake_init(fifo: str) -> tuple[int, int]:
    """A child holding the fifo's read end like a waiting init: it reads the byte and exits 0
    (3 when nothing came). Returns (pid, fd that says it has opened the fifo)."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 3
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            os.write(ready_w, b"x")
            # As the init does: a read before any writer opened would see EOF, poll waits.
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.poll(10_000)
            code = 0 if os.read(fd, 1) == b"0" else 3
        finally:
            os._exit(code)
    os.close(ready_w)
    return pid, ready_r


def test_the_creator_starts_without_reading_the_state_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, state = _created(tmp_path)
    container = Container(store, "c1", dict(state))
    pid, ready = _fake_init(_store.fifo_path(store.dir("c1")))
    try:
        assert os.read(ready, 1) == b"x"

        def no_reading(*_args: object) -> None:
            raise AssertionError("the state was read again")

        monkeypatch.setattr(Container, "refresh", no_reading)
        container.start(fresh_state=True)
    finally:
        os.close(ready)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # the "init" got its byte
    assert not os.path.exists(_store.fifo_path(store.dir("c1")))  # running from now on


def test_the_creator_start_says_why_when_the_fifo_is_not_waiting(tmp_path: Path) -> None:
    store, state = _created(tmp_path)
    # Nobody holds the read end, the pid in the state is alive: the container is "created"
    # by the state's facts, yet the init is not waiting - it exited.
    with pytest.raises(Exception, match="exited before start"):
        Container(store, "c1", dict(state)).start(fresh_state=True)
    # Started by someone else meanwhile: the fifo is gone, the status is running.
    os.unlink(_store.fifo_path(store.dir("c1")))
    with pytest.raises(WrongStatus, match="is running"):
        Container(store, "c1", dict(state)).start(fresh_state=True)
    # Deleted meanwhile: no directory to lock.
    store.remove("c1")
    with pytest.raises(ContainerNotFound):
        Container(store, "c1", dict(state)).start(fresh_state=True)


def test_the_lock_is_the_state_directory_itself(tmp_path: Path) -> None:
    store, _state = _created(tmp_path)
    directory = store.dir("c1")
    with store.locked("c1"):
        other = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    assert "lock" not in os.listdir(directory)  # no lock file to create and evict
    with pytest.raises(ContainerNotFound), store.locked("gone"):
        pass


def test_write_lines_writes_each_line_in_its_own_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "devices.allow").write_text("")
    writes: list[bytes] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting_write)
    _fs.write_lines(str(tmp_path), "devices.allow", ["c 1:3 rwm", "c 1:5 rwm"])
    assert writes == [b"c 1:3 rwm", b"c 1:5 rwm"]
    with pytest.raises(OSError, match=r"devices\.deny"):
        _fs.write_lines(str(tmp_path), "devices.deny", ["a", "b"])  # cgroupfs files are never created


def _process(**capabilities: list[str]) -> oci.Process:
    return oci.Process(
        args=["/bin/true"],
        cwd="/",
        user=oci.User(uid=0, gid=0),
        capabilities=oci.Capabilities(**capabilities),  # type: ignore[arg-type]
    )


def test_the_parent_works_out_the_capability_drops_before_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_child, "switch_user", lambda _user, _sys: None)  # real set*id calls
    names = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    process = _process(bounding=names, effective=names, permitted=names)
    computed = _child.ProcessPlan(process=process)
    _child.prepare_in_parent(computed)
    assert computed.bounding_drop is not None
    assert caps.cap_number("CAP_KILL") not in computed.bounding_drop
    assert caps.cap_number("CAP_SYS_ADMIN") in computed.bounding_drop
    assert computed.capability_masks == caps.capability_masks(process.capabilities)
    # the init then does exactly what it did working them out itself
    done_in_child, done_in_parent = FakeSyscalls(), FakeSyscalls()
    _child.drop_privileges(_child.ProcessPlan(process=process), done_in_child)
    _child.drop_privileges(computed, done_in_parent)
    assert done_in_parent.kernel_calls() == done_in_child.kernel_calls()
    assert ("prctl", C.PR_CAPBSET_DROP, caps.cap_number("CAP_SYS_ADMIN"), 0, 0, 0) in done_in_parent.kernel_calls()


def test_reset_signals_resets_what_was_ignored_at_fork() -> None:
    import signal

    previous = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        ignored = _child.ignored_signals()
        assert signal.SIGUSR1 in ignored and signal.SIGKILL not in ignored
        _child.reset_signals(ignored)
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGUSR1, previous)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # CPython's own setting


def test_the_bundle_config_is_read_whole_up_to_the_limit(tmp_path: Path) -> None:
    from tinycontainer.linux import proc

    for size in (0, 5, 65536, 200_001):
        data = os.urandom(size)
        (tmp_path / "f").write_bytes(data)
        assert proc.read_file(str(tmp_path / "f"), 64 << 20) == data
        assert proc.read_file(str(tmp_path / "f"), 1000) == data[:1000]
        assert proc.read_file(str(tmp_path / "f"), 65537) == data[:65537]
        assert proc.read_file(str(tmp_path / "f")) == data


def test_own_stat_is_read_once_per_process_and_matches_proc() -> None:
    import os

    from tinycontainer.linux import proc

    st = proc.read_stat(os.getpid())
    assert st is not None and proc.own_start_time() == st.start_time
    start, end = proc.argv_area()
    assert 0 < start < end
    assert os.getpid() in proc._OWN_STAT
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a forked child reads its own start time, not the cached one of its parent
        child = proc.read_stat(os.getpid())
        os.write(w, b"1" if child is not None and proc.own_start_time() == child.start_time else b"0")
        os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 1) == b"1"
    finally:
        os.close(r)
        os.waitpid(pid, 0)
