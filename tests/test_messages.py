"""caproto.messages: header forms, every message class both ways, roles, validation, lazy DBR data."""
from __future__ import annotations

import copy
import pickle
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from caproto.constants import DBE_ALARM, DBE_VALUE, DO_REPLY, DONT_REPLY, ECA, AccessRights, Command, Role
from caproto.dbr import ChannelType, Metadata
from caproto.errors import LocalProtocolError, MalformedHeader, RemoteProtocolError, UnknownCommand
from caproto.messages import (
    AccessRightsResponse,
    ClearChannelRequest,
    ClearChannelResponse,
    ClientNameRequest,
    CreateChanRequest,
    CreateChanResponse,
    CreateChFailResponse,
    EchoRequest,
    EchoResponse,
    ErrorResponse,
    EventAddRequest,
    EventAddResponse,
    EventCancelRequest,
    EventCancelResponse,
    EventsOffRequest,
    EventsOnRequest,
    Header,
    HostNameRequest,
    Message,
    NotFoundResponse,
    ReadNotifyRequest,
    ReadNotifyResponse,
    ReadRequest,
    ReadResponse,
    ReadSyncRequest,
    ReadSyncResponse,
    RepeaterConfirmResponse,
    RepeaterRegisterRequest,
    RsrvIsUpResponse,
    SearchRequest,
    SearchResponse,
    ServerDisconnResponse,
    VersionRequest,
    VersionResponse,
    WriteNotifyRequest,
    WriteNotifyResponse,
    WriteRequest,
    encode,
    message_class,
    pack_header,
    pack_message,
    read_message,
)

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)


# --- header ------------------------------------------------------------------------------------------------

def test_standard_header_is_16_big_endian_bytes():
    assert pack_header(15, 8, 20, 1, 0x01020304, 0x0A0B0C0D) == bytes.fromhex(
        "000f 0008 0014 0001 01020304 0a0b0c0d")


@pytest.mark.parametrize("payload_size, data_count, extended", [
    (0xFFF8, 0xFFFE, False),
    (0x10000, 1, True),       # payload >= 0xFFFF
    (0, 0xFFFF, True),        # count >= 0xFFFF
    (800016, 100000, True),
])
def test_extended_header_when_size_or_count_reaches_0xffff(payload_size, data_count, extended):
    wire = pack_header(1, payload_size, 6, data_count, 7, 8)
    assert len(wire) == (24 if extended else 16)
    if extended:
        assert struct.unpack(">HHHHIIII", wire) == (1, 0xFFFF, 6, 0, 7, 8, payload_size, data_count)
    assert Header.unpack_with_size(wire) == (Header(1, payload_size, 6, data_count, 7, 8), len(wire))


@given(u16, u32, u16, u32, u32, u32)
def test_header_round_trips_over_the_full_field_ranges(command, payload_size, data_type, data_count, p1, p2):
    header = Header(command, payload_size, data_type, data_count, p1, p2)
    assert Header.unpack(header.pack()) == header


def test_extended_marker_alone_announces_the_extended_form():
    # rsrv and libca look at payload_size only; small values in the extension are accepted
    wire = struct.pack(">HHHHIIII", 15, 0xFFFF, 20, 5, 1, 2, 0, 3)
    assert Header.unpack_with_size(wire) == (Header(15, 0, 20, 3, 1, 2), 24)


@pytest.mark.parametrize("wire", [b"", bytes(15), struct.pack(">HHHHII", 1, 0xFFFF, 0, 0, 0, 0) + bytes(7)])
def test_short_header_raises_malformed_header(wire):
    with pytest.raises(MalformedHeader):
        Header.unpack(wire)


@pytest.mark.parametrize("fields", [
    (1, 0, 0x10000, 0, 0, 0),     # data_type is 16 bits
    (1, 0, 1.5, 0, 0, 0),
    (1, None, 0, 0, 0, 0),
    (1, 0, 0, 0, 1 << 32, 0),
    (1, 0, 0, 0, 0, -1),
    (0x10000, 0, 0, 0, 0, 0),
    (1, 1 << 32, 0, 0, 0, 0),
])
def test_out_of_range_header_fields_are_a_local_error(fields):
    with pytest.raises(LocalProtocolError):
        pack_header(*fields)


