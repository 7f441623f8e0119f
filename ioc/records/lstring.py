"""lsi and lso: long string records (lsiRecord.c, lsoRecord.c).

VAL holds up to SIZV - 1 bytes (SIZV from 16 to 32767, 41 by default). Like the C record's cvt_dbaddr,
each record gets a VAL and OVAL of its own size: at init the record takes a variant of its type whose
VAL/OVAL are STRING fields of SIZV bytes. So ``REC.VAL`` reads as a DBR_STRING (its first 39
characters) and ``REC.VAL$`` as a CHAR array of SIZV elements (``caget -S``, ``caput -S``). LEN is the
string's length with its NUL, posted when it changes.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from caproto.constants import DBE_LOG, DBE_VALUE, MAX_STRING_SIZE, AlarmSeverity, AlarmStatus
from caproto.convert import chars_to_string
from caproto.dbr import STRING_ENCODING, ChannelType
from ioc import alarms

from . import RecordType, register
from .common import (
    COMMON_FIELDS,
    init_simm,
    read_value,
    require_soft_device,
    simulation_fields,
    special_simm,
    stamp_simm,
    write_value,
)
from .fields import DBF, SPC, Field

if TYPE_CHECKING:
    from ioc.database import Record

_STRING_FIELDS: tuple[Field, ...] = (
    Field("VAL", DBF.NOACCESS, special=SPC.DBADDR, pp=True),
    Field("OVAL", DBF.NOACCESS, special=SPC.DBADDR),
    Field("SIZV", DBF.USHORT, initial="41", special=SPC.NOMOD),
    Field("LEN", DBF.ULONG, special=SPC.NOMOD),
    Field("OLEN", DBF.ULONG, special=SPC.NOMOD),
)

LSI_FIELDS: tuple[Field, ...] = COMMON_FIELDS + _STRING_FIELDS + (
    Field("INP", DBF.INLINK),
    Field("MPST", DBF.MENU, menu="menuPost"),
    Field("APST", DBF.MENU, menu="menuPost"),
    *simulation_fields(DBF.INLINK, siol_after_sims=True),
)

LSO_FIELDS: tuple[Field, ...] = COMMON_FIELDS + _STRING_FIELDS + (
    Field("DOL", DBF.INLINK),
    Field("IVOA", DBF.MENU, menu="menuIvoa"),
    Field("IVOV", DBF.STRING, size=40),
    Field("OMSL", DBF.MENU, menu="menuOmsl"),
    Field("OUT", DBF.OUTLINK),
    Field("MPST", DBF.MENU, menu="menuPost"),
    Field("APST", DBF.MENU, menu="menuPost"),
    *simulation_fields(DBF.OUTLINK, siol_after_sims=True),
)

_SIZV_MIN, _SIZV_MAX = 16, 0x7FFF
_POST_ALWAYS = 1            # menuPost
_OMSL_CLOSED_LOOP = 1
_IVOA_CONTINUE, _IVOA_SET_IVOV = 0, 2


def _length(text: str) -> int:
    """strlen + 1: the bytes of the string and its NUL."""
    return len(text.encode(STRING_ENCODING, "surrogateescape")) + 1


def _fit(text: str, size: int) -> str:
    """``text`` cut to ``size - 1`` bytes, as a buffer of ``size`` with its NUL holds it."""
    raw = text.encode(STRING_ENCODING, "surrogateescape")
    if len(raw) < size:
        return text
    return raw[:size - 1].decode(STRING_ENCODING, "surrogateescape")


_SIZED: dict[tuple[str, int], RecordType] = {}


def _sized(rtype: RecordType, sizv: int) -> RecordType:
    """``rtype`` with VAL and OVAL as STRING fields of ``sizv`` bytes (what cvt_dbaddr makes them)."""
    known = _SIZED.get((rtype.name, sizv))
    if known is not None:
        return known
    fields = tuple(
        Field("VAL", DBF.STRING, size=sizv, special=SPC.MOD, pp=True) if f.name == "VAL"
        else Field("OVAL", DBF.STRING, size=sizv, special=SPC.NOMOD) if f.name == "OVAL"
        else f
        for f in rtype.fields)
    sized = _SIZED[rtype.name, sizv] = dataclasses.replace(rtype, fields=fields, init=None, cvt_dbaddr=None)
    return sized


def _init_common(rec: Record, load_link: str) -> None:
    """init_record: the SIZV bounds, the sized fields, a constant link's text (dbLoadLinkLS)."""
    require_soft_device(rec, ("Soft Channel", "Async Soft Channel") if rec.rtype.name == "lso"
                        else ("Soft Channel",))
    rec.SIZV = min(max(rec.SIZV, _SIZV_MIN), _SIZV_MAX)
    # This record's own field table (see the module docstring); record support reaches its functions
    # through it as before.
    rec.rtype = _sized(rec.rtype, rec.SIZV)
    rec.VAL = rec.OVAL = ""
    rec.LEN = rec.OLEN = 0
    init_simm(rec)
    _load_constant(rec, load_link)
    if rec.LEN:
        rec.OVAL, rec.OLEN = rec.VAL, rec.LEN
        rec.UDF = 0


