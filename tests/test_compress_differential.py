"""The compress record against the C softIoc: N to 1 Low/High/Average/Median of arrays (with ILIL/IHIL
skipping leading samples, PBUF for a short last group) and of scalars (CVB, INX), Average of whole
arrays, Circular Buffer of scalars and arrays in FIFO and LIFO order, puts to RES/ALG/N resetting, a
constant or empty INP (LINK alarm), puts to VAL (written from the oldest element, LIFO refused), and
every field's metadata. Then our side alone: the values each algorithm stores."""
from __future__ import annotations

import pytest
from dboracle import load_db
from differential import serve_both
from record_differential import assert_put_sequence_matches, caget
from test_calcout_differential import assert_same_field_tables

from caproto.dbr import ChannelType, decode_payload, encode_payload
from caproto.errors import CAError

DB = r"""
record(waveform, "C:src") { field(FTVL, "DOUBLE") field(NELM, "8") field(INP, "[3, 1, 4, 1, 5, 9, 2, 6]") }
record(ao, "C:x") { field(VAL, "2") }
record(compress, "C:circ") { field(ALG, "Circular Buffer") field(NSAM, "5") field(INP, "C:x")
                             field(PREC, "2") field(EGU, "mm") field(HOPR, "10") field(LOPR, "-1") }
record(compress, "C:wrap") { field(ALG, "Circular Buffer") field(NSAM, "10") field(INP, "C:src") }
record(compress, "C:lifo") { field(ALG, "Circular Buffer") field(BALG, "LIFO Buffer") field(NSAM, "4")
                             field(INP, "C:x") }
record(compress, "C:low") { field(ALG, "N to 1 Low Value") field(N, "2") field(NSAM, "4")
                            field(INP, "C:src") }
record(compress, "C:high") { field(ALG, "N to 1 High Value") field(N, "3") field(NSAM, "4") field(PBUF, "YES")
                             field(INP, "C:src") }
record(compress, "C:avg") { field(ALG, "N to 1 Average") field(N, "3") field(NSAM, "4") field(INP, "C:src") }
record(compress, "C:med") { field(ALG, "N to 1 Median") field(N, "4") field(NSAM, "3") field(ILIL, "4")
                            field(IHIL, "8") field(INP, "C:src") }
record(compress, "C:mean") { field(ALG, "Average") field(N, "2") field(NSAM, "6") field(INP, "C:src") }
record(compress, "C:slow") { field(ALG, "N to 1 Average") field(N, "3") field(NSAM, "4") field(INP, "C:x") }
record(compress, "C:slowp") { field(ALG, "N to 1 Low Value") field(N, "3") field(PBUF, "YES") field(NSAM, "4")
                              field(INP, "C:x") }
record(compress, "C:const") { field(INP, "5") field(NSAM, "3") }
record(compress, "C:none") { }
record(compress, "C:put") { field(ALG, "Circular Buffer") field(NSAM, "4") }
record(ao, "C:tolifo") { field(OUT, "C:lifo PP") }
record(ao, "C:tofifo") { field(OUT, "C:put PP") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

RECORDS = ["C:circ", "C:wrap", "C:lifo", "C:low", "C:high", "C:avg", "C:med", "C:mean", "C:slow",
           "C:slowp", "C:const", "C:none", "C:put"]
FIELDS = [f"{rec}.{fld}" for rec in RECORDS for fld in ("NUSE", "OFF", "INX", "CVB", "INPN", "UDF", "N")] \
    + ["C:tolifo.SEVR", "C:tolifo.STAT", "C:tofifo.SEVR"]
MONITORED = ["C:circ", "C:circ.NUSE", "C:wrap", "C:lifo", "C:low", "C:high", "C:avg", "C:med", "C:mean",
             "C:slow", "C:slow.NUSE", "C:slowp", "C:const", "C:put", "C:put.NUSE", "P:end"]
SCALAR = ["C:circ", "C:lifo", "C:slow", "C:slowp"]
ARRAY = ["C:wrap", "C:low", "C:high", "C:avg", "C:med", "C:mean"]
PUTS = (
    [(f"{rec}.PROC", "1") for rec in RECORDS]
    + [put for value in ("5", "-1.5", "7", "0.25", "3", "11")
       for put in [("C:x", value)] + [(f"{rec}.PROC", "1") for rec in SCALAR]]
    + [(f"{rec}.PROC", "1") for rec in ARRAY]
    + [("-a", "C:src", "5", "8", "7", "6", "5", "4")] + [(f"{rec}.PROC", "1") for rec in ARRAY]
    + [("-a", "C:src", "1", "2.5")] + [(f"{rec}.PROC", "1") for rec in ARRAY]
    + [("C:low.RES", "1"), ("C:high.ALG", "N to 1 Low Value"), ("C:avg.N", "2"), ("C:mean.N", "0"),
       ("C:slow.PBUF", "YES"), ("C:circ.BALG", "LIFO Buffer")]
    + [("-a", "C:src", "7", "9", "1", "8", "2", "7", "3", "6")] + [(f"{rec}.PROC", "1") for rec in ARRAY]
    + [("C:x", "4"), ("C:slow.PROC", "1"), ("C:circ.PROC", "1"), ("C:circ.PROC", "1")]
    + [("-a", "C:put", "3", "1", "2", "3"), ("-a", "C:put", "2", "4", "5"), ("C:put", "6"),
       ("-a", "C:put", "5", "7", "8", "9", "10", "11"), ("-a", "C:lifo", "2", "1", "2"),
       ("C:put.N", "1"), ("C:put", "12"), ("C:tolifo", "3"), ("C:tofifo", "4")]
)

READS = [caget(dbr, pvs) for dbr, pvs in (
    ("DBR_TIME_DOUBLE", RECORDS), ("DBR_CTRL_DOUBLE", RECORDS), ("DBR_TIME_STRING", RECORDS),
    ("DBR_CTRL_LONG", RECORDS), ("DBR_TIME_DOUBLE", FIELDS))] + [
    ("caget", "-w", "5", "-#", count, "C:circ", "C:wrap", "C:mean", "C:lifo") for count in ("1", "3", "12")]


def test_compress_matches_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_put_sequence_matches(pair, READS, MONITORED, PUTS)


def test_compress_field_table_and_metadata_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_same_field_tables(pair, {"C:circ": "compress", "C:lifo": "compress"})
        pair.assert_same("caget", "-w", "5", "-d", "DBR_CTRL_ENUM", "C:circ.ALG", "C:circ.BALG",
                         "C:circ.PBUF", "C:circ.DTYP")
        pair.assert_same("cainfo", "-w", "5", "C:circ", "C:lifo", "C:none", "C:wrap")


# --- our side alone: what each algorithm stores ------------------------------------------------------------

def values(db, pv: str) -> list[float]:
    payload, n = db.lookup(pv).read(ChannelType.DOUBLE, 0)
    return decode_payload(ChannelType.DOUBLE, n, payload)[0].tolist()


def process(db, *names: str) -> None:
    for name in names:
        db.records[name].process()


def put(db, pv: str, value) -> None:
    items = value if isinstance(value, list) else [value]
    db.lookup(pv).write(ChannelType.DOUBLE, len(items), encode_payload(ChannelType.DOUBLE, items))


def test_n_to_1_algorithms_compress_each_group_of_an_array(tmp_path):
    db = load_db(DB, tmp_path)
    process(db, "C:src", "C:low", "C:high", "C:avg", "C:med", "C:wrap")
    # source 3 1 4 1 5 9 2 6
    assert values(db, "C:low") == [1.0, 1.0, 5.0, 2.0]          # pairs: min of each
    assert values(db, "C:high") == [4.0, 9.0, 6.0]              # triples, the short last one with PBUF
    assert values(db, "C:avg") == [8 / 3, 5.0]                  # triples, the last pair dropped
    assert values(db, "C:med") == [5.0]                         # from the first in ILIL..IHIL: 4 1 5 9
    assert values(db, "C:wrap") == [3, 1, 4, 1, 5, 9, 2, 6]
    process(db, "C:wrap")
    # FIFO: the oldest first, the ring of 10 overwritten from its start
    assert values(db, "C:wrap") == [4, 1, 5, 9, 2, 6, 3, 1, 4, 1, 5, 9, 2, 6][-10:]


def test_scalar_inputs_store_one_value_per_n_samples(tmp_path):
    db = load_db(DB, tmp_path)
    samples = [5.0, -1.5, 7.0, 0.25, 3.0, 11.0]
    for sample in samples:
        put(db, "C:x", sample)
        process(db, "C:slow", "C:slowp", "C:lifo")
    slow, slowp, lifo = db.records["C:slow"], db.records["C:slowp"], db.records["C:lifo"]
    assert values(db, "C:slow") == pytest.approx([sum(samples[:3]) / 3, sum(samples[3:]) / 3])
    assert slow.INX == 0
    # PBUF: the running minimum of the current group is stored at every sample (5, -1.5, -1.5, then
    # 0.25 three times), the ring keeping the last four
    assert values(db, "C:slowp") == [-1.5, 0.25, 0.25, 0.25]
    assert slowp.INX == 0 and slowp.NUSE == 4
    # LIFO: the newest first
    assert values(db, "C:lifo") == [11.0, 3.0, 0.25, 7.0]
    assert lifo.NUSE == 4


def test_average_of_whole_arrays_over_n_inputs(tmp_path):
    db = load_db(DB, tmp_path)
    process(db, "C:src", "C:mean")
    assert values(db, "C:mean") == []                           # one input of N = 2: nothing yet
    put(db, "C:src", [1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    process(db, "C:mean")
    assert values(db, "C:mean") == [2.0, 1.0, 3.0, 2.0, 4.5, 7.0]   # the first NSAM elements' means


def test_reset_and_link_alarms(tmp_path):
    db = load_db(DB, tmp_path)
    process(db, "C:src", "C:low")
    assert db.records["C:low"].NUSE == 4
    put(db, "C:low.RES", 1)
    assert (db.records["C:low"].NUSE, values(db, "C:low"), db.records["C:low"].RES) == (0, [], 0)
    process(db, "C:const", "C:none")
    for name in ("C:const", "C:none"):
        rec = db.records[name]
        assert (rec.STAT, rec.SEVR, rec.UDF, rec.NUSE) == (14, 3, 0, 0), name   # LINK / INVALID


def test_puts_to_val_write_from_the_oldest_element_and_lifo_refuses_them(tmp_path):
    db = load_db(DB, tmp_path)
    put(db, "C:put", [1.0, 2.0, 3.0])
    put(db, "C:put", [4.0, 5.0])
    # the second put overwrote from the oldest element on; FIFO then moved the write position by two
    rec = db.records["C:put"]
    assert (rec.NUSE, rec.OFF) == (4, 1)
    assert values(db, "C:put") == [5.0, 3.0, 0.0, 4.0]
    with pytest.raises(CAError):
        put(db, "C:lifo", [1.0])
    with pytest.raises(CAError):        # nor does a link write: the writer's processing fails
        put(db, "C:tolifo", 3.0)
    assert (db.records["C:tolifo"].STAT, db.records["C:tolifo"].SEVR) == (14, 3)
    assert db.records["C:lifo"].NUSE == 0
