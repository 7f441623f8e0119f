"""lsi/lso VAL and OVAL serve LEN (OLEN) elements, against the C softIoc: their get_array_info gives dbGet
the string's length with its NUL, so a read that asks for the current length (count 0) of a string never
set (LEN 0) gets no element at all, as a DBR_STRING of VAL or as chars through VAL$; a set string gives
one DBR_STRING, or LEN chars. The C tools print the same either way (an empty string), which the second
test checks.

Each raw read opens a circuit to each server, sends one READ_NOTIFY or EVENT_ADD, and compares the
reply's header and decoded payload (rsrv leaves stale bytes in a payload's padding and in a string after
its NUL; timestamps differ between the servers).
"""
from __future__ import annotations

import struct

import pytest
from differential import serve_both
from rawca import connect, header

from caproto.constants import Command
from caproto.dbr import ChannelType, decode_payload

DB = r"""
record(lsi, "L:empty") { field(SIZV, "20") }
record(lso, "L:oempty") { field(SIZV, "20") }
record(lsi, "L:set") { field(SIZV, "20") field(INP, {const:"hello"}) }
record(lso, "L:out") { field(SIZV, "30") }
"""

_MONITOR = struct.pack(">fffHH", 0, 0, 0, 5, 0)    # EVENT_ADD payload: DBE_VALUE | DBE_ALARM

PVS = ["L:empty", "L:empty.VAL$", "L:empty.OVAL", "L:empty.OVAL$", "L:oempty", "L:oempty.VAL$", "L:set",
       "L:set.VAL$", "L:set.OVAL$", "L:out", "L:out.VAL$"]
TYPES = [ChannelType.STRING, ChannelType.CHAR, ChannelType.DOUBLE, ChannelType.TIME_STRING,
         ChannelType.STS_CHAR, ChannelType.TIME_CHAR, ChannelType.CTRL_CHAR]


def _reply(port: int, pv: str, command: int, data_type: int, count: int) -> tuple:
    sock, sid = connect(port, pv)
    with sock:
        if command == Command.EVENT_ADD:
            sock.sendall(header(command, 16, data_type, count, sid, 7) + _MONITOR)
        else:
            sock.sendall(header(command, 0, data_type, count, sid, 8))
        buffer = b""
        while True:
            while len(buffer) >= 16:
                cmd, size, dtype, n, p1, p2 = struct.unpack(">HHHHII", buffer[:16])
                if len(buffer) < 16 + size:
                    break
                payload, buffer = buffer[16:16 + size], buffer[16 + size:]
                if cmd == command:
                    values, md = decode_payload(dtype, n, payload)
                    values = list(values) if isinstance(values, list) else values.tolist()
                    return cmd, dtype, n, p1, p2, values, md.status, md.severity
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"{pv}: circuit closed before the reply")
            buffer += chunk


@pytest.fixture(scope="module")
def pair(tmp_path_factory, repeater_port):
    with serve_both(DB, tmp_path_factory.mktemp("lslen"), repeater_port) as both:
        yield both


def _compare_reads(pair, pvs: list[str]) -> list[tuple]:
    ports = int(pair.reference["EPICS_CAS_SERVER_PORT"]), int(pair.ours["EPICS_CAS_SERVER_PORT"])
    seen = []
    for pv in pvs:
        for data_type in TYPES:
            for command, count in ((Command.READ_NOTIFY, 0), (Command.READ_NOTIFY, 1),
                                   (Command.EVENT_ADD, 0)):
                ref, ours = (_reply(port, pv, command, data_type, count) for port in ports)
                assert ours == ref, f"{pv} {data_type.name} {command.name} count {count}"
                seen.append((pv, data_type, command, count, ref[2]))
    return seen


def test_unset_long_string_serves_no_element(pair):
    seen = _compare_reads(pair, PVS)
    # the point of it: softIoc does serve zero elements here, and one or LEN where a string is set
    assert ("L:empty", ChannelType.STRING, Command.READ_NOTIFY, 0, 0) in seen
    assert ("L:empty.VAL$", ChannelType.CHAR, Command.READ_NOTIFY, 0, 0) in seen
    assert ("L:set.VAL$", ChannelType.CHAR, Command.READ_NOTIFY, 0, 6) in seen
    assert ("L:set", ChannelType.STRING, Command.READ_NOTIFY, 0, 1) in seen


def test_tools_print_unset_long_strings_as_softioc(pair):
    for args in (["caget", "L:empty", "L:oempty", "L:set"], ["caget", "-S", "L:empty.VAL$", "L:set.VAL$"],
                 ["caget", "-#", "0", "L:empty", "L:empty.VAL$"],
                 ["caget", "-d", "DBR_TIME_CHAR", "L:empty.VAL$", "L:set.VAL$"],
                 ["cainfo", "L:empty", "L:empty.VAL$", "L:oempty.OVAL$"]):
        pair.assert_same(*args)


def test_length_follows_puts(pair):
    # an empty string put is LEN 1 (its NUL): one element; a processed lso copies VAL to OVAL
    for pv, value in (("L:out.VAL$", ""), ("L:out", "abc"), ("L:out.VAL$", "a longer string here")):
        pair.assert_same("caput", *(["-S"] if pv.endswith("$") else []), pv, value)
        _compare_reads(pair, ["L:out", "L:out.VAL$", "L:out.OVAL", "L:out.OVAL$"])