def _load_constant(rec: Record, name: str) -> None:
    """dbLoadLinkLS: a constant link's JSON text. A string (or an array's first element, if a string)
    loads; a bare number loads the empty string (the JSON parser never sees it end), anything else
    nothing."""
    entry = rec._links.get(name)
    if entry is None or entry[1] is not None:
        return
    value = entry[0].value
    if isinstance(value, list):
        if not value or not isinstance(value[0], str):
            return
        value = value[0]
    if isinstance(value, str):
        rec.VAL = _fit(value, rec.SIZV)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        rec.VAL = ""
    else:
        return
    rec.LEN = _length(rec.VAL)


def _get_long_string(rec: Record, name: str) -> bool:
    """dbGetLinkLS into VAL: a CHAR array source as up to SIZV chars (the last one read replaced by the
    NUL), anything else as a DBR_STRING. False when the read failed; a constant link reads nothing."""
    entry = rec._links.get(name)
    if entry is None or entry[1] is None:
        return True
    link, source, sfield = entry
    chan = rec.db.link_channel(link, source, sfield)
    if chan.native_type is ChannelType.CHAR and chan.max_count > 1:
        chars = rec.get_link(name, DBF.CHAR, rec.SIZV)
        if chars is None:
            return False
        text = chars_to_string(bytes(chars[:max(len(chars) - 1, 0)]))
    else:
        text = rec.get_link(name, DBF.STRING)
        if text is None:
            return False
        text = _fit(text, min(rec.SIZV, MAX_STRING_SIZE))
    rec.VAL = _fit(text, rec.SIZV)
    rec.LEN = _length(rec.VAL)
    return True


def put_long_string(rec: Record, name: str) -> int | None:
    """dbPutLinkLS from VAL: LEN chars into a CHAR array target, else the first 39 as a DBR_STRING;
    the failure status."""
    entry = rec._links.get(name)
    if entry is None or entry[1] is None:
        return None
    link, target, tfield = entry
    chan = rec.db.link_channel(link, target, tfield)
    if chan.native_type is ChannelType.CHAR and chan.max_count > 1:
        raw = rec.VAL.encode(STRING_ENCODING, "surrogateescape") + b"\0"
        return rec.put_link(name, DBF.CHAR, list(raw[:rec.LEN]))
    return rec.put_link(name, DBF.STRING, _fit(rec.VAL, MAX_STRING_SIZE))


def monitor_long_string(rec: Record) -> None:
    mask = alarms.reset_alarms(rec)
    if rec.LEN != rec.OLEN or rec.OVAL != rec.VAL:
        mask |= DBE_VALUE | DBE_LOG
        rec.OVAL = rec.VAL
    if rec.LEN != rec.OLEN:
        rec.OLEN = rec.LEN
        rec.post("LEN", DBE_VALUE | DBE_LOG)
    if rec.MPST == _POST_ALWAYS:
        mask |= DBE_VALUE
    if rec.APST == _POST_ALWAYS:
        mask |= DBE_LOG
    if mask:
        rec.post("VAL", mask)


