"""One task per TCP virtual circuit: requests in, replies and monitor updates out.

The reader loop turns received bytes into raw messages (``StreamParser.next_raws``) and dispatches on the
command id through a table; replies are appended to one output buffer and sent with one ``send_all`` per
batch of requests. Monitor updates arrive from the database synchronously (``FieldChannel.subscribe``),
are queued per circuit in post order with the *coalesce-newest* policy (see ``Subscription``) and are
sent by the writer task, so that a slow client never delays the database or any other client.
"""
from __future__ import annotations

import collections
import itertools
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from caproto.constants import CA_MINOR_VERSION, DO_REPLY, ECA, AccessRights, Command, Role
from caproto.dbr import ChannelType, payload_size
from caproto.errors import CAError, FramingError, MalformedHeader, PayloadTooLarge
from caproto.framing import StreamParser
from caproto.messages import pack_header

from .database import ProcessingFailed
from .udp import requested_name

log = logging.getLogger(__name__)

# How many updates wait before they are coalesced, as dbEvent's rings: a circuit has one ring of
# EVENT_RING entries for each SUBSCRIPTIONS_PER_RING subscriptions (a subscription joins the first ring
# with room, for good). While more than EVENTS_PER_RING entries of its ring are free a subscription may
# have any number waiting; past that (or while the client has sent EVENTS_OFF) a subscription's new update
# replaces its last waiting one. The rings are sent one after the other, each emptied in turn.
EVENTS_PER_RING = 36
EVENT_RING = 4 * EVENTS_PER_RING
SUBSCRIPTIONS_PER_RING = 35
_COALESCE_AT = EVENT_RING - EVENTS_PER_RING
# A client whose socket accepts nothing for this long is disconnected: its queued events would otherwise
# pile up for ever.
STALL_LIMIT = 30.0
# A put-callback to a channel whose previous one has not completed waits this long (rsrv's blockSem
# wait) before the previous one is given up with ECA_PUTCBINPROG.
PUT_CALLBACK_WAIT = 60.0
# Events for all subscriptions of one circuit sent in one batch before re-checking for requests.
MAX_BATCH_BYTES = 1 << 20
# Every YIELD_EVERY requests of one receive the reader lets other tasks run if any is waiting to (a
# writer with monitor updates these requests posted); every FAIR_EVERY requests it yields regardless, so
# that other circuits' requests are read too.
YIELD_EVERY = 16
FAIR_EVERY = 256
YIELD_MASK, FAIR_MASK = YIELD_EVERY - 1, FAIR_EVERY - 1     # (powers of two)
# Bytes asked of the socket per receive.
RECEIVE_SIZE = 1 << 16
_MAX_DATA_TYPE = max(ChannelType)
# Types a put-callback cannot carry (rsrv's db_put_process maps only the plain types and PUT_ACKT/ACKS);
# a plain WRITE takes the value out of a STS/TIME/GR/CTRL struct.
_NOT_NOTIFY_PUTTABLE = frozenset(range(ChannelType.STS_STRING, ChannelType.CTRL_DOUBLE + 1)) | {
    ChannelType.STSACK_STRING, ChannelType.CLASS_NAME}

_EVENT_ADD_BYTES = int(Command.EVENT_ADD).to_bytes(2, "big")
_NORMAL_BYTES = int(ECA.NORMAL).to_bytes(4, "big")
_STATUS_SEVERITY = struct.Struct(">HH")
_STAMP = struct.Struct(">II")
_PLAIN_HEADER = struct.Struct(">HHHHII")
_TIME_TYPES = frozenset(range(ChannelType.TIME_STRING, ChannelType.TIME_DOUBLE + 1))
# Types of an update whose bytes depend on more of the record than the value, alarm and time stamp that
# dbEvent logs at the post: text (the precision, the enum strings), the GR and CTRL metadata, ACKT and
# ACKS. dbGet reads all that when the update is sent.
_READ_AT_SEND = frozenset((ChannelType.STRING, ChannelType.STS_STRING, ChannelType.TIME_STRING,
                           *range(ChannelType.GR_STRING, ChannelType.CTRL_DOUBLE + 1),
                           ChannelType.STSACK_STRING))

_sid_counter = itertools.count()
_subscription_serials = itertools.count()  # server-wide, as rsrv's resource ids
# Set when a circuit's writer was woken: a reader busy with a long batch yields soon after. (Asking trio
# whether any task is runnable costs more than the checkpoint it would save.)
_writer_woken = False


# The oldest client minor version rsrv serves (CA_MINIMUM_SUPPORTED_VERSION), the first that takes element
# counts of 0xFFFF and more (CA_V49: extended headers), and the highest dispatch priority.
MIN_CLIENT_VERSION = 4
LARGE_ARRAY_VERSION = 9
MAX_PRIORITY = 99
# A reply that a client older than CA 4.9 cannot take: this many elements or (padded) payload bytes.
LARGE_MESSAGE = 0xFFFF
# rsrv's large buffer, which its "server unable to load ... response" ERRORs quote as "max bytes":
# EPICS_CA_MAX_ARRAY_BYTES (default 16384) plus an extended header, at least MAX_TCP.
_DEFAULT_MAX_ARRAY_BYTES = 16384
_EXTENDED_HEADER = 24
_HEADER_SIZE = 16
_MAX_TCP = 16384 + 16
# rsrv's "Bad Resource ID" ERROR names the source line of the handler that looked the id up (its
# logBadId macro expands __FILE__ and __LINE__); clients see these exact strings.
_BAD_ID_AT = {
    Command.READ: 623,
    Command.READ_NOTIFY: 727,
    Command.WRITE: 763,
    Command.WRITE_NOTIFY: 1669,
    Command.EVENT_ADD: 1801,
    Command.CLEAR_CHANNEL: 1911,
    Command.EVENT_CANCEL: 2020,
}
# rsrv's TCP jump table has this many entries; any request before a supported VERSION is refused.
_TCP_COMMANDS = 28
# Requests whose parameter1 is a sid
_SID_REQUESTS = frozenset({Command.EVENT_ADD, Command.EVENT_CANCEL, Command.READ, Command.READ_NOTIFY,
                           Command.WRITE, Command.WRITE_NOTIFY})
