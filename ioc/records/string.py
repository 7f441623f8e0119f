"""stringin and stringout: 40-character string records (stringinRecord.c, stringoutRecord.c)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from caproto.constants import DBE_LOG, DBE_VALUE, AlarmSeverity, AlarmStatus
from ioc import alarms

from . import RecordType, register
from .common import COMMON_FIELDS, constant, require_soft_device, simulation_fields
from .fields import DBF, SPC, Field

if TYPE_CHECKING:
    from ioc.database import Record

STRINGIN_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.STRING, size=40, pp=True),
    Field("OVAL", DBF.STRING, size=40, special=SPC.NOMOD),
    Field("INP", DBF.INLINK),
    Field("MPST", DBF.MENU, menu="stringinPOST"),
    Field("APST", DBF.MENU, menu="stringinPOST"),
    *simulation_fields(DBF.INLINK, Field("SVAL", DBF.STRING, size=40, pp=True)),
)

STRINGOUT_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.STRING, size=40, pp=True),
    Field("OVAL", DBF.STRING, size=40, special=SPC.NOMOD),
    Field("DOL", DBF.INLINK),
    Field("OMSL", DBF.MENU, menu="menuOmsl"),
    Field("OUT", DBF.OUTLINK),
    Field("MPST", DBF.MENU, menu="stringoutPOST"),
    Field("APST", DBF.MENU, menu="stringoutPOST"),
    *simulation_fields(DBF.OUTLINK),
    Field("IVOA", DBF.MENU, menu="menuIvoa"),
    Field("IVOV", DBF.STRING, size=40),
)

_POST_ALWAYS = 1          # stringinPOST / stringoutPOST: "On Change", "Always"
_OMSL_CLOSED_LOOP = 1
_IVOA_CONTINUE, _IVOA_SET_IVOV = 0, 2
_SIMM_NO, _SIMM_YES = 0, 1


def monitor_string(rec: Record) -> None:
    mask = alarms.reset_alarms(rec)
    if rec.OVAL != rec.VAL:
        mask |= DBE_VALUE | DBE_LOG
        rec.OVAL = rec.VAL
    if rec.MPST == _POST_ALWAYS:
        mask |= DBE_VALUE
    if rec.APST == _POST_ALWAYS:
        mask |= DBE_LOG
    if mask:
        rec.post("VAL", mask)


# --- stringin --------------------------------------------------------------------------------------------

def init_stringin(rec: Record) -> None:
    require_soft_device(rec, ("Soft Channel", "Async Soft Channel"))
    sval = constant(rec, "SIOL", DBF.STRING)
    if sval is not None:
        rec.SVAL = sval[:39]
    val = constant(rec, "INP", DBF.STRING)
    if val is not None:
        rec.VAL = val[:39]
        rec.UDF = 0
    rec.OVAL = rec.VAL


def _read_stringin(rec: Record) -> int | None:
    """readValue: None, or -1 when the read failed (a link, or SIMM out of range)."""
    simm = rec.get_link("SIML", DBF.MENU)
    if simm is not None:
        rec.SIMM = simm
    if rec.SIMM == _SIMM_YES:
        rec.set_sevr(AlarmStatus.SIMM, rec.SIMS)
        value = rec.get_link("SIOL", DBF.STRING)
        if value is not None:
            rec.SVAL = value
        if value is not None or rec.link_is_constant("SIOL"):
            rec.VAL = rec.SVAL
            rec.UDF = 0
            return None
        return -1
    if rec.SIMM != _SIMM_NO:
        rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
        return -1
    if rec.link_is_constant("INP"):
        return None
    value = rec.get_link("INP", DBF.STRING)
    if value is None:
        return -1
    rec.VAL = value
    rec.UDF = 0
    return None


def process_stringin(rec: Record) -> int | None:
    status = _read_stringin(rec)
    rec.PACT = 1
    rec.stamp()
    monitor_string(rec)
    rec.fwd_link()
    rec.PACT = 0
    return status


register(RecordType(
    name="stringin",
    fields=STRINGIN_FIELDS,
    process=process_stringin,
    init=init_stringin,
    devices=("Soft Channel", "Async Soft Channel", "Soft Timestamp", "General Time", "getenv"),
))


# --- stringout -------------------------------------------------------------------------------------------

def init_stringout(rec: Record) -> None:
    require_soft_device(rec, ("Soft Channel", "Async Soft Channel"))
    val = constant(rec, "DOL", DBF.STRING)
    if val is not None:
        rec.VAL = val[:39]
        rec.UDF = 0
    rec.OVAL = rec.VAL


def _write_stringout(rec: Record) -> int | None:
    """writeValue: the failure status of the write, or None."""
    if rec.SIMM == _SIMM_YES:
        rec.set_sevr(AlarmStatus.SIMM, rec.SIMS)
        return rec.put_link("SIOL", DBF.STRING, rec.VAL)
    if rec.SIMM != _SIMM_NO:
        rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
        return -1
    return rec.put_link("OUT", DBF.STRING, rec.VAL)


def process_stringout(rec: Record) -> int | None:
    status = None       # a failed DOL read stays the status unless an output is written
    if not rec.link_is_constant("DOL") and rec.OMSL == _OMSL_CLOSED_LOOP:
        value = rec.get_link("DOL", DBF.STRING)
        if value is not None:
            rec.VAL = value
            rec.UDF = 0
        else:
            status = -1
    if rec.UDF:
        rec.set_sevr(AlarmStatus.UDF, rec.UDFS)
    rec.stamp()
    if rec.NSEV < AlarmSeverity.INVALID or rec.IVOA == _IVOA_CONTINUE:
        status = _write_stringout(rec)
    elif rec.IVOA == _IVOA_SET_IVOV:
        rec.VAL = rec.IVOV
        status = _write_stringout(rec)
    rec.PACT = 1
    monitor_string(rec)
    rec.fwd_link()
    rec.PACT = 0
    return status


register(RecordType(
    name="stringout",
    fields=STRINGOUT_FIELDS,
    process=process_stringout,
    init=init_stringout,
    devices=("Soft Channel", "Async Soft Channel", "stdio"),
))
