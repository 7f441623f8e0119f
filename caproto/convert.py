"""Value conversions between a field's type and a requested DBR type, with the C IOC's rules.

These mirror EPICS Base's database access conversions (dbFastLinkConv.c for scalars, dbConvert.c for
arrays, cvtFast.c for number formatting, epicsStdlib.c for parsing) as softIoc 7.0 on x86-64 applies
them. The rules confirmed against softIoc are pinned in tests/test_convert.py and
tests/test_dbr_interop.py:

* double/float -> integer types: truncation toward zero through a 32-bit integer (x86 ``cvttsd2si``):
  NaN, infinities and values outside the int32 range become INT32_MIN, then the low bits are kept
  (``DBR_SHORT`` of 70000.5 is 4464, ``DBR_CHAR`` of 300 is 44, ``DBR_ENUM`` of -1.5 is 65535).
* double -> float: clamped to +-FLT_MAX, and magnitudes at or below FLT_MIN become +-FLT_MIN.
* number -> string: integers in decimal; doubles and floats with ``cvtDoubleToString`` /
  ``cvtFloatToString`` and the field's precision (PREC): a fixed-point algorithm with round-half-up for
  |x| <= 1e7 and precision <= 8, ``%.{min(p,3)}f`` above that, ``%{p+7}.{p}e`` for precision > 8 or
  |x| > 1e16 (floats: ``%{p+6}.{p}e``, above 1e8).
* enum -> string: the state string, or a fallback for an index outside the table.
* string -> number: leading whitespace, then the longest number prefix (``strtol`` base 10 for integer
  types, ``strtod`` for floating types, so "1e3" reads as 1 into an integer and 1000 into a double, and
  "0x10" as 0 and 16); an empty string is 0; no number at all, or one out of the type's range, fails.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .constants import ECA, MAX_STRING_SIZE
from .dbr import STRING_ENCODING, ChannelType, family, native_type
from .errors import CAError

__all__ = [
    "NATIVE_DTYPES", "convert_values", "values_for_put", "format_double", "format_float",
    "format_doubles", "format_floats", "parse_integer", "parse_double", "string_to_chars",
    "chars_to_string",
]

# Host-order dtype holding each native type's values; the encoder swaps to big-endian on the way out.
NATIVE_DTYPES: dict[ChannelType, np.dtype] = {
    ChannelType.INT: np.dtype(np.int16),
    ChannelType.FLOAT: np.dtype(np.float32),
    ChannelType.ENUM: np.dtype(np.uint16),
    ChannelType.CHAR: np.dtype(np.uint8),
    ChannelType.LONG: np.dtype(np.int32),
    ChannelType.DOUBLE: np.dtype(np.float64),
}

_INT64_MIN = -(1 << 63)
_FLT_MAX = float(np.finfo(np.float32).max)
_FLT_MIN = float(np.finfo(np.float32).tiny)
_DBL_MIN = float(np.finfo(np.float64).tiny)
_ERRORS = "surrogateescape"

Values = np.ndarray | list[str]


# --- number -> string (cvtFast.c) -------------------------------------------------------------------------

def _printf_e(value: float, width: int, precision: int) -> str:
    text = f"{value:{width}.{precision}e}" if math.isfinite(value) else _nonfinite(value)
    return text.rjust(width)


def _printf_f(value: float, precision: int) -> str:
    return f"{value:.{precision}f}" if math.isfinite(value) else _nonfinite(value)


def _nonfinite(value: float) -> str:
    # glibc prints the sign of a NaN too
    if math.isnan(value):
        return "-nan" if math.copysign(1.0, value) < 0 else "nan"
    return "inf" if value > 0 else "-inf"


def _fixed_point(values: np.ndarray, precision: int, single: bool) -> list[str]:
    """The hand-rolled branch of cvtDoubleToString / cvtFloatToString (|x| <= 1e7, precision <= 8)."""
    if values.size == 0:
        return []
    negative = values < 0
    magnitude = np.abs(values)
    whole = magnitude.astype(np.int64)
    fplace = 10 ** precision
    if single:
        # float arithmetic throughout, as the C code does with a float argument
        ftemp = magnitude - whole.astype(np.float32)
        scaled = ftemp * np.float32(fplace) * np.float32(10)
    else:
        ftemp = magnitude - whole.astype(np.float64)
        scaled = ftemp * float(fplace) * 10.0
    fraction = (scaled.astype(np.int64) + 5) // 10   # round half up on the truncated next digit
    carry = fraction >= fplace
    whole = whole + carry
    fraction = fraction - carry * fplace
    text = np.char.add(np.where(negative, "-", ""), whole.astype(str))
    if precision > 0:
        text = np.char.add(np.char.add(text, "."), np.char.zfill(fraction.astype(str), precision))
    return text.tolist()


def _format(values: np.ndarray, precision: int, single: bool) -> list[str]:
    prec = precision & 0xFFFF  # the C routines take an epicsUInt16
    values = np.asarray(values, dtype=np.float32 if single else np.float64).reshape(-1)
    if prec > 8:
        prec = min(prec, 12 if single else 17)
        width = prec + (6 if single else 7)
        return [_printf_e(float(v), width, prec) for v in values]
    fast = ~np.isnan(values) & (values <= 1e7) & (values >= -1e7)
    if fast.all():
        return _fixed_point(values, prec, single)
    out = [""] * len(values)
    fast_idx = np.flatnonzero(fast)
    for i, text in zip(fast_idx.tolist(), _fixed_point(values[fast_idx], prec, single), strict=True):
        out[i] = text
    limit = 1e8 if single else 1e16
    for i in np.flatnonzero(~fast).tolist():
        v = float(values[i])
        huge = (v >= limit or v <= -limit) if single else (v > limit or v < -limit)
        if huge:
            p = min(prec, 12 if single else 17)
            out[i] = _printf_e(v, p + (6 if single else 7), p)
        else:
            out[i] = _printf_f(v, min(prec, 3))
    return out


def format_doubles(values: np.ndarray | Sequence[float], precision: int) -> list[str]:
    """cvtDoubleToString of each value: what a DOUBLE field with this PREC reads as DBR_STRING."""
    return _format(np.asarray(values), precision, single=False)


def format_floats(values: np.ndarray | Sequence[float], precision: int) -> list[str]:
    """cvtFloatToString of each value: what a FLOAT field with this PREC reads as DBR_STRING."""
    return _format(np.asarray(values), precision, single=True)


def format_double(value: float, precision: int) -> str:
    return format_doubles([value], precision)[0]


def format_float(value: float, precision: int) -> str:
    return format_floats([value], precision)[0]


# --- string -> number (epicsStdlib.c on glibc) ------------------------------------------------------------

_SPACE = " \t\n\v\f\r"   # C isspace in the C locale
_INTEGER = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)")
_INTEGER_ANY_BASE = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_FLOAT = re.compile(
    r"[ \t\n\v\f\r]*(?P<num>[+-]?(?:"
    r"0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    r"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?"
    r"|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?))")

# Texts that strtod and float() read alike, with no ERANGE possible (caput's usual "12.5"): no
# whitespace, exponent, hex, inf or nan, and too few digits to overflow or underflow.
_PLAIN_DECIMAL_PATTERN = r"[+-]?(?:[0-9]{1,17}\.?[0-9]{0,17}|\.[0-9]{1,17})"
_PLAIN_DECIMAL = re.compile(_PLAIN_DECIMAL_PATTERN).fullmatch
#: The same test on the bytes of a DBR_STRING (``match(data, start, end)``): such text needs no decoding,
#: ``float()`` reads the bytes.
plain_decimal_bytes = re.compile(_PLAIN_DECIMAL_PATTERN.encode()).fullmatch
_ULONG_MAX = (1 << 64) - 1
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1


class _ParseError(ValueError):
    """Text that epicsParse* rejects: ``kind`` is 'none' (no number), 'range' or 'extraneous'."""

    def __init__(self, kind: str, text: str) -> None:
        self.kind = kind
        self.written: int | None = None     # what the C conversion stored before it failed
        super().__init__(f"{kind}: {text!r}")


def _check_rest(rest: str, text: str, allow_units: bool) -> None:
    # epicsParse*: trailing whitespace is fine; anything else is extraneous unless the caller takes units
    # (passes an &end pointer), which dbConvert does everywhere but for enum indexes.
    if not allow_units and rest.strip(_SPACE):
        raise _ParseError("extraneous", text)


def _strtol(text: str, signed: bool, base: int) -> tuple[int, str]:
    """strtol / strtoul (64-bit long): the number at the start of ``text`` and what follows it."""
    match = (_INTEGER if base == 10 else _INTEGER_ANY_BASE).match(text)
    if not match:
        raise _ParseError("none", text)
    sign, digits = match.groups()
    if base == 10:
        number = int(digits)
    elif digits[:2] in ("0x", "0X"):
        number = int(digits, 16)
    else:
        number = int(digits, 8 if digits.startswith("0") else 10)
    if sign == "-":
        number = -number
    if signed:
        if not _LONG_MIN <= number <= _LONG_MAX:
            raise _ParseError("range", text)
    else:
        # strtoul accepts a sign and negates modulo 2**64
        if abs(number) > _ULONG_MAX:
            raise _ParseError("range", text)
        number &= _ULONG_MAX
    return number, text[match.end():]


def parse_integer(text: str, dtype: np.dtype | type, *, allow_units: bool = True, base: int = 10) -> int:
    """epicsParse{Int,UInt}{8,16,32,64}: strtol / strtoul, then the type's range check.

    ``allow_units`` is what passing an ``&end`` pointer does in C: characters after the number are
    ignored. ``base`` is 10, or 0 for C's prefix rules (0x hex, 0 octal). Raises ValueError where the C
    routine returns an error status.
    """
    dtype = np.dtype(dtype)
    signed = dtype.kind == "i"
    number, rest = _strtol(text, signed, base)
    _check_rest(rest, text, allow_units)
    if signed:
        info = np.iinfo(dtype)
        if not info.min <= number <= info.max:
            raise _ParseError("range", text)
        return number
    mask = (1 << (dtype.itemsize * 8)) - 1
    # epicsParseUInt*: values above the type are an overflow, unless they came from a negated small number
    if mask < number <= _ULONG_MAX - mask:
        raise _ParseError("range", text)
    return number & mask


def parse_double(text: str, *, allow_units: bool = True) -> float:
    """epicsParseFloat64 with glibc strtod: decimal, hex, inf, nan; ERANGE results are errors."""
    if _PLAIN_DECIMAL(text):
        return float(text)
    return _strtod(text, allow_units)


def _strtod(text: str, allow_units: bool) -> float:
    match = _FLOAT.match(text)
    if not match:
        raise _ParseError("none", text)
    _check_rest(text[match.end():], text, allow_units)
    literal = match.group("num")
    body = literal.lstrip("+-")
    if body[:1] in "nN":
        return math.copysign(math.nan, -1.0 if literal.startswith("-") else 1.0)
    if body[:2] in ("0x", "0X"):
        mantissa = re.split("[pP]", body[2:])[0]
        try:
            value = float.fromhex(literal)
        except OverflowError:
            raise _ParseError("range", text) from None
    else:
        mantissa = re.split("[eE]", body)[0]
        value = float(literal)
    if math.isinf(value) and body[:1] not in "iI":
        raise _ParseError("range", text)            # ERANGE: finite text too large
    if value == 0 and mantissa.strip("0.") != "":
        raise _ParseError("range", text)            # ERANGE: underflow to zero
    if value != 0 and abs(value) < _DBL_MIN:
        raise _ParseError("range", text)            # ERANGE: subnormal result
    return value


def _parse_float32(text: str, allow_units: bool) -> float:
    # epicsParseFloat: the double must fit a float; note only positive tiny values count as underflow
    value = parse_double(text, allow_units=allow_units)
    magnitude = abs(value)
    if value > 0 and magnitude <= _FLT_MIN:
        raise _ParseError("range", text)
    if math.isfinite(value) and magnitude >= _FLT_MAX:
        raise _ParseError("range", text)
    return value


_UNASSIGNED = None     # a conversion that leaves the destination element as it was


def _parse_ulong(text: str) -> int | None:
    # cvt_st_ul: "db_access pretends unsigned long is double", so "1.0e3" converts via strtod
    try:
        number, rest = _strtol(text, False, 10)
        number = parse_integer(text, np.uint32)
    except _ParseError as exc:
        if exc.kind != "none":
            raise
        number, rest = None, ""
    if number is not None and rest[:1] not in (".", "e", "E"):
        return number
    try:
        value = parse_double(text)
    except _ParseError as exc:
        if number is not None:
            exc.written = number    # epicsParseUInt32 stored its prefix before strtod failed
        raise
    if 0 <= value <= 0xFFFFFFFF:
        return int(value)
    # C leaves the destination as it was, apart from the integer prefix epicsParseUInt32 wrote
    return _UNASSIGNED if number is None else number


def _parse_to_dtype(text: str, dtype: np.dtype, *, empty_is_zero: bool) -> int | float | None:
    if empty_is_zero and text == "":
        return 0
    if dtype.kind == "f":
        return _parse_float32(text, True) if dtype.itemsize == 4 else parse_double(text)
    if dtype == np.uint32:
        return _parse_ulong(text)
    return parse_integer(text, dtype, base=0 if dtype == np.uint64 else 10)


# --- numeric casts (C conversions on x86-64) --------------------------------------------------------------

def _cvtt(values: np.ndarray, bits: int) -> np.ndarray:
    """x86 cvttsd2si into a signed register of ``bits``: truncation, or INT_MIN (NaN, out of range)."""
    limit = 2.0 ** (bits - 1)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(values) & (values > -limit - 1) & (values < limit)
        truncated = np.trunc(np.where(ok, values, 0)).astype(np.int64)
    return np.where(ok, truncated, -(1 << (bits - 1))).astype(np.int64)


def _float_to_int(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """(integer type) of a float array as gcc compiles it for x86-64."""
    if dtype.itemsize < 4 or dtype == np.int32:
        # through a 32-bit register, then the low bits
        return _cvtt(values, 32).astype(dtype)
    if dtype != np.uint64:
        return _cvtt(values, 64).astype(dtype)
    # double -> uint64: below 2**63 a plain conversion, above it on (x - 2**63) with the top bit flipped
    with np.errstate(invalid="ignore"):
        low = values < 2.0 ** 63
    high = _cvtt(values - 2.0 ** 63, 64) ^ np.int64(_INT64_MIN)
    return np.where(low, _cvtt(values, 64), high).astype(np.uint64)


def _double_to_float(values: np.ndarray) -> np.ndarray:
    """epicsConvertDoubleToFloat, elementwise."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        magnitude = np.abs(values)
        clamped = np.where(magnitude >= _FLT_MAX, np.copysign(_FLT_MAX, values), values)
        clamped = np.where((magnitude <= _FLT_MIN) & (values != 0), np.copysign(_FLT_MIN, values), clamped)
    clamped = np.where(np.isfinite(values), clamped, values)
    with np.errstate(over="ignore"):
        return clamped.astype(np.float32)


