"""The EPICS environment variables a CA client honours, read once into one settings object."""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from caproto.constants import DEFAULT_REPEATER_PORT, DEFAULT_SERVER_PORT

from .netif import broadcast_addresses

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
