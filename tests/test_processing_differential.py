"""Record processing end to end: the same .db served by the C softIoc and by our IOC (directly, and after
`python -m ioc convert` to YAML), the same caputs applied to both, and the real caget/camonitor outputs
compared (timestamps masked). The C softIoc is the oracle.
"""
from __future__ import annotations

import contextlib
import difflib
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from differential import Pair, mask
from peers import ca_environment, free_port, our_ioc, soft_ioc, tool, track

DB = r"""
record(ai, "P:ai") {
    field(PREC, "2") field(EGU, "V") field(HOPR, "100") field(LOPR, "-100")
    field(HIHI, "10") field(HIGH, "5") field(LOW, "-5") field(LOLO, "-10")
    field(HHSV, "MAJOR") field(HSV, "MINOR") field(LSV, "MINOR") field(LLSV, "MAJOR")
    field(HYST, "1") field(MDEL, "0.5") field(ADEL, "2")
}
record(ai, "P:always") { field(MDEL, "-1") field(ADEL, "-1") field(PREC, "1") }
record(bi, "P:bi") {
    field(ZNAM, "Off") field(ONAM, "On") field(ZSV, "NO_ALARM") field(OSV, "MAJOR") field(COSV, "MINOR")
}
record(mbbi, "P:mbbi") {
    field(ZRST, "zero") field(ONST, "one") field(TWST, "two") field(THST, "three")
    field(ONSV, "MINOR") field(TWSV, "MAJOR") field(UNSV, "INVALID") field(COSV, "MINOR")
}
record(ao, "P:ao") {
    field(DRVH, "10") field(DRVL, "-10") field(PREC, "1") field(HOPR, "20") field(LOPR, "-20")
    field(FLNK, "P:double")
}
record(calc, "P:double") { field(INPA, "P:ao") field(CALC, "A*2") field(FLNK, "P:plus1") field(PREC, "1") }
record(calc, "P:plus1") { field(INPA, "P:double") field(CALC, "A+1") field(PREC, "1") }
record(calc, "P:cp") { field(INPA, "P:ao CP") field(INPB, "P:ai CP") field(CALC, "A+B+100") field(PREC, "2") }
record(ao, "P:x") { field(PREC, "3") }
record(calc, "P:e1") {
    field(INPA, "P:x CP") field(CALC, "A>2?SQRT(A)+ABS(-A):MIN(A,3)-MAX(1,A)") field(PREC, "4")
}
record(calc, "P:e2") { field(INPA, "P:x CP") field(CALC, "FLOOR(A*1.5)+CEIL(A/3)+NINT(A/4)") }
record(calc, "P:e3") { field(INPA, "P:x CP") field(CALC, "(A&6)|(A>>1)+(1<<3)+(A%4)") }
record(calc, "P:e4") {
    field(INPA, "P:x CP") field(PREC, "6")
    field(CALC, "SIN(A)+COS(A)*TAN(A/8)+ATAN2(A,2)+LN(A+1)+LOG(A+1)+EXP(A/9)")
}
record(calc, "P:e5") {
    field(INPA, "P:x CP") field(CALC, "(A>=1&&A<=5)+(A=3)*10+(A!=3||0)*100+!A+PI*D2R*R2D") field(PREC, "5")
}
record(calc, "P:e6") { field(INPA, "P:x CP") field(CALC, "VAL+A") field(HIGH, "10") field(HSV, "MINOR") }
record(calc, "P:pini") { field(PINI, "YES") field(CALC, "6*7") }
record(ai, "P:pini_ai") { field(PINI, "YES") field(VAL, "3.5") field(PREC, "1") }
record(ai, "P:nopini") { field(VAL, "3.5") field(PREC, "1") }
record(longout, "P:lo_change") { field(OOPT, "On Change") field(OUT, "P:n_change.A PP") }
record(longout, "P:lo_every") { field(OOPT, "Every Time") field(OUT, "P:n_every.A PP") }
record(longout, "P:lo_zero") { field(OOPT, "When Zero") field(OUT, "P:n_zero.A PP") }
record(longout, "P:lo_tonz") { field(OOPT, "Transition To Non-zero") field(OUT, "P:n_tonz.A PP") }
record(calc, "P:n_change") { field(CALC, "VAL+1") }
record(calc, "P:n_every") { field(CALC, "VAL+1") }
record(calc, "P:n_zero") { field(CALC, "VAL+1") }
record(calc, "P:n_tonz") { field(CALC, "VAL+1") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

MONITORED = ["P:ai", "P:always", "P:bi", "P:mbbi", "P:ao", "P:double", "P:plus1", "P:cp", "P:e6"]
READ = [*MONITORED, "P:x", "P:e1", "P:e2", "P:e3", "P:e4", "P:e5", "P:pini", "P:pini_ai", "P:nopini",
        "P:n_change", "P:n_every", "P:n_zero", "P:n_tonz", "P:lo_change", "P:ai.STAT", "P:ai.SEVR",
        "P:bi.SEVR", "P:mbbi.STAT"]
CAGET_TYPES = ["DBR_TIME_DOUBLE", "DBR_CTRL_DOUBLE", "DBR_TIME_STRING"]
# ACKS of a record with two CP links is a race in softIoc. Each CP link is a dbCa channel that connects
# (after iocInit, in dbCaRun) and subscribes on its own, and each link's first monitor update queues one
# scanOnce of the record. If that processing runs before the other link has its first update, dbCaGetLink
# fails: LINK/INVALID, and recGblResetAlarms raises ACKS to INVALID (ACKT=YES keeps it there when the
# next processing clears the alarm). Otherwise both processings read both links and ACKS stays NO_ALARM.
# Everything else in DBR_STSACK_STRING is deterministic; this is the set of ACKS softIoc shows
# (NO_ALARM in about 4 runs of 5).
RACY_ACKS = {"P:cp": {"NO_ALARM", "INVALID"}}
MASKS = ["va", "l", "a", "p"]

# Analog limits crossed upwards and downwards, inside and outside HYST and the deadbands.
AI_PUTS = ["0", "0.3", "0.6", "4.9", "5.5", "4.5", "3.9", "10.2", "9.5", "8.9", "3", "-5.5", "-4.5",
           "-3.9", "-10.5", "-9.6", "-8.9", "-2", "0"]
PUTS = (
    [("P:ai", v) for v in AI_PUTS]
    + [("P:always", v) for v in ("1", "1", "2")]
    + [("P:bi", v) for v in ("1", "1", "0", "0", "On")]
    + [("P:mbbi", v) for v in ("1", "2", "2", "0", "3", "7", "1")]
    + [("P:ao", v) for v in ("3", "20", "-20", "5", "5")]
    + [("P:x", v) for v in ("0", "1", "3", "4.5", "7")]
    + [("P:lo_change", v) for v in ("1", "1", "0", "0", "2")]
    + [("P:lo_every", v) for v in ("1", "1", "0", "0", "2")]
    + [("P:lo_zero", v) for v in ("1", "1", "0", "0", "2")]
    + [("P:lo_tonz", v) for v in ("1", "1", "0", "0", "2")]
    # Property changes: DBE_PROPERTY posts on EGU, PREC, display and alarm limits.
    + [("P:ai.EGU", "mV"), ("P:ai.PREC", "3"), ("P:ai.HOPR", "50"), ("P:ai.HIHI", "-1"),
       ("P:ao.DRVH", "4"), ("P:ao", "9"), ("P:bi.ONAM", "Yes"), ("P:mbbi.ONST", "uno")]
)


DB2 = r"""
record(ai, "Q:src") {
    field(HIGH, "5") field(HSV, "MINOR") field(HIHI, "8") field(HHSV, "MAJOR") field(PREC, "1")
}
record(calc, "Q:ms") { field(INPA, "Q:src CP MS") field(CALC, "A") field(PREC, "1") }
record(calc, "Q:nms") { field(INPA, "Q:src CP NMS") field(CALC, "A") field(PREC, "1") }
record(calc, "Q:c") {
    field(INPA, "Q:src CPP") field(CALC, "A*2") field(MDEL, "1") field(ADEL, "3") field(PREC, "2")
    field(HIHI, "14") field(HHSV, "MAJOR") field(LOLO, "-8") field(LLSV, "MAJOR") field(HYST, "2")
}
record(longin, "Q:li") {
    field(HIHI, "100") field(HHSV, "MAJOR") field(HIGH, "50") field(HSV, "MINOR") field(LOW, "-50")
    field(LSV, "MINOR") field(HYST, "5") field(MDEL, "3") field(ADEL, "10") field(EGU, "cts")
}
record(bo, "Q:bo") {
    field(ZNAM, "Shut") field(ONAM, "Open") field(ZSV, "MINOR") field(OSV, "NO_ALARM") field(COSV, "MAJOR")
}
record(mbbo, "Q:mbbo") {
    field(ZRST, "Idle") field(ONST, "Run") field(TWST, "Fault") field(ONSV, "NO_ALARM") field(TWSV, "MAJOR")
    field(ZRSV, "MINOR") field(UNSV, "INVALID")
}
record(ao, "Q:y") { field(PREC, "3") }
record(calc, "Q:f1") {
    field(INPA, "Q:y CP") field(PREC, "6")
    field(CALC, "ASIN(A/10)+ACOS(A/10)*2+ATAN(A)+ISNAN(A)+(RNDM>=0&&RNDM<1)")
}
record(calc, "Q:f2") {
    field(INPA, "Q:y CP") field(INPB, "Q:li") field(CALC, "(A XOR 5)+(~A AND 255)+(B OR 2)")
}
record(calc, "Q:f3") {
    field(INPA, "Q:y CP") field(CALC, "A^2+A**0.5+(A#3)+(A<3)+(A>3)-(A<=1)") field(PREC, "4")
}
record(calc, "Q:f4") { field(INPA, "Q:y CP") field(INPB, "2") field(INPC, "-1") field(CALC, "A?B:C") }
record(calc, "Q:count") { field(CALC, "VAL+1") }
record(longout, "Q:lo_nz") { field(OOPT, "When Non-zero") field(OUT, "Q:n_nz.A PP") }
record(longout, "Q:lo_toz") { field(OOPT, "Transition To Zero") field(OUT, "Q:n_toz.A PP") }
record(calc, "Q:n_nz") { field(CALC, "VAL+1") }
record(calc, "Q:n_toz") { field(CALC, "VAL+1") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""
MONITORED2 = ["Q:src", "Q:ms", "Q:nms", "Q:c", "Q:li", "Q:bo", "Q:mbbo", "Q:f4"]
READ2 = [*MONITORED2, "Q:y", "Q:f1", "Q:f2", "Q:f3", "Q:count", "Q:n_nz", "Q:n_toz", "Q:c.STAT", "Q:ms.SEVR",
         "Q:nms.SEVR", "Q:li.NSEV", "Q:c.LALM", "Q:c.MLST", "Q:c.ALST"]
PUTS2 = (
    [("Q:src", v) for v in ("1", "1.2", "1.6", "5.5", "6.5", "7.9", "8.1", "6.6", "5.9", "4", "-3", "-4.2",
                            "-5")]
    + [("Q:li", v) for v in ("0", "2", "4", "51", "47", "44", "101", "96", "94", "-51", "-46", "-44", "0")]
    + [("Q:bo", v) for v in ("1", "1", "0", "Open", "Shut")]
    + [("Q:mbbo", v) for v in ("1", "2", "Run", "0", "5", "Idle")]
    + [("Q:y", v) for v in ("0", "1", "3", "-2.5", "10")]
    + [("Q:count.PROC", "1"), ("Q:count.PROC", "1"), ("Q:count.PROC", "0")]
    + [("Q:lo_nz", v) for v in ("1", "1", "0", "0", "2")]
    + [("Q:lo_toz", v) for v in ("1", "1", "0", "0", "2")]
    + [("Q:c.HIHI", "3"), ("Q:c.EGU", "A"), ("Q:c.PREC", "4"), ("Q:li.HOPR", "500"), ("Q:li.LOPR", "-500"),
       ("Q:mbbo.TWST", "Broken"), ("Q:bo.ZNAM", "Closed"), ("Q:src.LOW", "-4"), ("Q:src", "-4.5")]
)
DB3 = r"""
record(ai, "R:ai") {
    field(HIGH, "5") field(HSV, "MINOR") field(LOW, "-5") field(LSV, "MAJOR") field(MDEL, "1")
    field(ADEL, "1") field(PREC, "2")
}
record(ao, "R:ao") { field(HIHI, "5") field(HHSV, "MAJOR") field(DRVH, "8") field(PREC, "1") }
record(calc, "R:div") { field(INPA, "R:ai CP") field(CALC, "1/A") field(HIHI, "2") field(HHSV, "MINOR") }
record(calc, "R:ln") { field(INPA, "R:ai CP") field(CALC, "LN(A)+SQRT(A)") }
record(mbbi, "R:num") { field(ONSV, "MINOR") field(UNSV, "MAJOR") }
record(stringout, "R:so") { field(VAL, "abc") }
record(waveform, "R:wf") { field(FTVL, "DOUBLE") field(NELM, "4") }
record(ao, "R:dis") { field(DISV, "1") field(SDIS, "R:ctl") field(DISS, "MINOR") field(PREC, "1") }
record(ao, "R:ctl") { }
record(longout, "R:lo") {
    field(HIHI, "10") field(HHSV, "MAJOR") field(DRVH, "20") field(DRVL, "-20") field(MDEL, "2")
}
record(bo, "R:bo") { field(ZNAM, "A") field(ONAM, "B") field(OSV, "MINOR") field(FLNK, "R:after") }
record(calc, "R:after") { field(INPA, "R:bo") field(CALC, "A+10") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""
MONITORED3 = ["R:ai", "R:ao", "R:div", "R:ln", "R:num", "R:so", "R:wf", "R:dis", "R:lo", "R:bo", "R:after"]
# Not R:so: text read as a double is ECA_GETFAIL, and caget then waits out its whole timeout.
READ3 = [*(pv for pv in MONITORED3 if pv != "R:so"), "R:ai.UDF", "R:ai.STAT", "R:ao.ACKS", "R:ao.ACKT",
         "R:dis.STAT", "R:dis.SEVR", "R:lo.SEVR", "R:num.STAT"]
PUTS3 = (
    [("R:ai", v) for v in ("1", "nan", "nan", "2", "5", "5.2", "inf", "-inf", "0", "-5", "1e300")]
    + [("R:ao", v) for v in ("6", "4", "9")]
    + [("R:ao.ACKT", "NO"), ("R:ao", "6"), ("R:ao", "1"), ("R:ao.ACKS", "MAJOR"), ("R:ao", "7"),
       ("R:ao.ACKT", "YES")]
    + [("R:num", v) for v in ("1", "3", "0", "15", "16")]
    + [("R:so", v) for v in ("abc", "xyz", "xyz")]
    + [("R:ctl", "1"), ("R:dis", "3"), ("R:dis", "4"), ("R:ctl", "0"), ("R:dis", "5")]
    + [("R:lo", v) for v in ("1", "2", "3", "11", "30", "-30", "9")]
    + [("R:bo", v) for v in ("1", "0", "1")]
)
SCENARIOS = {"main": (DB, MONITORED, READ, PUTS), "more": (DB2, MONITORED2, READ2, PUTS2),
             "edges": (DB3, MONITORED3, READ3, PUTS3)}


def convert(db: Path) -> Path:
    yaml_path = db.with_suffix(".yaml")
    result = subprocess.run([sys.executable, "-m", "ioc", "convert", str(db)], capture_output=True,
                            text=True, timeout=30, check=True)
    yaml_path.write_text(result.stdout)
    return yaml_path


@contextlib.contextmanager
def serve(db_text: str, form: str, tmp_path: Path, repeater_port: int) -> Iterator[Pair]:
    ref_env = ca_environment(free_port(), repeater_port)
    our_env = ca_environment(free_port(), repeater_port)
    db = tmp_path / "ours.db"
    db.write_text(db_text)
    config = convert(db) if form == "yaml" else db
    with soft_ioc(db_text, ref_env, tmp_path), our_ioc(config, our_env) as proc:
        pair = Pair(ref_env, our_env)
        pair.our_process = proc
        yield pair


class Monitor:
    """A camonitor whose output lines are collected by a thread, so reads can time out."""

    def __init__(self, env: dict[str, str], event_mask: str, pvs: list[str]) -> None:
        self.proc = track(subprocess.Popen([tool("camonitor"), "-w", "5", "-m", event_mask, *pvs], env=env,
                                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True))
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def read_until(self, done, what: str) -> None:
        while True:
            try:
                line = self.lines.get(timeout=60)
            except queue.Empty:
                raise AssertionError(f"camonitor never printed {what}; got {self.seen}") from None
            self.seen.append(mask(line))
            if done(line):
                return

    def stop(self) -> list[str]:
        self.proc.terminate()
        self.proc.wait(timeout=5)
        return self.seen


def start_monitors(env: dict[str, str], pvs: list[str]) -> list[Monitor]:
    monitors = [Monitor(env, m, pvs) for m in MASKS]
    for monitor in monitors:
        # Each PV's initial update, so no put can happen before the subscription exists.
        pending = set(pvs)

        def initial(line: str, pending=pending) -> bool:
            pending.discard(line.split(" ", 1)[0])
            return not pending
        monitor.read_until(initial, "the initial updates")
    return monitors


def finish_monitors(monitors: list[Monitor]) -> list[list[str]]:
    # P:end goes 0 -> 1 (value and HIGH alarm) then its EGU changes (property): whatever the mask, its
    # first event after the initial one is the last thing this client receives from the sequence.
    for monitor in monitors:
        monitor.read_until(lambda line: line.startswith("P:end "), "the end marker")
    return [monitor.stop() for monitor in monitors]


def assert_same_alarm_acknowledgement(pair: Pair, pvs: list[str]) -> None:
    """caget -d DBR_STSACK_STRING prints the same from both, except where softIoc's ACKS is a race
    (RACY_ACKS): there both must print one of the severities softIoc can show."""
    args = ["caget", "-w", "5", "-d", "DBR_STSACK_STRING"]
    pair.assert_same(*args, *(pv for pv in pvs if pv not in RACY_ACKS))
    for pv in (pv for pv in pvs if pv in RACY_ACKS):
        ref, ours = pair.run(*args, pv)
        assert ours.returncode == ref.returncode == 0, (ref.stderr, ours.stderr)
        rest = {}
        for side, output in (("C softIoc", ref.stdout), ("ours", ours.stdout)):
            fields = [line.strip().partition(":") for line in mask(output).splitlines()]
            acks = [value.strip() for key, _, value in fields if key == "Ack severity"]
            assert len(acks) == 1 and acks[0] in RACY_ACKS[pv], f"{pv}: {side} printed\n{output}"
            rest[side] = [field for field in fields if field[0] != "Ack severity"]
        assert rest["ours"] == rest["C softIoc"], f"{pv}: C printed\n{ref.stdout}\nwe printed\n{ours.stdout}"


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("form", ["db", "yaml"])
def test_processing_sequence_matches_softioc(scenario, form, tmp_path, repeater_port):
    db_text, monitored, read, puts = SCENARIOS[scenario]
    with serve(db_text, form, tmp_path, repeater_port) as pair:
        pvs = [*monitored, "P:end"]
        for dbr in CAGET_TYPES:
            pair.assert_same("caget", "-w", "5", "-d", dbr, *read)
        assert_same_alarm_acknowledgement(pair, read)
        monitors = {"C": start_monitors(pair.reference, pvs), "ours": start_monitors(pair.ours, pvs)}
        failures = []
        for pv, value in puts:
            try:
                pair.assert_same("caput", "-w", "5", pv, value)
            except AssertionError as error:
                failures.append(str(error))
        pair.assert_same("caput", "-w", "5", "P:end", "1")
        pair.assert_same("caput", "-w", "5", "P:end.EGU", "done")
        events = {side: finish_monitors(m) for side, m in monitors.items()}
        for event_mask, ref, ours in zip(MASKS, events["C"], events["ours"], strict=True):
            if ref != ours:
                diff = "\n".join(difflib.unified_diff(ref, ours, "C softIoc", "ours", lineterm="", n=1))
                failures.append(f"camonitor -m {event_mask} events differ:\n{diff}")
        for dbr in CAGET_TYPES:
            try:
                pair.assert_same("caget", "-w", "5", "-d", dbr, *read)
            except AssertionError as error:
                failures.append(str(error))
        try:
            assert_same_alarm_acknowledgement(pair, read)
        except AssertionError as error:
            failures.append(str(error))
        assert not failures, "\n\n".join(failures)


SCAN_DB = r"""
record(calc, "S:fast") { field(SCAN, ".1 second") field(CALC, "VAL+1") }
record(calc, "S:slow") { field(SCAN, "1 second") field(CALC, "VAL+1") }
record(calc, "S:loop1") { field(CALC, "VAL+1") field(FLNK, "S:loop2") }
record(calc, "S:loop2") { field(INPA, "S:loop1") field(CALC, "A+VAL") field(FLNK, "S:loop1") }
"""


def count_events(monitors: list[Monitor], seconds: float) -> list[dict[str, int]]:
    """Events per PV that each monitor receives in the same ``seconds`` window (a rate measurement, so
    wall time it is)."""
    for monitor in monitors:
        monitor.read_until(lambda line: line.startswith("S:slow "), "the initial updates")
    for monitor in monitors:
        while not monitor.lines.empty():
            monitor.lines.get()
    time.sleep(seconds)
    counts: list[dict[str, int]] = []
    for monitor in monitors:
        monitor.stop()
        per_pv: dict[str, int] = {}
        while not monitor.lines.empty():
            name = monitor.lines.get().split(" ", 1)[0]
            per_pv[name] = per_pv.get(name, 0) + 1
        counts.append(per_pv)
    return counts


def test_periodic_scan_rates_and_flnk_cycle_match_softioc(tmp_path, repeater_port):
    with serve(SCAN_DB, "db", tmp_path, repeater_port) as pair:
        monitors = [Monitor(env, "va", ["S:fast", "S:slow"]) for env in (pair.reference, pair.ours)]
        ref, ours = count_events(monitors, 3.0)
        # softIoc posts ~30 ".1 second" and ~3 "1 second" updates in 3 s: the oracle, with a tolerance.
        assert abs(ours.get("S:fast", 0) - ref.get("S:fast", 0)) <= 3, (ref, ours)
        assert abs(ours.get("S:slow", 0) - ref.get("S:slow", 0)) <= 1, (ref, ours)
        # A SCAN put re-schedules the record: once Passive, its value stays put.
        pair.assert_same("caput", "-w", "5", "S:fast.SCAN", "Passive")
        pair.assert_same("caput", "-t", "-w", "5", "S:fast", "0")  # -t: no "Old" line
        time.sleep(0.3)  # three ".1 second" periods: long enough for a still-scanning record to count on
        pair.assert_same("caget", "-w", "5", "-d", "DBR_STS_DOUBLE", "S:fast")
        # A FLNK cycle processes each record once per put (PACT stops the loop) and the IOC keeps serving.
        for _ in range(3):
            pair.assert_same("caput", "-w", "5", "S:loop1.PROC", "1")
        pair.assert_same("caget", "-w", "5", "-d", "DBR_STS_DOUBLE", "S:loop1", "S:loop2")


# PINI runs in iocBuild, before iocRun's dbCaRun lets the dbCa task connect any CA/CP/CPP link: a PINI
# processing that reads such a link finds it disconnected (dbCaGetLink: LINK/INVALID, no value) and one
# that writes one writes nothing. ACKS keeps that INVALID after the CP links' first updates clear it.
PINI_DB = r"""
record(ao, "I:src") { field(VAL, "5") field(PINI, "YES") }
record(ao, "I:src2") { field(VAL, "2") }
record(ai, "I:ca") { field(INP, "I:src CA") field(PINI, "YES") }
record(ao, "I:out") { field(VAL, "7") field(OUT, "I:tgt CA") field(PINI, "YES") }
record(ao, "I:tgt") { }
record(calc, "I:cp") {
    field(INPA, "I:src CP") field(INPB, "I:src2 CP") field(CALC, "A+B") field(PINI, "YES")
}
"""


def wait_for_cp_links(pair: Pair) -> None:
    """Poll (no event crosses the process boundary) until both IOCs processed I:cp from its CP links."""
    deadline = time.monotonic() + 10
    for env in (pair.reference, pair.ours):
        while run_caget(env, "I:cp.STAT") != "NO_ALARM":
            assert time.monotonic() < deadline, "I:cp never processed from its CP links"
            time.sleep(0.05)


def run_caget(env: dict[str, str], pv: str) -> str:
    result = subprocess.run([tool("caget"), "-w", "5", "-t", pv], env=env, capture_output=True, text=True,
                            timeout=20)
    return result.stdout.strip()


def test_pini_finds_ca_links_disconnected_like_softioc(tmp_path, repeater_port):
    with serve(PINI_DB, "db", tmp_path, repeater_port) as pair:
        wait_for_cp_links(pair)
        pair.assert_same("caget", "-w", "5", "-d", "DBR_STSACK_STRING", "I:ca", "I:out", "I:tgt", "I:cp")
