"""longin and longout: 32-bit integer records (longinRecord.c, longoutRecord.c)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from caproto.constants import DBE_LOG, DBE_VALUE, AlarmSeverity, AlarmStatus
from ioc import alarms

from . import RecordType, register
from .common import (
    COMMON_FIELDS,
    SIMM_NO,
    SIMM_YES,
    constant,
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
    stamp_simm,
    unchecked_write,
    value_alarm_limits,
)
from .fields import DBF, SPC, Field

if TYPE_CHECKING:
    from ioc.database import Record

LONGIN_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.LONG, pp=True),
    Field("INP", DBF.INLINK),
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("HOPR", DBF.LONG, prop=True),
    Field("LOPR", DBF.LONG, prop=True),
    *limit_alarm_fields(DBF.LONG, severity_prop=False),
    Field("HYST", DBF.LONG),
    Field("AFTC", DBF.DOUBLE),
    Field("AFVL", DBF.DOUBLE, special=SPC.NOMOD),
    Field("ADEL", DBF.LONG),
    Field("MDEL", DBF.LONG),
    Field("LALM", DBF.LONG, special=SPC.NOMOD),
    Field("ALST", DBF.LONG, special=SPC.NOMOD),
    Field("MLST", DBF.LONG, special=SPC.NOMOD),
    *simulation_fields(DBF.INLINK, Field("SVAL", DBF.LONG)),
)

LONGOUT_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.LONG, pp=True),
    Field("OUT", DBF.OUTLINK, special=SPC.MOD),
    Field("DOL", DBF.INLINK),
    Field("OMSL", DBF.MENU, menu="menuOmsl"),
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("DRVH", DBF.LONG, pp=True, prop=True),
    Field("DRVL", DBF.LONG, pp=True, prop=True),
    Field("HOPR", DBF.LONG, prop=True),
    Field("LOPR", DBF.LONG, prop=True),
    *limit_alarm_fields(DBF.LONG, severity_prop=False),
    Field("HYST", DBF.LONG),
    Field("ADEL", DBF.LONG),
    Field("MDEL", DBF.LONG),
    Field("LALM", DBF.LONG, special=SPC.NOMOD),
    Field("ALST", DBF.LONG, special=SPC.NOMOD),
    Field("MLST", DBF.LONG, special=SPC.NOMOD),
    *simulation_fields(DBF.OUTLINK),
    Field("IVOA", DBF.MENU, menu="menuIvoa"),
    Field("IVOV", DBF.LONG),
    Field("PVAL", DBF.LONG),
    Field("OUTPVT", DBF.NOACCESS, special=SPC.NOMOD),
    Field("OOCH", DBF.MENU, menu="menuYesNo", initial="1"),
    Field("OOPT", DBF.MENU, menu="longoutOOPT", initial="0"),
)

_LONGIN_LIMITED = frozenset({"VAL", "HIHI", "HIGH", "LOW", "LOLO", "LALM", "ALST", "MLST", "SVAL"})
_LONGOUT_LIMITED = _LONGIN_LIMITED - {"SVAL"}
_OMSL_CLOSED_LOOP = 1
_IVOA_CONTINUE, _IVOA_SET_IVOV = 0, 2
# longoutOOPT choices
_EVERY_TIME, _ON_CHANGE, _WHEN_ZERO, _WHEN_NON_ZERO, _TO_ZERO, _TO_NON_ZERO = range(6)


def monitor_long(rec: Record) -> None:
    mask = alarms.reset_alarms(rec)
    if alarms.integer_deadband(rec.MLST, rec.VAL, rec.MDEL):
        mask |= DBE_VALUE
        rec.MLST = rec.VAL
    if alarms.integer_deadband(rec.ALST, rec.VAL, rec.ADEL):
        mask |= DBE_LOG
        rec.ALST = rec.VAL
    if mask:
        rec.post("VAL", mask)


def _long_units(rec: Record, fld: Field) -> str:
    return rec.EGU if fld.dbf is DBF.LONG else ""


# --- longin ----------------------------------------------------------------------------------------------

def init_longin(rec: Record) -> None:
    require_soft_device(rec, ("Soft Channel", "Async Soft Channel"))
    init_simm(rec)
    sval = constant(rec, "SIOL", DBF.LONG)
    if sval is not None:
        rec.SVAL = sval
    val = constant(rec, "INP", DBF.LONG)
    if val is not None:
        rec.VAL = val
        rec.UDF = 0
    rec.MLST = rec.ALST = rec.LALM = rec.VAL


def _read_longin(rec: Record) -> bool | None:
    """readValue: whether VAL was read (None: SDLY's first pass, the processing completes later)."""
    if not rec.PACT:
        get_simm(rec)
    simm = rec.SIMM
    if simm == SIMM_YES:
        rec.set_sevr(AlarmStatus.SIMM, rec.SIMS)
        if not simulate_now(rec):
            return None
        rec.PACT = 0
        if not rec.link_is_constant("SIOL"):
            value = rec.get_link("SIOL", DBF.LONG)
            if value is None:
                return False
            rec.SVAL = value
        rec.VAL = rec.SVAL
        return True
    if simm != SIMM_NO:
        rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
        return False
    if rec.link_is_constant("INP"):
        return True
    value = rec.get_link("INP", DBF.LONG)
    if value is None:
        return False
    rec.VAL = value
    device_time(rec, "INP")
    return True


def process_longin(rec: Record) -> int | None:
    # Without links (so no INP or SIML) and out of simulation, readValue reads nothing and succeeds.
    # OLDSIMM must be NO too: otherwise recGblGetSimm has it to update.
    if rec._links or rec.SIMM or rec.OLDSIMM:
        ok = _read_longin(rec)
        if ok is None:
            return None     # SDLY: processing completes later
    else:
        ok = True
    rec.PACT = 1
    rec.stamp()
    if rec.SIMM:
        simulated_time(rec, siol=True)
    if ok:
        rec.UDF = 0
    alarms.limit_alarms(rec)
    monitor_long(rec)
    rec.fwd_link()
    rec.PACT = 0
    return None if ok else -1       # readValue's failure is the processing's


register(RecordType(
    name="longin",
    fields=LONGIN_FIELDS,
    process=process_longin,
    init=init_longin,
    devices=("Soft Channel", "Async Soft Channel", "General Time"),
    special=special_simm,
    units=_long_units,
    graphic=display_limits(_LONGIN_LIMITED),
    control=display_limits(_LONGIN_LIMITED),
    alarm=value_alarm_limits,
))


# --- longout ---------------------------------------------------------------------------------------------

def init_longout(rec: Record) -> None:
    require_soft_device(rec, ("Soft Channel", "Async Soft Channel"))
    init_simm(rec)
    val = constant(rec, "DOL", DBF.LONG)
    if val is not None:
        rec.VAL = val
        rec.UDF = 0
    rec.MLST = rec.ALST = rec.LALM = rec.PVAL = rec.VAL
    rec.out_changed = True


def _clamp(rec: Record, value: int) -> None:
    if rec.DRVH > rec.DRVL:
        value = min(max(value, rec.DRVL), rec.DRVH)
    rec.VAL = value


def _should_write(rec: Record) -> bool:
    oopt, val, pval = rec.OOPT, rec.VAL, rec.PVAL
    if oopt == _ON_CHANGE:
        return rec.out_changed or val != pval
    if oopt == _EVERY_TIME:
        return True
    if oopt == _WHEN_ZERO:
        return val == 0
    if oopt == _WHEN_NON_ZERO:
        return val != 0
    if oopt == _TO_ZERO:
        return val == 0 and pval != 0
    if oopt == _TO_NON_ZERO:
        return val != 0 and pval == 0
    return False


def _write_longout(rec: Record) -> int | None:
    """writeValue: the conditional write to OUT (which alone moves PVAL on), or VAL to SIOL in
    simulation. With SDLY the first pass only sets PACT; the second writes. Returns the failure
    status."""
    # without links recGblGetSimm changes nothing unless OLDSIMM is to follow SIMM
    if not rec.PACT and (rec._links or rec.OLDSIMM != rec.SIMM):
        get_simm(rec)
    simm = rec.SIMM
    status = None
    if simm == SIMM_NO:
        if _should_write(rec):
            status = unchecked_write(rec, rec.put_link("OUT", DBF.LONG, rec.VAL))
        rec.PVAL = rec.VAL
        rec.out_changed = False
    elif simm == SIMM_YES:
        rec.set_sevr(AlarmStatus.SIMM, rec.SIMS)
        if simulate_now(rec):
            status = rec.put_link("SIOL", DBF.LONG, rec.VAL)
            rec.PACT = 0
    else:
        rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
        status = -1
    return status


def process_longout(rec: Record) -> int | None:
    pact = rec.PACT     # set: SDLY's second pass, which only writes and completes
    status = None       # a failed DOL read stays the status unless an output is written
    if not pact:
        value = rec.VAL
        ok = True
        if not rec.link_is_constant("DOL") and rec.OMSL == _OMSL_CLOSED_LOOP:
            fetched = rec.get_link("DOL", DBF.LONG)
            if fetched is None:
                ok = False
                status = -1
            else:
                value = fetched
                rec.UDF = 0
        if ok:
            _clamp(rec, value)
        # stamped before the write, so that a record fetching this one's TIME through TSEL sees it
        rec.stamp()
        if rec.SIMM:
            simulated_time(rec, siol=False)
    alarms.limit_alarms(rec, filtered=False)
    if rec.NSEV < AlarmSeverity.INVALID or rec.IVOA == _IVOA_CONTINUE:
        status = _write_longout(rec)
    elif rec.IVOA == _IVOA_SET_IVOV:
        if not pact:
            rec.VAL = rec.IVOV
        status = _write_longout(rec)
    if rec.PACT and not pact:
        return None     # SDLY: processing completes later
    rec.PACT = 1
    if pact:
        stamp_simm(rec, siol=False)
    monitor_long(rec)
    rec.fwd_link()
    rec.PACT = 0
    return status


def special_longout(rec: Record, fld: Field, after: bool) -> None:
    if special_simm(rec, fld, after):
        return
    if after and fld.name == "OUT" and rec.OOCH:
        rec.out_changed = True


def _longout_control(rec: Record, fld: Field) -> tuple[float, float] | None:
    if fld.name not in _LONGOUT_LIMITED:
        return None
    if rec.DRVH > rec.DRVL:
        return rec.DRVH, rec.DRVL
    return rec.HOPR, rec.LOPR


register(RecordType(
    name="longout",
    fields=LONGOUT_FIELDS,
    process=process_longout,
    init=init_longout,
    devices=("Soft Channel", "Async Soft Channel"),
    special=special_longout,
    units=_long_units,
    graphic=display_limits(_LONGOUT_LIMITED),
    control=_longout_control,
    alarm=value_alarm_limits,
    state={"out_changed": True},
))
