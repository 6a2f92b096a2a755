"""Signal names as runc accepts them: ``KILL``, ``SIGKILL``, ``9``, ``sigterm``, ``RTMIN+3``."""

from __future__ import annotations

from .._errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:
    # The C module under signal.py: same functions and constants, without the IntEnum
    # wrappers whose import (enum, functools) costs every runtime command ~3 ms.
    import _signal as signal


def parse_signal(text: str | int) -> int:
    if isinstance(text, int):
        value = text
    else:
        word = text.strip().upper()
        if word.isdigit():
            value = int(word)
        else:
            name = word if word.startswith("SIG") else "SIG" + word
            if name.startswith(("SIGRTMIN", "SIGRTMAX")):
                base = signal.SIGRTMIN if name.startswith("SIGRTMIN") else signal.SIGRTMAX
                offset = name[8:]
                try:
                    value = base + int(offset) if offset else int(base)
                except ValueError:
                    raise SpecError(f"unknown signal {text!r}") from None
            else:
                found = getattr(signal, name, None)
                if not isinstance(found, int) or name.startswith("SIG_"):
                    raise SpecError(f"unknown signal {text!r}")
                value = found
    if not 0 < value < 65:
        raise SpecError(f"signal number out of range: {text!r}")
    return value
