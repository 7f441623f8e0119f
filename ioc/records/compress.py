"""compress: a circular buffer of NSAM doubles filled from what INP reads, one value per N samples by the
ALG rule, newest last (FIFO) or first (LIFO) (compressRecord.c).

The C record keeps its samples in a ring and serves VAL from the ring's oldest valid element on (its
get_array_info offset). Here the ring is the record's ``_ring`` and ``VAL`` its readable face: the ring
rotated to start at that element, rebuilt after every change, so that a read of ``VAL[:NUSE]`` and a
put to ``VAL[:n]`` mean what they mean on the C record.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from caproto.constants import DBE_LOG, DBE_VALUE, AlarmSeverity, AlarmStatus
from ioc import alarms

from . import RecordType, register
from .common import COMMON_FIELDS, analog_precision
from .fields import DBF, SPC, Field

if TYPE_CHECKING:
    from ioc.database import Record

COMPRESS_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.NOACCESS, special=SPC.DBADDR, pp=True),
    Field("INP", DBF.INLINK),
    Field("RES", DBF.SHORT, special=SPC.RESET),
    Field("ALG", DBF.MENU, menu="compressALG", special=SPC.RESET),
    Field("PBUF", DBF.MENU, menu="menuYesNo", initial="NO", special=SPC.RESET),
    Field("BALG", DBF.MENU, menu="bufferingALG", special=SPC.RESET),
    Field("NSAM", DBF.ULONG, initial="1", special=SPC.NOMOD),
    Field("N", DBF.ULONG, initial="1", special=SPC.RESET),
    Field("IHIL", DBF.DOUBLE),
    Field("ILIL", DBF.DOUBLE),
    Field("HOPR", DBF.DOUBLE, prop=True),
    Field("LOPR", DBF.DOUBLE, prop=True),
    Field("PREC", DBF.SHORT, prop=True),
    Field("EGU", DBF.STRING, size=16, prop=True),
    Field("OFF", DBF.ULONG, special=SPC.NOMOD),
    Field("NUSE", DBF.ULONG, special=SPC.NOMOD),
    Field("OUSE", DBF.ULONG, special=SPC.NOMOD),
    Field("BPTR", DBF.NOACCESS, special=SPC.NOMOD),
    Field("SPTR", DBF.NOACCESS, special=SPC.NOMOD),
    Field("WPTR", DBF.NOACCESS, special=SPC.NOMOD),
    Field("INPN", DBF.LONG, special=SPC.NOMOD),
    Field("CVB", DBF.DOUBLE, special=SPC.NOMOD),
    Field("INX", DBF.ULONG, special=SPC.NOMOD),
)

# compressALG
_N_TO_1_LOW, _N_TO_1_HIGH, _N_TO_1_AVERAGE, _AVERAGE, _CIRCULAR_BUFFER, _N_TO_1_MEDIAN = range(6)
_FIFO, _LIFO = range(2)         # bufferingALG
_YES = 1                        # menuYesNo
_WAITING = 1                    # a processing that has not completed a sample: no monitors, no FLNK
_LIMITED = frozenset({"VAL", "IHIL", "ILIL"})      # get_graphic/control_double: HOPR and LOPR


def init_compress(rec: Record) -> None:
    if rec.NSAM < 1:
        rec.NSAM = 1
    rec._ring = np.zeros(rec.NSAM)
    rec._sums = np.zeros(rec.NSAM)      # SPTR: the element-wise sums of "Average"
    rec._read_once = False              # WPTR allocated: INP has been read
    rec.VAL = np.zeros(rec.NSAM)
    _reset(rec)


def _reset(rec: Record) -> None:
    """reset(): an empty buffer and a new start of every algorithm."""
    rec.NUSE = rec.OFF = rec.INX = rec.RES = 0
    rec.CVB = 0.0
    rec._ring[:] = 0.0
    _refresh(rec)


def _first_valid(rec: Record) -> int:
    """get_array_info's offset: the ring index of the first element VAL serves."""
    if rec.BALG == _FIFO:
        return (rec.OFF + rec.NSAM - rec.NUSE) % rec.NSAM
    return rec.OFF


