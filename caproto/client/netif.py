"""Interface broadcast addresses: where searches (EPICS_CA_AUTO_ADDR_LIST) and beacons
(EPICS_CAS_AUTO_BEACON_ADDR_LIST) go by default. Shared by the client and the IOC."""
from __future__ import annotations

import logging
import socket
import struct
import sys

log = logging.getLogger(__name__)

_SIOCGIFBRDADDR = 0x8919  # Linux ioctl: an interface's IPv4 broadcast address


def broadcast_addresses() -> list[str]:
    """Every interface's IPv4 broadcast address; the limited broadcast address where we cannot ask."""
    if not sys.platform.startswith("linux"):
        return ["255.255.255.255"]
    import fcntl

    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(sock.fileno(), _SIOCGIFBRDADDR, request)
            except OSError:
                continue  # no IPv4 address or no broadcast on this interface (loopback, tunnels)
            address = socket.inet_ntoa(reply[20:24])
            if address != "0.0.0.0" and address not in found:
                found.append(address)
    if not found:
        log.debug("no interface reports a broadcast address; using 255.255.255.255")
        return ["255.255.255.255"]
    return found
