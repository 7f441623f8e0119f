"""The permissive record against the C softIoc: VAL and WFLG posted by processing only when they changed
(with that processing's alarm state), a put to WFLG or LABL posting it as well, OVAL/OFLG following, a
disabled record, FLNK, and every field's metadata. Then our side alone: what each processing posts."""
from __future__ import annotations

from dboracle import load_db
from differential import serve_both
from record_differential import assert_put_sequence_matches, caget
from test_calcout_differential import assert_same_field_tables

from caproto.constants import DBE_VALUE
from caproto.dbr import ChannelType, encode_payload

DB = r"""
record(permissive, "M:p") { field(LABL, "open the valve") field(VAL, "1") field(DESC, "button") }
record(permissive, "M:q") { field(WFLG, "3") field(FLNK, "M:next") }
record(permissive, "M:dis") { field(SDIS, "M:flag") field(DISV, "1") field(DISS, "MINOR") }
record(bo, "M:flag") { field(VAL, "0") }
record(calc, "M:next") { field(CALC, "VAL+1") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

RECORDS = ["M:p", "M:q", "M:dis"]
FIELDS = [f"{rec}.{fld}" for rec in RECORDS for fld in ("WFLG", "OVAL", "OFLG", "LABL", "UDF")] + ["M:next"]
MONITORED = ["M:p", "M:p.WFLG", "M:p.LABL", "M:q", "M:q.WFLG", "M:dis", "M:dis.WFLG", "M:next", "P:end"]
PUTS = (
    [(f"{rec}.PROC", "1") for rec in RECORDS]
    + [("M:p", "1"), ("M:p", "0"), ("M:p.WFLG", "1"), ("M:p.WFLG", "1"), ("M:p.LABL", "close it"),
       ("M:p.PROC", "1"), ("M:p", "65535"), ("M:p.WFLG", "0")]
    + [("M:q.WFLG", "3"), ("M:q", "2"), ("M:q.WFLG", "0")]
    + [("M:flag", "1"), ("M:dis", "4"), ("M:dis.WFLG", "1"), ("M:flag", "0"), ("M:dis.PROC", "1"),
       ("M:dis", "5")]
)

READS = [caget(dbr, pvs) for dbr, pvs in (
    ("DBR_TIME_STRING", RECORDS), ("DBR_CTRL_DOUBLE", RECORDS), ("DBR_TIME_DOUBLE", RECORDS),
    ("DBR_CTRL_LONG", RECORDS), ("DBR_TIME_STRING", FIELDS))]


def test_permissive_matches_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_put_sequence_matches(pair, READS, MONITORED, PUTS)


def test_permissive_field_table_and_metadata_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_same_field_tables(pair, {"M:p": "permissive", "M:q": "permissive"})
        pair.assert_same("cainfo", "-w", "5", "M:p", "M:p.WFLG", "M:p.LABL", "M:p.DTYP")


# --- our side alone ---------------------------------------------------------------------------------------

def put(db, pv: str, value: int) -> None:
    db.lookup(pv).write(ChannelType.LONG, 1, encode_payload(ChannelType.LONG, [value]))


def test_permissive_posts_val_and_wflg_only_when_they_changed(tmp_path):
    db = load_db(DB, tmp_path)
    val_posts: list[int] = []
    flag_posts: list[int] = []
    db.lookup("M:q").subscribe(val_posts.append, DBE_VALUE)
    db.lookup("M:q.WFLG").subscribe(flag_posts.append, DBE_VALUE)
    # a put to WFLG posts it (dbPut: not VAL), and the processing it causes posts it again when it
    # differs from OFLG
    put(db, "M:q.WFLG", 3)
    assert (len(val_posts), len(flag_posts)) == (0, 2)
    put(db, "M:q.WFLG", 3)
    assert (len(val_posts), len(flag_posts)) == (0, 3)
    put(db, "M:q", 1)                   # VAL is posted by the processing alone
    assert (len(val_posts), len(flag_posts)) == (1, 3)
    put(db, "M:q", 1)
    assert (len(val_posts), len(flag_posts)) == (1, 3)
    rec = db.records["M:q"]
    assert (rec.OVAL, rec.OFLG, rec.UDF) == (1, 3, 0)
    assert db.records["M:next"].VAL == 4        # FLNK processed at each of the four puts
