"""The numbers the runtime hard-codes (to spare the start-up the resource and termios extension
modules) are the ones this platform's Python knows."""

from __future__ import annotations

import resource
import termios

from tinycontainer.linux import _consts as C


def test_rlimit_numbers_match_the_resource_module() -> None:
    checked = [name for name in C.RLIMIT_NUMBERS if hasattr(resource, name)]
    assert "RLIMIT_NOFILE" in checked and "RLIMIT_NPROC" in checked
    for name in checked:
        assert C.RLIMIT_NUMBERS[name] == getattr(resource, name), name
    assert C.RLIM_INFINITY == (1 << 64) - 1
    assert resource.RLIM_INFINITY in (-1, C.RLIM_INFINITY)  # the same all-ones value, signed or not


def test_tty_ioctls_match_termios() -> None:
    assert C.TIOCSCTTY == termios.TIOCSCTTY
    assert C.TIOCSWINSZ == termios.TIOCSWINSZ


def test_ifreq_is_the_layout_struct_packs() -> None:
    import struct

    from tinycontainer.linux import netdev

    assert netdev._ifreq("lo", 0x49) == struct.pack("16sH14x", b"lo", 0x49)
    assert netdev._ifreq_flags(struct.pack("16sH14x", b"eth0", 0x1043)) == 0x1043
