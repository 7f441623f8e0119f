"""Text output of the CA command-line tools, character for character as EPICS Base's caget/camonitor print it.

The C tools share their formatting (``tool_lib.c``); so do ours. Everything here turns decoded values and
:class:`~caproto.dbr.Metadata` into strings; the only outside state it reads is the wall clock, for the
client-side time stamps and libca's exception reports.
"""
from __future__ import annotations

import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from caproto.client.errors import ca_message
from caproto.constants import EPICS_EPOCH_OFFSET, MAX_ENUM_STATES, AlarmSeverity, AlarmStatus, Command
from caproto.dbr import STRING_ENCODING

# DBR type numbers come in five families of seven (plain, STS, TIME, GR, CTRL), then the special types.
_FAMILY_SIZE = 7
DBR_STRING, DBR_SHORT, DBR_FLOAT, DBR_ENUM, DBR_CHAR, DBR_LONG, DBR_DOUBLE = range(7)
DBR_TIME_STRING = 14
DBR_PUT_ACKT, DBR_PUT_ACKS, DBR_STSACK_STRING, DBR_CLASS_NAME = 35, 36, 37, 38
LAST_BUFFER_TYPE = DBR_CLASS_NAME

_BASE_NAMES = ("STRING", "SHORT", "FLOAT", "ENUM", "CHAR", "LONG", "DOUBLE")
_FAMILY_PREFIXES = ("", "STS_", "TIME_", "GR_", "CTRL_")

# libca's dbr_text: the names ``-d`` accepts and the tools print ("DBR_SHORT", never "DBR_INT").
DBR_TEXT: tuple[str, ...] = tuple(
    f"DBR_{prefix}{base}" for prefix in _FAMILY_PREFIXES for base in _BASE_NAMES
) + ("DBR_PUT_ACKT", "DBR_PUT_ACKS", "DBR_STSACK_STRING", "DBR_CLASS_NAME")


def dbf_text(native_type: int) -> str:
    """libca's ``dbf_type_to_text``: the field type name of a plain DBR type."""
    if 0 <= native_type < len(_BASE_NAMES):
        return "DBF_" + _BASE_NAMES[native_type]
    if native_type == -1:
        return "TYPENOTCONN"
    if native_type == len(_BASE_NAMES):
        return "DBF_NO_ACCESS"
    return "DBF_invalid"


def dbr_text(data_type: int) -> str:
    """libca's ``dbr_type_to_text``."""
    if 0 <= data_type < len(DBR_TEXT):
        return DBR_TEXT[data_type]
    return "DBR_invalid"


def dbr_from_text(text: str) -> int | None:
    """The DBR type a ``-d`` argument names, as caget reads it (number, name, or name without DBR_)."""
    number = _leading_int(text)
    if number is not None:
        return number
    for candidate in (text, "DBR_" + text[:25]):
        if candidate in DBR_TEXT:
            return DBR_TEXT.index(candidate)
    return None


def _leading_int(text: str) -> int | None:
    # sscanf("%d"): optional blanks and sign, then digits; trailing junk is ignored.
    stripped = text.lstrip()
    digits = ""
    for i, ch in enumerate(stripped):
        if ch.isdigit() or (i == 0 and ch in "+-"):
            digits += ch
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return None


def base_type(data_type: int) -> int:
    if data_type in (DBR_STSACK_STRING, DBR_CLASS_NAME):
        return DBR_STRING
    return data_type % _FAMILY_SIZE


def family_index(data_type: int) -> int:
    """0 plain, 1 STS, 2 TIME, 3 GR, 4 CTRL; 5 for the special types."""
    return min(data_type // _FAMILY_SIZE, 5)


def is_char(data_type: int) -> bool:
    return 0 <= data_type <= LAST_BUFFER_TYPE and data_type % _FAMILY_SIZE == DBR_CHAR


def time_type(native_type: int) -> int:
    """``dbf_type_to_DBR_TIME``."""
    return DBR_TIME_STRING + native_type


def status_text(status: int) -> str:
    try:
        return AlarmStatus(status).name
    except ValueError:
        return "??"


def severity_text(severity: int) -> str:
    try:
        return AlarmSeverity(severity).name
    except ValueError:
        return "??"


# --- escaping (epicsStrnEscapedFromRaw / epicsStrnRawFromEscaped) ---------------------------------

_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v",
            0x5C: "\\\\", 0x27: "\\'", 0x22: '\\"', 0: "\\0"}
_UNESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 0x5C, "'": 0x27,
              '"': 0x22, "0": 0}


