"""waveform: an array of NELM elements of type FTVL, NORD of them valid (waveformRecord.c)."""
from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

from caproto.constants import DBE_LOG, DBE_VALUE, AlarmSeverity, AlarmStatus
from ioc import alarms

from . import RecordType, register
from .common import (
    COMMON_FIELDS,
    SIMM_NO,
    SIMM_YES,
    analog_precision,
    get_simm,
    init_simm,
    require_soft_device,
    simulate_now,
    special_simm,
    stamp_simm,
)
from .fields import DBF, DBF_DTYPES, SPC, Field, FieldValueError
from .menus import MENUS

if TYPE_CHECKING:
    from ioc.database import Record

WAVEFORM_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.NOACCESS, special=SPC.DBADDR, pp=True),
    Field("RARM", DBF.SHORT, pp=True),
    Field("PREC", DBF.SHORT, prop=True),
    Field("INP", DBF.INLINK),
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("HOPR", DBF.DOUBLE, prop=True),
    Field("LOPR", DBF.DOUBLE, prop=True),
    Field("NELM", DBF.ULONG, initial="1", special=SPC.NOMOD),
    Field("FTVL", DBF.MENU, menu="menuFtype", special=SPC.NOMOD),
    Field("BUSY", DBF.SHORT, special=SPC.NOMOD),
    Field("NORD", DBF.ULONG, special=SPC.NOMOD),
    Field("BPTR", DBF.NOACCESS, special=SPC.NOMOD),
    Field("SIOL", DBF.INLINK),
    Field("SIML", DBF.INLINK),
    Field("SIMM", DBF.MENU, menu="menuYesNo", special=SPC.MOD),
    Field("SIMS", DBF.MENU, menu="menuAlarmSevr"),
    Field("OLDSIMM", DBF.MENU, menu="menuSimm", special=SPC.NOMOD),
    Field("SSCN", DBF.MENU, menu="menuScan", initial="65535"),
    Field("SDLY", DBF.DOUBLE, initial="-1.0"),
    Field("SIMPVT", DBF.NOACCESS, special=SPC.NOMOD),
    Field("MPST", DBF.MENU, menu="waveformPOST"),
    Field("APST", DBF.MENU, menu="waveformPOST"),
    Field("HASH", DBF.ULONG),
)

# menuFtype index -> storage type of the elements
FTVL_TYPES: tuple[DBF, ...] = tuple(DBF[name] for name in MENUS["menuFtype"])
_POST_ALWAYS, _POST_ON_CHANGE = 0, 1      # waveformPOST


def element_type(rec: Record) -> DBF:
    return FTVL_TYPES[rec.FTVL]


def new_array(dbf: DBF, nelm: int) -> np.ndarray | list[str]:
    if dbf is DBF.STRING:
        return [""] * nelm
    return np.zeros(nelm, dtype=DBF_DTYPES[dbf])


def init_waveform(rec: Record) -> None:
    require_soft_device(rec, ("Soft Channel",))
    if rec.NELM <= 0:
        rec.NELM = 1
    if rec.FTVL >= len(FTVL_TYPES):
        rec.FTVL = MENUS["menuFtype"].index("UCHAR")
    rec.VAL = new_array(element_type(rec), rec.NELM)
    rec.NORD = 1 if rec.NELM == 1 else 0
    init_simm(rec)
    entry = rec._links.get("INP")
    if entry is not None and entry[1] is None and entry[0].value is not None:
        values = entry[0].value if isinstance(entry[0].value, list) else [entry[0].value]
        _load_constant(rec, values)


def _load_constant(rec: Record, values: list) -> None:
    dbf = element_type(rec)
    values = values[:rec.NELM]
    try:
        if dbf is DBF.STRING:
            loaded: list = [str(v)[:39] for v in values]
        else:
            loaded = [float(v) if isinstance(v, str) else v for v in values]
        rec.VAL[:len(loaded)] = loaded
    except (ValueError, OverflowError, TypeError):
        raise FieldValueError("INP", f"constant {values!r} does not fit FTVL {dbf.value}") from None
    rec.NORD = len(loaded)
    rec.UDF = 0


def _cvt_dbaddr(rec: Record, fld: Field) -> tuple[DBF, int] | None:
    if fld.name == "VAL":
        return element_type(rec), rec.NELM
    return None


def _array_count(rec: Record, fld: Field) -> int:
    return rec.NORD