def test_pack_message_is_header_plus_payload():
    assert pack_message(Command.READ_NOTIFY, 6, 1, 1, 9, b"\x40\x09\x21\xfb\x54\x44\x2d\x18") == (
        pack_header(15, 8, 6, 1, 1, 9) + b"\x40\x09\x21\xfb\x54\x44\x2d\x18")


# --- every message, both ways ---------------------------------------------------------------------------

EXAMPLES: list[tuple[Message, dict[str, object]]] = [
    (VersionRequest(5, 13), {"priority": 5, "version": 13, "sequence_id": 0}),
    (VersionRequest(1, 13, 42), {"priority": 1, "version": 13, "sequence_id": 42}),
    (VersionResponse(13), {"version": 13, "priority": 0, "sequence_id": 0}),
    (SearchRequest("XF:31ID-ES{Dif}Gas", 77, 13), {"name": "XF:31ID-ES{Dif}Gas", "cid": 77, "version": 13,
                                                    "reply": DO_REPLY}),
    (SearchRequest("a", 1, 13, DONT_REPLY), {"reply": DONT_REPLY}),
    (SearchResponse(5064, "10.0.0.7", 77, 13), {"port": 5064, "ip": "10.0.0.7", "cid": 77, "version": 13}),
    (SearchResponse(5064, 0xFFFFFFFF, 77, None), {"ip": "255.255.255.255", "version": None}),
    (NotFoundResponse(13, 8), {"version": 13, "cid": 8}),
    (EchoRequest(), {}),
    (EchoResponse(), {}),
    (EventsOffRequest(), {}),
    (EventsOnRequest(), {}),
    (ReadSyncRequest(), {}),
    (ReadSyncResponse(), {}),
    (RsrvIsUpResponse(13, 5064, 9, "192.168.1.2"), {"version": 13, "server_port": 5064, "beacon_id": 9,
                                                    "address": "192.168.1.2"}),
    (RepeaterRegisterRequest("127.0.0.1"), {"client_address": "127.0.0.1"}),
    (RepeaterConfirmResponse("127.0.0.1"), {"repeater_address": "127.0.0.1"}),
    (ClientNameRequest("operator"), {"name": "operator"}),
    (HostNameRequest("beamline-ws7"), {"name": "beamline-ws7"}),
    (CreateChanRequest("motor1.RBV", 3, 13), {"name": "motor1.RBV", "cid": 3, "version": 13}),
    (CreateChanResponse(ChannelType.DOUBLE, 1, 3, 12), {"data_type": 6, "data_count": 1, "cid": 3,
                                                        "sid": 12}),
    (CreateChFailResponse(3), {"cid": 3}),
    (AccessRightsResponse(3, AccessRights.READ), {"cid": 3, "access_rights": 1}),
    (ClearChannelRequest(12, 3), {"sid": 12, "cid": 3}),
    (ClearChannelResponse(12, 3), {"sid": 12, "cid": 3}),
    (ServerDisconnResponse(3), {"cid": 3}),
    (ReadNotifyRequest(ChannelType.TIME_DOUBLE, 0, 12, 99), {"data_type": 20, "data_count": 0, "sid": 12,
                                                             "ioid": 99}),
    (ReadRequest(ChannelType.STRING, 1, 12, 99), {"data_type": 0, "sid": 12, "ioid": 99}),
    (ReadNotifyResponse([2.5], ChannelType.DOUBLE, 1, ECA.NORMAL, 99),
     {"data_type": 6, "data_count": 1, "status": ECA.NORMAL, "ioid": 99}),
    (ReadResponse(["abc"], ChannelType.STRING, 1, 3, 99), {"sid": 3, "ioid": 99}),
    (WriteRequest(7, ChannelType.LONG, 1, 12, 5), {"data_type": 5, "sid": 12, "ioid": 5}),
    (WriteNotifyRequest(["On"], ChannelType.STRING, 1, 12, 6), {"sid": 12, "ioid": 6}),
    (WriteNotifyResponse(ChannelType.STRING, 1, ECA.PUTFAIL, 6), {"status": ECA.PUTFAIL, "ioid": 6}),
    (EventAddRequest(ChannelType.TIME_DOUBLE, 0, 12, 4, 0.0, 0.0, 0.0, DBE_VALUE | DBE_ALARM),
     {"sid": 12, "subscriptionid": 4, "low": 0.0, "high": 0.0, "to": 0.0, "mask": 5}),
    (EventAddResponse([1.0, 2.0], ChannelType.DOUBLE, 2, ECA.NORMAL, 4),
     {"data_count": 2, "status_code": ECA.NORMAL, "subscriptionid": 4}),
    (EventCancelRequest(ChannelType.TIME_DOUBLE, 12, 4, data_count=1), {"sid": 12, "subscriptionid": 4,
                                                                         "data_count": 1}),
    (EventCancelResponse(ChannelType.TIME_DOUBLE, 12, 4), {"sid": 12, "subscriptionid": 4, "data_count": 0}),
    (ErrorResponse(Header(4, 8, 0, 1, 12, 5), 3, ECA.PUTFAIL, "motor1"),
     {"original_request": Header(4, 8, 0, 1, 12, 5), "cid": 3, "status_code": ECA.PUTFAIL,
      "error_message": "motor1"}),
]


