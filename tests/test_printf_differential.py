"""The printf record against the C softIoc: FMT's conversions (d i o u x X e E f F g G c s, the h, hh, l
and ll sizes, flags, widths and precisions, '*' read from a link) filled from INP0..INP9 in turn, %ls
long strings, IVLS for a link that does not read, directives printed as written when the record does
not accept them, SIZV cutting VAL, LEN, OUT to a string and to a CHAR array, puts to FMT, and every
field's metadata. Then our side alone: the text a few formats make."""
from __future__ import annotations

import pytest
from dboracle import load_db
from differential import serve_both
from record_differential import assert_put_sequence_matches, caget
from test_calcout_differential import assert_same_field_tables

from caproto.dbr import ChannelType, encode_payload

DB = r"""
record(ao, "F:d") { field(VAL, "3.14159") field(PREC, "3") }
record(ao, "F:tiny") { field(VAL, "-2.5e-7") }
record(ao, "F:big") { field(VAL, "1e12") }
record(longin, "F:l") { field(VAL, "-42") }
record(longin, "F:n") { field(VAL, "65") }
record(stringin, "F:s") { field(VAL, "hello") }
record(lsi, "F:ls") { field(SIZV, "64") field(INP, {const: "a long string value here"}) }
record(stringin, "F:sink") { }
record(waveform, "F:chars") { field(FTVL, "CHAR") field(NELM, "64") }
record(printf, "F:p") { field(FMT, "d=%d f=%.2f s=%s x=%x") field(INP0, "F:l") field(INP1, "F:d")
                        field(INP2, "F:s") field(INP3, "F:l") field(OUT, "F:sink PP") }
record(printf, "F:star") { field(FMT, "[%*.*f] [%-8s] %% %5%") field(INP0, "6") field(INP1, "1")
                           field(INP2, "F:d") field(INP3, "F:s") }
record(printf, "F:bad") { field(FMT, "%d %q %5 %hhd %lld %hu %c!") field(INP0, "F:l") field(INP1, "F:d")
                          field(INP2, "F:d") field(INP3, "F:l") field(INP4, "F:d") field(IVLS, "bad") }
record(printf, "F:num") { field(FMT, "%+e|%G|%#x|%o|%#o|%hhu|%hd|%llu|%5.3d|%-6i|%X") field(INP0, "F:tiny")
                          field(INP1, "F:tiny") field(INP2, "F:n") field(INP3, "F:n") field(INP4, "F:n")
                          field(INP5, "F:big") field(INP6, "F:big") field(INP7, "F:tiny") field(INP8, "F:l")
                          field(INP9, "F:l") field(SIZV, "120") }
record(printf, "F:ten") { field(FMT, "%d%d%d%d%d%d%d%d%d%d%d") field(INP0, "1") field(INP1, "2")
                          field(INP2, "3") field(INP3, "4") field(INP4, "5") field(INP5, "6") field(INP6, "7")
                          field(INP7, "8") field(INP8, "9") field(INP9, "0") }
record(printf, "F:lls") { field(FMT, "<%ls|%-30ls|%.4ls>") field(INP0, "F:ls.VAL$") field(INP1, "F:ls.VAL$")
                          field(INP2, "F:ls.VAL$") field(SIZV, "100") field(OUT, "F:chars PP") }
record(printf, "F:short") { field(FMT, "0123456789abcdefghij %d") field(SIZV, "16") field(INP0, "F:l") }
record(printf, "F:chr") { field(FMT, "%3c|%-3c|%s|%d|%s") field(INP0, "F:n") field(INP1, "F:n")
                          field(INP2, "F:tiny") field(INP3, "F:s") field(INP4, "F:nothere") }
record(printf, "F:const") { field(FMT, "%d %s %f %ls %s") field(INP0, "12") field(INP1, "const")
                            field(INP2, "2.5") field(INP3, {const: "json"}) field(INP4, "") }
record(printf, "F:end") { field(FMT, "abc %") }
record(printf, "F:none") { }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

RECORDS = ["F:p", "F:star", "F:bad", "F:num", "F:ten", "F:lls", "F:short", "F:chr", "F:const", "F:end",
           "F:none"]
FIELDS = [f"{rec}.{fld}" for rec in RECORDS for fld in ("LEN", "SIZV", "UDF", "SEVR")] + ["F:sink"]
MONITORED = ["F:p", "F:p.LEN", "F:star", "F:lls", "F:chr", "F:none", "F:none.LEN", "F:sink", "F:chars",
             "P:end"]
PUTS = (
    [(f"{rec}.PROC", "1") for rec in RECORDS]
    + [("F:l", "7"), ("F:d", "-0.5"), ("F:p.PROC", "1"), ("F:s", "bye"), ("F:p.PROC", "1")]
    # (two processings whose first failed link differs are left out: rsrv posts DBE_ALARM for the new
    # alarm message, "field INPn", which this IOC's links do not set)
    + [("F:none.FMT", "no conversions"), ("F:none.FMT", "%s and %d"), ("F:none.INP0", "F:s"),
       ("F:none.INP1", "F:n"), ("F:none.PROC", "1"), ("F:none.IVLS", "--"), ("F:none.INP1", "F:gone"),
       ("F:none.PROC", "1"), ("F:none.INP0", "F:d"), ("F:none.INP1", "F:big"), ("F:none.FMT", "%.3f %e"),
       ("F:none.FMT", "")]
    + [("F:star.INP0", "-9"), ("F:star.PROC", "1"), ("F:star.INP1", "F:n"), ("F:star.PROC", "1")]
    + [("F:p.VAL", "ignored"), ("F:lls.PROC", "1")]
)

READS = [caget(dbr, pvs) for dbr, pvs in (
    ("DBR_TIME_STRING", RECORDS), ("DBR_CTRL_STRING", RECORDS), ("DBR_TIME_DOUBLE", FIELDS))] + [
    ("caget", "-w", "5", "-S", *[f"{rec}.VAL$" for rec in RECORDS], "F:chars"),
    ("caget", "-w", "5", "-d", "DBR_CHAR", "F:p.VAL$", "F:lls"),
    ("caget", "-w", "5", "-#", "5", "-d", "DBR_CHAR", "F:p.VAL$", "F:short.VAL$")]


def test_printf_matches_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_put_sequence_matches(pair, READS, MONITORED, PUTS)


def test_printf_field_table_and_metadata_match_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_same_field_tables(pair, {"F:p": "printf", "F:none": "printf"})
        pair.assert_same("caget", "-w", "5", "-d", "DBR_CTRL_ENUM", "F:p.DTYP")
        pair.assert_same("cainfo", "-w", "5", "F:p", "F:p.VAL$", "F:lls.VAL$", "F:none", "F:p.FMT$")


# --- our side alone ---------------------------------------------------------------------------------------

def text(db, name: str) -> str:
    db.records[name].process()
    return db.records[name].VAL


@pytest.mark.parametrize(("fmt", "inputs", "expected"), [
    ("%d|%5.1f|%s", ["F:l", "F:d", "F:s"], "-42|  3.1|hello"),
    # SIZV 41: forty characters at most
    ("%x %o %#o %u", ["F:l"] * 4, "ffffffd6 37777777726 037777777726 429496"),
    ("%hhd %hd %lld %c", ["F:l"] * 4, "-42 -42 -42 \udcd6"),
    ("%*d|%-*d|", ["5", "F:l", "5", "F:l"], "  -42|-42  |"),
    ("%q %d %", ["F:l"], "%q -42 "),
    ("%d %d", ["F:l"], "-42 LNK"),
])
def test_conversions_read_the_next_link_as_their_c_type(tmp_path, fmt, inputs, expected):
    links = " ".join(f'field(INP{i}, "{source}")' for i, source in enumerate(inputs))
    db = load_db(DB + f'record(printf, "F:t") {{ field(FMT, "{fmt}") {links} }}\n', tmp_path)
    assert text(db, "F:t") == expected


def test_sizv_cuts_val_and_len_counts_the_nul(tmp_path):
    db = load_db(DB, tmp_path)
    assert text(db, "F:short") == "0123456789abcde"
    assert db.records["F:short"].LEN == 16


def test_a_link_that_does_not_read_prints_ivls(tmp_path):
    db = load_db(DB, tmp_path)
    chan = db.lookup("F:none.FMT")
    chan.write(ChannelType.STRING, 1, encode_payload(ChannelType.STRING, ["<%d>"]))
    assert db.records["F:none"].VAL == "<LNK>"
