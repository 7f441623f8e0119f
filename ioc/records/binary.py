"""bi and bo: binary input and output records (biRecord.c, boRecord.c with the soft device supports)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from caproto.constants import DBE_LOG, DBE_VALUE, AlarmSeverity, AlarmStatus
from ioc import alarms

from . import RecordType, register
from .common import (
    COMMON_FIELDS,
    SIMM_RAW,
    SIMM_YES,
    constant,
    device,
    init_simm,
    read_state_siol,
    read_value,
    require_soft_device,
    simulation_fields,
    special_simm,
    stamp_simm,
    write_state_siol,
    write_value,
)
from .fields import DBF, SPC, Field

if TYPE_CHECKING:
    from ioc.database import Record

BI_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("INP", DBF.INLINK),
    Field("VAL", DBF.ENUM, pp=True),
    Field("ZSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("OSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("COSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("ZNAM", DBF.STRING, size=26, pp=True, prop=True),
    Field("ONAM", DBF.STRING, size=26, pp=True, prop=True),
    Field("RVAL", DBF.ULONG, pp=True),
    Field("ORAW", DBF.ULONG, special=SPC.NOMOD),
    Field("MASK", DBF.ULONG, special=SPC.NOMOD),
    Field("LALM", DBF.USHORT, special=SPC.NOMOD),
    Field("MLST", DBF.USHORT, special=SPC.NOMOD),
    *simulation_fields(DBF.INLINK, Field("SVAL", DBF.ULONG), simm_menu="menuSimm"),
)

BO_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.ENUM, pp=True),
    Field("OMSL", DBF.MENU, menu="menuOmsl"),
    Field("DOL", DBF.INLINK),
    Field("OUT", DBF.OUTLINK),
    Field("HIGH", DBF.DOUBLE),
    Field("ZNAM", DBF.STRING, size=26, pp=True, prop=True),
    Field("ONAM", DBF.STRING, size=26, pp=True, prop=True),
    Field("RVAL", DBF.ULONG, pp=True),
    Field("ORAW", DBF.ULONG, special=SPC.NOMOD),
    Field("MASK", DBF.ULONG, special=SPC.NOMOD),
    Field("RPVT", DBF.NOACCESS, special=SPC.NOMOD),
    Field("WDPT", DBF.NOACCESS, special=SPC.NOMOD),
    Field("ZSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("OSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("COSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("RBV", DBF.ULONG, special=SPC.NOMOD),
    Field("ORBV", DBF.ULONG, special=SPC.NOMOD),
    Field("MLST", DBF.USHORT, special=SPC.NOMOD),
    Field("LALM", DBF.USHORT, special=SPC.NOMOD),
    *simulation_fields(DBF.OUTLINK, simm_menu="menuSimm"),
    Field("IVOA", DBF.MENU, menu="menuIvoa"),
    Field("IVOV", DBF.USHORT),
)

_OMSL_CLOSED_LOOP = 1
_IVOA_CONTINUE, _IVOA_SET_IVOV = 0, 2
# bo's HIGH (seconds to hold 1) reads with these units, precision and control limits (boRecord.c).
HIGH_UNITS, HIGH_PRECISION, HIGH_LIMIT = "s", 2, 100000.0


def enum_strs(rec: Record, fld: Field) -> tuple[str, ...]:
    """get_enum_strs: both names, or only ZNAM when ONAM is empty and ZNAM is not."""
    if rec.ONAM or not rec.ZNAM:
        return (rec.ZNAM, rec.ONAM)
    return (rec.ZNAM,)


def enum_table(rec: Record, fld: Field) -> tuple[tuple[str, ...], str]:
    return (rec.ZNAM, rec.ONAM), "Illegal_Value"


def put_enum_table(rec: Record, fld: Field) -> tuple[str, ...]:
    return (rec.ZNAM, rec.ONAM)


def state_alarms(rec: Record, bi_rules: bool) -> None:
    """checkAlarms of bi/bo: UDF, ZSV/OSV for the state, COSV on a change of state.

    ``bi_rules``: bi's checks stop after a UDF alarm and for a VAL above 1; bo's go on, and take any
    VAL but 0 for the one state (OSV)."""
    val = rec.VAL
    if rec.UDF:
        rec.set_sevr(AlarmStatus.UDF, rec.UDFS)
        if bi_rules:
            return
    if val > 1 and bi_rules:
        return
    rec.set_sevr(AlarmStatus.STATE, rec.ZSV if val == 0 else rec.OSV)
    if val == rec.LALM:
        return
    rec.set_sevr(AlarmStatus.COS, rec.COSV)
    rec.LALM = val


def monitor_binary(rec: Record, raw_fields: tuple[tuple[str, str], ...]) -> None:
    mask = alarms.reset_alarms(rec)
    if rec.MLST != rec.VAL:
        mask |= DBE_VALUE | DBE_LOG
        rec.MLST = rec.VAL
    if mask:
        rec.post("VAL", mask)
    for field, last in raw_fields:
        if getattr(rec, last) != getattr(rec, field):
            rec.post(field, mask | DBE_VALUE | DBE_LOG)
            setattr(rec, last, getattr(rec, field))


# --- bi ------------------------------------------------------------------------------------------------

def special_binary(rec: Record, fld: Field, after: bool) -> None:
    special_simm(rec, fld, after)


def init_bi(rec: Record) -> None:
    require_soft_device(rec)
    init_simm(rec)
    sval = constant(rec, "SIOL", DBF.USHORT)
    if sval is not None:
        rec.SVAL = sval
    if device(rec) == "Raw Soft Channel":
        raw = constant(rec, "INP", DBF.ULONG)
        if raw is not None:
            rec.RVAL = raw
    else:
        val = constant(rec, "INP", DBF.ENUM)
        if val is not None:
            rec.VAL = val
            rec.UDF = 0
    rec.MLST = rec.LALM = rec.VAL
    rec.ORAW = rec.RVAL


def _read_bi(rec: Record) -> int:
    if device(rec) == "Raw Soft Channel":
        if rec.link_is_constant("INP"):
            return 0
        raw = rec.get_link("INP", DBF.ULONG)
        if raw is None:
            return -1
        rec.RVAL = raw & rec.MASK if rec.MASK else raw
        return 0
    if not rec.link_is_constant("INP"):
        val = rec.get_link("INP", DBF.ENUM)
        if val is None:
            return -1
        rec.VAL = val
    # a constant link "reads" successfully without a value, which still clears UDF
    rec.UDF = 0
    return 2


def _read_value_bi(rec: Record) -> int:
    """readValue: the device's read, or SIOL in simulation (0 = convert RVAL, 2 = VAL set, -1 = failed)."""
    return read_value(rec, _read_bi, lambda rec, simm: read_state_siol(rec, simm, raw_mask=0xFFFF),
                      (SIMM_YES, SIMM_RAW), pending=0)


