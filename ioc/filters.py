"""Server-side channel filters: ``REC.FIELD[s:i:e]`` and ``REC.FIELD{"name":{...}}`` (EPICS 7 dbChannel).

A PV name may carry, after its field name, a ``$`` (long string), an array range ``[s:i:e]`` and a JSON
object of filters, in that order and nothing else (``dbChannelCreate``). Each filter is one plug-in of
EPICS Base's ``std/filters``: ``arr`` (sub-array), ``dbnd`` (deadband), ``dec`` (decimation), ``ts``
(timestamp), ``utag`` (user tag) and ``sync`` (which needs a named dbState; a ``softIoc -d file.db`` has
none, so every ``sync`` channel fails to open, here as there).

:func:`parse_suffix` turns the suffix into filter specifications (the plug-in's options, checked as
``chfPlugin.c`` checks them). :class:`FilteredChannel` wraps a plain channel and runs the filters as
``dbChannelOpen``/``dbEvent.c`` do: a *pre* chain when a value is posted (dbnd, dec, utag, ts without
options), a *post* chain when it is sent (arr, the ``ts`` value modes), and both on a read. Filter state
lives in the :class:`FilteredChannel`, one per CA channel, as the C IOC keeps it per dbChannel.
"""
from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from caproto.constants import (
    DBE_ALARM,
    DBE_LOG,
    DBE_PROPERTY,
    DBE_VALUE,
    EPICS_EPOCH_OFFSET,
    MAX_STRING_SIZE,
)
from caproto.convert import convert_values
from caproto.dbr import ChannelType, decode_payload, encode_payload, family, native_type
from caproto.errors import CAError

from .alarms import check_deadband
from .records.fields import DBF, SPC

if TYPE_CHECKING:
    from .database import Completion, FieldChannel

__all__ = ["FilterError", "FilterSpec", "FilteredChannel", "parse_suffix", "split_field"]

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_VALUE_LOG = DBE_VALUE | DBE_LOG
# the event mask of a subscriber that does not say: every post, as for a FieldChannel
_EVERY_EVENT = DBE_VALUE | DBE_LOG | DBE_ALARM | DBE_PROPERTY
_NOT_READABLE = frozenset({ChannelType.PUT_ACKT, ChannelType.PUT_ACKS})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class FilterError(ValueError):
    """A channel name whose filter part the C IOC refuses (the channel is not created)."""


# --- plug-in options (chfPlugin argument tables, as data) --------------------------------------------

@dataclass(frozen=True)
class _Option:
    name: str
    kind: str                       # "int32", "double", "enum"
    target: str                     # the setting it stores into
    required: bool = False
    convert: bool = False           # accepts other JSON types than its own (chfPlugin "convert")
    enums: tuple[tuple[str, int], ...] = ()
    tag: tuple[str, int] | None = None   # (setting, value) a shorthand key also sets


_DBND_MODES = (("abs", 0), ("rel", 1))
_TS_NUM = (("dbl", 2), ("sec", 3), ("nsec", 4), ("ts", 5))
_TS_EPOCH = (("epics", 0), ("unix", 1))
_TS_STR = (("epics", 1), ("iso", 2))

_PLUGINS: dict[str, tuple[tuple[_Option, ...], dict[str, Any]]] = {
    "arr": ((_Option("s", "int32", "s", convert=True), _Option("i", "int32", "i", convert=True),
             _Option("e", "int32", "e", convert=True)),
            {"s": 0, "i": 1, "e": -1}),
    "dbnd": ((_Option("d", "double", "d", convert=True),
              _Option("m", "enum", "m", convert=True, enums=_DBND_MODES),
              _Option("abs", "double", "d", convert=True, tag=("m", 0)),
              _Option("rel", "double", "d", convert=True, tag=("m", 1))),
             {"d": 0.0, "m": 0}),
    "dec": ((_Option("n", "int32", "n", required=True),), {"n": 0}),
    "ts": ((_Option("num", "enum", "num", enums=_TS_NUM), _Option("epoch", "enum", "epoch", enums=_TS_EPOCH),
            _Option("str", "enum", "str", enums=_TS_STR)),
           {"num": 0, "epoch": 0, "str": 0}),
    "utag": ((_Option("M", "int32", "M", convert=True), _Option("V", "int32", "V", convert=True)),
             {"M": -1, "V": 0}),
}


