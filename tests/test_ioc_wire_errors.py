"""Requests that fail, byte for byte against the C softIoc: rsrv's replies to unreadable or unwritable DBR
types, bad types, and failed conversions (zeroed payloads, ECA codes, dropped circuits).

Each case opens a raw circuit to each server, creates a channel, sends one request followed by an ECHO,
and compares what comes back up to the ECHO reply or the end of the stream. The sid (which each server
numbers its own way) and rsrv's uninitialised pad bytes after an ERROR's text are masked.
"""
from __future__ import annotations

import socket
import struct

import pytest
from differential import serve_both
from rawca import connect, header

from caproto.constants import Command

DB = """\
record(ao, "w:ao") { field(VAL, "1.5") field(PREC, "2") }
record(stringin, "w:si") { field(VAL, "abc") }
record(ai, "w:fail") { field(INP, "w:si") }
"""

_MONITOR = struct.pack(">fffHH", 0, 0, 0, 5, 0)   # EVENT_ADD payload, mask VALUE|ALARM
_DOUBLE = struct.pack(">d", 4.25)



# name -> (pv, request bytes given the sid, read back the value afterwards?)
CASES = {
    "READ_NOTIFY of PUT_ACKT": ("w:ao", lambda sid: header(15, 0, 35, 1, sid, 8)),
    "READ_NOTIFY of PUT_ACKS, count 0": ("w:ao", lambda sid: header(15, 0, 36, 0, sid, 8)),
    "READ_NOTIFY of type 39": ("w:ao", lambda sid: header(15, 0, 39, 1, sid, 8)),
    "READ of PUT_ACKT": ("w:ao", lambda sid: header(3, 0, 35, 1, sid, 8)),
    "READ of type 39": ("w:ao", lambda sid: header(3, 0, 39, 1, sid, 8)),
    "EVENT_ADD of PUT_ACKT": ("w:ao", lambda sid: header(1, 16, 35, 1, sid, 7) + _MONITOR),
    "EVENT_ADD of type 39": ("w:ao", lambda sid: header(1, 16, 39, 1, sid, 7) + _MONITOR),
    "text read as DOUBLE, count 1": ("w:si", lambda sid: header(15, 0, 6, 1, sid, 8)),
    "text read as DOUBLE, count 0": ("w:si", lambda sid: header(15, 0, 6, 0, sid, 8)),
    "text read as CTRL_DOUBLE, count 0": ("w:si", lambda sid: header(15, 0, 34, 0, sid, 8)),
    "text monitored as TIME_DOUBLE, count 2": ("w:si", lambda sid: header(1, 16, 20, 2, sid, 7) + _MONITOR),
    "WRITE of type 39": ("w:ao", lambda sid: header(4, 8, 39, 1, sid, 10) + _DOUBLE),
    "WRITE of CLASS_NAME": ("w:ao", lambda sid: header(4, 40, 38, 1, sid, 10) + b"ao".ljust(40, b"\0")),
    "WRITE of STSACK_STRING": ("w:ao", lambda sid: header(4, 48, 37, 1, sid, 10) + bytes(48)),
    "WRITE of TIME_STRING": ("w:ao", lambda sid: header(4, 56, 14, 1, sid, 10) + bytes(12)
                             + b"5".ljust(44, b"\0") + header(15, 0, 6, 1, sid, 11)),
    "WRITE of STS_STRING takes the value": ("w:ao", lambda sid: header(4, 48, 7, 1, sid, 10) + bytes(4)
                                            + b"7".ljust(44, b"\0") + header(15, 0, 6, 1, sid, 11)),
    "WRITE of CTRL_DOUBLE takes the value": ("w:ao", lambda sid: header(4, 88, 34, 1, sid, 10) + bytes(80)
                                             + _DOUBLE + header(15, 0, 6, 1, sid, 11)),
    "WRITE_NOTIFY of STS_DOUBLE": ("w:ao", lambda sid: header(19, 16, 13, 1, sid, 10) + bytes(8) + _DOUBLE),
    "WRITE_NOTIFY of type 39": ("w:ao", lambda sid: header(19, 8, 39, 1, sid, 10) + _DOUBLE),
    "EVENT_ADD with mask 0": ("w:ao", lambda sid: header(1, 16, 6, 1, sid, 7)
                              + struct.pack(">fffHH", 0, 0, 0, 0, 0)),
    "EVENT_ADD with mask 256": ("w:ao", lambda sid: header(1, 16, 6, 1, sid, 7)
                                + struct.pack(">fffHH", 0, 0, 0, 256, 0)),
    "EVENT_ADD with mask 255": ("w:ao", lambda sid: header(1, 16, 6, 1, sid, 7)
                                + struct.pack(">fffHH", 0, 0, 0, 255, 0)),
    "EVENT_CANCEL of a subscription the channel does not have": (
        "w:ao", lambda sid: header(2, 0, 6, 1, sid, 999)),
    "TCP SEARCH of an unknown name with DO_REPLY": ("w:ao", lambda sid: header(6, 8, 10, 13, 78, 78)
                                                    + b"nope:x\0\0"),
    "TCP SEARCH of an unknown name without": ("w:ao", lambda sid: header(6, 8, 5, 13, 79, 79)
                                              + b"nope:x\0\0"),
    # the put is stored, but processing fails (INP does not convert): an ERROR for a WRITE, while a
    # put-callback completes normally
    "WRITE whose processing fails": ("w:fail.PROC", lambda sid: header(4, 8, 6, 1, sid, 10) + _DOUBLE),
    "WRITE_NOTIFY whose processing fails": ("w:fail.PROC", lambda sid: header(19, 8, 6, 1, sid, 10)
                                            + _DOUBLE),
    "CREATE_CHAN of an empty name": ("w:ao", lambda sid: header(18, 8, 0, 0, 5, 13) + bytes(8)),
    "READ_NOTIFY with a payload size not a multiple of 8": ("w:ao", lambda sid: header(15, 5, 6, 1, sid, 8)
                                                             + b"abcde"),
}