def _numeric_cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    source = values.dtype
    if source == dtype:
        return values
    if source.kind == "f":
        if dtype.kind == "f":
            if dtype.itemsize == 4 and source.itemsize == 8:
                return _double_to_float(values)
            return values.astype(dtype)
        return _float_to_int(values, dtype)
    if source.kind == "b":
        values = values.astype(np.uint8)
    # integer -> integer keeps the low bits; integer -> float rounds to nearest: numpy does both like C
    return values.astype(dtype)


# --- public conversions -----------------------------------------------------------------------------------

def _as_strings(values: Any) -> list[str]:
    if isinstance(values, (str, bytes)):
        values = [values]
    return [v.decode(STRING_ENCODING, _ERRORS) if isinstance(v, bytes) else str(v) for v in values]


def _as_array(values: Any, native: ChannelType) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values if values.ndim == 1 else values.reshape(-1)
    if isinstance(values, (bytes, bytearray)):
        return np.frombuffer(values, dtype=np.uint8)
    return np.asarray(values, dtype=NATIVE_DTYPES[native]).reshape(-1)


def _enum_to_strings(indexes: np.ndarray, enum_strings: Sequence[str], fallback: str | None) -> list[str]:
    table = list(enum_strings)
    out = []
    for i in indexes.tolist():
        if 0 <= i < len(table):
            out.append(table[i])
        else:
            out.append(str(i) if fallback is None else fallback)
    return out