@dataclass(frozen=True)
class FilterSpec:
    """One parsed filter: the plug-in name and its settings after ``parse_ok``."""

    plugin: str
    settings: tuple[tuple[str, Any], ...]

    def get(self, name: str) -> Any:
        return dict(self.settings)[name]


def _c_strtol_int(text: str) -> int | None:
    """epicsParseInt32 of a JSON string as chfPlugin calls it: blanks, a number (base 0), anything after
    it ignored; None when there is no number or it does not fit."""
    number = _strtol(text)
    if number is None or not _INT32_MIN <= number[0] <= _INT32_MAX:
        return None
    return number[0]


_STRTOD = re.compile(r"[ \t\n\r\f\v]*([+-]?(?:inf(?:inity)?|nan|0[xX][0-9a-fA-F]+|"
                     r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))", re.IGNORECASE)


def _c_parse_double(text: str) -> float | None:
    """epicsParseDouble of a JSON string as chfPlugin calls it: blanks, a number (strtod), anything
    after it ignored; None when there is no number or it overflows."""
    match = _STRTOD.match(text)
    if match is None:
        return None
    literal = match.group(1)
    if "x" in literal.lower() and "n" not in literal.lower():
        value = float(int(literal, 16))
    else:
        value = float(literal)
    if math.isinf(value) and "inf" not in literal.lower():
        return None
    return value


class _Builder:
    """The settings of one filter as its JSON arrives (chfPlugin's parse callbacks)."""

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin
        self.options, defaults = _PLUGINS[plugin]
        self.settings = dict(defaults)
        self.found: set[int] = set()
        self.current: int | None = None

    def key(self, key: str) -> None:
        # chfPlugin matches a key against the first option name it is a prefix of.
        index = next((i for i, option in enumerate(self.options) if option.name.startswith(key)), None)
        if index is None:
            raise FilterError(f"filter {self.plugin!r} has no option {key!r}")
        option = self.options[index]
        self.current = index
        if option.tag is not None:
            self.settings[option.tag[0]] = option.tag[1]
        for other_index, other in enumerate(self.options):
            if other.target == option.target or (option.tag is not None and other.target == option.tag[0]):
                self.found.add(other_index)
        self.found.add(index)

    def value(self, kind: str, value: Any) -> None:
        if self.current is None:
            raise FilterError(f"filter {self.plugin!r}: a value without an option name")
        option = self.options[self.current]
        if kind == "int" and not _INT32_MIN <= value <= _INT32_MAX:
            raise FilterError(f"filter {self.plugin!r}: {value} does not fit 32 bits")
        self.settings[option.target] = _store(option, kind, value, self.plugin)

    def finish(self) -> FilterSpec:
        for index, option in enumerate(self.options):
            if option.required and index not in self.found:
                raise FilterError(f"filter {self.plugin!r} needs option {option.name!r}")
        settings = self.settings
        if self.plugin == "arr" and settings["i"] <= 0:
            settings["i"] = 1
        elif self.plugin == "dec" and settings["n"] < 1:
            raise FilterError("filter 'dec' needs n >= 1")
        return FilterSpec(self.plugin, tuple(sorted(settings.items())))


def _store(option: _Option, kind: str, value: Any, plugin: str) -> Any:
    """store_*_value: ``value`` (a JSON ``kind``) as the option's type, or FilterError."""
    bad = FilterError(f"filter {plugin!r}: option {option.name!r} cannot take {value!r}")
    own = {"int32": "int", "double": "double", "enum": "string"}[option.kind]
    if kind != own and not option.convert and not (option.kind == "enum" and kind == "string"):
        raise bad
    if option.kind == "int32":
        if kind == "int" or kind == "bool":
            return int(value)
        if kind == "double":
            if not _INT32_MIN <= value <= _INT32_MAX:
                raise bad
            return int(value)
        number = _c_strtol_int(value)
        if number is None:
            raise bad
        return number
    if option.kind == "double":
        if kind in ("int", "bool", "double"):
            return float(value)
        number = _c_parse_double(value)
        if number is None:
            raise bad
        return number
    if kind == "int":
        for _, number in option.enums:
            if number == value:
                return number
        raise bad
    if kind != "string":
        raise bad
    for name, number in option.enums:
        if name.startswith(value):          # a value names the first choice it begins
            return number
    raise bad


