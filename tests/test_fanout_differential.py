"""The fanout and dfanout records against the C softIoc: SELM All/Specified/Mask with SELN, SELL, OFFS and
SHFT, selections out of range, DOL/OMSL, output to other records' fields, alarms and metadata."""
from __future__ import annotations

import difflib

from differential import Pair, serve_both
from test_calcout_differential import assert_same_field_tables
from test_processing_differential import MASKS, finish_monitors, start_monitors

DB = r"""
record(ao, "F:sel") { field(VAL, "2") }
record(ao, "F:src") { field(VAL, "4.5") field(PREC, "1") }
record(fanout, "F:all") {
    field(LNK0, "F:c0") field(LNK1, "F:c1") field(LNK3, "F:c3") field(LNKF, "F:cf") field(FLNK, "F:after")
}
record(fanout, "F:spec") { field(SELM, "Specified") field(SELN, "1") field(LNK0, "F:c0") field(LNK1, "F:c1")
                           field(LNK2, "F:c2") field(LNK3, "F:c3") field(LNKF, "F:cf") }
record(fanout, "F:offs") { field(SELM, "Specified") field(SELL, "F:sel") field(OFFS, "-1")
                           field(LNK0, "F:c0") field(LNK1, "F:c1") field(LNK2, "F:c2") }
record(fanout, "F:mask") { field(SELM, "Mask") field(SELN, "5") field(LNK0, "F:c0") field(LNK1, "F:c1")
                           field(LNK2, "F:c2") field(LNK3, "F:c3") field(LNKF, "F:cf") }
record(fanout, "F:shift") { field(SELM, "Mask") field(SELN, "12") field(SHFT, "2") field(LNK0, "F:c0")
                            field(LNK1, "F:c1") field(LNK2, "F:c2") field(LNK3, "F:c3") }
record(fanout, "F:lshift") { field(SELM, "Mask") field(SELN, "3") field(SHFT, "-2") field(LNK2, "F:c2")
                             field(LNK3, "F:c3") }
record(fanout, "F:const") { field(SELM, "Specified") field(SELL, "3") field(LNK3, "F:c3") }
record(calc, "F:c0") { field(CALC, "VAL+1") }
record(calc, "F:c1") { field(CALC, "VAL+1") }
record(calc, "F:c2") { field(CALC, "VAL+1") }
record(calc, "F:c3") { field(CALC, "VAL+1") }
record(calc, "F:cf") { field(CALC, "VAL+1") }
record(calc, "F:after") { field(CALC, "VAL+1") }
record(calc, "F:scanned") { field(CALC, "VAL+1") field(SCAN, "Event") field(EVNT, "never") }
record(fanout, "F:toscanned") { field(LNK0, "F:scanned") field(LNK1, "F:c1") }

record(dfanout, "D:all") {
    field(OUTA, "D:t1 PP") field(OUTB, "D:t2 PP") field(OUTC, "D:t3.HIGH") field(OUTH, "D:t4 PP")
    field(PREC, "2") field(EGU, "V") field(HOPR, "10") field(LOPR, "-10") field(HIHI, "8")
    field(HHSV, "MAJOR") field(HIGH, "5") field(HSV, "MINOR") field(HYST, "1")
    field(MDEL, "0.5") field(ADEL, "2")
}
record(dfanout, "D:spec") { field(SELM, "Specified") field(SELN, "2") field(OUTA, "D:t1 PP")
                            field(OUTB, "D:t2 PP") field(OUTC, "D:t3 PP") }
record(dfanout, "D:mask") { field(SELM, "Mask") field(SELL, "F:sel") field(OUTA, "D:t1 PP")
                            field(OUTB, "D:t2 PP") field(OUTC, "D:t3 PP") }
record(dfanout, "D:dol") { field(DOL, "F:src") field(OMSL, "closed_loop") field(OUTA, "D:t4 PP") }
record(dfanout, "D:const") { field(DOL, "2.5") field(OUTA, "D:t4 PP") field(PINI, "YES") }
record(ao, "D:t1") { field(PREC, "2") }
record(ao, "D:t2") { field(PREC, "2") }
record(ao, "D:t3") { field(PREC, "2") }
record(ao, "D:t4") { field(PREC, "2") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

COUNTERS = ["F:c0", "F:c1", "F:c2", "F:c3", "F:cf", "F:after", "F:scanned"]
FANOUTS = ["F:all", "F:spec", "F:offs", "F:mask", "F:shift", "F:lshift", "F:const", "F:toscanned"]
TARGETS = ["D:t1", "D:t2", "D:t3", "D:t4", "D:t3.HIGH"]
DFANOUTS = ["D:all", "D:spec", "D:mask", "D:dol", "D:const"]
READ = [*COUNTERS, *FANOUTS, *(f"{name}.SELN" for name in FANOUTS), *TARGETS, *DFANOUTS,
        *(f"{name}.SELN" for name in DFANOUTS), "D:all.LALM", "D:all.MLST", "D:all.ALST"]
META = ["F:all", "F:all.SELN", "F:all.OFFS", "D:all", "D:all.HIHI", "D:all.LALM", "D:all.HYST",
        "D:all.SELN", "D:spec"]


def fanout_puts() -> list[tuple[str, str]]:
    puts = [("F:all.PROC", "1"), ("F:all", "3"), ("F:toscanned.PROC", "1")]
    for seln in ("0", "1", "3", "4", "15", "16", "2"):
        puts += [("F:spec.SELN", seln), ("F:spec.PROC", "1")]
    for sel in ("0", "1", "2", "3", "4"):
        puts += [("F:sel", sel), ("F:offs.PROC", "1")]
    for seln in ("5", "0", "32768", "65535", "9"):
        puts += [("F:mask.SELN", seln), ("F:mask.PROC", "1")]
    for shft in ("2", "0", "-3", "15", "16", "-16"):
        puts += [("F:shift.SHFT", shft), ("F:shift.PROC", "1")]
    puts += [("F:lshift.PROC", "1"), ("F:const.PROC", "1"), ("F:all.SELM", "Mask"), ("F:all.SELN", "8"),
             ("F:all.PROC", "1")]
    return puts


def dfanout_puts() -> list[tuple[str, str]]:
    puts = [("D:all", value) for value in ("1", "1.2", "5.5", "4.5", "3.9", "8", "7.5", "6.9", "-1")]
    for seln in ("0", "1", "2", "3", "8", "9"):
        puts += [("D:spec.SELN", seln), ("D:spec", str(int(seln) + 10))]
    for sel in ("0", "1", "2", "5", "7"):
        puts += [("F:sel", sel), ("D:mask", sel + ".25")]
    puts += [("D:dol.PROC", "1"), ("F:src", "-3"), ("D:dol", "100"), ("D:dol.OMSL", "supervisory"),
             ("D:dol", "100"), ("D:all.SELM", "Specified"), ("D:all.SELN", "3"), ("D:all", "2.5"),
             ("D:all.EGU", "mV"), ("D:all.PREC", "4")]
    return puts


def run_puts(pair: Pair, puts: list[tuple[str, str]]) -> list[str]:
    failures = []
    for pv, value in puts:
        try:
            pair.assert_same("caput", "-w", "5", pv, value)
        except AssertionError as error:
            failures.append(str(error))
    return failures


def compare_reads(pair: Pair) -> list[str]:
    failures = []
    for dbr, pvs in (("DBR_TIME_DOUBLE", READ), ("DBR_CTRL_DOUBLE", META),
                     ("DBR_TIME_STRING", ["F:all.SELM", "D:mask.SELM", "D:dol.OMSL", "D:all.OUTC"])):
        try:
            pair.assert_same("caget", "-w", "5", "-d", dbr, *pvs)
        except AssertionError as error:
            failures.append(str(error))
    return failures


def test_fanout_and_dfanout_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        failures = compare_reads(pair)
        monitored = ["D:all", "D:mask", "F:offs", "F:offs.SELN", "F:spec.SELN", "F:shift", "P:end"]
        monitors = {"C": start_monitors(pair.reference, monitored),
                    "ours": start_monitors(pair.ours, monitored)}
        failures += run_puts(pair, fanout_puts())
        failures += run_puts(pair, dfanout_puts())
        pair.assert_same("caput", "-w", "5", "P:end", "1")
        pair.assert_same("caput", "-w", "5", "P:end.EGU", "done")
        events = {side: finish_monitors(m) for side, m in monitors.items()}
        for event_mask, ref, ours in zip(MASKS, events["C"], events["ours"], strict=True):
            if ref != ours:
                diff = "\n".join(difflib.unified_diff(ref, ours, "C softIoc", "ours", lineterm="", n=1))
                failures.append(f"camonitor -m {event_mask} events differ:\n{diff}")
        failures += compare_reads(pair)
        assert not failures, "\n\n".join(failures)


def test_fanout_and_dfanout_field_tables_and_metadata_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_same_field_tables(pair, {"F:offs": "fanout", "D:all": "dfanout", "D:dol": "dfanout"})
