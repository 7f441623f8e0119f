"""The beacon sender: RSRV_IS_UP datagrams so that clients notice a (re)started server.

The interval follows rsrv's ramp: 20 ms after start, doubling each time up to EPICS_CAS_BEACON_PERIOD.
"""
from __future__ import annotations

import logging

import trio

from caproto.constants import CA_MINOR_VERSION, Command
from caproto.messages import pack_header

log = logging.getLogger(__name__)

FIRST_INTERVAL = 0.02


def beacon(beacon_id: int, tcp_port: int) -> bytes:
    # rsrv leaves the address field 0 (clients take the datagram's source address)
    return pack_header(Command.RSRV_IS_UP, 0, CA_MINOR_VERSION, tcp_port, beacon_id & 0xFFFFFFFF, 0)


async def beacon_sender(sock: trio.socket.SocketType, destinations: list[tuple[str, int]], tcp_port: int,
                        period: float) -> None:
    """Send beacons to every destination until cancelled.

    The beacon ids run 0, 0, 1, 2, ... as rsrv's do: it numbers each beacon after the sleep that follows
    the previous one, starting from the zeroed first message."""
    interval = FIRST_INTERVAL
    beacon_id = 0
    next_id = 0
    while True:
        message = beacon(beacon_id, tcp_port)
        for destination in destinations:
            try:
                await sock.sendto(message, destination)
            except OSError as exc:
                log.debug("beacon to %s:%d failed: %s", destination[0], destination[1], exc)
        await trio.sleep(interval)
        interval = min(interval * 2, period)
        beacon_id = next_id
        next_id += 1