# --- the JSON part (yajl events, in order) ------------------------------------------------------------

_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_STRING = re.compile(r'"((?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*)"')
_SPACE = " \t\n\r\f\v"
_LITERALS = (("true", "bool", True), ("false", "bool", False), ("null", "null", None))


def _json_events(text: str) -> list[tuple[str, Any]]:
    """The events yajl reports for ``text`` (one JSON value and blanks), or FilterError."""
    events: list[tuple[str, Any]] = []
    stack: list[str] = []           # "map" / "array"
    expect_key = False
    pos = 0
    n = len(text)

    def skip(p: int) -> int:
        while p < n and text[p] in _SPACE:
            p += 1
        return p

    pos = skip(pos)
    while True:
        if pos >= n:
            raise FilterError("incomplete JSON")
        ch = text[pos]
        if expect_key:
            if ch == "}" and events[-1][0] == "start_map":
                events.append(("end_map", None))
                stack.pop()
                pos += 1
            else:
                match = _STRING.match(text, pos)
                if match is None:
                    raise FilterError(f"JSON: a key expected at {pos}")
                events.append(("key", _unescape(match.group(1))))
                pos = skip(match.end())
                if pos >= n or text[pos] != ":":
                    raise FilterError(f"JSON: ':' expected at {pos}")
                pos = skip(pos + 1)
                expect_key = False
                continue
        elif ch == "{":
            events.append(("start_map", None))
            stack.append("map")
            expect_key = True
            pos = skip(pos + 1)
            continue
        elif ch == "[":
            events.append(("start_array", None))
            stack.append("array")
            pos = skip(pos + 1)
            if pos < n and text[pos] == "]":
                events.append(("end_array", None))
                stack.pop()
                pos += 1
            else:
                continue
        elif ch == '"':
            match = _STRING.match(text, pos)
            if match is None:
                raise FilterError(f"JSON: bad string at {pos}")
            events.append(("string", _unescape(match.group(1))))
            pos = match.end()
        elif ch == "-" or ch.isdigit():
            match = _NUMBER.match(text, pos)
            if match is None:
                raise FilterError(f"JSON: bad number at {pos}")
            literal = match.group(0)
            if match.group(2) or match.group(3):
                number = float(literal)
                if math.isinf(number):
                    raise FilterError("JSON: numeric overflow")
                events.append(("double", number))
            else:
                number = int(literal)
                if not -(1 << 63) <= number < (1 << 63):
                    raise FilterError("JSON: integer overflow")
                events.append(("int", number))
            pos = match.end()
        else:
            for word, kind, value in _LITERALS:
                if text.startswith(word, pos):
                    events.append((kind, value))
                    pos += len(word)
                    break
            else:
                raise FilterError(f"JSON: unexpected {ch!r} at {pos}")
        # after a value: a separator, a close, or the end of the document
        pos = skip(pos)
        while True:
            if not stack:
                if pos != n:
                    raise FilterError("JSON: trailing garbage")
                return events
            if pos >= n:
                raise FilterError("incomplete JSON")
            ch = text[pos]
            if ch == ",":
                pos = skip(pos + 1)
                expect_key = stack[-1] == "map"
                break
            closing = "}" if stack[-1] == "map" else "]"
            if ch != closing:
                raise FilterError(f"JSON: {closing!r} expected at {pos}")
            events.append(("end_map" if closing == "}" else "end_array", None))
            stack.pop()
            pos = skip(pos + 1)


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    return json.loads(f'"{raw}"')


