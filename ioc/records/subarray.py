"""subArray: NELM elements from index INDX of the array INP reads, in a buffer of MALM elements of type
FTVL (subArrayRecord.c, devSASoft.c)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from caproto.constants import DBE_LOG, DBE_VALUE, AlarmStatus
from ioc import alarms

from . import RecordType, register
from .common import COMMON_FIELDS, analog_precision, device_time, require_soft_device
from .fields import DBF, SPC, Field, FieldValueError
from .menus import MENUS
from .waveform import FTVL_TYPES, array_units, element_type, new_array

if TYPE_CHECKING:
    from ioc.database import Record

SUBARRAY_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.NOACCESS, special=SPC.DBADDR, pp=True),
    Field("PREC", DBF.SHORT, prop=True),
    Field("FTVL", DBF.MENU, menu="menuFtype", special=SPC.NOMOD),
    Field("INP", DBF.INLINK),
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("HOPR", DBF.DOUBLE, prop=True),
    Field("LOPR", DBF.DOUBLE, prop=True),
    Field("MALM", DBF.ULONG, initial="1", special=SPC.NOMOD),
    Field("NELM", DBF.ULONG, initial="1", pp=True),
    Field("INDX", DBF.ULONG, pp=True),
    Field("BUSY", DBF.SHORT, special=SPC.NOMOD),
    Field("NORD", DBF.LONG, special=SPC.NOMOD),
    Field("BPTR", DBF.NOACCESS, special=SPC.NOMOD),
)


def init_subarray(rec: Record) -> None:
    require_soft_device(rec, ("Soft Channel",))
    if rec.MALM <= 0:
        rec.MALM = 1
    if rec.FTVL >= len(FTVL_TYPES):
        rec.FTVL = MENUS["menuFtype"].index("UCHAR")
    rec.VAL = new_array(element_type(rec), rec.MALM)
    rec.NORD = 0
    rec.NELM = min(rec.NELM, rec.MALM)
    count = _load_constant(rec, _request(rec))
    if count is not None:
        _subset(rec, count)


def _request(rec: Record) -> int:
    """How many elements a read asks of INP: enough to reach past INDX by NELM, at most MALM."""
    return min(rec.INDX + rec.NELM, rec.MALM)


def _load_constant(rec: Record, request: int) -> int | None:
    """dbLoadLinkArray of a constant INP into the buffer: the count loaded, None for an empty INP."""
    entry = rec._links.get("INP")
    if entry is None or entry[0].value is None:
        return None
    value = entry[0].value
    values = (value if isinstance(value, list) else [value])[:request]
    dbf = element_type(rec)
    try:
        if dbf is DBF.STRING:
            rec.VAL[:len(values)] = [str(v)[:39] for v in values]
        else:
            rec.VAL[:len(values)] = [float(v) if isinstance(v, str) else v for v in values]
    except (ValueError, OverflowError, TypeError):
        raise FieldValueError("INP", f"constant {values!r} does not fit FTVL {dbf.value}") from None
    return len(values)


def _subset(rec: Record, count: int) -> None:
    """subset(): of the ``count`` elements read, those from INDX (at most NELM) move to the front."""
    available = count - rec.INDX
    if available > 0:
        available = min(available, rec.NELM)
        segment = rec.VAL[rec.INDX:rec.INDX + available]
        # a numpy slice is a view of the buffer it is copied into (memmove semantics): copy it first
        rec.VAL[:available] = segment.copy() if isinstance(segment, np.ndarray) else segment
    else:
        available = 0
    rec.NORD = available
    rec.UDF = 0


def _read_sa(rec: Record) -> bool:
    """read_sa of devSASoft: INP read into the buffer, then subset(); a constant INP loads again (an
    empty one re-uses the NORD elements the buffer holds)."""
    nord = rec.NORD
    request = _request(rec)
    if rec.link_is_constant("INP"):
        count = _load_constant(rec, request)
        if count is None:
            count = rec.NORD
    else:
        values = rec.get_link("INP", element_type(rec), count=request)
        if values is None:
            return False
        if request == 1:
            values = [values]       # a count of 1 comes back as the scalar itself
        count = len(values)
        rec.VAL[:count] = values
        device_time(rec, "INP")
    _subset(rec, count)
    if nord != rec.NORD:
        rec.post("NORD", DBE_VALUE | DBE_LOG)
    return True


def process_subarray(rec: Record) -> None:
    if rec.PACT and rec.BUSY:
        return
    rec.NELM = min(rec.NELM, rec.MALM)
    if rec.INDX >= rec.MALM:
        rec.INDX = rec.MALM - 1
    ok = _read_sa(rec) and rec.NORD > 0
    rec.PACT = 1
    rec.stamp()
    rec.UDF = int(not ok)
    if not ok:
        rec.set_sevr(AlarmStatus.UDF, rec.UDFS)
    # every processing posts VAL
    rec.post("VAL", alarms.reset_alarms(rec) | DBE_VALUE | DBE_LOG)
    rec.fwd_link()
    rec.PACT = 0


def _cvt_dbaddr(rec: Record, fld: Field) -> tuple[DBF, int] | None:
    return (element_type(rec), rec.MALM) if fld.name == "VAL" else None


def _array_count(rec: Record, fld: Field) -> int:
    return 0 if rec.UDF else rec.NORD


def _put_array_count(rec: Record, fld: Field, count: int) -> None:
    nord = rec.NORD
    rec.NORD = min(count, rec.MALM)
    if nord != rec.NORD:
        rec.post("NORD", DBE_VALUE | DBE_LOG)


def _graphic(rec: Record, fld: Field) -> tuple[float, float] | None:
    return _LIMITS.get(fld.name, lambda rec: None)(rec)


def _control(rec: Record, fld: Field) -> tuple[float, float] | None:
    if fld.name == "NELM":
        return float(rec.MALM), 1.0
    return _graphic(rec, fld)


_LIMITS = {
    "VAL": lambda rec: (rec.HOPR, rec.LOPR),
    "INDX": lambda rec: (float(rec.MALM) - 1, 0.0),
    "NELM": lambda rec: (float(rec.MALM), 0.0),
    "NORD": lambda rec: (float(rec.MALM), 0.0),
    "BUSY": lambda rec: (1.0, 0.0),
}


register(RecordType(
    name="subArray",
    fields=SUBARRAY_FIELDS,
    process=process_subarray,
    init=init_subarray,
    cvt_dbaddr=_cvt_dbaddr,
    get_array_count=_array_count,
    put_array_count=_put_array_count,
    units=array_units,
    precision=analog_precision,
    graphic=_graphic,
    control=_control,
))
