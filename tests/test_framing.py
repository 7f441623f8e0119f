"""caproto.framing: stream and datagram parsing, its documented errors, and properties over random input."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caproto import messages as m
from caproto.constants import DONT_REPLY, ECA, Command, Role
from caproto.dbr import ChannelType
from caproto.errors import FramingError, MalformedHeader, PayloadTooLarge, TruncatedDatagram, UnknownCommand
from caproto.framing import NEED_DATA, PAYLOAD_SIZE_CEILING, StreamParser, parse_datagram
from caproto.messages import Header, Message, encode, pack_header

DOCUMENTED = (PayloadTooLarge, MalformedHeader, TruncatedDatagram, UnknownCommand)

CLIENT_STREAM = [m.VersionRequest(0, 13), m.ClientNameRequest("op"), m.HostNameRequest("ws"),
                 m.CreateChanRequest("rec:ai", 1, 13), m.ReadNotifyRequest(ChannelType.TIME_DOUBLE, 1, 0, 1),
                 m.WriteNotifyRequest([2.5], ChannelType.DOUBLE, 1, 0, 2),
                 m.EventAddRequest(ChannelType.TIME_DOUBLE, 0, 0, 1, 0.0, 0.0, 0.0, 5),
                 m.ReadNotifyRequest(ChannelType.DOUBLE, 100000, 0, 3),   # extended header
                 m.EchoRequest(), m.ClearChannelRequest(0, 1)]


def parse_all(parser: StreamParser) -> list[Message]:
    return list(parser)


# --- the stream parser --------------------------------------------------------------------------------

def test_one_chunk_with_many_messages():
    parser = StreamParser(Role.SERVER)
    parser.feed(encode(*CLIENT_STREAM))
    assert parse_all(parser) == CLIENT_STREAM
    assert parser.buffered == 0
    assert parser.next_message() is NEED_DATA


def test_one_byte_at_a_time():
    parser = StreamParser(Role.SERVER)
    received = []
    for byte in encode(*CLIENT_STREAM):
        parser.feed(bytes([byte]))
        received += parse_all(parser)
    assert received == CLIENT_STREAM


def test_need_data_until_the_whole_message_and_buffered_counts_the_rest():
    wire = bytes(m.WriteNotifyRequest(np.arange(3.0), ChannelType.DOUBLE, 3, 0, 2))
    parser = StreamParser(Role.SERVER)
    parser.feed(wire[:-1])
    assert parser.next_message() is NEED_DATA
    assert parser.buffered == len(wire) - 1
    parser.feed(wire[-1:])
    assert parser.next_message() == m.WriteNotifyRequest(np.arange(3.0), ChannelType.DOUBLE, 3, 0, 2)
    assert parser.buffered == 0


def test_extended_header_split_between_its_16th_and_24th_byte():
    wire = bytes(m.ReadNotifyRequest(ChannelType.DOUBLE, 100000, 0, 3))
    parser = StreamParser(Role.SERVER)
    parser.feed(wire[:20])
    assert parser.next_raw() is NEED_DATA
    parser.feed(wire[20:])
    assert parser.next_raw() == (Command.READ_NOTIFY, ChannelType.DOUBLE, 100000, 0, 3, b"")


def test_next_raw_gives_header_fields_and_payload_bytes():
    parser = StreamParser(Role.SERVER)
    parser.feed(bytes(m.CreateChanRequest("abc", 9, 13)) + bytes(m.EchoRequest()))
    assert parser.next_raw() == (Command.CREATE_CHAN, 0, 0, 9, 13, b"abc\0\0\0\0\0")
    assert parser.next_raw() == (Command.ECHO, 0, 0, 0, 0, b"")
    assert parser.next_raw() is NEED_DATA


def test_next_raw_returns_any_command_id():
    parser = StreamParser(Role.SERVER)
    parser.feed(pack_header(200, 0, 1, 2, 3, 4))
    assert parser.next_raw() == (200, 1, 2, 3, 4, b"")


def test_the_role_decides_between_request_and_response():
    wire = bytes(m.ClearChannelRequest(4, 1))
    for role, cls in ((Role.SERVER, m.ClearChannelRequest), (Role.CLIENT, m.ClearChannelResponse)):
        parser = StreamParser(role)
        parser.feed(wire)
        assert type(parser.next_message()) is cls


def test_unknown_command_is_consumed_and_parsing_goes_on():
    parser = StreamParser(Role.SERVER)
    parser.feed(bytes(m.CreateChFailResponse(1)) + bytes(m.EchoRequest()))   # a server-only command
    with pytest.raises(UnknownCommand) as info:
        parser.next_message()
    assert info.value.header == Header(Command.CREATE_CH_FAIL, 0, 0, 0, 1, 0)
    assert parser.next_message() == m.EchoRequest()


def test_without_extended_headers_0xffff_is_a_plain_misaligned_size():
    """A peer older than CA 4.9 knows no extended header: its 0xFFFF is a size, one not a multiple of 8.
    The flag counts from the next message framed: what is buffered is not framed yet."""
    wire = bytes(m.ReadNotifyRequest(ChannelType.DOUBLE, 100000, 0, 3))
    parser = StreamParser(Role.SERVER, extended_headers=False)
    parser.feed(bytes(m.EchoRequest()) + wire)
    assert parser.next_raws() == [(Command.ECHO, 0, 0, 0, 0, b"")]
    with pytest.raises(MalformedHeader) as info:
        parser.next_raws()
    assert info.value.header[:4] == (Command.READ_NOTIFY, 0xFFFF, ChannelType.DOUBLE, 0)
    parser = StreamParser(Role.SERVER, extended_headers=False)
    parser.feed(bytes(m.VersionRequest(0, 13)) + wire)
    assert parser.next_raws() == [(Command.VERSION, 0, 13, 0, 0, b"")]
    parser.extended_headers = True
    assert parser.next_raws() == [(Command.READ_NOTIFY, ChannelType.DOUBLE, 100000, 0, 3, b"")]


def test_misaligned_payload_breaks_the_stream_for_good():
    parser = StreamParser(Role.SERVER)
    parser.feed(pack_header(Command.HOST_NAME, 5, 0, 0, 0, 0) + b"host\0" + bytes(m.EchoRequest()))
    for _ in range(2):
        with pytest.raises(MalformedHeader) as info:
            parser.next_raw()
        assert info.value.header.payload_size == 5


def test_payload_too_large_is_raised_from_the_header_alone():
    parser = StreamParser(Role.SERVER, max_payload=16384)
    parser.feed(pack_header(Command.WRITE_NOTIFY, 16392, ChannelType.DOUBLE, 2049, 0, 1))
    with pytest.raises(PayloadTooLarge) as info:
        parser.next_message()
    assert info.value.header == Header(Command.WRITE_NOTIFY, 16392, ChannelType.DOUBLE, 2049, 0, 1)


def test_payload_at_the_limit_is_accepted():
    wire = bytes(m.WriteNotifyRequest(np.zeros(2048), ChannelType.DOUBLE, 2048, 0, 1))
    parser = StreamParser(Role.SERVER, max_payload=16384)
    parser.feed(wire)
    assert parser.next_message().data_count == 2048


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_oversized_message_is_skipped_and_the_next_one_parsed(chunk):
    """As rsrv drains a request it cannot hold: the circuit can answer ECA_TOLARGE and go on."""
    big = bytes(m.WriteNotifyRequest(np.ones(5000), ChannelType.DOUBLE, 5000, 0, 1))
    wire = big + bytes(m.EchoRequest())
    parser = StreamParser(Role.SERVER, max_payload=16384)
    errors, received = 0, []
    for start in range(0, len(wire), chunk):
        parser.feed(wire[start:start + chunk])
        while True:
            try:
                msg = parser.next_message()
            except PayloadTooLarge:
                errors += 1
                continue
            if msg is NEED_DATA:
                break
            received.append(msg)
    assert (errors, received) == (1, [m.EchoRequest()])
    assert parser.buffered == 0


def test_absurd_size_without_a_configured_maximum_is_rejected():
    parser = StreamParser(Role.CLIENT)
    parser.feed(struct.pack(">HHHHIIII", Command.EVENT_ADD, 0xFFFF, 6, 0, 1, 1, 0xFFFFFFF8, 1))
    with pytest.raises(PayloadTooLarge):
        parser.next_message()
    assert PAYLOAD_SIZE_CEILING < 0xFFFFFFF8


def test_large_array_arrives_in_many_chunks():
    values = np.arange(100000, dtype=">f8")
    msg = m.EventAddResponse(values, ChannelType.DOUBLE, 100000, ECA.NORMAL, 1)
    wire = bytes(msg)
    parser = StreamParser(Role.CLIENT)
    got = []
    for start in range(0, len(wire), 65536):
        parser.feed(wire[start:start + 65536])
        got += parse_all(parser)
    assert got == [msg]
    np.testing.assert_array_equal(got[0].data, values)


def test_a_large_message_waiting_for_its_chunks_counts_as_buffered():
    wire = bytes(m.EventAddResponse(np.arange(50000.0), ChannelType.DOUBLE, 50000, ECA.NORMAL, 1))
    wire += bytes(m.EchoResponse())
    parser = StreamParser(Role.CLIENT)
    fed = 0
    for start in range(0, len(wire) - 24, 65536):
        chunk = wire[start:min(start + 65536, len(wire) - 24)]
        parser.feed(chunk)
        fed += len(chunk)
        assert parser.next_message() is NEED_DATA
        assert parser.buffered == fed
    parser.feed(wire[-24:])
    assert [type(msg) for msg in parse_all(parser)] == [m.EventAddResponse, m.EchoResponse]
    assert parser.buffered == 0


@pytest.mark.parametrize("chunk", [1000, 65536, 100003, 1 << 20])
def test_large_payloads_stay_intact_while_parsing_goes_on(chunk):
    """Large payloads are views of the received buffers: later feeds must not disturb them."""
    first = m.EventAddResponse(np.arange(20000.0), ChannelType.DOUBLE, 20000, ECA.NORMAL, 1)
    second = m.EventAddResponse(-np.arange(30000.0), ChannelType.DOUBLE, 30000, ECA.NORMAL, 2)
    sent = [first, m.EchoResponse(), second, m.EchoResponse(), first]
    wire = encode(*sent)
    parser = StreamParser(Role.CLIENT)
    received = []
    for start in range(0, len(wire), chunk):
        parser.feed(bytearray(wire[start:start + chunk]))   # a buffer the caller may reuse
        received += parse_all(parser)
    parser.feed(bytes(m.EchoResponse()) * 100)
    received += parse_all(parser)
    assert received[:5] == sent and received[5:] == [m.EchoResponse()] * 100
    np.testing.assert_array_equal(received[2].data, -np.arange(30000.0))
    assert not received[0].data.flags.writeable


# --- datagrams ---------------------------------------------------------------------------------------

def test_datagram_with_version_and_several_searches():
    sent = [m.VersionRequest(1, 13, 7)] + [m.SearchRequest(f"pv{i}", i, 13, DONT_REPLY) for i in range(20)]
    assert parse_datagram(encode(*sent), Role.SERVER) == sent


def test_empty_datagram_has_no_messages():
    assert parse_datagram(b"", Role.SERVER) == []


@pytest.mark.parametrize("cut", [1, 15, 16 + 3, 16 + 8 + 5])
def test_truncated_datagram(cut):
    first = bytes(m.VersionRequest(1, 13, 7))
    search = bytes(m.SearchRequest("abcdefghijkl", 1, 13))
    with pytest.raises(TruncatedDatagram) as info:
        parse_datagram(first + search[:cut], Role.SERVER)
    assert info.value.messages == [m.VersionRequest(1, 13, 7)]


def test_truncated_extended_header_in_a_datagram():
    with pytest.raises(TruncatedDatagram):
        parse_datagram(struct.pack(">HHHHII", Command.SEARCH, 0xFFFF, 0, 0, 0, 0) + bytes(4), Role.SERVER)


def test_datagram_errors_carry_the_messages_before_them():
    good = m.VersionRequest(1, 13, 7)
    with pytest.raises(UnknownCommand) as info:
        parse_datagram(bytes(good) + bytes(m.RsrvIsUpResponse(13, 5064, 1, 0)), Role.SERVER)
    assert info.value.messages == [good]
    assert info.value.header.command == Command.RSRV_IS_UP
    with pytest.raises(MalformedHeader):
        parse_datagram(bytes(good) + pack_header(Command.SEARCH, 3, 0, 0, 0, 0) + b"ab\0", Role.SERVER)
    with pytest.raises(PayloadTooLarge):
        parse_datagram(bytes(m.SearchRequest("x" * 100, 1, 13)), Role.SERVER, max_payload=64)


# --- properties ---------------------------------------------------------------------------------------

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
names = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=50)
counts = st.one_of(st.integers(0, 10), st.just(0xFFFF), st.integers(0x10000, 200000))
payloads = st.binary(max_size=200)
dbr_types = st.sampled_from(list(ChannelType))
doubles = st.lists(st.floats(allow_nan=False), min_size=1, max_size=50)

CLIENT_MESSAGES = st.one_of(
    st.builds(m.VersionRequest, u16, u16, u32),
    st.builds(m.SearchRequest, names, u32, u16, st.sampled_from([5, 10])),
    st.builds(m.EchoRequest), st.builds(m.EventsOffRequest), st.builds(m.EventsOnRequest),
    st.builds(m.ReadSyncRequest),
    st.builds(m.RepeaterRegisterRequest, u32),
    st.builds(m.ClientNameRequest, names), st.builds(m.HostNameRequest, names),
    st.builds(m.CreateChanRequest, names, u32, u32),
    st.builds(m.ClearChannelRequest, u32, u32),
    st.builds(m.ReadNotifyRequest, u16, counts, u32, u32),
    st.builds(m.ReadRequest, u16, counts, u32, u32),
    st.builds(m.WriteRequest.from_payload, payloads, u16, counts, u32, u32),
    st.builds(m.WriteNotifyRequest.from_payload, payloads, u16, counts, u32, u32),
    st.builds(lambda v, sid, io: m.WriteNotifyRequest(v, ChannelType.DOUBLE, None, sid, io), doubles, u32,
              u32),
    st.builds(m.EventAddRequest, u16, counts, u32, u32, st.floats(width=32), st.floats(width=32),
              st.floats(width=32), u16),
    st.builds(m.EventCancelRequest, u16, u32, u32, counts),
)
SERVER_MESSAGES = st.one_of(
    st.builds(m.VersionResponse, u16, u16, u32),
    st.builds(m.SearchResponse, u16, u32, u32, st.one_of(st.none(), u16)),
    st.builds(m.NotFoundResponse, u16, u32),
    st.builds(m.EchoResponse), st.builds(m.ReadSyncResponse),
    st.builds(m.RsrvIsUpResponse, u16, u16, u32, u32),
    st.builds(m.RepeaterConfirmResponse, u32),
    st.builds(m.CreateChanResponse, u16, counts, u32, u32),
    st.builds(m.CreateChFailResponse, u32), st.builds(m.ServerDisconnResponse, u32),
    st.builds(m.AccessRightsResponse, u32, st.integers(0, 3)),
    st.builds(m.ClearChannelResponse, u32, u32),
    st.builds(m.ReadNotifyResponse.from_payload, payloads, u16, counts, u32, u32),
    st.builds(m.ReadResponse.from_payload, payloads, u16, counts, u32, u32),
    st.builds(m.EventAddResponse.from_payload, payloads.filter(bool), u16, counts, u32, u32),
    st.builds(lambda v, sub: m.EventAddResponse(v, ChannelType.TIME_DOUBLE, None, ECA.NORMAL, sub), doubles,
              u32),
    st.builds(m.EventCancelResponse, u16, u32, u32, counts),
    st.builds(m.WriteNotifyResponse, u16, counts, u32, u32),
    st.builds(m.ErrorResponse, st.builds(Header, u16, u32, u16, u32, u32, u32), u32, u32, names),
)


@st.composite
def streams(draw):
    """(receiver role, messages the peer sent, the bytes, split points)."""
    sender = draw(st.sampled_from([Role.CLIENT, Role.SERVER]))
    sent = draw(st.lists(CLIENT_MESSAGES if sender is Role.CLIENT else SERVER_MESSAGES, max_size=12))
    wire = encode(*sent)
    cuts = sorted(draw(st.lists(st.integers(0, len(wire)), max_size=20)))
    return sender.peer, sent, wire, cuts


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_any_split_of_a_valid_stream_parses_to_the_same_messages(case):
    role, sent, wire, cuts = case
    parser = StreamParser(role)
    received = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        parser.feed(wire[start:end])
        received += parse_all(parser)
    assert received == sent
    assert parser.buffered == 0
    assert parse_datagram(wire, role) == sent


@settings(max_examples=500)
@given(st.binary(max_size=400), st.lists(st.integers(1, 64), max_size=10),
       st.sampled_from([Role.CLIENT, Role.SERVER]), st.sampled_from([None, 64]))
def test_random_bytes_raise_only_documented_errors(data, chunks, role, max_payload):
    """Every call returns a message or NEED_DATA, or raises a documented FramingError; never hangs."""
    parser = StreamParser(role, max_payload=max_payload)
    pos = 0
    for size in [*chunks, len(data)]:
        parser.feed(data[pos:pos + size])
        pos += size
        for _ in range(len(data) // 16 + 2):   # each message consumes at least 16 bytes
            try:
                msg = parser.next_message()
            except DOCUMENTED as exc:
                assert isinstance(exc, FramingError)
                if isinstance(exc, MalformedHeader):
                    break
                continue
            if msg is NEED_DATA:
                break
            assert isinstance(msg, Message)
            repr(msg)
        else:
            pytest.fail("the parser kept returning messages from a finite buffer")
    try:
        result = parse_datagram(data, role, max_payload=max_payload)
    except DOCUMENTED:
        return
    assert all(isinstance(msg, Message) for msg in result)


def _one(parser: StreamParser) -> list:
    raw = parser.next_raw()
    return [] if raw is NEED_DATA else [raw]


def _drain(parser: StreamParser, read) -> list:
    """``read`` (a list of messages per call) until it gives none; a FramingError is recorded by class
    (MalformedHeader ends the stream)."""
    out = []
    for _ in range(1000):
        try:
            batch = read(parser)
        except FramingError as exc:
            out.append(type(exc))
            if isinstance(exc, MalformedHeader):
                return out
            continue
        if not batch:
            return out
        out += batch
    pytest.fail("the parser kept returning messages from a finite buffer")


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.binary(max_size=64), st.sampled_from([None, 64]))
def test_next_raws_gives_what_next_raw_gives_one_by_one(case, tail, max_payload):
    """The batch reader is the per-message reader, batched: same tuples, same errors, same order, for
    valid streams split anywhere, with garbage after them (misaligned, oversized, extended headers)."""
    role, _, wire, cuts = case
    wire += tail
    one, batched = StreamParser(role, max_payload=max_payload), StreamParser(role, max_payload=max_payload)
    expected, received = [], []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        one.feed(wire[start:end])
        batched.feed(wire[start:end])
        if MalformedHeader not in expected:
            expected += _drain(one, _one)
        if MalformedHeader not in received:
            received += _drain(batched, StreamParser.next_raws)
    assert received == expected
    assert batched.buffered == one.buffered


def test_next_raws_returns_the_messages_before_a_bad_one_first():
    parser = StreamParser(Role.SERVER, max_payload=16)
    parser.feed(bytes(m.EchoRequest()) + pack_header(Command.WRITE, 24, 6, 3, 1, 0) + bytes(24)
                + bytes(m.EchoRequest()))
    assert parser.next_raws() == [(Command.ECHO, 0, 0, 0, 0, b"")]
    with pytest.raises(PayloadTooLarge):
        parser.next_raws()
    assert parser.next_raws() == [(Command.ECHO, 0, 0, 0, 0, b"")]
    assert parser.next_raws() == []