def _parse_json(text: str) -> list[FilterSpec]:
    """chf_parse: the filters of one JSON object ``{"name": {...}, ...}``, in order."""
    specs: list[FilterSpec] = []
    builder: _Builder | None = None
    depth = 0
    events = _json_events(text)
    for kind, value in events[1:-1]:      # inside the outer map
        if builder is None:
            if kind != "key":
                raise FilterError("JSON: a filter name expected")
            if value == "sync":
                # sync names a dbState; states come from the iocsh command dbStateCreate, which a
                # database file cannot run, so (in softIoc -d too) no sync channel ever opens
                raise FilterError("filter 'sync': no such state")
            if value not in _PLUGINS:
                raise FilterError(f"Channel filter '{value}' not found")
            builder = _Builder(value)
            continue
        if kind == "start_map":
            depth += 1
            continue
        if kind == "key":
            builder.key(value)
            continue
        if kind in ("start_array", "end_array", "null"):
            raise FilterError(f"filter {builder.plugin!r}: {kind.replace('_', ' ')} not accepted")
        if kind == "end_map":
            depth -= 1
        else:
            builder.value(kind, value)
        if depth == 0:
            specs.append(builder.finish())
            builder = None
    return specs


# --- the whole suffix ------------------------------------------------------------------------------

def _strtol(text: str, pos: int = 0) -> tuple[int, int] | None:
    """C strtol(text + pos, &end, 0) on a 64-bit long: (value, characters used), or None when no number
    is there. The value is clamped to the long range, as strtol does on overflow."""
    match = _STRTOL.match(text, pos)
    if match is None:
        return None
    sign, digits = match.groups()
    if digits[:2] in ("0x", "0X"):
        value = int(digits, 16)
    elif digits.startswith("0"):
        value = int(digits, 8)
    else:
        value = int(digits)
    value = min(value, (1 << 63) - 1) if sign != "-" else -min(value, 1 << 63)
    return value, match.end() - pos


