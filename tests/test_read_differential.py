"""Reads of long strings (``REC.FIELD$``) and of link fields, request by request against the C softIoc.

Each request (every DBR type, with element counts 0 = "current length", 1 and 3) goes over one raw
circuit per server; the replies are compared decoded: element count, ECA status, values and metadata
(timestamps aside). rsrv leaves pad bytes and the tails of strings uninitialised, so raw bytes are not
comparable.
"""
from __future__ import annotations

import dataclasses
import socket
import struct

import pytest
from differential import serve_both

from caproto.constants import Command
from caproto.dbr import ChannelType, decode_payload

DB = r"""
record(stringin, "R:si") { field(VAL, "hello") }
record(stringin, "R:empty") { }
record(ai, "R:ai") { field(INP, "R:ao.VAL CP MS") field(FLNK, "R:si") }
record(ao, "R:ao") { field(OUT, "R:ai PP") }
record(calc, "R:calc") { field(INPA, "R:ai") field(CALC, "A") }
"""

READABLE_TYPES = [*range(35), 37, 38]
COUNTS = (0, 1, 3)
CHAR_TYPES = (4, 11, 18, 25, 32)


def _header(command: int, size: int, data_type: int, count: int, p1: int, p2: int) -> bytes:
    return struct.pack(">HHHHII", command, size, data_type, count, p1, p2)


def _messages(sock: socket.socket, until: int):
    buffer = b""
    while True:
        while len(buffer) >= 16:
            command, size, data_type, count, p1, p2 = struct.unpack(">HHHHII", buffer[:16])
            if len(buffer) < 16 + size:
                break
            yield command, data_type, count, p1, p2, buffer[16:16 + size]
            buffer = buffer[16 + size:]
            if command == until:
                return
        chunk = sock.recv(65536)
        assert chunk, "the server closed the circuit"
        buffer += chunk


def read_all(port: int, pv: str, requests: list[tuple[int, int]]) -> dict[tuple[int, int], tuple]:
    """READ_NOTIFY each (data_type, count) of ``pv``: {request: (count, status, values and metadata)}."""
    name = pv.encode() + b"\0"
    name += b"\0" * (-len(name) % 8)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_header(0, 0, 0, 13, 0, 0) + _header(18, len(name), 0, 0, 1, 13) + name)
        sid = next(m for m in _messages(sock, Command.CREATE_CHAN) if m[0] == Command.CREATE_CHAN)[4]
        sock.sendall(b"".join(_header(Command.READ_NOTIFY, 0, data_type, count, sid, ioid)
                              for ioid, (data_type, count) in enumerate(requests))
                     + _header(Command.ECHO, 0, 0, 0, 0, 0))
        replies = {}
        for command, data_type, count, status, ioid, payload in _messages(sock, Command.ECHO):
            if command != Command.READ_NOTIFY:
                continue
            values, metadata = decode_payload(data_type, count, payload)
            if data_type == ChannelType.CLASS_NAME:
                values = values[:1]     # rsrv fills only the first element of a CLASS_NAME array
            if metadata is not None:
                metadata = dataclasses.replace(metadata, secs=0, nsec=0)
            # str() so that NaN compares equal to NaN
            replies[requests[ioid]] = (count, status, str(list(values)), str(metadata))
    assert len(replies) == len(requests)
    return replies


@pytest.fixture(scope="module")
def pair(tmp_path_factory, repeater_port):
    with serve_both(DB, tmp_path_factory.mktemp("reads"), repeater_port) as both:
        yield both


def assert_reads_match(pair, pv: str, requests: list[tuple[int, int]]) -> None:
    reference = read_all(int(pair.reference["EPICS_CAS_SERVER_PORT"]), pv, requests)
    ours = read_all(int(pair.ours["EPICS_CAS_SERVER_PORT"]), pv, requests)
    differ = {request: (reference[request], ours[request]) for request in requests
              if reference[request] != ours[request]}
    assert not differ, f"{pv}: (DBR type, count) -> (softIoc, ours): {differ}"


@pytest.mark.parametrize("pv", ["R:si.VAL$", "R:empty.VAL$", "R:ai.DESC$"])
def test_long_string_reads_match_softioc(pair, pv):
    # as chars: NUL in the last element asked for; "current length" cut after the NUL for DBR_CHAR and
    # TIME_CHAR only; other types convert every element
    requests = [(t, n) for t in READABLE_TYPES for n in COUNTS]
    requests += [(t, n) for t in CHAR_TYPES for n in (2, 6, 7)]
    assert_reads_match(pair, pv, requests)


@pytest.mark.parametrize("pv", ["R:ai.INP", "R:ao.OUT", "R:ai.FLNK", "R:calc.INPA", "R:ao.DOL", "R:ao.FLNK",
                                "R:ai.INP$", "R:ao.DOL$", "R:ai.FLNK$"])
def test_link_field_reads_match_softioc(pair, pv):
    # getLinkValue: text as STRING or NUL-terminated chars, NaN as DOUBLE, ECA_GETFAIL for other types
    assert_reads_match(pair, pv, [(t, n) for t in READABLE_TYPES for n in COUNTS])


def test_caget_of_a_long_string_with_a_count_matches_softioc(pair):
    pair.assert_same("caget", "-w", "5", "-#", "3", "-d", "DBR_GR_CHAR", "R:si.VAL$", "R:ai.INP$", "R:ai.INP")
    pair.assert_same("caget", "-w", "5", "-S", "-#", "3", "R:si.VAL$", "R:ai.INP$")
    pair.assert_same("caget", "-w", "5", "-#", "1", "-d", "DBR_CHAR", "R:si.VAL$", "R:ai.INP$")
