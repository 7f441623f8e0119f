"""Field values in a .db file read as softIoc's dbPutStringNum reads them.

Doubles take epicsParseFloat64 (hex, "inf", "nan", "3.", "0x1p3"); integers take epicsParseInt64 or
epicsParseUInt64 with C's prefixes ("0x10" is 16, "010" is 8) and, as softIoc converts laxly, a number
too large for the field is cast into it ("70000" in a SHORT is 4464, "-1" in a USHORT 65535). The empty
text is 0, and white space around a number is ignored.
"""
from __future__ import annotations

from differential import serve_both

INTEGERS = {"hex": "0x10", "oct": "010", "neg": "-1", "sp": " 5", "big": "70000", "plus": "+3", "empty": "",
            "trail": "5 ", "bigneg": "-70000", "huge": "0x1ffffffff", "negoct": "-010"}
DOUBLES = {**INTEGERS, "exp": "1e3", "frac": "1.5", "inf": "inf", "nan": "nan", "dot": "3.", "hexf": "0x1p3",
           "ninf": "-Infinity", "tiny": "1e-30", "dbig": "1e300"}
DB = "".join(
    [f'record(ai, "A:{k}") {{ field(VAL, "{v}") field(HOPR, "{v}") field(ASLO, "{v}") }}\n'
     for k, v in DOUBLES.items()]
    + [f'record(longout, "L:{k}") {{ field(VAL, "{v}") field(DRVH, "{v}") field(PHAS, "{v}") }}\n'
       f'record(mbbo, "M:{k}") {{ field(ZRVL, "{v}") field(NOBT, "{v}") }}\n' for k, v in INTEGERS.items()])
PVS = ([f"A:{k}{f}" for k in DOUBLES for f in ("", ".HOPR", ".ASLO")]
       + [f"L:{k}{f}" for k in INTEGERS for f in ("", ".DRVH", ".PHAS")]
       + [f"M:{k}{f}" for k in INTEGERS for f in (".ZRVL", ".NOBT")])


def test_db_field_values_are_read_as_softioc_reads_them(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        pair.assert_same("caget", "-w", "5", *PVS)
        pair.assert_same("caget", "-w", "5", "-d", "DBR_DOUBLE", *PVS)
