"""The histogram record against the C softIoc: SGNL read through SVL (a link, a constant, SIOL in
simulation) or put directly, counted in NELM bins of WDTH from LLIM to ULIM (upper edges belong to the
lower bin, ULIM itself to none), MDEL deciding when VAL is posted, CMD Clear/Read/Start/Stop, ULIM and
LLIM puts recomputing WDTH and clearing, LLIM >= ULIM, and every field's metadata. Then our side alone:
the SDEL watchdog on a virtual clock."""
from __future__ import annotations

import pytest
import trio
import trio.testing
from dboracle import load_db
from differential import serve_both
from record_differential import assert_put_sequence_matches, caget
from test_calcout_differential import assert_same_field_tables

from caproto.constants import DBE_VALUE
from caproto.dbr import ChannelType, decode_payload, encode_payload

DB = r"""
record(ao, "H:x") { field(VAL, "1") }
record(histogram, "H:h") { field(LLIM, "0") field(ULIM, "10") field(NELM, "5") field(SVL, "H:x")
                           field(PREC, "2") field(HOPR, "20") field(LOPR, "1") }
record(histogram, "H:md") { field(LLIM, "0") field(ULIM, "10") field(NELM, "4") field(SVL, "H:x")
                            field(MDEL, "2") }
record(histogram, "H:bad") { field(LLIM, "5") field(ULIM, "5") field(NELM, "3") field(SVL, "H:x") }
record(histogram, "H:const") { field(LLIM, "0") field(ULIM, "4") field(NELM, "4") field(SVL, "3") }
record(histogram, "H:sim") { field(LLIM, "0") field(ULIM, "10") field(NELM, "2") field(SIMM, "YES")
                             field(SIOL, "H:x") field(SIMS, "MINOR") }
record(histogram, "H:sgnl") { field(LLIM, "-1") field(ULIM, "1") field(NELM, "4") field(SDEL, "0") }
record(histogram, "H:one") { }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

RECORDS = ["H:h", "H:md", "H:bad", "H:const", "H:sim", "H:sgnl", "H:one"]
LINKED = ["H:h", "H:md", "H:bad", "H:sim"]
FIELDS = [f"{rec}.{fld}" for rec in RECORDS
          for fld in ("SGNL", "WDTH", "CSTA", "MCNT", "CMD", "UDF", "STAT", "SEVR", "NELM")]
MONITORED = ["H:h", "H:md", "H:bad", "H:bad.STAT", "H:const", "H:sim", "H:sgnl", "H:sgnl.SGNL",
             "H:h.WDTH", "H:h.CMD", "P:end"]
PUTS = (
    [(f"{rec}.PROC", "1") for rec in RECORDS]
    + [put for value in ("0", "2", "9.99", "10", "-1", "5", "4", "1e-9", "7.5")
       for put in [("H:x", value)] + [(f"{rec}.PROC", "1") for rec in LINKED]]
    + [("H:const.PROC", "1"), ("H:const.PROC", "1")]
    + [("H:sgnl.SGNL", value) for value in ("0.5", "-1", "0.999", "1", "-0.5", "0")]
    + [("H:h.CMD", "Stop"), ("H:h.PROC", "1"), ("H:h.CMD", "Start"), ("H:h.PROC", "1"),
       ("H:md.CMD", "Clear"), ("H:md.PROC", "1"), ("H:md.PROC", "1"), ("H:sgnl.CMD", "Read"),
       ("H:sgnl.SGNL", "0.25")]
    + [("H:h.ULIM", "20"), ("H:h.PROC", "1"), ("H:md.LLIM", "5"), ("H:md.PROC", "1"),
       ("H:bad.ULIM", "8"), ("H:bad.PROC", "1"), ("H:bad.LLIM", "9"), ("H:bad.PROC", "1")]
    + [("H:sim.SIMM", "NO"), ("H:sim.PROC", "1"), ("H:md.MDEL", "0"), ("H:md.PROC", "1"),
       ("-a", "H:sgnl", "3", "7", "8", "9"), ("H:sgnl.PROC", "1"), ("H:h.SDEL", "0")]
)

READS = [caget(dbr, pvs) for dbr, pvs in (
    ("DBR_TIME_DOUBLE", RECORDS), ("DBR_CTRL_DOUBLE", RECORDS), ("DBR_TIME_STRING", RECORDS),
    ("DBR_CTRL_LONG", RECORDS), ("DBR_TIME_DOUBLE", FIELDS))] + [
    ("caget", "-w", "5", "-#", count, "H:h", "H:sgnl") for count in ("1", "3", "9")]


def test_histogram_matches_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_put_sequence_matches(pair, READS, MONITORED, PUTS)


def test_histogram_field_table_and_metadata_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_same_field_tables(pair, {"H:h": "histogram", "H:sgnl": "histogram"})
        pair.assert_same("caget", "-w", "5", "-d", "DBR_CTRL_ENUM", "H:h.CMD", "H:h.DTYP", "H:h.SIMM")
        pair.assert_same("cainfo", "-w", "5", "H:h", "H:one", "H:sgnl.SDEL")


# --- our side alone ---------------------------------------------------------------------------------------

def counts(db, pv: str) -> list[int]:
    payload, n = db.lookup(pv).read(ChannelType.LONG, 0)
    return decode_payload(ChannelType.LONG, n, payload)[0].tolist()


def put(db, pv: str, value: float) -> None:
    db.lookup(pv).write(ChannelType.DOUBLE, 1, encode_payload(ChannelType.DOUBLE, [value]))


def test_signals_fall_in_bins_whose_upper_edge_they_do_not_pass(tmp_path):
    db = load_db(DB, tmp_path)
    for value in (-1.0, -0.5, -0.4999, 0.0, 0.999, 1.0, -1.0001):
        put(db, "H:sgnl.SGNL", value)
    # bins of 0.5 from -1: [-1, -0.5] [-0.5, 0] [0, 0.5] [0.5, 1); 1 itself and below -1 are not counted
    assert counts(db, "H:sgnl") == [2, 2, 0, 1]
    put(db, "H:sgnl.CMD", 3)            # Stop
    put(db, "H:sgnl.SGNL", 0.25)
    assert counts(db, "H:sgnl") == [2, 2, 0, 1]
    put(db, "H:sgnl.CMD", 1)            # Clear
    assert counts(db, "H:sgnl") == [0, 0, 0, 0] and db.records["H:sgnl"].CMD == 0


def test_mdel_posts_val_after_more_than_mdel_counts(tmp_path):
    db = load_db(DB, tmp_path)
    rec = db.records["H:md"]
    posts: list[int] = []
    db.lookup("H:md").subscribe(posts.append, DBE_VALUE)
    rec.process()
    rec.process()
    assert posts == [] and rec.MCNT == 2
    rec.process()                       # three counts since the last post: more than MDEL = 2
    assert len(posts) == 1 and rec.MCNT == 0
    assert counts(db, "H:md") == [3, 0, 0, 0]


@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0)


async def test_sdel_watchdog_posts_counts_the_processing_did_not(tmp_path, clock):
    db = load_db(DB.replace('field(SDEL, "0")', 'field(SDEL, "2")'), tmp_path)
    rec = db.records["H:sgnl"]
    posts: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        db.lookup("H:sgnl").subscribe(posts.append, DBE_VALUE)
        put(db, "H:sgnl.SGNL", 0.5)         # counted, not posted: only processing checks MDEL
        assert posts == [] and rec.MCNT == 1
        await trio.sleep(2.5)
        assert len(posts) == 1 and rec.MCNT == 0
        await trio.sleep(2)
        assert len(posts) == 1              # no new count: nothing posted
        put(db, "H:sgnl.SDEL", 0)           # the pending run still fires once, then the timer stops
        put(db, "H:sgnl.SGNL", 0.5)
        await trio.sleep(10)
        assert len(posts) == 2
        put(db, "H:sgnl.SGNL", 0.5)
        await trio.sleep(10)
        assert len(posts) == 2 and rec.MCNT == 1
        nursery.cancel_scope.cancel()