def _numbers_to_strings(values: np.ndarray, precision: int) -> list[str]:
    if values.dtype.kind == "f":
        if values.dtype.itemsize == 4:
            return format_floats(values, precision)
        return format_doubles(values, precision)
    if values.dtype.kind == "b":
        values = values.astype(np.uint8)
    return values.astype(str).tolist()


def convert_values(values: Any, from_type: int, to_type: int, *, precision: int = 0,
                   enum_strings: Sequence[str] = (), enum_fallback: str | None = None,
                   string_enum: bool = False) -> Values:
    """What a read of ``to_type`` returns from a field of native type ``from_type`` holding ``values``.

    ``values`` is the field's value sequence: a numpy array whose dtype is the field's C type (int8 for
    DBF_CHAR, uint8 for DBF_UCHAR, uint16 for DBF_USHORT, ...; the CA native type alone cannot tell them
    apart) or a list of str for STRING fields. ``to_type`` may be any DBR type; its native type is
    produced, as a host-order numpy array of NATIVE_DTYPES or a list of str.

    ``precision`` is the field's PREC for number -> string. For ENUM fields ``enum_strings`` is the
    state table looked up for -> string and ``enum_fallback`` what an index outside it reads as:
    ``None`` gives the index in decimal (menu fields), a string gives that string (bi/bo answer
    "Illegal_Value", mbbi/mbbo "Illegal Value" above state 15).

    A STRING field read as ENUM fails, unless ``string_enum``: dbGet converts strings of an array (a
    waveform's, or a long string whose length is not 1) as decimal unsigned shorts (getStringUshort).

    Raises CAError(ECA.GETFAIL) where the C IOC's read fails (a string that is not a number, a string
    field read as ENUM).
    """
    source = native_type(from_type)
    target = native_type(to_type)
    if source is ChannelType.STRING:
        strings = _as_strings(values)
        if target is ChannelType.STRING:
            return strings
        if target is ChannelType.ENUM and not string_enum:
            # dbGet of one string goes through the record's put_enum_str, which string-valued records
            # do not have
            raise CAError(ECA.GETFAIL, "a string field cannot be read as DBR_ENUM")
        dtype = NATIVE_DTYPES[target]
        if target is ChannelType.CHAR and family(to_type) in ("plain", "time"):
            # db_access asks for DBR_CHAR (signed) for the plain and TIME structs, DBR_UCHAR for the rest
            dtype = np.dtype(np.int8)
        try:
            parsed = [_parse_to_dtype(s, dtype, empty_is_zero=True) for s in strings]
        except _ParseError as exc:
            raise CAError(ECA.GETFAIL, f"cannot read {strings!r} as {target.name}: {exc}") from None
        return np.array(parsed, dtype=dtype).astype(NATIVE_DTYPES[target], copy=False)
    array = _as_array(values, source)
    if target is ChannelType.STRING:
        if source is ChannelType.ENUM:
            return _enum_to_strings(array, enum_strings, enum_fallback)
        return _numbers_to_strings(array, precision)
    return _numeric_cast(array, NATIVE_DTYPES[target])


