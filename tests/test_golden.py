"""Golden bytes: what libca (caget, caput, camonitor, pyepics), rsrv (softIoc) and caRepeater really sent.

The captures and how they were made: tests/fixtures/captures/README.md. For every conversation our parser must
cut the bytes into the messages written out below, field by field, and our encoder must rebuild each of those
messages, from its fields, byte for byte. Values and metadata are checked against the database the softIoc
served (see ``DB`` in tests/tools/capture_proxy.py) and against what the C tools printed.
"""
from __future__ import annotations

import datetime
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from caproto.constants import (
    DBE_ALARM,
    DBE_VALUE,
    DONT_REPLY,
    ECA,
    EPICS_EPOCH_OFFSET,
    AccessRights,
    Role,
)
from caproto.dbr import ChannelType, metadata_size
from caproto.framing import NEED_DATA, StreamParser, parse_datagram
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
    Header,
    HostNameRequest,
    Message,
    NotFoundResponse,
    ReadNotifyRequest,
    ReadNotifyResponse,
    ReadResponse,
    ReadSyncResponse,
    RepeaterConfirmResponse,
    RepeaterRegisterRequest,
    RsrvIsUpResponse,
    SearchRequest,
    SearchResponse,
    VersionRequest,
    VersionResponse,
    WriteNotifyRequest,
    WriteNotifyResponse,
    WriteRequest,
    encode,
)

CAPTURES = Path(__file__).parent / "fixtures" / "captures"
VERSION = 13
READ_WRITE = AccessRights.READ_WRITE
# rsrv copies these C struct fields (RISC_pad) as the database left them; our encoder writes zeros there.
RISC_PAD = {ChannelType.TIME_DOUBLE: [(12, 16)], ChannelType.CTRL_DOUBLE: [(6, 8)]}


@cache
def capture(name: str) -> dict[str, Any]:
    path = CAPTURES / f"{name}.json"
    if not path.exists():
        return json.loads(gzip.decompress((CAPTURES / f"{name}.json.gz").read_bytes()))
    return json.loads(path.read_text())


def cut(stream: bytes, role: Role) -> list[tuple[Message, bytes]]:
    """Each message our parser finds in ``stream``, with the exact bytes it was cut from."""
    parser = StreamParser(role)
    parser.feed(stream)
    cut_messages = []
    start = 0
    while (msg := parser.next_message()) is not NEED_DATA:
        end = len(stream) - parser.buffered
        cut_messages.append((msg, stream[start:end]))
        start = end
    assert parser.buffered == 0, f"{parser.buffered} bytes left over after the last whole message"
    return cut_messages


Conversation = tuple[list[tuple[Message, bytes]], list[tuple[Message, bytes]]]


def conversation(name: str, sends: Callable[[Message], bool] = lambda msg: True) -> Conversation:
    """The (client -> server, server -> client) messages of the one TCP connection in which the client
    sends a message for which ``sends`` is true."""
    found = []
    for tcp in capture(name)["tcp"]:
        requests = cut(bytes.fromhex(tcp["client_to_server"]), Role.SERVER)
        if any(sends(msg) for msg, _ in requests):
            found.append((requests, cut(bytes.fromhex(tcp["server_to_client"]), Role.CLIENT)))
    assert len(found) == 1, f"{len(found)} connections in {name} match"
    return found[0]


def reads(sid: int) -> Callable[[Message], bool]:
    return lambda msg: isinstance(msg, ReadNotifyRequest) and msg.sid == sid


@dataclass
class Data:
    """An expected data-carrying message: header fields, decoded values and metadata fields."""
    cls: type[Message]
    data_type: ChannelType
    data_count: int
    parameter1: int
    parameter2: int
    values: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    # False when the C side sent a shorter DBR_STRING than the 40 bytes our encoder writes
    reencodes: bool = True


def zero_ranges(wire: bytes, header_size: int, ranges: list[tuple[int, int]]) -> bytes:
    out = bytearray(wire)
    for start, end in ranges:
        out[header_size + start:header_size + end] = bytes(end - start)
    return bytes(out)


