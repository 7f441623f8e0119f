"""calc: VAL = CALC(A..L), with the inputs fetched through INPA..INPL (calcRecord.c)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from caproto.constants import DBE_ALARM, DBE_LOG, DBE_VALUE, ECA, AlarmSeverity, AlarmStatus
from caproto.errors import CAError
from ioc import alarms
from ioc.calc import INPUT_NAMES, CalcSyntaxError, compile_calc

from . import RecordType, register
from .common import (
    ANALOG_LIMITED,
    COMMON_FIELDS,
    analog_precision,
    constant,
    limit_alarm_fields,
    value_alarm_limits,
)
from .fields import DBF, SPC, Field, FieldValueError, max_range

if TYPE_CHECKING:
    from ioc.database import Record

CALC_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.DOUBLE),
    Field("CALC", DBF.STRING, size=80, initial="0", special=SPC.CALC, pp=True),
    Field("INPA", DBF.INLINK),
    Field("INPB", DBF.INLINK),
    Field("INPC", DBF.INLINK),
    Field("INPD", DBF.INLINK),
    Field("INPE", DBF.INLINK),
    Field("INPF", DBF.INLINK),
    Field("INPG", DBF.INLINK),
    Field("INPH", DBF.INLINK),
    Field("INPI", DBF.INLINK),
    Field("INPJ", DBF.INLINK),
    Field("INPK", DBF.INLINK),
    Field("INPL", DBF.INLINK),
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("PREC", DBF.SHORT, prop=True),
    Field("HOPR", DBF.DOUBLE, prop=True),
    Field("LOPR", DBF.DOUBLE, prop=True),
    *limit_alarm_fields(DBF.DOUBLE),
    Field("AFTC", DBF.DOUBLE),
    Field("AFVL", DBF.DOUBLE, special=SPC.NOMOD),
    Field("HYST", DBF.DOUBLE),
    Field("ADEL", DBF.DOUBLE),
    Field("MDEL", DBF.DOUBLE),
    Field("A", DBF.DOUBLE, pp=True),
    Field("B", DBF.DOUBLE, pp=True),
    Field("C", DBF.DOUBLE, pp=True),
    Field("D", DBF.DOUBLE, pp=True),
    Field("E", DBF.DOUBLE, pp=True),
    Field("F", DBF.DOUBLE, pp=True),
    Field("G", DBF.DOUBLE, pp=True),
    Field("H", DBF.DOUBLE, pp=True),
    Field("I", DBF.DOUBLE, pp=True),
    Field("J", DBF.DOUBLE, pp=True),
    Field("K", DBF.DOUBLE, pp=True),
    Field("L", DBF.DOUBLE, pp=True),
    Field("LA", DBF.DOUBLE, special=SPC.NOMOD),
    Field("LB", DBF.DOUBLE, special=SPC.NOMOD),
    Field("LC", DBF.DOUBLE, special=SPC.NOMOD),
    Field("LD", DBF.DOUBLE, special=SPC.NOMOD),
    Field("LE", DBF.DOUBLE, special=SPC.NOMOD),
    Field("LF", DBF.DOUBLE, special=SPC.NOMOD),
    Field("LG", DBF.DOUBLE, special=SPC.NOMOD),
    Field("LH", DBF.DOUBLE, special=SPC.NOMOD),
    Field("LI", DBF.DOUBLE, special=SPC.NOMOD),
    Field("LJ", DBF.DOUBLE, special=SPC.NOMOD),
    Field("LK", DBF.DOUBLE, special=SPC.NOMOD),
    Field("LL", DBF.DOUBLE, special=SPC.NOMOD),
    Field("LALM", DBF.DOUBLE, special=SPC.NOMOD),
    Field("ALST", DBF.DOUBLE, special=SPC.NOMOD),
    Field("MLST", DBF.DOUBLE, special=SPC.NOMOD),
    Field("RPCL", DBF.NOACCESS, special=SPC.NOMOD),
)

INPUT_LINKS = tuple("INP" + name for name in INPUT_NAMES)
LAST_VALUES = tuple("L" + name for name in INPUT_NAMES)
# get_linkNumber: A..L and LA..LL report the metadata of their input link's source
_LINK_OF_INPUT = {**dict(zip(INPUT_NAMES, INPUT_LINKS, strict=True)),
                  **dict(zip(LAST_VALUES, INPUT_LINKS, strict=True))}
_CALC_LIMITED = ANALOG_LIMITED - {"SVAL"}


def init_calc(rec: Record) -> None:
    for name, link in zip(INPUT_NAMES, INPUT_LINKS, strict=True):
        value = constant(rec, link, DBF.DOUBLE)
        if value is not None:
            setattr(rec, name, value)
    try:
        rec.compiled = compile_calc(rec.CALC)
    except CalcSyntaxError as exc:
        raise FieldValueError("CALC", f"invalid CALC expression: {exc}") from None


def process_calc(rec: Record) -> None:
    rec.PACT = 1
    if _fetch_values(rec):
        if rec.compiled is None:
            # a CALC put that did not compile (the C IOC keeps the text too): calcPerform fails
            rec.set_sevr(AlarmStatus.CALC, AlarmSeverity.INVALID)
        else:
            _evaluate(rec)
    rec.stamp()
    alarms.limit_alarms(rec)
    mask = alarms.reset_alarms(rec)
    if alarms.check_deadband(rec.MLST, rec.VAL, rec.MDEL):
        mask |= DBE_VALUE
        rec.MLST = rec.VAL
    if alarms.check_deadband(rec.ALST, rec.VAL, rec.ADEL):
        mask |= DBE_LOG
        rec.ALST = rec.VAL
    if mask:
        rec.post("VAL", mask)
    for name, last in zip(INPUT_NAMES, LAST_VALUES, strict=True):
        value = getattr(rec, name)
        if value != getattr(rec, last) or mask & DBE_ALARM:
            rec.post(name, mask | DBE_VALUE | DBE_LOG)
            setattr(rec, last, value)
    rec.fwd_link()
    rec.PACT = 0


def _evaluate(rec: Record) -> None:
    args = {name: getattr(rec, name) for name in rec.compiled.inputs_used}
    args["VAL"] = rec.VAL
    rec.VAL = rec.compiled.evaluate(args)
    for name in rec.compiled.stores:
        setattr(rec, name, args[name])
    rec.UDF = int(math.isnan(rec.VAL))


def _fetch_values(rec: Record) -> bool:
    ok = True
    for name, link in zip(INPUT_NAMES, INPUT_LINKS, strict=True):
        if rec.link_is_constant(link):
            continue
        value = rec.get_link(link, DBF.DOUBLE)
        if value is None:
            ok = False
        else:
            setattr(rec, name, value)
    return ok


def special_calc(rec: Record, fld: Field, after: bool) -> None:
    if fld.special is SPC.CALC and after:
        try:
            rec.compiled = compile_calc(rec.CALC)
        except CalcSyntaxError as exc:
            rec.compiled = None
            raise CAError(ECA.PUTFAIL, f"{rec.NAME}.CALC: {exc}") from None


def _input_source(rec: Record, fld: Field):
    """For A..L, the record and field its input link reads (calc reports their metadata)."""
    link = _LINK_OF_INPUT.get(fld.name)
    if link is None:
        return None
    entry = rec._links.get(link)
    if entry is None or entry[1] is None:
        return None
    return entry[1], entry[2]


def _units(rec: Record, fld: Field) -> str:
    if fld.dbf is not DBF.DOUBLE:
        return ""
    source = _input_source(rec, fld)
    if source is not None:
        src, sfield = source
        return src.rtype.units(src, sfield) if src.rtype.units is not None else ""
    if fld.name in _LINK_OF_INPUT and rec.link_is_constant(_LINK_OF_INPUT[fld.name]):
        return ""
    return rec.EGU


def _precision(rec: Record, fld: Field) -> int:
    source = _input_source(rec, fld)
    if source is not None:
        src, sfield = source
        if src.rtype.precision is not None and sfield.dbf in (DBF.DOUBLE, DBF.FLOAT):
            return src.rtype.precision(src, sfield) or 0
        return 0
    if fld.name in _LINK_OF_INPUT:
        return rec.PREC
    return analog_precision(rec, fld)


def _graphic(rec: Record, fld: Field) -> tuple[float, float] | None:
    if fld.name in _CALC_LIMITED:
        return rec.HOPR, rec.LOPR
    source = _input_source(rec, fld)
    if source is not None:
        src, sfield = source
        if src.rtype.graphic is None:
            return 0.0, 0.0
        return src.rtype.graphic(src, sfield) or max_range(sfield.dbf)
    if fld.name in _LINK_OF_INPUT:
        return 0.0, 0.0
    return None


def _control(rec: Record, fld: Field) -> tuple[float, float] | None:
    return (rec.HOPR, rec.LOPR) if fld.name in _CALC_LIMITED else None


def _alarm(rec: Record, fld: Field) -> tuple[float, float, float, float] | None:
    if fld.name == "VAL":
        return value_alarm_limits(rec, fld)
    source = _input_source(rec, fld)
    if source is not None:
        src, sfield = source
        return src.rtype.alarm(src, sfield) if src.rtype.alarm is not None else None
    return None


register(RecordType(
    name="calc",
    fields=CALC_FIELDS,
    process=process_calc,
    init=init_calc,
    devices=(),
    special=special_calc,
    units=_units,
    precision=_precision,
    graphic=_graphic,
    control=_control,
    alarm=_alarm,
    state={"compiled": compile_calc("0")},
))
