"""Processing cost of a large waveform whose MPST/APST is "On Change" (HASH, epicsMemHash of its bytes).

    python bench/bench_waveform_hash.py [--nelm 1000000] [--repeat 5]

Builds one DOUBLE waveform of NELM elements with MPST "On Change" in an in-process Database and times:
  * a CA put of new contents (the record processes, hashes the 8 MB and posts VAL and HASH),
  * a processing with the contents unchanged (compared with the contents hashed last, not hashed again),
  * epicsMemHash itself (ioc.records.waveform.mem_hash) and, on a sample, the byte-at-a-time recurrence it
    replaces, extrapolated to the full array.
Times are wall-clock, the best of --repeat runs.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from caproto.dbr import ChannelType, encode_payload  # noqa: E402
from ioc.config import IocConfig, Located, RecordSpec  # noqa: E402
from ioc.database import Database  # noqa: E402
from ioc.records.waveform import _mem_hash_loop, mem_hash  # noqa: E402

SAMPLE = 200_000      # bytes the byte-at-a-time recurrence is timed on


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nelm", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    fields = {"FTVL": "DOUBLE", "NELM": str(args.nelm), "MPST": "On Change", "APST": "On Change"}
    located = {name: Located(value, "bench", 1) for name, value in fields.items()}
    spec = RecordSpec("bench:wf", "waveform", located, "bench", 1)
    db = Database.from_config(IocConfig([spec], []))
    rec = db.records["bench:wf"]
    chan = db.lookup("bench:wf")
    rng = np.random.default_rng(0)
    payloads = [encode_payload(ChannelType.DOUBLE, rng.standard_normal(args.nelm).astype(">f8"), None,
                               args.nelm) for _ in range(2)]
    turn = iter(range(10 ** 9))

    def put_new_contents() -> None:
        chan.write(ChannelType.DOUBLE, args.nelm, payloads[next(turn) % 2])

    put = best_of(args.repeat, put_new_contents)
    unchanged = best_of(args.repeat, lambda: db.process(rec))
    data = rec.VAL[:rec.NORD].tobytes()
    hashing = best_of(args.repeat, lambda: mem_hash(data))
    sample = data[:SAMPLE]
    loop = best_of(1, lambda: _mem_hash_loop(sample)) * len(data) / len(sample)
    assert mem_hash(sample) == _mem_hash_loop(sample)

    print(f"waveform of {args.nelm:,} DOUBLEs ({len(data) / 1e6:.1f} MB), MPST/APST On Change, "
          f"HASH {rec.HASH}")
    print(f"  put of new contents (process, hash, post): {put * 1000:8.1f} ms")
    print(f"  processing, contents unchanged:            {unchanged * 1000:8.1f} ms")
    print(f"  epicsMemHash of the array (blocked numpy): {hashing * 1000:8.1f} ms")
    print(f"  the same, byte at a time (extrapolated):   {loop * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
