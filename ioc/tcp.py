"""One task per TCP virtual circuit: requests in, replies and monitor updates out.

The reader loop turns received bytes into raw messages (``StreamParser.next_raw``) and dispatches on the
command id through a table; replies are appended to one output buffer and sent with one ``send_all`` per
batch of requests. Monitor updates arrive from the database synchronously (``FieldChannel.subscribe``),
are queued per subscription with the *coalesce-newest* policy (see ``Subscription``) and are sent by the
writer task, so that a slow client never delays the database or any other client.
"""
from __future__ import annotations

import collections
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from caproto.constants import CA_MINOR_VERSION, DO_REPLY, ECA, AccessRights, Command, Role
from caproto.dbr import ChannelType, payload_size
from caproto.errors import CAError, FramingError, PayloadTooLarge
from caproto.framing import NEED_DATA, StreamParser
from caproto.messages import pack_header

from .database import ProcessFailed

log = logging.getLogger(__name__)

# Events queued per subscription before coalescing starts (rsrv keeps a few per subscription, then
# replaces the newest one).
SUBSCRIPTION_QUEUE = 4
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
_MAX_DATA_TYPE = max(ChannelType)
# Types a put-callback cannot carry (rsrv's db_put_process maps only the plain types and PUT_ACKT/ACKS);
# a plain WRITE takes the value out of a STS/TIME/GR/CTRL struct.
_NOT_NOTIFY_PUTTABLE = frozenset(range(ChannelType.STS_STRING, ChannelType.CTRL_DOUBLE + 1)) | {
    ChannelType.STSACK_STRING, ChannelType.CLASS_NAME}

_sid_counter = itertools.count()  # server-wide, as rsrv's resource ids
# Set when a circuit's writer was woken: a reader busy with a long batch yields soon after. (Asking trio
# whether any task is runnable costs more than the checkpoint it would save.)
_writer_woken = False


_READ = int(AccessRights.READ)
_WRITE = int(AccessRights.WRITE)


@dataclass(slots=True)
class ServedChannel:
    cid: int
    sid: int
    channel: object  # ioc.database.FieldChannel
    access: int      # the channel's AccessRights as a plain int: IntFlag's & costs a call per request
    subscriptions: set[int] = field(default_factory=set)
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


class Subscription:
    """One EVENT_ADD: what the client asked for, and its bounded queue of encoded updates.

    Policy (coalesce-newest): at most ``SUBSCRIPTION_QUEUE`` updates wait per subscription; when the
    client falls behind, the newest update replaces the last queued one, so a slow client sees the latest
    value and never makes the server buffer without bound.
    """

    __slots__ = ("subscriptionid", "served", "data_type", "count", "mask", "queue", "unsubscribe",
                 "coalesced", "circuit")

    def __init__(self, circuit: Circuit, subscriptionid: int, served: ServedChannel, data_type: int,
                 count: int, mask: int) -> None:
        self.circuit = circuit
        self.subscriptionid = subscriptionid
        self.served = served
        self.data_type = data_type
        self.count = count
        self.mask = mask
        self.queue: collections.deque[bytes] = collections.deque()
        self.coalesced = 0
        self.unsubscribe: Callable[[], None] | None = None

    def encode(self) -> bytes:
        try:
            payload, count = self.served.channel.read(self.data_type, self.count)
        except CAError:
            return failed_read(Command.EVENT_ADD, self.data_type, self.count, ECA.GETFAIL,
                               self.subscriptionid)
        return pack_header(Command.EVENT_ADD, len(payload), self.data_type, count, ECA.NORMAL,
                           self.subscriptionid) + payload

    def post(self, mask: int) -> None:
        """Channel callback: called synchronously with the first update and every post the channel
        selected for this subscription's mask."""
        message = self.encode()
        if len(self.queue) >= SUBSCRIPTION_QUEUE:
            self.queue[-1] = message
            self.coalesced += 1
        else:
            self.queue.append(message)
        self.circuit.schedule(self)


