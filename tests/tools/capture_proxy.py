"""Record what the real EPICS C tools put on the wire, for the golden-bytes tests (tests/test_golden.py).

A proxy in the path would change what libca and rsrv see (the search reply names the server's TCP port,
beacons name the server's address), so this tool does not sit in the path: it sniffs the loopback
interface with an ``AF_PACKET`` socket (needs root or CAP_NET_RAW) while the C programs talk to each other
directly, then reassembles each TCP connection into one byte stream per direction and keeps every UDP
datagram whole.

Every scenario starts a fresh ``softIoc -S -d`` (so server ids are those of a fresh IOC) on private ports
next to one caRepeater, runs the C clients (caget, caput, camonitor; libca through pyepics for EVENT_CANCEL
and CLEAR_CHANNEL, which the command-line tools never send), and writes ``<scenario>.json`` (``.json.gz``
when large) to the output directory.

    sudo python tests/tools/capture_proxy.py tests/fixtures/captures

Not used at test time.
"""
from __future__ import annotations

import argparse
import contextlib
import getpass
import gzip
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from peers import ca_environment, free_port, repeater, tool, wait_for_tcp  # noqa: E402

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_RCVBUFFORCE = 33
IPPROTO_TCP = 6
IPPROTO_UDP = 17
TCP_SYN = 0x02

# Fixtures above this size are gzipped (the large-waveform conversations are mostly zeros and ones).
GZIP_ABOVE = 64 * 1024


@dataclass
class _TcpDirection:
    """One direction of a TCP connection, rebuilt from segments placed by sequence number."""
    isn: int | None = None
    data: bytearray = field(default_factory=bytearray)
    covered: list[tuple[int, int]] = field(default_factory=list)

    def add(self, seq: int, flags: int, payload: bytes) -> None:
        if flags & TCP_SYN:
            self.isn = seq + 1
            return
        if not payload:
            return
        if self.isn is None:
            raise RuntimeError("TCP data seen before the SYN: start the sniffer before the conversation")
        offset = (seq - self.isn) & 0xFFFFFFFF
        end = offset + len(payload)
        if end > len(self.data):
            self.data.extend(bytes(end - len(self.data)))
        self.data[offset:end] = payload  # a retransmission overwrites with the same bytes
        self.covered.append((offset, end))

    def stream(self) -> bytes:
        reached = 0
        for start, end in sorted(self.covered):
            if start > reached:
                raise RuntimeError(f"hole in a TCP stream at byte {reached}: the sniffer lost a segment")
            reached = max(reached, end)
        return bytes(self.data)


@dataclass
class Capture:
    tcp: dict[tuple[int, int], dict[str, _TcpDirection]]
    udp: list[dict[str, object]]


class LoopbackSniffer:
    """Buffers every loopback packet in the kernel while the C programs run; `collect` parses them afterwards.

    The socket is opened before the programs start and read after they finish, so no thread is needed; a
    32 MB receive buffer holds the largest conversation, and PACKET_STATISTICS proves nothing was dropped.
    """

    def __init__(self, ports: set[int]) -> None:
        self.ports = ports
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 * 1024 * 1024)
        self.sock.bind(("lo", 0))
        self._statistics()  # reading the statistics resets them

    def _statistics(self) -> tuple[int, int]:
        packets, drops = struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        return packets, drops

    def collect(self) -> Capture:
        self.sock.setblocking(False)
        capture = Capture(tcp={}, udp=[])
        while True:
            try:
                frame, address = self.sock.recvfrom(1 << 17)
            except BlockingIOError:
                break
            # Loopback shows each packet twice, leaving and arriving; keep the arrival.
            if address[2] == socket.PACKET_OUTGOING:
                continue
            self._parse(frame, capture)
        _, drops = self._statistics()
        self.sock.close()
        if drops:
            raise RuntimeError(f"the kernel dropped {drops} packets: enlarge the receive buffer")
        capture.udp = self._related(capture.udp)
        return capture

    def _related(self, datagrams: list[dict[str, object]]) -> list[dict[str, object]]:
        """The datagrams to or from the watched ports, plus those to or from the ports that talked to them."""
        peers = {d["src_port"] for d in datagrams if d["dst_port"] in self.ports}
        peers |= {d["dst_port"] for d in datagrams if d["src_port"] in self.ports}
        ports = self.ports | peers
        return [d for d in datagrams if d["src_port"] in ports or d["dst_port"] in ports]

    def _parse(self, frame: bytes, capture: Capture) -> None:
        (ethertype,) = struct.unpack_from("!H", frame, 12)
        if ethertype != ETH_P_IP:
            return
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        (total_length,) = struct.unpack_from("!H", ip, 2)
        protocol = ip[9]
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        segment = ip[ihl:total_length]
        sport, dport = struct.unpack_from("!HH", segment, 0)
        if protocol == IPPROTO_UDP:
            # Kept whatever the ports: the caRepeater answers and forwards from a socket of its own per
            # client, so which datagrams belong to the conversation is only known at the end (see `_related`).
            capture.udp.append({"src": src, "src_port": sport, "dst": dst, "dst_port": dport,
                                "hex": segment[8:].hex()})
        elif protocol == IPPROTO_TCP and (sport in self.ports or dport in self.ports):
            seq, = struct.unpack_from("!I", segment, 4)
            data_offset = (segment[12] >> 4) * 4
            flags = segment[13]
            if dport in self.ports:
                key, direction = (sport, dport), "client_to_server"
            else:
                key, direction = (dport, sport), "server_to_client"
            directions = capture.tcp.setdefault(
                key, {"client_to_server": _TcpDirection(), "server_to_client": _TcpDirection()})
            directions[direction].add(seq, flags, segment[data_offset:])