def values_for_put(values: Any, from_type: int, to_type: int, *, enum_strings: Sequence[str] = (),
                   enum_count: int | None = None, precision: int = 6, string_size: int = MAX_STRING_SIZE,
                   field_dtype: np.dtype | type | None = None, array_field: bool = False,
                   current: Sequence[Any] = ()) -> Values:
    """The values a put of ``from_type`` data stores in a field of native type ``to_type``.

    ``values`` is the decoded put (list of str or numpy array); ``from_type`` any DBR type. The result is
    a numpy array of ``field_dtype`` (default: the native type's NATIVE_DTYPES entry; give int8 for a
    DBF_CHAR field, uint32 for DBF_ULONG, ...) or a list of str.

    * string -> ENUM: the index of the first equal string in ``enum_strings`` (the record's state table,
      as its put_enum_str compares), else the text as a decimal index below ``enum_count`` (default
      ``len(enum_strings)``; trailing characters after the index are ignored for array fields, such as
      mbbo's SPC_DBADDR VAL), else failure.
    * string -> STRING: truncated to ``string_size - 1`` bytes.
    * number -> STRING: integers in decimal, floating types with ``precision`` (6 when the record has no
      PREC, as cvt_d_st defaults).
    * string -> number: as for reads; the empty string is 0 only for scalar fields (``array_field``
      False), array fields (waveform VAL) reject it like dbConvert.c does.

    Raises CAError(ECA.PUTFAIL) where the C IOC's dbPut fails; softIoc answers a WRITE_NOTIFY with that
    status and a plain WRITE with an ERROR message carrying it. The record is not processed and, for a
    scalar, keeps its value. An array put of strings stops at the first bad element, after writing the
    ones before it (NORD unchanged): those are the exception's ``stored`` attribute. A string whose
    integer prefix a DBF_ULONG conversion took before strtod refused the whole ("1e400") leaves that
    prefix written too, in a scalar as in an array. Where cvt_st_ul assigns nothing ("-inf" into a
    DBF_ULONG), the element keeps its value from ``current`` (the field's values before the put).
    """
    source = native_type(from_type)
    target = native_type(to_type)
    dtype = np.dtype(field_dtype) if field_dtype is not None else NATIVE_DTYPES.get(target)
    if source is ChannelType.STRING:
        strings = _as_strings(values)
        if target is ChannelType.STRING:
            return [_truncate(s, string_size) for s in strings]
        if target is ChannelType.ENUM:
            return _strings_to_enum(strings, enum_strings, enum_count, array_field)
        scalar_path = not array_field and len(strings) == 1
        parsed = []
        for text in strings:
            try:
                value = _parse_to_dtype(text, dtype, empty_is_zero=scalar_path)
                if value is _UNASSIGNED:
                    index = len(parsed)
                    value = current[index] if index < len(current) else 0
                parsed.append(value)
            except _ParseError as exc:
                if exc.written is not None:
                    parsed.append(exc.written)
                error = CAError(ECA.PUTFAIL, f"cannot store {text!r} as {target.name}: {exc}")
                # dbConvert writes element by element: the ones before the bad one are already stored
                error.stored = np.array(parsed, dtype=dtype)
                raise error from None
        return np.array(parsed, dtype=dtype)
    array = _as_array(values, source)
    if target is ChannelType.STRING:
        if source is ChannelType.CHAR:
            array = array.astype(np.uint8, copy=False)   # rsrv puts DBR_CHAR as DBR_UCHAR
        return [_truncate(s, string_size) for s in _numbers_to_strings(array, precision)]
    return _numeric_cast(array, dtype)