# HOST_NAME and CLIENT_NAME longer than this (with the NUL) drop the circuit.
_MAX_NAME = 512

_READ = int(AccessRights.READ)
_WRITE = int(AccessRights.WRITE)
# IntEnum members cost a class-attribute lookup (about 100 ns) per use; the per-request paths use ints.
_READ_NOTIFY = int(Command.READ_NOTIFY)
_EVENT_ADD = int(Command.EVENT_ADD)
_NORMAL = int(ECA.NORMAL)


@dataclass(slots=True)
class ServedChannel:
    cid: int
    sid: int
    channel: object  # ioc.database.FieldChannel
    access: int      # the channel's AccessRights as a plain int: IntFlag's & costs a call per request
    # in the order they were added (rsrv's per-channel event list): a client may reuse a subscription id,
    # and EVENT_CANCEL ends the oldest subscription of the channel with that id
    subscriptions: list[Subscription] = field(default_factory=list)
    put_pending: PendingPut | None = None


@dataclass(slots=True)
class PendingPut:
    """A put-callback whose processing goes on; its reply is sent when it completes."""
    data_type: int
    count: int
    ioid: int
    done: trio.Event = field(default_factory=trio.Event)
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


def failed_read(command: int, data_type: int, count: int, status: int, ioid: int) -> bytes:
    """A READ_NOTIFY or EVENT_ADD reply that carries a failure, as rsrv's read_reply sends it: the
    status in the header and a zeroed value of the requested size (count 0, "all elements", gives the
    metadata alone and count 0)."""
    body = payload_size(data_type, count)
    return pack_header(command, body, data_type, count, status, ioid) + bytes(body)


class EventRing(collections.deque):
    """One of a circuit's queues of monitor updates (dbEvent's event_que): [message, subscription]
    entries in post order (message None once dropped), and how many subscriptions post into it."""

    __slots__ = ("subscriptions",)

    def __init__(self) -> None:
        super().__init__()
        self.subscriptions = 0


