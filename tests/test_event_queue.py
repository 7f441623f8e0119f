"""The server's monitor queue policy (ioc.tcp.Subscription), in process: how many updates wait for a
client that falls behind, which ones are coalesced, and when a stalled client is dropped."""
from __future__ import annotations

import struct

import trio
import trio.testing

from caproto.constants import Command
from caproto.dbr import ChannelType
from ioc import tcp
from ioc.config import load_config
from ioc.database import Database

DOUBLE = int(ChannelType.DOUBLE)


def header(command: int, size: int, data_type: int, count: int, p1: int, p2: int) -> bytes:
    return struct.pack(">HHHHII", command, size, data_type, count, p1, p2)


def event_add(sid: int, subscriptionid: int) -> bytes:
    return header(Command.EVENT_ADD, 16, DOUBLE, 1, sid, subscriptionid) + struct.pack(">fffHxx", 0, 0, 0, 5)


class _Peer:
    def getpeername(self) -> tuple[str, int]:
        return ("127.0.0.1", 1)


class _NoStream:
    """The circuit is driven by hand here: nothing is sent or received."""
    socket = _Peer()


def database(tmp_path) -> Database:
    path = tmp_path / "q.db"
    path.write_text('record(ao, "q:ao") { field(VAL, "0") }\n')
    return Database.from_config(load_config(path))


def feed(circuit: tcp.Circuit, data: bytes) -> None:
    circuit.parser.feed(data)
    for raw in circuit.parser.next_raws():
        circuit.dispatch[raw[0]](raw)


def subscribed_circuit(tmp_path, subscriptions: int = 1) -> tuple[Database, tcp.Circuit]:
    db = database(tmp_path)
    circuit = tcp.Circuit(_NoStream(), db, 5064)
    feed(circuit, header(Command.VERSION, 0, 0, 13, 0, 0) + header(Command.CREATE_CHAN, 8, 0, 0, 7, 13)
         + b"q:ao\0\0\0\0")
    sid = next(iter(circuit.channels))
    feed(circuit, b"".join(event_add(sid, i) for i in range(subscriptions)))
    return db, circuit


def value_of(message: bytes) -> float:
    return struct.unpack(">d", message[16:24])[0]


def put(db: Database, value: float, pv: str = "q:ao") -> None:
    db.lookup(pv).write(DOUBLE, 1, struct.pack(">d", value))


def waiting(circuit: tcp.Circuit, sub: tcp.Subscription) -> list[bytes]:
    """The updates of ``sub`` waiting in the circuit's queue, in order."""
    return [message for message, owner in sub.ring if owner is sub and message is not None]


def sent(chunk: bytes) -> list[tuple[int, float]]:
    """(subscription id, value) of every DBR_DOUBLE update in ``chunk``."""
    updates, pos = [], 0
    while pos < len(chunk):
        command, size, _, _, _, subscriptionid = struct.unpack_from(">HHHHII", chunk, pos)
        if command == Command.EVENT_ADD and size == 8:
            updates.append((subscriptionid, struct.unpack_from(">d", chunk, pos + 16)[0]))
        pos += 16 + size
    return updates


def test_a_lagging_subscription_queues_while_the_ring_has_room_then_coalesces(tmp_path):
    db, circuit = subscribed_circuit(tmp_path)
    for value in range(1, 501):
        put(db, value)
    sub = circuit.subscription(0)
    room = tcp.EVENT_RING - tcp.EVENTS_PER_RING
    assert len(waiting(circuit, sub)) == len(sub.ring) == room
    # the first update and the earliest puts kept in order; the newest value in the last place
    values = [value_of(m) for m in waiting(circuit, sub)]
    assert values[:-1] == list(range(room - 1))
    assert values[-1] == 500
    assert sub.coalesced == 500 + 1 - room


def test_subscriptions_share_the_ring_and_more_of_them_get_more_rings(tmp_path):
    db, circuit = subscribed_circuit(tmp_path, subscriptions=10)
    for value in range(1, 101):
        put(db, value)
    assert len(circuit.rings) == 1
    assert len(circuit.rings[0]) == tcp.EVENT_RING - tcp.EVENTS_PER_RING
    assert all(value_of(waiting(circuit, sub)[-1]) == 100 for sub in circuit.subscriptions)
    _, many = subscribed_circuit(tmp_path, subscriptions=tcp.SUBSCRIPTIONS_PER_RING + 1)
    assert [ring.subscriptions for ring in many.rings] == [tcp.SUBSCRIPTIONS_PER_RING, 1]
    assert many.subscription(tcp.SUBSCRIPTIONS_PER_RING).ring is many.rings[1]


def test_a_later_ring_is_sent_after_an_earlier_one_whatever_the_post_order(tmp_path):
    """rsrv's event task empties its queues one after the other: the updates of a subscription in the
    second ring follow those of the first ring's, even those posted later."""
    db, circuit = subscribed_circuit(tmp_path, subscriptions=tcp.SUBSCRIPTIONS_PER_RING + 1)
    circuit._collect()      # the first updates
    last = tcp.SUBSCRIPTIONS_PER_RING
    for sub in circuit.subscriptions:
        if sub.subscriptionid != last:
            sub.ring.clear()
            sub.pending = 0
    put(db, 5.0)
    order = [subscriptionid for subscriptionid, _ in sent(circuit._collect())]
    assert order == [*range(last), last]
    # a cancelled subscription frees its place: the next one joins the first ring again
    sid = next(iter(circuit.channels))
    feed(circuit, header(Command.EVENT_CANCEL, 0, DOUBLE, 1, sid, 3))
    feed(circuit, event_add(sid, 99))
    assert circuit.subscription(99).ring is circuit.rings[0]


