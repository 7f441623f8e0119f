"""The scalar read shortcut (FieldChannel._encode_scalar) against the general encoder, field by field.

Monitor updates and reads of a number in its own type (DBR_DOUBLE, TIME_LONG, STS_ENUM, ...) skip the
conversion machinery; every such read must give the bytes the general path gives."""
from __future__ import annotations

import math

import pytest

from caproto.dbr import ChannelType
from ioc.config import load_config
from ioc.database import Database
from ioc.records.fields import DBF

DB = """
record(ai, "ai") { field(VAL, "2.5") field(HIHI, "10") field(HHSV, "MAJOR") field(PREC, "3") }
record(ao, "ao") { field(VAL, "-1.25") field(DRVH, "100") field(DRVL, "-100") }
record(bi, "bi") { field(VAL, "1") field(ZNAM, "Off") field(ONAM, "On") field(OSV, "MINOR") }
record(bo, "bo") { field(VAL, "0") }
record(mbbi, "mbbi") { field(VAL, "2") field(ZRST, "a") field(ONST, "b") }
record(mbbo, "mbbo") { field(VAL, "17") }
record(longin, "li") { field(VAL, "-2147483648") field(HIGH, "5") field(HSV, "MINOR") }
record(longout, "lo") { field(VAL, "2147483647") }
record(calc, "calc") { field(CALC, "A+B") field(A, "1") field(B, "2") }
record(stringin, "si") { field(VAL, "text") }
record(waveform, "wf") { field(FTVL, "DOUBLE") field(NELM, "4") }
record(mbbo, "mbbo_states") { field(ZRST, "zero") field(ONST, "one") field(VAL, "1") }
"""

ODD = {DBF.DOUBLE: [math.nan, -math.nan, -math.inf, -0.0, 1e300, 5e-324, 3, 1 << 60],
       DBF.LONG: [-(1 << 31), (1 << 31) - 1, 0], DBF.SHORT: [-32768, 32767], DBF.USHORT: [0, 65535],
       DBF.ENUM: [0, 65535, 15], DBF.MENU: [0, 3]}
FAST_TYPES = [t for t in ChannelType if t <= ChannelType.TIME_DOUBLE]


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "scalar.db"
    path.write_text(DB)
    db = Database.from_config(load_config(path))
    for rec in db.records.values():
        db.process(rec)
    return db


def fast_channels(db: Database):
    for name, rec in db.records.items():
        for fld in rec.rtype.fields:
            chan = db.lookup(f"{name}.{fld.name}")
            if chan is not None and chan._fast_reads:
                yield chan


def test_the_shortcut_covers_the_common_fields(database):
    names = {chan.name for chan in fast_channels(database)}
    assert {"ai.VAL", "ai.HIHI", "ai.SEVR", "bi.VAL", "li.VAL", "mbbo.VAL", "calc.VAL", "ao.PREC",
            "ai.SCAN", "mbbo_states.VAL"} <= names
    assert not {"si.VAL", "wf.VAL", "ai.EGU", "ai.INP", "ai.DESC"} & names


@pytest.mark.parametrize("values", [None, "odd"])
def test_every_fast_read_gives_the_general_encoding(database, values):
    chans = list(fast_channels(database))
    if values == "odd":
        # the ends of each type's range, special floats, and alarm state in the metadata
        for i, chan in enumerate(chans):
            setattr(chan.record, chan._fname, ODD[chan.dbf][i % len(ODD[chan.dbf])])
            chan.record.STAT, chan.record.SEVR = 3, 2
            chan.record._gen += 1
    checked = 0
    for chan in chans:
        for data_type in FAST_TYPES:
            if data_type not in chan._fast_reads:
                continue
            for count in (0, 1):
                try:
                    general = chan._encode_general(data_type, count)
                except Exception as exc:     # the general path refuses it: so must the read
                    with pytest.raises(type(exc)):
                        chan._encode(data_type, count)
                    continue
                assert chan._encode(data_type, count) == general, (chan.name, data_type, count)
                checked += 1
    assert checked > 300
