"""The sel record against the C softIoc: SELM High/Low/Median/Specified over inputs A..L (NaN ones left
out), SELN from NVL, constant inputs, a SELN past L, the limit alarms with HYST, MDEL/ADEL, which inputs
and SELN are posted, and every field's metadata."""
from __future__ import annotations

from differential import serve_both
from record_differential import assert_put_sequence_matches, caget
from test_calcout_differential import assert_same_field_tables

DB = r"""
record(ao, "S:a") { field(VAL, "3") field(PREC, "2") field(EGU, "mm") field(HOPR, "9") }
record(ao, "S:b") { field(VAL, "-1.5") }
record(ao, "S:c") { field(VAL, "7.25") }
record(ao, "S:bad") { field(HIHI, "5") field(HHSV, "INVALID") }
record(longout, "S:n") { field(VAL, "2") }
record(sel, "S:high") { field(SELM, "High Signal") field(INPA, "S:a") field(INPB, "S:b") field(INPC, "S:c")
                        field(INPD, "4") field(PREC, "3") field(EGU, "V") field(HOPR, "20") field(LOPR, "-20")
                        field(HIHI, "10") field(HIGH, "5") field(LOW, "-5") field(LOLO, "-10")
                        field(HHSV, "MAJOR") field(HSV, "MINOR") field(LSV, "MINOR") field(LLSV, "MAJOR")
                        field(HYST, "1") }
record(sel, "S:low") { field(SELM, "Low Signal") field(INPA, "S:a") field(INPB, "S:b") field(INPC, "S:c")
                       field(MDEL, "1") field(ADEL, "3") }
record(sel, "S:median") { field(SELM, "Median Signal") field(INPA, "S:a") field(INPB, "S:b")
                          field(INPC, "S:c") field(INPE, "2.5") }
record(sel, "S:even") { field(SELM, "Median Signal") field(INPA, "S:a") field(INPB, "S:b") }
record(sel, "S:spec") { field(SELM, "Specified") field(NVL, "S:n") field(INPA, "S:a") field(INPB, "S:b")
                        field(INPC, "S:c") field(INPL, "11") }
record(sel, "S:fixed") { field(NVL, "1") field(INPA, "S:a") field(INPB, "S:b MS") }
record(sel, "S:none") { field(SELM, "High Signal") }
record(sel, "S:nomed") { field(SELM, "Median Signal") }
record(sel, "S:lastbad") { field(SELM, "High Signal") field(INPA, "S:a") field(INPL, "S:bad MS") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

RECORDS = ["S:high", "S:low", "S:median", "S:even", "S:spec", "S:fixed", "S:none", "S:nomed", "S:lastbad"]
READ = RECORDS + [f"{rec}.{fld}" for rec in RECORDS for fld in ("SELN", "A", "B", "L", "LA", "UDF", "NLST")]
MONITORED = ["S:high", "S:high.SELN", "S:high.A", "S:high.D", "S:low", "S:median", "S:median.SELN",
             "S:spec", "S:spec.SELN", "S:spec.C", "S:none", "S:none.A", "S:nomed", "S:lastbad", "P:end"]
PUTS = (
    [(f"{rec}.PROC", "1") for rec in RECORDS]
    + [(f"{rec}.PROC", "1") for rec in RECORDS]
    + [("S:a", v) for v in ("12", "9.5", "8.9", "3", "-30", "-9.5", "0")]
    + [("S:high.PROC", "1"), ("S:low.PROC", "1"), ("S:median.PROC", "1"), ("S:even.PROC", "1")]
    + [("S:c", "0.5"), ("S:low.PROC", "1"), ("S:c", "-1.6"), ("S:low.PROC", "1"), ("S:c", "-4.8"),
       ("S:low.PROC", "1"), ("S:median.PROC", "1")]
    + [put for v in ("0", "1", "2", "3", "11", "12", "-1", "65536", "1")
       for put in (("S:n", v), ("S:spec.PROC", "1"))]
    + [("S:fixed.PROC", "1"), ("S:fixed.SELN", "0"), ("S:fixed.PROC", "1"), ("S:fixed.SELM", "Low Signal"),
       ("S:fixed.PROC", "1")]
    + [("S:bad", "7"), ("S:lastbad.PROC", "1"), ("S:a", "4"), ("S:lastbad.PROC", "1"), ("S:bad", "1"),
       ("S:lastbad.PROC", "1")]
    # A put to an input posts it, then the processing posts VAL, SELN and the input again: our server
    # sends one subscription's queued updates together where rsrv keeps the order of posts across
    # subscriptions, so the inputs put to here are not among those monitored
    + [("S:high.B", "1"), ("S:high.E", "6"), ("S:none.B", "2"), ("S:none.SELN", "1"),
       ("S:none.SELM", "Specified"), ("S:none.PROC", "1"), ("S:high.EGU", "kV"), ("S:high.HIHI", "50")]
)


READS = [caget(dbr, pvs) for dbr, pvs in (
    ("DBR_TIME_DOUBLE", READ), ("DBR_CTRL_DOUBLE", RECORDS), ("DBR_TIME_STRING", RECORDS),
    ("DBR_CTRL_LONG", RECORDS), ("DBR_TIME_STRING", [f"{rec}.SELM" for rec in RECORDS]))]


def test_sel_matches_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_put_sequence_matches(pair, READS, MONITORED, PUTS)


def test_sel_field_table_and_metadata_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_same_field_tables(pair, {"S:high": "sel", "S:spec": "sel"})
        pair.assert_same("caget", "-w", "5", "-d", "DBR_CTRL_ENUM", "S:high.SELM", "S:high.DTYP")