def special_long_string(rec: Record, fld: Field, after: bool) -> None:
    if special_simm(rec, fld, after) or not after or fld.name != "VAL":
        return
    # here, not in put_array_info: a put of a DBR_STRING does not go through that
    rec.LEN = _length(rec.VAL)
    rec.post("LEN", DBE_VALUE | DBE_LOG)


def _string_count(rec: Record, fld: Field) -> int:
    """get_array_info: LEN for VAL, OLEN for OVAL (0 while the string was never set)."""
    return rec.LEN if fld.name == "VAL" else rec.OLEN if fld.name == "OVAL" else fld.size


def _string_fields(rec: Record, fld: Field) -> tuple[DBF, int] | None:
    # before init_record sizes them (the record's own table then declares them STRING)
    return (DBF.STRING, 1) if fld.name in ("VAL", "OVAL") else None


# --- lsi -------------------------------------------------------------------------------------------------

def init_lsi(rec: Record) -> None:
    _init_common(rec, "INP")


def _read_lsi(rec: Record) -> int | None:
    """readValue: VAL from INP, or from SIOL in simulation (with SDLY: on the second pass); -1 when
    the read failed."""
    return read_value(rec, lambda rec: None if _get_long_string(rec, "INP") else -1, _read_lsi_siol)


def _read_lsi_siol(rec: Record, simm: int) -> int | None:
    if not _get_long_string(rec, "SIOL"):
        return -1
    rec.UDF = 0
    return None


def process_lsi(rec: Record) -> int | None:
    pact = rec.PACT
    status = _read_lsi(rec)
    if rec.PACT and not pact:
        return None     # SDLY: processing completes later
    rec.PACT = 1
    stamp_simm(rec, siol=True)
    monitor_long_string(rec)
    rec.fwd_link()
    rec.PACT = 0
    return status


register(RecordType(
    name="lsi",
    fields=LSI_FIELDS,
    process=process_lsi,
    init=init_lsi,
    devices=("Soft Channel", "getenv"),
    special=special_long_string,
    cvt_dbaddr=_string_fields,
    string_count=_string_count,
))


# --- lso -------------------------------------------------------------------------------------------------

def init_lso(rec: Record) -> None:
    _init_common(rec, "DOL")


def _write_lso(rec: Record) -> int | None:
    return write_value(rec, lambda rec: put_long_string(rec, "OUT"),
                       lambda rec, simm: put_long_string(rec, "SIOL"))


def process_lso(rec: Record) -> int | None:
    pact = rec.PACT
    status = None       # a failed DOL read is not the status (lsoRecord.c)
    if not pact and rec.OMSL == _OMSL_CLOSED_LOOP and _get_long_string(rec, "DOL"):
        rec.UDF = 0
    if rec.UDF:
        rec.set_sevr(AlarmStatus.UDF, AlarmSeverity.INVALID)
    if rec.NSEV < AlarmSeverity.INVALID or rec.IVOA == _IVOA_CONTINUE:
        status = _write_lso(rec)
    elif rec.IVOA == _IVOA_SET_IVOV:
        if not pact:
            rec.VAL = _fit(rec.IVOV, rec.SIZV)
            rec.LEN = _length(rec.VAL)
        status = _write_lso(rec)
    if rec.PACT and not pact:
        return status   # SDLY: processing completes later
    rec.PACT = 1
    stamp_simm(rec, siol=False)
    monitor_long_string(rec)
    rec.fwd_link()
    rec.PACT = 0
    return status


register(RecordType(
    name="lso",
    fields=LSO_FIELDS,
    process=process_lso,
    init=init_lso,
    devices=("Soft Channel", "Async Soft Channel", "stdio"),
    special=special_long_string,
    cvt_dbaddr=_string_fields,
    string_count=_string_count,
))