def _truncate(text: str, size: int) -> str:
    raw = text.encode(STRING_ENCODING, _ERRORS)
    if len(raw) < size:
        return text
    return raw[:size - 1].decode(STRING_ENCODING, _ERRORS)


def _strings_to_enum(strings: list[str], enum_strings: Sequence[str], enum_count: int | None,
                     array_field: bool) -> np.ndarray:
    if array_field and len(strings) != 1:
        raise CAError(ECA.PUTFAIL, "an ENUM field takes one string")
    count = len(enum_strings) if enum_count is None else enum_count
    table = list(enum_strings)
    out = []
    for text in strings:
        if text in table:
            out.append(table.index(text))
            continue
        try:
            # dbConvert's putStringEnum (array path) passes &end, cvt_st_e (scalar path) does not
            index = parse_integer(text, np.uint16, allow_units=array_field)
        except _ParseError:
            index = None
        if index is None or index >= count:
            raise CAError(ECA.PUTFAIL, f"{text!r} is neither a state nor an index below {count}")
        out.append(index)
    return np.array(out, dtype=np.uint16)


# --- long strings as CHAR arrays ("REC.FIELD$", caget -S) -------------------------------------------------

def string_to_chars(text: str, count: int | None = None) -> np.ndarray:
    """A str as a NUL-terminated uint8 array (``count`` elements, zero-padded or truncated)."""
    raw = text.encode(STRING_ENCODING, _ERRORS) + b"\0"
    if count is not None:
        raw = raw[:count].ljust(count, b"\0")
        if count:
            raw = raw[:count - 1] + b"\0"
    return np.frombuffer(raw, dtype=np.uint8).copy()


def chars_to_string(values: np.ndarray | bytes) -> str:
    """A CHAR array read as text, up to its first NUL."""
    raw = values.tobytes() if isinstance(values, np.ndarray) else bytes(values)
    return raw.split(b"\0", 1)[0].decode(STRING_ENCODING, _ERRORS)
