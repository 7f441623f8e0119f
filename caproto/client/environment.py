"""The EPICS environment variables a CA client honours, read once into one settings object."""
from __future__ import annotations

import logging
import os
import socket
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from caproto.constants import DEFAULT_REPEATER_PORT, DEFAULT_SERVER_PORT

log = logging.getLogger(__name__)

Address = tuple[str, int]

# libca's defaults and lower bounds (envDefs / cac.cpp).
DEFAULT_CONN_TMO = 30.0
MIN_CONN_TMO = 0.1
DEFAULT_MAX_SEARCH_PERIOD = 300.0
MIN_MAX_SEARCH_PERIOD = 60.0


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        log.warning("%s=%r is not a number; using %g", name, text, default)
        return default
    if value < minimum:
        log.warning("%s=%r is below the minimum; using %g", name, text, minimum)
        return minimum
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        log.warning("%s=%r is not a port number; using %d", name, text, default)
        return default
    if not 0 < value < 65536:
        log.warning("%s=%r is out of range; using %d", name, text, default)
        return default
    return value


def parse_address_list(text: str, default_port: int) -> list[Address]:
    """``"host[:port] host[:port] ..."`` (blanks or commas between) as (host, port) pairs, in order."""
    found: list[Address] = []
    for item in text.replace(",", " ").split():
        host, _, port_text = item.partition(":")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            log.warning("bad port in address %r; ignored", item)
            continue
        if host and (host, port) not in found:
            found.append((host, port))
    return found


def _yes(env: Mapping[str, str], name: str) -> bool:
    # libca treats anything but "no" (any case) as yes
    return env.get(name, "YES").strip().upper() not in ("NO", "N")


@dataclass
class ClientSettings:
    """What the client's search, circuits and repeater registration need to know."""
    server_port: int = DEFAULT_SERVER_PORT
    repeater_port: int = DEFAULT_REPEATER_PORT
    addresses: list[Address] = field(default_factory=list)
    auto_addresses: bool = True
    name_servers: list[Address] = field(default_factory=list)
    connection_timeout: float = DEFAULT_CONN_TMO
    max_search_period: float = DEFAULT_MAX_SEARCH_PERIOD

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> ClientSettings:
        env = os.environ if env is None else env
        server_port = _port(env, "EPICS_CA_SERVER_PORT", DEFAULT_SERVER_PORT)
        return cls(
            server_port=server_port,
            repeater_port=_port(env, "EPICS_CA_REPEATER_PORT", DEFAULT_REPEATER_PORT),
            addresses=parse_address_list(env.get("EPICS_CA_ADDR_LIST", ""), server_port),
            auto_addresses=_yes(env, "EPICS_CA_AUTO_ADDR_LIST"),
            name_servers=parse_address_list(env.get("EPICS_CA_NAME_SERVERS", ""), server_port),
            connection_timeout=_number(env, "EPICS_CA_CONN_TMO", DEFAULT_CONN_TMO, MIN_CONN_TMO),
            max_search_period=_number(env, "EPICS_CA_MAX_SEARCH_PERIOD", DEFAULT_MAX_SEARCH_PERIOD,
                                      MIN_MAX_SEARCH_PERIOD),
        )

    def search_addresses(self) -> list[Address]:
        """Where UDP searches go: the address list, then every interface's broadcast address if auto."""
        found = list(self.addresses)
        if self.auto_addresses:
            for host in broadcast_addresses():
                if (host, self.server_port) not in found:
                    found.append((host, self.server_port))
        return found


_SIOCGIFBRDADDR = 0x8919  # Linux ioctl: an interface's IPv4 broadcast address


def broadcast_addresses() -> list[str]:
    """Every interface's IPv4 broadcast address (the limited broadcast address where we cannot ask)."""
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
                continue  # no IPv4 broadcast on this interface (loopback, tunnels)
            address = socket.inet_ntoa(reply[20:24])
            if address != "0.0.0.0" and address not in found:
                found.append(address)
    return found or ["255.255.255.255"]
