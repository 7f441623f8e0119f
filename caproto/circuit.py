"""One Channel Access circuit (a TCP connection to one server, at one priority), without I/O.

`VirtualCircuit` is the whole conversation of one end of a circuit. The caller owns the socket: it passes
messages to `VirtualCircuit.send`, which checks them against the state tables of `caproto.states`,
updates the circuit, channel and subscription states and returns the bytes to write; it passes received
bytes to `VirtualCircuit.recv` and takes messages out with `VirtualCircuit.next_command`, checked and
applied the same way.

A message that the tables do not allow raises `LocalProtocolError` from ``send`` (nothing is sent and
nothing changes, even when it is the last of several) or `RemoteProtocolError` from ``next_command``: the
offending message has then been consumed, nothing changed, and the circuit may go on (the exception's
``header`` is that message's `Header`, for an ERROR reply quoting it). Framing errors from
`caproto.framing` pass through unchanged.

`ClientChannel` and `ServerChannel` build the messages of one channel with its ids filled in; they send
nothing themselves.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .constants import CA_MINOR_VERSION, DEFAULT_PRIORITY, ECA, AccessRights, Command, Role, SubscriptionType
from .dbr import ChannelType, Metadata
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .framing import NEED_DATA, StreamParser
from .messages import (
    AccessRightsResponse,
    ClearChannelRequest,
    ClearChannelResponse,
    ClientNameRequest,
    CreateChanRequest,
    CreateChanResponse,
    CreateChFailResponse,
    ErrorResponse,
    EventAddRequest,
    EventAddResponse,
    EventCancelRequest,
    EventCancelResponse,
    EventsOffRequest,
    EventsOnRequest,
    HostNameRequest,
    Message,
    ReadNotifyRequest,
    ReadNotifyResponse,
    ReadRequest,
    ReadResponse,
    ServerDisconnResponse,
    VersionRequest,
    VersionResponse,
    WriteNotifyRequest,
    WriteNotifyResponse,
    WriteRequest,
)
from .states import (
    CHANNEL_INITIAL,
    CHANNEL_TRANSITIONS,
    CIRCUIT_INITIAL,
    CIRCUIT_TRANSITIONS,
    CONNECTION,
    SUBSCRIPTION_INITIAL,
    SUBSCRIPTION_TRANSITIONS,
    ChannelClosed,
    ChannelState,
    CircuitClosed,
    CircuitState,
    State,
    SubscriptionState,
    refusal,
    transition,
)

if TYPE_CHECKING:
    from .framing import _NeedData

__all__ = ["NEED_DATA", "ClientChannel", "IdAllocator", "ServerChannel", "Subscription", "VirtualCircuit"]

CLIENT = Role.CLIENT
# 0xFFFFFFFF means "no channel" in ERROR messages and "use the sender's address" in search replies.
_ID_WRAP = 0xFFFFFFFF
# The answer that each request with an ioid waits for.
_ANSWER = {ReadNotifyRequest: ReadNotifyResponse, WriteNotifyRequest: WriteNotifyResponse,
           ReadRequest: ReadResponse}
_ENDED = (ChannelState.CLOSED, ChannelState.FAILED)
# Received numbers -> their enum members, by lookup: calling an Enum class costs far more.
_READ_WRITE = int(AccessRights.READ_WRITE)
_ACCESS_RIGHTS = tuple(AccessRights(bits) for bits in range(_READ_WRITE + 1))
_CHANNEL_TYPES = {int(t): t for t in ChannelType}


def _restore(obj: object, saved: list[tuple[str, object]]) -> None:
    for attr, value in saved:
        setattr(obj, attr, value)


def _unknown(command: Any, side: _Side, id_name: str) -> Exception:
    """The error for a message naming a cid or sid that no channel of the circuit has."""
    return side.error(f"{type(command).__name__} names {id_name} {getattr(command, id_name)}: no channel on "
                      f"this circuit has it")


class IdAllocator:
    """Counts up through 32-bit ids, wrapping, skipping those still in use."""
    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = 0

    def allocate(self, in_use: Any) -> int:
        while True:
            candidate = self._next
            self._next = (candidate + 1) % _ID_WRAP
            if candidate not in in_use:
                return candidate


class Subscription:
    """One EVENT_ADD on a channel: its id, the request that made it, and its state."""
    __slots__ = ("subscriptionid", "channel", "request", "state")

    def __init__(self, channel: _Channel, request: EventAddRequest) -> None:
        self.subscriptionid: int = request.subscriptionid
        self.channel = channel
        self.request = request
        self.state = SUBSCRIPTION_INITIAL

    @property
    def subject(self) -> str:
        """How error messages name it."""
        return f"subscription {self.subscriptionid} on {self.channel.subject}"

    def __repr__(self) -> str:
        return f"<Subscription {self.subscriptionid} of {self.channel.name!r} {self.state.name}>"


class _Channel:
    """What both ends know of a channel: name, ids, state, native type and count, access rights."""
    __slots__ = ("name", "circuit", "cid", "sid", "state", "native_type", "native_count", "access_rights",
                 "subscriptions", "pending")

    def __init__(self, name: str, circuit: VirtualCircuit, cid: int) -> None:
        self.name = name
        self.circuit = circuit
        self.cid = cid
        self.sid: int | None = None
        self.state = CHANNEL_INITIAL
        self.native_type: ChannelType | None = None
        self.native_count: int | None = None
        self.access_rights: AccessRights | None = None
        self.subscriptions: dict[int, Subscription] = {}
        # ioid -> request still waiting for its answer
        self.pending: dict[int, Message] = {}

    @property
    def subject(self) -> str:
        """How error messages name it (built only for them: thousands of channels connect at once)."""
        return f"channel {self.name!r} (cid {self.cid})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} cid={self.cid} sid={self.sid} {self.state.name}>"

    def _require_connected(self, action: str) -> int:
        if self.state is not ChannelState.CONNECTED or self.sid is None:
            raise LocalProtocolError(f"cannot {action} {self.subject}: it is {self.state.name}")
        return self.sid


class ClientChannel(_Channel):
    """A channel seen from the client: builds its requests (which the caller passes to ``circuit.send``).

    Creating one registers it on ``circuit`` under ``cid`` (a new one if None), in SEND_CREATE_CHAN_REQUEST.
    (Sending a hand-built CreateChanRequest registers one too.)
    """
    __slots__ = ()

    def __init__(self, name: str, circuit: VirtualCircuit, cid: int | None = None) -> None:
        if circuit.our_role is not CLIENT:
            raise LocalProtocolError("a ClientChannel needs a circuit in the client role")
        _Channel.__init__(self, name, circuit, circuit.new_cid() if cid is None else cid)
        circuit._adopt(self)

    def create(self) -> CreateChanRequest:
        return CreateChanRequest(self.name, self.cid, CA_MINOR_VERSION)

    def read(self, data_type: ChannelType | int | None = None, data_count: int | None = None
             ) -> ReadNotifyRequest:
        """READ_NOTIFY of the native type (or ``data_type``), all current elements (or ``data_count``)."""
        sid = self._require_connected("read")
        return ReadNotifyRequest(self.native_type if data_type is None else data_type,
                                 0 if data_count is None else data_count, sid,
                                 self.circuit.new_ioid())

    def write(self, data: Any, data_type: ChannelType | int | None = None, data_count: int | None = None,
              notify: bool = True, metadata: Metadata | None = None) -> WriteNotifyRequest | WriteRequest:
        """WRITE_NOTIFY (a put-callback: the server answers when processing is done), or WRITE if not
        ``notify``. ``data`` is a value or a sequence of the native type (or ``data_type``)."""
        sid = self._require_connected("write to")
        cls = WriteNotifyRequest if notify else WriteRequest
        return cls(data, self.native_type if data_type is None else data_type, data_count, sid,
                   self.circuit.new_ioid(), metadata)

    def subscribe(self, data_type: ChannelType | int | None = None, data_count: int | None = None,
                  mask: int = SubscriptionType.DBE_VALUE | SubscriptionType.DBE_ALARM) -> EventAddRequest:
        """EVENT_ADD for updates matching ``mask`` (DBE_* bits); count 0 (the default) follows the
        current length, as camonitor asks."""
        sid = self._require_connected("subscribe to")
        return EventAddRequest(self.native_type if data_type is None else data_type,
                               0 if data_count is None else data_count, sid,
                               self.circuit.new_subscriptionid(), 0.0, 0.0, 0.0, mask)

    def unsubscribe(self, subscriptionid: int) -> EventCancelRequest:
        sid = self._require_connected("unsubscribe from")
        subscription = self.subscriptions.get(subscriptionid)
        if subscription is None:
            raise LocalProtocolError(f"{self.subject} has no subscription {subscriptionid}")
        request = subscription.request
        return EventCancelRequest(request.data_type, sid, subscriptionid, request.data_count)

    def clear(self) -> ClearChannelRequest:
        return ClearChannelRequest(self._require_connected("clear"), self.cid)


class ServerChannel(_Channel):
    """A channel seen from the server, made by the circuit when CREATE_CHAN arrives (find it in
    ``circuit.channels[cid]``): builds the responses, taking types, counts and ids from the requests.
    It is not made by hand."""
    __slots__ = ()

    def create(self, native_type: ChannelType | int, native_count: int, sid: int | None = None,
               access_rights: AccessRights | int = AccessRights.READ_WRITE) -> list[Message]:
        """ACCESS_RIGHTS then CREATE_CHAN, the order rsrv uses; ``sid`` is allocated if None."""
        if self.state is not ChannelState.AWAIT_CREATE_CHAN_RESPONSE:
            raise LocalProtocolError(f"cannot create {self.subject}: it is {self.state.name}")
        if sid is None:
            sid = self.circuit.new_sid()
        return [AccessRightsResponse(self.cid, access_rights),
                CreateChanResponse(native_type, native_count, self.cid, sid)]

    def fail(self) -> CreateChFailResponse:
        """Refuse the CREATE_CHAN (the name is not served here)."""
        return CreateChFailResponse(self.cid)

    def _request(self, ioid: int) -> Message:
        request = self.pending.get(ioid)
        if request is None:
            raise LocalProtocolError(f"{self.subject} has no request with ioid {ioid} to answer")
        return request

    def read(self, data: Any, ioid: int, metadata: Metadata | None = None,
             status: ECA | int = ECA.NORMAL) -> ReadNotifyResponse | ReadResponse:
        """The answer to the READ_NOTIFY (or READ) ``ioid``, in the type it asked for; a request for count
        0 gets every element of ``data``."""
        request = self._request(ioid)
        count = request.data_count or None
        if isinstance(request, ReadRequest):
            # rsrv puts the cid where the specification says sid.
            return ReadResponse(data, request.data_type, count, self.cid, ioid, metadata)
        return ReadNotifyResponse(data, request.data_type, count, status, ioid, metadata)

    def write(self, ioid: int, status: ECA | int = ECA.NORMAL) -> WriteNotifyResponse:
        """The completion of the WRITE_NOTIFY ``ioid``."""
        request = self._request(ioid)
        return WriteNotifyResponse(request.data_type, request.data_count, status, ioid)

    def _subscription(self, subscriptionid: int) -> EventAddRequest:
        subscription = self.subscriptions.get(subscriptionid)
        if subscription is None:
            raise LocalProtocolError(f"{self.subject} has no subscription {subscriptionid}")
        return subscription.request

    def update(self, subscriptionid: int, data: Any, metadata: Metadata | None = None,
               status: ECA | int = ECA.NORMAL) -> EventAddResponse:
        """One update of subscription ``subscriptionid``, in the type it asked for."""
        request = self._subscription(subscriptionid)
        return EventAddResponse(data, request.data_type, request.data_count or None, status, subscriptionid,
                                metadata)

    def unsubscribe(self, subscriptionid: int) -> EventCancelResponse:
        """Confirm EVENT_CANCEL (rsrv echoes the subscription's type and count)."""
        request = self._subscription(subscriptionid)
        return EventCancelResponse(request.data_type, request.sid, subscriptionid, request.data_count)

    def clear(self) -> ClearChannelResponse:
        """Confirm CLEAR_CHANNEL."""
        if self.sid is None:
            raise LocalProtocolError(f"cannot clear {self.subject}: it is {self.state.name}")
        return ClearChannelResponse(self.sid, self.cid)

    def disconnect(self) -> ServerDisconnResponse:
        """Drop the channel (the record went away): the client will search for it again."""
        return ServerDisconnResponse(self.cid)

    def error(self, request: Message, status: ECA | int, text: str) -> ErrorResponse:
        """ERROR quoting ``request``, as rsrv reports a request it cannot serve."""
        return ErrorResponse(request, self.cid, status, text)


class _Side:
    """One side of a circuit (the client's or the server's): its state, and the table rows of what it sends,
    looked up once here rather than by role on every message."""
    __slots__ = ("role", "our_role", "state", "subject", "error", "circuit_rows", "channel_rows",
                 "subscription_rows")

    def __init__(self, role: Role, our_role: Role) -> None:
        self.role = role
        self.our_role = our_role
        self.state = CIRCUIT_INITIAL[role]
        self.subject = f"the circuit's {role.value} side"
        self.error = LocalProtocolError if role is our_role else RemoteProtocolError
        self.circuit_rows = CIRCUIT_TRANSITIONS[role]
        self.channel_rows = CHANNEL_TRANSITIONS[role]
        self.subscription_rows = SUBSCRIPTION_TRANSITIONS[role]

    def next(self, rows: dict, state: State, cls: type, machine: Any) -> Any:
        """``transition`` for this side's message ``cls``, on rows of this side's table; ``machine`` (the
        circuit side, a channel or a subscription) is named in the error."""
        target = rows[state].get(cls)
        if target is None:
            raise self.refusal(machine, cls)
        return target

    def refusal(self, machine: Any, cls: type) -> ProtocolError:
        """The error for this side's message ``cls`` that ``machine`` in its state does not allow."""
        return refusal(machine.state, self.role, cls, self.our_role, machine.subject)


class VirtualCircuit:
    """One end of a CA circuit, in role ``our_role``, to the peer at ``address``.

    ``priority`` (0-99) is the client's circuit priority; a server learns it from the client's VERSION.
    ``max_payload`` bounds received payloads (EPICS_CA_MAX_ARRAY_BYTES; None: no bound but the parser's).

    State: ``our_state`` / ``their_state`` (each side's `CircuitState`); ``channels`` by cid and
    ``channels_by_sid`` (live channels only: CLOSED and FAILED ones are dropped); ``subscriptions`` by
    subscriptionid; ``pending`` (requests waiting for their answer, by ioid); ``their_version`` (the
    peer's minor protocol version, once its VERSION is seen); ``client_hostname`` / ``client_username``;
    ``events_on`` (EVENTS_OFF / EVENTS_ON flow control).
    """

    def __init__(self, our_role: Role, address: tuple[str, int], priority: int | None = None, *,
                 max_payload: int | None = None) -> None:
        self.our_role = our_role
        self.their_role = our_role.peer
        self.address = address
        self.priority = DEFAULT_PRIORITY if priority is None and our_role is CLIENT else priority
        self.their_version: int | None = None
        self.client_hostname: str | None = None
        self.client_username: str | None = None
        self.events_on = True
        self.channels: dict[int, ClientChannel | ServerChannel] = {}
        self.channels_by_sid: dict[int, ClientChannel | ServerChannel] = {}
        self.subscriptions: dict[int, Subscription] = {}
        self._ours = _Side(our_role, our_role)
        self._theirs = _Side(self.their_role, our_role)
        self._parser = StreamParser(our_role, max_payload)
        self._cids = IdAllocator()
        self._sids = IdAllocator()
        self._subscriptionids = IdAllocator()
        self._ioids = IdAllocator()
        # Each channel also keeps its own requests waiting for an answer.
        self.pending: dict[int, Message] = {}
        # Undo log of the messages of one send() call, so that a refused message undoes the ones before.
        self._journal: list[tuple] | None = None

    def __repr__(self) -> str:
        return (f"<VirtualCircuit {self.our_role.value} to {self.address[0]}:{self.address[1]} "
                f"priority={self.priority} {self.our_state.name}/{self.their_state.name} "
                f"channels={len(self.channels)}>")

    # --- state --------------------------------------------------------------------------------------

    @property
    def our_state(self) -> CircuitState:
        return self._ours.state

    @property
    def their_state(self) -> CircuitState:
        return self._theirs.state

    def new_cid(self) -> int:
        return self._cids.allocate(self.channels)

    def new_sid(self) -> int:
        return self._sids.allocate(self.channels_by_sid)

    def new_subscriptionid(self) -> int:
        return self._subscriptionids.allocate(self.subscriptions)

    def new_ioid(self) -> int:
        return self._ioids.allocate(self.pending)

    # --- the caller's interface -----------------------------------------------------------------------

    def send(self, *commands: Message) -> bytes:
        """The wire bytes of ``commands``, after checking and applying each of them in order."""
        if len(commands) == 1:
            command = commands[0]
            if command.SENDER is not self.our_role:
                raise LocalProtocolError(f"a {self.our_role.value} does not send {type(command).__name__}")
            self._apply(command, self._ours)
            return command.to_bytes()
        self._journal = journal = []
        try:
            for command in commands:
                self._apply_sent(command)
        except BaseException:
            for undo, *args in reversed(journal):
                undo(*args)
            raise
        finally:
            self._journal = None
        return b"".join([command.to_bytes() for command in commands])

    def recv(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes received from the peer; take the messages out with `next_command`."""
        self._parser.feed(data)

    def next_command(self) -> Message | _NeedData:
        """The next received message, checked and applied, or `NEED_DATA` until one is complete."""
        command = self._parser.next_message()
        if command is NEED_DATA:
            return NEED_DATA
        try:
            self._apply(command, self._theirs)
        except RemoteProtocolError as exc:
            exc.header = command.header
            raise
        return command

    def commands(self) -> Iterator[Message]:
        """Every complete message received so far, as `next_command` gives them."""
        while (command := self.next_command()) is not NEED_DATA:
            yield command

    def disconnect(self) -> None:
        """The connection ended: the circuit becomes DISCONNECTED, its channels CLOSED (no-op if done)."""
        if self.our_state is CircuitState.DISCONNECTED:
            return
        for side in (self._ours, self._theirs):
            side.state = transition(CIRCUIT_TRANSITIONS, side.state, CONNECTION, CircuitClosed, self.our_role,
                                    side.subject)
        for channel in list(self.channels.values()):
            self._close(channel, transition(CHANNEL_TRANSITIONS, channel.state, CONNECTION, CircuitClosed,
                                            self.our_role, channel.subject))

    # --- applying one message -----------------------------------------------------------------------------

    def _apply_sent(self, command: Message) -> None:
        if command.SENDER is not self.our_role:
            raise LocalProtocolError(f"a {self.our_role.value} does not send {type(command).__name__}")
        self._apply(command, self._ours)

    def _apply(self, command: Message, side: _Side) -> None:
        # Every check comes before the first change, so a refused message leaves everything as it was.
        cls = type(command)
        state = side.state
        new_state = side.circuit_rows[state].get(cls)
        if new_state is None:
            raise refusal(state, side.role, cls, side.our_role, side.subject)
        handler = self._HANDLERS.get(cls)
        if handler is not None:
            handler(self, command, side)
        if new_state is not state:
            self._set(side, "state", new_state)

    def _step(self, channel: _Channel, side: _Side, cls: type) -> ChannelState:
        return side.next(side.channel_rows, channel.state, cls, channel)

    def _by_cid(self, command: Any, side: _Side) -> ClientChannel | ServerChannel:
        channel = self.channels.get(command.cid)
        if channel is None:
            raise _unknown(command, side, "cid")
        return channel

    def _by_sid(self, command: Any, side: _Side) -> ClientChannel | ServerChannel:
        channel = self.channels_by_sid.get(command.sid)
        if channel is None:
            raise _unknown(command, side, "sid")
        return channel

    # Journaled changes: during a multi-message send() each records how to undo itself. (Outside such a
    # send there is no journal: a received message or a single one sent is checked in full before the
    # first change.)

    def _set(self, obj: object, attr: str, value: object) -> None:
        if self._journal is not None:
            self._journal.append((setattr, obj, attr, getattr(obj, attr)))
        setattr(obj, attr, value)

    def _save(self, obj: object, *attrs: str) -> None:
        """Journal ``attrs`` of ``obj`` before the caller assigns them (callers check for a journal)."""
        self._journal.append((_restore, obj, [(attr, getattr(obj, attr)) for attr in attrs]))

    def _put(self, mapping: dict, key: object, value: object) -> None:
        if self._journal is not None:
            if key in mapping:
                self._journal.append((mapping.__setitem__, key, mapping[key]))
            else:
                self._journal.append((mapping.pop, key))
        mapping[key] = value

    def _drop(self, mapping: dict, key: object) -> None:
        value = mapping.pop(key)
        if self._journal is not None:
            self._journal.append((mapping.__setitem__, key, value))

    def _adopt(self, channel: ClientChannel | ServerChannel) -> None:
        if channel.cid in self.channels:
            raise LocalProtocolError(f"cid {channel.cid} is already {self.channels[channel.cid].subject}")
        self._put(self.channels, channel.cid, channel)

    def _close(self, channel: _Channel, state: ChannelState) -> None:
        """Move ``channel`` to CLOSED or FAILED and forget it, its subscriptions and its pending requests."""
        self._set(channel, "state", state)
        self._drop(self.channels, channel.cid)
        if channel.sid is not None and self.channels_by_sid.get(channel.sid) is channel:
            self._drop(self.channels_by_sid, channel.sid)
        for subscription in list(channel.subscriptions.values()):
            self._set(subscription, "state",
                      transition(SUBSCRIPTION_TRANSITIONS, subscription.state, CONNECTION, ChannelClosed,
                                 self.our_role, subscription.subject))
            self._forget_subscription(subscription)
        for ioid in list(channel.pending):
            self._drop(channel.pending, ioid)
            self._drop(self.pending, ioid)

    def _forget_subscription(self, subscription: Subscription) -> None:
        self._drop(self.subscriptions, subscription.subscriptionid)
        self._drop(subscription.channel.subscriptions, subscription.subscriptionid)

    # --- handlers, one per message class that touches more than the circuit's state -------------------

    def _on_version_request(self, command: VersionRequest, side: _Side) -> None:
        if side is self._ours:
            if command.priority != self.priority:
                raise LocalProtocolError(f"VersionRequest priority {command.priority} differs from the "
                                         f"circuit's priority {self.priority}")
        else:
            self._set(self, "priority", command.priority)
            self._set(self, "their_version", command.version)

    def _on_version_response(self, command: VersionResponse, side: _Side) -> None:
        if side is self._theirs:
            self._set(self, "their_version", command.version)

    def _on_host_name(self, command: HostNameRequest, side: _Side) -> None:
        self._set(self, "client_hostname", command.name)

    def _on_client_name(self, command: ClientNameRequest, side: _Side) -> None:
        self._set(self, "client_username", command.name)

    def _on_events_off(self, command: EventsOffRequest, side: _Side) -> None:
        self._set(self, "events_on", False)

    def _on_events_on(self, command: EventsOnRequest, side: _Side) -> None:
        self._set(self, "events_on", True)

    # The handlers of the messages that connect a channel and read it run once per channel and request
    # (thousands at a time): they look up and assign directly rather than through the helpers above.

    def _on_create_chan_request(self, command: CreateChanRequest, side: _Side) -> None:
        cid = command.cid
        channel = self.channels.get(cid)
        new = channel is None
        if new:
            # A server meets the channel here; so does a client that built the request by hand.
            cls = ClientChannel if self.our_role is CLIENT else ServerChannel
            channel = cls.__new__(cls)
            _Channel.__init__(channel, command.name, self, cid)
        elif channel.name != command.name:
            raise side.error(f"CreateChanRequest names {command.name!r} for {channel.subject}")
        state = side.channel_rows[channel.state].get(CreateChanRequest)
        if state is None:
            raise side.refusal(channel, CreateChanRequest)
        if new:
            self._put(self.channels, cid, channel)
        if self._journal is not None:
            self._save(channel, "state")
        channel.state = state

    def _on_access_rights(self, command: AccessRightsResponse, side: _Side) -> None:
        channel = self.channels.get(command.cid)
        if channel is None:
            raise _unknown(command, side, "cid")
        state = side.channel_rows[channel.state].get(AccessRightsResponse)
        if state is None:
            raise side.refusal(channel, AccessRightsResponse)
        if self._journal is not None:
            self._save(channel, "access_rights", "state")
        channel.access_rights = _ACCESS_RIGHTS[command.access_rights & _READ_WRITE]
        channel.state = state

    def _on_create_chan_response(self, command: CreateChanResponse, side: _Side) -> None:
        channel = self.channels.get(command.cid)
        if channel is None:
            raise _unknown(command, side, "cid")
        state = side.channel_rows[channel.state].get(CreateChanResponse)
        if state is None:
            raise side.refusal(channel, CreateChanResponse)
        sid = command.sid
        if sid in self.channels_by_sid:
            raise side.error(f"CreateChanResponse gives {channel.subject} sid {sid}, which "
                                      f"is already {self.channels_by_sid[sid].subject}")
        native_type = _CHANNEL_TYPES.get(command.data_type)
        if native_type is None:
            raise side.error(f"CreateChanResponse gives {channel.subject} native type "
                                      f"{command.data_type}, which is no DBR type")
        if self._journal is not None:
            self._save(channel, "sid", "native_type", "native_count", "state")
        channel.sid = sid
        channel.native_type = native_type
        channel.native_count = command.data_count
        channel.state = state
        self._put(self.channels_by_sid, sid, channel)

    def _on_channel_end(self, command: CreateChFailResponse | ServerDisconnResponse, side: _Side) -> None:
        channel = self._by_cid(command, side)
        self._close(channel, self._step(channel, side, type(command)))

    def _on_clear_channel(self, command: ClearChannelRequest | ClearChannelResponse, side: _Side) -> None:
        channel = self._by_sid(command, side)
        if command.cid != channel.cid:
            raise side.error(f"{type(command).__name__} names sid {command.sid} with cid "
                                      f"{command.cid}, but the sid is {channel.subject}")
        state = self._step(channel, side, type(command))
        if state in _ENDED:
            self._close(channel, state)
        else:
            self._set(channel, "state", state)

    def _on_write_request(self, command: WriteRequest, side: _Side) -> None:
        self._step(self._by_sid(command, side), side, WriteRequest)

    def _on_ioid_request(self, command: ReadNotifyRequest | WriteNotifyRequest | ReadRequest,
                         side: _Side) -> None:
        channel = self.channels_by_sid.get(command.sid)
        if channel is None:
            raise _unknown(command, side, "sid")
        if side.channel_rows[channel.state].get(type(command)) is None:
            raise side.refusal(channel, type(command))
        ioid = command.ioid
        pending = self.pending
        if ioid in pending:
            raise side.error(f"{type(command).__name__} uses ioid {ioid}, which is still waiting "
                                      f"for the answer to {pending[ioid]!r}")
        if self._journal is not None:
            self._journal += [(pending.pop, ioid), (channel.pending.pop, ioid)]
        pending[ioid] = channel.pending[ioid] = command

    def _on_ioid_response(self, command: ReadNotifyResponse | WriteNotifyResponse | ReadResponse,
                          side: _Side) -> None:
        cls = type(command)
        ioid = command.ioid
        pending = self.pending
        request = pending.get(ioid)
        if request is None or _ANSWER[type(request)] is not cls:
            raise side.error(f"{cls.__name__} answers ioid {ioid}, which no {_request_name(cls)} is "
                             f"waiting for")
        channel = self.channels_by_sid[request.sid]
        state = side.channel_rows[channel.state].get(cls)
        if state is None:
            raise side.refusal(channel, cls)
        if self._journal is not None:
            self._journal += [(pending.__setitem__, ioid, request),
                              (channel.pending.__setitem__, ioid, request)]
        del pending[ioid], channel.pending[ioid]
        if state is not channel.state:
            self._set(channel, "state", state)

    def _on_event_add_request(self, command: EventAddRequest, side: _Side) -> None:
        channel = self._by_sid(command, side)
        self._step(channel, side, EventAddRequest)
        if command.subscriptionid in self.subscriptions:
            raise side.error(f"EventAddRequest uses subscriptionid {command.subscriptionid}, which "
                                      f"is already {self.subscriptions[command.subscriptionid].subject}")
        subscription = Subscription(channel, command)
        subscription.state = side.next(side.subscription_rows, subscription.state, EventAddRequest,
                                       subscription)
        self._put(self.subscriptions, command.subscriptionid, subscription)
        self._put(channel.subscriptions, command.subscriptionid, subscription)

    def _subscription_step(self, command: Any, side: _Side) -> tuple[Subscription, SubscriptionState]:
        subscription = self.subscriptions.get(command.subscriptionid)
        if subscription is None:
            raise side.error(f"{type(command).__name__} names subscription {command.subscriptionid},"
                                      f" which does not exist on this circuit")
        state = side.next(side.subscription_rows, subscription.state, type(command), subscription)
        self._step(subscription.channel, side, type(command))
        return subscription, state

    def _on_event_add_response(self, command: EventAddResponse, side: _Side) -> None:
        # The hot path of a server: one lookup, two table checks, no change.
        self._subscription_step(command, side)

    def _on_event_cancel(self, command: EventCancelRequest | EventCancelResponse, side: _Side) -> None:
        subscription, state = self._subscription_step(command, side)
        if command.sid != subscription.channel.sid:
            raise side.error(f"{type(command).__name__} names sid {command.sid} for "
                                      f"{subscription.subject}")
        self._set(subscription, "state", state)
        if state is SubscriptionState.CANCELLED:
            self._forget_subscription(subscription)

    def _on_error(self, command: ErrorResponse, side: _Side) -> None:
        # ERROR quotes the request it refuses; what that request had started ends here. An ERROR about
        # something this circuit no longer knows (or never did) changes nothing.
        original = command.original_request
        failed = original.command
        if failed == Command.CREATE_CHAN:
            channel = self.channels.get(original.parameter1)
            if channel is not None:
                state = self._step(channel, side, ErrorResponse)
                if state in _ENDED:
                    self._close(channel, state)
        elif failed in (Command.READ_NOTIFY, Command.WRITE_NOTIFY, Command.READ):
            request = self.pending.get(original.parameter2)
            if request is not None and request.COMMAND == failed:
                channel = self.channels_by_sid[request.sid]
                self._step(channel, side, ErrorResponse)
                self._drop(self.pending, request.ioid)
                self._drop(channel.pending, request.ioid)
        elif failed in (Command.EVENT_ADD, Command.EVENT_CANCEL):
            subscription = self.subscriptions.get(original.parameter2)
            if subscription is not None:
                state = side.next(side.subscription_rows, subscription.state, ErrorResponse, subscription)
                self._step(subscription.channel, side, ErrorResponse)
                self._set(subscription, "state", state)
                self._forget_subscription(subscription)

    _HANDLERS = {
        VersionRequest: _on_version_request,
        VersionResponse: _on_version_response,
        HostNameRequest: _on_host_name,
        ClientNameRequest: _on_client_name,
        EventsOffRequest: _on_events_off,
        EventsOnRequest: _on_events_on,
        CreateChanRequest: _on_create_chan_request,
        AccessRightsResponse: _on_access_rights,
        CreateChanResponse: _on_create_chan_response,
        CreateChFailResponse: _on_channel_end,
        ServerDisconnResponse: _on_channel_end,
        ClearChannelRequest: _on_clear_channel,
        ClearChannelResponse: _on_clear_channel,
        WriteRequest: _on_write_request,
        ReadNotifyRequest: _on_ioid_request,
        WriteNotifyRequest: _on_ioid_request,
        ReadRequest: _on_ioid_request,
        ReadNotifyResponse: _on_ioid_response,
        WriteNotifyResponse: _on_ioid_response,
        ReadResponse: _on_ioid_response,
        EventAddRequest: _on_event_add_request,
        EventAddResponse: _on_event_add_response,
        EventCancelRequest: _on_event_cancel,
        EventCancelResponse: _on_event_cancel,
        ErrorResponse: _on_error,
    }


def _request_name(response: type) -> str:
    return next(request.__name__ for request, answer in _ANSWER.items() if answer is response)

