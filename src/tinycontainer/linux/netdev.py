"""The loopback device of a new network namespace: it starts DOWN (netdevice(7)).

runc brings ``lo`` up in every new network namespace; containers expect 127.0.0.1 to work.
Done with SIOCGIFFLAGS/SIOCSIFFLAGS on an AF_INET socket, so no netlink is needed.
"""

from __future__ import annotations

import fcntl
import socket
import struct

from .._errors import KernelError

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def set_up(name: str = "lo") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        ifreq = struct.pack("16sH14x", name.encode(), 0)
        try:
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, ifreq))[1]
            fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), flags | IFF_UP))
        except OSError as exc:
            raise KernelError.from_oserror(exc, "ioctl(SIOCSIFFLAGS)", name) from None
