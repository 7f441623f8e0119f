"""printf: VAL is FMT with each conversion filled from the next of the links INP0..INP9 (read as the
conversion's C type), written to OUT as a long string (printfRecord.c, devPrintfSoft.c).

VAL holds up to SIZV - 1 bytes (SIZV from 16 to 32767, 41 by default); as for lsi, each record takes a
variant of its type whose VAL is a STRING field of SIZV bytes, so ``REC.VAL`` reads as a DBR_STRING and
``REC.VAL$`` as the LEN chars. A ``*`` width or precision takes the next link too (read as a short). A
link that does not read prints IVLS in place of its conversion; a directive the record does not know
prints as written.
"""
from __future__ import annotations

import dataclasses
import math
import re
import struct
from typing import TYPE_CHECKING

from caproto.constants import DBE_LOG, DBE_VALUE
from caproto.dbr import STRING_ENCODING
from ioc import alarms

from . import RecordType, register
from .common import COMMON_FIELDS, c_unsigned, constant, require_soft_device
from .fields import DBF, SPC, Field
from .lstring import put_long_string

if TYPE_CHECKING:
    from ioc.database import Record

INPUT_LINKS = tuple(f"INP{i}" for i in range(10))

PRINTF_FIELDS: tuple[Field, ...] = COMMON_FIELDS + (
    Field("VAL", DBF.NOACCESS, special=SPC.DBADDR, pp=True),
    Field("SIZV", DBF.USHORT, initial="41", special=SPC.NOMOD),
    Field("LEN", DBF.ULONG, special=SPC.NOMOD),
    Field("OUT", DBF.OUTLINK),
    Field("FMT", DBF.STRING, size=81, pp=True),
    Field("IVLS", DBF.STRING, size=16, initial="LNK"),
) + tuple(Field(link, DBF.INLINK) for link in INPUT_LINKS)

_SIZV_MIN, _SIZV_MAX = 16, 0x7FFF
_CONVERSIONS = frozenset(b"diouxXeEfFgGcs%")
# (conversion characters, size modifier) -> how the value is read: (DBF of the read, C type it becomes)
_SIGNED = {"hh": "int8", "h": "int16", "": "int32", "l": "int32", "ll": "int64"}
_UNSIGNED = {"hh": "uint8", "h": "uint16", "": "uint32", "l": "uint32", "ll": "uint64"}
_C_TYPES: dict[str, tuple[DBF, int, bool]] = {     # C type -> (DBF read, bits, signed)
    "int8": (DBF.CHAR, 8, True), "int16": (DBF.SHORT, 16, True), "int32": (DBF.LONG, 32, True),
    "int64": (DBF.DOUBLE, 64, True), "uint8": (DBF.UCHAR, 8, False), "uint16": (DBF.USHORT, 16, False),
    "uint32": (DBF.DOUBLE, 32, False), "uint64": (DBF.DOUBLE, 64, False),
}
_FLOAT32 = struct.Struct("f")
_PERCENT = re.compile(rb"%[-+ #0]*[0-9]*(\.[0-9]*)?%")


class _BadLink(Exception):
    """A link this conversion needs is missing or did not read: IVLS is printed instead."""


class _BadFormat(Exception):
    """A directive the record does not accept: it is printed as written."""


def _sized(rtype: RecordType, sizv: int) -> RecordType:
    """``rtype`` with VAL a STRING field of ``sizv`` bytes (what cvt_dbaddr makes it)."""
    known = _SIZED.get(sizv)
    if known is None:
        fields = tuple(Field("VAL", DBF.STRING, size=sizv, pp=True) if f.name == "VAL" else f
                       for f in rtype.fields)
        known = _SIZED[sizv] = dataclasses.replace(rtype, fields=fields, init=None, cvt_dbaddr=None)
    return known


_SIZED: dict[int, RecordType] = {}


def init_printf(rec: Record) -> None:
    require_soft_device(rec, ("Soft Channel", "Async Soft Channel"))
    rec.SIZV = min(max(rec.SIZV, _SIZV_MIN), _SIZV_MAX)
    rec.rtype = _sized(rec.rtype, rec.SIZV)
    rec.VAL = ""
    rec.LEN = 0


