"""int64in and int64out: 64-bit integer records (int64inRecord.c, int64outRecord.c).

CA has no 64-bit integer type: a DBF_INT64 field is served as DOUBLE (exact up to 2**53), and read as a
string it prints every digit.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from caproto.constants import DBE_LOG, DBE_VALUE, AlarmSeverity, AlarmStatus
from caproto.convert import values_for_put
from caproto.dbr import ChannelType
from ioc import alarms

from . import RecordType, register
from .common import (
    COMMON_FIELDS,
    SIMM_NO,
    SIMM_YES,
    constant,
    get_simm,
    init_simm,
    limit_alarm_fields,
    require_soft_device,
    simulate_now,
    simulation_fields,
    special_simm,
    stamp_simm,
    unchecked_write,
    write_value,
)
from .fields import DBF, SPC, Field

if TYPE_CHECKING:
    from ioc.database import Record

_LIMIT_FIELDS: tuple[Field, ...] = (
    *limit_alarm_fields(DBF.INT64, severity_prop=False),
    Field("HYST", DBF.INT64),
)

_LAST_FIELDS: tuple[Field, ...] = (
    Field("ADEL", DBF.INT64),
    Field("MDEL", DBF.INT64),
    Field("LALM", DBF.INT64, special=SPC.NOMOD),
    Field("ALST", DBF.INT64, special=SPC.NOMOD),
    Field("MLST", DBF.INT64, special=SPC.NOMOD),
)

INT64IN_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.INT64, pp=True),
    Field("INP", DBF.INLINK),
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("HOPR", DBF.INT64, prop=True),
    Field("LOPR", DBF.INT64, prop=True),
    *_LIMIT_FIELDS,
    Field("AFTC", DBF.DOUBLE),
    Field("AFVL", DBF.DOUBLE, special=SPC.NOMOD),
    *_LAST_FIELDS,
    *simulation_fields(DBF.INLINK, Field("SVAL", DBF.INT64)),
)

INT64OUT_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.INT64, pp=True),
    Field("OUT", DBF.OUTLINK),
    Field("DOL", DBF.INLINK),
    Field("OMSL", DBF.MENU, menu="menuOmsl"),
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("DRVH", DBF.INT64, pp=True, prop=True),
    Field("DRVL", DBF.INT64, pp=True, prop=True),
    Field("HOPR", DBF.INT64, prop=True),
    Field("LOPR", DBF.INT64, prop=True),
    *_LIMIT_FIELDS,
    *_LAST_FIELDS,
    *simulation_fields(DBF.OUTLINK),
    Field("IVOA", DBF.MENU, menu="menuIvoa"),
    Field("IVOV", DBF.INT64),
)

_INT64IN_LIMITED = frozenset({"VAL", "HIHI", "HIGH", "LOW", "LOLO", "LALM", "ALST", "MLST", "SVAL"})
_INT64OUT_LIMITED = _INT64IN_LIMITED - {"SVAL"}
_DEVICES = ("Soft Channel", "Async Soft Channel")
_INT64_MIN = -(1 << 63)
_OMSL_CLOSED_LOOP = 1
_IVOA_CONTINUE, _IVOA_SET_IVOV = 0, 2


def _changed(last: int, value: int, deadband: int) -> bool:
    # DELTA as an unsigned 64-bit number (exact in Python) against the deadband; a negative one posts all
    return deadband < 0 or abs(last - value) > deadband


def _as_int64(value: object) -> int:
    """A value of another field type stored into an epicsInt64, as the C conversions do: integers keep
    their low 64 bits, doubles truncate (NaN and doubles out of range give INT64_MIN, as x86-64 does),
    text is parsed as a put of it would be."""
    if isinstance(value, str):
        return int(values_for_put([value], ChannelType.STRING, ChannelType.DOUBLE, field_dtype=np.int64)[0])
    if isinstance(value, (int, np.integer)):
        return (int(value) + (1 << 63)) % (1 << 64) - (1 << 63)
    number = float(value)
    if not math.isfinite(number) or not -(2.0 ** 63) <= number < 2.0 ** 63:
        return _INT64_MIN
    return int(number)


def constant_int64(rec: Record, name: str) -> int | None:
    """recGblInitConstantLink(DBF_INT64): an integer constant keeps every digit (not through a double)."""
    entry = rec._links.get(name)
    value = entry[0].value if entry is not None and entry[1] is None else None
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool):
        return value if _INT64_MIN <= value < -_INT64_MIN else None
    number = constant(rec, name, DBF.INT64)
    return None if number is None else _as_int64(number)


def get_int64(rec: Record, name: str) -> int | None:
    """dbGetLink(name, DBR_INT64): the source's value as a 64-bit integer, every digit kept (a link
    read goes through DOUBLE, CA's type for it, which keeps only 53 bits); None as Record.get_link."""
    value = rec.get_link(name, DBF.DOUBLE)
    if value is None:
        return None
    _, source, sfield = rec._links[name]
    stored = getattr(source, sfield.name, None) if sfield is not None else None
    if isinstance(stored, (int, np.integer, str)) and not sfield.is_link:
        try:
            return _as_int64(stored)
        except ValueError:
            alarms.link_alarm(rec, name)
            return None
    return _as_int64(value)


def monitor_int64(rec: Record) -> None:
    mask = alarms.reset_alarms(rec)
    if _changed(rec.MLST, rec.VAL, rec.MDEL):
        mask |= DBE_VALUE
        rec.MLST = rec.VAL
    if _changed(rec.ALST, rec.VAL, rec.ADEL):
        mask |= DBE_LOG
        rec.ALST = rec.VAL
    if mask:
        rec.post("VAL", mask)