DB = textwrap.dedent("""\
    record(ai, "cap:ai") {
        field(PINI, "YES")
        field(VAL, "3.25")
        field(PREC, "3")
        field(EGU, "mm")
        field(HOPR, "10")
        field(LOPR, "-10")
        field(HIHI, "8")
        field(HIGH, "6")
        field(LOW, "-6")
        field(LOLO, "-8")
        field(HHSV, "MAJOR")
        field(HSV, "MINOR")
        field(LSV, "MINOR")
        field(LLSV, "MAJOR")
    }
    record(ao, "cap:ao") {
        field(PINI, "YES")
        field(VAL, "1")
        field(PREC, "2")
        field(EGU, "V")
        field(DRVH, "5")
        field(DRVL, "-5")
        field(HOPR, "5")
        field(LOPR, "-5")
    }
    record(bo, "cap:bo") {
        field(PINI, "YES")
        field(ZNAM, "Off")
        field(ONAM, "On")
    }
    record(longin, "cap:long") {
        field(PINI, "YES")
        field(VAL, "-42")
        field(EGU, "cts")
        field(HOPR, "1000")
        field(LOPR, "-1000")
    }
    record(stringin, "cap:str") {
        field(PINI, "YES")
        field(VAL, "hello world")
    }
    record(calc, "cap:counter") {
        field(SCAN, ".1 second")
        field(CALC, "A+1")
        field(INPA, "cap:counter")
    }
    record(waveform, "cap:wf") {
        field(FTVL, "DOUBLE")
        field(NELM, "100000")
    }
    record(waveform, "cap:small") {
        field(PINI, "YES")
        field(FTVL, "LONG")
        field(NELM, "8")
    }
""")

BIG_ARRAY_BYTES = "10000000"


@dataclass
class Run:
    server_port: int
    repeater_port: int
    db: Path
    commands: list[dict[str, object]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = ca_environment(self.server_port, self.repeater_port)
        env.update(extra)
        return env

    def record(self, argv: list[str], env_extra: dict[str, str], result: subprocess.CompletedProcess) -> None:
        self.commands.append({"argv": argv, "env": env_extra, "returncode": result.returncode,
                              "stdout": result.stdout, "stderr": result.stderr})

    def ca_tool(self, name: str, *args: str, **env_extra: str) -> subprocess.CompletedProcess:
        result = subprocess.run([tool(name), *args], env=self.env(**env_extra), capture_output=True,
                                text=True, timeout=30)
        self.record([name, *args], env_extra, result)
        return result

    def python(self, script: str, **env_extra: str) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-c", script], env=self.env(**env_extra),
                                capture_output=True, text=True, timeout=30)
        self.record(["python", "-c", script], env_extra, result)
        return result


