"""The state record against the C softIoc: a 20-character VAL (longer puts cut to 19 characters) posted
by processing only when it differs from OVAL, processing through FLNK, a disabled record, and every
field's metadata. Then our side alone: what each processing posts."""
from __future__ import annotations

from dboracle import load_db
from differential import serve_both
from record_differential import assert_put_sequence_matches, caget
from test_calcout_differential import assert_same_field_tables

from caproto.constants import DBE_VALUE
from caproto.dbr import ChannelType, encode_payload

DB = r"""
record(state, "T:s") { field(VAL, "idle") }
record(state, "T:t") { }
record(state, "T:u") { field(SDIS, "T:flag") field(DISS, "MAJOR") }
record(bo, "T:flag") { field(VAL, "0") }
record(bo, "T:go") { field(FLNK, "T:s") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

RECORDS = ["T:s", "T:t", "T:u"]
FIELDS = [f"{rec}.{fld}" for rec in RECORDS for fld in ("OVAL", "UDF", "STAT")]
MONITORED = ["T:s", "T:t", "T:u", "T:u.OVAL", "P:end"]
PUTS = (
    [(f"{rec}.PROC", "1") for rec in RECORDS]
    + [("T:s", "busy"), ("T:s", "busy"), ("T:s", "a string longer than twenty"), ("T:s.PROC", "1"),
       ("T:go", "1"), ("T:t", ""), ("T:t", "x"), ("T:t.PROC", "1"), ("T:s", "")]
    + [("T:u", "off"), ("T:flag", "1"), ("T:u", "on"), ("T:u.PROC", "1"), ("T:flag", "0"),
       ("T:u.PROC", "1"), ("T:u", "on")]
)

READS = [caget(dbr, pvs) for dbr, pvs in (
    ("DBR_TIME_STRING", RECORDS), ("DBR_CTRL_STRING", RECORDS), ("DBR_CTRL_DOUBLE", RECORDS),
    ("DBR_TIME_STRING", FIELDS))] + [("caget", "-w", "5", "-d", "DBR_CHAR", "-#", "20", "T:s")]


def test_state_matches_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_put_sequence_matches(pair, READS, MONITORED, PUTS)


def test_state_field_table_and_metadata_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_same_field_tables(pair, {"T:s": "state", "T:t": "state"})
        pair.assert_same("cainfo", "-w", "5", "T:s", "T:s.OVAL", "T:t.DTYP")


# --- our side alone ---------------------------------------------------------------------------------------

def put(db, pv: str, value: str) -> None:
    db.lookup(pv).write(ChannelType.STRING, 1, encode_payload(ChannelType.STRING, [value]))


def test_state_posts_a_changed_string_and_processes_through_flnk(tmp_path):
    db = load_db(DB, tmp_path)
    posts: list[int] = []
    db.lookup("T:s").subscribe(posts.append, DBE_VALUE)
    put(db, "T:go", "1")                # T:go's FLNK processes T:s: its VAL "idle" is new to OVAL ""
    assert len(posts) == 1 and db.records["T:s"].OVAL == "idle"
    put(db, "T:s", "idle")
    assert len(posts) == 1
    put(db, "T:s", "a string longer than twenty")
    assert db.records["T:s"].VAL == "a string longer tha" and len(posts) == 2
