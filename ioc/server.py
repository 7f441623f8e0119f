"""The IOC: one nursery that owns every task the server runs.

    serve(database, settings)
      ├── database.run()          scan tasks, PINI, simulated devices
      ├── search_responder() × N  one per UDP socket (interface)
      ├── beacon_sender()
      └── TCP listeners ──► Circuit.run() per client (ioc.tcp)

Cancelling the nursery (Ctrl-C, SIGTERM, a test leaving its scope) stops everything; each task cleans up
in ``finally`` blocks.
"""
from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass, field

import trio

from caproto.client.netif import broadcast_addresses

from .beacons import beacon_sender
from .environment import ServerSettings
from .tcp import Circuit
from .udp import search_responder

log = logging.getLogger(__name__)


@dataclass
class ServerInfo:
    """What a started server reports to whoever started it (tests, the CLI)."""
    tcp_port: int
    udp_port: int
    interfaces: list[str]
    circuits: set[Circuit] = field(default_factory=set)


async def _open_tcp_listeners(interfaces: list[str], port: int) -> list[trio.SocketListener]:
    try:
        listeners = []
        for host in interfaces:
            listeners.extend(await trio.open_tcp_listeners(port, host=host))
        return listeners
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or port == 0:
            raise
        # Another IOC owns the port on this host: as rsrv does, take any free port and announce it in
        # search replies; the UDP search port is shared.
        log.warning("TCP port %d is in use; serving on an ephemeral port", port)
        for listener in listeners:
            await listener.aclose()
        return await _open_tcp_listeners(interfaces, 0)


def _open_udp_socket(host: str, port: int) -> trio.socket.SocketType:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Several IOCs on one host share the search port, as C IOCs do.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    return sock


async def serve(database, settings: ServerSettings | None = None, *,
                task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``database`` over Channel Access until cancelled."""
    settings = settings or ServerSettings.from_environment()
    listeners = await _open_tcp_listeners(settings.interfaces, settings.port)
    tcp_port = listeners[0].socket.getsockname()[1]
    udp_port = settings.port or tcp_port
    udp_sockets = []
    beacon_sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    beacon_sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    destinations = list(settings.beacon_addresses)
    if settings.auto_beacon_addresses:
        destinations += [(address, settings.beacon_port) for address in broadcast_addresses()]
    info = ServerInfo(tcp_port=tcp_port, udp_port=udp_port, interfaces=list(settings.interfaces))

    async def handle(stream: trio.SocketStream) -> None:
        circuit = Circuit(stream, database, tcp_port, settings.max_array_bytes)
        info.circuits.add(circuit)
        try:
            await circuit.run()
        except* Exception:
            # A bug met by one client must not take the IOC down for everyone else.
            log.exception("circuit from %s failed; closed", circuit.peer)
        finally:
            info.circuits.discard(circuit)

    try:
        for host in settings.interfaces:
            sock = _open_udp_socket(host, udp_port)
            await sock.bind((host, udp_port))
            udp_sockets.append(sock)
        async with trio.open_nursery() as nursery:
            await nursery.start(database.run)
            for sock in udp_sockets:
                nursery.start_soon(search_responder, sock, database, tcp_port, settings.ignore_addresses)
            nursery.start_soon(beacon_sender, beacon_sock, destinations, tcp_port, settings.beacon_period)
            nursery.start_soon(trio.serve_listeners, handle, listeners)
            log.info("serving %d PVs on TCP port %d (search port %d, interfaces %s)",
                     len(database.pv_names()), tcp_port, udp_port, " ".join(settings.interfaces))
            task_status.started(info)
    finally:
        for sock in udp_sockets:
            sock.close()
        beacon_sock.close()
