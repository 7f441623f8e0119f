"""The 39 DBR types of Channel Access: ids, C struct layouts (db_access.h), metadata, payload coding.

A DBR payload is a metadata struct followed by ``count`` values, big-endian, padded to a multiple of 8
bytes. The struct layouts, including their ``RISC_pad`` fields, are data (``_HEADERS``); encoding and
decoding read them. Values travel as a *value sequence*: a numpy array of the native type's big-endian
dtype, or a ``list[str]`` for strings.
"""
from __future__ import annotations

import enum
import math
import operator
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .constants import (
    EPICS_EPOCH_OFFSET,
    MAX_ENUM_STATES,
    MAX_ENUM_STRING_SIZE,
    MAX_STRING_SIZE,
    MAX_UNITS_SIZE,
)
from .errors import RemoteProtocolError

__all__ = [
    "ChannelType", "Metadata", "STRING_ENCODING", "DTYPES", "native_type", "family", "promote",
    "element_size", "metadata_size", "payload_size", "encode_payload", "decode_payload",
    "decode_values", "decode_metadata", "encode_strings", "decode_strings", "scalar_packer",
]

# Strings are byte strings in EPICS; UTF-8 with surrogateescape maps any received bytes to a str and back
# unchanged, and sends what softIoc sends for non-ASCII text in a .db file.
STRING_ENCODING = "utf-8"
_ERRORS = "surrogateescape"


class ChannelType(enum.IntEnum):
    """DBR type ids (db_access.h), named like the C constants without ``DBR_``."""
    STRING = 0
    INT = 1
    SHORT = 1
    FLOAT = 2
    ENUM = 3
    CHAR = 4
    LONG = 5
    DOUBLE = 6
    STS_STRING = 7
    STS_INT = 8
    STS_SHORT = 8
    STS_FLOAT = 9
    STS_ENUM = 10
    STS_CHAR = 11
    STS_LONG = 12
    STS_DOUBLE = 13
    TIME_STRING = 14
    TIME_INT = 15
    TIME_SHORT = 15
    TIME_FLOAT = 16
    TIME_ENUM = 17
    TIME_CHAR = 18
    TIME_LONG = 19
    TIME_DOUBLE = 20
    GR_STRING = 21
    GR_INT = 22
    GR_SHORT = 22
    GR_FLOAT = 23
    GR_ENUM = 24
    GR_CHAR = 25
    GR_LONG = 26
    GR_DOUBLE = 27
    CTRL_STRING = 28
    CTRL_INT = 29
    CTRL_SHORT = 29
    CTRL_FLOAT = 30
    CTRL_ENUM = 31
    CTRL_CHAR = 32
    CTRL_LONG = 33
    CTRL_DOUBLE = 34
    PUT_ACKT = 35
    PUT_ACKS = 36
    STSACK_STRING = 37
    CLASS_NAME = 38


_NATIVES = tuple(ChannelType(i) for i in range(7))
_FAMILIES = ("plain", "sts", "time", "gr", "ctrl")
_SPECIAL_NATIVE = {
    ChannelType.PUT_ACKT: ChannelType.ENUM,      # dbr_put_ackt_t: unsigned short
    ChannelType.PUT_ACKS: ChannelType.ENUM,      # dbr_put_acks_t: unsigned short
    ChannelType.STSACK_STRING: ChannelType.STRING,
    ChannelType.CLASS_NAME: ChannelType.STRING,
}


def native_type(data_type: int) -> ChannelType:
    """The value type of a DBR type: ``TIME_DOUBLE`` -> ``DOUBLE``, ``CLASS_NAME`` -> ``STRING``."""
    if 0 <= data_type <= ChannelType.CTRL_DOUBLE:
        return _NATIVES[data_type % 7]
    return _SPECIAL_NATIVE[ChannelType(data_type)]