@pytest.mark.parametrize("msg, fields", EXAMPLES, ids=lambda x: type(x).__name__ if isinstance(x, Message)
                         else "")
def test_message_round_trips_through_the_wire_with_its_fields(msg, fields):
    wire = bytes(msg)
    assert wire == msg.to_bytes() == msg.header.pack() + msg.payload
    assert len(msg.payload) % 8 == 0
    header, size = Header.unpack_with_size(wire)
    received = read_message(header, wire[size:], msg.SENDER.peer)
    assert type(received) is type(msg)
    assert received == msg and hash(received) == hash(msg)
    for name, value in fields.items():
        assert getattr(received, name) == value, name


def test_every_command_a_peer_may_send_has_a_class():
    from caproto import messages
    classes = {getattr(messages, name) for name in messages.__all__
               if isinstance(getattr(messages, name), type) and issubclass(getattr(messages, name), Message)
               and getattr(messages, name) is not Message}
    assert classes == {type(msg) for msg, _ in EXAMPLES}
    obsolete = {Command.SNAPSHOT, Command.BUILD, Command.READ_BUILD, Command.SIGNAL}
    for command in Command:
        senders = {cls.SENDER for cls in classes if cls.COMMAND == command}
        assert senders or command in obsolete, command.name


def test_version_is_request_or_response_by_sender():
    wire = bytes(VersionRequest(0, 13))
    assert wire == bytes(VersionResponse(13))
    header = Header.unpack(wire)
    assert type(read_message(header, b"", Role.SERVER)) is VersionRequest
    assert type(read_message(header, b"", Role.CLIENT)) is VersionResponse
    assert VersionRequest(0, 13) != VersionResponse(13)


def test_message_class_is_looked_up_by_sender():
    assert message_class(Command.CREATE_CHAN, Role.CLIENT) is CreateChanRequest
    assert message_class(Command.CREATE_CHAN, Role.SERVER) is CreateChanResponse
    assert message_class(Command.EVENT_ADD, Role.SERVER) is EventAddResponse
    with pytest.raises(KeyError):
        message_class(Command.CREATE_CH_FAIL, Role.CLIENT)


@pytest.mark.parametrize("command, receiver", [
    (Command.CREATE_CH_FAIL, Role.SERVER),   # only servers send it
    (Command.HOST_NAME, Role.CLIENT),        # only clients send it
    (Command.SNAPSHOT, Role.SERVER),         # obsolete
    (Command.SIGNAL, Role.CLIENT),
    (28, Role.SERVER),
    (0xFFFF, Role.CLIENT),
])
def test_a_command_the_sender_never_sends_is_unknown(command, receiver):
    with pytest.raises(UnknownCommand):
        read_message(Header(command, 0, 0, 0, 0, 0), b"", receiver)


