"""``--init``: PID 1 stays a small reaper instead of becoming the user's program.

A program that is PID 1 of a pid namespace gets no default signal actions (SIGTERM is ignored
unless it installs a handler, pid_namespaces(7)) and inherits every orphan, which it usually
never waits for. With ``--init`` the container's init (already non-dumpable, privileges
dropped, seccomp loaded) forks the program, forwards every catchable signal to it, reaps all
children, and exits with the program's status (128+N for a signal, like tini).
Selected by the annotation ``org.tinycontainer.init: "true"``.
"""

from __future__ import annotations

import os

from .._errors import suppressed

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:
    # The C module under signal.py: same functions and constants, without the IntEnum
    # wrappers whose import (enum, functools) costs every runtime command ~3 ms.
    import _signal as signal
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import NoReturn

ANNOTATION = "org.tinycontainer.init"
_UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}
_NOT_FORWARDED = {signal.SIGCHLD}


def run(exec_program: Callable[[], None], close_in_reaper: int = -1) -> NoReturn:
    child = os.fork()
    if child == 0:
        for sig in signal.valid_signals():
            if sig not in _UNCATCHABLE:
                with suppressed(OSError, ValueError):
                    signal.signal(sig, signal.SIG_DFL)
        try:
            exec_program()
        finally:
            os._exit(127)

    if close_in_reaper >= 0:
        # The exec fifo: `start` waits until every holder closed it, i.e. the program exec'd.
        os.close(close_in_reaper)

    def forward(signum: int, _frame: FrameType | None) -> None:
        with suppressed(ProcessLookupError):
            os.kill(child, signum)

    for sig in signal.valid_signals():
        if sig in _UNCATCHABLE or sig in _NOT_FORWARDED:
            continue
        with suppressed(OSError, ValueError):
            signal.signal(sig, forward)
    # The init blocked every signal before `start`; whatever arrived since is delivered now.
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    status = 0
    while True:
        try:
            pid, wstatus = os.wait()
        except ChildProcessError:
            break
        if pid == child:
            code = os.waitstatus_to_exitcode(wstatus)
            status = 128 - code if code < 0 else code
            # Orphans left behind die with the namespace when we exit.
            break
    os._exit(status)