class Circuit:
    """The server side of one CA virtual circuit."""

    def __init__(self, stream: trio.SocketStream, database, server_port: int,
                 max_payload: int | None = None) -> None:
        self.stream = stream
        self.database = database
        self.server_port = server_port
        self.parser = StreamParser(Role.SERVER, max_payload=max_payload)
        self.out = bytearray()
        self.channels: dict[int, ServedChannel] = {}
        self.subscriptions: dict[int, Subscription] = {}
        self.ready: dict[int, Subscription] = {}  # insertion-ordered set of subscriptions with queued events
        self.events_on = True
        self.client_version = 0
        self.client_priority = 0
        self.host_name = ""
        self.client_name = ""
        self._doorbell_send, self._doorbell_recv = trio.open_memory_channel(1)
        self._send_lock = trio.StrictFIFOLock()
        self._nursery: trio.Nursery | None = None
        self._outer: trio.Nursery | None = None
        self._closing = False
        peer = getattr(stream.socket, "getpeername", lambda: ("?", 0))()
        self.peer = f"{peer[0]}:{peer[1]}"
        self.dispatch: dict[int, Callable] = {
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
        for sub in self.subscriptions.values():
            if sub.unsubscribe is not None:
                sub.unsubscribe()
                sub.unsubscribe = None
        self.subscriptions.clear()
        self.ready.clear()

    async def _reader(self) -> None:
        global _writer_woken
        parser = self.parser
        dispatch = self.dispatch
        while not self._closing:
            data = await self.stream.receive_some(1 << 16)
            if not data:
                return
            parser.feed(data)
            handled = 0
            while True:
                try:
                    raw = parser.next_raw()
                except PayloadTooLarge as exc:
                    # As rsrv: refuse that request, skip its payload, keep the circuit.
                    self._send_error(exc.header.pack(), ECA.TOLARGE,
                                     f"CAS: Server unable to load large request message. {exc}")
                    continue
                except FramingError as exc:
                    log.warning("circuit from %s: %s; disconnecting", self.peer, exc)
                    self._error(None, ECA.INTERNAL, f"CAS: {exc}")
                    self._closing = True
                    break
                if raw is NEED_DATA:
                    break
                handler = dispatch.get(raw[0])
                if handler is None:
                    self._error(raw, ECA.INTERNAL, "invalid (damaged?) request code from TCP")
                    self._closing = True
                    break
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
                if handled % YIELD_EVERY == 0 and (_writer_woken or handled % FAIR_EVERY == 0):
                    # Let other circuits' writers send the updates these requests posted: without this a
                    # client streaming puts starves monitors down to a few coalesced updates per receive.
                    _writer_woken = False
                    await trio.lowlevel.checkpoint()
            if self.out or self.ready:
                await self._send_pending()

    def ring(self) -> None:
        global _writer_woken
        _writer_woken = True
        try:
            self._doorbell_send.send_nowait(None)
        except trio.WouldBlock:
            pass  # already rung: the writer will see everything queued so far
        except trio.ClosedResourceError:
            pass  # the circuit is closing; nothing more will be sent

    def schedule(self, sub: Subscription) -> None:
        self.ready[sub.subscriptionid] = sub
        if self.events_on:
            self.ring()

    async def _writer(self) -> None:
        """Sends monitor updates (and put-callback replies) that arrive between requests."""
        async for _ in self._doorbell_recv:
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
        """Move queued monitor updates into the output buffer (unless the client sent EVENTS_OFF)."""
        out, ready = self.out, self.ready
        if not self.events_on:
            return
        while ready and len(out) < limit:
            sub = ready.pop(next(iter(ready)))
            queue = sub.queue
            while queue:
                out += queue.popleft()

    # -- helpers ---------------------------------------------------------------------------------------

    def _error(self, raw, eca: int, message: str, cid: int = 0xFFFFFFFF) -> None:
        """An ERROR response quoting the offending request's header, as rsrv's send_err does."""
        if raw is None:
            original = pack_header(0, 0, 0, 0, 0, 0)
        else:
            command, data_type, data_count, p1, p2, payload = raw
            original = pack_header(command, len(payload), data_type, data_count, p1, p2)
        self._send_error(original, eca, message, cid)

    def _send_error(self, original: bytes, eca: int, message: str, cid: int = 0xFFFFFFFF) -> None:
        text = message.encode("latin-1", "replace") + b"\0"
        body = original + text + b"\0" * (-(len(original) + len(text)) % 8)
        self.out += pack_header(Command.ERROR, len(body), 0, 0, cid, eca) + body

    def _bad_id(self, raw) -> None:
        # rsrv answers an unknown sid/subscription id with ECA_INTERNAL and drops the circuit: the
        # client's view of the server is corrupt.
        self._error(raw, ECA.INTERNAL, "Bad Resource ID")
        self._closing = True

    # -- handlers --------------------------------------------------------------------------------------

    def _version(self, raw) -> None:
        self.client_priority = raw[1]
        self.client_version = raw[2]

    def _host_name(self, raw) -> None:
        self.host_name = bytes(raw[5]).split(b"\0", 1)[0].decode("latin-1")

    def _client_name(self, raw) -> None:
        self.client_name = bytes(raw[5]).split(b"\0", 1)[0].decode("latin-1")

    def _echo(self, raw) -> None:
        self.out += pack_header(Command.ECHO, 0, 0, 0, 0, 0)

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
        name = bytes(payload).split(b"\0", 1)[0].decode("latin-1")
        if self.database.lookup(name) is not None:
            self.out += pack_header(Command.SEARCH, 0, self.server_port, 0, 0xFFFFFFFF, cid2)
        elif reply_flag == DO_REPLY:
            self.out += pack_header(Command.NOT_FOUND, 0, reply_flag, version, cid, cid2)

    def _create_chan(self, raw) -> None:
        command, data_type, data_count, cid, version, payload = raw
        name = bytes(payload).split(b"\0", 1)[0].decode("latin-1")
        channel = self.database.lookup(name)
        if channel is None:
            self.out += pack_header(Command.CREATE_CH_FAIL, 0, 0, 0, cid, 0)
            return
        sid = next(_sid_counter) & 0xFFFFFFFF
        access = int(channel.access)
        self.channels[sid] = ServedChannel(cid, sid, channel, access)
        self.out += pack_header(Command.ACCESS_RIGHTS, 0, 0, 0, cid, access)
        self.out += pack_header(Command.CREATE_CHAN, 0, int(channel.native_type), channel.max_count, cid, sid)

    def _read_notify(self, raw) -> None:
        command, data_type, data_count, sid, ioid, payload = raw
        served = self.channels.get(sid)
        if served is None:
            self._bad_id(raw)
            return
        channel = served.channel
        if data_type > _MAX_DATA_TYPE:
            self._closing = True     # rsrv: RSRV_ERROR, no reply, the circuit is dropped
            return
        if not served.access & _READ:
            self.out += failed_read(Command.READ_NOTIFY, data_type, data_count, ECA.NORDACCESS, ioid)
            return
        try:
            body, count = channel.read(data_type, data_count)
        except CAError:
            self.out += failed_read(Command.READ_NOTIFY, data_type, data_count, ECA.GETFAIL, ioid)
            return
        self.out += pack_header(Command.READ_NOTIFY, len(body), data_type, count, ECA.NORMAL, ioid)
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
        try:
            body, count = channel.read(data_type, data_count)
        except CAError:
            self._error(raw, ECA.GETFAIL, channel.record.NAME, served.cid)
            return
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
        if data_type in _NOT_NOTIFY_PUTTABLE:
            self.out += pack_header(Command.WRITE_NOTIFY, 0, data_type, data_count, ECA.PUTFAIL, ioid)
            return
        try:
            completion = channel.write(data_type, data_count, payload, notify=True)
        except ProcessFailed:
            completion = None       # dbNotify completes whatever process() returned
        except CAError as exc:
            self.out += pack_header(Command.WRITE_NOTIFY, 0, data_type, data_count, exc.eca, ioid)
            return
        if completion is None:
            self.out += pack_header(Command.WRITE_NOTIFY, 0, data_type, data_count, ECA.NORMAL, ioid)
        else:
            served.put_pending = pending = PendingPut(data_type, data_count, ioid)
            self._nursery.start_soon(self._complete_write, served, pending, completion)
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

    async def _complete_write(self, served: ServedChannel, pending: PendingPut, completion) -> None:
        with pending.scope:
            try:
                await completion.wait()
                status = ECA.NORMAL
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
        served = self.channels.get(sid)
        if served is None:
            self._bad_id(raw)
            return
        mask = int.from_bytes(bytes(payload[12:14]), "big") if len(payload) >= 14 else 0
        if data_type > _MAX_DATA_TYPE:
            self._closing = True     # rsrv: RSRV_ERROR, no reply, the circuit is dropped
            return
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
        old = self.subscriptions.pop(subscriptionid, None)
        if old is not None and old.unsubscribe is not None:
            old.unsubscribe()
        sub = Subscription(self, subscriptionid, served, data_type, data_count, mask)
        self.subscriptions[subscriptionid] = sub
        served.subscriptions.add(subscriptionid)
        # the channel sends the first update (a filtered channel runs it through its filters)
        sub.unsubscribe = served.channel.subscribe(sub.post, mask, first=True)

    def _cancel(self, subscriptionid: int) -> Subscription | None:
        sub = self.subscriptions.pop(subscriptionid, None)
        if sub is None:
            return None
        if sub.unsubscribe is not None:
            sub.unsubscribe()
        sub.served.subscriptions.discard(subscriptionid)
        self.ready.pop(subscriptionid, None)
        return sub

    def _event_cancel(self, raw) -> None:
        command, data_type, data_count, sid, subscriptionid, payload = raw
        served = self.channels.get(sid)
        if served is None:
            self._bad_id(raw)
            return
        if subscriptionid not in served.subscriptions:
            # rsrv looks for the subscription among that channel's only, and drops the circuit
            self._error(raw, ECA.BADMONID, served.channel.record.NAME, served.cid)
            self._closing = True
            return
        sub = self._cancel(subscriptionid)
        # Pending updates go first so the client sees the cancel confirmation last.
        self.out += b"".join(sub.queue)
        self.out += pack_header(Command.EVENT_ADD, 0, data_type, data_count, sid, subscriptionid)

    def _clear_channel(self, raw) -> None:
        command, data_type, data_count, sid, cid, payload = raw
        served = self.channels.pop(sid, None)
        if served is None:
            self._bad_id(raw)
            return
        for subscriptionid in list(served.subscriptions):
            self._cancel(subscriptionid)
        self.out += pack_header(Command.CLEAR_CHANNEL, 0, 0, 0, sid, cid)
