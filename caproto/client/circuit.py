"""One TCP virtual circuit from this client to one server (per priority), shared by all its channels.

The protocol lives in the core's :class:`caproto.circuit.VirtualCircuit` (state checks, ids, channel
and subscription bookkeeping); this module owns the socket and the tasks. Three run per circuit, in the
circuit's own nursery: the reader (bytes -> messages -> the PV, request or subscription they concern), the
writer (everything queued by :meth:`Circuit.send` goes out in one ``send_all``, so a burst of thousands
of requests costs a few system calls), and the watchdog (ECHO when the server has been silent for
``EPICS_CA_CONN_TMO``; the circuit is given up when the echo is not answered either).
"""
from __future__ import annotations

import getpass
import logging
import socket
from typing import TYPE_CHECKING, Any

import trio

from caproto.circuit import ClientChannel, VirtualCircuit
from caproto.constants import CA_MINOR_VERSION, ECA, Command, Role
from caproto.errors import CAError, FramingError, RemoteProtocolError
from caproto.framing import NEED_DATA
from caproto.messages import (
    AccessRightsResponse,
    ClientNameRequest,
    CreateChanResponse,
    CreateChFailResponse,
    EchoRequest,
    ErrorResponse,
    EventAddResponse,
    HostNameRequest,
    Message,
    ReadNotifyResponse,
    SearchResponse,
    ServerDisconnResponse,
    VersionRequest,
    WriteNotifyResponse,
)

from .errors import Disconnected, ServerError

if TYPE_CHECKING:
    from .context import Context
    from .pv import PV, Replies, Subscription

log = logging.getLogger(__name__)

Address = tuple[str, int]

# libca waits this long for the answer to an ECHO before it calls a circuit unresponsive.
ECHO_TIMEOUT = 5.0
RECEIVE_SIZE = 1 << 18