def _put_array_count(rec: Record, fld: Field, count: int) -> None:
    nord = rec.NORD
    rec.NORD = min(count, rec.NELM)
    if nord != rec.NORD:
        rec.post("NORD", DBE_VALUE | DBE_LOG)


def _get_elements(rec: Record, link: str) -> list | np.ndarray | None:
    """dbGetLink of up to NELM elements through ``link`` (None when it failed)."""
    values = rec.get_link(link, element_type(rec), count=rec.NELM)
    if values is None or rec.NELM > 1:
        return values
    return [values]     # a count of 1 comes back as the scalar itself


def _read_waveform(rec: Record) -> None:
    if rec.link_is_constant("INP"):
        return
    values = _get_elements(rec, "INP")
    if values is None:
        rec._process_failed = True
        return
    n = len(values)
    rec.VAL[:n] = values
    nord = rec.NORD
    rec.NORD = n
    rec.UDF = 0
    if nord != n:
        rec.post("NORD", DBE_VALUE | DBE_LOG)


def _read_value(rec: Record) -> None:
    """readValue: the device's read, or SIOL in simulation."""
    if not rec.PACT:
        get_simm(rec)
    if rec.SIMM == SIMM_NO:
        _read_waveform(rec)
        return
    if rec.SIMM != SIMM_YES:
        rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
        rec._process_failed = True
        return
    rec.set_sevr(AlarmStatus.SIMM, rec.SIMS)
    if not simulate_now(rec):
        return
    if rec.link_is_constant("SIOL"):
        count = 0       # a constant link delivers no elements
    else:
        values = _get_elements(rec, "SIOL")
        if values is None:
            count = rec.NELM    # the request count, untouched by the failed read
            rec._process_failed = True
        else:
            count = len(values)
            rec.VAL[:count] = values
    # NORD is posted by process(), when it compares it with its value before the read
    rec.NORD = count
    rec.PACT = 0


def _content_hash(rec: Record) -> int:
    if element_type(rec) is DBF.STRING:
        data = "\0".join(rec.VAL[:rec.NORD]).encode("utf-8", "surrogateescape")
    else:
        data = rec.VAL[:rec.NORD].tobytes()
    return zlib.crc32(data)


def process_waveform(rec: Record) -> None:
    pact = rec.PACT
    nord = rec.NORD
    if pact and rec.BUSY:
        return
    _read_value(rec)
    if not pact and rec.PACT:
        return      # SDLY: processing completes later
    rec.PACT = 1
    rec.UDF = 0
    stamp_simm(rec, siol=True)
    if nord != rec.NORD:
        rec.post("NORD", DBE_VALUE | DBE_LOG)
    mask = alarms.reset_alarms(rec)
    if rec.MPST == _POST_ALWAYS:
        mask |= DBE_VALUE
    if rec.APST == _POST_ALWAYS:
        mask |= DBE_LOG
    if _POST_ON_CHANGE in (rec.MPST, rec.APST):
        digest = _content_hash(rec)
        if digest != rec.HASH:
            if rec.MPST == _POST_ON_CHANGE:
                mask |= DBE_VALUE
            if rec.APST == _POST_ON_CHANGE:
                mask |= DBE_LOG
            rec.HASH = digest
            rec.post("HASH", DBE_VALUE)
    if mask:
        rec.post("VAL", mask)
    rec.fwd_link()
    rec.PACT = 0


def special_waveform(rec: Record, fld: Field, after: bool) -> None:
    special_simm(rec, fld, after)


def _units(rec: Record, fld: Field) -> str:
    if fld.name == "VAL" and element_type(rec) in (DBF.STRING, DBF.ENUM):
        return ""
    return rec.EGU if fld.name in ("VAL", "HOPR", "LOPR") else ""


def _limits(rec: Record, fld: Field) -> tuple[float, float] | None:
    if fld.name == "VAL":
        return rec.HOPR, rec.LOPR
    if fld.name == "BUSY":
        return 1.0, 0.0
    if fld.name == "NORD":
        return float(rec.NELM), 0.0
    return None


register(RecordType(
    name="waveform",
    fields=WAVEFORM_FIELDS,
    process=process_waveform,
    init=init_waveform,
    special=special_waveform,
    cvt_dbaddr=_cvt_dbaddr,
    get_array_count=_array_count,
    put_array_count=_put_array_count,
    units=_units,
    precision=analog_precision,
    graphic=_limits,
    control=_limits,
))