def _refresh(rec: Record) -> None:
    rec.VAL[:] = np.roll(rec._ring, -_first_valid(rec))


def _put_values(rec: Record, values: np.ndarray) -> None:
    """put_value: FIFO appends after the newest, LIFO prepends before it; NUSE grows up to NSAM."""
    nsam = rec.NSAM
    offset = rec.OFF
    n = len(values)
    # value k goes to OFF + k (FIFO) or OFF - 1 - k (LIFO), modulo NSAM: of more than NSAM values only
    # the last NSAM stay, so only they are written
    skip = max(0, n - nsam)
    steps = np.arange(n - skip)
    if rec.BALG == _FIFO:
        rec._ring[(offset + skip + steps) % nsam] = values[skip:]
        rec.OFF = (offset + n) % nsam
    else:
        rec._ring[(offset - skip - 1 - steps) % nsam] = values[skip:]
        rec.OFF = (offset - n) % nsam
    rec.NUSE = min(rec.NUSE + n, nsam)
    _refresh(rec)


def _samples_per_value(rec: Record) -> int:
    if rec.N <= 0:
        rec.N = 1
    return rec.N


def _compress_array(rec: Record, source: np.ndarray) -> int | None:
    """compress_array: the input (after skipping leading elements outside ILIL..IHIL, when ILIL < IHIL)
    in groups of N, one value each; a last shorter group only with PBUF. _WAITING if none came."""
    if rec.ILIL < rec.IHIL:
        outside = (source < rec.ILIL) | (source > rec.IHIL)
        inside = np.flatnonzero(~outside)
        source = source[inside[0]:] if len(inside) else source[:0]
    n = _samples_per_value(rec)
    remaining = min(len(source), rec.NSAM * n)
    position = 0
    written = []
    while remaining > 0:
        if remaining < n and rec.PBUF != _YES:
            break
        n = min(n, remaining)
        group = source[position:position + n]
        position += n
        alg = rec.ALG
        if alg == _N_TO_1_LOW:
            value = float(group.min())
        elif alg == _N_TO_1_HIGH:
            value = float(group.max())
        elif alg == _N_TO_1_AVERAGE:
            value = float(group.sum()) / n
        else:       # N to 1 Median: the upper of the two middle values of an even group
            value = float(np.sort(group)[n // 2])
        remaining -= n
        written.append(value)
    if not written:
        return _WAITING
    _put_values(rec, np.array(written))
    return None


def _compress_scalar(rec: Record, value: float) -> int | None:
    """compress_scalar: CVB accumulates the lowest, highest or running mean (Median too) of the samples
    since the last value; every Nth sample (every sample with PBUF) stores it."""
    inx = rec.INX
    alg = rec.ALG
    if alg == _N_TO_1_LOW:
        if value < rec.CVB or inx == 0:
            rec.CVB = value
    elif alg == _N_TO_1_HIGH:
        if value > rec.CVB or inx == 0:
            rec.CVB = value
    elif alg in (_N_TO_1_AVERAGE, _N_TO_1_MEDIAN):
        rec.CVB = (inx * rec.CVB + value) / (inx + 1)
    inx += 1
    if inx >= rec.N or rec.PBUF == _YES:
        _put_values(rec, np.array([rec.CVB]))
        rec.INX = 0 if inx >= rec.N else inx
        return None
    rec.INX = inx
    return _WAITING


def _array_average(rec: Record, source: np.ndarray) -> int | None:
    """array_average: element-wise sums of N successive inputs (at most NSAM elements), then their mean
    stored as that many new values."""
    nuse = min(rec.NSAM, len(source))
    sums = rec._sums
    if rec.INX == 0:
        sums[:nuse] = source[:nuse]
    else:
        sums[:nuse] += source[:nuse]
    inx = rec.INX + 1
    n = _samples_per_value(rec)
    if inx < n:
        rec.INX = inx
        return _WAITING
    if n > 1:
        sums[:nuse] *= 1.0 / n
    _put_values(rec, sums[:nuse].copy())
    rec.INX = 0
    return None


def _input_capacity(rec: Record) -> int:
    """dbGetNelements of INP: the source field's element capacity; 0 for a constant or empty link and
    for a link to a PV not served here (never connected)."""
    entry = rec._links.get("INP")
    if entry is None or entry[1] is None:
        return 0
    link, source, sfield = entry
    return rec.db.link_channel(link, source, sfield).max_count


def _read_input(rec: Record, capacity: int) -> np.ndarray | None:
    values = rec.get_link("INP", DBF.DOUBLE, count=capacity)
    if values is None:
        return None
    return np.atleast_1d(np.asarray(values, dtype=np.float64)).copy()


def process_compress(rec: Record) -> None:
    rec.PACT = 1
    status = None
    capacity = _input_capacity(rec)
    if capacity <= 0:
        rec.set_sevr(AlarmStatus.LINK, AlarmSeverity.INVALID)
    else:
        if not rec._read_once or capacity != rec.INPN:
            if rec._read_once:
                _reset(rec)
            rec._read_once = True
            rec.INPN = capacity
        source = _read_input(rec, capacity)
        if source is None or len(source) == 0:
            rec.set_sevr(AlarmStatus.LINK, AlarmSeverity.INVALID)
        elif rec.ALG == _AVERAGE:
            status = _array_average(rec, source)
        elif rec.ALG == _CIRCULAR_BUFFER:
            _put_values(rec, source)
        elif len(source) > 1:
            status = _compress_array(rec, source)
        else:
            status = _compress_scalar(rec, float(source[0]))
    if status != _WAITING:
        rec.UDF = 0
        rec.stamp()
        _monitor(rec)
        rec.fwd_link()
    rec.PACT = 0


def _monitor(rec: Record) -> None:
    alarm_mask = alarms.reset_alarms(rec)
    mask = alarm_mask | DBE_LOG | DBE_VALUE
    if alarm_mask or rec.NUSE != rec.OUSE:
        rec.post("NUSE", mask)
        rec.OUSE = rec.NUSE
    rec.post("VAL", mask)


def special_compress(rec: Record, fld: Field, after: bool) -> None:
    # RES, ALG, PBUF, BALG and N (SPC_RESET): any put starts over
    if after:
        _reset(rec)


def _cvt_dbaddr(rec: Record, fld: Field) -> tuple[DBF, int] | None:
    return (DBF.DOUBLE, rec.NSAM) if fld.name == "VAL" else None


def _read_only(rec: Record, fld: Field) -> bool:
    # cvt_dbaddr makes VAL SPC_NOMOD in LIFO mode: rsrv then reports it unwritable
    return fld.name == "VAL" and rec.BALG == _LIFO


def _array_count(rec: Record, fld: Field) -> int:
    return rec.NUSE


def _put_array_count(rec: Record, fld: Field, count: int) -> None:
    """put_array_info: the put wrote VAL from its first valid element on (wrapping round the ring);
    FIFO moves the write position past it, and NUSE grows."""
    rec._ring[:] = np.roll(rec.VAL, _first_valid(rec))
    nuse = rec.NUSE
    if rec.BALG == _FIFO:
        rec.OFF = (rec.OFF + count) % rec.NSAM
    rec.NUSE = min(rec.NUSE + count, rec.NSAM)
    _refresh(rec)
    if nuse != rec.NUSE:
        rec.post("NUSE", DBE_VALUE | DBE_LOG)


def _units(rec: Record, fld: Field) -> str:
    return rec.EGU if fld.dbf is DBF.DOUBLE or fld.name == "VAL" else ""


def _limits(rec: Record, fld: Field) -> tuple[float, float] | None:
    return (rec.HOPR, rec.LOPR) if fld.name in _LIMITED else None


register(RecordType(
    name="compress",
    fields=COMPRESS_FIELDS,
    process=process_compress,
    init=init_compress,
    devices=(),
    special=special_compress,
    cvt_dbaddr=_cvt_dbaddr,
    read_only=_read_only,
    get_array_count=_array_count,
    put_array_count=_put_array_count,
    units=_units,
    precision=analog_precision,
    graphic=_limits,
    control=_limits,
    state={"_ring": None, "_sums": None, "_read_once": False},
))