def process_bi(rec: Record) -> int | None:
    pact = rec.PACT
    status = _read_value_bi(rec)
    if not pact and rec.PACT:
        return None     # SDLY: processing completes later
    rec.PACT = 1
    stamp_simm(rec, siol=True)
    if status == 0:
        rec.VAL = 0 if rec.RVAL == 0 else 1
        rec.UDF = 0
    state_alarms(rec, bi_rules=True)
    monitor_binary(rec, (("RVAL", "ORAW"),))
    rec.fwd_link()
    rec.PACT = 0
    return status if status < 0 else None      # readValue's failure is the processing's


register(RecordType(
    name="bi",
    fields=BI_FIELDS,
    process=process_bi,
    init=init_bi,
    devices=("Soft Channel", "Raw Soft Channel", "Async Soft Channel", "Db State"),
    special=special_binary,
    enum_strs=enum_strs,
    enum_table=enum_table,
    put_enum_table=put_enum_table,
))


# --- bo ------------------------------------------------------------------------------------------------

def init_bo(rec: Record) -> None:
    require_soft_device(rec)
    init_simm(rec)
    ival = constant(rec, "DOL", DBF.USHORT)
    if ival is not None:
        rec.VAL = int(bool(ival))
        rec.UDF = 0
    rec.MLST = rec.VAL
    rec.RVAL = (rec.MASK if rec.VAL else 0) if rec.MASK else rec.VAL
    rec.LALM = rec.VAL
    rec.ORAW = rec.RVAL
    rec.ORBV = rec.RBV