def check_data(expected: Data, msg: Message, wire: bytes) -> None:
    assert type(msg) is expected.cls
    header = msg.header
    assert (header.data_type, header.data_count, header.parameter1, header.parameter2) == (
        expected.data_type, expected.data_count, expected.parameter1, expected.parameter2)
    if isinstance(expected.values, list):
        assert msg.data == expected.values
    else:
        np.testing.assert_array_equal(msg.data, expected.values)
    for name, value in expected.metadata.items():
        assert getattr(msg.metadata, name) == value, name
    # from_payload keeps the C payload exactly
    same = expected.cls.from_payload(msg.payload, header.data_type, header.data_count, header.parameter1,
                                     header.parameter2)
    assert bytes(same) == wire
    if expected.reencodes:
        rebuilt = expected.cls(msg.data, header.data_type, header.data_count, header.parameter1,
                               header.parameter2, metadata=msg.metadata)
        ranges = list(RISC_PAD.get(expected.data_type, []))
        if expected.data_count == 0:
            # A count-0 reply still has room for one element, which rsrv leaves uninitialised.
            ranges.append((metadata_size(expected.data_type), len(msg.payload)))
        header_size = len(wire) - len(msg.payload)
        assert bytes(rebuilt) == zero_ranges(wire, header_size, ranges)


def check_error(expected: ErrorResponse, msg: Message, wire: bytes) -> None:
    """rsrv leaves old buffer bytes in the padding after the text's NUL; ours are zeros."""
    assert type(msg) is ErrorResponse and msg.header == expected.header
    assert (msg.original_request, msg.cid, msg.status_code, msg.error_message) == (
        expected.original_request, expected.cid, expected.status_code, expected.error_message)
    ours = bytes(expected)
    text_end = ours.index(b"\0", 16 + len(expected.original_request.pack())) + 1
    assert len(ours) == len(wire)
    assert ours[:text_end] == wire[:text_end]
    assert ours[text_end:] == bytes(len(ours) - text_end)


def check(expected: list[Message | Data], received: list[tuple[Message, bytes]]) -> None:
    assert len(received) == len(expected), [m for m, _ in received]
    for want, (msg, wire) in zip(expected, received, strict=True):
        if isinstance(want, Data):
            check_data(want, msg, wire)
        elif isinstance(want, ErrorResponse):
            check_error(want, msg, wire)
        else:
            assert msg == want
            assert bytes(want) == wire, f"{want!r}: ours {bytes(want).hex()} theirs {wire.hex()}"


def libca_opening(name: str, pv: str) -> list[Message]:
    """What every libca client sends first on a new circuit for one channel (cid 1)."""
    return [VersionRequest(0, VERSION), ClientNameRequest(capture(name)["user"]),
            HostNameRequest(capture(name)["host"]), CreateChanRequest(pv, 1, VERSION)]


def rsrv_opening(native: ChannelType, count: int, sid: int) -> list[Message]:
    return [VersionResponse(VERSION), AccessRightsResponse(1, READ_WRITE),
            CreateChanResponse(native, count, 1, sid)]


def printed_stamps(stdout: str) -> list[tuple[int, int]]:
    """(seconds % 60, microseconds) of every timestamp the C tool printed (time-zone independent)."""
    stamps = []
    for word in stdout.split():
        if word.count(":") == 2 and "." in word:
            clock = datetime.time.fromisoformat(word)
            stamps.append((clock.second, clock.microsecond))
    return stamps


def epics_stamp(msg: Message) -> tuple[int, int]:
    # the tools print microseconds rounded
    return (msg.metadata.secs + EPICS_EPOCH_OFFSET) % 60, round(msg.metadata.nsec / 1000)


# --- TCP conversations -----------------------------------------------------------------------------------

def test_caget_time_double_conversation():
    requests, replies = conversation("caget_time_double")
    check(libca_opening("caget_time_double", "cap:ai")
          + [ReadNotifyRequest(ChannelType.TIME_DOUBLE, 1, 0, 1), ClearChannelRequest(0, 1)], requests)
    check(rsrv_opening(ChannelType.DOUBLE, 1, 0)
          + [Data(ReadNotifyResponse, ChannelType.TIME_DOUBLE, 1, ECA.NORMAL, 1, [3.25],
                  {"status": 0, "severity": 0}),
             ClearChannelResponse(0, 1)], replies)
    reply = replies[3][0]
    assert [epics_stamp(reply)] == printed_stamps(capture("caget_time_double")["commands"][0]["stdout"])


AI_CTRL = {"units": "mm", "precision": 3, "upper_disp_limit": 10, "lower_disp_limit": -10,
           "upper_alarm_limit": 8, "upper_warning_limit": 6, "lower_warning_limit": -6,
           "lower_alarm_limit": -8, "upper_ctrl_limit": 10, "lower_ctrl_limit": -10, "status": 0,
           "severity": 0}
LONG_CTRL = {"units": "cts", "upper_disp_limit": 1000, "lower_disp_limit": -1000, "upper_alarm_limit": 0,
             "upper_warning_limit": 0, "lower_warning_limit": 0, "lower_alarm_limit": 0,
             "upper_ctrl_limit": 1000, "lower_ctrl_limit": -1000}


