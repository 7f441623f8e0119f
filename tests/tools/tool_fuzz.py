"""Random caput/caget sequences against the C softIoc and our IOC: an explorer, not a test.

    python tests/tools/tool_fuzz.py [--seeds 1-5] [--steps 300] [--monitor]

Both servers load the database of tests/test_tools_sweep_differential.py, or (``--database linked``)
records that read, write and process each other through links. Each step is a caput (random
options, field and value, arrays included) or a caget (random output format or DBR type of one to three
PVs); with ``--monitor`` the steps are rounds of puts watched by camonitor with every event mask. Every
output that differs from softIoc's is printed; a seed is reproducible. What it finds becomes a
differential test (tests/test_put_edge_cases_differential.py holds the first findings).
"""
from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import test_tools_sweep_differential as sweep  # noqa: E402
from differential import Pair, diagnostics, mask, serve_both  # noqa: E402
from peers import ca_environment, free_port, repeater  # noqa: E402
from record_differential import differences, event_differences, watched  # noqa: E402

from ioc.records import record_type  # noqa: E402

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


# Records that read, write and process each other through PP/NPP links with every alarm mode, and FLNK.
LINKED = r"""
record(ao, "K:a") { field(VAL, "1") field(PREC, "2") field(HIHI, "10") field(HHSV, "MAJOR") field(LOW, "-5")
    field(LSV, "MINOR") field(FLNK, "K:c1") field(DRVH, "100") field(DRVL, "-100") }
record(ao, "K:b") { field(VAL, "2") field(OUT, "K:ai PP MS") field(OMSL, "supervisory") }
record(ai, "K:ai") { field(HIGH, "3") field(HSV, "MINOR") field(PREC, "1") field(FLNK, "K:sel") }
record(calc, "K:c1") { field(INPA, "K:a MS") field(INPB, "K:ai NPP MSS") field(INPC, "K:li PP")
    field(CALC, "A+B*C") field(PREC, "3") field(HIHI, "50") field(HHSV, "MAJOR") }
record(longin, "K:li") { field(VAL, "2") field(INP, "K:b NPP") }
record(calcout, "K:co") { field(INPA, "K:c1 PP MS") field(CALC, "A>5") field(OOPT, "Transition To Non-zero")
    field(OUT, "K:bo PP") field(DOPT, "Use CALC") }
record(bo, "K:bo") { field(ZNAM, "off") field(ONAM, "on") field(OSV, "MINOR") field(FLNK, "K:mbbi") }
record(mbbi, "K:mbbi") { field(INP, "K:bo MS") field(ZRST, "z") field(ONST, "o") field(ONSV, "MAJOR") }
record(sel, "K:sel") { field(INPA, "K:a") field(INPB, "K:ai") field(INPC, "K:c1") field(SELM, "High Signal")
    field(PREC, "1") }
record(seq, "K:seq") { field(DOL1, "K:a") field(LNK1, "K:b PP") field(DOL2, "7") field(LNK2, "K:li.VAL")
    field(SELM, "All") }
record(dfanout, "K:df") { field(OUTA, "K:a PP") field(OUTB, "K:ao2") field(SELM, "All") field(DOL, "K:li")
    field(OMSL, "closed_loop") }
record(ao, "K:ao2") { field(PREC, "1") field(SDIS, "K:bo") field(DISV, "1") field(DISS, "MINOR") }
record(stringin, "K:si") { field(INP, "K:c1 MS") }
record(longout, "K:lo") { field(DOL, "K:ai MS") field(OMSL, "closed_loop") field(OUT, "K:li PP") }
"""
LINKED_FIELDS = ["VAL", "VAL", "VAL", "PROC", "SEVR", "STAT", "HIHI", "HHSV", "PREC", "ACKS", "ACKT", "DISA",
                 "DISV", "OMSL", "LALM", "UDF"]


class Fuzzer:
    def __init__(self, pair: Pair, seed: int, database: str = "sweep") -> None:
        self.pair = pair
        self.rng = random.Random(seed)
        if database == "sweep":
            self.records, self.fields = sweep.RECORDS, FIELDS
            self.specific = sweep.SPECIFIC_FIELDS
        else:
            self.records = re.findall(r'record\(\w+, "([^"]+)"\)', LINKED)
            self.fields, self.specific = LINKED_FIELDS, {}
        self.types = dict(sweep.RECORD_TYPE, **{name: rtype for rtype, name in
                                               re.findall(r'record\((\w+), "([^"]+)"\)', LINKED)})

    def has_field(self, record: str, name: str) -> bool:
        return name in record_type(self.types[record]).by_name

    def pv(self, fields: list[str] | None = None) -> str:
        record = self.rng.choice(self.records)
        name = self.rng.choice((fields or self.fields) + self.specific.get(record, []))
        if not self.has_field(record, name):
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
    parser.add_argument("--database", choices=["sweep", "linked"], default="sweep",
                        help="the sweep test's records, or records linked to each other")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        with repeater(port, ca_environment(free_port(), port)):
            for seed in args.seeds:
                db = sweep.DB if args.database == "sweep" else LINKED
                with serve_both(db + END_MARKER, Path(tmp), port) as pair:
                    fuzzer = Fuzzer(pair, seed, args.database)
                    found = 0
                    for _ in range(args.steps):
                        for difference in (fuzzer.monitored_round() if args.monitor else fuzzer.step()):
                            found += 1
                            print(f"=== seed {seed}: {difference}", flush=True)
                print(f"seed {seed}: {found} differences in {args.steps} steps", flush=True)


if __name__ == "__main__":
    main()