class _Inputs:
    """INP0..INP9 in turn: each conversion and each ``*`` takes the next."""

    def __init__(self, rec: Record) -> None:
        self.rec = rec
        self.used = 0

    def next_link(self) -> str:
        if self.used >= len(INPUT_LINKS):
            raise _BadLink
        link = INPUT_LINKS[self.used]
        self.used += 1
        return link

    def number(self, c_type: str) -> int | float:
        """The next link's value as the C type (recGblInitConstantLink for a constant link)."""
        link = self.next_link()
        rec = self.rec
        if c_type in ("float", "double"):
            value = _read(rec, link, DBF.FLOAT if c_type == "float" else DBF.DOUBLE)
            return _FLOAT32.unpack(_FLOAT32.pack(value))[0] if c_type == "float" else value
        dbf, bits, signed = _C_TYPES[c_type]
        value = _read(rec, link, dbf)
        if isinstance(value, float):
            if signed:
                # cvttsd2si: out of range and NaN give the most negative value
                value = int(value) if math.isfinite(value) and abs(value) < 2.0 ** 63 else -(1 << 63)
            else:
                value = c_unsigned(value, bits)
        value &= (1 << bits) - 1
        if signed and value >= 1 << (bits - 1):
            value -= 1 << bits
        return value

    def string(self) -> bytes:
        text = _read(self.rec, self.next_link(), DBF.STRING)
        return text.encode(STRING_ENCODING, "surrogateescape")

    def chars(self, count: int) -> bytes:
        """%ls: up to ``count`` chars of the next link (dbGetLink of DBR_CHAR, or a constant's JSON
        string), up to the first NUL."""
        rec, link = self.rec, self.next_link()
        if rec.link_is_constant(link):
            entry = rec._links.get(link)
            value = entry[0].value if entry is not None else None
            if isinstance(value, list):
                value = value[0] if value else None
            if not isinstance(value, str):
                raise _BadLink
            raw = value.encode(STRING_ENCODING, "surrogateescape")[:count - 1]
        else:
            chars = rec.get_link(link, DBF.CHAR, count)
            if chars is None:
                raise _BadLink
            raw = bytes(int(c) & 0xFF for c in ([chars] if count == 1 else chars))
        return raw.split(b"\0", 1)[0]


def _read(rec: Record, link: str, dbf: DBF) -> object:
    if rec.link_is_constant(link):
        value = constant(rec, link, DBF.DOUBLE if dbf is not DBF.STRING else DBF.STRING)
    else:
        value = rec.get_link(link, dbf)
    if value is None:
        raise _BadLink
    return value


def _parse_directive(fmt: bytes, pos: int, inputs: _Inputs) -> tuple[bytes | None, int, dict]:
    """The directive starting after a '%' at ``pos``: (its text with ``*`` replaced by the numbers
    read, or None when the format ends inside it; the position after it; what it says). Raises
    _BadLink/_BadFormat after consuming what C consumes; the exception carries the directive text."""
    directive = bytearray(b"%")
    spec = {"width": 0, "precision": 0, "left": False, "size": "", "conversion": 0}
    target = "width"
    bad: type[Exception] | None = None
    while pos < len(fmt):
        ch = fmt[pos]
        pos += 1
        directive.append(ch)
        if ch in b"+ #":
            continue
        if ch == ord("-"):
            spec["left"] = True
        elif ch == ord("."):
            target = "precision"
        elif ord("0") <= ch <= ord("9"):
            spec[target] = spec[target] * 10 + ch - ord("0")
        elif ch == ord("*"):
            if spec[target]:
                bad = bad or _BadFormat
                continue
            try:
                number = inputs.number("int16")
            except _BadLink:
                bad = _BadLink if bad is None else bad
                continue
            spec[target] = number
            directive[-1:] = str(number).encode()
        elif ch == ord("h"):
            if spec["size"] in ("ll", "l", "hh"):
                bad = bad or _BadFormat
            spec["size"] = "hh" if spec["size"] == "h" else "h"
        elif ch == ord("l"):
            if spec["size"] in ("ll", "h", "hh"):
                bad = bad or _BadFormat
            spec["size"] = "ll" if spec["size"] == "l" else "l"
        else:
            if ch not in _CONVERSIONS:
                bad = bad or _BadFormat
            spec["conversion"] = ch
            spec["bad"] = bad
            return bytes(directive), pos, spec
    return None, pos, spec


def _python_format(directive: bytes) -> bytes:
    """The directive as Python's bytes % takes it: without C's length modifiers."""
    return directive[:-1].replace(b"h", b"").replace(b"l", b"") + directive[-1:]


