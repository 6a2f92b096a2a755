"""The loopback device of a new network namespace: it starts DOWN (netdevice(7)).

runc brings ``lo`` up in every new network namespace; containers expect 127.0.0.1 to work.
Done with SIOCGIFFLAGS/SIOCSIFFLAGS on an AF_INET socket, so no netlink is needed.
"""

from __future__ import annotations

import fcntl
import os
import sys

from .._errors import KernelError
from . import _libc

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def set_up(name: str = "lo") -> None:
    # A bare fd from _libc: the socket module would cost ~4 ms of every container start.
    sock = _libc.socket(_libc.AF_INET, _libc.SOCK_DGRAM | _libc.SOCK_CLOEXEC)
    try:
        try:
            flags = _ifreq_flags(fcntl.ioctl(sock, SIOCGIFFLAGS, _ifreq(name, 0)))
            fcntl.ioctl(sock, SIOCSIFFLAGS, _ifreq(name, flags | IFF_UP))
        except OSError as exc:
            raise KernelError.from_oserror(exc, "ioctl(SIOCSIFFLAGS)", name) from None
    finally:
        os.close(sock)


# struct ifreq with ifr_flags (netdevice(7)): a 16-byte name, a native short, padding to 32 bytes.
# Built by hand rather than with struct, which is not otherwise needed to start a container.
def _ifreq(name: str, flags: int) -> bytes:
    raw = name.encode()
    if len(raw) >= 16:  # IFNAMSIZ, the terminating NUL included
        raise ValueError(f"interface name too long: {name!r}")
    return raw.ljust(16, b"\0") + flags.to_bytes(2, sys.byteorder) + bytes(14)


def _ifreq_flags(ifreq: bytes) -> int:
    return int.from_bytes(ifreq[16:18], sys.byteorder)
