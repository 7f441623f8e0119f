"""Channels as the user sees them: :class:`PV` (read, write, subscribe) and :class:`Subscription`.

A PV outlives its connections: when its server goes away the PV goes back to searching, and when it
connects again its subscriptions are installed again, with nothing for the user to re-create.
"""
from __future__ import annotations

import collections
import enum
import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import trio

from caproto.constants import DBE_ALARM, DBE_VALUE, ECA, AccessRights
from caproto.dbr import DTYPES, ChannelType, native_type, promote
from caproto.errors import CAError
from caproto.messages import EventAddResponse, ReadNotifyResponse, WriteNotifyResponse

from .errors import ClientError, ConnectionTimeout, Disconnected, RequestTimeout

if TYPE_CHECKING:
    from caproto.circuit import ClientChannel

    from .circuit import Circuit
    from .context import Context

log = logging.getLogger(__name__)

__all__ = ["PV", "Subscription", "ConnectionState", "DataType"]

# A DBR type (a ChannelType, its number or its name: "TIME_DOUBLE"), or a family name to apply to the
# channel's native type ("time" -> TIME_DOUBLE for a DOUBLE channel); None means the native type itself.
DataType = ChannelType | int | str | None
_FAMILY_ALIASES = {"plain": "plain", "native": "plain", "sts": "sts", "status": "sts", "time": "time",
                   "gr": "gr", "graphic": "gr", "graphics": "gr", "ctrl": "ctrl", "control": "ctrl"}

DEFAULT_TIMEOUT = 2.0
# The access rights a server sends, as members (calling the Flag class per channel costs more).
_ACCESS_RIGHTS = {bits: AccessRights(bits) for bits in range(AccessRights.READ_WRITE + 1)}


class ConnectionState(enum.Enum):
    """libca's ``ca_state`` names, which cainfo prints."""
    NEVER_CONNECTED = "never connected"
    PREVIOUSLY_CONNECTED = "previously connected"
    CONNECTED = "connected"
    CLOSED = "closed"


class Replies:
    """The answers to a group of requests (READ_NOTIFY, WRITE_NOTIFY), waited for together.

    The circuit's reader fills slot ``index`` with the response, or with the exception that ended the
    request; :meth:`wait` returns once every slot is filled.
    """
    __slots__ = ("results", "_missing", "_event")

    def __init__(self, count: int) -> None:
        self.results: list[Any] = [None] * count
        self._missing = count
        self._event = trio.Event()

    def set(self, index: int, value: Any) -> None:
        self.results[index] = value
        self._missing -= 1
        if not self._missing:
            self._event.set()

    @property
    def complete(self) -> bool:
        return not self._missing

    async def wait(self) -> None:
        if self._missing:
            await self._event.wait()


def _deadline(timeout: float | None) -> float:
    return math.inf if timeout is None else trio.current_time() + timeout


