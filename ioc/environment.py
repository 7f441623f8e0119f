"""The EPICS environment variables a CA server honours, read once into one settings object."""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from caproto.constants import DEFAULT_REPEATER_PORT, DEFAULT_SERVER_PORT

log = logging.getLogger(__name__)


def _port(env: Mapping[str, str], *names: str, default: int) -> int:
    for name in names:
        text = env.get(name, "").strip()
        if text:
            try:
                value = int(text)
            except ValueError:
                log.warning("%s=%r is not a port number; ignored", name, text)
                continue
            if 0 < value < 65536:
                return value
            log.warning("%s=%r is out of range; ignored", name, text)
    return default


def _addresses(text: str) -> list[str]:
    return [item for item in text.replace(",", " ").split() if item]


def _yes(env: Mapping[str, str], name: str, default: bool = True) -> bool:
    text = env.get(name, "").strip().upper()
    if not text:
        return default
    return text not in ("NO", "N", "FALSE", "0")


@dataclass
class ServerSettings:
    """What the IOC's network tasks need to know, as EPICS Base's rsrv reads it from the environment."""
    port: int = DEFAULT_SERVER_PORT
    interfaces: list[str] = field(default_factory=lambda: ["0.0.0.0"])
    beacon_addresses: list[tuple[str, int]] = field(default_factory=list)
    auto_beacon_addresses: bool = True
    beacon_period: float = 15.0
    beacon_port: int = DEFAULT_REPEATER_PORT
    ignore_addresses: frozenset[str] = frozenset()
    # None: grow buffers as needed (EPICS Base 7 behaviour); otherwise reject larger requests.
    max_array_bytes: int | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> ServerSettings:
        env = os.environ if env is None else env
        port = _port(env, "EPICS_CAS_SERVER_PORT", "EPICS_CA_SERVER_PORT", default=DEFAULT_SERVER_PORT)
        beacon_port = _port(env, "EPICS_CAS_BEACON_PORT", "EPICS_CA_REPEATER_PORT",
                            default=DEFAULT_REPEATER_PORT)
        interfaces = _addresses(env.get("EPICS_CAS_INTF_ADDR_LIST", "")) or ["0.0.0.0"]
        beacon_list = env.get("EPICS_CAS_BEACON_ADDR_LIST") or env.get("EPICS_CA_ADDR_LIST", "")
        auto = _yes(env, "EPICS_CAS_AUTO_BEACON_ADDR_LIST",
                    default=_yes(env, "EPICS_CA_AUTO_ADDR_LIST"))
        beacons = []
        for item in _addresses(beacon_list):
            host, _, p = item.partition(":")
            try:
                beacons.append((host, int(p) if p else beacon_port))
            except ValueError:
                log.warning("bad beacon address %r ignored", item)
        period_text = env.get("EPICS_CAS_BEACON_PERIOD") or env.get("EPICS_CA_BEACON_PERIOD") or "15"
        try:
            period = max(0.1, float(period_text))
        except ValueError:
            log.warning("EPICS_CAS_BEACON_PERIOD=%r is not a number; using 15", period_text)
            period = 15.0
        max_bytes_text = env.get("EPICS_CA_MAX_ARRAY_BYTES", "").strip()
        max_bytes = None
        if max_bytes_text:
            try:
                max_bytes = max(16384, int(max_bytes_text))
            except ValueError:
                log.warning("EPICS_CA_MAX_ARRAY_BYTES=%r is not a number; ignored", max_bytes_text)
        ignore = frozenset(_addresses(env.get("EPICS_CAS_IGNORE_ADDR_LIST", "")))
        return cls(port=port, interfaces=interfaces, beacon_addresses=beacons, auto_beacon_addresses=auto,
                   beacon_period=period, beacon_port=beacon_port, ignore_addresses=ignore,
                   max_array_bytes=max_bytes)
