"""Record-processing benchmark (issue 4, Speed): our IOC against the C softIoc on the same .db files.

    python bench/bench_processing.py [--quick]

1. A database of N records (100,000; 20,000 with --quick) in a realistic mix: 70 % ai/ao with alarm
   limits, 10 % bi/bo, 10 % calc with FLNK and CP links, 10 % waveforms of 100-1,000 elements.
   Both servers load it; we print the time until the CA port accepts connections and the resident memory.
2. A database of 10,000 ai records at SCAN "1 second" plus 1,000 at ".1 second"; we print each server's
   CPU over 10 s (5 s with --quick) as a fraction of one core.
Targets from the issue: load < 5 s, RSS < 500 MB, scan CPU < 50 % of one core.
Everything runs on loopback with private ports (helpers shared with bench_ioc.py).
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ioc import BIN, cpu_seconds, environment, free_port, rss_mb, server  # noqa: E402

# Limits chosen so most values sit in the normal band but some records start in alarm.
_ANALOG_LIMITS = ('field(HIHI, "90") field(HIGH, "70") field(LOW, "20") field(LOLO, "5") '
                  'field(HHSV, "MAJOR") field(HSV, "MINOR") field(LSV, "MINOR") field(LLSV, "MAJOR") '
                  'field(HYST, "1") field(HOPR, "100") field(LOPR, "0") field(EGU, "mm") field(PREC, "3")')
_FTVL = ("DOUBLE", "FLOAT", "LONG", "SHORT", "CHAR")


def mixed_database(n: int, seed: int = 4) -> str:
    """``n`` records: 70 % ai/ao with alarm limits, 10 % bi/bo, 10 % calc, 10 % waveforms.

    Each calc reads an ai through a CP link (so a put to the ai re-processes it) and forward-links to an ao,
    so both link kinds are exercised across the database."""
    rng = random.Random(seed)
    tenth = n // 10
    analog = n - 3 * tenth
    ai_count = analog // 2
    lines: list[str] = []
    for i in range(ai_count):
        lines.append(f'record(ai, "P:ai{i}") {{ field(VAL, "{rng.uniform(0, 100):.3f}") {_ANALOG_LIMITS} }}')
    for i in range(analog - ai_count):
        lines.append(f'record(ao, "P:ao{i}") {{ field(VAL, "{rng.uniform(0, 100):.3f}") {_ANALOG_LIMITS} '
                     'field(DRVH, "100") field(DRVL, "0") }')
    for i in range(tenth):
        kind = "bi" if i % 2 == 0 else "bo"
        lines.append(f'record({kind}, "P:{kind}{i}") {{ field(VAL, "{i % 2}") field(ZNAM, "Off") '
                     'field(ONAM, "On") field(ZSV, "NO_ALARM") field(OSV, "MINOR") }')
    for i in range(tenth):
        lines.append(f'record(calc, "P:calc{i}") {{ field(INPA, "P:ai{i % ai_count} CP") field(INPB, "2") '
                     f'field(CALC, "A*B+1") field(FLNK, "P:ao{i % (analog - ai_count)}") '
                     f'{_ANALOG_LIMITS} }}')
    for i in range(tenth):
        lines.append(f'record(waveform, "P:wf{i}") {{ field(FTVL, "{_FTVL[i % len(_FTVL)]}") '
                     f'field(NELM, "{rng.randint(100, 1000)}") }}')
    return "\n".join(lines) + "\n"


def scan_database(slow: int = 10000, fast: int = 1000) -> str:
    """``slow`` ai records at SCAN "1 second" and ``fast`` at ".1 second", with alarm limits."""
    def record(name: str, scan: str, i: int) -> str:
        fields = f'field(SCAN, "{scan}") field(VAL, "{i % 100}") {_ANALOG_LIMITS}'
        return f'record(ai, "S:{name}{i}") {{ {fields} }}'

    lines = [record("slow", "1 second", i) for i in range(slow)]
    lines += [record("fast", ".1 second", i) for i in range(fast)]
    return "\n".join(lines) + "\n"


def scan_cpu(proc: subprocess.Popen, seconds: float) -> float:
    """The server's CPU (fraction of one core) over ``seconds`` of wall time."""
    time.sleep(1.0)  # let the first scan passes settle past start-up work
    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 records and a 5 s CPU window")
    args = parser.parse_args()
    n = 20000 if args.quick else 100000
    window = 5.0 if args.quick else 10.0
    print(f"machine: {os.cpu_count()} cores; {sys.version.split()[0]}; {n:,} mixed records; "
          f"scan CPU window {window:g} s")
    results: dict[str, dict[str, float]] = {"C": {}, "ours": {}}
    repeater_port = free_port()
    repeater = subprocess.Popen([str(BIN / "caRepeater")], env=environment(free_port(), repeater_port),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            mixed = Path(tmp) / "mixed.db"
            mixed.write_text(mixed_database(n))
            scans = Path(tmp) / "scan.db"
            scans.write_text(scan_database())
            for kind in ("C", "ours"):
                with server(kind, mixed, environment(free_port(), repeater_port)) as (proc, startup):
                    results[kind]["load"] = startup
                    results[kind]["rss"] = rss_mb(proc.pid)
                    print(f"{kind:>4}: {n:,} records listening after {startup:.2f} s, "
                          f"RSS {results[kind]['rss']:.0f} MB", flush=True)
                with server(kind, scans, environment(free_port(), repeater_port)) as (proc, _):
                    results[kind]["cpu"] = scan_cpu(proc, window)
                    print(f"{kind:>4}: 11,000 scanning records use {results[kind]['cpu']:.1%} of one core",
                          flush=True)
    finally:
        repeater.terminate()
        repeater.wait()
    rows = [(f"load {n:,} records (s)", "load", 5.0, "{:.2f}"),
            (f"RSS {n:,} records (MB)", "rss", 500.0, "{:.0f}"),
            ("scan 10k@1Hz+1k@10Hz (cores)", "cpu", 0.5, "{:.3f}")]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  {'ours':>8}  {'C':>8}  {'ours/C':>7}  {'target':>7}  ok")
    for label, key, target, fmt in rows:
        ours, c = results["ours"][key], results["C"][key]
        ratio = ours / c if c else float("nan")
        print(f"{label:<{width}}  {fmt.format(ours):>8}  {fmt.format(c):>8}  {ratio:>7.2f}  "
              f"{'< ' + format(target, 'g'):>7}  {'yes' if ours < target else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
