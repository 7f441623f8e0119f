"""Put-callbacks on one channel are serialised as rsrv does: a second WRITE_NOTIFY waits for the first to
complete (and the circuit reads nothing else meanwhile), compared with the C softIoc on the wire."""
from __future__ import annotations

import socket
import struct
import time

import pytest
from differential import serve_both
from rawca import connect, header

from caproto.constants import ECA

# Simulation with SDLY: each processing completes 0.3 s after it starts (a second pass, PACT meanwhile).
DB = 'record(ao, "d") { field(SIMM, "YES") field(SDLY, "0.3") }\n'





def _two_puts_then_read(port: int) -> list[tuple]:
    """(arrival time, command, ioid, value) of the replies to put 1.0, put 2.0 (callbacks), read."""
    sock, sid = connect(port, "d")
    with sock:
        start = time.monotonic()
        sock.sendall(header(19, 8, 6, 1, sid, 1) + struct.pack(">d", 1.0)
                     + header(19, 8, 6, 1, sid, 2) + struct.pack(">d", 2.0)
                     + header(15, 0, 6, 1, sid, 3))
        replies, buffer = [], b""
        while len(replies) < 3:
            buffer += sock.recv(4096)
            while len(buffer) >= 16:
                command, size, _, _, _, ioid = struct.unpack(">HHHHII", buffer[:16])
                payload, buffer = buffer[16:16 + size], buffer[16 + size:]
                value = struct.unpack(">d", payload)[0] if size == 8 else None
                replies.append((time.monotonic() - start, command, ioid, value))
    return replies


@pytest.fixture
def pair(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as both:
        yield both


def test_second_put_callback_waits_for_the_first(pair):
    reference = _two_puts_then_read(int(pair.reference["EPICS_CAS_SERVER_PORT"]))
    ours = _two_puts_then_read(int(pair.ours["EPICS_CAS_SERVER_PORT"]))
    # the order and contents are rsrv's: put 1 completes, the read sees put 2's value, put 2 completes
    assert [r[1:] for r in ours] == [r[1:] for r in reference] == [(19, 1, None), (15, 3, 2.0), (19, 2, None)]
    # put 2 started only when put 1 had completed, so it completed a whole SDLY later
    assert ours[2][0] - ours[0][0] >= 0.25


def _put_callback_from_two_clients(port: int, b_type: int = 6,
                                   b_put: bytes = struct.pack(">d", 2.0)) -> list[tuple]:
    """Client A puts 1.0 with a callback; once A's put is known to be in (its READ answered), client B puts
    ``b_put`` (2.0) with a callback. Returns (arrival time, client, command, ioid, status) of the replies."""
    sock_a, sid_a = connect(port, "d")
    sock_b, sid_b = connect(port, "d")
    with sock_a, sock_b:
        start = time.monotonic()
        sock_a.sendall(header(19, 8, 6, 1, sid_a, 1) + struct.pack(">d", 1.0) + header(15, 0, 6, 1, sid_a, 9))
        replies: list[tuple] = []
        buffers = {"A": b"", "B": b""}

        def receive(name: str, sock: socket.socket, until_ioid: int) -> None:
            while True:
                buffers[name] += sock.recv(4096)
                while len(buffers[name]) >= 16:
                    command, size, _, _, status, ioid = struct.unpack(">HHHHII", buffers[name][:16])
                    buffers[name] = buffers[name][16 + size:]
                    replies.append((time.monotonic() - start, name, command, ioid, status))
                    if ioid == until_ioid:
                        return

        receive("A", sock_a, 9)            # A's put has been handled: the record is busy with it
        sock_b.sendall(header(19, len(b_put), b_type, 1, sid_b, 2) + b_put)
        receive("A", sock_a, 1)
        receive("B", sock_b, 2)
    return replies


def test_put_callback_from_another_client_waits_for_the_busy_record(pair):
    reference = _put_callback_from_two_clients(int(pair.reference["EPICS_CAS_SERVER_PORT"]))
    ours = _put_callback_from_two_clients(int(pair.ours["EPICS_CAS_SERVER_PORT"]))
    assert [r[1:4] for r in ours] == [r[1:4] for r in reference] == [("A", 15, 9), ("A", 19, 1), ("B", 19, 2)]
    # dbNotify holds B's put until A's processing completes, then processes it for a whole SDLY
    for replies in (reference, ours):
        assert replies[2][0] - replies[1][0] >= 0.25


def test_a_failing_put_callback_to_a_busy_record_still_processes_it(pair):
    """B's text is no number: once A's processing completes, dbNotify's put of it fails, but the record is
    processed all the same (a whole SDLY), and only then is B told ECA_PUTFAIL."""
    text = b"abc".ljust(40, b"\0")
    reference = _put_callback_from_two_clients(int(pair.reference["EPICS_CAS_SERVER_PORT"]), 0, text)
    ours = _put_callback_from_two_clients(int(pair.ours["EPICS_CAS_SERVER_PORT"]), 0, text)
    assert [r[1:] for r in ours] == [r[1:] for r in reference] == [
        ("A", 15, 9, 1), ("A", 19, 1, int(ECA.NORMAL)), ("B", 19, 2, int(ECA.PUTFAIL))]
    for replies in (reference, ours):
        assert replies[2][0] - replies[1][0] >= 0.25
