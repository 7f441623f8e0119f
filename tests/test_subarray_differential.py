"""The subArray record against the C softIoc: NELM elements from INDX of the array INP reads (a waveform,
a scalar, a constant array reloaded at each processing, an empty INP shifting what the buffer holds),
MALM clamping NELM and INDX, NORD and UDF when nothing is left, a put to VAL, and every field's metadata."""
from __future__ import annotations

from differential import serve_both
from record_differential import assert_put_sequence_matches, caget
from test_calcout_differential import assert_same_field_tables

DB = r"""
record(waveform, "W:src") { field(FTVL, "DOUBLE") field(NELM, "10") field(INP, "[1, 2, 3, 4, 5, 6, 7, 8]") }
record(waveform, "W:str") { field(FTVL, "STRING") field(NELM, "4") field(INP, "[\"ab\", \"cd\", \"ef\"]") }
record(ao, "W:one") { field(VAL, "4.5") }
record(subArray, "W:mid") { field(FTVL, "DOUBLE") field(MALM, "10") field(NELM, "3") field(INDX, "2")
                            field(INP, "W:src") field(PREC, "2") field(EGU, "mm") field(HOPR, "9") }
record(subArray, "W:long") { field(FTVL, "LONG") field(MALM, "6") field(NELM, "6") field(INDX, "5")
                             field(INP, "W:src") }
record(subArray, "W:big") { field(FTVL, "DOUBLE") field(MALM, "4") field(NELM, "9") field(INP, "W:src") }
record(subArray, "W:scalar") { field(FTVL, "SHORT") field(MALM, "3") field(NELM, "2") field(INP, "W:one") }
record(subArray, "W:const") { field(FTVL, "LONG") field(MALM, "5") field(NELM, "2") field(INDX, "1")
                              field(INP, "[10, 20, 30, 40]") }
record(subArray, "W:empty") { field(FTVL, "DOUBLE") field(MALM, "5") field(NELM, "5") field(INDX, "1") }
record(subArray, "W:strs") { field(FTVL, "STRING") field(MALM, "3") field(NELM, "2") field(INDX, "1")
                             field(INP, "W:str") }
record(subArray, "W:dflt") { field(INP, "W:src") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

RECORDS = ["W:mid", "W:long", "W:big", "W:scalar", "W:const", "W:empty", "W:dflt"]
FIELDS = [f"{rec}.{fld}" for rec in RECORDS + ["W:strs"] for fld in ("NORD", "NELM", "INDX", "MALM", "UDF")]
MONITORED = ["W:mid", "W:mid.NORD", "W:long", "W:long.NORD", "W:empty", "W:empty.NORD", "W:const", "P:end"]
PUTS = (
    [(f"{rec}.PROC", "1") for rec in RECORDS + ["W:strs"]]
    + [("W:mid.INDX", "0"), ("W:mid.NELM", "8"), ("W:mid.NELM", "11"), ("W:mid.INDX", "9"),
       ("W:mid.INDX", "12"), ("W:mid.INDX", "4"), ("W:mid.NELM", "2")]
    + [("W:long.PROC", "1"), ("W:long.INDX", "2"), ("W:long.INDX", "8"), ("W:long.INDX", "0")]
    + [("-a", "W:src", "3", "9", "8", "7"), ("W:mid.INDX", "1"), ("W:long.PROC", "1"), ("W:big.PROC", "1")]
    + [("-a", "W:empty", "4", "1", "2", "3", "4"), ("W:empty.PROC", "1"), ("W:empty.PROC", "1"),
       ("W:empty.INDX", "0"), ("W:empty.PROC", "1")]
    + [("W:const.INDX", "3"), ("W:const.NELM", "5"), ("W:const.INDX", "4"), ("W:scalar.PROC", "1"),
       ("W:one", "-7"), ("W:scalar.PROC", "1"), ("W:scalar.INDX", "1")]
)


READS = [caget(dbr, pvs) for dbr, pvs in (
    ("DBR_TIME_DOUBLE", RECORDS), ("DBR_CTRL_DOUBLE", RECORDS), ("DBR_TIME_STRING", RECORDS),
    ("DBR_CTRL_LONG", RECORDS), ("DBR_TIME_DOUBLE", FIELDS),
    ("DBR_TIME_STRING", ["W:strs", "W:strs.NORD"]))] + [
    ("caget", "-w", "5", "-#", count, "W:mid", "W:empty", "W:const") for count in ("1", "4", "12")]


def test_subarray_matches_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_put_sequence_matches(pair, READS, MONITORED, PUTS)


def test_subarray_field_table_and_metadata_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_same_field_tables(pair, {"W:mid": "subArray", "W:strs": "subArray"})
        pair.assert_same("caget", "-w", "5", "-d", "DBR_CTRL_ENUM", "W:mid.DTYP", "W:mid.FTVL")
        pair.assert_same("cainfo", "-w", "5", "W:mid", "W:strs", "W:dflt", "W:empty")
