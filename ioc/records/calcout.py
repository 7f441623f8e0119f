"""calcout: VAL = CALC(A..L) and, when OOPT says so, OVAL (VAL or OCAL) written through OUT, optionally
ODLY seconds later, then posts the event OEVT names (calcoutRecord.c with the "Soft Channel" device
support)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from caproto.constants import DBE_ALARM, DBE_LOG, DBE_VALUE, AlarmSeverity, AlarmStatus
from ioc import alarms
from ioc.calc import INPUT_NAMES, CalcExpression, CalcSyntaxError, compile_calc

from . import (
    RECORD_TYPES,
    RecordType,
    calc,  # noqa: F401  (registers calc, whose metadata hooks calcout shares)
    register,
)
from .common import COMMON_FIELDS, constant, limit_alarm_fields
from .fields import DBF, SPC, Field, FieldValueError, max_range
from .menus import MENUS

if TYPE_CHECKING:
    from ioc.database import Record

# The calcout menus (softIoc.dbd), registered with the others when this family loads.
MENUS.update({
    "calcoutDOPT": ("Use CALC", "Use OCAL"),
    "calcoutINAV": ("Ext PV NC", "Ext PV OK", "Local PV", "Constant"),
    "calcoutOOPT": ("Every Time", "On Change", "When Zero", "When Non-zero", "Transition To Zero",
                    "Transition To Non-zero"),
})

CALCOUT_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("RPVT", DBF.NOACCESS, special=SPC.NOMOD),
    Field("VAL", DBF.DOUBLE),
    Field("PVAL", DBF.DOUBLE),
    Field("CALC", DBF.STRING, size=80, initial="0", special=SPC.CALC, pp=True),
    Field("CLCV", DBF.LONG),
    Field("INPA", DBF.INLINK, special=SPC.MOD),
    Field("INPB", DBF.INLINK, special=SPC.MOD),
    Field("INPC", DBF.INLINK, special=SPC.MOD),
    Field("INPD", DBF.INLINK, special=SPC.MOD),
    Field("INPE", DBF.INLINK, special=SPC.MOD),
    Field("INPF", DBF.INLINK, special=SPC.MOD),
    Field("INPG", DBF.INLINK, special=SPC.MOD),
    Field("INPH", DBF.INLINK, special=SPC.MOD),
    Field("INPI", DBF.INLINK, special=SPC.MOD),
    Field("INPJ", DBF.INLINK, special=SPC.MOD),
    Field("INPK", DBF.INLINK, special=SPC.MOD),
    Field("INPL", DBF.INLINK, special=SPC.MOD),
    Field("OUT", DBF.OUTLINK, special=SPC.MOD),
    Field("INAV", DBF.MENU, menu="calcoutINAV", initial="1", special=SPC.NOMOD),
    Field("INBV", DBF.MENU, menu="calcoutINAV", initial="1", special=SPC.NOMOD),
    Field("INCV", DBF.MENU, menu="calcoutINAV", initial="1", special=SPC.NOMOD),
    Field("INDV", DBF.MENU, menu="calcoutINAV", initial="1", special=SPC.NOMOD),
    Field("INEV", DBF.MENU, menu="calcoutINAV", initial="1", special=SPC.NOMOD),
    Field("INFV", DBF.MENU, menu="calcoutINAV", initial="1", special=SPC.NOMOD),
    Field("INGV", DBF.MENU, menu="calcoutINAV", initial="1", special=SPC.NOMOD),
    Field("INHV", DBF.MENU, menu="calcoutINAV", initial="1", special=SPC.NOMOD),
    Field("INIV", DBF.MENU, menu="calcoutINAV", initial="1", special=SPC.NOMOD),
    Field("INJV", DBF.MENU, menu="calcoutINAV", initial="1", special=SPC.NOMOD),
    Field("INKV", DBF.MENU, menu="calcoutINAV", initial="1", special=SPC.NOMOD),
    Field("INLV", DBF.MENU, menu="calcoutINAV", initial="1", special=SPC.NOMOD),
    Field("OUTV", DBF.MENU, menu="calcoutINAV", special=SPC.NOMOD),
    Field("OOPT", DBF.MENU, menu="calcoutOOPT"),
    Field("ODLY", DBF.DOUBLE),
    Field("DLYA", DBF.USHORT, special=SPC.NOMOD),
    Field("DOPT", DBF.MENU, menu="calcoutDOPT"),
    Field("OCAL", DBF.STRING, size=80, initial="0", special=SPC.CALC, pp=True),
    Field("OCLV", DBF.LONG),
    Field("OEVT", DBF.STRING, size=40, special=SPC.MOD),
    Field("EPVT", DBF.NOACCESS, special=SPC.NOMOD),
    Field("IVOA", DBF.MENU, menu="menuIvoa"),
    Field("IVOV", DBF.DOUBLE),
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("PREC", DBF.SHORT, prop=True),
    Field("HOPR", DBF.DOUBLE, prop=True),
    Field("LOPR", DBF.DOUBLE, prop=True),
    *limit_alarm_fields(DBF.DOUBLE),
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
    Field("OVAL", DBF.DOUBLE),
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
    Field("POVL", DBF.DOUBLE),
    Field("LALM", DBF.DOUBLE, special=SPC.NOMOD),
    Field("ALST", DBF.DOUBLE, special=SPC.NOMOD),
    Field("MLST", DBF.DOUBLE, special=SPC.NOMOD),
    Field("RPCL", DBF.NOACCESS, special=SPC.NOMOD),
    Field("ORPC", DBF.NOACCESS, special=SPC.NOMOD),
)

INPUT_LINKS = tuple("INP" + name for name in INPUT_NAMES)
LAST_VALUES = tuple("L" + name for name in INPUT_NAMES)
# INAV..INLV then OUTV: the status of INPA..INPL then OUT
LINK_STATUS = tuple(f"IN{name}V" for name in INPUT_NAMES) + ("OUTV",)
_STATUS_OF_LINK = dict(zip((*INPUT_LINKS, "OUT"), LINK_STATUS, strict=True))
_VALUE_OF_LINK = dict(zip(INPUT_LINKS, INPUT_NAMES, strict=True))

_EXT_NC, _EXT, _LOCAL, _CONSTANT = 0, 1, 2, 3              # calcoutINAV
(_EVERY_TIME, _ON_CHANGE, _WHEN_ZERO, _WHEN_NON_ZERO, _TO_ZERO, _TO_NON_ZERO) = range(6)    # calcoutOOPT
_USE_OCAL = 1                                              # calcoutDOPT
_IVOA_CONTINUE, _IVOA_DONT_DRIVE, _IVOA_SET_IVOV = 0, 1, 2
_INVALID = int(AlarmSeverity.INVALID)
_CA_PROCESS = ("CA", "CP", "CPP")      # flags that make a link a dbCa (volatile) one
# calcoutODLYprecision and calcoutODLYlimit, the IOC variables' defaults
ODLY_PRECISION = 2
ODLY_LIMIT = 100000.0


def _compile(text: str) -> tuple[CalcExpression | None, int]:
    """postfix(): the compiled expression (None if refused) and the CLCV/OCLV status (0 or -1)."""
    try:
        return compile_calc(text), 0
    except CalcSyntaxError:
        return None, -1


def _is_ca_link(rec: Record, link_field: str) -> bool:
    entry = rec._links.get(link_field)
    return entry is not None and entry[1] is not None and entry[0].process.value in _CA_PROCESS


def _link_status(rec: Record, link_field: str) -> int:
    """What INxV/OUTV says about a link at init_record (where no dbCa link is connected yet)."""
    if rec.link_is_constant(link_field):
        return _CONSTANT
    return _EXT_NC if _is_ca_link(rec, link_field) else _LOCAL


def init_calcout(rec: Record) -> None:
    for name, link in zip(INPUT_NAMES, INPUT_LINKS, strict=True):
        value = constant(rec, link, DBF.DOUBLE)
        if value is not None:
            setattr(rec, name, value)
    for link, status in _STATUS_OF_LINK.items():
        setattr(rec, status, _link_status(rec, link))
    rec.ca_links = any(_is_ca_link(rec, link) for link in _STATUS_OF_LINK)
    # dbPut of an SPC_CALC field refuses an expression postfix() cannot translate while the .db loads
    for expression, attribute in (("CALC", "compiled"), ("OCAL", "compiled_ocal")):
        try:
            setattr(rec, attribute, compile_calc(getattr(rec, expression)))
        except CalcSyntaxError as exc:
            raise FieldValueError(expression, f"invalid {expression} expression: {exc}") from None
    rec.CLCV = rec.OCLV = 0
    rec.PVAL = rec.MLST = rec.ALST = rec.LALM = rec.VAL
    rec.POVL = rec.OVAL


def process_calcout(rec: Record) -> None:
    if not rec.PACT:
        rec.PACT = 1
        if rec.ca_links:
            _check_links(rec)
        if _fetch_values(rec):
            if rec.compiled is None:
                rec.set_sevr(AlarmStatus.CALC, AlarmSeverity.INVALID, "calcPerform")
            else:
                rec.VAL = _perform(rec, rec.compiled, rec.VAL)
                rec.UDF = int(math.isnan(rec.VAL))
        alarms.limit_alarms(rec, filtered=False)
        rec.stamp()
        output = _wants_output(rec)
        rec.PVAL = rec.VAL
        if output:
            if rec.ODLY > 0.0:
                # stays active until the delayed second pass writes the output
                rec.DLYA = 1
                rec.post("DLYA", DBE_VALUE)
                rec.db.call_later(rec.ODLY, lambda: rec.db.resume(rec))
                return
            _exec_output(rec)
    else:
        # the delayed pass
        rec.stamp()
        if rec.DLYA:
            rec.DLYA = 0
            rec.post("DLYA", DBE_VALUE)
            _exec_output(rec)
    _monitor(rec)
    rec.fwd_link()
    rec.PACT = 0


def _wants_output(rec: Record) -> bool:
    oopt, val, pval = rec.OOPT, rec.VAL, rec.PVAL
    if oopt == _EVERY_TIME:
        return True
    if oopt == _ON_CHANGE:
        return not abs(pval - val) <= rec.MDEL      # NaN on either side counts as a change
    if oopt == _WHEN_ZERO:
        return val == 0.0
    if oopt == _WHEN_NON_ZERO:
        return val != 0.0
    if oopt == _TO_ZERO:
        return pval != 0.0 and val == 0.0
    if oopt == _TO_NON_ZERO:
        return pval == 0.0 and val != 0.0
    return False


def _perform(rec: Record, expression: CalcExpression, current: float) -> float:
    """calcPerform over A..L, with ``current`` as VAL; stores (A:=...) land in the record's inputs."""
    args = {name: getattr(rec, name) for name in expression.inputs_used}
    args["VAL"] = current
    result = expression.evaluate(args)
    for name in expression.stores:
        setattr(rec, name, args[name])
    return result


