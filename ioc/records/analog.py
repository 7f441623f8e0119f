"""ai and ao: analog input and output records (aiRecord.c, aoRecord.c with the soft device supports)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from caproto.constants import DBE_LOG, DBE_VALUE, ECA, AlarmSeverity, AlarmStatus
from caproto.errors import CAError
from ioc import alarms

from . import RecordType, register
from .common import (
    ANALOG_LIMITED,
    COMMON_FIELDS,
    SIMM_NO,
    SIMM_RAW,
    SIMM_YES,
    analog_precision,
    c_unsigned,
    constant,
    device,
    device_time,
    display_limits,
    get_simm,
    init_simm,
    limit_alarm_fields,
    require_soft_device,
    simulate_now,
    simulated_time,
    simulation_fields,
    special_simm,
    value_alarm_limits,
    write_value,
)
from .fields import DBF, SPC, Field, FieldValueError

if TYPE_CHECKING:
    from ioc.database import Record

AI_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.DOUBLE, pp=True),
    Field("INP", DBF.INLINK),
    Field("PREC", DBF.SHORT, prop=True),
    Field("LINR", DBF.MENU, menu="menuConvert", special=SPC.LINCONV, pp=True),
    Field("EGUF", DBF.DOUBLE, special=SPC.LINCONV, pp=True),
    Field("EGUL", DBF.DOUBLE, special=SPC.LINCONV, pp=True),
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("HOPR", DBF.DOUBLE, prop=True),
    Field("LOPR", DBF.DOUBLE, prop=True),
    Field("AOFF", DBF.DOUBLE, pp=True),
    Field("ASLO", DBF.DOUBLE, initial="1", pp=True),
    Field("SMOO", DBF.DOUBLE),
    *limit_alarm_fields(DBF.DOUBLE),
    Field("HYST", DBF.DOUBLE),
    Field("AFTC", DBF.DOUBLE),
    Field("ADEL", DBF.DOUBLE),
    Field("MDEL", DBF.DOUBLE),
    Field("LALM", DBF.DOUBLE, special=SPC.NOMOD),
    Field("AFVL", DBF.DOUBLE, special=SPC.NOMOD),
    Field("ALST", DBF.DOUBLE, special=SPC.NOMOD),
    Field("MLST", DBF.DOUBLE, special=SPC.NOMOD),
    Field("ESLO", DBF.DOUBLE, initial="1", pp=True),
    Field("EOFF", DBF.DOUBLE, pp=True),
    Field("ROFF", DBF.ULONG, pp=True),
    Field("PBRK", DBF.NOACCESS, special=SPC.NOMOD),
    Field("INIT", DBF.SHORT, special=SPC.NOMOD),
    Field("LBRK", DBF.SHORT, special=SPC.NOMOD),
    Field("RVAL", DBF.LONG, pp=True),
    Field("ORAW", DBF.LONG, special=SPC.NOMOD),
    *simulation_fields(DBF.INLINK, Field("SVAL", DBF.DOUBLE), simm_menu="menuSimm"),
)

AO_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.DOUBLE, pp=True),
    Field("OVAL", DBF.DOUBLE),
    Field("OUT", DBF.OUTLINK),
    Field("OROC", DBF.DOUBLE),
    Field("DOL", DBF.INLINK),
    Field("OMSL", DBF.MENU, menu="menuOmsl"),
    Field("OIF", DBF.MENU, menu="aoOIF"),
    Field("PREC", DBF.SHORT, prop=True),
    Field("LINR", DBF.MENU, menu="menuConvert", special=SPC.LINCONV, pp=True),
    Field("EGUF", DBF.DOUBLE, special=SPC.LINCONV, pp=True),
    Field("EGUL", DBF.DOUBLE, special=SPC.LINCONV, pp=True),
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("ROFF", DBF.ULONG, pp=True),
    Field("EOFF", DBF.DOUBLE, pp=True),
    Field("ESLO", DBF.DOUBLE, initial="1", pp=True),
    Field("DRVH", DBF.DOUBLE, pp=True, prop=True),
    Field("DRVL", DBF.DOUBLE, pp=True, prop=True),
    Field("HOPR", DBF.DOUBLE, prop=True),
    Field("LOPR", DBF.DOUBLE, prop=True),
    Field("AOFF", DBF.DOUBLE, pp=True),
    Field("ASLO", DBF.DOUBLE, pp=True),
    *limit_alarm_fields(DBF.DOUBLE),
    Field("HYST", DBF.DOUBLE),
    Field("ADEL", DBF.DOUBLE),
    Field("MDEL", DBF.DOUBLE),
    Field("RVAL", DBF.LONG, pp=True),
    Field("ORAW", DBF.LONG, special=SPC.NOMOD),
    Field("RBV", DBF.LONG, special=SPC.NOMOD),
    Field("ORBV", DBF.LONG, special=SPC.NOMOD),
    Field("PVAL", DBF.DOUBLE, special=SPC.NOMOD),
    Field("LALM", DBF.DOUBLE, special=SPC.NOMOD),
    Field("ALST", DBF.DOUBLE, special=SPC.NOMOD),
    Field("MLST", DBF.DOUBLE, special=SPC.NOMOD),
    Field("PBRK", DBF.NOACCESS, special=SPC.NOMOD),
    Field("INIT", DBF.SHORT, special=SPC.NOMOD),
    Field("LBRK", DBF.SHORT, special=SPC.NOMOD),
    *simulation_fields(DBF.OUTLINK, simm_menu="menuSimm"),
    Field("IVOA", DBF.MENU, menu="menuIvoa"),
    Field("IVOV", DBF.DOUBLE),
    Field("OMOD", DBF.UCHAR, special=SPC.NOMOD),
)

_NO_CONVERSION, _SLOPE, _LINEAR = 0, 1, 2     # menuConvert; higher choices are breakpoint tables
_IVOA_CONTINUE, _IVOA_DONT_DRIVE, _IVOA_SET_IVOV = 0, 1, 2
_OMSL_CLOSED_LOOP = 1
_OIF_INCREMENTAL = 1
_INVALID = int(AlarmSeverity.INVALID)


def _check_linr(rec: Record) -> None:
    if rec.LINR > _LINEAR:
        raise FieldValueError("LINR", "breakpoint-table conversions are not supported; use NO CONVERSION, "
                                      "SLOPE or LINEAR")


# --- ai ------------------------------------------------------------------------------------------------

def init_ai(rec: Record) -> None:
    require_soft_device(rec)
    _check_linr(rec)
    init_simm(rec)
    sval = constant(rec, "SIOL", DBF.DOUBLE)
    if sval is not None:
        rec.SVAL = sval
    rec.INIT = 1
    if rec.ESLO == 1.0 and rec.EOFF == 0.0:
        rec.EOFF = rec.EGUL
    if device(rec) == "Raw Soft Channel":
        raw = constant(rec, "INP", DBF.LONG)
        if raw is not None:
            rec.RVAL = raw
    else:
        val = constant(rec, "INP", DBF.DOUBLE)
        if val is not None:
            rec.VAL = val
            rec.UDF = 0
    # aiRecord's init_record returns right after the device's init_record, before it would set
    # MLST/ALST/LALM/ORAW; every ai device support has one, so those start at 0.


def _read_ai(rec: Record) -> int | None:
    """readValue: 0 = convert RVAL, 2 = VAL already set, -1 = failed, None = SDLY's first pass (the
    processing completes later)."""
    if not rec.PACT:
        get_simm(rec)
    if rec.SIMM != SIMM_NO:
        return _read_simulated(rec)
    if rec.link_is_constant("INP"):
        return 2
    if device(rec) == "Raw Soft Channel":
        raw = rec.get_link("INP", DBF.LONG)
        if raw is None:
            return -1
        rec.RVAL = raw
        device_time(rec, "INP")
        return 0
    value = rec.get_link("INP", DBF.DOUBLE)
    if value is None:
        rec.smoothing = False
        return -1
    device_time(rec, "INP")
    if rec.SMOO != 0.0 and rec.smoothing and math.isfinite(rec.VAL):
        rec.VAL = value * (1.0 - rec.SMOO) + rec.VAL * rec.SMOO
    else:
        rec.VAL = value
    rec.UDF = 0
    rec.smoothing = True
    return 2


def _read_simulated(rec: Record) -> int | None:
    """readValue in simulation: SVAL from SIOL (a constant SIOL reads nothing and succeeds), then VAL
    (YES) or RVAL (RAW) from SVAL."""
    simm = rec.SIMM
    if simm != SIMM_YES and simm != SIMM_RAW:
        rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
        return -1
    rec.set_sevr(AlarmStatus.SIMM, rec.SIMS)
    if not simulate_now(rec):
        return None
    rec.PACT = 0
    if not rec.link_is_constant("SIOL"):
        value = rec.get_link("SIOL", DBF.DOUBLE)
        if value is None:
            return -1
        rec.SVAL = value
    if simm == SIMM_YES:
        rec.VAL = rec.SVAL
        return 2
    rec.RVAL = _floor_to_long(rec.SVAL)
    return 0


def _floor_to_long(value: float) -> int:
    """(epicsInt32)(long)floor(value) on x86-64: the low 32 bits, signed (0 for NaN, infinities and
    doubles beyond the 64-bit range)."""
    raw = c_unsigned(math.floor(value), 32) if math.isfinite(value) else 0
    return raw - 0x100000000 if raw & 0x80000000 else raw


def _convert_ai(rec: Record) -> None:
    val = float(rec.RVAL) + float(rec.ROFF)
    if rec.ASLO != 0.0:
        val *= rec.ASLO
    val += rec.AOFF
    if rec.LINR in (_LINEAR, _SLOPE):
        val = val * rec.ESLO + rec.EOFF
    if rec.SMOO != 0.0 and math.isfinite(rec.VAL):
        if rec.INIT:
            rec.VAL = val
        rec.VAL = val * (1.0 - rec.SMOO) + rec.VAL * rec.SMOO
    else:
        rec.VAL = val


def monitor_analog(rec: Record) -> int:
    """The VAL part of monitor(): alarm reset, MDEL/ADEL deadbands, post VAL; returns the mask."""
    mask = alarms.reset_alarms(rec)
    val = rec.VAL
    # check_deadband's rule, with the common case (both values finite) inline: this runs on every put.
    delta = rec.MLST - val
    if (abs(delta) > rec.MDEL) if delta - delta == 0.0 else alarms.check_deadband(rec.MLST, val, rec.MDEL):
        mask |= DBE_VALUE
        rec.MLST = val
    delta = rec.ALST - val
    if (abs(delta) > rec.ADEL) if delta - delta == 0.0 else alarms.check_deadband(rec.ALST, val, rec.ADEL):
        mask |= DBE_LOG
        rec.ALST = val
    if mask:
        rec.post("VAL", mask)
    return mask


def process_ai(rec: Record) -> int | None:
    # Without links (so no INP or SIML) and out of simulation, readValue leaves VAL as it is. OLDSIMM
    # too, as long as it is NO: otherwise recGblGetSimm has it to update.
    if rec._links or rec.SIMM or rec.OLDSIMM:
        status = _read_ai(rec)
        if status is None:
            return      # SDLY: processing completes later
    else:
        status = 2
    rec.PACT = 1
    rec.stamp()
    if rec.SIMM:
        simulated_time(rec, siol=True)
    if status == 0:
        _convert_ai(rec)
    if status in (0, 2):
        rec.UDF = 0 if rec.VAL == rec.VAL else 1     # NaN is undefined
    alarms.limit_alarms(rec)
    mask = monitor_analog(rec)
    if mask and rec.ORAW != rec.RVAL:
        rec.post("RVAL", mask)
        rec.ORAW = rec.RVAL
    rec.fwd_link()
    rec.INIT = 0
    rec.PACT = 0
    return status if status < 0 else None      # readValue's failure is the processing's


def special_analog(rec: Record, fld: Field, after: bool) -> None:
    if fld.special is not SPC.LINCONV:
        special_simm(rec, fld, after)
        return
    if not after:
        rec.linr_before = rec.LINR
        return
    if rec.LINR > _LINEAR:
        rec.LINR = rec.linr_before      # refused: breakpoint tables are not available here
        raise CAError(ECA.PUTFAIL, "breakpoint-table conversions are not supported")
    rec.INIT = 1


def _ai_units(rec: Record, fld: Field) -> str:
    if fld.dbf is DBF.DOUBLE and fld.name not in ("ASLO", "AOFF", "SMOO"):
        return rec.EGU
    return ""


register(RecordType(
    name="ai",
    fields=AI_FIELDS,
    process=process_ai,
    init=init_ai,
    devices=("Soft Channel", "Raw Soft Channel", "Async Soft Channel", "Soft Timestamp", "General Time"),
    special=special_analog,
    units=_ai_units,
    precision=analog_precision,
    graphic=display_limits(ANALOG_LIMITED),
    control=display_limits(ANALOG_LIMITED),
    alarm=value_alarm_limits,
    state={"smoothing": False, "linr_before": 0},
))


# --- ao ------------------------------------------------------------------------------------------------

_AO_VALUE_FIELDS = frozenset({"VAL", "OVAL", "PVAL"})
_AO_DISPLAY = frozenset({"VAL", "OVAL", "PVAL", "HIHI", "HIGH", "LOW", "LOLO", "LALM", "ALST", "MLST",
                         "IVOV"})
_AO_CONTROL = _AO_DISPLAY - {"IVOV"}


def init_ao(rec: Record) -> None:
    require_soft_device(rec)
    _check_linr(rec)
    init_simm(rec)
    val = constant(rec, "DOL", DBF.DOUBLE)
    if val is not None:
        rec.VAL = val
        rec.UDF = int(math.isnan(val))
    rec.INIT = 1
    if rec.ESLO == 1.0 and rec.EOFF == 0.0:
        rec.EOFF = rec.EGUL
    rec.OVAL = rec.PVAL = rec.VAL
    rec.MLST = rec.ALST = rec.LALM = rec.VAL
    rec.ORAW = rec.RVAL
    rec.ORBV = rec.RBV


def _fetch_ao(rec: Record) -> float | None:
    saved = rec.PACT
    rec.PACT = 1
    rec.VAL = rec.PVAL    # a closed loop ignores puts to VAL
    value = rec.get_link("DOL", DBF.DOUBLE)
    rec.PACT = saved
    if value is None:
        rec.set_sevr(AlarmStatus.LINK, AlarmSeverity.INVALID)
        return None
    if rec.OIF == _OIF_INCREMENTAL:
        value += rec.VAL
    return value


def _convert_ao(rec: Record, value: float) -> None:
    if rec.DRVH > rec.DRVL:
        value = min(max(value, rec.DRVL), rec.DRVH)
    rec.VAL = rec.PVAL = value
    if rec.OROC != 0:
        diff = value - rec.OVAL
        if diff < 0 and rec.OROC < -diff:
            value = rec.OVAL - rec.OROC
        elif diff >= 0 and rec.OROC < diff:
            value = rec.OVAL + rec.OROC
    rec.OMOD = int(rec.OVAL != value)
    rec.OVAL = value
    if rec.LINR in (_LINEAR, _SLOPE):
        value = 0.0 if rec.ESLO == 0.0 else (value - rec.EOFF) / rec.ESLO
    value -= rec.AOFF
    if rec.ASLO != 0:
        value /= rec.ASLO
    value -= rec.ROFF
    if math.isnan(value):
        rec.RVAL = -0x80000000
    elif value >= 0.0:
        rec.RVAL = 0x7FFFFFFF if value >= 0x7FFFFFFF - 0.5 else int(value + 0.5)
    else:
        rec.RVAL = int(value - 0.5) if value > 0.5 - 0x80000000 else -0x80000000


def _write_ao(rec: Record) -> int | None:
    """writeValue: the device's write, or OVAL (RAW: RVAL) to SIOL in simulation; the failure status."""
    return write_value(rec, _write_ao_device, _write_ao_siol, (SIMM_YES, SIMM_RAW))


