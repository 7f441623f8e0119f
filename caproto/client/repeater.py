"""The CA repeater: one UDP port per host where beacons arrive, fanned out to every registered client.

A client registers by sending REPEATER_REGISTER (or, as libca does, an empty datagram) from the UDP socket
it wants beacons on; the repeater answers REPEATER_CONFIRM there and from then on forwards every datagram
it receives (server beacons, mostly) to that socket. Clients are known by their port, as in EPICS Base's
``caRepeater``: a registration from a port already known re-confirms it.

Dead clients are pruned the way caRepeater prunes them: a send to a client whose socket is gone fails
(the kernel reports the ICMP port-unreachable on the next send through a connected socket), and a client
whose port can be bound again by us has released it. Every new registration also re-checks every client,
because some systems never report the ICMP error.
"""
from __future__ import annotations

import errno
import ipaddress
import logging
import socket as _stdlib_socket
import struct

import trio

from caproto.constants import Command
from caproto.errors import MalformedHeader
from caproto.messages import Header, RepeaterConfirmResponse, VersionRequest

log = logging.getLogger(__name__)

__all__ = ["Repeater", "run_repeater", "RepeaterAlreadyRunning"]

MAX_UDP_RECV = 0xFFFF

Address = tuple[str, int]


class RepeaterAlreadyRunning(OSError):
    """The repeater port is taken: another repeater (ours or caRepeater) serves this host."""


# An all-zero VERSION message: sent to the other clients on every registration so that a host without
# beacons still exercises (and so prunes) every client socket.
NOOP_MESSAGE = bytes(VersionRequest(priority=0, version=0))


def port_in_use(port: int) -> bool:
    """True when a UDP socket on this host holds ``port`` (the liveness test libca and caRepeater use)."""
    with _stdlib_socket.socket(_stdlib_socket.AF_INET, _stdlib_socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            log.warning("repeater: bind test of port %d failed: %s", port, exc)
        return False


def is_local_address(host: str) -> bool:
    """True for loopback and for addresses of this host's interfaces (we can bind to them)."""
    if ipaddress.IPv4Address(host).is_loopback:
        return True
    with _stdlib_socket.socket(_stdlib_socket.AF_INET, _stdlib_socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, 0))
        except OSError:
            return False
    return True


class _Client:
    """One registered client: a UDP socket connected to its address, so that send errors reach us."""

    def __init__(self, address: Address, sock: trio.socket.SocketType) -> None:
        self.address = address
        self.sock = sock

    async def send(self, data: bytes) -> bool:
        try:
            await self.sock.send(data)
        except ConnectionRefusedError:
            return False
        except OSError as exc:
            log.debug("repeater: send to %s:%d failed: %s", *self.address, exc)
            return False
        return True

    def close(self) -> None:
        self.sock.close()


class Repeater:
    """The registry of clients and the rules for what to forward where; owns no listening socket."""

    def __init__(self) -> None:
        self.clients: dict[int, _Client] = {}   # by port, as caRepeater identifies clients

    async def datagram_received(self, data: bytes, sender: Address) -> None:
        """Handle one datagram that arrived on the repeater port."""
        if not data:
            await self.register(sender)
            return
        try:
            header, size = Header.unpack_with_size(data)
        except MalformedHeader:
            header = None  # not a CA message: forwarded as it came, as caRepeater does
        if header is not None and header.command == Command.REPEATER_REGISTER:
            await self.register(sender)
            data = data[size:]
            if not data:
                return
        elif header is not None and header.command == Command.RSRV_IS_UP and header.parameter2 == 0:
            # a beacon that leaves its address to us: clients connect to where it came from
            filled = header._replace(parameter2=int(ipaddress.IPv4Address(sender[0])))
            data = filled.pack() + data[size:]
        await self.fan_out(data, sender)

    async def register(self, sender: Address) -> None:
        host, port = sender
        if not is_local_address(host):
            log.debug("repeater: registration from non-local %s:%d ignored", host, port)
            return
        client = self.clients.get(port)
        new = client is None
        if client is None:
            sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            try:
                await sock.connect(sender)
            except OSError as exc:
                sock.close()
                log.warning("repeater: cannot connect a socket to client %s:%d: %s", host, port, exc)
                return
            client = self.clients[port] = _Client(sender, sock)
            log.debug("repeater: new client %s:%d", host, port)
        if not await client.send(bytes(RepeaterConfirmResponse(repeater_address=host))):
            self._remove(client)
        await self.fan_out(NOOP_MESSAGE, sender)
        if new:
            self.verify_clients()

    async def fan_out(self, data: bytes, sender: Address) -> None:
        """Forward ``data`` to every client but its sender; prune clients that have gone away."""
        reached = 0
        for client in list(self.clients.values()):
            if client.address == sender:
                continue
            if await client.send(data):
                reached += 1
            elif not port_in_use(client.address[1]):
                self._remove(client)
        log.debug("repeater: forwarded %d bytes from %s:%d to %d client(s)", len(data), *sender, reached)

    def verify_clients(self) -> None:
        for client in list(self.clients.values()):
            if not port_in_use(client.address[1]):
                self._remove(client)

    def _remove(self, client: _Client) -> None:
        if self.clients.get(client.address[1]) is client:
            del self.clients[client.address[1]]
        client.close()
        log.debug("repeater: client %s:%d removed", *client.address)

    def close(self) -> None:
        for client in list(self.clients.values()):
            self._remove(client)


async def bind_repeater_socket(port: int, host: str = "") -> trio.socket.SocketType:
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    try:
        await sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise RepeaterAlreadyRunning(exc.errno, f"UDP port {port} is in use") from None
        raise
    return sock


def join_multicast_groups(sock: trio.socket.SocketType, addresses: list[str]) -> None:
    """Join the multicast groups among ``addresses`` (beacons sent to a group reach us then)."""
    for host in addresses:
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            continue
        if not address.is_multicast:
            continue
        request = struct.pack("4s4s", address.packed, bytes(4))  # ip_mreq: group, INADDR_ANY
        try:
            sock.setsockopt(trio.socket.IPPROTO_IP, trio.socket.IP_ADD_MEMBERSHIP, request)
        except OSError as exc:
            log.warning("repeater: cannot join multicast group %s: %s", host, exc)


async def run_repeater(port: int, *, multicast_groups: list[str] | None = None,
                       task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve as the repeater of this host on UDP ``port`` until cancelled.

    Raises :class:`RepeaterAlreadyRunning` if the port is taken. ``task_status.started`` reports the
    bound address.
    """
    sock = await bind_repeater_socket(port)
    repeater = Repeater()
    try:
        join_multicast_groups(sock, multicast_groups or [])
        task_status.started(sock.getsockname())
        log.info("CA repeater listening on UDP port %d", port)
        while True:
            try:
                data, sender = await sock.recvfrom(MAX_UDP_RECV)
            except (ConnectionRefusedError, ConnectionResetError):
                continue  # ICMP errors from earlier sends surface here on some systems
            await repeater.datagram_received(data, sender[:2])
    finally:
        repeater.close()
        sock.close()