def family(data_type: int) -> str:
    """'plain', 'sts', 'time', 'gr', 'ctrl' or 'special' (PUT_ACKT, PUT_ACKS, STSACK_STRING, CLASS_NAME)."""
    if 0 <= data_type <= ChannelType.CTRL_DOUBLE:
        return _FAMILIES[data_type // 7]
    ChannelType(data_type)  # raises ValueError for ids outside 0..38
    return "special"


def promote(native: int, family_name: str) -> ChannelType:
    """The DBR type of ``native`` in ``family_name``: ``promote(DOUBLE, 'time')`` -> ``TIME_DOUBLE``."""
    base = native_type(native)
    try:
        return ChannelType(base + 7 * _FAMILIES.index(family_name))
    except ValueError:
        raise ValueError(f"no DBR family {family_name!r}; expected one of {_FAMILIES}") from None


# Big-endian wire dtype of each native type's elements; STRING has none (40-byte C strings).
DTYPES: dict[ChannelType, np.dtype | None] = {
    ChannelType.STRING: None,
    ChannelType.INT: np.dtype(">i2"),
    ChannelType.FLOAT: np.dtype(">f4"),
    ChannelType.ENUM: np.dtype(">u2"),
    ChannelType.CHAR: np.dtype("u1"),
    ChannelType.LONG: np.dtype(">i4"),
    ChannelType.DOUBLE: np.dtype(">f8"),
}
_VALUE_CODE = {ChannelType.STRING: "40s", ChannelType.INT: "h", ChannelType.FLOAT: "f",
               ChannelType.ENUM: "H", ChannelType.CHAR: "B", ChannelType.LONG: "i", ChannelType.DOUBLE: "d"}


@dataclass(slots=True)
class Metadata:
    """Everything a DBR struct carries besides the values. ``secs``/``nsec`` count from the EPICS epoch."""
    status: int = 0
    severity: int = 0
    secs: int = 0
    nsec: int = 0
    units: str = ""
    precision: int = 0
    upper_disp_limit: float = 0
    lower_disp_limit: float = 0
    upper_alarm_limit: float = 0
    upper_warning_limit: float = 0
    lower_warning_limit: float = 0
    lower_alarm_limit: float = 0
    upper_ctrl_limit: float = 0
    lower_ctrl_limit: float = 0
    enum_strings: tuple[str, ...] = ()
    ackt: int = 0
    acks: int = 0

    @property
    def timestamp(self) -> float:
        """The stamp as POSIX seconds."""
        return EPICS_EPOCH_OFFSET + self.secs + self.nsec * 1e-9

    @classmethod
    def from_timestamp(cls, posix_time: float, **fields: Any) -> Metadata:
        """Metadata stamped at ``posix_time`` (seconds since 1970, as ``time.time()`` returns)."""
        secs, nsec = epics_time(posix_time)
        return cls(secs=secs, nsec=nsec, **fields)


def epics_time(posix_time: float) -> tuple[int, int]:
    """POSIX seconds -> (seconds since the EPICS epoch, nanoseconds)."""
    whole = math.floor(posix_time)
    nsec = round((posix_time - whole) * 1e9)
    if nsec >= 1_000_000_000:
        whole, nsec = whole + 1, nsec - 1_000_000_000
    return whole - EPICS_EPOCH_OFFSET, nsec


# --- metadata struct layouts (db_access.h) -------------------------------------------------------------
# Each header is a list of (struct code, Metadata field or role). Roles: 'pad' for the RISC_pad fields,
# 'units', 'no_str' and 'strs' for the text parts. Limits of integer GR/CTRL types have the element's
# C type, so GR_CHAR limits are unsigned bytes.

_STS = [("h", "status"), ("h", "severity")]
_TIME = _STS + [("I", "secs"), ("I", "nsec")]
_GR_LIMITS = ["upper_disp_limit", "lower_disp_limit", "upper_alarm_limit", "upper_warning_limit",
              "lower_warning_limit", "lower_alarm_limit"]
_CTRL_LIMITS = _GR_LIMITS + ["upper_ctrl_limit", "lower_ctrl_limit"]


def _limits(code: str, names: list[str]) -> list[tuple[str, str]]:
    return [(code, name) for name in names]


def _integer_gr(code: str, names: list[str], pad: str = "") -> list[tuple[str, str]]:
    layout = _STS + [(f"{MAX_UNITS_SIZE}s", "units")] + _limits(code, names)
    return layout + ([(pad, "pad")] if pad else [])


def _float_gr(code: str, names: list[str]) -> list[tuple[str, str]]:
    return (_STS + [("h", "precision"), ("2x", "pad"), (f"{MAX_UNITS_SIZE}s", "units")]
            + _limits(code, names))


_ENUM_GR = _STS + [("h", "no_str"), (f"{MAX_ENUM_STATES * MAX_ENUM_STRING_SIZE}s", "strs")]

T = ChannelType
_HEADERS: dict[ChannelType, list[tuple[str, str]]] = {
    **{t: [] for t in _NATIVES},
    T.STS_STRING: _STS, T.STS_INT: _STS, T.STS_FLOAT: _STS, T.STS_ENUM: _STS,
    T.STS_CHAR: _STS + [("x", "pad")],
    T.STS_LONG: _STS,
    T.STS_DOUBLE: _STS + [("4x", "pad")],
    T.TIME_STRING: _TIME,
    T.TIME_INT: _TIME + [("2x", "pad")],
    T.TIME_FLOAT: _TIME,
    T.TIME_ENUM: _TIME + [("2x", "pad")],
    T.TIME_CHAR: _TIME + [("3x", "pad")],
    T.TIME_LONG: _TIME,
    T.TIME_DOUBLE: _TIME + [("4x", "pad")],
    T.GR_STRING: _STS,          # "not implemented; use struct dbr_sts_string"
    T.GR_INT: _integer_gr("h", _GR_LIMITS),
    T.GR_FLOAT: _float_gr("f", _GR_LIMITS),
    T.GR_ENUM: _ENUM_GR,
    T.GR_CHAR: _integer_gr("B", _GR_LIMITS, pad="x"),
    T.GR_LONG: _integer_gr("i", _GR_LIMITS),
    T.GR_DOUBLE: _float_gr("d", _GR_LIMITS),
    T.CTRL_STRING: _STS,
    T.CTRL_INT: _integer_gr("h", _CTRL_LIMITS),
    T.CTRL_FLOAT: _float_gr("f", _CTRL_LIMITS),
    T.CTRL_ENUM: _ENUM_GR,
    T.CTRL_CHAR: _integer_gr("B", _CTRL_LIMITS, pad="x"),
    T.CTRL_LONG: _integer_gr("i", _CTRL_LIMITS),
    T.CTRL_DOUBLE: _float_gr("d", _CTRL_LIMITS),
    T.PUT_ACKT: [],
    T.PUT_ACKS: [],
    T.STSACK_STRING: [("H", "status"), ("H", "severity"), ("H", "ackt"), ("H", "acks")],
    T.CLASS_NAME: [],
}
del T

_ALARM_LIMITS = frozenset({"upper_alarm_limit", "upper_warning_limit", "lower_warning_limit",
                           "lower_alarm_limit"})


def element_size(data_type: int) -> int:
    """Bytes per value element (dbr_value_size)."""
    return _LAYOUTS[data_type].element_size


def metadata_size(data_type: int) -> int:
    """Bytes of metadata before the first value (dbr_value_offset)."""
    return _LAYOUTS[data_type].header.size


def payload_size(data_type: int, count: int) -> int:
    """Size of the payload for ``count`` elements, padded to 8 as it travels."""
    layout = _LAYOUTS[data_type]
    size = layout.header.size + count * layout.element_size
    return size + (-size % 8)


# --- C conversions of metadata into the struct's field types ----------------------------------------------

_FLT_MAX = float(np.finfo(np.float32).max)
_FLT_MIN = float(np.finfo(np.float32).tiny)
_INT32_MIN = -(1 << 31)


def _c_double_to_float(value: float) -> float:
    # epicsConvertDoubleToFloat: clamps to +-FLT_MAX and, for tiny magnitudes, to +-FLT_MIN.
    if value == 0 or not math.isfinite(value):
        return value
    magnitude = abs(value)
    if magnitude >= _FLT_MAX:
        return math.copysign(_FLT_MAX, value)
    if magnitude <= _FLT_MIN:
        return math.copysign(_FLT_MIN, value)
    return value


def _c_to_int32(value: float | int) -> int:
    # (epicsInt32) of a double on x86-64 (cvttsd2si): truncation, INT32_MIN when out of range or NaN.
    if isinstance(value, (int, np.integer)):
        return int(value)
    if not math.isfinite(value):
        return _INT32_MIN
    whole = math.trunc(value)
    return whole if -(1 << 31) <= whole < (1 << 31) else _INT32_MIN


def _wrap(value: int, code: str) -> int:
    # Implicit C narrowing (epicsInt32 -> dbr_short_t / dbr_char_t) keeps the low bits.
    if code == "h":
        return (value + 0x8000) % 0x10000 - 0x8000
    if code == "B":
        return value & 0xFF
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


def _limit_coder(name: str, code: str) -> Callable[[Metadata], int | float]:
    get = operator.attrgetter(name)
    if code == "d":
        return lambda md: float(get(md))
    if code == "f":
        return lambda md: _c_double_to_float(float(get(md)))
    if name in _ALARM_LIMITS:
        # get_alarm: non-finite alarm limits become 0 in the integer structs.
        def alarm(md: Metadata) -> int:
            value = get(md)
            if isinstance(value, float) and not math.isfinite(value):
                return 0
            return _wrap(_c_to_int32(value), code)
        return alarm
    return lambda md: _wrap(_c_to_int32(get(md)), code)


def _units(md: Metadata) -> bytes:
    return md.units.encode(STRING_ENCODING, _ERRORS)[:MAX_UNITS_SIZE - 1]


def _enum_table(md: Metadata) -> bytes:
    strings = md.enum_strings[:MAX_ENUM_STATES]
    return b"".join(s.encode(STRING_ENCODING, _ERRORS)[:MAX_ENUM_STRING_SIZE - 1]
                    .ljust(MAX_ENUM_STRING_SIZE, b"\0") for s in strings)


def _packer(fields: list[tuple[str, str]]) -> Callable[[Metadata], tuple]:
    """A function Metadata -> tuple of struct arguments for a header layout."""
    names = [(code, name) for code, name in fields if name != "pad"]
    if all(name in ("status", "severity", "secs", "nsec", "ackt", "acks") for _, name in names):
        if not names:
            return lambda md: ()
        getter = operator.attrgetter(*(name for _, name in names))
        if len(names) == 1:
            return lambda md: (getter(md),)
        return getter
    parts: list[Callable[[Metadata], Any]] = []
    for code, name in names:
        if name == "units":
            parts.append(_units)
        elif name == "no_str":
            parts.append(lambda md: min(len(md.enum_strings), MAX_ENUM_STATES))
        elif name == "strs":
            parts.append(_enum_table)
        elif name.endswith("_limit"):
            parts.append(_limit_coder(name, code))
        else:
            parts.append(operator.attrgetter(name))
    return lambda md: tuple(part(md) for part in parts)


def _decode_text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(STRING_ENCODING, _ERRORS)


def _unpacker(fields: list[tuple[str, str]]) -> Callable[[tuple], Metadata]:
    """A function struct-tuple -> Metadata for a header layout."""
    names = [name for _, name in fields if name != "pad"]
    if names == ["status", "severity", "secs", "nsec"][:len(names)]:
        # plain, STS and TIME structs hold Metadata's first fields in order
        return lambda values: Metadata(*values)
    if all(name in ("status", "severity", "ackt", "acks") for name in names):
        return lambda values: Metadata(**dict(zip(names, values, strict=True)))

    def build(values: tuple) -> Metadata:
        md = Metadata()
        no_str = 0
        for name, value in zip(names, values, strict=True):
            if name == "units":
                md.units = _decode_text(value)
            elif name == "no_str":
                no_str = max(0, min(value, MAX_ENUM_STATES))
            elif name == "strs":
                md.enum_strings = tuple(
                    _decode_text(value[i * MAX_ENUM_STRING_SIZE:(i + 1) * MAX_ENUM_STRING_SIZE])
                    for i in range(no_str))
            else:
                setattr(md, name, value)
        return md
    return build


class _Layout:
    """Everything needed to code one DBR type, precomputed once."""
    __slots__ = ("data_type", "native", "header", "offset", "element_size", "dtype", "scalar", "pack_header",
                 "unpack_header", "is_string")

    def __init__(self, data_type: ChannelType) -> None:
        fields = _HEADERS[data_type]
        self.data_type = data_type
        self.native = native_type(data_type)
        header_format = ">" + "".join(code for code, _ in fields)
        self.header = struct.Struct(header_format)
        self.offset = self.header.size
        value_code = _VALUE_CODE[self.native]
        self.element_size = struct.calcsize(">" + value_code)
        self.dtype = DTYPES[self.native]
        self.is_string = self.native is ChannelType.STRING
        one = self.header.size + self.element_size
        # The single-element struct carries the padding too: one pack() call makes the whole payload.
        self.scalar = struct.Struct(header_format + value_code + "x" * (-one % 8))
        self.pack_header = _packer(fields)
        self.unpack_header = _unpacker(fields)


_LAYOUTS: dict[int, _Layout] = {int(t): _Layout(t) for t in ChannelType}
_DEFAULT_METADATA = Metadata()
_frombuffer = np.frombuffer
# Below this many strings a Python join beats building a numpy array of them.
_NUMPY_STRINGS_FROM = 32


# --- values ------------------------------------------------------------------------------------------------

def encode_strings(values: Sequence[str | bytes] | str | bytes) -> bytes:
    """40 bytes per string: truncated to 39 bytes and NUL-terminated, as dbr_string_t holds them."""
    if isinstance(values, (str, bytes)):
        values = [values]
    raw = [v if isinstance(v, bytes) else str(v).encode(STRING_ENCODING, _ERRORS) for v in values]
    if len(raw) < _NUMPY_STRINGS_FROM:
        return b"".join(r[:MAX_STRING_SIZE - 1].split(b"\0", 1)[0].ljust(MAX_STRING_SIZE, b"\0")
                        for r in raw)
    # numpy truncates to the item size and pads with NULs; widening S39 -> S40 adds the terminator.
    return np.array(raw, dtype=f"S{MAX_STRING_SIZE - 1}").astype(f"S{MAX_STRING_SIZE}").tobytes()


def decode_strings(data: bytes | memoryview, count: int, offset: int = 0) -> list[str]:
    """``count`` 40-byte C strings from ``data`` at ``offset``; text after a NUL is ignored."""
    end = offset + count * MAX_STRING_SIZE
    chunk = bytes(data[offset:end])
    if len(chunk) < count * MAX_STRING_SIZE:
        # the obsolete READ reply carries a 1-element string as strlen + 1 bytes only
        chunk = chunk.ljust(count * MAX_STRING_SIZE, b"\0")
    return [chunk[i:i + MAX_STRING_SIZE].split(b"\0", 1)[0].decode(STRING_ENCODING, _ERRORS)
            for i in range(0, len(chunk), MAX_STRING_SIZE)]


def encode_payload(data_type: int, values: Any, metadata: Metadata | None = None,
                   count: int | None = None) -> bytes | bytearray:
    """Metadata struct + values of ``data_type``, big-endian, padded to a multiple of 8.

    ``values`` is a value sequence of the requested native type (or a single value). ``count`` larger
    than the number of values pads with zero elements, as rsrv does for an explicit larger count;
    smaller truncates. ``count=0`` gives the metadata alone.

    A single element comes back as ``bytes`` from one precompiled ``struct`` call. Anything longer is
    a ``bytearray`` that the values are byte-swapped into directly: for large arrays building a
    ``bytes`` would cost an extra allocation and copy of the whole payload.
    """
    layout = _LAYOUTS[data_type]
    md = _DEFAULT_METADATA if metadata is None else metadata
    if isinstance(values, (int, float, np.generic)) or (
            layout.is_string and isinstance(values, (str, bytes))):
        if count is None or count == 1:
            if layout.is_string:
                return layout.scalar.pack(*layout.pack_header(md), encode_strings(values))
            return layout.scalar.pack(*layout.pack_header(md), values)
        values = [values]
    n = len(values)
    if count is None:
        count = n
    if count == 1 and n >= 1:
        value = encode_strings(values[0]) if layout.is_string else values[0]
        return layout.scalar.pack(*layout.pack_header(md), value)
    offset = layout.header.size
    size = offset + count * layout.element_size
    payload = bytearray(size + (-size % 8))
    layout.header.pack_into(payload, 0, *layout.pack_header(md))
    used = min(n, count)
    if used == 0:
        return payload
    if layout.is_string:
        payload[offset:offset + used * MAX_STRING_SIZE] = encode_strings(list(values[:used]))
    elif isinstance(values, (bytes, bytearray, memoryview)) and layout.element_size == 1:
        payload[offset:offset + used] = values[:used]
    else:
        np.frombuffer(payload, dtype=layout.dtype, count=used, offset=offset)[:] = values[:used]
    return payload


def scalar_packer(data_type: int) -> Callable[..., bytes]:
    """``pack(*header, value)``: the whole payload of one numeric element of a plain, STS or TIME type,
    ``header`` being (), (status, severity) or (status, severity, secs, nsec) (as `encode_payload`
    writes them, for a server that keeps those values at hand instead of in a `Metadata`).

    Raises ``struct.error`` for a value the type cannot hold."""
    if family(data_type) not in ("plain", "sts", "time") or native_type(data_type) is ChannelType.STRING:
        raise ValueError(f"DBR type {data_type} is not a numeric plain, STS or TIME type")
    return _LAYOUTS[data_type].scalar.pack


def decode_payload(data_type: int, count: int, payload: bytes | bytearray | memoryview
                   ) -> tuple[np.ndarray | list[str], Metadata]:
    """(values, Metadata) from a DBR payload holding ``count`` elements.

    Numeric values are a read-only numpy view of ``payload`` with the big-endian wire dtype (no copy);
    strings a ``list[str]``.
    """
    return decode_values(data_type, count, payload), decode_metadata(data_type, payload)


def decode_values(data_type: int, count: int, payload: bytes | bytearray | memoryview
                  ) -> np.ndarray | list[str]:
    """The values half of `decode_payload`, for a reader who may never look at the metadata."""
    layout = _LAYOUTS[data_type]
    dtype = layout.dtype
    if dtype is not None:
        offset = layout.offset
        try:
            # Positional arguments, and no offset when it is 0: numpy's argument parsing costs as much as
            # the view itself.
            if offset:
                return _frombuffer(payload, dtype, count, offset)
            return _frombuffer(payload, dtype, count)
        except ValueError:
            # too short for the metadata or for ``count`` elements (the only ways the view can fail)
            raise _too_short(layout, count, payload) from None
    if len(payload) < layout.offset:
        raise _too_short(layout, count, payload)
    return decode_strings(payload, count, layout.offset)


def decode_metadata(data_type: int, payload: bytes | bytearray | memoryview) -> Metadata:
    """The metadata half of `decode_payload` (a new `Metadata`; all defaults for the plain types)."""
    layout = _LAYOUTS[data_type]
    if not layout.offset:
        return Metadata()
    try:
        fields = layout.header.unpack_from(payload, 0)
    except struct.error:
        raise _too_short(layout, 0, payload) from None
    return layout.unpack_header(fields)


def _too_short(layout: _Layout, count: int, payload: bytes | bytearray | memoryview) -> RemoteProtocolError:
    name = layout.data_type.name
    if len(payload) < layout.offset:
        return RemoteProtocolError(f"DBR {name} payload of {len(payload)} bytes is shorter than its "
                                   f"{layout.offset}-byte metadata")
    return RemoteProtocolError(f"DBR {name} payload of {len(payload)} bytes cannot hold {count} elements "
                               f"({layout.offset + count * layout.element_size} bytes needed)")
