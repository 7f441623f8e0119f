"""dbCommon: the fields every record type starts with (EPICS Base 7 dbCommon.dbd, in declaration order)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .fields import DBF, SPC, Field, FieldValueError

if TYPE_CHECKING:
    from ioc.database import Record

COMMON_FIELDS: tuple[Field, ...] = (
    Field("NAME", DBF.STRING, size=61, special=SPC.NOMOD),
    Field("DESC", DBF.STRING, size=41),
    Field("ASG", DBF.STRING, size=29, special=SPC.AS),
    Field("SCAN", DBF.MENU, menu="menuScan", special=SPC.SCAN),
    Field("PINI", DBF.MENU, menu="menuPini"),
    Field("PHAS", DBF.SHORT, special=SPC.SCAN),
    Field("EVNT", DBF.STRING, size=40, special=SPC.SCAN),
    Field("TSE", DBF.SHORT),
    Field("TSEL", DBF.INLINK),
    Field("DTYP", DBF.DEVICE),
    Field("DISV", DBF.SHORT, initial="1"),
    Field("DISA", DBF.SHORT),
    Field("SDIS", DBF.INLINK),
    Field("MLOK", DBF.NOACCESS, special=SPC.NOMOD),
    Field("MLIS", DBF.NOACCESS, special=SPC.NOMOD),
    Field("BKLNK", DBF.NOACCESS, special=SPC.NOMOD),
    Field("DISP", DBF.UCHAR),
    Field("PROC", DBF.UCHAR, pp=True),
    Field("STAT", DBF.MENU, menu="menuAlarmStat", initial="UDF", special=SPC.NOMOD),
    Field("SEVR", DBF.MENU, menu="menuAlarmSevr", special=SPC.NOMOD),
    Field("AMSG", DBF.STRING, size=40, special=SPC.NOMOD),
    Field("NSTA", DBF.MENU, menu="menuAlarmStat", special=SPC.NOMOD),
    Field("NSEV", DBF.MENU, menu="menuAlarmSevr", special=SPC.NOMOD),
    Field("NAMSG", DBF.STRING, size=40, special=SPC.NOMOD),
    Field("ACKS", DBF.MENU, menu="menuAlarmSevr", special=SPC.NOMOD),
    Field("ACKT", DBF.MENU, menu="menuYesNo", initial="YES", special=SPC.NOMOD),
    Field("DISS", DBF.MENU, menu="menuAlarmSevr"),
    Field("LCNT", DBF.UCHAR, special=SPC.NOMOD),
    Field("PACT", DBF.UCHAR, special=SPC.NOMOD),
    Field("PUTF", DBF.UCHAR, special=SPC.NOMOD),
    Field("RPRO", DBF.UCHAR, special=SPC.NOMOD),
    Field("ASP", DBF.NOACCESS, special=SPC.NOMOD),
    Field("PPN", DBF.NOACCESS, special=SPC.NOMOD),
    Field("PPNR", DBF.NOACCESS, special=SPC.NOMOD),
    Field("SPVT", DBF.NOACCESS, special=SPC.NOMOD),
    Field("RSET", DBF.NOACCESS, special=SPC.NOMOD),
    Field("DSET", DBF.NOACCESS, special=SPC.NOMOD),
    Field("DPVT", DBF.NOACCESS, special=SPC.NOMOD),
    Field("RDES", DBF.NOACCESS, special=SPC.NOMOD),
    Field("LSET", DBF.NOACCESS, special=SPC.NOMOD),
    Field("PRIO", DBF.MENU, menu="menuPriority", special=SPC.SCAN),
    Field("TPRO", DBF.UCHAR),
    Field("BKPT", DBF.NOACCESS, special=SPC.NOMOD),
    Field("UDF", DBF.UCHAR, initial="1", pp=True),
    Field("UDFS", DBF.MENU, menu="menuAlarmSevr", initial="INVALID"),
    Field("TIME", DBF.NOACCESS, special=SPC.NOMOD),
    Field("UTAG", DBF.UINT64, special=SPC.NOMOD),
    Field("FLNK", DBF.FWDLINK),
)


# --- helpers shared by the record families ---------------------------------------------------------------

SOFT_DEVICES = ("Soft Channel", "Raw Soft Channel", "Async Soft Channel")
# Fields of the analog records whose display/control limits are those of VAL.
ANALOG_LIMITED = frozenset({"VAL", "HIHI", "HIGH", "LOW", "LOLO", "LALM", "ALST", "MLST", "SVAL"})
NAN = math.nan


def device(rec: Record) -> str:
    """The DTYP choice of ``rec`` (its device support name)."""
    return rec.rtype.devices[rec.DTYP]


def require_soft_device(rec: Record, supported: tuple[str, ...] = SOFT_DEVICES) -> None:
    name = device(rec)
    if name not in supported:
        raise FieldValueError("DTYP", f"device support {name!r} is not available in this IOC "
                                      f"(use one of: {', '.join(supported)})")


def constant(rec: Record, link_field: str, dbf: DBF) -> object | None:
    """recGblInitConstantLink: the value of a constant link as ``dbf``, or None if it holds none."""
    entry = rec._links.get(link_field)
    if entry is None or entry[1] is not None:
        return None
    value = entry[0].value
    if isinstance(value, list):
        if not value:
            return None
        value = value[0]
    if value is None:
        return None
    if dbf is DBF.STRING:
        return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    try:
        number = float(value)
    except ValueError:
        return None
    if dbf in (DBF.DOUBLE, DBF.FLOAT):
        return number
    if math.isnan(number) or math.isinf(number):
        return None
    return int(number)


def analog_precision(rec: Record, fld: Field, full: frozenset[str] = frozenset({"VAL"})) -> int:
    """get_precision of ai/ao/calc/waveform: PREC, clamped to 0..15 except for the value fields."""
    prec = rec.PREC
    if fld.name in full:
        return prec
    if fld.dbf in (DBF.FLOAT, DBF.DOUBLE) and not 0 <= prec <= 15:
        return 15
    return prec


def value_alarm_limits(rec: Record, fld: Field) -> tuple[float, float, float, float] | None:
    """get_alarm_double for VAL: each limit, or NaN where its severity is NO_ALARM."""
    if fld.name != "VAL":
        return None
    return (rec.HIHI if rec.HHSV else NAN, rec.HIGH if rec.HSV else NAN,
            rec.LOW if rec.LSV else NAN, rec.LOLO if rec.LLSV else NAN)


def display_limits(fields: frozenset[str]):
    """A get_graphic/get_control hook giving (HOPR, LOPR) for ``fields``, the natural range otherwise."""
    def hook(rec: Record, fld: Field) -> tuple[float, float] | None:
        return (rec.HOPR, rec.LOPR) if fld.name in fields else None
    return hook