@contextlib.contextmanager
def soft_ioc(run: Run) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([tool("softIoc"), "-S", "-d", str(run.db)],
                            env=run.env(EPICS_CA_MAX_ARRAY_BYTES=BIG_ARRAY_BYTES),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_tcp(run.server_port, proc)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- scenarios: each gets a fresh softIoc and a fresh sniffer --------------------------------------------

def caget_time_double(run: Run) -> None:
    run.ca_tool("caget", "-d", "DBR_TIME_DOUBLE", "-a", "cap:ai")


def caget_ctrl(run: Run) -> None:
    run.ca_tool("caget", "-d", "DBR_CTRL_DOUBLE", "cap:ai")
    run.ca_tool("caget", "-d", "DBR_CTRL_ENUM", "cap:bo")
    run.ca_tool("caget", "-d", "DBR_CTRL_LONG", "cap:long")
    run.ca_tool("caget", "-d", "DBR_TIME_STRING", "cap:str")
    run.ca_tool("caget", "cap:str")


def caput_callback(run: Run) -> None:
    run.ca_tool("caput", "-c", "cap:ao", "2.5")


def caput_bad_number(run: Run) -> None:
    """caput sends a non-enum value as DBR_STRING with WRITE; rsrv cannot convert "abc" and answers ERROR."""
    run.ca_tool("caput", "cap:long", "abc")


def _monitor(run: Run, pv: str, seconds: float, **env_extra: str) -> None:
    proc = subprocess.Popen([tool("camonitor"), pv], env=run.env(**env_extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(seconds)  # a capture window, not a synchronisation
    proc.terminate()
    out, err = proc.communicate(timeout=10)
    run.commands.append({"argv": ["camonitor", pv], "env": env_extra, "returncode": proc.returncode,
                         "stdout": out, "stderr": err})


def camonitor_counter(run: Run) -> None:
    """camonitor of a record counting up at 10 Hz for ~1 s: EVENT_ADD and a stream of EVENT_ADD responses."""
    _monitor(run, "cap:counter", 1.0)


def camonitor_idle(run: Run) -> None:
    """camonitor of a quiet PV for ~12 s with a 1 s connection timeout: libca sends ECHO when the circuit
    is idle, and registers with the caRepeater (its first attempt is 10 s after start-up)."""
    _monitor(run, "cap:ai", 12.0, EPICS_CA_CONN_TMO="1")


PYEPICS_CANCEL_CLEAR = textwrap.dedent("""\
    from epics import ca
    chid = ca.create_channel("cap:small", connect=True, auto_cb=False)
    assert ca.connect_channel(chid, timeout=5)
    callback, user_arg, evid = ca.create_subscription(chid, use_time=True)
    ca.pend_event(0.5)
    ca.clear_subscription(evid)
    ca.pend_event(0.5)
    ca.clear_channel(chid)
    ca.pend_event(0.5)
    ca.finalize_libca()
    print("done")
""")


def pyepics_cancel_clear(run: Run) -> None:
    """libca through pyepics: subscribe, cancel the subscription, clear the channel."""
    run.python(PYEPICS_CANCEL_CLEAR)


def waveform_extended(run: Run) -> None:
    """caput then caget of a 100000-element DOUBLE waveform: both directions need the extended header."""
    values = ["1"] * 70000
    run.ca_tool("caput", "-a", "cap:wf", str(len(values)), *values,
                EPICS_CA_MAX_ARRAY_BYTES=BIG_ARRAY_BYTES)
    run.ca_tool("caget", "-#", "100000", "cap:wf", EPICS_CA_MAX_ARRAY_BYTES=BIG_ARRAY_BYTES)


def beacons(run: Run) -> None:
    """Nothing to run: the softIoc start-up, inside the capture window, sends the first beacons."""
    time.sleep(1.0)  # beacons ramp from 20 ms; a capture window, not a synchronisation


def _header(command: int, payload_size: int, data_type: int, data_count: int, p1: int, p2: int) -> bytes:
    return struct.pack("!HHHHII", command, payload_size, data_type, data_count, p1, p2)


def _name(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return raw + b"\0" * (-len(raw) % 8)


def _receive(sock: socket.socket, count: int) -> list[bytes]:
    """Read `count` whole messages (no extended headers expected here)."""
    buffer, messages = b"", []
    while len(messages) < count:
        while len(buffer) < 16 or len(buffer) < 16 + struct.unpack_from("!H", buffer, 2)[0]:
            chunk = sock.recv(4096)
            if not chunk:
                raise RuntimeError("server closed the connection")
            buffer += chunk
        size = 16 + struct.unpack_from("!H", buffer, 2)[0]
        messages.append(buffer[:size])
        buffer = buffer[size:]
    return messages


def hand_built_tcp(run: Run) -> None:
    """A hand-built TCP client (raw struct.pack, not our encoder) asks rsrv for what the C clients never do:
    SEARCH over TCP with DO_REPLY (found and NOT_FOUND), CREATE_CHAN of a missing PV (CREATE_CH_FAIL), the
    obsolete READ, READ_SYNC, EVENTS_OFF/ON, ECHO, and an EVENT_CANCEL of an unknown subscription (ERROR
    ECA_BADMONID). Only the server's bytes are golden here."""
    with socket.create_connection(("127.0.0.1", run.server_port), timeout=5) as sock:
        _receive(sock, 1)  # rsrv's VERSION
        name = _name("cap:str")
        sock.sendall(_header(0, 0, 0, 13, 0, 0) + _header(18, len(name), 0, 0, 1, 13) + name)
        _, create_reply = _receive(sock, 2)  # ACCESS_RIGHTS, CREATE_CHAN
        sid = struct.unpack_from("!I", create_reply, 12)[0]
        found, missing = _name("cap:ai"), _name("cap:missing")
        requests = [
            _header(3, 0, 0, 1, sid, 11),                      # READ DBR_STRING -> READ
            _header(15, 0, 0, 1, sid, 12),                     # READ_NOTIFY DBR_STRING -> READ_NOTIFY
            _header(10, 0, 0, 0, 0, 0),                        # READ_SYNC -> READ_SYNC
            _header(8, 0, 0, 0, 0, 0),                         # EVENTS_OFF (no reply)
            _header(9, 0, 0, 0, 0, 0),                         # EVENTS_ON (no reply)
            _header(23, 0, 0, 0, 0, 0),                        # ECHO -> ECHO
            _header(6, len(found), 10, 13, 7, 7) + found,      # SEARCH DO_REPLY -> SEARCH (TCP form)
            _header(6, len(missing), 10, 13, 8, 8) + missing,  # SEARCH DO_REPLY -> NOT_FOUND
            _header(18, len(missing), 0, 0, 5, 13) + missing,  # CREATE_CHAN missing -> CREATE_CH_FAIL
            # rsrv answers ERROR ECA_BADMONID, then closes the circuit (so this comes last)
            _header(2, 0, 0, 1, sid, 77),
        ]
        sock.sendall(b"".join(requests))
        _receive(sock, 8)
    run.commands.append({"argv": ["hand-built client, see the scenario description"], "env": {},
                         "returncode": 0, "stdout": "", "stderr": ""})


def repeater_register(run: Run) -> None:
    """A hand-built 16-byte REPEATER_REGISTER (libca sends an empty datagram instead, see the README) to the
    caRepeater: its REPEATER_CONFIRM, then a beacon of the softIoc as the repeater forwards it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.bind(("127.0.0.1", 0))
        sock.sendto(_header(24, 0, 0, 0, 0, 0x7F000001), ("127.0.0.1", run.repeater_port))
        while True:
            data, _ = sock.recvfrom(1024)
            if data[:2] == b"\x00\x0d":  # RSRV_IS_UP: the first forwarded beacon ends the scenario
                break
    run.commands.append({"argv": ["hand-built REPEATER_REGISTER for 127.0.0.1"], "env": {},
                         "returncode": 0, "stdout": "", "stderr": ""})


SCENARIOS = [caget_time_double, caget_ctrl, caput_callback, caput_bad_number, camonitor_counter,
             camonitor_idle, pyepics_cancel_clear, waveform_extended, beacons, hand_built_tcp,
             repeater_register]


def capture(scenario, db: Path, repeater_port: int) -> dict[str, object]:
    run = Run(server_port=free_port(), repeater_port=repeater_port, db=db)
    sniffer = LoopbackSniffer({run.server_port, run.repeater_port})
    with soft_ioc(run):
        scenario(run)
    result = sniffer.collect()
    return {
        "scenario": scenario.__name__,
        "description": (scenario.__doc__ or "").strip(),
        "server_port": run.server_port,
        "repeater_port": run.repeater_port,
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "commands": run.commands,
        "tcp": [{"client_port": client_port, "server_port": server_port,
                 "client_to_server": dirs["client_to_server"].stream().hex(),
                 "server_to_client": dirs["server_to_client"].stream().hex()}
                for (client_port, server_port), dirs in sorted(result.tcp.items())
                # wait_for_tcp's probe connections carry nothing but rsrv's VERSION
                if dirs["client_to_server"].stream()],
        "udp": result.udp,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("scenarios", nargs="*", help="names of the scenarios to run (default: all)")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in SCENARIOS if not args.scenarios or s.__name__ in args.scenarios]
    repeater_port = free_port()
    with tempfile.TemporaryDirectory() as tmp, repeater(repeater_port, ca_environment(free_port(),
                                                                                     repeater_port)):
        db = Path(tmp) / "capture.db"
        db.write_text(DB)
        for scenario in chosen:
            record = capture(scenario, db, repeater_port)
            text = json.dumps(record, indent=1) + "\n"
            for old in args.out_dir.glob(f"{scenario.__name__}.json*"):
                old.unlink()
            if len(text) > GZIP_ABOVE:
                path = args.out_dir / f"{scenario.__name__}.json.gz"
                path.write_bytes(gzip.compress(text.encode(), mtime=0))
            else:
                path = args.out_dir / f"{scenario.__name__}.json"
                path.write_text(text)
            print(f"{path}: {len(record['tcp'])} TCP connections, {len(record['udp'])} datagrams",
                  file=sys.stderr)


if __name__ == "__main__":
    os.umask(0o022)
    main()