@pytest.mark.parametrize("pv, native, sid, request_type, values, metadata", [
    ("cap:ai", ChannelType.DOUBLE, 0, ChannelType.CTRL_DOUBLE, [3.25], AI_CTRL),
    # the bo was never processed: UDF alarm, INVALID
    ("cap:bo", ChannelType.ENUM, 1, ChannelType.CTRL_ENUM, [0],
     {"enum_strings": ("Off", "On"), "status": 17, "severity": 3}),
    ("cap:long", ChannelType.LONG, 2, ChannelType.CTRL_LONG, [-42], LONG_CTRL),
    ("cap:str", ChannelType.STRING, 3, ChannelType.TIME_STRING, ["hello world"], {"status": 0}),
    # plain `caget` asks for DBR_TIME_ of the native type too
    ("cap:str", ChannelType.STRING, 4, ChannelType.TIME_STRING, ["hello world"], {"status": 0}),
], ids=["ctrl_double", "ctrl_enum", "ctrl_long", "time_string", "plain_caget"])
def test_caget_dbr_conversations(pv, native, sid, request_type, values, metadata):
    requests, replies = conversation("caget_ctrl", reads(sid))
    check(libca_opening("caget_ctrl", pv)
          + [ReadNotifyRequest(request_type, 1, sid, 1), ClearChannelRequest(sid, 1)], requests)
    check(rsrv_opening(native, 1, sid)
          + [Data(ReadNotifyResponse, request_type, 1, ECA.NORMAL, 1, values, metadata),
             ClearChannelResponse(sid, 1)], replies)


def test_caput_callback_conversation():
    """caput -c: WRITE_NOTIFY of DBR_STRING "2.5", which libca sends as strlen + 1 bytes padded to 8 (our
    encoder writes the full 40-byte dbr_string_t, which rsrv reads the same)."""
    requests, replies = conversation("caput_callback")
    check(libca_opening("caput_callback", "cap:ao")
          + [ReadNotifyRequest(ChannelType.TIME_DOUBLE, 1, 0, 1),
             Data(WriteNotifyRequest, ChannelType.STRING, 1, 0, 2, ["2.5"], reencodes=False),
             ReadNotifyRequest(ChannelType.TIME_DOUBLE, 1, 0, 3), ClearChannelRequest(0, 1)], requests)
    check(rsrv_opening(ChannelType.DOUBLE, 1, 0)
          + [Data(ReadNotifyResponse, ChannelType.TIME_DOUBLE, 1, ECA.NORMAL, 1, [1.0]),
             WriteNotifyResponse(ChannelType.STRING, 1, ECA.NORMAL, 2),
             Data(ReadNotifyResponse, ChannelType.TIME_DOUBLE, 1, ECA.NORMAL, 3, [2.5]),
             ClearChannelResponse(0, 1)], replies)
    assert requests[5][1][16:24] == b"2.5\0\0\0\0\0"


def test_caput_bad_number_error_response():
    """caput "abc" to a longin: WRITE fails in the server, which answers ERROR quoting the WRITE header."""
    requests, replies = conversation("caput_bad_number")
    write_header = Header(4, 8, ChannelType.STRING, 1, 0, 1)
    check(libca_opening("caput_bad_number", "cap:long")
          + [ReadNotifyRequest(ChannelType.TIME_LONG, 1, 0, 1),
             Data(WriteRequest, ChannelType.STRING, 1, 0, 1, ["abc"], reencodes=False),
             ReadNotifyRequest(ChannelType.TIME_LONG, 1, 0, 2), ClearChannelRequest(0, 1)], requests)
    assert requests[5][0].header == write_header
    check(rsrv_opening(ChannelType.LONG, 1, 0)
          + [Data(ReadNotifyResponse, ChannelType.TIME_LONG, 1, ECA.NORMAL, 1, [-42]),
             ErrorResponse(write_header, 1, ECA.PUTFAIL, "cap:long"),
             Data(ReadNotifyResponse, ChannelType.TIME_LONG, 1, ECA.NORMAL, 2, [-42]),
             ClearChannelResponse(0, 1)], replies)


