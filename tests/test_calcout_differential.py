"""The calcout record against the C softIoc: OOPT and DOPT choices, ODLY's delayed output, IVOA, output to
another record's field, alarms and deadbands, metadata and the link status fields. The same puts go to
both IOCs and caget/camonitor print the same."""
from __future__ import annotations

import difflib
import subprocess
import time

import pytest
import trio
import trio.testing
from dboracle import load_db
from differential import Pair, serve_both
from peers import tool
from test_processing_differential import MASKS, finish_monitors, start_monitors
from test_records_fields import served_fields

from caproto.dbr import ChannelType, encode_payload
from ioc.config import ConfigError
from ioc.records import record_type
from ioc.records.fields import DBF

DB = r"""
record(ao, "C:src") { field(PREC, "2") field(EGU, "mm") field(HOPR, "50") field(LOPR, "-50")
                      field(HIHI, "40") field(HHSV, "MAJOR") }
record(ao, "C:bad") { field(HIHI, "5") field(HHSV, "INVALID") }
record(calc, "C:count") { field(CALC, "VAL+1") }
record(ao, "C:tgt") { field(PREC, "2") }
record(calcout, "C:every") { field(INPA, "C:src") field(CALC, "A") field(OUT, "C:n_every.A PP") }
record(calcout, "C:change") {
    field(INPA, "C:src") field(CALC, "A") field(OOPT, "On Change") field(MDEL, "1")
    field(OUT, "C:n_change.A PP")
}
record(calcout, "C:zero") { field(INPA, "C:src") field(CALC, "A") field(OOPT, "When Zero")
                            field(OUT, "C:n_zero.A PP") }
record(calcout, "C:nonzero") { field(INPA, "C:src") field(CALC, "A") field(OOPT, "When Non-zero")
                               field(OUT, "C:n_nonzero.A PP") }
record(calcout, "C:tozero") { field(INPA, "C:src") field(CALC, "A") field(OOPT, "Transition To Zero")
                              field(OUT, "C:n_tozero.A PP") }
record(calcout, "C:tononzero") { field(INPA, "C:src") field(CALC, "A")
                                 field(OOPT, "Transition To Non-zero") field(OUT, "C:n_tononzero.A PP") }
record(calc, "C:n_every") { field(CALC, "VAL+1") }
record(calc, "C:n_change") { field(CALC, "VAL+1") }
record(calc, "C:n_zero") { field(CALC, "VAL+1") }
record(calc, "C:n_nonzero") { field(CALC, "VAL+1") }
record(calc, "C:n_tozero") { field(CALC, "VAL+1") }
record(calc, "C:n_tononzero") { field(CALC, "VAL+1") }
record(calcout, "C:ocal") {
    field(INPA, "C:src CP") field(INPB, "3") field(CALC, "A*B") field(DOPT, "Use OCAL")
    field(OCAL, "A+100+VAL") field(OUT, "C:tgt PP") field(PREC, "1") field(EGU, "V")
    field(HOPR, "200") field(LOPR, "-200") field(FLNK, "C:count")
}
record(calcout, "C:field") { field(CALC, "A:=A+1;A*10") field(OUT, "C:tgt.HIGH") }
record(calcout, "C:alarm") {
    field(INPA, "C:src CP") field(CALC, "A") field(PREC, "2")
    field(HIHI, "10") field(HIGH, "5") field(LOW, "-5") field(LOLO, "-10") field(HHSV, "MAJOR")
    field(HSV, "MINOR") field(LSV, "MINOR") field(LLSV, "MAJOR") field(HYST, "1") field(MDEL, "0.5")
    field(ADEL, "2")
}
record(calcout, "C:ivov") {
    field(INPA, "C:bad MS") field(CALC, "A") field(IVOA, "Set output to IVOV") field(IVOV, "42")
    field(OUT, "C:iv_set PP")
}
record(calcout, "C:ivdont") {
    field(INPA, "C:bad MS") field(CALC, "A") field(IVOA, "Don't drive outputs") field(OUT, "C:iv_dont PP")
}
record(ao, "C:iv_set") { }
record(ao, "C:iv_dont") { }
record(calcout, "C:delay") { field(INPA, "C:src") field(CALC, "A+1") field(ODLY, "0.3")
                             field(OUT, "C:dtgt PP") field(FLNK, "C:dcount") }
record(calcout, "C:slow") { field(CALC, "VAL+1") field(ODLY, "1.5") field(OUT, "C:stgt PP") }
record(ao, "C:dtgt") { }
record(ao, "C:stgt") { }
record(calc, "C:dcount") { field(CALC, "VAL+1") }
record(calcout, "C:links") { field(INPA, "C:src CA") field(INPB, "C:src") field(INPC, "1.5")
                             field(OUT, "C:spare CA") field(CALC, "A+B+C") }
record(ao, "C:spare") { }
record(calcout, "C:evt") { field(CALC, "VAL+1") field(OOPT, "When Non-zero") field(OEVT, "7")
                          field(OUT, "C:evtgt PP") }
record(calcout, "C:evname") { field(CALC, "A") field(OEVT, "go") field(IVOA, "Don't drive outputs") }
record(ao, "C:evtgt") { }
record(calc, "C:on7") { field(SCAN, "Event") field(EVNT, "7") field(CALC, "VAL+1") }
record(calc, "C:ongo") { field(SCAN, "Event") field(EVNT, "go") field(CALC, "VAL+1") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

OOPT_RECORDS = ["C:every", "C:change", "C:zero", "C:nonzero", "C:tozero", "C:tononzero"]
COUNTERS = [name.replace("C:", "C:n_") for name in OOPT_RECORDS]
MONITORED = ["C:alarm", "C:ocal", "C:tgt", "C:delay"]
READ = [*OOPT_RECORDS, *COUNTERS, "C:ocal", "C:ocal.OVAL", "C:tgt", "C:count", "C:field", "C:field.A",
        "C:tgt.HIGH", "C:alarm", "C:alarm.LALM", "C:alarm.MLST", "C:alarm.ALST", "C:ivov", "C:ivov.OVAL",
        "C:iv_set", "C:ivdont", "C:ivdont.OVAL", "C:iv_dont", "C:delay", "C:delay.OVAL", "C:dtgt",
        "C:dcount", "C:links", "C:ocal.PVAL", "C:change.PVAL", "C:evt", "C:evtgt", "C:on7", "C:ongo",
        "C:evname"]
META = ["C:ocal", "C:ocal.A", "C:ocal.LA", "C:ocal.B", "C:ocal.ODLY", "C:ocal.OVAL", "C:ocal.HIHI",
        "C:ocal.IVOV", "C:links.A", "C:alarm"]
ENUMS = ["C:links.INAV", "C:links.INBV", "C:links.INCV", "C:links.INDV", "C:links.OUTV", "C:ocal.OOPT",
         "C:ocal.DOPT", "C:ocal.INAV", "C:ocal.OUTV", "C:every.OUTV", "C:field.OUTV", "C:ocal.CLCV",
         "C:ocal.OCLV", "C:delay.DLYA"]
SOURCE_VALUES = ["0", "0", "1", "1.5", "3", "0", "0", "-2", "0", "6", "5.5", "4.2", "3.9", "11", "9.5",
                 "8.9", "-6", "-11", "-9.2", "-8.9", "45", "0"]
PUTS = (
    [("C:src", value) for step in SOURCE_VALUES for value in (step,)]
    + [(f"{name}.PROC", "1") for name in OOPT_RECORDS]
    + [("C:field.PROC", "1"), ("C:field.PROC", "1")]
    + [("C:bad", "1"), ("C:ivov.PROC", "1"), ("C:ivdont.PROC", "1"), ("C:bad", "7"), ("C:ivov.PROC", "1"),
       ("C:ivdont.PROC", "1")]
    + [("C:ocal.OCAL", "A-B"), ("C:src", "2"), ("C:ocal.DOPT", "Use CALC"), ("C:src", "4"),
       ("C:ocal.OOPT", "When Zero"), ("C:src", "6"), ("C:ocal.CALC", "A*"), ("C:ocal.PROC", "1"),
       ("C:ocal.CALC", "A/2"), ("C:ocal.PROC", "1"), ("C:ocal.EGU", "kV"), ("C:ocal.HIHI", "1")]
    + [("C:links.INPD", "C:src"), ("C:links.INPB", "7"), ("C:links.PROC", "1")]
    # OEVT: posted after each output; not when IVOA keeps the output from being driven
    + [("C:evt.PROC", "1"), ("C:evt.PROC", "1"), ("C:evname.PROC", "1"), ("C:evname.INPA", "C:bad MS"),
       ("C:evname.PROC", "1"), ("C:evt.OEVT", "go"), ("C:evt.PROC", "1")]
)


def run_all(pair: Pair, puts: list[tuple[str, str]], failures: list[str]) -> None:
    for pv, value in puts:
        try:
            pair.assert_same("caput", "-w", "5", pv, value)
        except AssertionError as error:
            failures.append(str(error))


def compare_reads(pair: Pair, failures: list[str]) -> None:
    checks = [("DBR_TIME_DOUBLE", READ), ("DBR_CTRL_DOUBLE", META), ("DBR_TIME_STRING", ENUMS),
              ("DBR_CTRL_STRING", ["C:ocal.CALC", "C:ocal.OCAL", "C:field.OUT"])]
    for dbr, pvs in checks:
        try:
            pair.assert_same("caget", "-w", "5", "-d", dbr, *pvs)
        except AssertionError as error:
            failures.append(str(error))


def test_calcout_processing_matches_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        failures: list[str] = []
        compare_reads(pair, failures)
        pvs = [*MONITORED, "P:end"]
        monitors = {"C": start_monitors(pair.reference, pvs), "ours": start_monitors(pair.ours, pvs)}
        run_all(pair, PUTS, failures)
        # caput -c completes when the delayed output has been written (the record stays active till then)
        for value in ("1", "2"):
            try:
                pair.assert_same("caput", "-c", "-w", "5", "C:src", value)
                pair.assert_same("caput", "-c", "-w", "5", "C:delay.PROC", "1")
            except AssertionError as error:
                failures.append(str(error))
        pair.assert_same("caput", "-w", "5", "P:end", "1")
        pair.assert_same("caput", "-w", "5", "P:end.EGU", "done")
        events = {side: finish_monitors(m) for side, m in monitors.items()}
        for event_mask, ref, ours in zip(MASKS, events["C"], events["ours"], strict=True):
            if ref != ours:
                diff = "\n".join(difflib.unified_diff(ref, ours, "C softIoc", "ours", lineterm="", n=1))
                failures.append(f"camonitor -m {event_mask} events differ:\n{diff}")
        compare_reads(pair, failures)
        assert not failures, "\n\n".join(failures)


def assert_same_field_tables(pair: Pair, records: dict[str, str]) -> None:
    """Every field a client can reach of each record (name -> type) has softIoc's type, count, access,
    value and metadata."""
    pvs = [f"{name}.{field}" for name, rtype in records.items() for field in served_fields(rtype)]
    pair.assert_same("cainfo", "-w", "5", *pvs)
    pair.assert_same("caget", "-w", "5", "-d", "DBR_CTRL_STRING", *pvs)
    # text fields: read as numbers, most would fail (and libca's error log may drop some of the messages)
    numeric = [f"{name}.{fld.name}" for name, rtype in records.items() for fld in record_type(rtype).fields
               if fld.dbf not in (DBF.STRING, DBF.NOACCESS)]
    pair.assert_same("caget", "-w", "5", "-d", "DBR_CTRL_DOUBLE", *numeric)


def test_calcout_field_table_and_metadata_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_same_field_tables(pair, {"C:ocal": "calcout", "C:links": "calcout"})


def caget_value(env: dict[str, str], pv: str) -> str:
    result = subprocess.run([tool("caget"), "-w", "5", "-t", pv], env=env, capture_output=True, text=True,
                            timeout=20)
    return result.stdout.strip()


def test_calcout_stays_active_while_its_output_is_delayed(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        # ODLY is 1.5 s: both IOCs are read well inside the delay
        pair.assert_same("caput", "-w", "5", "C:slow.PROC", "1")
        pair.assert_same("caget", "-w", "5", "C:slow.DLYA", "C:slow.PACT", "C:stgt", "C:slow.OVAL")
        deadline = time.monotonic() + 10
        for env in (pair.reference, pair.ours):
            while caget_value(env, "C:slow.DLYA") != "0":
                assert time.monotonic() < deadline, "the delayed output never happened"
                time.sleep(0.1)
        pair.assert_same("caget", "-w", "5", "C:slow.DLYA", "C:slow.PACT", "C:stgt", "C:slow.OVAL",
                         "C:slow")


# --- our side alone: the delay on a virtual clock, and what this IOC refuses -------------------------------

DELAY_DB = r"""
record(calcout, "D:out") { field(CALC, "VAL+1") field(ODLY, "2") field(OUT, "D:tgt PP") }
record(ao, "D:tgt") { }
"""


@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0)


def put(db, pv: str, value, data_type: ChannelType = ChannelType.DOUBLE):
    values = value if isinstance(value, list) else [value]
    return db.lookup(pv).write(data_type, len(values), encode_payload(data_type, values))


async def test_odly_writes_the_output_after_the_delay_and_completes_the_put_then(tmp_path, clock):
    db = load_db(DELAY_DB, tmp_path)
    out, tgt = db.records["D:out"], db.records["D:tgt"]
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        completion = put(db, "D:out.PROC", 1, ChannelType.CHAR)
        assert completion is not None            # the put-callback waits for the delayed output
        assert (out.VAL, out.DLYA, out.PACT, tgt.VAL) == (1.0, 1, 1, 0.0)
        await trio.sleep(1.9)
        assert (out.DLYA, tgt.VAL) == (1, 0.0)
        with trio.fail_after(0.2):
            await completion.wait()
        assert (out.DLYA, out.PACT, out.OVAL, tgt.VAL) == (0, 0, 1.0, 1.0)
        nursery.cancel_scope.cancel()


def test_an_invalid_ocal_is_refused_when_the_db_loads_as_softioc_does(tmp_path):
    with pytest.raises(ConfigError, match="OCAL"):
        load_db('record(calcout, "x") { field(OCAL, "1+") }', tmp_path)

