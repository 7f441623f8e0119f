"""mbbiDirect and mbboDirect: a 32-bit value served also as the bit fields B0 ... B1F
(mbbiDirectRecord.c, mbboDirectRecord.c)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from caproto.constants import DBE_LOG, DBE_VALUE, ECA, AlarmSeverity, AlarmStatus
from caproto.errors import CAError
from ioc import alarms

from . import RecordType, register
from .common import (
    COMMON_FIELDS,
    SIMM_RAW,
    SIMM_YES,
    c_unsigned,
    constant,
    device,
    device_time,
    init_simm,
    read_value,
    require_soft_device,
    simulation_fields,
    special_simm,
    stamp_simm,
    write_value,
)
from .fields import DBF, SPC, Field

if TYPE_CHECKING:
    from ioc.database import Record

NUM_BITS = 32
BIT_FIELDS: tuple[str, ...] = tuple(f"B{i:X}" for i in range(NUM_BITS))   # B0..B9, BA..BF, B10..B1F
_BIT_INDEX = {name: i for i, name in enumerate(BIT_FIELDS)}

MBBIDIRECT_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.LONG, pp=True),
    Field("NOBT", DBF.SHORT, special=SPC.NOMOD),
    Field("INP", DBF.INLINK),
    Field("RVAL", DBF.ULONG, pp=True),
    Field("ORAW", DBF.ULONG, special=SPC.NOMOD),
    Field("MASK", DBF.ULONG, special=SPC.NOMOD),
    Field("MLST", DBF.LONG, special=SPC.NOMOD),
    Field("SHFT", DBF.USHORT),
    *simulation_fields(DBF.INLINK, Field("SVAL", DBF.LONG), simm_menu="menuSimm"),
) + tuple(Field(name, DBF.UCHAR, pp=True) for name in BIT_FIELDS)

MBBODIRECT_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.LONG, pp=True),
    Field("OMSL", DBF.MENU, menu="menuOmsl", pp=True),
    Field("NOBT", DBF.SHORT, special=SPC.NOMOD),
    Field("DOL", DBF.INLINK),
    Field("OUT", DBF.OUTLINK),
    Field("RVAL", DBF.ULONG, special=SPC.NOMOD, pp=True),
    Field("ORAW", DBF.ULONG, special=SPC.NOMOD),
    Field("RBV", DBF.ULONG, special=SPC.NOMOD),
    Field("ORBV", DBF.ULONG, special=SPC.NOMOD),
    Field("MASK", DBF.ULONG, special=SPC.NOMOD),
    Field("MLST", DBF.LONG, special=SPC.NOMOD),
    Field("OBIT", DBF.LONG, special=SPC.NOMOD),
    Field("SHFT", DBF.USHORT),
    *simulation_fields(DBF.OUTLINK, simm_menu="menuSimm"),
    Field("IVOA", DBF.MENU, menu="menuIvoa"),
    Field("IVOV", DBF.LONG),
) + tuple(Field(name, DBF.UCHAR, special=SPC.MOD, pp=True) for name in BIT_FIELDS)

_DEVICES = ("Soft Channel", "Raw Soft Channel", "Async Soft Channel")
_OMSL_CLOSED_LOOP = 1
_IVOA_CONTINUE, _IVOA_SET_IVOV = 0, 2
_VALUE_LOG = DBE_VALUE | DBE_LOG
_ULONG = 0xFFFFFFFF


def as_long(value: int) -> int:
    """A 32-bit pattern stored into DBF_LONG VAL (two's complement)."""
    value &= _ULONG
    return value - (1 << 32) if value & 0x80000000 else value


def _read_ulong(rec: Record, link: str) -> int | None:
    """dbGetLink(link, DBR_ULONG): the value as a C unsigned 32-bit conversion makes it, None if it failed."""
    value = rec.get_link(link, DBF.DOUBLE)
    return None if value is None else c_unsigned(value, 32)


def bits_from_val(rec: Record) -> None:
    val = rec.VAL & _ULONG
    for i, name in enumerate(BIT_FIELDS):
        setattr(rec, name, (val >> i) & 1)


def init_mask(rec: Record) -> None:
    """MASK from NOBT when not given; Raw Soft Channel widens it (NOBT 0) and shifts it by SHFT."""
    if rec.MASK == 0 and rec.NOBT <= 32:
        rec.MASK = ((1 << rec.NOBT) - 1) & _ULONG
    if device(rec) == "Raw Soft Channel":
        if rec.NOBT == 0:
            rec.MASK = _ULONG
        rec.MASK = (rec.MASK << rec.SHFT) & _ULONG


def post_raw(rec: Record, pairs: tuple[tuple[str, str], ...], mask: int) -> None:
    for field, last in pairs:
        if getattr(rec, last) != getattr(rec, field):
            rec.post(field, mask)
            setattr(rec, last, getattr(rec, field))


# --- mbbiDirect ------------------------------------------------------------------------------------------

def init_mbbidirect(rec: Record) -> None:
    require_soft_device(rec)
    init_simm(rec)
    sval = constant(rec, "SIOL", DBF.DOUBLE)
    if sval is not None:
        rec.SVAL = as_long(c_unsigned(sval, 32))
    init_mask(rec)
    if device(rec) == "Raw Soft Channel":
        raw = constant(rec, "INP", DBF.DOUBLE)
        if raw is not None:
            rec.RVAL = c_unsigned(raw, 32)
    else:
        val = constant(rec, "INP", DBF.DOUBLE)
        if val is not None:
            rec.VAL = as_long(c_unsigned(val, 32))
            rec.UDF = 0
    bits_from_val(rec)
    rec.MLST = rec.VAL
    rec.ORAW = rec.RVAL


def _read_device(rec: Record) -> int:
    """read_mbbi of the soft device supports: 0 = RVAL to convert, 2 = VAL read, -1 = failed."""
    if device(rec) == "Raw Soft Channel":
        if not rec.link_is_constant("INP"):
            raw = _read_ulong(rec, "INP")
            if raw is None:
                return 0
            rec.RVAL = raw
            device_time(rec, "INP")
        rec.RVAL &= rec.MASK
        return 0
    if not rec.link_is_constant("INP"):
        val = _read_ulong(rec, "INP")
        if val is None:
            return -1
        rec.VAL = as_long(val)
        device_time(rec, "INP")
    rec.UDF = 0
    return 2


def _read_value(rec: Record) -> int:
    """readValue: the device's read, or SVAL through SIOL in simulation."""
    return read_value(rec, _read_device, _read_siol, (SIMM_YES, SIMM_RAW), pending=0)


def _read_siol(rec: Record, simm: int) -> int:
    if not rec.link_is_constant("SIOL"):
        sval = _read_ulong(rec, "SIOL")
        if sval is None:
            return -1
        rec.SVAL = as_long(sval)
    rec.UDF = 0
    if simm == SIMM_YES:
        rec.VAL = rec.SVAL
        return 2
    rec.RVAL = rec.SVAL & _ULONG
    return 0


def process_mbbidirect(rec: Record) -> int | None:
    """mbbiDirectRecord.c process(): the status is readValue's (2, "VAL read, no conversion", counts as
    success), so a failed Soft Channel or SIOL read, or a SIMM out of range, fails the processing."""
    pact = rec.PACT
    status = _read_value(rec)
    if not pact and rec.PACT:
        return None     # SDLY: processing completes later
    rec.PACT = 1
    stamp_simm(rec, siol=True)
    if status == 0:
        rec.VAL = as_long(rec.RVAL >> rec.SHFT if rec.SHFT > 0 else rec.RVAL)
        rec.UDF = 0
    if rec.UDF:
        rec.set_sevr(AlarmStatus.UDF, AlarmSeverity.INVALID)
    _monitor_mbbidirect(rec)
    rec.fwd_link()
    rec.PACT = 0
    return status if status not in (0, 2) else None


def _monitor_mbbidirect(rec: Record) -> None:
    """Bits follow VAL: a bit that changed is posted with value and log, the others with alarm changes."""
    events = alarms.reset_alarms(rec)
    changed = events | _VALUE_LOG
    val = rec.VAL & _ULONG
    for i, name in enumerate(BIT_FIELDS):
        bit = (val >> i) & 1
        if getattr(rec, name) != bit:
            setattr(rec, name, bit)
            rec.post(name, changed)
        elif events:
            rec.post(name, events)
    if rec.MLST != rec.VAL:
        events = changed
        rec.MLST = rec.VAL
    if events:
        rec.post("VAL", events)
    post_raw(rec, (("RVAL", "ORAW"),), changed)


register(RecordType(
    name="mbbiDirect",
    fields=MBBIDIRECT_FIELDS,
    process=process_mbbidirect,
    init=init_mbbidirect,
    devices=_DEVICES,
    special=special_simm,
))


# --- mbboDirect ------------------------------------------------------------------------------------------

def init_mbbodirect(rec: Record) -> None:
    require_soft_device(rec)
    init_simm(rec)
    val = constant(rec, "DOL", DBF.DOUBLE)
    if val is not None:
        rec.VAL = as_long(c_unsigned(val, 32))
        rec.UDF = 0
    init_mask(rec)
    if rec.UDF:
        # bits given in the database define VAL when nothing else did
        val = sum(1 << i for i, name in enumerate(BIT_FIELDS) if getattr(rec, name))
        if val:
            rec.VAL = as_long(val)
            rec.UDF = 0
    else:
        bits_from_val(rec)
    rec.MLST = rec.VAL
    rec.ORAW = rec.RVAL
    rec.ORBV = rec.RBV


def _convert(rec: Record) -> None:
    rec.RVAL = (rec.VAL << rec.SHFT if rec.SHFT > 0 else rec.VAL) & _ULONG


def _write_device(rec: Record) -> None:
    """write_mbbo of the soft device supports: they return success whatever dbPutLink returned."""
    if device(rec) == "Raw Soft Channel":
        rec.put_link("OUT", DBF.ULONG, rec.RVAL & rec.MASK)
    else:
        rec.put_link("OUT", DBF.ULONG, rec.VAL & _ULONG)


def _write_value(rec: Record) -> int | None:
    """writeValue: the device's write (always successful), or VAL (RAW: RVAL) to SIOL in simulation,
    whose dbPutLink status is returned; -1 for a SIMM out of range."""
    return write_value(rec, _write_device, _write_siol, (SIMM_YES, SIMM_RAW))


def _write_siol(rec: Record, simm: int) -> int | None:
    if simm == SIMM_YES:
        return rec.put_link("SIOL", DBF.LONG, rec.VAL)
    return rec.put_link("SIOL", DBF.ULONG, rec.RVAL)


def _prepare(rec: Record) -> None:
    """The first pass: VAL from DOL (closed loop), bits and RVAL from VAL, the timestamp."""
    if not rec.link_is_constant("DOL") and rec.OMSL == _OMSL_CLOSED_LOOP:
        val = _read_ulong(rec, "DOL")
        if val is None:
            rec.set_sevr(AlarmStatus.LINK, AlarmSeverity.INVALID)
            return
        rec.VAL = as_long(val)
    elif rec.UDF:
        rec.set_sevr(AlarmStatus.UDF, rec.UDFS, "UDFS")
        return
    rec.UDF = 0
    bits_from_val(rec)
    _convert(rec)
    # stamped before the write, so that a record fetching this one's TIME through TSEL sees it
    stamp_simm(rec, siol=False)


def process_mbbodirect(rec: Record) -> int | None:
    """mbboDirectRecord.c process(): the status is writeValue's; a failed DOL read is only an alarm
    (the IVOA rule then decides whether the write happens)."""
    pact = rec.PACT
    status = None
    if not pact:
        _prepare(rec)
    if rec.NSEV < AlarmSeverity.INVALID or rec.IVOA == _IVOA_CONTINUE:
        status = _write_value(rec)
    elif rec.IVOA == _IVOA_SET_IVOV:
        if not rec.PACT:
            rec.VAL = rec.IVOV
            _convert(rec)
        status = _write_value(rec)
    if not pact and rec.PACT:
        return None     # SDLY: processing completes later
    rec.PACT = 1
    if pact:
        stamp_simm(rec, siol=False)
    bits_from_val(rec)
    _monitor_mbbodirect(rec)
    rec.fwd_link()
    rec.PACT = 0
    return status


def _monitor_mbbodirect(rec: Record) -> None:
    """VAL on change; a bit when it differs from OBIT (the bits last posted: a put to a bit posted it
    already) or with any alarm change; the raw values when they changed."""
    events = alarms.reset_alarms(rec)
    if rec.MLST != rec.VAL:
        events |= _VALUE_LOG
        rec.MLST = rec.VAL
    if events:
        rec.post("VAL", events)
    changed = (rec.OBIT ^ rec.VAL) & _ULONG
    alarm_change = events & ~_VALUE_LOG
    for i, name in enumerate(BIT_FIELDS):
        if alarm_change or changed >> i & 1:
            rec.post(name, events | _VALUE_LOG)
    rec.OBIT = rec.VAL
    post_raw(rec, (("RVAL", "ORAW"), ("RBV", "ORBV")), events | _VALUE_LOG)


def special_mbbodirect(rec: Record, fld: Field, after: bool) -> None:
    if special_simm(rec, fld, after):
        return
    index = _BIT_INDEX.get(fld.name)
    if index is None:
        return
    if not after:
        if rec.OMSL == _OMSL_CLOSED_LOOP:
            # closed loop: VAL comes from DOL, a bit written by hand would only confuse
            raise CAError(ECA.PUTFAIL, f"{rec.NAME}.{fld.name}: OMSL is closed_loop")
        return
    bit = 1 << index
    if getattr(rec, fld.name):
        rec.VAL = as_long(rec.VAL | bit)
        rec.OBIT = as_long(rec.OBIT | bit)
    else:
        rec.VAL = as_long(rec.VAL & ~bit)
        rec.OBIT = as_long(rec.OBIT & ~bit)
    rec.UDF = 0
    _convert(rec)


register(RecordType(
    name="mbboDirect",
    fields=MBBODIRECT_FIELDS,
    process=process_mbbodirect,
    init=init_mbbodirect,
    devices=_DEVICES,
    special=special_mbbodirect,
))