def _units(rec: Record, fld: Field) -> str:
    return rec.EGU if fld.dbf is DBF.INT64 else ""


# The limits go out as doubles (dbr_grDouble, ...): a client asking for DBR_CTRL_LONG gets each converted
# from the double, as the C IOC's cast does, not the 64-bit integer cut to 32 bits.

def _display_limits(fields: frozenset[str]):
    def hook(rec: Record, fld: Field) -> tuple[float, float] | None:
        return (float(rec.HOPR), float(rec.LOPR)) if fld.name in fields else None
    return hook


def _alarm_limits(rec: Record, fld: Field) -> tuple[float, float, float, float] | None:
    # unlike longin's, every limit whatever its severity
    if fld.name != "VAL":
        return None
    return float(rec.HIHI), float(rec.HIGH), float(rec.LOW), float(rec.LOLO)


# --- int64in ---------------------------------------------------------------------------------------------

def init_int64in(rec: Record) -> None:
    require_soft_device(rec, _DEVICES)
    init_simm(rec)
    sval = constant_int64(rec, "SIOL")
    if sval is not None:
        rec.SVAL = sval
    val = constant_int64(rec, "INP")
    if val is not None:
        rec.VAL = val
        rec.UDF = 0
    rec.MLST = rec.ALST = rec.LALM = rec.VAL


def _read_int64in(rec: Record) -> bool | None:
    """readValue: whether it succeeded (None: SDLY's first pass, the processing completes later)."""
    if not rec.PACT:
        get_simm(rec)
    simm = rec.SIMM
    if simm == SIMM_NO:
        if rec.link_is_constant("INP"):
            return True
        value = get_int64(rec, "INP")
        if value is None:
            return False
        rec.VAL = value
        return True
    if simm == SIMM_YES:
        rec.set_sevr(AlarmStatus.SIMM, rec.SIMS)
        if not simulate_now(rec):
            return None
        rec.PACT = 0
        if not rec.link_is_constant("SIOL"):
            value = get_int64(rec, "SIOL")
            if value is None:
                return False
            rec.SVAL = value
        rec.VAL = rec.SVAL
        return True
    rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
    return False


def process_int64in(rec: Record) -> int | None:
    ok = _read_int64in(rec)
    if ok is None:
        return None
    rec.PACT = 1
    stamp_simm(rec, siol=True)
    if ok:
        rec.UDF = 0
    alarms.limit_alarms(rec)
    monitor_int64(rec)
    rec.fwd_link()
    rec.PACT = 0
    return None if ok else -1       # readValue's failure is the processing's


register(RecordType(
    name="int64in",
    fields=INT64IN_FIELDS,
    process=process_int64in,
    init=init_int64in,
    devices=_DEVICES,
    special=special_simm,
    units=_units,
    graphic=_display_limits(_INT64IN_LIMITED),
    control=_display_limits(_INT64IN_LIMITED),
    alarm=_alarm_limits,
))


# --- int64out --------------------------------------------------------------------------------------------

def init_int64out(rec: Record) -> None:
    require_soft_device(rec, _DEVICES)
    init_simm(rec)
    val = constant_int64(rec, "DOL")
    if val is not None:
        rec.VAL = val
        rec.UDF = 0
    rec.MLST = rec.ALST = rec.LALM = rec.VAL


def _write_int64out(rec: Record) -> int | None:
    """writeValue: VAL to OUT, or to SIOL in simulation (with SDLY: on the second pass); the failure
    status."""
    return write_value(rec, lambda rec: unchecked_write(rec, rec.put_link("OUT", DBF.INT64, rec.VAL)),
                       lambda rec, simm: rec.put_link("SIOL", DBF.INT64, rec.VAL))


def process_int64out(rec: Record) -> int | None:
    pact = rec.PACT     # set: SDLY's second pass, which only writes and completes
    status = None       # a failed DOL read stays the status unless an output is written
    if not pact:
        value = rec.VAL
        ok = True
        if not rec.link_is_constant("DOL") and rec.OMSL == _OMSL_CLOSED_LOOP:
            fetched = get_int64(rec, "DOL")
            if fetched is None:
                ok = False
                status = -1
            else:
                value = fetched
                rec.UDF = 0
        if ok:
            if rec.DRVH > rec.DRVL:
                value = min(max(value, rec.DRVL), rec.DRVH)
            rec.VAL = value
        # stamped before the write, so that a record fetching this one's TIME through TSEL sees it
        stamp_simm(rec, siol=False)
    alarms.limit_alarms(rec, filtered=False)
    if rec.NSEV < AlarmSeverity.INVALID or rec.IVOA == _IVOA_CONTINUE:
        status = _write_int64out(rec)
    elif rec.IVOA == _IVOA_SET_IVOV:
        if not pact:
            rec.VAL = rec.IVOV
        status = _write_int64out(rec)
    if rec.PACT and not pact:
        return None     # SDLY: processing completes later
    rec.PACT = 1
    if pact:
        stamp_simm(rec, siol=False)
    monitor_int64(rec)
    rec.fwd_link()
    rec.PACT = 0
    return status


def _int64out_control(rec: Record, fld: Field) -> tuple[float, float] | None:
    if fld.name not in _INT64OUT_LIMITED:
        return None
    if rec.DRVH > rec.DRVL:
        return float(rec.DRVH), float(rec.DRVL)
    return float(rec.HOPR), float(rec.LOPR)


register(RecordType(
    name="int64out",
    fields=INT64OUT_FIELDS,
    process=process_int64out,
    init=init_int64out,
    devices=_DEVICES,
    special=special_simm,
    units=_units,
    graphic=_display_limits(_INT64OUT_LIMITED),
    control=_int64out_control,
    alarm=_alarm_limits,
))