class Subscription:
    """One EVENT_ADD: what the client asked for, and its updates waiting in the circuit's queue.

    Policy (coalesce-newest, as rsrv's event queue): encoded updates wait in their ring, in the order
    they were posted, while it has room for them (see ``EVENT_RING``); when the client falls behind, a
    subscription's newest update replaces its last waiting one, so a slow client sees the latest value
    and never makes the server buffer without bound. A field that dbEvent does not copy into its queue
    (``queued_by_reference``: arrays, strings, links) waits as a reference instead: at most one update
    per subscription, which reads the field when it is sent, with the alarm status, severity and time
    stamp of the post that queued it; a post while it waits is dropped. An update of a field queued by
    value, of a type whose bytes depend on more than the value, alarm and time stamp (``_READ_AT_SEND``),
    waits as the post's field log and is encoded when sent, with the rest of the record as it is then.
    """

    __slots__ = ("subscriptionid", "served", "data_type", "count", "mask", "pending", "last",
                 "unsubscribe", "coalesced", "circuit", "by_reference", "logs", "request_size", "oversize",
                 "serial", "ring")

    def __init__(self, circuit: Circuit, subscriptionid: int, served: ServedChannel, data_type: int,
                 count: int, mask: int, ring: EventRing, request_size: int = 16) -> None:
        self.circuit = circuit
        self.subscriptionid = subscriptionid
        self.served = served
        self.data_type = data_type
        self.count = count
        self.mask = mask
        self.ring = ring
        self.pending = 0        # entries of this subscription in its ring
        self.last: list | None = None   # the newest of them, [message, subscription]
        self.coalesced = 0
        self.unsubscribe: Callable[[], None] | None = None
        self.request_size = request_size    # the EVENT_ADD's payload size, which an ERROR quotes
        self.serial = next(_subscription_serials)
        # dbEvent copies a posted value into the queued event only for a one-element field of at most
        # 8 bytes; for any other field (an array, a string, a link) the event refers to the field, which
        # is read when the event is sent, and a post while such an event waits is dropped.
        self.by_reference = served.channel.queued_by_reference
        # an update queued by value whose type needs more than the logged value: encoded when sent
        self.logs = not self.by_reference and data_type in _READ_AT_SEND
        # whether an update is too large for a client older than CA 4.9 (count 0: the field's capacity)
        elements = count or served.channel.max_count
        self.oversize = elements >= LARGE_MESSAGE or payload_size(data_type, elements) >= LARGE_MESSAGE

    def encode(self, logged: tuple | None = None) -> bytes:
        """The update now, or (``logged``) from a field log of the post that queued it."""
        if self.oversize and self.circuit.client_version < LARGE_ARRAY_VERSION:
            return self._too_large()
        try:
            if logged is None:
                payload, count = self.served.channel.read(self.data_type, self.count)
            else:
                payload, count = self.served.channel.read_logged(self.data_type, self.count, logged)
        except CAError:
            return failed_read(Command.EVENT_ADD, self.data_type, self.count, ECA.GETFAIL,
                               self.subscriptionid)
        return pack_header(_EVENT_ADD, len(payload), self.data_type, count, _NORMAL,
                           self.subscriptionid) + payload

    def encode_queued(self, queued: tuple) -> bytes:
        """An update queued as what the post left to read when it is sent (see ``post``)."""
        if self.by_reference:
            return self.encode_with_alarm(queued)
        return self.encode(queued)

    def encode_with_alarm(self, alarm: tuple[int, int, int, int]) -> bytes:
        """An update of a field queued by reference: the value read now, with the alarm status, severity
        and time stamp of the post that queued it (dbGet takes those from the event's field log)."""
        message = self.encode()
        data_type = self.data_type
        if ChannelType.STS_STRING <= data_type <= ChannelType.CTRL_DOUBLE or (
                data_type == ChannelType.STSACK_STRING):
            start = 24 if message[2:4] == b"\xff\xff" else 16    # after an extended header
            if message[:2] == _EVENT_ADD_BYTES and message[8:12] == _NORMAL_BYTES:
                # an update served (status ECA_NORMAL): its struct begins with status and severity
                patched = bytearray(message)
                status, severity, secs, nsec = alarm
                patched[start:start + 4] = _STATUS_SEVERITY.pack(status, severity)
                if data_type in _TIME_TYPES:
                    patched[start + 4:start + 12] = _STAMP.pack(secs, nsec)
                return bytes(patched)
        return message

    def _too_large(self) -> bytes:
        """rsrv's answer to an update a client older than CA 4.9 cannot take: an ERROR quoting the
        EVENT_ADD (ECA_16KARRAYCLIENT)."""
        circuit = self.circuit
        served = self.served
        elements = self.count or served.channel.max_count
        original = pack_header(Command.EVENT_ADD, self.request_size, self.data_type, self.count, served.sid,
                               self.subscriptionid)
        return circuit.error_message(
            original, ECA.ARRAY16KCLIENT,
            f'server unable to load read (or subscription update) response into protocol buffer '
            f'PV="{served.channel.record.NAME}" dbf={self.data_type} count={elements} '
            f'avail={self.subscriptionid} max bytes={circuit.large_buffer}', served.cid)

    def post(self, mask: int) -> None:
        """Channel callback: called synchronously with the first update and every post the channel
        selected for this subscription's mask."""
        circuit = self.circuit
        if self.by_reference:
            if self.pending:
                self.coalesced += 1     # the waiting event will read the field as it is then
                return
            rec = self.served.channel.record
            secs, nsec = rec.TIME
            entry = [(rec.STAT, rec.SEVR, secs, nsec), self]
            self.ring.append(entry)
            self.last = entry
            self.pending += 1
            if circuit.events_on:
                circuit.ring()
            return
        message = self.served.channel.logged() if self.logs else self.encode()
        if self.pending and (len(self.ring) >= _COALESCE_AT or not circuit.events_on):
            self.last[0] = message
            self.coalesced += 1
        else:
            entry = [message, self]
            self.ring.append(entry)
            self.last = entry
            self.pending += 1
        if circuit.events_on:
            circuit.ring()

    def drop_pending(self) -> None:
        """The subscription ended: its waiting updates are not sent (rsrv makes them defunct)."""
        if self.pending:
            for entry in self.ring:
                if entry[1] is self:
                    entry[0] = None


