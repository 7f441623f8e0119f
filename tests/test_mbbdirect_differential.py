"""mbbiDirect and mbboDirect against the C softIoc: VAL and the bit fields B0 ... B1F following each other
(a put to a bit, a put to VAL), NOBT/MASK/SHFT with Raw Soft Channel, OMSL/DOL closed loop (bit puts
refused), RVAL/ORAW, UDF and link alarms, IVOA, and which bits are posted to monitors."""
from __future__ import annotations

from differential import serve_both
from record_differential import assert_put_sequence_matches, caget
from test_calcout_differential import assert_same_field_tables

DB = r"""
record(ao, "D:src") { field(VAL, "5") }
record(ao, "D:bad") { field(HIHI, "5") field(HHSV, "INVALID") }
record(longout, "D:sink") { }
record(longout, "D:rawsink") { }
record(mbbiDirect, "D:in") { field(INP, "D:src") }
record(mbbiDirect, "D:const") { field(INP, "10") field(NOBT, "4") }
record(mbbiDirect, "D:none") { }
record(mbbiDirect, "D:raw") { field(DTYP, "Raw Soft Channel") field(INP, "D:src") field(NOBT, "3")
                              field(SHFT, "2") }
record(mbbiDirect, "D:rawall") { field(DTYP, "Raw Soft Channel") field(INP, "D:src") }
record(mbbiDirect, "D:ms") { field(INP, "D:bad MS") }
record(mbboDirect, "D:out") { field(OUT, "D:sink PP") field(NOBT, "8") }
record(mbboDirect, "D:bits") { field(B1, "1") field(B3, "1") field(SHFT, "4") }
record(mbboDirect, "D:dol") { field(DOL, "D:src") field(OMSL, "closed_loop") field(OUT, "D:sink PP") }
record(mbboDirect, "D:rawout") { field(DTYP, "Raw Soft Channel") field(OUT, "D:rawsink PP") field(NOBT, "4")
                                 field(SHFT, "1") field(VAL, "7") }
record(mbboDirect, "D:ivov") { field(DOL, "D:bad MS") field(OMSL, "closed_loop")
                               field(IVOA, "Set output to IVOV") field(IVOV, "9") field(OUT, "D:sink PP") }
record(mbboDirect, "D:cdol") { field(DOL, "6") }
record(mbbiDirect, "D:sim") { field(INP, "3") field(SIMM, "YES") field(SIOL, "D:src") field(SIMS, "MINOR") }
record(mbbiDirect, "D:simraw") { field(SIMM, "RAW") field(SIOL, "D:src") field(SHFT, "1") }
record(mbboDirect, "D:simout") { field(SIMM, "RAW") field(SIOL, "D:rawsink PP") field(SHFT, "2")
                                 field(OUT, "D:sink PP") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

VALUES = ["D:in", "D:const", "D:none", "D:raw", "D:rawall", "D:ms", "D:out", "D:bits", "D:dol", "D:rawout",
          "D:ivov", "D:cdol", "D:sink", "D:rawsink", "D:sim", "D:simraw", "D:simout",
          "D:simraw.RVAL", "D:simout.RVAL"]
KEY_FIELDS = [f"{rec}.{fld}" for rec in ("D:in", "D:raw", "D:rawall", "D:const", "D:none")
              for fld in ("RVAL", "ORAW", "MASK", "MLST", "B0", "B1", "B2", "B3", "B1F")] + \
             [f"{rec}.{fld}" for rec in ("D:out", "D:bits", "D:dol", "D:rawout", "D:ivov", "D:cdol")
              for fld in ("RVAL", "ORAW", "MASK", "MLST", "OBIT", "B0", "B1", "B2", "B3", "B4", "B1F")]
MONITORED = ["D:in", "D:in.B0", "D:in.B1", "D:in.B2", "D:in.RVAL", "D:raw", "D:raw.RVAL", "D:raw.B0",
             "D:out", "D:out.B0", "D:out.B1", "D:out.B7", "D:out.RVAL", "D:bits", "D:bits.B2",
             "D:bits.RVAL", "D:ms.B0", "D:sink", "P:end"]
PUTS = [
    ("D:in.PROC", "1"), ("D:src", "6"), ("D:in.PROC", "1"), ("D:src", "-1"), ("D:in.PROC", "1"),
    ("D:src", "13"), ("D:in.PROC", "1"), ("D:in.B5", "1"), ("D:const.PROC", "1"), ("D:none.PROC", "1"),
    ("D:raw.PROC", "1"), ("D:src", "255"), ("D:raw.PROC", "1"), ("D:rawall.PROC", "1"), ("D:raw.SHFT", "0"),
    ("D:raw.PROC", "1"),
    ("D:ms.PROC", "1"), ("D:bad", "7"), ("D:ms.PROC", "1"), ("D:bad", "1"), ("D:ms.PROC", "1"),
    ("D:out", "5"), ("D:out", "5"), ("D:out.B1", "1"), ("D:out.B0", "0"), ("D:out", "-2"), ("D:out.B1F", "0"),
    ("D:out", "300"), ("D:bits.PROC", "1"), ("D:bits.B2", "1"), ("D:bits", "1"), ("D:bits.SHFT", "30"),
    ("D:bits", "12"),
    ("D:dol.PROC", "1"), ("D:dol.B0", "1"), ("D:dol.OMSL", "supervisory"), ("D:dol.B0", "0"),
    ("D:rawout.PROC", "1"), ("D:rawout", "255"), ("D:rawout.B7", "0"),
    ("D:ivov.PROC", "1"), ("D:bad", "7"), ("D:ivov.PROC", "1"), ("D:cdol.PROC", "1"),
    ("D:src", "11"), ("D:sim.PROC", "1"), ("D:simraw.PROC", "1"), ("D:simout", "3"), ("D:sim.SIMM", "NO"),
    ("D:sim.PROC", "1"), ("D:simout.SIMM", "NO"), ("D:simout", "4"),
]


READS = [caget(dbr, pvs) for dbr, pvs in (
    ("DBR_TIME_DOUBLE", VALUES), ("DBR_TIME_LONG", VALUES), ("DBR_CTRL_LONG", VALUES),
    ("DBR_TIME_STRING", VALUES), ("DBR_TIME_CHAR", KEY_FIELDS), ("DBR_CTRL_DOUBLE", KEY_FIELDS),
    ("DBR_STS_STRING", ["D:in.AMSG", "D:none.AMSG"]))]


def test_mbbdirect_matches_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_put_sequence_matches(pair, READS, MONITORED, PUTS)


def test_mbbdirect_field_tables_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_same_field_tables(pair, {"D:in": "mbbiDirect", "D:raw": "mbbiDirect", "D:out": "mbboDirect",
                                        "D:rawout": "mbboDirect"})
        pair.assert_same("caget", "-w", "5", "-d", "DBR_CTRL_ENUM", "D:in.DTYP", "D:out.DTYP", "D:out.OMSL",
                         "D:in.SIMM", "D:out.IVOA")
