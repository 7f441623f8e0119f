"""histogram: NELM counters of how often the signal SGNL fell in each of NELM equal bins from LLIM to
ULIM (histogramRecord.c, devHistogramSoft.c).

Each processing reads SGNL through SVL (or SIOL in simulation) and counts it; a put to SGNL counts it
too. VAL is posted when more than MDEL counts were added since the last post, and, every SDEL seconds,
when any were (the watchdog). CMD Clear (or Read) zeroes the counters, Start and Stop (CSTA) switch
counting on and off.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from caproto.constants import DBE_LOG, DBE_VALUE, AlarmSeverity, AlarmStatus
from ioc import alarms

from . import RecordType, register
from .common import (
    COMMON_FIELDS,
    constant,
    init_simm,
    read_value,
    simulation_fields,
    special_simm,
    stamp_simm,
)
from .fields import DBF, SPC, Field

if TYPE_CHECKING:
    from ioc.database import Record

HISTOGRAM_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.NOACCESS, special=SPC.DBADDR),
    Field("NELM", DBF.USHORT, initial="1", special=SPC.NOMOD),
    Field("CSTA", DBF.SHORT, initial="1", special=SPC.NOMOD),
    Field("CMD", DBF.MENU, menu="histogramCMD", special=SPC.CALC),
    Field("ULIM", DBF.DOUBLE, special=SPC.RESET, prop=True),
    Field("LLIM", DBF.DOUBLE, special=SPC.RESET, prop=True),
    Field("WDTH", DBF.DOUBLE, special=SPC.NOMOD),
    Field("SGNL", DBF.DOUBLE, special=SPC.MOD),
    Field("PREC", DBF.SHORT, prop=True),
    Field("SVL", DBF.INLINK),
    Field("BPTR", DBF.NOACCESS, special=SPC.NOMOD),
    Field("WDOG", DBF.NOACCESS, special=SPC.NOMOD),
    Field("MDEL", DBF.SHORT),
    Field("MCNT", DBF.SHORT, special=SPC.NOMOD),
    Field("SDEL", DBF.DOUBLE, special=SPC.RESET),
    *simulation_fields(DBF.INLINK, Field("SVAL", DBF.DOUBLE)),
    Field("HOPR", DBF.ULONG, prop=True),
    Field("LOPR", DBF.ULONG, prop=True),
)

_CMD_CLEAR, _CMD_START, _CMD_STOP = 1, 2, 3      # histogramCMD: Read (0) clears too
_SDEL_PRECISION = 2                              # histogramSDELprecision
_COUNT_MAX = 0xFFFFFFFF
# get_precision: these report PREC as it is
_PREC_FIELDS = frozenset({"ULIM", "LLIM", "SGNL", "SVAL", "WDTH"})


def _short(value: int) -> int:
    """A C short's wrap-around (MCNT counts up without bound)."""
    return (value + 0x8000) % 0x10000 - 0x8000


def init_histogram(rec: Record) -> None:
    if rec.NELM <= 0:
        rec.NELM = 1
    rec.VAL = np.zeros(rec.NELM, dtype=np.uint32)
    rec.WDTH = (rec.ULIM - rec.LLIM) / rec.NELM
    init_simm(rec)
    sval = constant(rec, "SIOL", DBF.DOUBLE)
    if sval is not None:
        rec.SVAL = sval
    sgnl = constant(rec, "SVL", DBF.DOUBLE)
    if sgnl is not None:
        rec.SGNL = sgnl
        rec.UDF = 0


def start_histogram(rec: Record) -> None:
    """wdogInit at iocInit: the SDEL watchdog, when SDEL > 0."""
    _start_watchdog(rec)


def _start_watchdog(rec: Record) -> None:
    """wdogInit: (re)start the SDEL timer. The record has one timer: a restart replaces the pending
    one, which the generation number retires."""
    if rec.SDEL <= 0:
        return
    rec._wdog_gen += 1
    _schedule_watchdog(rec, rec._wdog_gen)


def _schedule_watchdog(rec: Record, generation: int) -> None:
    rec.db.call_later(rec.SDEL, lambda: _watchdog(rec, generation))


def _watchdog(rec: Record, generation: int) -> None:
    """wdogCallback: post VAL if any count came since the last post, then run again while SDEL > 0."""
    if generation != rec._wdog_gen:
        return
    if rec.MCNT > 0:
        rec.stamp()
        rec.post("VAL", DBE_VALUE | DBE_LOG)
        rec.MCNT = 0
    if rec.SDEL > 0:
        _schedule_watchdog(rec, generation)


