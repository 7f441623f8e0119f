"""Encode/decode speed of the sans-I/O core, side by side with PyPI caproto 1.3.0.

    python bench/bench_core.py            # ours, then caproto 1.3.0 in a temporary venv, and the ratios
    python bench/bench_core.py --impl ours --json     # one implementation, machine-readable

The workload is what a CA server and client spend their time on: a UDP search datagram (VERSION + SEARCH),
READ_NOTIFY requests, READ_NOTIFY responses carrying DBR_TIME_DOUBLE, and EVENT_ADD responses with 1, 1000 and
1000000 DBR_DOUBLE elements. *Encode* builds the message object from its fields and values (numpy arrays in
native byte order, so the big-endian swap is part of it) and takes its bytes. *Decode* cuts the bytes with the
implementation's own reader (our StreamParser / parse_datagram; caproto 1.3.0's read_from_bytestream /
read_datagram), one message per call, and reads the fields, values and metadata a user reads.

caproto 1.3.0 and this project both import as ``caproto``, so 1.3.0 runs in its own virtual environment,
created for the run (``pip install caproto==1.3.0 numpy``) unless ``--caproto-python`` names an interpreter
that already has it. Timings are CPU time, the best of several loops of at least ``--min-time`` seconds, over
``--rounds`` rounds that alternate the two implementations.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ARRAY_SIZES = (1, 1000, 1_000_000)
BURST = 1000            # updates per burst in the circuit case
READ_SIZE = 1 << 16     # bytes per socket read in the circuit cases
SECS, NSEC = 1_100_000_000, 123_456_789   # an EPICS-epoch time stamp
PV_NAME = "XF:31IDA-OP{Tbl-Ax:X1}Mtr.RBV"


class Case:
    """One row of the benchmark: an encode and a decode operation on the same messages."""

    def __init__(self, name: str, messages: int, encode: Callable[[], bytes],
                 decode: Callable[[Any], object], received: Callable[[bytes], Any] = bytes) -> None:
        self.name = name
        self.messages = messages      # CA messages per operation
        self.encode = encode
        self.decode = decode
        # what decode reads: the bytes as received (caproto 1.3.0 needs a writable bytearray), or reads_of
        self.received = received


def ours_cases() -> list[Case]:
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from caproto.constants import DONT_REPLY, ECA, Role
    from caproto.dbr import ChannelType, Metadata
    from caproto.framing import StreamParser, parse_datagram
    from caproto.messages import (
        EventAddResponse,
        ReadNotifyRequest,
        ReadNotifyResponse,
        SearchRequest,
        VersionRequest,
        encode,
    )

    server_side = StreamParser(Role.SERVER)
    client_side = StreamParser(Role.CLIENT, max_payload=1 << 30)
    # enum members looked up once, outside the timed loops, for both implementations
    TIME_DOUBLE, DOUBLE, NORMAL = ChannelType.TIME_DOUBLE, ChannelType.DOUBLE, ECA.NORMAL

    def search_encode() -> bytes:
        return encode(VersionRequest(1, 13, 7), SearchRequest(PV_NAME, 7, 13, DONT_REPLY))

    def search_decode(wire: bytes) -> object:
        return parse_datagram(wire, Role.SERVER)[1].name

    def request_encode() -> bytes:
        return bytes(ReadNotifyRequest(TIME_DOUBLE, 1, 17, 9))

    def request_decode(wire: bytes) -> object:
        server_side.feed(wire)
        msg = server_side.next_message()
        return msg.data_type, msg.data_count, msg.sid, msg.ioid

    metadata = Metadata(status=0, severity=0, secs=SECS, nsec=NSEC)

    def response_encode() -> bytes:
        return bytes(ReadNotifyResponse(3.25, TIME_DOUBLE, 1, NORMAL, 9, metadata=metadata))

    def response_decode(wire: bytes) -> object:
        client_side.feed(wire)
        msg = client_side.next_message()
        md = msg.metadata
        return msg.data[0], md.status, md.severity, md.secs, md.nsec

    def event_encoder(values: np.ndarray) -> Callable[[], bytes]:
        def event_encode() -> bytes:
            return bytes(EventAddResponse(values, DOUBLE, len(values), NORMAL, 4))
        return event_encode

    def event_decode(wire: bytes) -> object:
        client_side.feed(wire)
        msg = client_side.next_message()
        return msg.data, msg.subscriptionid

    burst_values = [np.array([float(i)]) for i in range(BURST)]

    def burst_encode() -> bytes:
        return encode(*[EventAddResponse(v, DOUBLE, 1, NORMAL, 4) for v in burst_values])

    def circuit_decode(reads: list[bytes]) -> object:
        last = None
        for chunk in reads:
            client_side.feed(chunk)
            for msg in client_side:
                last = msg.data
        return last

    return common_cases(search_encode, search_decode, request_encode, request_decode, response_encode,
                        response_decode, event_encoder, event_decode, burst_encode, circuit_decode)


def reads_of(wire: bytes) -> list[bytes]:
    """``wire`` as a socket would deliver it, in reads of at most READ_SIZE bytes."""
    return [wire[i:i + READ_SIZE] for i in range(0, len(wire), READ_SIZE)]


def common_cases(search_encode, search_decode, request_encode, request_decode, response_encode,
                 response_decode, event_encoder, event_decode, burst_encode, circuit_decode,
                 received: Callable[[bytes], Any] = bytes) -> list[Case]:
    """The same rows, in the same order, for either implementation."""
    cases = [Case("SEARCH datagram (VERSION+SEARCH)", 2, search_encode, search_decode, received),
             Case("READ_NOTIFY request", 1, request_encode, request_decode, received),
             Case("READ_NOTIFY response DBR_TIME_DOUBLE", 1, response_encode, response_decode, received)]
    for size in ARRAY_SIZES:
        cases.append(Case(f"EVENT_ADD response DBR_DOUBLE x {size}", 1,
                          event_encoder(np.linspace(0.0, 1.0, size)), event_decode, received))
    cases.append(Case(f"circuit: {BURST} x (EVENT_ADD x 1), 64 KiB reads", BURST, burst_encode,
                      circuit_decode, reads_of))
    cases.append(Case("circuit: EVENT_ADD x 1000000, 64 KiB reads", 1,
                      event_encoder(np.linspace(0.0, 1.0, 1_000_000)), circuit_decode, reads_of))
    return cases


def caproto130_cases() -> list[Case]:
    import caproto as ca
    if ca.__version__ != "1.3.0":
        raise SystemExit(f"this interpreter has caproto {ca.__version__}, not 1.3.0")
    from caproto._commands import read_datagram, read_from_bytestream

    from caproto import (
        CLIENT,
        NEED_DATA,
        SERVER,
        ChannelType,
        EventAddResponse,
        ReadNotifyRequest,
        ReadNotifyResponse,
        SearchRequest,
        VersionRequest,
    )

    TIME_DOUBLE, DOUBLE = ChannelType.TIME_DOUBLE, ChannelType.DOUBLE
    time_double_metadata = ca.DBR_TYPES[TIME_DOUBLE]

    def search_encode() -> bytes:
        return (bytes(VersionRequest(priority=1, version=13))
                + bytes(SearchRequest(PV_NAME, 7, 13)))

    def search_decode(wire: bytes) -> object:
        return read_datagram(wire, ("127.0.0.1", 5064), CLIENT)[1].name

    def request_encode() -> bytes:
        return bytes(ReadNotifyRequest(TIME_DOUBLE, 1, 17, 9))

    def request_decode(wire: bytes) -> object:
        _, msg, _ = read_from_bytestream(wire, CLIENT)
        return msg.data_type, msg.data_count, msg.sid, msg.ioid

    def response_encode() -> bytes:
        metadata = time_double_metadata(status=0, severity=0)
        metadata.stamp.secondsSinceEpoch = SECS
        metadata.stamp.nanoSeconds = NSEC
        return bytes(ReadNotifyResponse([3.25], TIME_DOUBLE, 1, 1, 9, metadata=metadata))

    def response_decode(wire: bytes) -> object:
        _, msg, _ = read_from_bytestream(wire, SERVER)
        md = msg.metadata
        return msg.data[0], md.status, md.severity, md.stamp.secondsSinceEpoch, md.stamp.nanoSeconds

    def event_encoder(values: np.ndarray) -> Callable[[], bytes]:
        def event_encode() -> bytes:
            return bytes(EventAddResponse(values, DOUBLE, len(values), 1, 4))
        return event_encode

    def event_decode(wire: bytes) -> object:
        _, msg, _ = read_from_bytestream(wire, SERVER)
        return msg.data, msg.subscriptionid

    burst_values = [np.array([float(i)]) for i in range(BURST)]

    def burst_encode() -> bytes:
        return b"".join([bytes(EventAddResponse(v, DOUBLE, 1, 1, 4)) for v in burst_values])

    def circuit_decode(reads: list[bytes]) -> object:
        # what caproto 1.3.0's VirtualCircuit.recv does with each read
        data = bytearray()
        last = None
        for chunk in reads:
            data += chunk
            while True:
                data, msg, _ = read_from_bytestream(data, SERVER)
                if msg is NEED_DATA:
                    break
                last = msg.data
        return last

    return common_cases(search_encode, search_decode, request_encode, request_decode, response_encode,
                        response_decode, event_encoder, event_decode, burst_encode, circuit_decode,
                        received=bytearray)


def best_rate(operation: Callable[[], object], min_time: float, repeats: int) -> float:
    """Operations per CPU second: the best of ``repeats`` loops of at least ``min_time`` seconds each.

    CPU time of this process, not wall time, so that other work on a shared machine counts less.
    """
    clock = time.process_time
    n = 1
    while True:
        start = clock()
        for _ in range(n):
            operation()
        elapsed = clock() - start
        if elapsed >= min_time:
            break
        n = max(n * 2, int(n * min_time / max(elapsed, 1e-9) * 1.2))
    best = n / elapsed
    for _ in range(repeats - 1):
        start = clock()
        for _ in range(n):
            operation()
        best = max(best, n / max(clock() - start, 1e-9))
    return best


def measure(cases: list[Case], min_time: float, repeats: int) -> list[dict[str, object]]:
    results = []
    for case in cases:
        wire = case.encode()
        encode_rate = best_rate(case.encode, min_time, repeats)
        received = case.received(wire)
        decode_rate = best_rate(lambda case=case, received=received: case.decode(received), min_time, repeats)
        results.append({"case": case.name, "bytes": len(wire), "messages": case.messages,
                        "encode_ops": encode_rate, "decode_ops": decode_rate})
    return results


def caproto130_python(tmp: Path) -> str:
    """A fresh virtual environment with PyPI caproto 1.3.0 and numpy; returns its interpreter."""
    env_dir = tmp / "caproto-1.3.0"
    print(f"creating a virtual environment with caproto==1.3.0 in {env_dir} ...", file=sys.stderr)
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "caproto==1.3.0", "numpy"], check=True)
    return python


def best_of(old: list[dict[str, object]], new: list[dict[str, object]]) -> list[dict[str, object]]:
    if not old:
        return new
    return [{**a, "encode_ops": max(a["encode_ops"], b["encode_ops"]),
             "decode_ops": max(a["decode_ops"], b["decode_ops"])} for a, b in zip(old, new, strict=True)]


def run_other(python: str, min_time: float, repeats: int) -> list[dict[str, object]]:
    out = subprocess.run([python, str(Path(__file__).resolve()), "--impl", "caproto130", "--json",
                          "--min-time", str(min_time), "--repeats", str(repeats)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def rate_text(ops: float, messages: int, size: int) -> str:
    return f"{ops * messages:>12,.0f} msg/s {ops * size / 1e6:>9,.1f} MB/s"


def report(ours: list[dict[str, object]], theirs: list[dict[str, object]] | None) -> None:
    for direction in ("encode", "decode"):
        print(f"\n{direction}")
        header = f"{'case':48} {'ours':>29}"
        if theirs:
            header += f" {'caproto 1.3.0':>29} {'ratio':>7}"
        print(header)
        for index, row in enumerate(ours):
            ops = row[f"{direction}_ops"]
            line = f"{row['case']:48} {rate_text(ops, row['messages'], row['bytes'])}"
            if theirs:
                other = theirs[index]
                assert other["case"] == row["case"]
                line += (f" {rate_text(other[f'{direction}_ops'], other['messages'], other['bytes'])}"
                         f" {ops / other[f'{direction}_ops']:>6.1f}x")
            print(line)
    print("\n(decoding a whole message from one read gives a numpy view of the received bytes: those MB/s are"
          " not copy speeds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=["ours", "caproto130"], help="measure one implementation only")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per timing loop")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of ours and caproto 1.3.0")
    parser.add_argument("--caproto-python", help="an interpreter with caproto 1.3.0 (skips the venv)")
    args = parser.parse_args()

    if args.impl:
        cases = ours_cases() if args.impl == "ours" else caproto130_cases()
        results = measure(cases, args.min_time, args.repeats)
        if args.json:
            print(json.dumps(results))
        else:
            report(results, None)
        return

    with tempfile.TemporaryDirectory() as tmp:
        python = args.caproto_python or caproto130_python(Path(tmp))
        cases = ours_cases()
        ours: list[dict[str, object]] = []
        theirs: list[dict[str, object]] = []
        # Alternate the two so that a busy spell on the machine does not favour one; keep each one's best.
        for round_number in range(args.rounds):
            print(f"round {round_number + 1} of {args.rounds} ...", file=sys.stderr)
            ours = best_of(ours, measure(cases, args.min_time, args.repeats))
            theirs = best_of(theirs, run_other(python, args.min_time, args.repeats))
    report(ours, theirs)


if __name__ == "__main__":
    main()