_STRTOL = re.compile(r"[ \t\n\r\f\v]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def _as_int32(value: int) -> int:
    """A C long stored in an epicsInt32 (wraps, as the conversion does on every EPICS target)."""
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


def _parse_range(suffix: str, pos: int) -> tuple[FilterSpec, int]:
    """parseArrayRange: ``[s]``, ``[s:e]`` or ``[s:i:e]`` at ``suffix[pos]``, as an arr filter."""
    start, incr, end = 0, 1, -1
    pos += 1
    number = _strtol(suffix, pos)
    if number is not None:
        start = _as_int32(number[0])
        pos += number[1]
    if pos < len(suffix) and suffix[pos] == "]" and number is not None:
        end = start
    else:
        if pos >= len(suffix) or suffix[pos] != ":":
            raise FilterError("array range: ':' or ']' expected")
        pos += 1
        number = _strtol(suffix, pos)
        if number is not None:
            pos += number[1]
        if pos < len(suffix) and suffix[pos] == "]":
            if number is not None:
                end = _as_int32(number[0])
        else:
            if number is not None:
                incr = _as_int32(number[0])
            if pos >= len(suffix) or suffix[pos] != ":":
                raise FilterError("array range: ':' or ']' expected")
            pos += 1
            number = _strtol(suffix, pos)
            if number is not None:
                end = _as_int32(number[0])
                pos += number[1]
            if pos >= len(suffix) or suffix[pos] != "]":
                raise FilterError("array range: ']' expected")
    builder = _Builder("arr")
    for key, value in (("s", start), ("i", incr), ("e", end)):
        builder.key(key)
        builder.value("int", value)
    return builder.finish(), pos + 1


def split_field(after_dot: str) -> tuple[str, str]:
    """dbFindFieldPart: (field name, the rest) of what follows the record name's dot; the field name is
    a C identifier, empty for VAL."""
    match = _IDENTIFIER.match(after_dot)
    if match is None:
        return "", after_dot
    return match.group(0), after_dot[match.end():]


@functools.lru_cache(maxsize=256)
def parse_suffix(suffix: str) -> tuple[bool, tuple[FilterSpec, ...]]:
    """What follows the field name: (long string ``$``, the filters in order). FilterError when the C
    IOC would not create the channel."""
    long_string = suffix.startswith("$")
    pos = 1 if long_string else 0
    specs: list[FilterSpec] = []
    if suffix.startswith("[", pos):
        spec, pos = _parse_range(suffix, pos)
        specs.append(spec)
    if suffix.startswith("{", pos):
        specs.extend(_parse_json(suffix[pos:]))
        pos = len(suffix)
    if pos != len(suffix):
        raise FilterError(f"unexpected {suffix[pos:]!r} after the field name")
    return long_string, tuple(specs)


# --- running filters ------------------------------------------------------------------------------

@dataclass
class _Probe:
    """What the channel looks like to the filters opened after it (db_field_log probe)."""

    native_type: ChannelType
    count: int


@dataclass
class _Log:
    """One value on its way through the filters (db_field_log)."""

    event: bool                        # an update being posted, not a read
    mask: int
    scalar: bool                       # dbfl_type_val: a copy of a scalar field
    time: tuple[int, int] | None = None        # replaced timestamp
    select: np.ndarray | None = None           # indices of the field's elements still in the value
    replaced: tuple[ChannelType, Any] | None = None   # a value of another type (ts value modes)


def _wrap_indices(start: int, incr: int, end: int, count: int) -> tuple[int, int]:
    """wrapArrayIndices: (first index, number of elements) of ``[start:incr:end]`` in ``count``."""
    if start < 0:
        start = max(count + start, 0)
    start = min(start, count)
    if end < 0:
        end = max(count + end, 0)
    if end >= count:
        end = count - 1
    return start, (1 + (end - start) // incr if end - start >= 0 else 0)


def _epics_now() -> tuple[int, int]:
    secs, nsec = divmod(time.time_ns(), 1_000_000_000)
    return secs - EPICS_EPOCH_OFFSET, nsec


class _Filter:
    """One filter of one channel: its settings and its state."""

    def __init__(self, spec: FilterSpec) -> None:
        self.spec = spec

    def open_pre(self, probe: _Probe) -> bool:
        """channel_register_pre: is this filter in the chain run when a value is posted?"""
        return False

    def open_post(self, probe: _Probe) -> bool:
        """channel_register_post: is it in the chain run when a value is sent? (may change ``probe``)"""
        return False

    def run_pre(self, entry: _Log, channel: FilteredChannel) -> _Log | None:
        return entry

    def run_post(self, entry: _Log, channel: FilteredChannel) -> _Log | None:
        return entry


class _PreFilter(_Filter):
    def open_pre(self, probe: _Probe) -> bool:
        return True


class _Array(_Filter):
    def __init__(self, spec: FilterSpec) -> None:
        super().__init__(spec)
        self.start, self.incr, self.end = (spec.get(k) for k in ("s", "i", "e"))

    def open_post(self, probe: _Probe) -> bool:
        if probe.count <= 1:
            return False                    # array data only
        probe.count = _wrap_indices(self.start, self.incr, self.end, probe.count)[1]
        return True

    def run_post(self, entry: _Log, channel: FilteredChannel) -> _Log | None:
        if entry.replaced is not None:
            kind, values = entry.replaced
            if len(values) > 1:                 # the ts filter's (seconds, nanoseconds) array
                first, count = _wrap_indices(self.start, self.incr, self.end, len(values))
                entry.replaced = (kind, values[first:first + count * self.incr:self.incr][:count])
            return entry
        if entry.scalar:
            return entry
        available = channel.source_length() if entry.select is None else len(entry.select)
        first, count = _wrap_indices(self.start, self.incr, self.end, available)
        if count > 0:
            indices = np.arange(first, first + count * self.incr, self.incr)[:count]
            entry.select = indices if entry.select is None else entry.select[indices]
        else:
            entry.select = np.zeros(0, dtype=np.intp)
        return entry


class _Deadband(_PreFilter):

    def __init__(self, spec: FilterSpec) -> None:
        super().__init__(spec)
        self.relative = spec.get("m") == 1
        self.delta = spec.get("d")
        self.hyst = self.delta
        self.last = math.nan

    def run_pre(self, entry: _Log, channel: FilteredChannel) -> _Log | None:
        send = 1
        if entry.scalar:
            value = channel.scalar_as_double()
            if value is not None:
                send = entry.mask & ~_VALUE_LOG
                if check_deadband(self.last, value, self.hyst):
                    send |= entry.mask & _VALUE_LOG
                    self.last = value
                if send and self.relative:
                    self.hyst = value * self.delta / 100.0
        return entry if send else None


class _Decimate(_PreFilter):

    def __init__(self, spec: FilterSpec) -> None:
        super().__init__(spec)
        self.n = spec.get("n")
        self.i = 0

    def run_pre(self, entry: _Log, channel: FilteredChannel) -> _Log | None:
        if not entry.event or entry.mask & DBE_PROPERTY:
            return entry
        passed = self.i == 0
        self.i = (self.i + 1) % self.n
        return entry if passed else None


class _UserTag(_PreFilter):

    def __init__(self, spec: FilterSpec) -> None:
        super().__init__(spec)
        self.mask = spec.get("M")
        self.value = spec.get("V")
        self.first = True

    def run_pre(self, entry: _Log, channel: FilteredChannel) -> _Log | None:
        if not entry.event or entry.mask & DBE_PROPERTY:
            return entry
        if self.first:
            self.first = False
            return entry
        utag = _as_int32(int(getattr(channel.record, "UTAG", 0)))
        return entry if (utag & self.mask) == self.value else None


class _Timestamp(_Filter):
    def __init__(self, spec: FilterSpec) -> None:
        super().__init__(spec)
        self.mode = {0: "generate", 2: "dbl", 3: "sec", 4: "nsec", 5: "ts"}[spec.get("num")]
        if spec.get("str"):
            self.mode = "str"
        self.unix = spec.get("epoch") == 1
        self.iso = spec.get("str") == 2

    def open_pre(self, probe: _Probe) -> bool:
        return self.mode == "generate"

    def open_post(self, probe: _Probe) -> bool:
        if self.mode == "generate":
            return False
        # DBF_ULONG (sec, nsec, ts) is served as DOUBLE, as CA has no unsigned long
        probe.native_type = ChannelType.STRING if self.mode == "str" else ChannelType.DOUBLE
        probe.count = 2 if self.mode == "ts" else 1
        return True

    def run_pre(self, entry: _Log, channel: FilteredChannel) -> _Log | None:
        entry.time = _epics_now()
        return entry

    def run_post(self, entry: _Log, channel: FilteredChannel) -> _Log | None:
        secs, nsec = stamp = entry.time if entry.time is not None else channel.record.TIME
        if self.mode == "str":              # the epoch setting is for the numbers only
            entry.replaced = (ChannelType.STRING, [_time_text(stamp, self.iso)])
            return entry
        if self.unix:
            secs = (secs + EPICS_EPOCH_OFFSET) & 0xFFFFFFFF
        if self.mode == "dbl":
            entry.replaced = (ChannelType.DOUBLE, np.array([secs + nsec * 1e-9]))
        elif self.mode == "sec":
            entry.replaced = (ChannelType.LONG, np.array([secs], dtype=np.uint32))
        elif self.mode == "nsec":
            entry.replaced = (ChannelType.LONG, np.array([nsec], dtype=np.uint32))
        else:
            entry.replaced = (ChannelType.LONG, np.array([secs, nsec], dtype=np.uint32))
        return entry


def _time_text(stamp: tuple[int, int], iso: bool) -> str:
    """epicsTimeToStrftime with ``%Y-%m-%d %H:%M:%S.%06f`` (``T`` and ``%z`` for iso), local time."""
    secs, nsec = stamp
    if secs == 0 and nsec == 0:
        return "<undefined>"
    local = time.localtime(secs + EPICS_EPOCH_OFFSET)
    text = time.strftime("%Y-%m-%dT%H:%M:%S" if iso else "%Y-%m-%d %H:%M:%S", local)
    # %06f rounds to the microsecond, never up into the next second
    text += f".{min(nsec + 500, 999_999_999) // 1000:06d}"
    return text + time.strftime("%z", local) if iso else text


_FILTER_CLASSES: dict[str, type[_Filter]] = {
    "arr": _Array, "dbnd": _Deadband, "dec": _Decimate, "utag": _UserTag, "ts": _Timestamp,
}


class FilteredChannel:
    """A channel seen through filters: the interface of :class:`~ioc.database.FieldChannel` that the
    server uses (``read``, ``write``, ``subscribe``, ``native_type``, ``max_count``, ``access``,
    ``record``, ``name``), over the plain channel ``base``. One per CA channel: filter state is not
    shared between clients."""

    def __init__(self, name: str, base: FieldChannel, specs: Sequence[FilterSpec]) -> None:
        self.name = name
        self.base = base
        self.record = base.record
        self.access = base.access
        self._long_string = base.long_string
        self._link_text = self._long_string and base.field.is_link
        probe = _Probe(base.native_type, base.max_count)
        # dbChannelOpen: every filter registers for the pre chain, then every filter for the post chain,
        # each seeing the probe as the filters before it left it.
        self._filters = [_FILTER_CLASSES[spec.plugin](spec) for spec in specs]
        self._pre = [flt for flt in self._filters if flt.open_pre(probe)]
        self._post = [flt for flt in self._filters if flt.open_post(probe)]
        self.native_type = probe.native_type
        self.max_count = probe.count
        fld = base.field
        # db_field_log's "val" kind: a copy of a scalar that fits the log (dbnd only looks at those)
        self._scalar = (base.max_count == 1 and fld.special is not SPC.DBADDR and not fld.is_link
                        and not (fld.dbf is DBF.STRING and fld.size > MAX_STRING_SIZE))
        self._pending: _Log | None = None
        # Updates are snapshots: the server encodes each when it is posted, after the filters ran.
        self.queued_by_reference = False

    def __repr__(self) -> str:
        return f"<FilteredChannel {self.name} {self.native_type.name}[{self.max_count}]>"

    # -- what filters ask of the field ------------------------------------------------------------------
    def source_length(self) -> int:
        """Elements of the field now (NORD of an array; the whole buffer of a long string)."""
        return len(self.base.values())

    def scalar_as_double(self) -> float | None:
        """The scalar field as a double (dbFastGetConvertRoutine to DBR_DOUBLE), None if it is no number."""
        try:
            payload, count = self.base.read(ChannelType.DOUBLE, 1)
        except CAError:
            return None
        return float(np.frombuffer(bytes(payload[:8]), dtype=">f8")[0])

    # -- the chains ---------------------------------------------------------------------------------------
    def _run(self, entry: _Log) -> _Log | None:
        for flt in self._pre:
            result = flt.run_pre(entry, self)
            if result is None:
                return None
            entry = result
        return self._run_post(entry)

    def _run_post(self, entry: _Log) -> _Log | None:
        for flt in self._post:
            result = flt.run_post(entry, self)
            if result is None:
                return None
            entry = result
        return entry

    # -- the channel interface ---------------------------------------------------------------------
    def read_metadata(self, data_type: int) -> bytes:
        """The field's metadata alone (rsrv runs no filter for a READ that asks for no element)."""
        return self.base.read_metadata(data_type)

    def read(self, data_type: int, count: int) -> tuple[bytes, int]:
        """(payload, element count) as rsrv sends it for this filtered channel."""
        if not 0 <= data_type <= ChannelType.CLASS_NAME or data_type in _NOT_READABLE:
            return self.base.read(data_type, count)     # the field's own refusal (ECA_BADTYPE)
        entry = self._pending
        if entry is None:
            entry = self._run(_Log(event=False, mask=0, scalar=self._scalar))
        if entry is None:
            # a filter dropped the read: rsrv then reads the field as if unfiltered
            return self.base.read(data_type, count)
        return self._encode(entry, data_type, count)

    def _encode(self, entry: _Log, data_type: int, count: int) -> tuple[bytes, int]:
        base = self.base
        if entry.replaced is not None and data_type != ChannelType.CLASS_NAME:
            return self._encode_replaced(entry, data_type, count)
        if entry.select is None or self._link_text or data_type == ChannelType.CLASS_NAME:
            # the field's own value (a link's text ignores the log: getLinkValue), maybe re-stamped
            payload, n = base.read(data_type, count)
            if entry.time is None or family(data_type) != "time":
                return payload, n
            values, metadata = decode_payload(data_type, n, payload)
            metadata = replace(metadata, secs=entry.time[0], nsec=entry.time[1])
            return encode_payload(data_type, values, metadata, count=n), n
        payload, available = base.read(data_type, base.max_count if self._long_string else 0)
        values, metadata = decode_payload(data_type, available, payload)
        select = entry.select[entry.select < len(values)]
        values = [values[i] for i in select] if isinstance(values, list) else values[select]
        selected = len(values)
        if count:
            values = values[:count]
        if self._long_string and native_type(data_type) == ChannelType.CHAR and len(values) and \
                selected != 1:
            # dbGet of a long string as chars (unless one element is left, which dbGet copies on its
            # scalar path): NUL-terminated, cut after the first NUL
            values = np.array(values, copy=True)
            values[-1] = 0
            values = values[:int(np.flatnonzero(values == 0)[0]) + 1]
        if metadata is not None and entry.time is not None:
            metadata = replace(metadata, secs=entry.time[0], nsec=entry.time[1])
        out = len(values) if count == 0 else count
        return encode_payload(data_type, values, metadata, count=out), out

    def _encode_replaced(self, entry: _Log, data_type: int, count: int) -> tuple[bytes, int]:
        """A value the ts filter made (the timestamp as DOUBLE, ULONG or STRING)."""
        source_type, values = entry.replaced
        is_double = source_type == ChannelType.DOUBLE
        metadata = None
        if family(data_type) != "plain" or data_type == ChannelType.STSACK_STRING:
            _, metadata = decode_payload(data_type, 1, self.base.read(data_type, 1)[0])
            # getOptions asks the record for a precision only for a FLOAT/DOUBLE value
            if not is_double:
                metadata = replace(metadata, precision=0)
            if entry.time is not None and family(data_type) == "time":
                metadata = replace(metadata, secs=entry.time[0], nsec=entry.time[1])
        precision = self._string_precision() if is_double else 0
        converted = convert_values(values, source_type, data_type, precision=precision)
        out = len(values) if count == 0 else count
        return encode_payload(data_type, converted, metadata, count=out), out

    def _string_precision(self) -> int:
        """The precision a DOUBLE is formatted with as a string: the record's for its float fields."""
        base = self.base
        if base.native_type not in (ChannelType.DOUBLE, ChannelType.FLOAT):
            return 6
        _, metadata = decode_payload(ChannelType.CTRL_DOUBLE, 1, base.read(ChannelType.CTRL_DOUBLE, 1)[0])
        return metadata.precision

    def write(self, data_type: int, count: int, payload: bytes | memoryview,
              notify: bool = False) -> Completion | None:
        """A put goes to the field itself: filters only shape what is read and sent."""
        return self.base.write(data_type, count, payload, notify)

    def subscribe(self, callback: Callable[[int], None], mask: int = _EVERY_EVENT,
                  first: bool = False) -> Callable[[], None]:
        """``callback(mask)`` for each post selected by ``mask`` that passes the filters, and with
        ``first`` for the first update if it passes them; returns the unsubscribe function.

        The first update goes through the filters as an update with the subscription's mask, as
        db_post_single_event runs it: dbnd and dec count it, ts stamps it, and a filter may drop it.
        """

        def on_post(posted: int) -> None:
            self._deliver(callback, posted, posted & mask)

        unsubscribe = self.base.subscribe(on_post, mask)
        if first:
            self._deliver(callback, mask, mask)
        return unsubscribe

    def _deliver(self, callback: Callable[[int], None], posted: int, selected: int) -> None:
        entry = self._run(_Log(event=True, mask=selected, scalar=self._scalar))
        if entry is None:
            return
        # the server's callback reads the channel: it gets this entry, not a fresh read
        self._pending = entry
        try:
            callback(posted)
        finally:
            self._pending = None
