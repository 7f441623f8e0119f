"""seq: on each processing, for the selected link groups in order, wait DLYn seconds, read DOn through DOLn
and write it through LNKn (seqRecord.c). The record stays active (PACT) until the last group is done; a
put-callback completes then."""
from __future__ import annotations

from typing import TYPE_CHECKING

from caproto.constants import DBE_LOG, DBE_VALUE, AlarmSeverity, AlarmStatus
from ioc import alarms

from . import RecordType, register
from .common import COMMON_FIELDS, analog_precision, constant
from .fanout import init_selection, read_seln, selection_mask
from .fields import DBF, Field, max_range
from .menus import MENUS

if TYPE_CHECKING:
    from ioc.database import Record

MENUS.update({"seqSELM": ("All", "Specified", "Mask")})
_ALL = 0

SEQ_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.LONG, pp=True),
    Field("SELM", DBF.MENU, menu="seqSELM"),
    Field("SELN", DBF.USHORT, initial="1"),
    Field("SELL", DBF.INLINK),
    Field("OFFS", DBF.SHORT, initial="0"),
    Field("SHFT", DBF.SHORT, initial="-1"),
    Field("OLDN", DBF.USHORT),
    Field("PREC", DBF.SHORT),
    Field("DLY0", DBF.DOUBLE),
    Field("DOL0", DBF.INLINK),
    Field("DO0", DBF.DOUBLE),
    Field("LNK0", DBF.OUTLINK),
    Field("DLY1", DBF.DOUBLE),
    Field("DOL1", DBF.INLINK),
    Field("DO1", DBF.DOUBLE),
    Field("LNK1", DBF.OUTLINK),
    Field("DLY2", DBF.DOUBLE),
    Field("DOL2", DBF.INLINK),
    Field("DO2", DBF.DOUBLE),
    Field("LNK2", DBF.OUTLINK),
    Field("DLY3", DBF.DOUBLE),
    Field("DOL3", DBF.INLINK),
    Field("DO3", DBF.DOUBLE),
    Field("LNK3", DBF.OUTLINK),
    Field("DLY4", DBF.DOUBLE),
    Field("DOL4", DBF.INLINK),
    Field("DO4", DBF.DOUBLE),
    Field("LNK4", DBF.OUTLINK),
    Field("DLY5", DBF.DOUBLE),
    Field("DOL5", DBF.INLINK),
    Field("DO5", DBF.DOUBLE),
    Field("LNK5", DBF.OUTLINK),
    Field("DLY6", DBF.DOUBLE),
    Field("DOL6", DBF.INLINK),
    Field("DO6", DBF.DOUBLE),
    Field("LNK6", DBF.OUTLINK),
    Field("DLY7", DBF.DOUBLE),
    Field("DOL7", DBF.INLINK),
    Field("DO7", DBF.DOUBLE),
    Field("LNK7", DBF.OUTLINK),
    Field("DLY8", DBF.DOUBLE),
    Field("DOL8", DBF.INLINK),
    Field("DO8", DBF.DOUBLE),
    Field("LNK8", DBF.OUTLINK),
    Field("DLY9", DBF.DOUBLE),
    Field("DOL9", DBF.INLINK),
    Field("DO9", DBF.DOUBLE),
    Field("LNK9", DBF.OUTLINK),
    Field("DLYA", DBF.DOUBLE),
    Field("DOLA", DBF.INLINK),
    Field("DOA", DBF.DOUBLE),
    Field("LNKA", DBF.OUTLINK),
    Field("DLYB", DBF.DOUBLE),
    Field("DOLB", DBF.INLINK),
    Field("DOB", DBF.DOUBLE),
    Field("LNKB", DBF.OUTLINK),
    Field("DLYC", DBF.DOUBLE),
    Field("DOLC", DBF.INLINK),
    Field("DOC", DBF.DOUBLE),
    Field("LNKC", DBF.OUTLINK),
    Field("DLYD", DBF.DOUBLE),
    Field("DOLD", DBF.INLINK),
    Field("DOD", DBF.DOUBLE),
    Field("LNKD", DBF.OUTLINK),
    Field("DLYE", DBF.DOUBLE),
    Field("DOLE", DBF.INLINK),
    Field("DOE", DBF.DOUBLE),
    Field("LNKE", DBF.OUTLINK),
    Field("DLYF", DBF.DOUBLE),
    Field("DOLF", DBF.INLINK),
    Field("DOF", DBF.DOUBLE),
    Field("LNKF", DBF.OUTLINK),
)

GROUPS = tuple(f"{n:X}" for n in range(16))
# seqDLYprecision and seqDLYlimit, the IOC variables' defaults
DLY_PRECISION = 2
DLY_LIMIT = 100000.0
# The metadata hooks locate a field by its offset from DLY1, four fields a group, as seqRecord.c does:
# group 0's fields get the defaults, DLYn and DOLn (n >= 1) a delay's, and DOn and LNKn (n >= 1) the
# metadata of DOL(n-1)'s source.
_DELAYS = frozenset(f"{kind}{n}" for n in GROUPS[1:] for kind in ("DLY", "DOL"))
_SOURCE_OF = {f"{kind}{n}": f"DOL{GROUPS[i]}" for i, n in enumerate(GROUPS[1:]) for kind in ("DO", "LNK")}


