"""aai and aao against the C softIoc: FTVL element types, NELM and NORD (posted when a read or a put
changes it), INP/DOL/OUT soft channel links to arrays and scalars, constant arrays, MPST/APST with HASH
(epicsMemHash of the valid elements), simulation through SIOL, and every field's metadata."""
from __future__ import annotations

import numpy as np
import pytest
from differential import serve_both
from record_differential import assert_put_sequence_matches, caget
from test_calcout_differential import assert_same_field_tables

from caproto.constants import DBE_VALUE
from caproto.dbr import ChannelType, encode_payload
from ioc.config import IocConfig, Located, RecordSpec
from ioc.database import Database
from ioc.records.waveform import mem_hash

DB = r"""
record(waveform, "A:wf") { field(FTVL, "DOUBLE") field(NELM, "8") field(INP, "[1, 2, 3, 4]") }
record(waveform, "A:strwf") { field(FTVL, "STRING") field(NELM, "4") field(INP, "[\"ab\", \"cd\"]") }
record(ao, "A:ao") { field(VAL, "3.7") field(HIGH, "5") field(HSV, "MINOR") }
record(ao, "A:ao2") { }
record(ao, "A:ao3") { field(VAL, "3") }
record(waveform, "A:sink") { field(FTVL, "DOUBLE") field(NELM, "8") }
record(waveform, "A:sink2") { field(FTVL, "LONG") field(NELM, "4") }
record(aai, "A:in") { field(FTVL, "DOUBLE") field(NELM, "8") field(INP, "A:wf") field(PREC, "2")
                      field(EGU, "mm") field(HOPR, "10") field(LOPR, "-10") }
record(aai, "A:const") { field(FTVL, "LONG") field(NELM, "5") field(INP, "[1, 2, 3]") }
record(aai, "A:onchange") { field(FTVL, "DOUBLE") field(NELM, "8") field(INP, "A:wf") field(MPST, "On Change")
                            field(APST, "On Change") }
record(aai, "A:scalar") { field(FTVL, "SHORT") field(INP, "A:ao MS") }
record(aai, "A:str") { field(FTVL, "STRING") field(NELM, "3") field(INP, "A:strwf") }
record(aai, "A:uchar") { field(FTVL, "UCHAR") field(NELM, "6") field(INP, "A:wf") }
record(aai, "A:none") { field(FTVL, "FLOAT") field(NELM, "4") }
record(aai, "A:sim") { field(FTVL, "DOUBLE") field(NELM, "8") field(INP, "A:ao") field(SIMM, "YES")
                       field(SIOL, "A:wf") field(SIMS, "MINOR") }
record(aao, "A:out") { field(FTVL, "DOUBLE") field(NELM, "8") field(OUT, "A:sink PP") field(PREC, "3")
                       field(EGU, "V") field(HOPR, "5") }
record(aao, "A:dol") { field(FTVL, "LONG") field(NELM, "4") field(OMSL, "closed_loop") field(DOL, "A:wf")
                       field(OUT, "A:sink2 PP") }
record(aao, "A:cdol") { field(FTVL, "DOUBLE") field(NELM, "3") field(OMSL, "closed_loop")
                        field(DOL, "[4, 5, 6]") }
record(aao, "A:sdol") { field(FTVL, "DOUBLE") field(NELM, "3") field(DOL, "[4, 5, 6]") }
record(aao, "A:toscalar") { field(FTVL, "DOUBLE") field(NELM, "4") field(OUT, "A:ao2 PP") }
record(aao, "A:empty") { field(FTVL, "DOUBLE") }
record(aao, "A:zero") { field(FTVL, "DOUBLE") field(NELM, "4") field(OUT, "A:ao3 PP") }
record(aao, "A:ochange") { field(FTVL, "SHORT") field(NELM, "4") field(MPST, "On Change")
                            field(APST, "On Change") }
record(aao, "A:osim") { field(FTVL, "DOUBLE") field(NELM, "4") field(SIMM, "YES") field(SIOL, "A:sink PP") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

VALUES = ["A:in", "A:const", "A:onchange", "A:scalar", "A:uchar", "A:none", "A:sim", "A:out", "A:dol",
          "A:cdol", "A:sdol", "A:toscalar", "A:empty", "A:ochange", "A:osim", "A:sink", "A:sink2", "A:ao2",
          "A:ao3", "A:zero"]
KEY_FIELDS = [f"{rec}.{fld}" for rec in VALUES[:15]
              for fld in ("NORD", "NELM", "HASH", "UDF")]
MONITORED = ["A:in", "A:in.NORD", "A:onchange", "A:onchange.HASH", "A:out", "A:out.NORD", "A:sink",
             "A:scalar", "A:empty", "A:ochange", "A:ochange.HASH", "P:end"]
PUTS = [
    ("A:in.PROC", "1"), ("A:onchange.PROC", "1"), ("A:onchange.PROC", "1"),
    ("-a", "A:wf", "3", "1.5", "2.5", "3.5"), ("A:in.PROC", "1"), ("A:onchange.PROC", "1"),
    ("A:onchange.PROC", "1"), ("-a", "A:wf", "3", "1.5", "2.5", "-3.5"), ("A:onchange.PROC", "1"),
    ("A:uchar.PROC", "1"), ("A:const.PROC", "1"), ("A:none.PROC", "1"), ("A:str.PROC", "1"),
    ("A:scalar.PROC", "1"), ("A:ao", "7.2"), ("A:scalar.PROC", "1"),
    ("A:sim.PROC", "1"), ("A:sim.SIMM", "NO"), ("A:sim.PROC", "1"),
    ("-a", "A:out", "3", "1", "2", "3"), ("-a", "A:out", "3", "1", "2", "3"), ("A:out.PROC", "1"),
    ("-a", "A:out", "5", "5", "4", "3", "2", "1"), ("A:out", "9"),
    ("A:dol.PROC", "1"), ("A:cdol.PROC", "1"), ("A:sdol.PROC", "1"),
    ("A:zero.PROC", "1"), ("-a", "A:toscalar", "2", "5", "6"), ("A:empty.PROC", "1"), ("A:empty", "7"),
    ("-a", "A:ochange", "2", "1", "2"), ("-a", "A:ochange", "2", "1", "2"),
    ("-a", "A:ochange", "2", "1", "3"),
    ("-a", "A:osim", "2", "8", "9"), ("A:osim.SIMM", "NO"), ("A:osim.PROC", "1"),
]


READS = [caget(dbr, pvs) for dbr, pvs in (
    ("DBR_TIME_DOUBLE", VALUES), ("DBR_CTRL_DOUBLE", VALUES), ("DBR_TIME_STRING", VALUES),
    ("DBR_CTRL_LONG", VALUES),
    ("DBR_TIME_CHAR", ["A:uchar", "A:const"]), ("DBR_TIME_DOUBLE", KEY_FIELDS),
    ("DBR_TIME_STRING", ["A:str", "A:str.NORD"]))] + [
    # %.0f: HASH is a 32-bit number, which %g would round to 6 digits
    ("caget", "-w", "5", "-f", "0", *KEY_FIELDS)] + [
    ("caget", "-w", "5", "-#", count, "A:in", "A:out", "A:const") for count in ("1", "3", "10")]


def test_aai_aao_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_put_sequence_matches(pair, READS, MONITORED, PUTS)


def test_aai_aao_field_tables_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_same_field_tables(pair, {"A:in": "aai", "A:str": "aai", "A:out": "aao", "A:cdol": "aao"})
        pair.assert_same("caget", "-w", "5", "-d", "DBR_CTRL_ENUM", "A:in.DTYP", "A:out.DTYP", "A:in.MPST",
                         "A:out.APST", "A:in.FTVL", "A:out.OMSL")
        pair.assert_same("cainfo", "-w", "5", "A:in", "A:str", "A:out", "A:empty", "A:const")


HASH_DB = r"""
record(waveform, "H:wf") { field(FTVL, "DOUBLE") field(NELM, "3000") field(MPST, "On Change") }
record(aai, "H:aai") { field(FTVL, "LONG") field(NELM, "3000") field(INP, "H:wf") field(APST, "On Change") }
record(aao, "H:aao") { field(FTVL, "SHORT") field(NELM, "5001") field(MPST, "On Change") }
"""


def test_hash_of_large_arrays_matches_softioc(tmp_path, repeater_port):
    # arrays of more than 4096 bytes take the blocked epicsMemHash (waveform.mem_hash): bytes from 128 up
    # (negative numbers, exponents) and a length that is no multiple of the block
    doubles = [f"{(-1) ** i * (i * 7.25 + 0.5):g}" for i in range(2999)]
    shorts = [str((i * 40503) % 65536 - 32768) for i in range(5001)]
    with serve_both(HASH_DB, tmp_path, repeater_port) as pair:
        pair.assert_same("caput", "-w", "5", "-a", "H:wf", str(len(doubles)), *doubles)
        pair.assert_same("caput", "-w", "5", "H:aai.PROC", "1")
        pair.assert_same("caput", "-w", "5", "-a", "H:aao", str(len(shorts)), *shorts)
        out = pair.assert_same("caget", "-w", "5", "-f", "0", "H:wf.HASH", "H:aai.HASH", "H:aao.HASH",
                               "H:wf.NORD", "H:aai.NORD", "H:aao.NORD")
        assert " 0\n" not in out, out       # each array was hashed


def _byte_recurrence(data: bytes) -> int:
    """epicsMemHash as epicsString.c states it: one signed char at a time, two alternating steps."""
    h = 0
    for i, byte in enumerate(data):
        c = (byte - 256 if byte > 127 else byte) & 0xFFFFFFFF
        if i % 2 == 0:
            h ^= ~((h << 11) ^ c ^ (h >> 5)) & 0xFFFFFFFF
        else:
            h ^= ((h << 7) ^ c ^ (h >> 3)) & 0xFFFFFFFF
        h &= 0xFFFFFFFF
    return h


@pytest.mark.parametrize("size", [0, 1, 2, 4095, 4096, 4097, 8193, 65537, 200_001])
def test_blocked_mem_hash_equals_the_byte_recurrence(size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert mem_hash(data) == _byte_recurrence(data)
    assert mem_hash(b"\xff" * size) == _byte_recurrence(b"\xff" * size)


def _put_doubles(db: Database, pv: str, values: np.ndarray) -> None:
    db.lookup(pv).write(ChannelType.DOUBLE, len(values),
                        encode_payload(ChannelType.DOUBLE, values.astype(">f8"), None, len(values)))


def test_on_change_posts_when_the_hash_differs_even_for_unchanged_contents():
    spec = RecordSpec("w", "waveform", {k: Located(v, "t.db", 1) for k, v in
                                        {"FTVL": "DOUBLE", "NELM": "10000", "MPST": "On Change"}.items()},
                      "t.db", 1)
    db = Database.from_config(IocConfig([spec], []))
    rec = db.records["w"]
    posts: list[int] = []
    db.lookup("w").subscribe(lambda mask: posts.append(mask), mask=DBE_VALUE)
    values = np.linspace(-1.0, 1.0, 10000)
    _put_doubles(db, "w", values)
    first = rec.HASH
    assert first == _byte_recurrence(values.astype("<f8").tobytes()) and len(posts) == 1
    db.process(rec)                                 # the same contents: no post
    assert (rec.HASH, len(posts)) == (first, 1)
    values[5000] = 2.0
    _put_doubles(db, "w", values)
    assert rec.HASH != first and len(posts) == 2
    # a client may write HASH: the next processing posts VAL again although the contents did not change
    zero = encode_payload(ChannelType.LONG, np.array([0], ">i4"), None, 1)
    db.lookup("w.HASH").write(ChannelType.LONG, 1, zero)
    db.process(rec)
    assert rec.HASH == _byte_recurrence(values.astype("<f8").tobytes()) and len(posts) == 3