def _receive(sock: socket.socket, until: int, *also: int) -> list[tuple]:
    """Messages until ``until`` and every command of ``also`` came; an "EOF" entry if the server closes
    first."""
    buffer, messages, waiting = b"", [], {until, *also}
    while True:
        while len(buffer) >= 16:
            command, size, data_type, count, p1, p2 = struct.unpack(">HHHHII", buffer[:16])
            if len(buffer) < 16 + size:
                break
            messages.append((command, size, data_type, count, p1, p2, buffer[16:16 + size]))
            buffer = buffer[16 + size:]
            waiting.discard(command)
            if not waiting:
                return messages
        chunk = sock.recv(65536)
        if not chunk:
            return [*messages, "EOF"]
        buffer += chunk


def _masked(message, sid: int):
    if message == "EOF" or message[0] != Command.ERROR:
        return message
    *head, payload = message
    original, text = payload[:16], payload[16:]
    # the quoted request's p1 is the server's sid; rsrv pads the text with whatever its buffer held
    assert struct.unpack(">I", original[8:12])[0] == sid
    original = original[:8] + b"SID!" + original[12:]
    text = text.split(b"\0", 1)[0]
    return (*head, original + text)


def _exchange(port: int, pv: str, request) -> list:
    sock, sid = connect(port, pv)
    with sock:
        data = request(sid)
        put_callback = struct.unpack(">H", data[:2])[0] == Command.WRITE_NOTIFY
        sock.sendall(data + header(Command.ECHO, 0, 0, 0, 0, 0))
        if not put_callback:
            return [_masked(m, sid) for m in _receive(sock, Command.ECHO)]
        # rsrv answers a put-callback from another thread: its reply and the ECHO's come in either order
        messages = _receive(sock, Command.ECHO, Command.WRITE_NOTIFY)
        return sorted((_masked(m, sid) for m in messages), key=str)


@pytest.fixture(scope="module")
def pair(tmp_path_factory, repeater_port):
    with serve_both(DB, tmp_path_factory.mktemp("wire"), repeater_port) as both:
        yield both


@pytest.mark.parametrize("case", CASES)
def test_failed_request_answered_as_softioc(pair, case):
    pv, request = CASES[case]
    reference = _exchange(int(pair.reference["EPICS_CAS_SERVER_PORT"]), pv, request)
    ours = _exchange(int(pair.ours["EPICS_CAS_SERVER_PORT"]), pv, request)
    assert ours == reference
