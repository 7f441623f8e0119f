"""Beacons: the same datagrams as the C softIoc's, on rsrv's timing ramp."""
from __future__ import annotations

import socket
import struct
import time

import trio
from peers import ca_environment, free_port, our_ioc, soft_ioc

from caproto.constants import Command
from ioc.beacons import beacon_sender

DB = 'record(ai, "b:x") { field(VAL, "1") }\n'


class _RecordingSocket:
    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes, tuple[str, int]]] = []

    async def sendto(self, data: bytes, destination: tuple[str, int]) -> None:
        self.sent.append((trio.current_time(), data, destination))


async def test_beacon_ramp_doubles_from_20_ms_to_the_period_with_rsrv_ids(autojump_clock):
    sock = _RecordingSocket()
    start = trio.current_time()
    with trio.move_on_after(20):
        await beacon_sender(sock, [("127.0.0.1", 5065)], 5064, period=2.0)
    times = [t - start for t, _, _ in sock.sent]
    gaps = [round(b - a, 6) for a, b in zip(times, times[1:], strict=False)]
    assert gaps[:8] == [0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.0]
    ids = [struct.unpack(">HHHHII", data)[4] for _, data, _ in sock.sent]
    assert ids[:5] == [0, 0, 1, 2, 3]
    command, size, version, port, _, address = struct.unpack(">HHHHII", sock.sent[0][1])
    assert (command, size, port, address) == (Command.RSRV_IS_UP, 0, 5064, 0)


def _first_beacons(server, db_text: str, tmp_path, repeater_port: int, n: int = 5) -> list[tuple]:
    beacon_port = free_port()
    env = ca_environment(free_port(), repeater_port)
    env["EPICS_CAS_BEACON_PORT"] = str(beacon_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", beacon_port))
        sock.settimeout(20)
        if server is our_ioc:
            db = tmp_path / "ours.db"
            db.write_text(db_text)
            context = our_ioc(db, env)
        else:
            context = soft_ioc(db_text, env, tmp_path)
        with context:
            received = []
            while len(received) < n:
                data = sock.recv(100)
                received.append((time.monotonic(), data))
    port = int(env["EPICS_CAS_SERVER_PORT"])
    messages = []
    for _, data in received:
        command, size, version, count, p1, p2 = struct.unpack(">HHHHII", data)
        assert count == port
        messages.append((len(data), command, size, version, p1, p2))
    return messages


def test_beacons_match_softioc(tmp_path, repeater_port):
    reference = _first_beacons(soft_ioc, DB, tmp_path, repeater_port)
    ours = _first_beacons(our_ioc, DB, tmp_path, repeater_port)
    assert ours == reference
