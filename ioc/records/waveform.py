"""waveform: an array of NELM elements of type FTVL, NORD of them valid (waveformRecord.c)."""
from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

from caproto.constants import DBE_LOG, DBE_VALUE
from ioc import alarms

from . import RecordType, register
from .common import (
    COMMON_FIELDS,
    analog_precision,
    init_simm,
    read_value,
    require_soft_device,
    simulation_fields,
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
    *simulation_fields(DBF.INLINK),
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
    # waveformRecord's pass 0 sets NORD to 1 for NELM 1, but devWfSoft's init_record then sets it to what
    # dbLoadLinkArray loaded, or 0 when INP is no constant (or an empty one): soft support is all we have
    rec.NORD = 0
    init_simm(rec)
    entry = rec._links.get("INP")
    if entry is not None and entry[1] is None and entry[0].value is not None:
        values = entry[0].value if isinstance(entry[0].value, list) else [entry[0].value]
        load_constant(rec, values)


def load_constant(rec: Record, values: list) -> None:
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


def array_cvt_dbaddr(rec: Record, fld: Field) -> tuple[DBF, int] | None:
    if fld.name == "VAL":
        return element_type(rec), rec.NELM
    return None


def array_count(rec: Record, fld: Field) -> int:
    return rec.NORD


def put_array_count(rec: Record, fld: Field, count: int) -> None:
    nord = rec.NORD
    rec.NORD = min(count, rec.NELM)
    if nord != rec.NORD:
        rec.post("NORD", DBE_VALUE | DBE_LOG)


def get_elements(rec: Record, link: str) -> list | np.ndarray | None:
    """dbGetLink of up to NELM elements through ``link`` (None when it failed)."""
    values = rec.get_link(link, element_type(rec), count=rec.NELM)
    if values is None or rec.NELM > 1:
        return values
    return [values]     # a count of 1 comes back as the scalar itself


def _read_waveform(rec: Record) -> int | None:
    if rec.link_is_constant("INP"):
        return None
    values = get_elements(rec, "INP")
    if values is None:
        return -1
    n = len(values)
    rec.VAL[:n] = values
    nord = rec.NORD
    rec.NORD = n
    rec.UDF = 0
    if nord != n:
        rec.post("NORD", DBE_VALUE | DBE_LOG)
    return None


def _read_value(rec: Record) -> int | None:
    """readValue: the device's read, or SIOL in simulation; -1 when it failed."""
    return read_value(rec, _read_waveform, _read_siol)


def _read_siol(rec: Record, simm: int) -> int | None:
    status = None
    if rec.link_is_constant("SIOL"):
        count = 0       # a constant link delivers no elements
    else:
        values = get_elements(rec, "SIOL")
        if values is None:
            count = rec.NELM    # the request count, untouched by the failed read
            status = -1
        else:
            count = len(values)
            rec.VAL[:count] = values
    # NORD is posted by process(), when it compares it with its value before the read
    rec.NORD = count
    return status


_MASK32 = 0xFFFFFFFF
# Below this many bytes the plain loop is as fast as setting up the blocks.
_BLOCKED_FROM = 4096


def _mem_hash_loop(data: bytes | memoryview, h: int = 0) -> int:
    """epicsMemHash from ``h``, one byte at a time (``data`` of even length, or the tail of the data)."""
    mask = _MASK32
    n = len(data)
    i = 0
    while i < n:
        c = data[i]
        h ^= ~((h << 11) ^ (c - 256 if c > 127 else c) ^ (h >> 5)) & mask
        h &= mask
        i += 1
        if i >= n:
            break
        c = data[i]
        h ^= ((h << 7) ^ (c - 256 if c > 127 else c) ^ (h >> 3)) & mask
        h &= mask
        i += 1
    return h


@functools.lru_cache(maxsize=8)
def _block_tables(block: int) -> np.ndarray:
    """The linear part of ``block`` hash steps (``block`` even), as four 256-entry tables, one per byte of
    the hash it is applied to: a step is h ^ (h << a) ^ (h >> b) plus terms that do not depend on h, so
    over GF(2) the hash after a block is L(h before it) ^ (the block's hash from 0)."""
    basis = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))
    h = basis.copy()
    for _ in range(block // 2):
        h ^= (h << np.uint32(11)) ^ (h >> np.uint32(5))
        h ^= (h << np.uint32(7)) ^ (h >> np.uint32(3))
    # tables[k][v]: L applied to the byte value v at byte position k (XOR of the images of its bits)
    bits = (np.arange(256, dtype=np.uint32)[:, None] >> np.arange(8, dtype=np.uint32)) & np.uint32(1)
    tables = np.zeros((4, 256), dtype=np.uint32)
    for k in range(4):
        images = h[8 * k:8 * k + 8]
        tables[k] = np.bitwise_xor.reduce(np.where(bits.astype(bool), images, np.uint32(0)), axis=1)
    return tables


def mem_hash(data: bytes | memoryview) -> int:
    """epicsMemHash with seed 0: the C IOC's HASH of an array's bytes (its ``char`` is signed on the
    platforms softIoc runs on, so bytes from 128 up enter as negative numbers, sign-extended).

    The hash is a serial recurrence, but an affine one over GF(2): a large array is cut into blocks of
    an even number of bytes whose hashes from 0 are computed side by side with numpy (one vector step per
    byte of a block), then chained through the block's linear map, L(h) ^ block hash. A 1,000,000-double
    array takes milliseconds instead of 8 million Python steps."""
    n = len(data)
    if n < _BLOCKED_FROM:
        return _mem_hash_loop(data)
    # about sqrt(n) blocks of about sqrt(n) bytes balances the vector steps against the chaining
    block = max(64, (int(math.isqrt(n)) // 2) * 2)
    count = n // block
    body = np.frombuffer(data, dtype=np.int8, count=count * block).reshape(count, block)
    # row i: byte i of every block (transposed as bytes: 4 times less to move than as 32-bit numbers)
    columns = np.ascontiguousarray(body.T)
    h = np.zeros(count, dtype=np.uint32)
    ones = np.uint32(_MASK32)
    s11, s5, s7, s3 = np.uint32(11), np.uint32(5), np.uint32(7), np.uint32(3)
    for i in range(0, block, 2):
        # each byte sign-extended to 32 bits, as C's char promotes
        h ^= ((h << s11) ^ columns[i].astype(np.int32).view(np.uint32) ^ (h >> s5)) ^ ones
        h ^= (h << s7) ^ columns[i + 1].astype(np.int32).view(np.uint32) ^ (h >> s3)
    t0, t1, t2, t3 = (table.tolist() for table in _block_tables(block))
    value = 0
    for block_hash in h.tolist():
        value = (t0[value & 0xFF] ^ t1[(value >> 8) & 0xFF] ^ t2[(value >> 16) & 0xFF]
                 ^ t3[value >> 24] ^ block_hash)
    return _mem_hash_loop(memoryview(data)[count * block:], value)


def _stored_bytes(rec: Record) -> bytes:
    """The NORD valid elements as stored (strings in MAX_STRING_SIZE slots)."""
    if element_type(rec) is DBF.STRING:
        return b"".join(v.encode("utf-8", "surrogateescape")[:39].ljust(40, b"\0")
                        for v in rec.VAL[:rec.NORD])
    return rec.VAL[:rec.NORD].tobytes()


def content_hash(rec: Record) -> int:
    """HASH: epicsMemHash of the NORD valid elements as stored. The last contents hashed and their hash
    are kept, so an array processed again unchanged is compared (memcmp speed), not hashed again."""
    data = _stored_bytes(rec)
    cached = rec.hashed
    if cached is not None and cached[0] == data:
        return cached[1]
    digest = mem_hash(data)
    rec.hashed = (data, digest)
    return digest


def monitor_array(rec: Record, on_change: int) -> None:
    """VAL posted every processing (MPST/APST Always) or when its contents' hash changed (``on_change``,
    the index of "On Change" in the record's POST menu)."""
    mask = alarms.reset_alarms(rec)
    if rec.MPST != on_change:
        mask |= DBE_VALUE
    if rec.APST != on_change:
        mask |= DBE_LOG
    if on_change in (rec.MPST, rec.APST):
        digest = content_hash(rec)
        if digest != rec.HASH:
            if rec.MPST == on_change:
                mask |= DBE_VALUE
            if rec.APST == on_change:
                mask |= DBE_LOG
            rec.HASH = digest
            rec.post("HASH", DBE_VALUE)
    if mask:
        rec.post("VAL", mask)


def process_waveform(rec: Record) -> int | None:
    pact = rec.PACT
    nord = rec.NORD
    if pact and rec.BUSY:
        return None
    status = _read_value(rec)
    if not pact and rec.PACT:
        return None     # SDLY: processing completes later
    rec.PACT = 1
    rec.UDF = 0
    stamp_simm(rec, siol=True)
    if nord != rec.NORD:
        rec.post("NORD", DBE_VALUE | DBE_LOG)
    monitor_array(rec, on_change=_POST_ON_CHANGE)
    rec.fwd_link()
    rec.PACT = 0
    return status


def special_waveform(rec: Record, fld: Field, after: bool) -> None:
    special_simm(rec, fld, after)


def array_units(rec: Record, fld: Field) -> str:
    if fld.name == "VAL" and element_type(rec) in (DBF.STRING, DBF.ENUM):
        return ""
    return rec.EGU if fld.name in ("VAL", "HOPR", "LOPR") else ""


def array_limits(rec: Record, fld: Field) -> tuple[float, float] | None:
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
    cvt_dbaddr=array_cvt_dbaddr,
    get_array_count=array_count,
    put_array_count=put_array_count,
    units=array_units,
    precision=analog_precision,
    graphic=array_limits,
    control=array_limits,
    # (bytes, epicsMemHash of them) last hashed for HASH (see content_hash)
    state={"hashed": None},
))