def _exec_output(rec: Record) -> None:
    if rec.DOPT == _USE_OCAL:
        if rec.compiled_ocal is None:
            rec.set_sevr(AlarmStatus.CALC, AlarmSeverity.INVALID, "OCAL calcPerform")
        else:
            rec.OVAL = _perform(rec, rec.compiled_ocal, rec.OVAL)
            rec.UDF = int(math.isnan(rec.OVAL))
    else:
        rec.OVAL = rec.VAL
    if rec.UDF:
        rec.set_sevr(AlarmStatus.UDF, rec.UDFS)
    if rec.NSEV < _INVALID or rec.IVOA == _IVOA_CONTINUE:
        rec.put_link("OUT", DBF.DOUBLE, rec.OVAL)
    elif rec.IVOA == _IVOA_SET_IVOV:
        rec.OVAL = rec.IVOV
        rec.put_link("OUT", DBF.DOUBLE, rec.OVAL)
    else:
        return
    if rec.OEVT:
        rec.db.post_event(rec.OEVT)


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
    for name, last in zip(INPUT_NAMES, LAST_VALUES, strict=True):
        value = getattr(rec, name)
        if value != getattr(rec, last) or mask & DBE_ALARM:
            rec.post(name, mask | DBE_VALUE | DBE_LOG)
            setattr(rec, last, value)
    if rec.POVL != rec.OVAL:
        rec.post("OVAL", mask | DBE_VALUE | DBE_LOG)
        rec.POVL = rec.OVAL


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