def escape(raw: bytes) -> str:
    """Printable text for raw bytes: C escapes for control and quote characters, ``\\xNN`` otherwise."""
    out = []
    for byte in raw:
        if byte in _ESCAPES:
            out.append(_ESCAPES[byte])
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def unescape(text: str, limit: int | None = None) -> bytes:
    """Bytes for escaped text (the reverse of :func:`escape`); stops at a NUL, keeps at most ``limit``."""
    src = text.encode(STRING_ENCODING, "surrogateescape")
    out = bytearray()
    i = 0
    hexdigits = b"0123456789abcdefABCDEF"
    while i < len(src):
        c = src[i]
        i += 1
        if c == 0:
            break
        if c != 0x5C:
            out.append(c)
            continue
        if i >= len(src) or src[i] == 0:
            break
        c = src[i]
        i += 1
        if c == ord("x"):
            value = None
            for _ in range(2):
                if i < len(src) and src[i] in hexdigits:
                    value = (value or 0) * 16 + int(chr(src[i]), 16)
                    i += 1
                else:
                    break
            if value is not None:
                out.append(value)
            # "\x" followed by a non-hex character: the escape vanishes, the character is kept
        else:
            out.append(_UNESCAPES.get(chr(c), c))
    if limit is not None:
        del out[limit:]
    return bytes(out)


def string_bytes(value: str | bytes) -> bytes:
    """The bytes a decoded DBR string value came from (the core decodes with surrogateescape)."""
    if isinstance(value, bytes):
        return value
    return value.encode(STRING_ENCODING, "surrogateescape")


# --- numbers ----------------------------------------------------------------------------------------

class IntFormat(enum.Enum):
    DEC = "dec"
    BIN = "bin"
    OCT = "oct"
    HEX = "hex"


def _as_int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def format_long(value: int, how: IntFormat) -> str:
    """An integer as caget's ``-0x``/``-0o``/``-0b`` print it: 32-bit two's complement for hex, oct, bin."""
    value = _as_int32(int(value))
    if how is IntFormat.DEC:
        return str(value)
    unsigned = value & 0xFFFFFFFF
    if how is IntFormat.HEX:
        return f"0x{unsigned:X}"
    if how is IntFormat.OCT:
        return f"0o{unsigned:o}"
    return f"{unsigned:b}" if unsigned else "0"


def round_to_long(value: float) -> int:
    """The C tools' float-to-long rounding: add or subtract one half, truncate toward zero; out of range
    (or NaN) gives INT32_MIN, as the x86-64 conversion instruction does."""
    shifted = value + 0.5 if value > 0.0 else value - 0.5
    if not -2147483648.0 < shifted < 2147483648.0:
        return -2147483648
    return int(shifted)


@dataclass
class OutputOptions:
    """The tool options that change how values print (``-e -f -g -l -0 -n -S -F``)."""
    double_format: str = "%g"
    int_format: IntFormat = IntFormat.DEC
    float_int_format: IntFormat = IntFormat.DEC
    enum_as_number: bool = False
    char_as_string: bool = False
    separator: str = " "


def value_text(values: Sequence, index: int, data_type: int, metadata, options: OutputOptions) -> str:
    """``val2str``: element ``index`` of a decoded value of DBR type ``data_type``."""
    if not 0 <= data_type <= LAST_BUFFER_TYPE:
        return "*** invalid type"
    kind = base_type(data_type)
    item = values[index]
    if kind == DBR_STRING:
        raw = string_bytes(item)
        return escape(raw.split(b"\0", 1)[0])
    if kind in (DBR_FLOAT, DBR_DOUBLE):
        number = float(item)
        if options.float_int_format is IntFormat.DEC:
            return options.double_format % number
        return format_long(round_to_long(number), options.float_int_format)
    if kind == DBR_CHAR:
        # dbr_char_t is printed through a (signed) char: 200 prints as -56
        byte = int(item) & 0xFF
        return str(byte - 256 if byte > 127 else byte)
    if kind in (DBR_SHORT, DBR_LONG):
        return format_long(int(item), options.int_format)
    # DBR_ENUM
    number = int(item)
    if family_index(data_type) in (3, 4) and not options.enum_as_number:
        strings = tuple(getattr(metadata, "enum_strings", ()) or ())
        if number >= MAX_ENUM_STATES:
            return f"Illegal Value ({number})"
        if number >= len(strings):
            return f"Enum Index Overflow ({number})"
        return strings[number]
    return str(number)


def char_array_text(values: Sequence, elements: int) -> str:
    """A CHAR array printed as a string (``-S``): up to the first NUL, escaped."""
    raw = bytes(int(v) & 0xFF for v in values[:elements])
    return escape(raw.split(b"\0", 1)[0])


# --- time stamps ------------------------------------------------------------------------------------

