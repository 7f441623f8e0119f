"""Random caput/caget sequences against the C softIoc and our IOC: an explorer, not a test.

    python tests/tools/tool_fuzz.py [--seeds 1-5] [--steps 300] [--monitor]

Both servers load the database of tests/test_tools_sweep_differential.py. Each step is a caput (random
options, field and value, arrays included) or a caget (random output format or DBR type of one to three
PVs); with ``--monitor`` the steps are rounds of puts watched by camonitor with every event mask. Every
output that differs from softIoc's is printed; a seed is reproducible. What it finds becomes a
differential test (tests/test_put_edge_cases_differential.py holds the first findings).
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import test_tools_sweep_differential as sweep  # noqa: E402
from differential import Pair, diagnostics, mask, serve_both  # noqa: E402
from peers import ca_environment, free_port, repeater  # noqa: E402
from record_differential import differences, event_differences, watched  # noqa: E402

VALUES = ["0", "1", "-1", "2", "3", "7", "15", "16", "42", "-7.25", "1e3", "1.5e-3", "99999", "2147483648",
          "-2147483649", "4294967296", "1e40", "-1e40", "nan", "NaN", "inf", "-inf", "0x10", "0x7fffffff",
          "010", " 5", "5 ", "+3", "", "abc", "On", "Off", "one", "Run", "Pause", "zero", "Closed", "Open",
          "1.23456789012345", "65535", "65536", "-32769", "255", "256", "-129", "3.5", "12abc", "1,2",
          "x" * 39, "y" * 41, "hello world", "0.1", "-0", "1e-320", "1.7976931348623157e308", "7e400",
          "S:ai", "S:ao PP", "S:li.VAL CP MS", "S:nowhere"]
FIELDS = ["VAL", "EGU", "PREC", "DESC", "HOPR", "LOPR", "HIHI", "HHSV", "DRVH", "DRVL", "ZNAM", "ONAM",
          "ZRST", "ONST", "TWSV", "UNSV", "SCAN", "PROC", "DISA", "DISV", "DISP", "ACKT", "ACKS", "SEVR",
          "STAT", "NORD", "MDEL", "ADEL", "HYST", "LOW", "LOLO", "HIGH", "LSV", "CALC", "A", "OVAL",
          "INPA", "FLNK", "OUT", "DOL", "OMSL", "TSE", "UDF", "UDFS", "SIMM", "LEN", "SIZV", "PINI", "PHAS"]
MONITORED_FIELDS = ["VAL", "SEVR", "STAT", "ACKS", "EGU", "HIHI", "DESC", "OVAL", "NORD", "UDF", "A", "LALM",
                    "MLST", "DISA"]
GET_OPTIONS = [[], ["-a"], ["-t"], ["-n"], ["-d", "DBR_CTRL_DOUBLE"], ["-d", "DBR_GR_STRING"],
               ["-d", "DBR_TIME_LONG"], ["-d", "DBR_STS_CHAR"], ["-d", "DBR_CTRL_SHORT"],
               ["-d", "DBR_CTRL_FLOAT"], ["-d", "DBR_STSACK_STRING"], ["-e", "3"], ["-f", "2"], ["-g", "4"],
               ["-lx"], ["-0x"], ["-0b"], ["-s"], ["-c"], ["-#", "3"], ["-F", "|"], ["-S"],
               ["-d", "DBR_CLASS_NAME"], ["-d", "DBR_TIME_ENUM"], ["-d", "DBR_GR_CHAR"],
               ["-a", "-#", "0"], ["-t", "-S"]]
PUT_OPTIONS = [[], ["-c"], ["-n"], ["-s"], ["-t"], ["-l"], ["-S"], ["-c", "-S"]]
END_MARKER = ('record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") '
              'field(PINI, "YES") }\n')


class Fuzzer:
    def __init__(self, pair: Pair, seed: int) -> None:
        self.pair = pair
        self.rng = random.Random(seed)

    def pv(self, fields: list[str] = FIELDS) -> str:
        record = self.rng.choice(sweep.RECORDS)
        name = self.rng.choice(fields + sweep.SPECIFIC_FIELDS.get(record, []))
        if not sweep.has_field(record, name):
            name = "VAL"
        return record if name == "VAL" and self.rng.random() < 0.5 else f"{record}.{name}"

    def put_command(self) -> list[str]:
        target = self.pv()
        options = self.rng.choice(PUT_OPTIONS)
        if self.rng.random() < 0.15 and target.startswith("S:w"):
            count = self.rng.randint(0, 5)
            return ["caput", "-w", "2", *options, "-a", target, str(count),
                    *(self.rng.choice(VALUES[:25]) for _ in range(count))]
        return ["caput", "-w", "2", *options, target, self.rng.choice(VALUES)]

    def get_command(self) -> list[str]:
        pvs = [self.pv() for _ in range(self.rng.randint(1, 3))]
        return ["caget", "-w", "2", *self.rng.choice(GET_OPTIONS), *pvs]

    def info_command(self) -> list[str]:
        return ["cainfo", "-w", "2", *(self.pv() for _ in range(self.rng.randint(1, 3)))]

    def step(self) -> list[str]:
        draw = self.rng.random()
        command = (self.put_command() if draw < 0.5 else self.get_command() if draw < 0.95
                   else self.info_command())
        ref, ours = self.pair.run(*command, timeout=30)
        lossy = "errlog: lost" in ref.stderr or "errlog: lost" in ours.stderr
        same = (mask(ref.stdout) == mask(ours.stdout) and ref.returncode == ours.returncode
                and diagnostics(ref.stderr, lossy) == diagnostics(ours.stderr, lossy))
        if same:
            return []
        return [f"{' '.join(map(repr, command))}\n"
                f"  C   : {mask(ref.stdout).strip()!r} {ref.stderr[-300:]!r}\n"
                f"  ours: {mask(ours.stdout).strip()!r} {ours.stderr[-300:]!r}"]

    def monitored_round(self, puts: int = 15) -> list[str]:
        monitored = sorted({self.pv(MONITORED_FIELDS) for _ in range(self.rng.randint(2, 6))})
        commands = [self.put_command() for _ in range(puts)]
        with watched(self.pair, [*monitored, "P:end"]) as monitors:
            failures = differences(self.pair, commands)
            self.pair.assert_same("caput", "-w", "5", "P:end", "1")
            self.pair.assert_same("caput", "-w", "5", "P:end.EGU", "done")
            failures += event_differences(monitors)
        self.pair.assert_same("caput", "-w", "5", "P:end", "0")
        self.pair.assert_same("caput", "-w", "5", "P:end.EGU", "")
        return [f"monitored {monitored}\n{failure}" for failure in failures]


def seed_range(text: str) -> range:
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_range, default=seed_range("1-3"))
    parser.add_argument("--steps", type=int, default=300, help="steps (rounds with --monitor) per seed")
    parser.add_argument("--monitor", action="store_true", help="puts under camonitor, compared by event")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        with repeater(port, ca_environment(free_port(), port)):
            for seed in args.seeds:
                with serve_both(sweep.DB + END_MARKER, Path(tmp), port) as pair:
                    fuzzer = Fuzzer(pair, seed)
                    found = 0
                    for _ in range(args.steps):
                        for difference in (fuzzer.monitored_round() if args.monitor else fuzzer.step()):
                            found += 1
                            print(f"=== seed {seed}: {difference}", flush=True)
                print(f"seed {seed}: {found} differences in {args.steps} steps", flush=True)


if __name__ == "__main__":
    main()