def init_seq(rec: Record) -> None:
    init_selection(rec)
    for n in GROUPS:
        value = constant(rec, f"DOL{n}", DBF.DOUBLE)
        if value is not None:
            setattr(rec, f"DO{n}", value)
    rec.OLDN = rec.SELN


def process_seq(rec: Record) -> None:
    if rec.PACT:
        _finish(rec)        # the last group is done
        return
    rec.PACT = 1
    if rec.SELM == _ALL:
        mask = selection_mask(rec, len(GROUPS))
    else:
        read_seln(rec)
        mask = selection_mask(rec, len(GROUPS))
        if mask is None:
            rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
            _finish(rec)
            return
    # groups with neither link are skipped
    rec.groups = tuple(n for bit, n in enumerate(GROUPS)
                       if mask >> bit & 1 and not (rec.link_is_constant(f"LNK{n}")
                                                   and rec.link_is_constant(f"DOL{n}")))
    rec.group_index = 0
    if not rec.groups:
        _finish(rec)
        return
    _next_group(rec)


def _next_group(rec: Record) -> None:
    """processNextLink: each group runs from a callback (after its delay), never in the caller's chain;
    after the last one the record completes."""
    if rec.group_index >= len(rec.groups):
        rec.db.resume(rec)
        return
    delay = getattr(rec, f"DLY{rec.groups[rec.group_index]}")
    rec.db.call_later(delay if delay > 0.0 else 0.0, lambda: _run_group(rec))


def _run_group(rec: Record) -> None:
    n = rec.groups[rec.group_index]
    value_field = f"DO{n}"
    before = getattr(rec, value_field)
    value = rec.get_link(f"DOL{n}", DBF.DOUBLE)
    if value is not None:
        setattr(rec, value_field, value)
    rec.stamp()
    rec.put_link(f"LNK{n}", DBF.DOUBLE, getattr(rec, value_field))
    if before != getattr(rec, value_field):
        rec.post(value_field, DBE_VALUE | DBE_LOG)
    rec.group_index += 1
    _next_group(rec)


def _finish(rec: Record) -> None:
    """asyncFinish."""
    rec.UDF = 0
    rec.stamp()
    mask = alarms.reset_alarms(rec)
    if mask:
        rec.post("VAL", mask)
    if rec.SELN != rec.OLDN:
        rec.post("SELN", mask | DBE_VALUE | DBE_LOG)
        rec.OLDN = rec.SELN
    rec.fwd_link()
    rec.PACT = 0


def _source(rec: Record, fld: Field):
    """For DOn (n >= 1): the record and field DOL(n-1) reads, or None for a constant link."""
    link = _SOURCE_OF.get(fld.name)
    entry = rec._links.get(link) if link is not None else None
    if entry is None or entry[1] is None:
        return None
    return entry[1], entry[2]


def _units(rec: Record, fld: Field) -> str:
    if fld.name in _DELAYS:
        return "s"
    source = _source(rec, fld)
    if source is None:
        return ""
    src, sfield = source
    return src.rtype.units(src, sfield) if src.rtype.units is not None else ""


def _precision(rec: Record, fld: Field) -> int:
    if fld.name in _DELAYS:
        return DLY_PRECISION
    source = _source(rec, fld)
    if source is not None:
        src, sfield = source
        if src.rtype.precision is not None and sfield.dbf in (DBF.DOUBLE, DBF.FLOAT):
            return src.rtype.precision(src, sfield) or 0
        return 0
    return analog_precision(rec, fld, frozenset())


def _graphic(rec: Record, fld: Field) -> tuple[float, float] | None:
    if fld.name in _DELAYS:
        # get_graphic_double sets the lower limit twice and leaves the upper one at dbAccess's 0
        return 0.0, 10.0
    source = _source(rec, fld)
    if source is not None:
        src, sfield = source
        if src.rtype.graphic is None:
            return 0.0, 0.0
        return src.rtype.graphic(src, sfield) or max_range(sfield.dbf)
    if fld.name in _SOURCE_OF:
        return 0.0, 0.0
    return None


def _control(rec: Record, fld: Field) -> tuple[float, float] | None:
    return (DLY_LIMIT, 0.0) if fld.name in _DELAYS else None


def _alarm(rec: Record, fld: Field) -> tuple[float, float, float, float] | None:
    source = _source(rec, fld)
    if source is None:
        return None
    src, sfield = source
    return src.rtype.alarm(src, sfield) if src.rtype.alarm is not None else None


register(RecordType(
    name="seq",
    fields=SEQ_FIELDS,
    process=process_seq,
    init=init_seq,
    devices=(),
    units=_units,
    precision=_precision,
    graphic=_graphic,
    control=_control,
    alarm=_alarm,
    state={"groups": (), "group_index": 0},
))
