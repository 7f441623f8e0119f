"""mbbi and mbbo: multi-bit binary records with 16 named states (mbbiRecord.c, mbboRecord.c)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from caproto.constants import DBE_LOG, DBE_PROPERTY, DBE_VALUE, AlarmSeverity, AlarmStatus
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
    unchecked_write,
    write_state_siol,
    write_value,
)
from .fields import DBF, SPC, Field

if TYPE_CHECKING:
    from ioc.database import Record

MBBI_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.ENUM, pp=True),
    Field("NOBT", DBF.USHORT, special=SPC.NOMOD),
    Field("INP", DBF.INLINK),
    Field("ZRVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("ONVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("TWVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("THVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("FRVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("FVVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("SXVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("SVVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("EIVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("NIVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("TEVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("ELVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("TVVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("TTVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("FTVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("FFVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("ZRST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("ONST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("TWST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("THST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("FRST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("FVST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("SXST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("SVST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("EIST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("NIST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("TEST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("ELST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("TVST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("TTST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("FTST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("FFST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("ZRSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("ONSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("TWSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("THSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("FRSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("FVSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("SXSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("SVSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("EISV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("NISV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("TESV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("ELSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("TVSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("TTSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("FTSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("FFSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("AFTC", DBF.DOUBLE),
    Field("AFVL", DBF.DOUBLE, special=SPC.NOMOD),
    Field("UNSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("COSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("RVAL", DBF.ULONG, pp=True),
    Field("ORAW", DBF.ULONG, special=SPC.NOMOD),
    Field("MASK", DBF.ULONG, special=SPC.NOMOD),
    Field("MLST", DBF.USHORT, special=SPC.NOMOD),
    Field("LALM", DBF.USHORT, special=SPC.NOMOD),
    Field("SDEF", DBF.SHORT, special=SPC.NOMOD),
    Field("SHFT", DBF.USHORT),
    *simulation_fields(DBF.INLINK, Field("SVAL", DBF.ULONG), simm_menu="menuSimm"),
)

MBBO_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.ENUM, special=SPC.DBADDR, pp=True),
    Field("DOL", DBF.INLINK),
    Field("OMSL", DBF.MENU, menu="menuOmsl"),
    Field("NOBT", DBF.USHORT, special=SPC.NOMOD),
    Field("OUT", DBF.OUTLINK),
    Field("ZRVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("ONVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("TWVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("THVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("FRVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("FVVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("SXVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("SVVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("EIVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("NIVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("TEVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("ELVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("TVVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("TTVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("FTVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("FFVL", DBF.ULONG, special=SPC.MOD, pp=True),
    Field("ZRST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("ONST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("TWST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("THST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("FRST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("FVST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("SXST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("SVST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("EIST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("NIST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("TEST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("ELST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("TVST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("TTST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("FTST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("FFST", DBF.STRING, size=26, special=SPC.MOD, pp=True),
    Field("ZRSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("ONSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("TWSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("THSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("FRSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("FVSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("SXSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("SVSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("EISV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("NISV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("TESV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("ELSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("TVSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("TTSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("FTSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("FFSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("UNSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("COSV", DBF.MENU, menu="menuAlarmSevr", pp=True),
    Field("RVAL", DBF.ULONG, pp=True),
    Field("ORAW", DBF.ULONG, special=SPC.NOMOD),
    Field("RBV", DBF.ULONG, special=SPC.NOMOD),
    Field("ORBV", DBF.ULONG, special=SPC.NOMOD),
    Field("MASK", DBF.ULONG, special=SPC.NOMOD),
    Field("MLST", DBF.USHORT, special=SPC.NOMOD),
    Field("LALM", DBF.USHORT, special=SPC.NOMOD),
    Field("SDEF", DBF.SHORT, special=SPC.NOMOD),
    Field("SHFT", DBF.USHORT),
    *simulation_fields(DBF.OUTLINK, simm_menu="menuSimm"),
    Field("IVOA", DBF.MENU, menu="menuIvoa"),
    Field("IVOV", DBF.USHORT),
)

STATE_PREFIXES = ("ZR", "ON", "TW", "TH", "FR", "FV", "SX", "SV",
                  "EI", "NI", "TE", "EL", "TV", "TT", "FT", "FF")
STATE_STRINGS = tuple(p + "ST" for p in STATE_PREFIXES)
STATE_VALUES = tuple(p + "VL" for p in STATE_PREFIXES)
STATE_SEVERITIES = tuple(p + "SV" for p in STATE_PREFIXES)
_STRING_INDEX = {name: i for i, name in enumerate(STATE_STRINGS)}
_OMSL_CLOSED_LOOP = 1
_IVOA_CONTINUE, _IVOA_DONT_DRIVE, _IVOA_SET_IVOV = 0, 1, 2


def states(rec: Record) -> tuple[str, ...]:
    return tuple(getattr(rec, name) for name in STATE_STRINGS)


def enum_strs(rec: Record, fld: Field) -> tuple[str, ...]:
    """get_enum_strs: the states up to the last one with a name."""
    names = states(rec)
    count = max((i + 1 for i, name in enumerate(names) if name), default=0)
    return names[:count]


def enum_table(rec: Record, fld: Field) -> tuple[tuple[str, ...], str]:
    return states(rec), "Illegal Value"


def put_enum_table(rec: Record, fld: Field) -> tuple[str, ...]:
    # put_enum_str matches state names only when some state is defined (SDEF)
    return states(rec) if rec.SDEF else ()


def init_common(rec: Record) -> None:
    """SDEF: does any state have a name or a raw value?"""
    rec.SDEF = int(any(getattr(rec, v) or getattr(rec, s) for v, s in zip(STATE_VALUES, STATE_STRINGS,
                                                                                  strict=True)))


def init_mask(rec: Record) -> None:
    if rec.MASK == 0 and rec.NOBT <= 32:
        rec.MASK = (1 << rec.NOBT) - 1
    if device(rec) == "Raw Soft Channel":
        if rec.NOBT == 0:
            rec.MASK = 0xFFFFFFFF
        rec.MASK = (rec.MASK << rec.SHFT) & 0xFFFFFFFF


def raw_to_state(rec: Record) -> None:
    rval = rec.RVAL >> rec.SHFT if rec.SHFT > 0 else rec.RVAL
    if rec.SDEF:
        rec.VAL = 65535
        for i, name in enumerate(STATE_VALUES):
            if getattr(rec, name) == rval:
                rec.VAL = i
                break
    else:
        rec.VAL = rval & 0xFFFF


def special_mbb(rec: Record, fld: Field, after: bool) -> None:
    if special_simm(rec, fld, after) or not after:
        return
    init_common(rec)
    index = _STRING_INDEX.get(fld.name)
    if index is not None:
        mask = DBE_PROPERTY
        if rec.VAL == index:
            mask |= DBE_VALUE | DBE_LOG
        rec.post("VAL", mask)


def monitor_mbb(rec: Record, raw_fields: tuple[tuple[str, str], ...], raw_always: bool) -> None:
    mask = alarms.reset_alarms(rec)
    if rec.MLST != rec.VAL:
        mask |= DBE_VALUE | DBE_LOG
        rec.MLST = rec.VAL
    if mask:
        rec.post("VAL", mask)
    if raw_always:
        mask |= DBE_VALUE | DBE_LOG
    for field, last in raw_fields:
        if getattr(rec, last) != getattr(rec, field):
            rec.post(field, mask if raw_always else mask | DBE_VALUE | DBE_LOG)
            setattr(rec, last, getattr(rec, field))


def state_severity(rec: Record) -> int:
    return rec.UNSV if rec.VAL > 15 else getattr(rec, STATE_SEVERITIES[rec.VAL])


def cos_alarm(rec: Record) -> None:
    if rec.VAL == rec.LALM or rec.set_sevr(AlarmStatus.COS, rec.COSV):
        return
    rec.LALM = rec.VAL


# --- mbbi ----------------------------------------------------------------------------------------------

def init_mbbi(rec: Record) -> None:
    require_soft_device(rec)
    init_simm(rec)
    sval = constant(rec, "SIOL", DBF.USHORT)
    if sval is not None:
        rec.SVAL = sval
    init_mask(rec)
    if device(rec) == "Raw Soft Channel":
        raw = constant(rec, "INP", DBF.ULONG)
        if raw is not None:
            rec.RVAL = raw
    else:
        val = constant(rec, "INP", DBF.ENUM)
        if val is not None:
            rec.VAL = val
            rec.UDF = 0
    init_common(rec)
    rec.MLST = rec.LALM = rec.VAL
    rec.ORAW = rec.RVAL


def _read_mbbi(rec: Record) -> int:
    if device(rec) == "Raw Soft Channel":
        if not rec.link_is_constant("INP"):
            raw = rec.get_link("INP", DBF.LONG)
            if raw is None:
                return -1
            rec.RVAL = raw & 0xFFFFFFFF
        rec.RVAL &= rec.MASK
        return 0
    if not rec.link_is_constant("INP"):
        val = rec.get_link("INP", DBF.ENUM)
        if val is None:
            return -1
        rec.VAL = val
    rec.UDF = 0
    return 2


def _read_value_mbbi(rec: Record) -> int:
    """readValue: the device's read, or SIOL in simulation (0 = convert RVAL, 2 = VAL set, -1 = failed)."""
    return read_value(rec, _read_mbbi, read_state_siol, (SIMM_YES, SIMM_RAW), pending=0)


