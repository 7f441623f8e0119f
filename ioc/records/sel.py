"""sel: VAL is one of the inputs A..L (read through INPA..INPL): the one SELN names, or the highest, the
lowest or the median of those that are numbers (selRecord.c)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from caproto.constants import DBE_LOG, DBE_VALUE, AlarmSeverity, AlarmStatus
from ioc import alarms
from ioc.calc import INPUT_NAMES

from . import RecordType, register
from .calc import INPUT_LINKS, LAST_VALUES
from .common import (
    COMMON_FIELDS,
    analog_precision,
    c_unsigned,
    constant,
    limit_alarm_fields,
    value_alarm_limits,
)
from .fields import DBF, SPC, Field

if TYPE_CHECKING:
    from ioc.database import Record

SEL_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.DOUBLE, special=SPC.NOMOD),
    Field("SELM", DBF.MENU, menu="selSELM"),
    Field("SELN", DBF.USHORT),
    Field("PREC", DBF.SHORT),
    Field("NVL", DBF.INLINK),
) + tuple(Field(link, DBF.INLINK) for link in INPUT_LINKS) + (
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("HOPR", DBF.DOUBLE, prop=True),
    Field("LOPR", DBF.DOUBLE, prop=True),
    *limit_alarm_fields(DBF.DOUBLE),
    Field("HYST", DBF.DOUBLE),
    Field("ADEL", DBF.DOUBLE),
    Field("MDEL", DBF.DOUBLE),
) + tuple(Field(name, DBF.DOUBLE, pp=True) for name in INPUT_NAMES) \
  + tuple(Field(name, DBF.DOUBLE, special=SPC.NOMOD) for name in LAST_VALUES) + (
    Field("LALM", DBF.DOUBLE, special=SPC.NOMOD),
    Field("ALST", DBF.DOUBLE, special=SPC.NOMOD),
    Field("MLST", DBF.DOUBLE, special=SPC.NOMOD),
    Field("NLST", DBF.USHORT, special=SPC.NOMOD),
)

SEL_MAX = len(INPUT_NAMES)
_SPECIFIED, _HIGH_SIGNAL, _LOW_SIGNAL, _MEDIAN_SIGNAL = range(4)     # selSELM
# get_graphic_double / get_control_double: these report HOPR/LOPR
_SEL_LIMITED = frozenset({"VAL", "HIHI", "HIGH", "LOW", "LOLO", "LALM", "ALST", "MLST",
                          *INPUT_NAMES, *LAST_VALUES})


def init_sel(rec: Record) -> None:
    seln = constant(rec, "NVL", DBF.DOUBLE)
    if seln is not None:
        rec.SELN = c_unsigned(seln, 16)
    for name, link in zip(INPUT_NAMES, INPUT_LINKS, strict=True):
        value = constant(rec, link, DBF.DOUBLE)
        setattr(rec, name, math.nan if value is None else value)


def _get_input(rec: Record, link: str, name: str) -> bool:
    """dbGetLink(link, DBR_DOUBLE) into ``name``: a constant link reads nothing and succeeds."""
    if rec.link_is_constant(link):
        return True
    value = rec.get_link(link, DBF.DOUBLE)
    if value is None:
        return False
    setattr(rec, name, value)
    return True


def _fetch_values(rec: Record) -> bool:
    """fetch_values: Specified reads NVL and the one input it names; otherwise every input is read, and
    as in selRecord.c only the last read (INPL) decides whether the selection happens."""
    if rec.SELM == _SPECIFIED:
        if not rec.link_is_constant("NVL"):
            seln = rec.get_link("NVL", DBF.DOUBLE)
            if seln is None:
                return False
            rec.SELN = c_unsigned(seln, 16)
        if rec.SELN >= SEL_MAX:
            return True
        return _get_input(rec, INPUT_LINKS[rec.SELN], INPUT_NAMES[rec.SELN])
    ok = True
    for name, link in zip(INPUT_NAMES, INPUT_LINKS, strict=True):
        ok = _get_input(rec, link, name)
    return ok


def _select(rec: Record) -> None:
    """do_sel: VAL (and, but for Specified, SELN) by the SELM rule; NaN inputs take no part."""
    values = [getattr(rec, name) for name in INPUT_NAMES]
    selm = rec.SELM
    if selm == _SPECIFIED:
        if rec.SELN >= SEL_MAX:
            rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
            return
        val = values[rec.SELN]
    elif selm in (_HIGH_SIGNAL, _LOW_SIGNAL):
        high = selm == _HIGH_SIGNAL
        val = -math.inf if high else math.inf
        for i, value in enumerate(values):
            if not math.isnan(value) and (val < value if high else val > value):
                val = value
                rec.SELN = i
    elif selm == _MEDIAN_SIGNAL:
        numbers = sorted(value for value in values if not math.isnan(value))
        rec.SELN = len(numbers)
        val = numbers[len(numbers) // 2] if numbers else math.nan
    else:
        rec.set_sevr(AlarmStatus.CALC, AlarmSeverity.INVALID)
        return
    rec.VAL = val
    rec.UDF = int(math.isnan(val))


def process_sel(rec: Record) -> None:
    rec.PACT = 1
    if _fetch_values(rec):
        _select(rec)
    rec.stamp()
    alarms.limit_alarms(rec, filtered=False)
    _monitor(rec)
    rec.fwd_link()
    rec.PACT = 0


def _monitor(rec: Record) -> None:
    mask = alarms.reset_alarms(rec)
    if alarms.check_deadband(rec.MLST, rec.VAL, rec.MDEL):
        mask |= DBE_VALUE
        rec.MLST = rec.VAL
    if alarms.check_deadband(rec.ALST, rec.VAL, rec.ADEL):
        mask |= DBE_LOG
        rec.ALST = rec.VAL
    if mask:
        rec.post("VAL", mask)
    mask |= DBE_VALUE | DBE_LOG
    if rec.NLST != rec.SELN:
        rec.NLST = rec.SELN
        rec.post("SELN", mask)
    # every input that changed, even when VAL did not (a NaN input never equals its last value)
    for name, last in zip(INPUT_NAMES, LAST_VALUES, strict=True):
        value = getattr(rec, name)
        if value != getattr(rec, last):
            rec.post(name, mask)
            setattr(rec, last, value)


def _units(rec: Record, fld: Field) -> str:
    return rec.EGU if fld.dbf is DBF.DOUBLE else ""


def _limits(rec: Record, fld: Field) -> tuple[float, float] | None:
    return (rec.HOPR, rec.LOPR) if fld.name in _SEL_LIMITED else None


register(RecordType(
    name="sel",
    fields=SEL_FIELDS,
    process=process_sel,
    init=init_sel,
    devices=(),
    units=_units,
    precision=analog_precision,
    graphic=_limits,
    control=_limits,
    alarm=value_alarm_limits,
))