class PV:
    """One channel, by name and priority; made by :meth:`Context.create_pv` / :meth:`Context.get_pvs`."""

    def __init__(self, context: Context, name: str, priority: int, cid: int) -> None:
        self.context = context
        self.name = name
        self.priority = priority
        self.cid = cid
        self.state = ConnectionState.NEVER_CONNECTED
        self.native_type: ChannelType | None = None
        self.element_count: int | None = None
        self.access = AccessRights.NO_ACCESS
        self.server: tuple[str, int] | None = None     # (host, port) of the server, once found
        self.circuit: Circuit | None = None
        self.channel: ClientChannel | None = None       # the core's channel on the current circuit
        self.subscriptions: list[Subscription] = []
        # Replaced, never changed in place, so that a callback may add or remove callbacks while they run;
        # and the empty tuple costs nothing for the thousands of PVs that have none.
        self._connection_callbacks: tuple[Callable[[PV, bool], None], ...] = ()
        self._access_callbacks: tuple[Callable[[PV, AccessRights], None], ...] = ()
        # made by the first wait_for_connection: most PVs are waited for as a group by the context
        self._connected_event: trio.Event | None = None

    def __repr__(self) -> str:
        return f"<PV {self.name!r} {self.state.value}>"

    # --- state ----------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.state is ConnectionState.CONNECTED

    @property
    def host(self) -> str | None:
        """"host:port" of the server (the circuit's), as ``ca_host_name`` gives it."""
        if self.server is None:
            return None
        return f"{self.server[0]}:{self.server[1]}"

    @property
    def read_access(self) -> bool:
        return bool(self.access & AccessRights.READ)

    @property
    def write_access(self) -> bool:
        return bool(self.access & AccessRights.WRITE)

    async def wait_for_connection(self, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Return once connected; :class:`ConnectionTimeout` after ``timeout`` seconds (None: wait on)."""
        with trio.CancelScope(deadline=_deadline(timeout)):
            while not self.connected:
                if self.state is ConnectionState.CLOSED:
                    raise ClientError(f"{self.name}: channel is closed")
                if self._connected_event is None:
                    self._connected_event = trio.Event()
                await self._connected_event.wait()
            return
        raise ConnectionTimeout([self.name])

    def add_connection_callback(self, callback: Callable[[PV, bool], None]) -> None:
        """Call ``callback(pv, connected)`` on every connection and disconnection (in the trio thread)."""
        self._connection_callbacks += (callback,)

    def remove_connection_callback(self, callback: Callable[[PV, bool], None]) -> None:
        callbacks = list(self._connection_callbacks)
        callbacks.remove(callback)
        self._connection_callbacks = tuple(callbacks)

    def add_access_rights_callback(self, callback: Callable[[PV, AccessRights], None]) -> None:
        self._access_callbacks += (callback,)

    def _notify_connection(self, connected: bool) -> None:
        for callback in self._connection_callbacks:
            try:
                callback(self, connected)
            except Exception:
                log.exception("connection callback of %s failed", self.name)

    def _wake_waiters(self) -> None:
        """Connected or closed: every wait_for_connection looks at the state again."""
        event = self._connected_event
        if event is not None:
            self._connected_event = None
            event.set()

    # --- called by the circuit ------------------------------------------------------------------------

    def _access_rights(self, access: int) -> None:
        rights = _ACCESS_RIGHTS.get(access)
        self.access = AccessRights(access) if rights is None else rights
        if self._access_callbacks and self.connected:
            for callback in self._access_callbacks:
                try:
                    callback(self, self.access)
                except Exception:
                    log.exception("access rights callback of %s failed", self.name)

    def _attached(self, circuit: Circuit, channel: ClientChannel) -> None:
        self.circuit = circuit
        self.channel = channel

    def _connected(self, circuit: Circuit, channel: ClientChannel) -> None:
        self.circuit = circuit
        self.channel = channel
        self.native_type = channel.native_type
        self.element_count = channel.native_count
        self.state = ConnectionState.CONNECTED
        if self._connected_event is not None:
            self._wake_waiters()
        self.context._pv_connected(self)
        for subscription in self.subscriptions:
            subscription._install()
        if self._connection_callbacks:
            self._notify_connection(True)

    def _context_closed(self) -> None:
        """The context is closing: the PV ends without a disconnection (no callbacks, no searching)."""
        self.state = ConnectionState.CLOSED
        for subscription in self.subscriptions:
            subscription._end()
        self._wake_waiters()

    def _disconnected(self) -> None:
        """The circuit or the server dropped this channel: back to searching (done by the context)."""
        was_connected = self.connected
        self.circuit = None
        self.channel = None
        if self.state is not ConnectionState.CLOSED:
            self.state = (ConnectionState.PREVIOUSLY_CONNECTED if was_connected or
                          self.state is ConnectionState.PREVIOUSLY_CONNECTED
                          else ConnectionState.NEVER_CONNECTED)
        if was_connected:
            self._notify_connection(False)

    # --- requests -------------------------------------------------------------------------------------

    def resolve_type(self, data_type: DataType) -> ChannelType:
        """The DBR type that ``data_type`` means for this (connected) channel."""
        if self.native_type is None:
            raise Disconnected(f"{self.name}: not connected, its native type is unknown")
        if data_type is None:
            return self.native_type
        if isinstance(data_type, str):
            family = _FAMILY_ALIASES.get(data_type.lower())
            if family is not None:
                return promote(self.native_type, family)
            name = data_type.upper().removeprefix("DBR_")
            if name in ChannelType.__members__:
                return ChannelType[name]
            raise ValueError(f"unknown DBR type or family {data_type!r}: use a ChannelType name or one of "
                             f"{sorted(_FAMILY_ALIASES)}")
        return ChannelType(data_type)

    @property
    def sid(self) -> int | None:
        return self.channel.sid if self.connected and self.channel is not None else None

    def _check_connected(self) -> tuple[Circuit, ClientChannel]:
        if not self.connected or self.circuit is None or self.channel is None:
            raise Disconnected(f"{self.name}: not connected")
        return self.circuit, self.channel

    def _count(self, count: int | None, circuit: Circuit) -> int:
        if count is None:
            # 0 asks for the current length of a variable-length array (CA 4.13); older servers want a count
            return 0 if circuit.server_version >= 13 else int(self.element_count or 1)
        return int(count)

    async def read(self, data_type: DataType = None, count: int | None = None,
                   timeout: float | None = DEFAULT_TIMEOUT) -> ReadNotifyResponse:
        """Read once: the server's ReadNotifyResponse (``.data``, ``.metadata``, ``.data_type``,
        ``.data_count``). ``data_type`` defaults to the native type; ``count`` to the current length.

        Raises :class:`CAError` if the server refuses, :class:`Disconnected` if the channel is not (or no
        longer) connected, :class:`RequestTimeout` after ``timeout`` seconds.
        """
        circuit, channel = self._check_connected()
        request = channel.read(self.resolve_type(data_type), self._count(count, circuit))
        return await self._request(circuit, request, timeout, "read")

    async def _request(self, circuit: Circuit, request: Any, timeout: float | None, what: str) -> Any:
        """Send a request with an ioid and wait for its answer."""
        replies = Replies(1)
        circuit.expect_reply(request.ioid, replies, 0)
        try:
            circuit.send(request)
            with trio.CancelScope(deadline=_deadline(timeout)):
                await replies.wait()
        finally:
            circuit.forget_request(request.ioid)
        result = replies.results[0]
        if not replies.complete:
            raise RequestTimeout(f"{self.name}: {what} timed out after {timeout} s")
        if isinstance(result, BaseException):
            raise result
        return result

    async def write(self, value: Any, *, data_type: DataType = None, wait: bool = False,
                    timeout: float | None = DEFAULT_TIMEOUT) -> WriteNotifyResponse | None:
        """Write ``value`` (a number, a string, a sequence or a numpy array).

        With ``wait=True`` this is a put-callback: it returns the server's WriteNotifyResponse once the
        record has finished processing (a motor move, for example) and raises :class:`CAError` if the
        put failed. Without it the write is sent and not confirmed; a failure is only logged.
        ``data_type`` defaults to a type the server converts from: the native type for numbers of the
        right kind, DOUBLE for other numbers, STRING for text.
        """
        circuit, channel = self._check_connected()
        if data_type is None:
            dbr_type, values = self._put_type(value)
        else:
            dbr_type = self.resolve_type(data_type)
            values = value
        values = _as_sequence(values, dbr_type)
        count = len(values)
        if self.element_count is not None and count > self.element_count:
            raise CAError(ECA.BADCOUNT, f"{self.name}: {count} values for {self.element_count} elements")
        request = channel.write(values, dbr_type, count, notify=wait)
        if not wait:
            circuit.send(request)
            return None
        response = await self._request(circuit, request, timeout, "write")
        if response.status != ECA.NORMAL:
            raise CAError(response.status, f"{self.name}: write failed")
        return response

    def _put_type(self, value: Any) -> tuple[ChannelType, Any]:
        native = self.native_type
        assert native is not None
        items = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
        if isinstance(value, np.ndarray):
            kind = value.dtype.kind
        else:
            kinds = {"U" if isinstance(v, str) else "S" if isinstance(v, bytes) else
                     "b" if isinstance(v, (bool, np.bool_)) else
                     "i" if isinstance(v, (int, np.integer)) else "f" for v in items}
            kind = kinds.pop() if len(kinds) == 1 else ("U" if kinds & {"U", "S"} else "f")
        if kind in "US" or native is ChannelType.STRING:
            if native is ChannelType.CHAR and isinstance(value, (str, bytes)):
                raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
                return ChannelType.CHAR, np.frombuffer(raw + b"\0", dtype=np.uint8)[:self.element_count]
            return ChannelType.STRING, value
        if kind in "biu":
            return native, value
        if native in (ChannelType.FLOAT, ChannelType.DOUBLE):
            return native, value
        return ChannelType.DOUBLE, value

    # --- subscriptions --------------------------------------------------------------------------------

    def subscribe(self, data_type: DataType = "time", count: int | None = None,
                  mask: int = DBE_VALUE | DBE_ALARM, queue_size: int = 1000) -> Subscription:
        """A subscription to this channel's updates, installed now if connected and on every reconnect.

        Iterate it (``async for event in sub``) or give it callbacks; ``async with`` clears it at the end.
        ``data_type`` defaults to the TIME family of the native type; ``count`` to the current length.
        """
        if self.state is ConnectionState.CLOSED:
            raise ClientError(f"{self.name}: channel is closed")
        subscription = Subscription(self, data_type, count, mask, queue_size)
        self.subscriptions.append(subscription)
        if self.connected:
            subscription._install()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop a subscription (EVENT_CANCEL to the server); its iterators end."""
        if subscription not in self.subscriptions:
            return
        self.subscriptions.remove(subscription)
        subscriptionid, subscription.subscriptionid = subscription.subscriptionid, None
        if self.connected and subscriptionid is not None:
            circuit, channel = self._check_connected()
            circuit.forget_subscription(subscriptionid)
            if subscriptionid in channel.subscriptions:
                circuit.send(channel.unsubscribe(subscriptionid))
        subscription._end()

    async def close(self) -> None:
        """Clear the channel: end its subscriptions, release it on the server, stop searching for it."""
        if self.state is ConnectionState.CLOSED:
            return
        for subscription in list(self.subscriptions):
            self.unsubscribe(subscription)
        if self.connected and self.circuit is not None and self.channel is not None:
            self.circuit.send(self.channel.clear())
            self.circuit.detach(self)
        was_connected = self.connected
        self.state = ConnectionState.CLOSED
        self.circuit = None
        self.context._forget_pv(self)
        self._wake_waiters()
        if was_connected:
            self._notify_connection(False)