def process_mbbi(rec: Record) -> int | None:
    pact = rec.PACT
    status = _read_value_mbbi(rec)
    if not pact and rec.PACT:
        return None     # SDLY: processing completes later
    rec.PACT = 1
    stamp_simm(rec, siol=True)
    if status == 0:
        rec.UDF = 0
        raw_to_state(rec)
    if rec.UDF:
        rec.set_sevr(AlarmStatus.UDF, rec.UDFS)
        rec.AFVL = 0.0
    else:
        severity = state_severity(rec)
        if rec.AFTC > 0:
            severity = _filtered_severity(rec, severity)
        else:
            rec.AFVL = 0.0
        rec.set_sevr(AlarmStatus.STATE, severity)
        cos_alarm(rec)
    monitor_mbb(rec, (("RVAL", "ORAW"),), raw_always=False)
    rec.fwd_link()
    rec.PACT = 0
    return status if status < 0 else None      # readValue's failure is the processing's


def _filtered_severity(rec: Record, severity: int) -> int:
    afvl = rec.AFVL
    if afvl == 0:
        rec.AFVL = float(severity)
        return severity
    alpha = rec.AFTC / (rec.time_since_last_process() + rec.AFTC)
    afvl = alpha * afvl + ((1.0 - alpha) if afvl > 0 else (alpha - 1.0)) * severity
    if afvl - (afvl // 1) > 0.6:
        afvl = -afvl
    rec.AFVL = afvl
    return abs(int(afvl // 1))


register(RecordType(
    name="mbbi",
    fields=MBBI_FIELDS,
    process=process_mbbi,
    init=init_mbbi,
    devices=("Soft Channel", "Raw Soft Channel", "Async Soft Channel"),
    special=special_mbb,
    enum_strs=enum_strs,
    enum_table=enum_table,
    put_enum_table=put_enum_table,
))


# --- mbbo ----------------------------------------------------------------------------------------------

def init_mbbo(rec: Record) -> None:
    init_common(rec)
    require_soft_device(rec)
    init_simm(rec)
    val = constant(rec, "DOL", DBF.USHORT)
    if val is not None:
        rec.VAL = val
        rec.UDF = 0
    init_mask(rec)
    init_common(rec)
    _state_to_raw(rec)
    rec.MLST = rec.LALM = rec.VAL
    rec.ORAW = rec.RVAL
    rec.ORBV = rec.RBV


def _state_to_raw(rec: Record) -> None:
    if rec.SDEF:
        if rec.VAL > 15:
            rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
            return
        rec.RVAL = getattr(rec, STATE_VALUES[rec.VAL])
    else:
        rec.RVAL = rec.VAL
    if rec.SHFT > 0:
        rec.RVAL = (rec.RVAL << rec.SHFT) & 0xFFFFFFFF


def _write_mbbo(rec: Record) -> int | None:
    if device(rec) == "Raw Soft Channel":
        return unchecked_write(rec, rec.put_link("OUT", DBF.ULONG, rec.RVAL & rec.MASK))
    return unchecked_write(rec, rec.put_link("OUT", DBF.USHORT, rec.VAL))


def _write_value_mbbo(rec: Record) -> int | None:
    """writeValue: the device's write, or VAL (RAW: RVAL) to SIOL in simulation; the failure status."""
    return write_value(rec, _write_mbbo, write_state_siol, (SIMM_YES, SIMM_RAW))


def _prepare_mbbo(rec: Record) -> None:
    """The first pass's part: VAL from DOL (closed loop), RVAL from VAL, the timestamp."""
    if not rec.link_is_constant("DOL") and rec.OMSL == _OMSL_CLOSED_LOOP:
        val = rec.get_link("DOL", DBF.USHORT)
        if val is None:
            rec.set_sevr(AlarmStatus.LINK, AlarmSeverity.INVALID)
            return
        rec.VAL = val
    elif rec.UDF:
        rec.set_sevr(AlarmStatus.UDF, rec.UDFS)
        return
    rec.UDF = 0
    _state_to_raw(rec)
    # stamped before the write, so that a record fetching this one's TIME through TSEL sees it
    stamp_simm(rec, siol=False)


def process_mbbo(rec: Record) -> int | None:
    pact = rec.PACT
    if not pact:
        _prepare_mbbo(rec)
    rec.set_sevr(AlarmStatus.STATE, state_severity(rec))
    cos_alarm(rec)
    status = None       # unlike ao, a failed DOL read is not the status (mbboRecord.c)
    if rec.NSEV < AlarmSeverity.INVALID or rec.IVOA == _IVOA_CONTINUE:
        status = _write_value_mbbo(rec)
    elif rec.IVOA == _IVOA_SET_IVOV:
        if not rec.PACT:
            rec.VAL = rec.IVOV
            _state_to_raw(rec)
        status = _write_value_mbbo(rec)
    if not pact and rec.PACT:
        return None     # SDLY: processing completes later
    rec.PACT = 1
    if pact:
        stamp_simm(rec, siol=False)
    monitor_mbb(rec, (("RVAL", "ORAW"), ("RBV", "ORBV")), raw_always=True)
    rec.fwd_link()
    rec.PACT = 0
    return status


def _mbbo_cvt_dbaddr(rec: Record, fld: Field) -> tuple[DBF, int] | None:
    # without named states VAL is served as a plain number (DBF_USHORT, CA LONG)
    if fld.name == "VAL" and not rec.SDEF:
        return DBF.USHORT, 1
    return None


register(RecordType(
    name="mbbo",
    fields=MBBO_FIELDS,
    process=process_mbbo,
    init=init_mbbo,
    devices=("Soft Channel", "Raw Soft Channel", "Async Soft Channel"),
    special=special_mbb,
    cvt_dbaddr=_mbbo_cvt_dbaddr,
    enum_strs=enum_strs,
    enum_table=enum_table,
    put_enum_table=put_enum_table,
))