def format_stamp(secs: int, nsec: int) -> str:
    """``epicsTimeToStrftime(.., "%Y-%m-%d %H:%M:%S.%06f", ..)`` of an EPICS-epoch stamp, in local time."""
    if secs == 0 and nsec == 0:
        return "<undefined>"
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(secs + EPICS_EPOCH_OFFSET))
    if nsec >= 1_000_000_000:
        return text + ".OVF"
    # rounded to microseconds without carrying into the seconds
    micro = min(nsec + 500, 999_999_999) // 1000
    return f"{text}.{micro:06d}"


def now_stamp() -> tuple[int, int]:
    """The current time as an EPICS-epoch (secs, nsec) pair."""
    ns = time.time_ns()
    return ns // 1_000_000_000 - EPICS_EPOCH_OFFSET, ns % 1_000_000_000


def stamp_of(metadata) -> tuple[int, int]:
    return int(getattr(metadata, "secs", 0) or 0), int(getattr(metadata, "nsec", 0) or 0)


def _diff(a: tuple[int, int], b: tuple[int, int]) -> float:
    return (a[0] - b[0]) + (a[1] - b[1]) / 1e9


# --- the extra lines of ``caget -d`` (dbr2str) --------------------------------------------------------

def _c_int(value, bits: int, signed: bool = True) -> int:
    number = int(value)
    mask = (1 << bits) - 1
    number &= mask
    if signed and number >> (bits - 1):
        number -= 1 << bits
    return number


def _limits(metadata, fmt, convert, control: bool) -> list[str]:
    names = [("Lo disp limit", "lower_disp_limit"), ("Hi disp limit", "upper_disp_limit"),
             ("Lo alarm limit", "lower_alarm_limit"), ("Lo warn limit", "lower_warning_limit"),
             ("Hi warn limit", "upper_warning_limit"), ("Hi alarm limit", "upper_alarm_limit")]
    if control:
        names += [("Lo ctrl limit", "lower_ctrl_limit"), ("Hi ctrl limit", "upper_ctrl_limit")]
    return [f"    {label + ':':<18}{fmt % convert(getattr(metadata, attr))}" for label, attr in names]


def metadata_text(data_type: int, metadata) -> str:
    """``dbr2str``: the lines caget ``-d`` prints after the value for a non-plain DBR type."""
    family = family_index(data_type)
    kind = base_type(data_type)
    sts = [f"    Status:           {status_text(metadata.status)}",
           f"    Severity:         {severity_text(metadata.severity)}"]
    if data_type == DBR_STSACK_STRING:
        return "\n".join(sts + [f"    Ack transient?:   {'YES' if metadata.ackt else 'NO'}",
                                f"    Ack severity:     {severity_text(metadata.acks)}"])
    if family == 1 or (family in (3, 4) and kind == DBR_STRING):
        return "\n".join(sts)
    if family == 2:
        return "\n".join([f"    Timestamp:        {format_stamp(*stamp_of(metadata))}"] + sts)
    if family in (3, 4):
        if kind == DBR_ENUM:
            strings = tuple(metadata.enum_strings or ())
            lines = sts + [f"    Enums:            ({len(strings):2d})"]
            lines += [f"                      [{i:2d}] {s}" for i, s in enumerate(strings)]
            return "\n".join(lines)
        lines = sts + [f"    Units:            {metadata.units}"]
        if kind in (DBR_FLOAT, DBR_DOUBLE):
            lines.append(f"    Precision:        {int(metadata.precision)}")
            lines += _limits(metadata, "%g", float, family == 4)
        elif kind == DBR_CHAR:
            lines += _limits(metadata, "%8d", lambda v: _c_int(v, 8), family == 4)
        elif kind == DBR_SHORT:
            lines += _limits(metadata, "%8d", lambda v: _c_int(v, 16), family == 4)
        else:
            lines += _limits(metadata, "%8d", lambda v: _c_int(v, 32), family == 4)
        return "\n".join(lines)
    return "can't print data type"


# --- libca's report of a failure nobody asked about -------------------------------------------------

# libca's CA_OP_* codes, by the command of the failed request
_OPERATIONS = {Command.READ: 0, Command.READ_NOTIFY: 0, Command.WRITE: 1, Command.WRITE_NOTIFY: 1,
               Command.CREATE_CHAN: 2, Command.EVENT_ADD: 3, Command.EVENT_CANCEL: 4}