def test_a_string_field_queues_one_update_and_sends_its_newest_value(tmp_path):
    """dbEvent refers to a string field (no copy) in a queued update, and ignores a post while one
    waits: the waiting update goes out with the field as it is when sent."""
    path = tmp_path / "s.db"
    path.write_text('record(stringout, "s") { field(VAL, "a") }\n')
    db = Database.from_config(load_config(path))
    circuit = tcp.Circuit(_NoStream(), db, 5064)
    feed(circuit, header(Command.VERSION, 0, 0, 13, 0, 0) + header(Command.CREATE_CHAN, 8, 0, 0, 1, 13)
         + b"s\0\0\0\0\0\0\0")
    sid = next(iter(circuit.channels))
    string = int(ChannelType.STRING)
    feed(circuit, header(Command.EVENT_ADD, 16, string, 1, sid, 4) + struct.pack(">fffHxx", 0, 0, 0, 5))
    for text in (b"b", b"c", b"d"):
        db.lookup("s").write(string, 1, text + bytes(40 - len(text)))
    sub = circuit.subscription(4)
    assert sub.pending == 1
    chunk = circuit._collect()
    update = header(Command.EVENT_ADD, 40, string, 1, 1, 4)
    assert chunk.count(update) == 1
    at = chunk.index(update) + len(update)
    assert chunk[at:at + 2] == b"d\0"


def test_events_off_keeps_one_waiting_update_per_subscription(tmp_path):
    db, circuit = subscribed_circuit(tmp_path)
    feed(circuit, header(Command.EVENTS_OFF, 0, 0, 0, 0, 0))
    for value in range(1, 50):
        put(db, value)
    sub = circuit.subscription(0)
    assert [value_of(m) for m in waiting(circuit, sub)] == [49.0]
    # EVENTS_ON sends it
    feed(circuit, header(Command.EVENTS_ON, 0, 0, 0, 0, 0))
    chunk = circuit._collect()
    assert value_of(chunk[chunk.index(header(Command.EVENT_ADD, 8, DOUBLE, 1, 1, 0)):]) == 49.0
    assert not any(circuit.rings)


def test_updates_of_different_subscriptions_are_sent_in_the_order_they_were_posted(tmp_path):
    """As rsrv's one event ring per client: a camonitor of several PVs prints them in post order."""
    path = tmp_path / "two.db"
    path.write_text('record(ao, "a") { field(VAL, "0") }\nrecord(ao, "b") { field(VAL, "0") }\n')
    db = Database.from_config(load_config(path))
    circuit = tcp.Circuit(_NoStream(), db, 5064)
    feed(circuit, header(Command.VERSION, 0, 0, 13, 0, 0) + header(Command.CREATE_CHAN, 8, 0, 0, 1, 13)
         + b"a\0\0\0\0\0\0\0" + header(Command.CREATE_CHAN, 8, 0, 0, 2, 13) + b"b\0\0\0\0\0\0\0")
    sid_a, sid_b = (served.sid for served in sorted(circuit.channels.values(), key=lambda c: c.cid))
    feed(circuit, event_add(sid_a, 10) + event_add(sid_b, 20))
    for value, pv in ((1, "a"), (1, "b"), (2, "a"), (3, "a"), (2, "b")):
        put(db, value, pv)
    assert sent(circuit._collect()) == [(10, 0), (20, 0), (10, 1), (20, 1), (10, 2), (10, 3), (20, 2)]


def test_a_cancelled_subscription_sends_none_of_its_waiting_updates(tmp_path):
    db, circuit = subscribed_circuit(tmp_path, subscriptions=2)
    for value in range(1, 11):
        put(db, value)
    first, second = circuit.subscription(0), circuit.subscription(1)
    assert len(waiting(circuit, first)) == len(waiting(circuit, second)) == 11
    sid = next(iter(circuit.channels))
    feed(circuit, header(Command.EVENT_CANCEL, 0, DOUBLE, 1, sid, 0))
    assert waiting(circuit, first) == [] and len(waiting(circuit, second)) == 11
    chunk = circuit._collect()
    assert [subscriptionid for subscriptionid, _ in sent(chunk)] == [1] * 11
    assert not any(circuit.rings) and second.pending == 0
    feed(circuit, header(Command.CLEAR_CHANNEL, 0, 0, 0, sid, 7))
    assert not circuit.subscriptions


async def test_a_client_that_reads_nothing_is_dropped_after_the_stall_limit(tmp_path, autojump_clock):
    db = database(tmp_path)
    server_stream, client_stream = trio.testing.lockstep_stream_pair()
    server_stream.socket = _Peer()
    circuit = tcp.Circuit(server_stream, db, 5064)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(circuit.run)
        # the server's VERSION is read; then the client only sends (a subscription and puts)
        assert (await client_stream.receive_some(16))[:2] == b"\0\0"
        await client_stream.send_all(header(Command.VERSION, 0, 0, 13, 0, 0)
                                     + header(Command.CREATE_CHAN, 8, 0, 0, 7, 13) + b"q:ao\0\0\0\0")
        start = trio.current_time()
        with trio.fail_after(tcp.STALL_LIMIT + 5):
            while True:       # the server closes its end: the lockstep stream then refuses our sends
                try:
                    await client_stream.send_all(event_add(1, 0) if trio.current_time() == start else b"")
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                await trio.sleep(1)
        assert trio.current_time() - start >= tcp.STALL_LIMIT