def test_camonitor_event_add_and_updates():
    requests, replies = conversation("camonitor_counter")
    check(libca_opening("camonitor_counter", "cap:counter")
          + [EventAddRequest(ChannelType.TIME_DOUBLE, 0, 0, 1, 0.0, 0.0, 0.0, DBE_VALUE | DBE_ALARM)],
          requests)
    updates = replies[3:]
    assert len(updates) >= 5
    check(rsrv_opening(ChannelType.DOUBLE, 1, 0)
          + [Data(EventAddResponse, ChannelType.TIME_DOUBLE, 1, ECA.NORMAL, 1, [float(n)])
             for n in range(1, len(updates) + 1)], replies)
    printed = printed_stamps(capture("camonitor_counter")["commands"][0]["stdout"])
    stamps = [epics_stamp(msg) for msg, _ in updates]
    assert stamps[:len(printed)] == printed


def test_camonitor_idle_echo():
    requests, replies = conversation("camonitor_idle")
    echoes = len(requests) - 5
    assert echoes >= 5, "libca sends ECHO on a circuit idle for EPICS_CA_CONN_TMO"
    check(libca_opening("camonitor_idle", "cap:ai")
          + [EventAddRequest(ChannelType.TIME_DOUBLE, 0, 0, 1, 0.0, 0.0, 0.0, DBE_VALUE | DBE_ALARM)]
          + [EchoRequest()] * echoes, requests)
    check(rsrv_opening(ChannelType.DOUBLE, 1, 0)
          + [Data(EventAddResponse, ChannelType.TIME_DOUBLE, 1, ECA.NORMAL, 1, [3.25],
                  {"status": 0, "severity": 0})]
          + [EchoResponse()] * echoes, replies)


def test_pyepics_event_cancel_and_clear_channel():
    """An empty waveform (NORD 0) subscribed with count 0: the update has count 0 but the payload of one
    element; EVENT_CANCEL is confirmed by an EVENT_ADD without payload."""
    requests, replies = conversation("pyepics_cancel_clear")
    check(libca_opening("pyepics_cancel_clear", "cap:small")
          + [EventAddRequest(ChannelType.TIME_LONG, 0, 0, 1, 0.0, 0.0, 0.0, DBE_VALUE | DBE_ALARM),
             EventCancelRequest(ChannelType.TIME_LONG, 0, 1, data_count=0),
             ClearChannelRequest(0, 1)], requests)
    check(rsrv_opening(ChannelType.LONG, 8, 0)
          + [Data(EventAddResponse, ChannelType.TIME_LONG, 0, ECA.NORMAL, 1, np.array([], dtype=">i4"),
                  {"status": 0, "severity": 0}),
             EventCancelResponse(ChannelType.TIME_LONG, 0, 1, data_count=0),
             ClearChannelResponse(0, 1)], replies)
    assert len(replies[3][0].payload) == 16


def test_waveform_extended_headers_both_ways():
    """70000 strings written (2.8 MB) and 100000 doubles read: 24-byte headers from libca and rsrv."""
    requests, replies = conversation("waveform_extended", lambda msg: isinstance(msg, WriteRequest))
    ones = np.zeros(100000)
    ones[:70000] = 1.0
    check(libca_opening("waveform_extended", "cap:wf")
          + [ReadNotifyRequest(ChannelType.TIME_DOUBLE, 100000, 0, 1),
             Data(WriteRequest, ChannelType.STRING, 70000, 0, 1, ["1"] * 70000),
             ReadNotifyRequest(ChannelType.TIME_DOUBLE, 100000, 0, 2), ClearChannelRequest(0, 1)], requests)
    check(rsrv_opening(ChannelType.DOUBLE, 100000, 0)
          + [Data(ReadNotifyResponse, ChannelType.TIME_DOUBLE, 100000, ECA.NORMAL, 1, np.zeros(100000),
                  {"status": 17, "severity": 3}),
             Data(ReadNotifyResponse, ChannelType.TIME_DOUBLE, 100000, ECA.NORMAL, 2, ones,
                  {"status": 0, "severity": 0}),
             ClearChannelResponse(0, 1)], replies)
    for _, wire in (requests[4], requests[5], replies[3]):
        assert wire[2:4] == b"\xff\xff" and wire[6:8] == b"\0\0", "extended header expected"
    assert len(replies[3][1]) == 24 + 800016


def test_waveform_caget_extended_read():
    requests, replies = conversation("waveform_extended", reads(sid=1))  # caput's channel got sid 0
    ones = np.zeros(100000)
    ones[:70000] = 1.0
    check(libca_opening("waveform_extended", "cap:wf")
          + [ReadNotifyRequest(ChannelType.TIME_DOUBLE, 100000, 1, 1), ClearChannelRequest(1, 1)], requests)
    check(rsrv_opening(ChannelType.DOUBLE, 100000, 1)
          + [Data(ReadNotifyResponse, ChannelType.TIME_DOUBLE, 100000, ECA.NORMAL, 1, ones),
             ClearChannelResponse(1, 1)], replies)