def test_an_empty_event_add_from_the_server_is_the_cancel_confirmation():
    header = Header(Command.EVENT_ADD, 0, ChannelType.TIME_LONG, 0, 12, 4)
    assert read_message(header, b"", Role.CLIENT) == EventCancelResponse(ChannelType.TIME_LONG, 12, 4)


def test_event_add_response_at_count_zero_keeps_room_for_one_element():
    """As rsrv does (dbr_size_n(type, 0)): an update is never empty, so never a cancel confirmation."""
    msg = EventAddResponse([], ChannelType.DOUBLE, 0, ECA.NORMAL, 4)
    assert len(msg.payload) == 8
    assert type(read_message(msg.header, msg.payload, Role.CLIENT)) is EventAddResponse
    assert len(ReadNotifyResponse([], ChannelType.TIME_DOUBLE, 0, ECA.NORMAL, 1).payload) == 24


# --- names and strings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, payload_size", [("", 8), ("abcdefg", 8), ("abcdefgh", 16), ("x" * 60, 64)])
def test_names_are_nul_terminated_then_padded_to_8(name, payload_size):
    msg = CreateChanRequest(name, 1, 13)
    assert len(msg.payload) == payload_size
    assert msg.payload[len(name)] == 0 and msg.payload.rstrip(b"\0") == name.encode()


def test_non_ascii_names_round_trip():
    msg = SearchRequest("Temperatur:°C", 1, 13)
    assert read_message(msg.header, msg.payload, Role.SERVER).name == "Temperatur:°C"


def test_error_response_quotes_an_extended_request_header():
    original = Header(Command.READ_NOTIFY, 0, ChannelType.DOUBLE, 100000, 12, 7)
    msg = ErrorResponse(original, 3, ECA.TOLARGE, "too large")
    assert msg.payload[:24] == original.pack() and len(original.pack()) == 24
    received = read_message(msg.header, msg.payload, Role.CLIENT)
    assert (received.original_request, received.error_message) == (original, "too large")


def test_error_response_accepts_the_original_message():
    request = ReadNotifyRequest(ChannelType.DOUBLE, 1, 12, 7)
    assert ErrorResponse(request, 3, ECA.BADTYPE, "x").original_request == request.header


@pytest.mark.parametrize("command, payload, receiver", [
    (Command.ERROR, bytes(8), Role.CLIENT),          # cannot quote a 16-byte header
    (Command.EVENT_ADD, bytes(8), Role.SERVER),      # the request's 16-byte monitor block
])
def test_payload_too_short_for_its_command_is_malformed(command, payload, receiver):
    with pytest.raises(MalformedHeader):
        read_message(Header(command, len(payload), 0, 0, 0, 0), payload, receiver)


# --- immutability and validation ----------------------------------------------------------------------

def test_messages_are_immutable():
    msg = ReadNotifyRequest(ChannelType.DOUBLE, 1, 12, 7)
    with pytest.raises(AttributeError):
        msg.sid = 13
    with pytest.raises(AttributeError):
        msg.header = Header(0, 0, 0, 0, 0, 0)
    with pytest.raises(AttributeError):
        msg.anything = 1


@pytest.mark.parametrize("build", [
    lambda: ReadNotifyRequest(ChannelType.DOUBLE, 1, -1, 7),
    lambda: ReadNotifyRequest(0x10000, 1, 1, 7),
    lambda: CreateChanResponse(6, 1, 1 << 32, 0),
    lambda: RsrvIsUpResponse(13, 5064, 0, "not-an-address"),
    lambda: EventAddRequest(6, 1, 1, 1, 0.0, 0.0, 0.0, 0x10000),
    lambda: ReadNotifyResponse("not a number", ChannelType.DOUBLE, 1, 1, 1),
    lambda: CreateChanRequest("two\0names", 1, 13),
])
def test_invalid_fields_raise_local_protocol_error_at_construction(build):
    with pytest.raises(LocalProtocolError):
        build()