def exception_text(status: int, command: int, channel_name: str, data_type: int, count: int,
                   context: str) -> str:
    """What libca's default exception handler prints for a failed request (without its source line)."""
    now = time.time_ns()
    stamp = time.strftime("%a %b %d %Y %H:%M:%S", time.localtime(now // 1_000_000_000))
    return ("CA.Client.Exception...............................................\n"
            f"    Warning: \"{ca_message(status)}\"\n"
            f"    Context: \"op={_OPERATIONS.get(command, 5)}, channel={channel_name}, "
            f"type={dbr_text(data_type)}, count={count}, ctx=\"{context}\"\"\n"
            f"    Current Time: {stamp}.{now % 1_000_000_000:09d}\n"
            "..................................................................")


def error_response_text(error, channel_name: str) -> str:
    """:func:`exception_text` for an ERROR response from a server."""
    request = error.original_request
    return exception_text(error.status_code, request.command, channel_name, request.data_type,
                          request.data_count, error.error_message)


# --- the one-line "name time value stat sevr" format (print_time_val_sts) -----------------------------

class TimeMode(enum.Enum):
    ABSOLUTE = "absolute"
    RELATIVE = "relative"           # since the program started (client) / the first update (server)
    INCREMENTAL = "incremental"     # since the previous update of any channel
    INCREMENTAL_BY_CHANNEL = "incrementalByChan"


@dataclass
class ChannelLine:
    """Per-channel state of the one-line printer (what the C tools keep in their ``pv`` struct)."""
    name: str
    element_count: int = 1
    once_connected: bool = False
    first_stamp_printed: bool = False
    previous_server: tuple[int, int] = (0, 0)
    previous_client: tuple[int, int] = (0, 0)


@dataclass
class TimeValueStatus:
    """Prints caget ``-a`` / camonitor lines; holds the time references that relative stamps need."""
    options: OutputOptions = field(default_factory=OutputOptions)
    mode: TimeMode = TimeMode.ABSOLUTE
    server_stamps: bool = True
    client_stamps: bool = False
    start: tuple[int, int] = field(default_factory=now_stamp)
    first_server: tuple[int, int] | None = None
    previous_server: tuple[int, int] = (0, 0)
    previous_client: tuple[int, int] = (0, 0)

    def _name(self, channel: ChannelLine) -> str:
        sep = self.options.separator
        if channel.element_count <= 1 and sep == " ":
            return f"{channel.name:<30}{sep}"
        return f"{channel.name}{sep}"

    def not_connected(self, channel: ChannelLine) -> str:
        return self._name(channel) + "*** Not connected (PV not found)"

    def problem(self, channel: ChannelLine, what: str) -> str:
        """A line for a channel without data: ``what`` is e.g. "*** disconnected", after the client time."""
        return f"{self._name(channel)}{format_stamp(*now_stamp())} {what}"

    def line(self, channel: ChannelLine, data_type: int, values: Sequence, count: int, metadata,
             requested: int) -> str:
        """One update of ``count`` elements; ``requested`` is the ``-#`` count (0 when not given)."""
        channel.element_count = count
        sep = self.options.separator
        parts = [self._name(channel)]
        new_server = stamp_of(metadata)
        new_client = now_stamp()
        if self.first_server is None:
            self.first_server = new_server
        print_absolute = not channel.first_stamp_printed
        if self.mode is TimeMode.RELATIVE:
            ref_client, ref_server = self.start, self.first_server
        elif self.mode is TimeMode.INCREMENTAL:
            ref_client, ref_server = self.previous_client, self.previous_server
        elif self.mode is TimeMode.INCREMENTAL_BY_CHANNEL:
            ref_client, ref_server = channel.previous_client, channel.previous_server
        else:
            print_absolute = True
            ref_client = ref_server = (0, 0)
        if print_absolute:
            if self.server_stamps:
                parts.append(format_stamp(*new_server))
            if self.client_stamps:
                parts.append(f"({format_stamp(*new_client)})")
            channel.first_stamp_printed = True
        else:
            if self.server_stamps:
                parts.append(f"              {_diff(new_server, ref_server):+12.6f}")
            if self.client_stamps:
                parts.append(f"              ({_diff(new_client, ref_client):+12.6f})")
        if self.mode is TimeMode.INCREMENTAL_BY_CHANNEL:
            channel.previous_client, channel.previous_server = new_client, new_server
        self.previous_client, self.previous_server = new_client, new_server

        if self.options.char_as_string and is_char(data_type) and (requested or count > 1):
            elements = requested if requested and requested < count else count
            parts.append(sep + char_array_text(values, elements))
        else:
            if requested or count > 1:
                parts.append(f"{sep}{count}")
            for i in range(count):
                parts.append(sep + value_text(values, i, data_type, metadata, self.options))
        if metadata.status or metadata.severity:
            parts.append(f"{sep}{status_text(metadata.status)}{sep}{severity_text(metadata.severity)}")
        else:
            parts.append(sep + sep)
        return "".join(parts)