def test_rsrv_answers_to_hand_built_requests():
    """rsrv's side only: obsolete READ (string trimmed to strlen + 1), READ_NOTIFY of a 40-byte string,
    READ_SYNC, ECHO, SEARCH over TCP (no payload), NOT_FOUND, CREATE_CH_FAIL, ERROR ECA_BADMONID."""
    (tcp,) = capture("hand_built_tcp")["tcp"]
    port = capture("hand_built_tcp")["server_port"]
    replies = cut(bytes.fromhex(tcp["server_to_client"]), Role.CLIENT)
    check(rsrv_opening(ChannelType.STRING, 1, 0)
          + [Data(ReadResponse, ChannelType.STRING, 1, 1, 11, ["hello world"], reencodes=False),
             Data(ReadNotifyResponse, ChannelType.STRING, 1, ECA.NORMAL, 12, ["hello world"]),
             ReadSyncResponse(), EchoResponse(),
             SearchResponse(port, "255.255.255.255", 7, None),
             NotFoundResponse(VERSION, 8),
             CreateChFailResponse(5),
             ErrorResponse(Header(2, 0, ChannelType.STRING, 1, 0, 77), 1, ECA.BADMONID, "cap:str")],
          replies)
    assert len(replies[3][0].payload) == 16


# --- UDP -----------------------------------------------------------------------------------------------

SCENARIOS = sorted(p.name.split(".")[0] for p in CAPTURES.glob("*.json*"))


def searched_names(record: dict[str, Any]) -> list[str]:
    names = []
    for command in record["commands"]:
        names += [arg for arg in command["argv"] if arg.startswith("cap:")]
        if command["argv"][0] == "python":
            names.append("cap:small")
    return names


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_datagrams(scenario):
    """Every datagram of every capture: libca's VERSION+SEARCH, rsrv's VERSION+SEARCH reply, beacons as
    rsrv sends them and as the caRepeater forwards them, REPEATER_CONFIRM, libca's empty registration."""
    record = capture(scenario)
    server, repeater = record["server_port"], record["repeater_port"]
    names = iter(searched_names(record))
    beacon_ids: list[int] = []
    seen = set()
    for datagram in record["udp"]:
        data = bytes.fromhex(datagram["hex"])
        src, dst = datagram["src_port"], datagram["dst_port"]
        if dst == server:
            if scenario == "hand_built_tcp":
                continue
            kind = "search"
            expected: list[Message] = [VersionRequest(1, VERSION, 1),
                                       SearchRequest(next(names), 1, VERSION, DONT_REPLY)]
            received = parse_datagram(data, Role.SERVER)
        elif src == server:
            kind = "search reply"
            expected = [VersionResponse(VERSION, 1, 1), SearchResponse(server, "255.255.255.255", 1, VERSION)]
            received = parse_datagram(data, Role.CLIENT)
        elif dst == repeater and not data:
            kind = "libca registration"
            expected, received = [], parse_datagram(data, Role.SERVER)
        elif dst == repeater and data[:2] == b"\x00\x18":
            kind = "hand-built registration"
            expected, received = [RepeaterRegisterRequest("127.0.0.1")], parse_datagram(data, Role.SERVER)
        elif dst == repeater:
            kind = "beacon"
            received = parse_datagram(data, Role.CLIENT)
            beacon_ids.append(received[0].beacon_id)
            expected = [RsrvIsUpResponse(VERSION, server, beacon_ids[-1], "0.0.0.0")]
        elif src == dst:
            kind = "libca wake-up"
            expected, received = [VersionResponse(0)], parse_datagram(data, Role.CLIENT)
        else:
            received = parse_datagram(data, Role.CLIENT)
            kind = type(received[0]).__name__
            if kind == "RsrvIsUpResponse":
                expected = [RsrvIsUpResponse(VERSION, server, received[0].beacon_id, "127.0.0.1")]
            elif kind == "RepeaterConfirmResponse":
                expected = [RepeaterConfirmResponse("127.0.0.1")]
            else:
                kind = "repeater no-op"
                expected = [VersionResponse(0)]
        seen.add(kind)
        assert received == expected, (kind, datagram)
        assert encode(*expected) == data, (kind, datagram)
    assert beacon_ids == sorted(beacon_ids) and (not beacon_ids or beacon_ids[0] == 0)
    if scenario != "beacons" and scenario != "repeater_register":
        assert {"search", "search reply"} <= seen or scenario == "hand_built_tcp"
    if scenario in ("camonitor_idle", "repeater_register"):
        assert {"RepeaterConfirmResponse", "RsrvIsUpResponse"} <= seen