def _check_links(rec: Record) -> None:
    """checkLinks: the status of a dbCa link moves between Ext PV NC and Ext PV OK with its connection;
    once the record has no dbCa link left, processing stops looking."""
    connected = rec.db._ca_links_connected
    rec.ca_links = False
    for link, status in _STATUS_OF_LINK.items():
        if not _is_ca_link(rec, link):
            continue
        rec.ca_links = True
        before = getattr(rec, status)
        if connected and before == _EXT_NC:
            setattr(rec, status, _EXT)
        elif not connected and before == _EXT:
            setattr(rec, status, _EXT_NC)
        else:
            continue
        rec.post(status, DBE_VALUE)


def special_calcout(rec: Record, fld: Field, after: bool) -> None:
    name = fld.name
    if not after:
        return
    if name == "CALC":
        rec.compiled, rec.CLCV = _compile(rec.CALC)
        rec.post("CLCV", DBE_VALUE)
    elif name == "OCAL":
        rec.compiled_ocal, rec.OCLV = _compile(rec.OCAL)
        rec.post("OCLV", DBE_VALUE)
    elif name in _STATUS_OF_LINK:
        # dbPutFieldLink calls special() after setting the link text but before adding the link: the
        # link looks constant with no value to load, so the status says Constant (dbCa connection checks
        # only ever move a status between Ext PV NC and Ext PV OK) and the input keeps its value.
        value_field = _VALUE_OF_LINK.get(name)
        if value_field is not None:
            rec.post(value_field, DBE_VALUE)
        setattr(rec, _STATUS_OF_LINK[name], _CONSTANT)
        rec.post(_STATUS_OF_LINK[name], DBE_VALUE)