def test_messages_survive_pickle_and_copy():
    for msg, _ in EXAMPLES:
        assert pickle.loads(pickle.dumps(msg)) == msg
        assert copy.deepcopy(msg) == msg and bytes(copy.copy(msg)) == bytes(msg)


def test_repr_names_the_class_fields_and_dbr_type():
    text = repr(ReadNotifyRequest(ChannelType.TIME_DOUBLE, 1, 12, 7))
    assert text == "ReadNotifyRequest(data_type=ChannelType.TIME_DOUBLE, data_count=1, sid=12, ioid=7)"
    assert "data=array([2.5]" in repr(ReadNotifyResponse(2.5, ChannelType.DOUBLE, 1, 1, 1))


def test_repr_of_undecodable_data_does_not_raise():
    msg = ReadNotifyResponse.from_payload(bytes(8), 99, 1, 1, 1)
    assert "do not decode" in repr(msg)


def test_encode_concatenates_in_order():
    a, b = VersionRequest(0, 13), HostNameRequest("ws1")
    assert encode(a, b) == bytes(a) + bytes(b)
    assert encode() == b""


# --- data-carrying messages ---------------------------------------------------------------------------

def test_values_and_metadata_are_encoded_with_dbr():
    metadata = Metadata(status=3, severity=2, secs=1000, nsec=5)
    msg = ReadNotifyResponse(np.array([1.5, -2.0]), ChannelType.TIME_DOUBLE, None, ECA.NORMAL, 1,
                             metadata=metadata)
    assert msg.data_count == 2
    received = read_message(msg.header, msg.payload, Role.CLIENT)
    np.testing.assert_array_equal(received.data, [1.5, -2.0])
    assert (received.metadata.status, received.metadata.severity, received.metadata.secs,
            received.metadata.nsec) == (3, 2, 1000, 5)


def test_scalar_and_string_data():
    assert WriteNotifyRequest(3.0, ChannelType.DOUBLE, None, 1, 1).data_count == 1
    msg = WriteNotifyRequest(["a", "b"], ChannelType.STRING, None, 1, 1)
    assert (msg.data_count, len(msg.payload), msg.data) == (2, 80, ["a", "b"])


def test_from_payload_does_no_decoding():
    """The server hot path: a payload for an unknown type is accepted as is; only reading it fails."""
    msg = EventAddResponse.from_payload(b"\x01\x02\x03", 99, 1, ECA.NORMAL, 4)
    assert msg.payload == b"\x01\x02\x03" + bytes(5)   # padded to 8
    with pytest.raises(RemoteProtocolError):
        _ = msg.data


def test_from_payload_validates_header_fields():
    with pytest.raises(LocalProtocolError):
        ReadNotifyResponse.from_payload(bytes(8), ChannelType.DOUBLE, 1, ECA.NORMAL, -1)
    with pytest.raises(LocalProtocolError):
        EventAddResponse.from_payload(b"", ChannelType.DOUBLE, 1, ECA.NORMAL, 1)


def test_received_arrays_are_views_of_the_payload():
    values = np.arange(1000, dtype=">f8")
    msg = EventAddResponse(values, ChannelType.DOUBLE, 1000, ECA.NORMAL, 4)
    received = read_message(msg.header, bytes(msg.payload), Role.CLIENT)
    data = received.data
    assert data.dtype == np.dtype(">f8")
    assert np.shares_memory(data, np.frombuffer(received.payload, dtype=np.uint8))
    assert received.data is data   # decoded once
    np.testing.assert_array_equal(data, values)


def test_large_array_message_uses_the_extended_header():
    msg = EventAddResponse(np.zeros(100000), ChannelType.DOUBLE, 100000, ECA.NORMAL, 4)
    wire = bytes(msg)
    assert wire[2:4] == b"\xff\xff" and len(wire) == 24 + 800000
    header, size = Header.unpack_with_size(wire)
    assert (header.payload_size, header.data_count, size) == (800000, 100000, 24)