def _add_count(rec: Record) -> None:
    """add_count: one more in SGNL's bin (while counting is on and SGNL is in [LLIM, ULIM))."""
    if not rec.CSTA:
        return
    if rec.LLIM >= rec.ULIM and rec.NSEV < AlarmSeverity.INVALID:
        # as histogramRecord.c: STAT/SEVR themselves, not the pending alarm; the next processing's
        # alarm reset replaces them
        rec.STAT, rec.SEVR = AlarmStatus.SOFT, AlarmSeverity.INVALID
        rec.touch()
        return
    if not rec.LLIM <= rec.SGNL < rec.ULIM:
        return
    offset, width, nelm = rec.SGNL - rec.LLIM, rec.WDTH, rec.NELM
    # the first bin i (from 1) with offset <= i * WDTH: a signal on a bin's upper edge belongs to that
    # bin. The search starts just below the quotient, where no earlier bin can qualify.
    i = max(1, int(offset / width) - 1)
    while i <= nelm and offset > i * width:
        i += 1
    bin_index = min(i, nelm) - 1
    count = int(rec.VAL[bin_index])
    rec.VAL[bin_index] = 1 if count == _COUNT_MAX else count + 1
    rec.MCNT = _short(rec.MCNT + 1)
    rec.touch()


def _clear(rec: Record) -> None:
    """clear_histogram: every counter 0, VAL posted at the next processing whatever MDEL."""
    rec.VAL[:] = 0
    rec.MCNT = _short(rec.MDEL + 1)
    rec.UDF = 0


def _read_svl(rec: Record) -> int:
    """read_histogram of devHistogramSoft: SGNL through SVL; its status is not the read's."""
    value = rec.get_link("SVL", DBF.DOUBLE)
    if value is not None:
        rec.SGNL = value
    return 0


def _read_siol(rec: Record, simm: int) -> int:
    """In simulation SGNL is SVAL, read through SIOL (a constant SIOL keeps SVAL)."""
    if not rec.link_is_constant("SIOL"):
        value = rec.get_link("SIOL", DBF.DOUBLE)
        if value is None:
            return -1
        rec.SVAL = value
    rec.SGNL = rec.SVAL
    rec.UDF = 0
    return 0


def process_histogram(rec: Record) -> int | None:
    pact = rec.PACT
    status = read_value(rec, _read_svl, _read_siol)
    if not pact and rec.PACT:
        return None     # SDLY: processing completes later
    rec.PACT = 1
    stamp_simm(rec, siol=True)
    if status == 0:
        _add_count(rec)
    mask = alarms.reset_alarms(rec)
    if rec.MCNT > rec.MDEL:
        mask |= DBE_VALUE | DBE_LOG
        rec.MCNT = 0
    if mask:
        rec.post("VAL", mask)
    rec.fwd_link()
    rec.PACT = 0
    return status or None


def special_histogram(rec: Record, fld: Field, after: bool) -> None:
    if special_simm(rec, fld, after) or not after:
        return
    name = fld.name
    if name == "CMD":
        if rec.CMD <= _CMD_CLEAR:
            _clear(rec)
        else:
            rec.CSTA = int(rec.CMD == _CMD_START)
        rec.CMD = 0
    elif name == "SGNL":
        _add_count(rec)
    elif name == "SDEL":
        _start_watchdog(rec)
    else:       # ULIM, LLIM
        rec.WDTH = (rec.ULIM - rec.LLIM) / rec.NELM
        _clear(rec)


def _cvt_dbaddr(rec: Record, fld: Field) -> tuple[DBF, int] | None:
    return (DBF.ULONG, rec.NELM) if fld.name == "VAL" else None


def _array_count(rec: Record, fld: Field) -> int:
    return rec.NELM


def _put_array_count(rec: Record, fld: Field, count: int) -> None:
    """No put_array_info: a put to VAL overwrites counters and nothing else."""


def _units(rec: Record, fld: Field) -> str:
    return "s" if fld.name == "SDEL" else ""


def _precision(rec: Record, fld: Field) -> int | None:
    if fld.name in _PREC_FIELDS:
        return rec.PREC
    if fld.name == "SDEL":
        return _SDEL_PRECISION
    return None


def _limits(rec: Record, fld: Field) -> tuple[float, float] | None:
    if fld.name == "VAL":
        return float(rec.HOPR), float(rec.LOPR)
    if fld.name == "WDTH":
        return rec.ULIM - rec.LLIM, 0.0
    return None


register(RecordType(
    name="histogram",
    fields=HISTOGRAM_FIELDS,
    process=process_histogram,
    init=init_histogram,
    start=start_histogram,
    special=special_histogram,
    cvt_dbaddr=_cvt_dbaddr,
    get_array_count=_array_count,
    put_array_count=_put_array_count,
    units=_units,
    precision=_precision,
    graphic=_limits,
    control=_limits,
    state={"_wdog_gen": 0},
))