class Circuit:
    """The server side of one CA virtual circuit."""

    def __init__(self, stream: trio.SocketStream, database, server_port: int,
                 max_payload: int | None = None) -> None:
        self.stream = stream
        self.database = database
        self.server_port = server_port
        self.parser = StreamParser(Role.SERVER, max_payload=max_payload)
        self.large_buffer = max(_MAX_TCP, (_DEFAULT_MAX_ARRAY_BYTES if max_payload is None else max_payload)
                                + _EXTENDED_HEADER)
        self.out = bytearray()
        self.channels: dict[int, ServedChannel] = {}
        self.subscriptions: set[Subscription] = set()
        # Monitor updates waiting, in post order in each ring (see EVENT_RING)
        self.rings: list[EventRing] = [EventRing()]
        self._ring_cursor = 0           # the ring being emptied when a batch filled up
        self.events_on = True
        self.client_version = 0     # (also tells the parser whether to read extended headers)
        self.client_priority = 0
        self.host_name = ""
        self.client_name = ""
        self._doorbell_send, self._doorbell_recv = trio.open_memory_channel(1)
        self._rung = False
        self._send_lock = trio.StrictFIFOLock()
        self._nursery: trio.Nursery | None = None
        self._outer: trio.Nursery | None = None
        self._closing = False
        self._deaf = False      # rsrv's receive drain count underflowed: it reads and parses nothing more
        self._drain = 0         # bytes still to discard of a request refused before VERSION
        self._batch: list = []          # the requests of the receive being served
        peer = getattr(stream.socket, "getpeername", lambda: ("?", 0))()
        self.peer = f"{peer[0]}:{peer[1]}"
        self._served: dict[int, Callable] = {
            Command.VERSION: self._version,
            Command.EVENT_ADD: self._event_add,
            Command.EVENT_CANCEL: self._event_cancel,
            Command.READ: self._read,
            Command.WRITE: self._write,
            Command.SEARCH: self._search,
            Command.EVENTS_OFF: self._events_off,
            Command.EVENTS_ON: self._events_on,
            Command.READ_SYNC: self._read_sync,
            Command.CLEAR_CHANNEL: self._clear_channel,
            Command.READ_NOTIFY: self._read_notify,
            Command.CREATE_CHAN: self._create_chan,
            Command.WRITE_NOTIFY: self._write_notify,
            Command.CLIENT_NAME: self._client_name,
            Command.HOST_NAME: self._host_name,
            Command.ECHO: self._echo,
        }
        # Until the client names a supported minor version, rsrv answers every other request with
        # ECA_DEFUNCT; _version installs the handlers (the reader holds this dict, so it is updated in
        # place).
        self.dispatch: dict[int, Callable] = dict.fromkeys(range(_TCP_COMMANDS), self._too_old)
        self.dispatch[Command.VERSION] = self._version

    @property
    def client_version(self) -> int:
        return self._client_version

    @client_version.setter
    def client_version(self, version: int) -> None:
        self._client_version = version
        # rsrv reads a header as extended only from a client of CA 4.9 or later; to an older one (or before
        # any version is known) a payload size of 0xFFFF is just that, and misaligned. The parser sees the
        # new version in time: an extended or misaligned message only ever heads a batch, after the
        # requests before it were served.
        self.parser.extended_headers = version >= LARGE_ARRAY_VERSION

    # -- tasks -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        log.info("circuit from %s opened", self.peer)
        try:
            async with trio.open_nursery() as nursery:
                self._outer = nursery
                self.out += pack_header(Command.VERSION, 0, 0, CA_MINOR_VERSION, 0, 0)
                self.ring()
                nursery.start_soon(self._writer)
                async with trio.open_nursery() as requests:  # put-callbacks still waiting live here
                    self._nursery = requests
                    await self._reader()
                    requests.cancel_scope.cancel()
                self._unsubscribe_all()
                # The writer sends what is queued (an ERROR that explains the disconnect, say), then ends.
                await self._doorbell_send.aclose()
                nursery.cancel_scope.deadline = trio.current_time() + 5
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as group:
            log.info("circuit from %s lost: %s", self.peer, group.exceptions[0])
        finally:
            self._unsubscribe_all()
            self.channels.clear()
            with trio.CancelScope(shield=True):
                await self.stream.aclose()
            log.info("circuit from %s closed", self.peer)

    def _unsubscribe_all(self) -> None:
        for sub in self.subscriptions:
            if sub.unsubscribe is not None:
                sub.unsubscribe()
                sub.unsubscribe = None
        self.subscriptions.clear()
        for ring in self.rings:
            ring.clear()

    async def _reader(self) -> None:
        global _writer_woken
        dispatch = self.dispatch
        while not self._closing:
            data = await self.stream.receive_some(RECEIVE_SIZE)
            if not data:
                return
            if self._deaf:
                continue
            if self._drain:
                dropped = min(self._drain, len(data))
                self._drain -= dropped
                data = data[dropped:]
            parser = self.parser
            parser.feed(data)
            while not self._closing:
                try:
                    batch = parser.next_raws()
                except PayloadTooLarge as exc:
                    # As rsrv: refuse that request, skip its payload, keep the circuit.
                    self._send_error(exc.header.pack(), ECA.TOLARGE,
                                     f"CAS: Server unable to load large request message. {exc}")
                    continue
                except FramingError as exc:
                    if self._refuse_unversioned(exc):
                        break
                    log.warning("circuit from %s: %s; disconnecting", self.peer, exc)
                    self._framing_error(exc)
                    self._closing = True
                    break
                if not batch:
                    break
                self._batch = batch
                handled = 0
                for raw in batch:
                    handler = dispatch.get(raw[0])
                    if handler is None:
                        self._unknown_command(raw)
                        if self._closing:
                            break
                        continue
                    try:
                        later = handler(raw)
                        if later is not None:
                            await later     # a request that must wait (a put-callback behind another)
                    except Exception:
                        # A fault while serving one request (a record bug, say) fails that request only.
                        log.exception("circuit from %s: request %r failed", self.peer, raw[:5])
                        self._error(raw, ECA.INTERNAL, "CAS: request failed in server")
                    if self._closing:
                        break
                    handled += 1
                    if not handled & YIELD_MASK and (_writer_woken or not handled & FAIR_MASK):
                        # Let other circuits' writers send the updates these requests posted: without this
                        # a client streaming puts starves monitors down to a few coalesced updates per
                        # receive.
                        _writer_woken = False
                        await trio.lowlevel.checkpoint()
            if self.out or any(self.rings):
                await self._send_pending()

    def ring(self) -> None:
        global _writer_woken
        _writer_woken = True
        if self._rung:
            return      # the writer has not woken since the last ring: it will see everything queued
        self._rung = True
        try:
            self._doorbell_send.send_nowait(None)
        except trio.WouldBlock:
            pass  # already rung: the writer will see everything queued so far
        except trio.ClosedResourceError:
            pass  # the circuit is closing; nothing more will be sent

    async def _writer(self) -> None:
        """Sends monitor updates (and put-callback replies) that arrive between requests."""
        async for _ in self._doorbell_recv:
            # Cleared before collecting: whatever is queued from now on rings again (a ring per post
            # would cost a failed send_nowait, an exception, per monitor update).
            self._rung = False
            await self._send_pending()

    async def _send_pending(self) -> None:
        # Both the reader (replies, right after a batch of requests: one less task switch per round
        # trip) and the writer (monitor updates) send; the lock keeps their chunks whole and in order.
        async with self._send_lock:
            while chunk := self._collect():
                with trio.move_on_after(STALL_LIMIT) as scope:
                    await self.stream.send_all(chunk)
                if scope.cancelled_caught:
                    log.warning("circuit from %s stalled for %s s; disconnecting", self.peer, STALL_LIMIT)
                    self._closing = True
                    self._outer.cancel_scope.cancel()
                    return

    def _collect(self) -> bytes:
        self._queue_events(MAX_BATCH_BYTES)
        chunk = bytes(self.out)
        self.out.clear()
        return chunk

    def _queue_events(self, limit: float = float("inf")) -> None:
        """Move queued monitor updates into the output buffer (unless the client sent EVENTS_OFF): each
        ring emptied in turn, as rsrv's event task does, so a later ring's updates follow an earlier
        ring's even when they were posted first."""
        if not self.events_on:
            return
        out, rings = self.out, self.rings
        index = self._ring_cursor
        while index < len(rings):
            ring = rings[index]
            popleft = ring.popleft
            while ring and len(out) < limit:
                message, sub = popleft()
                sub.pending -= 1
                if message is not None:
                    if message.__class__ is tuple:    # what to read the update from now
                        message = sub.encode_queued(message)
                    out += message
            if ring:
                self._ring_cursor = index   # the batch is full: the next one goes on from here
                return
            index += 1
        self._ring_cursor = 0

    # -- helpers ---------------------------------------------------------------------------------------

    def _error(self, raw, eca: int, message: str, cid: int | None = None) -> None:
        """An ERROR response quoting the offending request's header, as rsrv's send_err does."""
        if raw is None:
            original = pack_header(0, 0, 0, 0, 0, 0)
        else:
            command, data_type, data_count, p1, p2, payload = raw
            original = self._quoted(command, len(payload), data_type, data_count, p1, p2)
        self._send_error(original, eca, message, cid)

    def _quoted(self, command: int, size: int, data_type: int, data_count: int, p1: int, p2: int) -> bytes:
        """A request's header as an ERROR quotes it: rsrv uses the extended form only with a client that
        knows it."""
        if self.client_version < LARGE_ARRAY_VERSION:
            return _PLAIN_HEADER.pack(command, size & 0xFFFF, data_type, data_count & 0xFFFF, p1, p2)
        return pack_header(command, size, data_type, data_count, p1, p2)

    def _send_error(self, original: bytes, eca: int, message: str, cid: int | None = None) -> None:
        self.out += self.error_message(original, eca, message, cid)

    def error_message(self, original: bytes, eca: int, message: str, cid: int | None = None) -> bytes:
        """An ERROR quoting the request header ``original`` with the text ``message``."""
        if cid is None:
            # rsrv's vsend_err: a request naming a channel by sid reports that channel's cid (when the sid
            # is known), a SEARCH its own cid, anything else none
            command, p1 = int.from_bytes(original[:2], "big"), int.from_bytes(original[8:12], "big")
            if command in _SID_REQUESTS:
                served = self.channels.get(p1)
                cid = 0xFFFFFFFF if served is None else served.cid
            else:
                cid = p1 if command == Command.SEARCH else 0xFFFFFFFF
        text = message.encode("latin-1", "replace") + b"\0"
        body = original + text + b"\0" * (-(len(original) + len(text)) % 8)
        return pack_header(Command.ERROR, len(body), 0, 0, cid, eca) + body

    def _framing_error(self, exc: FramingError) -> None:
        """rsrv's answer to a request it cannot frame, a payload size that is not a multiple of 8: an
        ERROR quoting the header (the caller drops the circuit)."""
        header = getattr(exc, "header", None)
        if isinstance(exc, MalformedHeader) and header is not None:
            self._send_error(self._quoted(*header), ECA.INTERNAL, "CAS: Missaligned protocol rejected")
        else:
            self._error(None, ECA.INTERNAL, f"CAS: {exc}")

    def _bad_id(self, raw) -> None:
        # rsrv answers an unknown sid/subscription id with ECA_INTERNAL and drops the circuit: the
        # client's view of the server is corrupt.
        self._error(raw, ECA.INTERNAL, f"Bad Resource ID at ../rsrv/camessage.c.{_BAD_ID_AT[raw[0]]}")
        self._closing = True

    # -- handlers --------------------------------------------------------------------------------------

    def _version(self, raw) -> None:
        priority, version = raw[1], raw[2]
        self.client_version = version
        if version < MIN_CLIENT_VERSION or priority > MAX_PRIORITY:
            # rsrv ignores clients older than CA 4.4 and priorities past 99: it drops the circuit
            self._closing = True
            return
        self.client_priority = priority
        if self.dispatch[Command.ECHO] != self._echo:
            self.dispatch.clear()
            self.dispatch.update(self._served)

    def _too_old(self, raw) -> None:
        """A request before any supported VERSION: rsrv refuses it with ECA_DEFUNCT and discards what else
        the same receive brought (its drain count underflows then, so it stays deaf to the circuit)."""
        self._error(raw, ECA.DEFUNCT, f"CAS: Client version {self.client_version} too old")
        batch = self._batch
        if not batch or raw is not batch[-1] or self.parser.buffered:
            self.dispatch.update(dict.fromkeys(range(_TCP_COMMANDS), self._ignore))
            self._deaf = True

    def _refuse_unversioned(self, exc: FramingError) -> bool:
        """Whether a request the parser cannot frame is one rsrv refuses as from a client of no supported
        version, which it does before it looks at the payload size. A misaligned size (0xFFFF, which is
        not read as an extended header yet, say) then gets ECA_DEFUNCT and not a dropped circuit; rsrv
        discards the message as its size says, parses on after it, and goes deaf when the receive brought
        more than that (its drain count underflows)."""
        header = getattr(exc, "header", None)
        if (not isinstance(exc, MalformedHeader) or header is None or header.command == Command.VERSION
                or self.dispatch.get(Command.ECHO) == self._echo):
            return False
        self._send_error(self._quoted(*header), ECA.DEFUNCT,
                         f"CAS: Client version {self.client_version} too old")
        drain = _HEADER_SIZE + header.payload_size - self.parser.buffered
        if drain < 0:
            self._deaf = True
        else:
            self._drain = drain
            self.parser = StreamParser(Role.SERVER, max_payload=self.parser.max_payload,
                                       extended_headers=False)
        return True

    def _ignore(self, raw) -> None:
        pass

    def _unknown_command(self, raw) -> None:
        """A command code past rsrv's jump table. Before a supported VERSION it is refused like any other
        request; after it, an ERROR and the circuit dropped (rsrv's bad_tcp_cmd_action)."""
        served = self.dispatch.get(Command.ECHO)
        if served == self._echo:
            self._error(raw, ECA.INTERNAL, "invalid (damaged?) request code from TCP")
            self._closing = True
        else:
            served(raw)     # what an unversioned circuit does with a request now (_too_old, _ignore)

    def _too_large(self, raw, elements: int, what: str) -> bool:
        """Whether a reply of ``elements`` elements is more than a client older than CA 4.9 can take;
        if so, rsrv's ERROR (ECA_16KARRAYCLIENT) is queued."""
        command, data_type, data_count, sid, ioid, payload = raw
        if elements < LARGE_MESSAGE and payload_size(data_type, elements) < LARGE_MESSAGE:
            return False
        served = self.channels[sid]
        name = served.channel.record.NAME
        self._error(raw, ECA.ARRAY16KCLIENT,
                    f'server unable to load {what} response into protocol buffer PV="{name}" dbf={data_type} '
                    f'count={elements} avail={ioid} max bytes={self.large_buffer}', served.cid)
        return True

    def _name_of(self, raw, what: str, too_long: str) -> str | None:
        """The text of a HOST_NAME or CLIENT_NAME, or None when rsrv refuses it (after a channel exists:
        an ERROR; without a NUL within the payload, or too long: an ERROR and the circuit dropped)."""
        payload = bytes(raw[5])
        if self.channels:
            self._error(raw, ECA.INTERNAL, f"attempts to use protocol to set {what} name after creating "
                                           f"first channel ignored by server")
            return None
        end = payload.find(b"\0")
        if end < 0 or end + 1 > _MAX_NAME:
            self._error(raw, ECA.INTERNAL, too_long)
            self._closing = True
            return None
        return payload[:end].decode("latin-1")

    def _host_name(self, raw) -> None:
        name = self._name_of(raw, "host", "bad (very long) host name")
        if name is not None:
            self.host_name = name

    def _client_name(self, raw) -> None:
        name = self._name_of(raw, "user", "a very long user name was specified")
        if name is not None:
            self.client_name = name

    def _echo(self, raw) -> None:
        # rsrv sends the request back as it came, header fields and payload
        command, data_type, data_count, p1, p2, payload = raw
        self.out += pack_header(Command.ECHO, len(payload), data_type, data_count, p1, p2)
        self.out += payload

    def _read_sync(self, raw) -> None:
        command, data_type, data_count, p1, p2, payload = raw
        self.out += pack_header(Command.READ_SYNC, 0, data_type, data_count, p1, p2)

    def _events_off(self, raw) -> None:
        self.events_on = False

    def _events_on(self, raw) -> None:
        self.events_on = True
        self.ring()

    def _search(self, raw) -> None:
        command, reply_flag, version, cid, cid2, payload = raw
        if version < MIN_CLIENT_VERSION:
            self._closing = True     # rsrv: a search from a client older than CA 4.4 drops the circuit
            return
        if len(payload) <= 1:
            return                   # rsrv ignores an empty name
        if self.database.name_exists(requested_name(payload)):
            self.out += pack_header(Command.SEARCH, 0, self.server_port, 0, 0xFFFFFFFF, cid2)
        elif reply_flag == DO_REPLY:
            self.out += pack_header(Command.NOT_FOUND, 0, reply_flag, version, cid, cid2)

    def _create_chan(self, raw) -> None:
        command, data_type, data_count, cid, version, payload = raw
        # the client's minor version travels here too (since CA 4.1), and replaces the VERSION's
        self.client_version = version
        if version < MIN_CLIENT_VERSION:
            self._closing = True
            return
        if len(payload) <= 1:
            return                   # rsrv ignores an empty name
        channel = self.database.lookup(requested_name(payload))
        if channel is None:
            self.out += pack_header(Command.CREATE_CH_FAIL, 0, 0, 0, cid, 0)
            return
        sid = next(_sid_counter) & 0xFFFFFFFF
        access = int(channel.access)
        self.channels[sid] = ServedChannel(cid, sid, channel, access)
        count = channel.max_count
        if version < LARGE_ARRAY_VERSION and count >= 0xFFFF:
            count = 0xFFFE           # what a client without extended headers can be told
        self.out += pack_header(Command.ACCESS_RIGHTS, 0, 0, 0, cid, access)
        self.out += pack_header(Command.CREATE_CHAN, 0, int(channel.native_type), count, cid, sid)

    def _read_notify(self, raw) -> None:
        command, data_type, data_count, sid, ioid, payload = raw
        if data_type > _MAX_DATA_TYPE:
            self._closing = True     # rsrv: RSRV_ERROR, no reply, the circuit is dropped
            return
        served = self.channels.get(sid)
        if served is None:
            self._bad_id(raw)
            return
        channel = served.channel
        if self._client_version < LARGE_ARRAY_VERSION and self._too_large(
                raw, data_count or channel.max_count, "read (or subscription update)"):
            return
        if not served.access & _READ:
            self.out += failed_read(Command.READ_NOTIFY, data_type, data_count, ECA.NORDACCESS, ioid)
            return
        try:
            body, count = channel.read(data_type, data_count)
        except CAError:
            self.out += failed_read(Command.READ_NOTIFY, data_type, data_count, ECA.GETFAIL, ioid)
            return
        self.out += pack_header(_READ_NOTIFY, len(body), data_type, count, _NORMAL, ioid)
        self.out += body

    def _read(self, raw) -> None:
        command, data_type, data_count, sid, ioid, payload = raw
        served = self.channels.get(sid)
        if served is None:
            self._bad_id(raw)
            return
        channel = served.channel
        if data_type > _MAX_DATA_TYPE:
            self._error(raw, ECA.BADTYPE, channel.record.NAME, served.cid)
            self._closing = True
            return
        if self._client_version < LARGE_ARRAY_VERSION and self._too_large(raw, data_count, "read"):
            return
        if not served.access & _READ:
            self._error(raw, ECA.NORDACCESS, channel.record.NAME, served.cid)
            return
        if data_count == 0 and data_type not in (ChannelType.PUT_ACKT, ChannelType.PUT_ACKS):
            # rsrv's plain READ takes count 0 literally: the metadata alone, no value (dbGet refuses the
            # acknowledgement types all the same: below, ECA_GETFAIL)
            body = channel.read_metadata(data_type)
            self.out += pack_header(Command.READ, len(body), data_type, 0, served.cid, ioid) + body
            return
        try:
            body, count = channel.read(data_type, data_count)
        except CAError:
            self._error(raw, ECA.GETFAIL, channel.record.NAME, served.cid)
            return
        if data_type == ChannelType.STRING and data_count == 1:
            # and cuts a single string after its NUL (padded to 8)
            size = bytes(body).find(b"\0") + 1 or len(body)
            body = body[:size] + bytes(-size % 8)
        self.out += pack_header(Command.READ, len(body), data_type, count, served.cid, ioid) + body

    def _write(self, raw) -> None:
        command, data_type, data_count, sid, ioid, payload = raw
        served = self.channels.get(sid)
        if served is None:
            self._bad_id(raw)
            return
        channel = served.channel
        # rsrv names the record, not the field, in the ERROR that reports a failed put.
        if not served.access & _WRITE:
            self._error(raw, ECA.NOWTACCESS, channel.record.NAME, served.cid)
            return
        try:
            channel.write(data_type, data_count, payload)
        except CAError as exc:
            self._error(raw, exc.eca, channel.record.NAME, served.cid)
            if data_type > _MAX_DATA_TYPE:
                self._closing = True     # rsrv drops a circuit that sends a type it cannot convert

    def _write_notify(self, raw) -> None:
        command, data_type, data_count, sid, ioid, payload = raw
        served = self.channels.get(sid)
        if served is None:
            self._bad_id(raw)
            return None
        if served.put_pending is not None:
            # rsrv serialises put-callbacks per channel: it reads nothing more from the circuit until
            # the one in progress completes
            return self._write_notify_after(served, raw)
        channel = served.channel
        if data_type > _MAX_DATA_TYPE:
            self.out += pack_header(Command.WRITE_NOTIFY, 0, data_type, data_count, ECA.BADTYPE, ioid)
            self._closing = True
            return
        if not served.access & _WRITE:
            self.out += pack_header(Command.WRITE_NOTIFY, 0, data_type, data_count, ECA.NOWTACCESS, ioid)
            return
        status = ECA.NORMAL
        if data_type in _NOT_NOTIFY_PUTTABLE:
            status = ECA.PUTFAIL
        else:
            try:
                completion = channel.write(data_type, data_count, payload, notify=True)
            except ProcessingFailed:
                completion = None   # dbNotify reports only a failed put: a failed processing completes
            except CAError as exc:
                status = exc.eca
        if status != ECA.NORMAL:
            completion = None
            if status != ECA.NOWTACCESS:
                completion = getattr(channel, "base", channel).process_after_failed_notify()
        if completion is None:
            self.out += pack_header(Command.WRITE_NOTIFY, 0, data_type, data_count, status, ioid)
        else:
            served.put_pending = pending = PendingPut(data_type, data_count, ioid)
            self._nursery.start_soon(self._complete_write, served, pending, completion, status)
        return None

    async def _write_notify_after(self, served: ServedChannel, raw) -> None:
        await self._send_pending()      # what was answered so far goes out while we wait
        pending = served.put_pending
        with trio.move_on_after(PUT_CALLBACK_WAIT):
            await pending.done.wait()
        if served.put_pending is pending:
            # as rsrv after its 60 s wait: the previous put-callback is cancelled and reported
            log.warning("circuit from %s: put-callback %d still in progress after %s s; cancelled",
                        self.peer, pending.ioid, PUT_CALLBACK_WAIT)
            pending.scope.cancel()
            served.put_pending = None
            self.out += pack_header(Command.WRITE_NOTIFY, 0, pending.data_type, pending.count,
                                    ECA.PUTCBINPROG, pending.ioid)
        self._write_notify(raw)

    async def _complete_write(self, served: ServedChannel, pending: PendingPut, completion,
                              status: int = ECA.NORMAL) -> None:
        with pending.scope:
            try:
                await completion.wait()
            except CAError as exc:
                status = exc.eca
            # Updates posted while the put completed (a motor's final RBV, DMOV) go before the reply: a
            # client that reads the position as soon as its put returns must see the new one.
            self._queue_events()
            self.out += pack_header(Command.WRITE_NOTIFY, 0, pending.data_type, pending.count, status,
                                    pending.ioid)
            self.ring()
        if served.put_pending is pending:
            served.put_pending = None
        pending.done.set()

    def _event_add(self, raw) -> None:
        command, data_type, data_count, sid, subscriptionid, payload = raw
        if data_type > _MAX_DATA_TYPE:
            self._closing = True     # rsrv: RSRV_ERROR, no reply, the circuit is dropped
            return
        served = self.channels.get(sid)
        if served is None:
            self._bad_id(raw)
            return
        mask = int.from_bytes(bytes(payload[12:14]), "big") if len(payload) >= 14 else 0
        if not 0 < mask <= 0xFF:
            # db_add_event refuses a mask selecting no event (or unknown bits); rsrv reports it as an
            # allocation failure and drops the circuit
            self._error(raw, ECA.ALLOCMEM, f"subscription install into record {served.channel.record.NAME} "
                                           f"failed", served.cid)
            self._closing = True
            return
        if not served.access & _READ:
            self.out += failed_read(Command.EVENT_ADD, data_type, data_count, ECA.NORDACCESS, subscriptionid)
            return
        # A subscription id the client already uses (on this channel or another) starts one more
        # subscription, as in rsrv: both send updates.
        sub = Subscription(self, subscriptionid, served, data_type, data_count, mask, self._ring_to_join(),
                           len(payload))
        self.subscriptions.add(sub)
        served.subscriptions.append(sub)
        # the channel sends the first update (a filtered channel runs it through its filters)
        sub.unsubscribe = served.channel.subscribe(sub.post, mask, first=True)

    def subscription(self, subscriptionid: int) -> Subscription | None:
        """The oldest open subscription with this id, on any channel."""
        return min((sub for sub in self.subscriptions if sub.subscriptionid == subscriptionid),
                   key=lambda sub: sub.serial, default=None)

    def _cancel(self, sub: Subscription) -> None:
        self.subscriptions.discard(sub)
        if sub.unsubscribe is not None:
            sub.unsubscribe()
            sub.unsubscribe = None
        sub.drop_pending()
        sub.ring.subscriptions -= 1

    def _ring_to_join(self) -> EventRing:
        """The first ring with room for one more subscription (db_add_event), a new one if none has."""
        for ring in self.rings:
            if ring.subscriptions < SUBSCRIPTIONS_PER_RING:
                break
        else:
            ring = EventRing()
            self.rings.append(ring)
        ring.subscriptions += 1
        return ring

    def _event_cancel(self, raw) -> None:
        command, data_type, data_count, sid, subscriptionid, payload = raw
        served = self.channels.get(sid)
        if served is None:
            self._bad_id(raw)
            return
        sub = next((sub for sub in served.subscriptions if sub.subscriptionid == subscriptionid), None)
        if sub is None:
            # rsrv looks for the subscription among that channel's only, and drops the circuit
            self._error(raw, ECA.BADMONID, served.channel.record.NAME, served.cid)
            self._closing = True
            return
        served.subscriptions.remove(sub)
        self._cancel(sub)
        # Updates still queued were dropped (db_cancel_event makes rsrv's queued events defunct, sent
        # even under EVENTS_OFF never). rsrv confirms with the EVENT_ADD's own header (its type and
        # count, not the cancel's).
        self.out += pack_header(Command.EVENT_ADD, 0, sub.data_type, sub.count, sid, subscriptionid)

    def _clear_channel(self, raw) -> None:
        command, data_type, data_count, sid, cid, payload = raw
        served = self.channels.pop(sid, None)
        if served is None:
            self._bad_id(raw)
            return
        for sub in served.subscriptions:
            self._cancel(sub)
        served.subscriptions.clear()
        # rsrv echoes the request's header fields
        self.out += pack_header(Command.CLEAR_CHANNEL, 0, data_type, data_count, sid, cid)