def local_names() -> tuple[str, str]:
    """(host name, user name) as libca sends them in HOST_NAME and CLIENT_NAME."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    return socket.gethostname(), user


class Circuit:
    """The client side of one virtual circuit: the core's VirtualCircuit plus a socket and its tasks."""

    def __init__(self, context: Context, address: Address, priority: int) -> None:
        self.context = context
        self.address = address
        self.priority = priority
        self.protocol = VirtualCircuit(Role.CLIENT, address, priority)
        self.connected = trio.Event()
        self.closed = False
        self._stream: trio.SocketStream | None = None
        self._outbox: list[bytes] = []
        self._wakeup = trio.Event()
        self._pvs: dict[int, PV] = {}                       # by cid: attached to this circuit
        self._requests: dict[int, tuple[Replies, int]] = {}  # by ioid: where its answer goes
        self._subscriptions: dict[int, Subscription] = {}   # by this circuit's subscriptionid
        self._last_receive = trio.current_time()
        self._cancel_scope = trio.CancelScope()

    def __repr__(self) -> str:
        return f"<Circuit {self.address[0]}:{self.address[1]} priority {self.priority}>"

    @property
    def server_version(self) -> int:
        return self.protocol.their_version or 0

    @property
    def channel_count(self) -> int:
        return len(self._pvs)

    @property
    def channels(self) -> list[PV]:
        return list(self._pvs.values())

    # --- used by PVs -----------------------------------------------------------------------------------

    def send(self, *messages: Message) -> None:
        """Check and queue messages; the writer task sends everything queued in one go."""
        if self.closed:
            raise Disconnected(f"circuit to {self.address[0]}:{self.address[1]} is closed")
        self._outbox.append(self.protocol.send(*messages))
        self._wakeup.set()

    def expect_reply(self, ioid: int, replies: Replies, index: int) -> None:
        self._requests[ioid] = (replies, index)

    def forget_request(self, ioid: int) -> None:
        self._requests.pop(ioid, None)

    def add_subscription(self, subscriptionid: int, subscription: Subscription) -> None:
        self._subscriptions[subscriptionid] = subscription

    def forget_subscription(self, subscriptionid: int) -> None:
        self._subscriptions.pop(subscriptionid, None)

    def attach(self, pv: PV) -> ClientChannel:
        """Create ``pv``'s channel on this circuit (now if connected, else once it is)."""
        channel = ClientChannel(pv.name, self.protocol, cid=pv.cid)
        self._pvs[pv.cid] = pv
        pv._attached(self, channel)
        if self.connected.is_set() and not self.closed:
            self.send(channel.create())
        return channel

    def detach(self, pv: PV) -> None:
        self._pvs.pop(pv.cid, None)

    # --- the tasks -------------------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve until the connection ends, then hand the channels back to the context."""
        task_status.started()
        try:
            with self._cancel_scope:
                try:
                    with trio.fail_after(self.context.settings.connection_timeout):
                        self._stream = await trio.open_tcp_stream(*self.address)
                except (OSError, trio.TooSlowError) as exc:
                    log.warning("cannot connect to CA server %s:%d: %s", *self.address,
                                exc if isinstance(exc, OSError) else "timed out")
                    return
                self._stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                hello: list[Message] = [VersionRequest(self.priority, CA_MINOR_VERSION),
                                        HostNameRequest(self.context.host_name),
                                        ClientNameRequest(self.context.client_name)]
                hello += [channel.create() for channel in self.protocol.channels.values()]
                self._outbox.insert(0, self.protocol.send(*hello))
                self._wakeup.set()
                self.connected.set()
                self._last_receive = trio.current_time()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer)
                    nursery.start_soon(self._watchdog)
                    await self._reader()
                    nursery.cancel_scope.cancel()
        except BaseException:
            # torn down from outside (the context closing, Ctrl-C): not a disconnection to report
            await self._close(report=False)
            raise
        await self._close(report=True)

    def abort(self) -> None:
        """Drop the connection (the server is unresponsive, or the context is closing)."""
        self._cancel_scope.cancel()

    async def _close(self, report: bool) -> None:
        """Release everything; with ``report``, hand the channels back to the context to search again."""
        self.closed = True
        self.protocol.disconnect()
        if self._stream is not None:
            with trio.CancelScope(shield=True):
                await self._stream.aclose()
        lost = Disconnected(f"circuit to {self.address[0]}:{self.address[1]} was lost")
        for replies, index in self._requests.values():
            replies.set(index, lost)
        self._requests.clear()
        self._subscriptions.clear()
        pvs = list(self._pvs.values())
        self._pvs.clear()
        if report:
            self.context._circuit_closed(self, pvs)

    async def _writer(self) -> None:
        assert self._stream is not None
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            if not self._outbox:
                continue
            data = b"".join(self._outbox)
            self._outbox.clear()
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.info("circuit to %s:%d: send failed: %s", *self.address, exc)
                self.abort()
                return

    async def _watchdog(self) -> None:
        timeout = self.context.settings.connection_timeout
        while True:
            await trio.sleep_until(self._last_receive + timeout)
            if trio.current_time() < self._last_receive + timeout:
                continue
            self.send(EchoRequest())
            await trio.sleep(ECHO_TIMEOUT)
            if trio.current_time() - self._last_receive >= ECHO_TIMEOUT:
                log.warning("CA server %s:%d is not responding (no echo in %g s); dropping the circuit",
                            *self.address, ECHO_TIMEOUT)
                self.abort()
                return

    async def _reader(self) -> None:
        assert self._stream is not None
        protocol = self.protocol
        while True:
            try:
                data = await self._stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.info("circuit to %s:%d: receive failed: %s", *self.address, exc)
                return
            if not data:
                log.debug("circuit to %s:%d closed by the server", *self.address)
                return
            self._last_receive = trio.current_time()
            protocol.recv(data)
            while True:
                try:
                    message = protocol.next_command()
                except FramingError as exc:
                    log.error("circuit to %s:%d: %s; dropping the circuit", *self.address, exc)
                    return
                except RemoteProtocolError as exc:
                    log.warning("circuit to %s:%d: %s", *self.address, exc)
                    continue
                if message is NEED_DATA:
                    break
                self._dispatch(message)

    # --- what the server sent --------------------------------------------------------------------------

    def _dispatch(self, message: Any) -> None:
        kind = type(message)
        if kind is EventAddResponse:
            subscription = self._subscriptions.get(message.subscriptionid)
            if subscription is not None:
                subscription._deliver(message)
        elif kind is ReadNotifyResponse or kind is WriteNotifyResponse:
            waiting = self._requests.pop(message.ioid, None)
            if waiting is None:
                return
            replies, index = waiting
            if kind is ReadNotifyResponse and message.status != ECA.NORMAL:
                replies.set(index, CAError(message.status, f"read failed (status {message.status})"))
            else:
                replies.set(index, message)
        elif kind is CreateChanResponse:
            pv = self._pvs.get(message.cid)
            channel = self.protocol.channels.get(message.cid)
            if pv is not None and channel is not None:
                pv._connected(self, channel)
        elif kind is AccessRightsResponse:
            pv = self._pvs.get(message.cid)
            if pv is not None:
                pv._access_rights(message.access_rights)
        elif kind is ErrorResponse:
            self._error(message)
        elif kind is ServerDisconnResponse or kind is CreateChFailResponse:
            pv = self._pvs.pop(message.cid, None)
            if pv is not None:
                self._forget_pv_subscriptions(pv)
                self.context._channel_lost(pv, self, refused=kind is CreateChFailResponse)
        elif kind is SearchResponse:
            self.context._search_reply(message, self.address)

    def _forget_pv_subscriptions(self, pv: PV) -> None:
        for subscriptionid, subscription in list(self._subscriptions.items()):
            if subscription.pv is pv:
                del self._subscriptions[subscriptionid]

    def _error(self, message: ErrorResponse) -> None:
        request = message.original_request
        error = ServerError(message)
        if request.command in (Command.READ_NOTIFY, Command.WRITE_NOTIFY):
            waiting = self._requests.pop(request.parameter2, None)
            if waiting is not None:
                waiting[0].set(waiting[1], error)
                return
        elif request.command == Command.EVENT_ADD:
            subscription = self._subscriptions.pop(request.parameter2, None)
            if subscription is not None:
                subscription._fail(error)
                return
        elif request.command == Command.CREATE_CHAN:
            pv = self._pvs.pop(request.parameter1, None)
            if pv is not None:
                self.context._channel_lost(pv, self, refused=True)
        self.context._server_error(message, self._pvs.get(message.cid), self.address)

