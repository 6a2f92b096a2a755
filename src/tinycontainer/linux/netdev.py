"""The loopback device of a new network namespace: it starts DOWN (netdevice(7)).

runc brings ``lo`` up in every new network namespace; containers expect 127.0.0.1 to work.
Done with SIOCGIFFLAGS/SIOCSIFFLAGS on an AF_INET socket, so no netlink is needed.
"""

from __future__ import annotations

import fcntl
import os
import struct

from .._errors import KernelError
from . import _libc

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def set_up(name: str = "lo") -> None:
    # A bare fd from _libc: the socket module would cost ~4 ms of every container start.
    sock = _libc.socket(_libc.AF_INET, _libc.SOCK_DGRAM | _libc.SOCK_CLOEXEC)
    try:
        ifreq = struct.pack("16sH14x", name.encode(), 0)
        try:
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, ifreq))[1]
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), flags | IFF_UP))
        except OSError as exc:
            raise KernelError.from_oserror(exc, "ioctl(SIOCSIFFLAGS)", name) from None
    finally:
        os.close(sock)