def _to_raw(rec: Record) -> None:
    rec.RVAL = (rec.MASK if rec.VAL else 0) if rec.MASK else rec.VAL


def _write_bo(rec: Record) -> int | None:
    if device(rec) == "Raw Soft Channel":
        return rec.put_link("OUT", DBF.LONG, rec.RVAL)
    return rec.put_link("OUT", DBF.USHORT, rec.VAL)


def _write_value_bo(rec: Record) -> int | None:
    """writeValue: the device's write, or VAL (RAW: RVAL) to SIOL in simulation; the failure status."""
    return write_value(rec, _write_bo, write_state_siol, (SIMM_YES, SIMM_RAW))


def process_bo(rec: Record) -> int | None:
    pact = rec.PACT
    status = None       # a failed DOL read stays the status unless an output is written
    if not pact:
        if not rec.link_is_constant("DOL") and rec.OMSL == _OMSL_CLOSED_LOOP:
            rec.PACT = 1
            val = rec.get_link("DOL", DBF.USHORT)
            rec.PACT = 0
            if val is not None:
                rec.VAL = val
                rec.UDF = 0
            else:
                rec.set_sevr(AlarmStatus.LINK, AlarmSeverity.INVALID)
                status = -1
        _to_raw(rec)
        # stamped before the write, so that a record fetching this one's TIME through TSEL sees it
        stamp_simm(rec, siol=False)
    state_alarms(rec, bi_rules=False)
    if rec.NSEV < AlarmSeverity.INVALID or rec.IVOA == _IVOA_CONTINUE:
        status = _write_value_bo(rec)
    elif rec.IVOA == _IVOA_SET_IVOV:
        if not rec.PACT:
            rec.VAL = rec.IVOV
            _to_raw(rec)
        status = _write_value_bo(rec)
    if not pact and rec.PACT:
        return None     # SDLY: processing completes later
    rec.PACT = 1
    if pact:
        stamp_simm(rec, siol=False)
    if rec.VAL == 1 and rec.HIGH > 0:
        rec.db.call_later(rec.HIGH, lambda: _momentary_end(rec))
    monitor_binary(rec, (("RVAL", "ORAW"), ("RBV", "ORBV")))
    rec.fwd_link()
    rec.PACT = 0
    return status


def _momentary_end(rec: Record) -> None:
    # HIGH seconds after a 1 was written, the output returns to 0 (re-armed while still 1 and busy).
    if rec.PACT:
        if rec.VAL == 1 and rec.HIGH > 0:
            rec.db.call_later(rec.HIGH, lambda: _momentary_end(rec))
        return
    rec.VAL = 0
    rec.db.process(rec)


def _bo_units(rec: Record, fld: Field) -> str:
    return HIGH_UNITS if fld.name == "HIGH" else ""


def _bo_precision(rec: Record, fld: Field) -> int | None:
    return HIGH_PRECISION if fld.name == "HIGH" else None


def _bo_control(rec: Record, fld: Field) -> tuple[float, float] | None:
    return (HIGH_LIMIT, 0.0) if fld.name == "HIGH" else None


register(RecordType(
    name="bo",
    fields=BO_FIELDS,
    process=process_bo,
    init=init_bo,
    devices=("Soft Channel", "Raw Soft Channel", "Async Soft Channel", "General Time", "Db State"),
    special=special_binary,
    units=_bo_units,
    precision=_bo_precision,
    control=_bo_control,
    enum_strs=enum_strs,
    enum_table=enum_table,
    put_enum_table=put_enum_table,
))