def _as_sequence(values: Any, data_type: ChannelType) -> Sequence | np.ndarray:
    native = native_type(data_type)
    if native is ChannelType.STRING:
        if isinstance(values, (str, bytes)):
            return [values]
        return [v if isinstance(v, (str, bytes)) else str(v) for v in values] if not isinstance(
            values, np.ndarray) else [str(v) for v in values]
    if isinstance(values, (bytes, bytearray)) and native is ChannelType.CHAR:
        return np.frombuffer(bytes(values), dtype=np.uint8)
    if isinstance(values, str):
        raise TypeError(f"cannot send the text {values!r} as {data_type.name}")
    array = np.atleast_1d(np.asarray(values))
    if array.ndim != 1:
        array = array.ravel()
    if array.dtype.kind == "f" and DTYPES[native].kind in "iu":
        # converting here would mean choosing a rounding; sent as DOUBLE, the server applies its own
        raise TypeError(f"cannot send floating-point values as {data_type.name}; send them as DOUBLE")
    return array


class Subscription:
    """An EVENT_ADD subscription. Updates are queued for iteration and passed to callbacks.

    Slow-consumer policy: the queue keeps the newest ``queue_size`` updates; older ones are dropped and
    counted in :attr:`dropped` (callbacks see every update).
    """

    def __init__(self, pv: PV, data_type: DataType, count: int | None, mask: int, queue_size: int) -> None:
        self.pv = pv
        self.data_type = data_type
        self.count = count
        self.mask = int(mask)
        self.subscriptionid: int | None = None   # its id on the current circuit, while installed
        self.dropped = 0
        self.error: CAError | None = None
        self._queue: collections.deque[EventAddResponse] = collections.deque(maxlen=queue_size)
        self._lot = trio.lowlevel.ParkingLot()
        self._callbacks: list[Callable[[EventAddResponse], None]] = []
        self._ended = False

    def __repr__(self) -> str:
        return f"<Subscription {self.pv.name!r} mask={self.mask} id={self.subscriptionid}>"

    def add_callback(self, callback: Callable[[EventAddResponse], None]) -> None:
        """Call ``callback(event)`` for every update (in the trio thread, so it must not block)."""
        self._callbacks.append(callback)

    def remove_callback(self, callback: Callable[[EventAddResponse], None]) -> None:
        self._callbacks.remove(callback)

    def clear(self) -> None:
        """Cancel the subscription (same as ``pv.unsubscribe(sub)``)."""
        self.pv.unsubscribe(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.clear()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> EventAddResponse:
        while not self._queue:
            if self.error is not None:
                raise self.error
            if self._ended:
                raise StopAsyncIteration
            await self._lot.park()
        return self._queue.popleft()

    # --- called by the PV and the circuit ------------------------------------------------------------

    def _install(self) -> None:
        pv = self.pv
        circuit, channel = pv._check_connected()
        count = pv._count(self.count, circuit)
        if self.count is not None and pv.element_count is not None:
            count = min(count, pv.element_count)
        request = channel.subscribe(pv.resolve_type(self.data_type), count, self.mask)
        self.subscriptionid = request.subscriptionid
        circuit.add_subscription(request.subscriptionid, self)
        circuit.send(request)

    def _deliver(self, event: EventAddResponse) -> None:
        if event.status_code != ECA.NORMAL:
            log.warning("%s: subscription update with status %s", self.pv.name, event.status_code)
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(event)
        self._lot.unpark_all()
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:
                log.exception("subscription callback of %s failed", self.pv.name)

    def _fail(self, error: CAError) -> None:
        self.error = error
        self.subscriptionid = None
        if self in self.pv.subscriptions:
            self.pv.subscriptions.remove(self)
        self._lot.unpark_all()

    def _end(self) -> None:
        self._ended = True
        self._lot.unpark_all()
