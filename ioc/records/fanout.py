"""fanout and dfanout: forward processing to several records (fanoutRecord.c), and write one value through
several output links (dfanoutRecord.c). Both choose their links with SELM: all of them, the one SELN
names, or those whose bits SELN sets; SELL, when it is a link, reads SELN first."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from caproto.constants import DBE_LOG, DBE_VALUE, AlarmSeverity, AlarmStatus
from ioc import alarms

from . import RecordType, register
from .common import COMMON_FIELDS, analog_precision, constant, limit_alarm_fields, value_alarm_limits
from .fields import DBF, SPC, Field
from .menus import MENUS

if TYPE_CHECKING:
    from ioc.database import Record

# The SELM menus of these records (softIoc.dbd), registered with the others when this family loads.
MENUS.update({
    "fanoutSELM": ("All", "Specified", "Mask"),
    "dfanoutSELM": ("All", "Specified", "Mask"),
})
_ALL, _SPECIFIED, _MASK = 0, 1, 2
_OMSL_CLOSED_LOOP = 1

DFANOUT_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.DOUBLE, pp=True),
    Field("SELM", DBF.MENU, menu="dfanoutSELM"),
    Field("SELN", DBF.USHORT, initial="1"),
    Field("SELL", DBF.INLINK),
    Field("OUTA", DBF.OUTLINK),
    Field("OUTB", DBF.OUTLINK),
    Field("OUTC", DBF.OUTLINK),
    Field("OUTD", DBF.OUTLINK),
    Field("OUTE", DBF.OUTLINK),
    Field("OUTF", DBF.OUTLINK),
    Field("OUTG", DBF.OUTLINK),
    Field("OUTH", DBF.OUTLINK),
    Field("DOL", DBF.INLINK),
    Field("OMSL", DBF.MENU, menu="menuOmsl"),
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("PREC", DBF.SHORT, prop=True),
    Field("HOPR", DBF.DOUBLE, prop=True),
    Field("LOPR", DBF.DOUBLE, prop=True),
    *limit_alarm_fields(DBF.DOUBLE),
    Field("HYST", DBF.DOUBLE),
    Field("ADEL", DBF.DOUBLE),
    Field("MDEL", DBF.DOUBLE),
    Field("LALM", DBF.DOUBLE, special=SPC.NOMOD),
    Field("ALST", DBF.DOUBLE, special=SPC.NOMOD),
    Field("MLST", DBF.DOUBLE, special=SPC.NOMOD),
)

FANOUT_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.LONG, pp=True),
    Field("SELM", DBF.MENU, menu="fanoutSELM"),
    Field("SELN", DBF.USHORT, initial="1"),
    Field("SELL", DBF.INLINK),
    Field("OFFS", DBF.SHORT, initial="0"),
    Field("SHFT", DBF.SHORT, initial="-1"),
    Field("LNK0", DBF.FWDLINK),
    Field("LNK1", DBF.FWDLINK),
    Field("LNK2", DBF.FWDLINK),
    Field("LNK3", DBF.FWDLINK),
    Field("LNK4", DBF.FWDLINK),
    Field("LNK5", DBF.FWDLINK),
    Field("LNK6", DBF.FWDLINK),
    Field("LNK7", DBF.FWDLINK),
    Field("LNK8", DBF.FWDLINK),
    Field("LNK9", DBF.FWDLINK),
    Field("LNKA", DBF.FWDLINK),
    Field("LNKB", DBF.FWDLINK),
    Field("LNKC", DBF.FWDLINK),
    Field("LNKD", DBF.FWDLINK),
    Field("LNKE", DBF.FWDLINK),
    Field("LNKF", DBF.FWDLINK),
)

DFANOUT_LINKS = tuple(f"OUT{letter}" for letter in "ABCDEFGH")
FANOUT_LINKS = tuple(f"LNK{digit:X}" for digit in range(16))


def read_seln(rec: Record) -> None:
    """dbGetLink(SELL, DBR_USHORT, &SELN): SELN follows SELL when SELL is a link."""
    seln = rec.get_link("SELL", DBF.USHORT)
    if seln is not None:
        rec.SELN = seln


def init_selection(rec: Record) -> None:
    """recGblInitConstantLink(SELL, DBF_USHORT, &SELN)."""
    seln = constant(rec, "SELL", DBF.USHORT)
    if seln is not None:
        rec.SELN = seln & 0xFFFF


# --- dfanout -----------------------------------------------------------------------------------------------

def init_dfanout(rec: Record) -> None:
    init_selection(rec)
    val = constant(rec, "DOL", DBF.DOUBLE)
    if val is not None:
        rec.VAL = val
        rec.UDF = int(math.isnan(val))


def process_dfanout(rec: Record) -> int | None:
    status = None       # only a failed DOL read is the status: the outputs' are not (dfanoutRecord.c)
    if not rec.PACT and rec.OMSL == _OMSL_CLOSED_LOOP and not rec.link_is_constant("DOL"):
        val = rec.get_link("DOL", DBF.DOUBLE)
        if val is not None:
            rec.VAL = val
            rec.UDF = int(math.isnan(val))
        else:
            status = -1
    rec.PACT = 1
    rec.stamp()
    read_seln(rec)
    alarms.limit_alarms(rec, filtered=False)
    _push_values(rec)
    mask = alarms.reset_alarms(rec)
    if alarms.check_deadband(rec.MLST, rec.VAL, rec.MDEL):
        mask |= DBE_VALUE
        rec.MLST = rec.VAL
    if alarms.check_deadband(rec.ALST, rec.VAL, rec.ADEL):
        mask |= DBE_LOG
        rec.ALST = rec.VAL
    if mask:
        rec.post("VAL", mask)
    rec.fwd_link()
    rec.PACT = 0
    return status


def _push_values(rec: Record) -> None:
    selm, seln = rec.SELM, rec.SELN
    if selm == _ALL:
        links = DFANOUT_LINKS
    elif selm == _SPECIFIED:
        if seln > len(DFANOUT_LINKS):
            rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
            return
        links = DFANOUT_LINKS[seln - 1:seln] if seln else ()
    elif selm == _MASK:
        links = tuple(link for bit, link in enumerate(DFANOUT_LINKS) if seln >> bit & 1)
    else:
        rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
        return
    for link in links:
        rec.put_link(link, DBF.DOUBLE, rec.VAL)


_DFANOUT_DISPLAY = frozenset({"VAL", "HIHI", "HIGH", "LOW", "LOLO", "LALM", "ALST", "MLST"})
_DFANOUT_CONTROL = frozenset({"VAL", "LALM", "ALST", "MLST"})


def _dfanout_units(rec: Record, fld: Field) -> str:
    return rec.EGU if fld.dbf is DBF.DOUBLE else ""


def _dfanout_graphic(rec: Record, fld: Field) -> tuple[float, float] | None:
    return (rec.HOPR, rec.LOPR) if fld.name in _DFANOUT_DISPLAY else None


def _dfanout_control(rec: Record, fld: Field) -> tuple[float, float] | None:
    return (rec.HOPR, rec.LOPR) if fld.name in _DFANOUT_CONTROL else None


register(RecordType(
    name="dfanout",
    fields=DFANOUT_FIELDS,
    process=process_dfanout,
    init=init_dfanout,
    devices=(),
    units=_dfanout_units,
    precision=analog_precision,
    graphic=_dfanout_graphic,
    control=_dfanout_control,
    alarm=value_alarm_limits,
))


# --- fanout ------------------------------------------------------------------------------------------------

def selection_mask(rec: Record, count: int) -> int | None:
    """The links (bit n: link n) SELM, SELN, OFFS and SHFT select among ``count`` (fanout, seq), or None
    for a selection out of range or an unknown SELM."""
    selm, seln = rec.SELM, rec.SELN
    if selm == _ALL:
        return (1 << count) - 1
    if selm == _SPECIFIED:
        index = seln + rec.OFFS
        return 1 << index if 0 <= index < count else None
    if selm == _MASK:
        shift = rec.SHFT
        if not -15 <= shift <= 15:
            return None
        # an epicsUInt16 result: bits shifted past 15 are lost
        return seln >> shift if shift >= 0 else (seln << -shift) & 0xFFFF
    return None


def process_fanout(rec: Record) -> None:
    oldn = rec.SELN
    rec.PACT = 1
    read_seln(rec)
    selected = selection_mask(rec, len(FANOUT_LINKS))
    if selected is None:
        rec.set_sevr(AlarmStatus.SOFT, AlarmSeverity.INVALID)
    else:
        for link in (link for bit, link in enumerate(FANOUT_LINKS) if selected >> bit & 1):
            entry = rec._links.get(link)
            if entry is not None and entry[1] is not None:
                rec.db.scan_passive(rec, entry[1])      # dbScanFwdLink
    rec.UDF = 0
    rec.stamp()
    mask = alarms.reset_alarms(rec)
    if mask:
        rec.post("VAL", mask)
    if rec.SELN != oldn:
        rec.post("SELN", mask | DBE_VALUE | DBE_LOG)
    rec.fwd_link()
    rec.PACT = 0


register(RecordType(
    name="fanout",
    fields=FANOUT_FIELDS,
    process=process_fanout,
    init=init_selection,
    devices=(),
))