def _convert(directive: bytes, spec: dict, inputs: _Inputs, vspace: int) -> bytes:
    conversion = chr(spec["conversion"])
    size = spec["size"]
    if conversion == "%":
        # glibc prints a well-formed '%' directive ("%%", "%5%") as "%", anything else as written
        return b"%" if _PERCENT.fullmatch(directive) else directive
    if conversion in "cdi":
        value = inputs.number("int8" if conversion == "c" else _SIGNED[size])
        if conversion == "c":
            return b"%c" % (value & 0xFF) if spec["width"] == 0 else \
                _python_format(directive) % bytes([value & 0xFF])
        return _python_format(directive) % value
    if conversion in "ouxX":
        value = inputs.number(_UNSIGNED[size])
        if conversion == "o" and b"#" in directive:
            directive = _alternate_octal(directive, spec, value)
        return _python_format(directive) % value
    if conversion in "eEfFgG":
        return _python_format(directive) % inputs.number("float" if size == "h" else "double")
    if size == "l":
        return _long_string(spec, inputs, vspace)
    return _python_format(directive) % inputs.string()


def _alternate_octal(directive: bytes, spec: dict, value: int) -> bytes:
    """C's "%#o" raises the precision so that the first digit is a 0 (Python's would print "0o")."""
    digits = len(format(value, "o"))
    precision = spec["precision"]
    if value and precision <= digits:
        precision = digits + 1
    flags = re.match(rb"%([-+ #0]*)", directive).group(1).replace(b"#", b"")
    width = spec["width"]
    return b"%" + flags + (b"%d" % width if width else b"") + b".%d" % precision + directive[-1:]


def _long_string(spec: dict, inputs: _Inputs, vspace: int) -> bytes:
    """%ls: the chars themselves (at most the precision), padded to the width within the room left."""
    count = vspace + 1
    precision, width = spec["precision"], spec["width"]
    if width < 0:
        width, spec["left"] = -width, True
    if precision > 0 and count > precision:
        count = precision + 1
    text = inputs.chars(count)
    padding = width - len(text)
    if padding <= 0:
        return text
    if spec["left"]:
        return text + b" " * (min(width, vspace) - len(text))
    return (b" " * padding + text)[:max(vspace, 0)]


def format_value(rec: Record) -> bytes:
    """doPrintf: VAL as FMT and the input links make it, at most SIZV - 1 bytes."""
    fmt = rec.FMT.encode(STRING_ENCODING, "surrogateescape")
    inputs = _Inputs(rec)
    out = bytearray()
    vspace = rec.SIZV - 1
    pos = 0
    while vspace > 0 and pos < len(fmt):
        ch = fmt[pos]
        pos += 1
        if ch != ord("%"):
            out.append(ch)
            vspace -= 1
            continue
        directive, pos, spec = _parse_directive(fmt, pos, inputs)
        if directive is None:
            break       # the format ends inside a directive: it prints nothing
        try:
            if spec["bad"] is not None:
                raise spec["bad"]
            text = _convert(directive, spec, inputs, vspace)
        except _BadLink:
            text = rec.IVLS.encode(STRING_ENCODING, "surrogateescape")
        except (_BadFormat, ValueError, OverflowError):
            # ValueError: a directive Python's formatting refuses where glibc prints something of its
            # own (a negative precision from '*'); it is printed as written
            text = directive
        out += text[:vspace]
        vspace -= min(len(text), vspace)
    return bytes(out)


def process_printf(rec: Record) -> int | None:
    pact = rec.PACT
    if not pact:
        text = format_value(rec)
        rec.VAL = text.decode(STRING_ENCODING, "surrogateescape")
        rec.LEN = len(text) + 1
        rec.UDF = 0
        rec.stamp()
    status = put_long_string(rec, "OUT")
    rec.PACT = 1
    mask = alarms.reset_alarms(rec) | DBE_VALUE | DBE_LOG
    rec.post("VAL", mask)
    rec.post("LEN", mask)
    rec.fwd_link()
    rec.PACT = 0
    return status


def _string_count(rec: Record, fld: Field) -> int:
    """get_array_info: LEN elements of VAL (0 until the first processing)."""
    return rec.LEN if fld.name == "VAL" else fld.size


def _string_fields(rec: Record, fld: Field) -> tuple[DBF, int] | None:
    # before init_record sizes it (the record's own table then declares VAL a STRING)
    return (DBF.STRING, 1) if fld.name == "VAL" else None


register(RecordType(
    name="printf",
    fields=PRINTF_FIELDS,
    process=process_printf,
    init=init_printf,
    devices=("Soft Channel", "Async Soft Channel", "stdio"),
    cvt_dbaddr=_string_fields,
    string_count=_string_count,
))