def _write_ao_device(rec: Record) -> int | None:
    if device(rec) == "Raw Soft Channel":
        return rec.put_link("OUT", DBF.LONG, rec.RVAL)
    return rec.put_link("OUT", DBF.DOUBLE, rec.OVAL)


def _write_ao_siol(rec: Record, simm: int) -> int | None:
    if simm == SIMM_YES:
        return rec.put_link("SIOL", DBF.DOUBLE, rec.OVAL)
    return rec.put_link("SIOL", DBF.LONG, rec.RVAL)


def process_ao(rec: Record) -> int | None:
    pact = rec.PACT     # set: SDLY's second pass, which only writes and completes
    status = None       # a failed DOL read stays the status unless an output is written
    if not pact:
        if rec._links and rec.OMSL == _OMSL_CLOSED_LOOP and not rec.link_is_constant("DOL"):
            value = _fetch_ao(rec)
            if value is None:
                status = -1
        else:
            value = rec.VAL
        if value is not None:
            _convert_ao(rec, value)
        rec.UDF = 0 if rec.VAL == rec.VAL else 1     # NaN is undefined
        # stamped before the write, so that a record fetching this one's TIME through TSEL sees it
        rec.stamp()
        if rec.SIMM:
            simulated_time(rec, siol=False)
    alarms.limit_alarms(rec, filtered=False)
    if rec.NSEV < _INVALID or rec.IVOA == _IVOA_CONTINUE:
        # without links and out of simulation there is nothing to write to (nor OLDSIMM to update
        # while it is NO)
        if rec._links or rec.SIMM or rec.OLDSIMM:
            status = _write_ao(rec)
        else:
            status = None
    elif rec.IVOA == _IVOA_SET_IVOV:
        if not pact:
            rec.VAL = rec.IVOV
            _convert_ao(rec, rec.IVOV)
        status = _write_ao(rec)
    if rec.PACT and not pact:
        return None     # SDLY: processing completes later
    rec.PACT = 1
    if pact:
        rec.stamp()
        if rec.SIMM:
            simulated_time(rec, siol=False)
    mask = monitor_analog(rec)
    if rec.OMOD:
        mask |= DBE_VALUE | DBE_LOG
    if mask:
        rec.OMOD = 0
        rec.post("OVAL", mask)
        if rec.ORAW != rec.RVAL:
            rec.post("RVAL", mask | DBE_VALUE | DBE_LOG)
            rec.ORAW = rec.RVAL
        if rec.ORBV != rec.RBV:
            rec.post("RBV", mask | DBE_VALUE | DBE_LOG)
            rec.ORBV = rec.RBV
    rec.fwd_link()
    rec.INIT = 0
    rec.PACT = 0
    return status


def _ao_units(rec: Record, fld: Field) -> str:
    if fld.dbf is DBF.DOUBLE and fld.name not in ("ASLO", "AOFF"):
        return rec.EGU
    return ""


def _ao_control(rec: Record, fld: Field) -> tuple[float, float] | None:
    return (rec.DRVH, rec.DRVL) if fld.name in _AO_CONTROL else None


def _ao_precision(rec: Record, fld: Field) -> int:
    return analog_precision(rec, fld, _AO_VALUE_FIELDS)


register(RecordType(
    name="ao",
    fields=AO_FIELDS,
    process=process_ao,
    init=init_ao,
    devices=("Soft Channel", "Raw Soft Channel", "Async Soft Channel"),
    special=special_analog,
    units=_ao_units,
    precision=_ao_precision,
    graphic=display_limits(_AO_DISPLAY),
    control=_ao_control,
    alarm=value_alarm_limits,
    state={"linr_before": 0},
))