# Metadata: as the calc record's, plus ODLY (seconds, its own precision and limits).
_CALC = RECORD_TYPES["calc"]


def _units(rec: Record, fld: Field) -> str:
    return "s" if fld.name == "ODLY" else _CALC.units(rec, fld)


def _precision(rec: Record, fld: Field) -> int:
    return ODLY_PRECISION if fld.name == "ODLY" else _CALC.precision(rec, fld)


def _graphic(rec: Record, fld: Field) -> tuple[float, float] | None:
    if fld.name == "ODLY":
        return max_range(DBF.DOUBLE)[0], 0.0
    return _CALC.graphic(rec, fld)


def _control(rec: Record, fld: Field) -> tuple[float, float] | None:
    return (ODLY_LIMIT, 0.0) if fld.name == "ODLY" else _CALC.control(rec, fld)


register(RecordType(
    name="calcout",
    fields=CALCOUT_FIELDS,
    process=process_calcout,
    init=init_calcout,
    devices=("Soft Channel", "Async Soft Channel"),
    special=special_calcout,
    units=_units,
    precision=_precision,
    graphic=_graphic,
    control=_control,
    alarm=_CALC.alarm,
    # ca_links: caLinkStat is not NO_CA_LINKS (processing checks the dbCa links' connections)
    state={"compiled": compile_calc("0"), "compiled_ocal": compile_calc("0"), "ca_links": False},
))
