"""The client context: the nursery that owns the UDP socket, the searches, the circuits and the PVs.

::

    async with Context() as ctx:
        pv, = await ctx.get_pvs("XF:ai")
        reading = await pv.read(data_type="time")
        await pv.write(2.5, wait=True)
        async with pv.subscribe() as sub:
            async for event in sub:
                ...

The tasks of a context, all in its nursery: the UDP receiver (search replies, beacons, the repeater's
confirmation), the search sender (:mod:`caproto.client.search` decides what is due), the repeater
registration, one task per name server (``EPICS_CA_NAME_SERVERS``) and one per circuit.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

import trio

from caproto.broadcaster import Broadcaster
from caproto.constants import CA_MINOR_VERSION, DONT_REPLY, Command, Role
from caproto.errors import RemoteProtocolError
from caproto.messages import (
    ErrorResponse,
    ReadNotifyResponse,
    RepeaterRegisterRequest,
    RsrvIsUpResponse,
    SearchRequest,
    SearchResponse,
)
from caproto.states import RepeaterState

from .circuit import Circuit, local_names
from .environment import Address, ClientSettings
from .errors import CAError, ClientError, ConnectionTimeout, RequestTimeout, ca_message
from .pv import PV, ConnectionState, DataType, Replies
from .search import BeaconTracker, SearchSchedule

log = logging.getLogger(__name__)

__all__ = ["Context"]

REPEATER_REGISTER_PERIOD = 1.0      # libca's period between registration attempts
NAME_SERVER_RETRY = (1.0, 30.0)     # first and largest delay between name server connection attempts
MAX_UDP_RECV = 0xFFFF
# Before searching again for a channel whose server refused it, or whose circuit could not be opened.
RETRY_DELAY = 1.0


class _ConnectionWaiter:
    """One ``wait_for_connection`` call: the PVs it still waits for, and the event that ends the wait."""
    __slots__ = ("pending", "done")

    def __init__(self, pending: set[PV]) -> None:
        self.pending = pending
        self.done = trio.Event()


class Context:
    """A CA client context. Use as ``async with Context() as ctx``; everything stops at the end."""

    def __init__(self, settings: ClientSettings | None = None, *, host_name: str | None = None,
                 client_name: str | None = None) -> None:
        self.settings = settings if settings is not None else ClientSettings.from_environment()
        default_host, default_user = local_names()
        self.host_name = host_name if host_name is not None else default_host
        self.client_name = client_name if client_name is not None else default_user
        # Called with (ErrorResponse, PV or None) for server errors no request waits for (a failed
        # WRITE without notification, for one); the default logs a warning.
        self.error_handler: Callable[[ErrorResponse, PV | None], None] | None = None
        self.duplicates: list[tuple[str, Address, Address]] = []   # (name, connecting to, ignored)
        self._cids = itertools.count(1)
        self._pvs: dict[tuple[str, int], PV] = {}
        self._pvs_by_cid: dict[int, PV] = {}
        self._circuits: dict[tuple[Address, int], Circuit] = {}
        self._name_servers: list[Circuit] = []
        self._broadcaster = Broadcaster(Role.CLIENT)
        self._schedule = SearchSchedule(self.settings.max_search_period)
        self._beacons = BeaconTracker()
        self._search_wakeup = trio.Event()
        self._search_addresses: list[Address] = []
        self._udp: trio.socket.SocketType | None = None
        self._nursery: trio.Nursery | None = None
        self._connection_waiters: set[_ConnectionWaiter] = set()
        self._exit_stack: contextlib.AsyncExitStack | None = None

    # --- lifetime --------------------------------------------------------------------------------------

    async def __aenter__(self) -> Context:
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            self._udp = await self._open_udp()
            stack.callback(self._udp.close)
            self._nursery = await stack.enter_async_context(trio.open_nursery())
            self._search_addresses = await self._resolve(self.settings.search_addresses())
            if not self._search_addresses and not self.settings.name_servers:
                log.warning("empty search address list: set EPICS_CA_ADDR_LIST or EPICS_CA_NAME_SERVERS")
            self._nursery.start_soon(self._udp_receiver)
            self._nursery.start_soon(self._search_sender)
            self._nursery.start_soon(self._repeater_registration)
            for address in await self._resolve(self.settings.name_servers):
                self._nursery.start_soon(self._name_server, address)
        except BaseException:
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
            await stack.aclose()
            raise
        self._exit_stack = stack
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: Any) -> bool | None:
        assert self._exit_stack is not None and self._nursery is not None
        stack, self._exit_stack = self._exit_stack, None
        for pv in list(self._pvs.values()):
            pv._context_closed()
        for circuit in list(self._circuits.values()):
            circuit.abort()
        self._nursery.cancel_scope.cancel()
        if exc is None or isinstance(exc, (trio.Cancelled, BaseExceptionGroup)):
            return await stack.__aexit__(exc_type, exc, traceback)
        # the body's own error: stop the tasks, then let it propagate as it is (not in a group)
        await stack.__aexit__(None, None, None)
        return False

    @property
    def repeater_registered(self) -> bool:
        """True once a CA repeater confirmed our registration (beacons then reach us)."""
        return self._broadcaster.repeater_state is RepeaterState.REGISTERED

    @property
    def circuits(self) -> list[Circuit]:
        """The open circuits (one per server and priority)."""
        return list(self._circuits.values())

    @property
    def search_addresses(self) -> list[Address]:
        """Where UDP searches go (EPICS_CA_ADDR_LIST and, if auto, the broadcast addresses)."""
        return list(self._search_addresses)

    @property
    def pvs(self) -> list[PV]:
        return list(self._pvs.values())

    @property
    def nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise ClientError("the context is not open: use `async with Context() as ctx`")
        return self._nursery

    async def _open_udp(self) -> trio.socket.SocketType:
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_BROADCAST, 1)
        await sock.bind(("", 0))
        return sock

    async def _resolve(self, addresses: Iterable[Address]) -> list[Address]:
        found: list[Address] = []
        for host, port in addresses:
            try:
                infos = await trio.socket.getaddrinfo(host, port, trio.socket.AF_INET,
                                                      trio.socket.SOCK_DGRAM)
            except OSError as exc:
                log.warning("cannot resolve CA address %r: %s", host, exc)
                continue
            for info in infos:
                address = info[4][:2]
                if address not in found:
                    found.append(address)
        return found

    # --- ids -------------------------------------------------------------------------------------------

    # --- channels --------------------------------------------------------------------------------------

    def create_pv(self, name: str, priority: int = 0) -> PV:
        """The PV for ``name``, searching for it if it is new. Returns at once (see :meth:`get_pvs`)."""
        if not 0 <= priority <= 99:
            raise ValueError(f"CA priority {priority} is outside 0-99")
        self.nursery  # noqa: B018 -- fails early when the context is not open
        key = (name, priority)
        pv = self._pvs.get(key)
        if pv is None or pv.state is ConnectionState.CLOSED:
            pv = PV(self, name, priority, next(self._cids))
            self._pvs[key] = pv
            self._pvs_by_cid[pv.cid] = pv
            self._start_search(pv)
        return pv

    async def get_pvs(self, *names: str, timeout: float | None = 2.0, priority: int = 0) -> list[PV]:
        """PVs for ``names``, connected. Raises :class:`ConnectionTimeout` (naming the missing ones)
        if not all connect within ``timeout`` seconds; those keep searching."""
        pvs = [self.create_pv(name, priority) for name in names]
        await self.wait_for_connection(pvs, timeout)
        return pvs

    async def wait_for_connection(self, pvs: Iterable[PV], timeout: float | None = 2.0) -> None:
        """Wait until every PV in ``pvs`` is connected; :class:`ConnectionTimeout` after ``timeout``."""
        pvs = list(pvs)
        waiter = _ConnectionWaiter({pv for pv in pvs if not pv.connected})
        if not waiter.pending:
            return
        self._connection_waiters.add(waiter)
        try:
            with trio.CancelScope(deadline=math.inf if timeout is None else trio.current_time() + timeout):
                await waiter.done.wait()
        finally:
            self._connection_waiters.discard(waiter)
        if waiter.pending:
            raise ConnectionTimeout([pv.name for pv in pvs if pv in waiter.pending])

    def _pv_connected(self, pv: PV) -> None:
        for waiter in self._connection_waiters:
            pending = waiter.pending
            if pv in pending:
                pending.discard(pv)
                if not pending:
                    waiter.done.set()

    async def read_many(self, pvs: Iterable[PV], data_type: DataType = None, count: int | None = None,
                        timeout: float | None = 2.0) -> list[ReadNotifyResponse | ClientError | CAError]:
        """Read many PVs at once: one reply (or the exception that stands for it) per PV, in order.

        All requests go out in one burst and are waited for together, which is much faster for
        thousands of PVs than one ``read`` each.
        """
        pvs = list(pvs)
        replies = Replies(len(pvs))
        sent: list[tuple[Circuit, int]] = []
        for index, pv in enumerate(pvs):
            try:
                circuit, channel = pv._check_connected()
                request = channel.read(pv.resolve_type(data_type), pv._count(count, circuit))
            except (ClientError, ValueError) as exc:
                replies.set(index, exc)
                continue
            circuit.expect_reply(request.ioid, replies, index)
            circuit.send(request)
            sent.append((circuit, request.ioid))
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        try:
            with trio.CancelScope(deadline=deadline):
                await replies.wait()
        finally:
            for circuit, ioid in sent:
                circuit.forget_request(ioid)
        return [RequestTimeout(f"{pv.name}: read timed out after {timeout} s") if result is None else result
                for pv, result in zip(pvs, replies.results, strict=True)]

    def _forget_pv(self, pv: PV) -> None:
        self._schedule.remove(pv.cid)
        self._broadcaster.unanswered_searches.pop(pv.cid, None)
        self._pvs_by_cid.pop(pv.cid, None)
        if self._pvs.get((pv.name, pv.priority)) is pv:
            del self._pvs[(pv.name, pv.priority)]

    def _start_search(self, pv: PV, delay: float = 0.0) -> None:
        pv.server = None
        self._schedule.add(pv.name, pv.cid, trio.current_time() + delay)
        self._search_wakeup.set()

    def _channel_lost(self, pv: PV, circuit: Circuit, refused: bool = False) -> None:
        """The server dropped the channel, or ``refused`` it (or its circuit): search for it again, at
        once if it was dropped, after :data:`RETRY_DELAY` if it was refused (the same server would answer
        the search and refuse again)."""
        pv._disconnected()
        if pv.state is not ConnectionState.CLOSED:
            self._start_search(pv, RETRY_DELAY if refused else 0.0)

    def _circuit_closed(self, circuit: Circuit, channels: list[PV]) -> None:
        key = (circuit.address, circuit.priority)
        if self._circuits.get(key) is circuit:
            del self._circuits[key]
        self._beacons.forget(circuit.address)
        for pv in channels:
            self._channel_lost(pv, circuit, refused=not circuit.connected.is_set())

    def _circuit_for(self, address: Address, priority: int) -> Circuit:
        key = (address, priority)
        circuit = self._circuits.get(key)
        if circuit is None or circuit.closed:
            circuit = self._circuits[key] = Circuit(self, address, priority)
            self.nursery.start_soon(circuit.run)
        return circuit

    def _server_error(self, error: ErrorResponse, pv: PV | None, server: Address) -> None:
        if self.error_handler is not None:
            self.error_handler(error, pv)
            return
        request = error.original_request
        try:
            command = Command(request.command).name
        except ValueError:
            command = str(request.command)
        log.warning("CA server %s:%d: %s failed for %s: %s (%s)", *server, command,
                    pv.name if pv is not None else f"cid {error.cid}", ca_message(error.status_code),
                    error.error_message)

    # --- searching ---------------------------------------------------------------------------------------

    def _search_reply(self, reply: SearchResponse, sender: Address) -> None:
        """A server answers a search (over UDP, or over TCP from a name server)."""
        pv = self._pvs_by_cid.get(reply.cid)
        answer = self._broadcaster.answer(reply, sender)
        if pv is None:
            return
        host, port = answer.address if answer is not None else (reply.ip, reply.port)
        if host in ("0.0.0.0", "255.255.255.255"):
            host = sender[0]  # "the address this reply came from", in either spelling
        address = (host, port)
        if self._schedule.remove(reply.cid) is not None:
            circuit = self._circuit_for(address, pv.priority)
            pv.server = circuit.address   # one tuple per server, not one per channel
            circuit.attach(pv)
        elif pv.server is not None and pv.server != address:
            # a second server answers for the same name: libca's warning, and the first one is kept
            entry = (pv.name, pv.server, address)
            if entry not in self.duplicates:
                self.duplicates.append(entry)
                log.warning("Identical process variable names on multiple servers: channel %r, "
                            "connecting to %s:%d, ignored %s:%d", pv.name, *pv.server, *address)

    async def _search_sender(self) -> None:
        assert self._udp is not None
        while True:
            deadline = self._schedule.next_deadline()
            with trio.move_on_at(float("inf") if deadline is None else deadline):
                await self._search_wakeup.wait()
            self._search_wakeup = trio.Event()
            due = self._schedule.due(trio.current_time())
            if not due:
                continue
            for datagram in self._broadcaster.search_datagrams(due):
                for address in self._search_addresses:
                    try:
                        await self._udp.sendto(datagram, address)
                    except OSError as exc:
                        log.debug("search to %s:%d failed: %s", *address, exc)
            for circuit in self._name_servers:
                if circuit.connected.is_set() and not circuit.closed:
                    circuit.send(*(SearchRequest(name, cid, CA_MINOR_VERSION, DONT_REPLY)
                                   for name, cid in due))

    async def _name_server(self, address: Address) -> None:
        """Keep a circuit to one name server open (reopened after a growing delay); searches go through
        it too."""
        delay = NAME_SERVER_RETRY[0]
        while True:
            circuit = Circuit(self, address, 0)
            self._name_servers.append(circuit)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._search_through, circuit)
                    await circuit.run()
                    nursery.cancel_scope.cancel()
            finally:
                self._name_servers.remove(circuit)
            if circuit.connected.is_set():
                delay = NAME_SERVER_RETRY[0]
            await trio.sleep(delay)
            delay = min(delay * 2, NAME_SERVER_RETRY[1])

    async def _search_through(self, circuit: Circuit) -> None:
        """Once a name server's circuit is up, every pending name goes to it at once."""
        await circuit.connected.wait()
        self._schedule.reset(trio.current_time())
        self._search_wakeup.set()

    # --- UDP: replies, beacons, the repeater -------------------------------------------------------------

    async def _udp_receiver(self) -> None:
        assert self._udp is not None
        while True:
            try:
                data, sender = await self._udp.recvfrom(MAX_UDP_RECV)
            except (ConnectionRefusedError, ConnectionResetError):
                continue  # ICMP from an earlier send (no repeater, no server at an address)
            try:
                messages = self._broadcaster.recv(data, sender[:2])
            except RemoteProtocolError as exc:
                log.debug("datagram from %s:%d dropped: %s", *sender[:2], exc)
                continue
            for message in messages:
                kind = type(message)
                if kind is SearchResponse:
                    self._search_reply(message, sender[:2])
                elif kind is RsrvIsUpResponse:
                    self._beacon(message, sender[0])

    def _beacon(self, beacon: RsrvIsUpResponse, sender_host: str) -> None:
        host = beacon.address if beacon.address != "0.0.0.0" else sender_host
        if self._beacons.beacon((host, beacon.server_port), beacon.beacon_id, trio.current_time()):
            if len(self._schedule):
                log.debug("beacon anomaly from %s:%d: searching again now", host, beacon.server_port)
                self._schedule.reset(trio.current_time())
                self._search_wakeup.set()

    async def _repeater_registration(self) -> None:
        assert self._udp is not None
        target = ("127.0.0.1", self.settings.repeater_port)
        while not self.repeater_registered:
            message = self._broadcaster.send(RepeaterRegisterRequest(client_address="127.0.0.1"))
            try:
                await self._udp.sendto(message, target)
            except OSError as exc:
                log.debug("repeater registration failed: %s", exc)
            await trio.sleep(REPEATER_REGISTER_PERIOD)

