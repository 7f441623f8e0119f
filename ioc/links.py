"""Database links as the C IOC parses them: constants and ``REC[.FIELD] [NPP|PP|CA|CP|CPP] [NMS|MS|MSS|MSI]``.

``parse_link(text)`` turns the text of an INLINK/OUTLINK/FWDLINK field into a :class:`Link`. The
database resolves a PV link to its target record and field when it loads the configuration; reading,
writing and forward-processing through links happens in ``ioc.database``, which owns record processing.
"""
from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass

from caproto.convert import parse_double


class LinkError(ValueError):
    """A link text that cannot be parsed."""


class MS(enum.IntEnum):
    """How a link passes the alarm severity of its source on (pvlOptMsMode)."""
    NMS = 0   # not at all
    MS = 1    # severity, with STAT=LINK
    MSI = 2   # only an INVALID severity, with STAT=LINK
    MSS = 3   # severity and status


class Process(enum.Enum):
    __hash__ = object.__hash__      # as DBF's: tested against sets on every link read and write

    NPP = "NPP"   # no processing
    PP = "PP"     # process the target (or, for inputs, the source) if its SCAN is Passive
    CA = "CA"     # forced Channel Access link: no processing
    CP = "CP"     # input: process this record whenever the source posts
    CPP = "CPP"   # input: as CP, only if this record's SCAN is Passive


# Each modifier word -> (process, None) or (None, ms): what it sets.
_MODIFIERS: dict[str, tuple[Process | None, MS | None]] = {
    **{m.value: (m, None) for m in Process}, **{m.name: (None, m) for m in MS}}
# dbParseLink's substring tests, longest first ("NPP" before "PP", "MSI" before "MS")
_PROCESS_SEARCH = [("NPP", Process.NPP), ("CPP", Process.CPP), ("PP", Process.PP), ("CA", Process.CA),
                   ("CP", Process.CP)]
_MS_SEARCH = [("NMS", MS.NMS), ("MSI", MS.MSI), ("MSS", MS.MSS), ("MS", MS.MS)]
_FIELD = re.compile(r"[A-Z][A-Z0-9]*\$?")
_NUMBER = re.compile(r"^[+-]?(0[xX][0-9a-fA-F]+|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[iI]nf(inity)?|NaN|nan)$")


@dataclass(frozen=True, slots=True)
class Link:
    """A parsed link. ``record`` is empty for a constant (``value`` holds it, None when empty)."""
    text: str
    record: str = ""
    field: str = "VAL"
    field_given: bool = False
    process: Process = Process.NPP
    ms: MS = MS.NMS
    value: object = None

    @property
    def is_constant(self) -> bool:
        return not self.record

    @property
    def is_pv(self) -> bool:
        return bool(self.record)

    @property
    def pv(self) -> str:
        """The PV named, as written: ``REC`` or ``REC.FIELD`` (empty for a constant)."""
        return f"{self.record}.{self.field}" if self.field_given else self.record

    @property
    def pp(self) -> bool:
        return self.process is Process.PP

    def canonical(self, forward: bool) -> str:
        """The link as the C IOC prints it back (dbGetString): constants as written, PV links with their
        flags spelled out ("x.VAL NPP NMS"); a forward link shows only its target (and CA)."""
        if self.is_constant:
            return self.text.strip()
        pv = self.record + (f".{self.field}" if self.field_given else "")
        if forward:
            return pv + (" CA" if self.process is Process.CA else "")
        return f"{pv} {self.process.value} {self.ms.name}"

    @property
    def long_string(self) -> bool:
        """The field named with "$" ("REC.DESC$", "REC.VAL$"): a STRING or link field as the CHAR array
        dbChannel makes of it, so that a long string travels whole."""
        return self.field[-1:] == "$"

    @property
    def monitored(self) -> bool:
        """CP/CPP: the source's posts (DBE_VALUE|DBE_ALARM) re-process the linking record."""
        return self.process in (Process.CP, Process.CPP)


# A JSON value as EPICS reads it: strings (in either quote), punctuation and bare words (numbers, literals,
# JSON5's unquoted keys, the .db file's unquoted strings); a "bad" character fails it.
JSON_TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|(?P<punct>[\[\]{}:,])'
                        r"|(?P<bare>[A-Za-z0-9_+\-.]+)|(?P<end>\Z)|(?P<bad>.))", re.S)
_JSON_LITERAL = re.compile(r"null|true|false|NaN|[+-]?Infinity|[+-]?0[xX][0-9A-Fa-f]+"
                           r"|[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SINGLE_QUOTED_ESCAPE = re.compile(r'\\.|"')


def parse_link(text: str, strict: bool = True) -> Link:
    """Parse link text the way dbParseLink does (numbers and JSON values are constants).

    ``strict`` (YAML configurations): modifiers are whole words, each one known, or LinkError. Otherwise
    (.db files and puts, as dbParseLink): the PV name runs to the first space and the modifiers are
    found anywhere in the rest ("QQCPPXMSITT" means CPP MSI)."""
    stripped = text.strip()
    if not stripped:
        return Link(text)
    if _NUMBER.match(stripped) and _parses_as_double(stripped):
        return Link(text, value=_number(stripped))
    if stripped[0] in "[{":
        return Link(text, value=_json_constant(stripped))
    process, ms = Process.NPP, MS.NMS
    if strict:
        words = stripped.replace(",", " ").split()
        pv = words[0]
        for word in words[1:]:
            sets = _MODIFIERS.get(word)
            if sets is None:
                raise LinkError(f"unknown link modifier {word!r} (expected NPP, PP, CA, CP, CPP, NMS, MS, "
                                f"MSS or MSI)")
            if sets[1] is not None:
                ms = sets[1]
            else:
                process = sets[0]
    else:
        pv, _, rest = stripped.partition(" ")
        process = next((p for word, p in _PROCESS_SEARCH if word in rest), Process.NPP)
        ms = next((m for word, m in _MS_SEARCH if word in rest), MS.NMS)
    record, dot, field = pv.partition(".")
    if not record:
        raise LinkError(f"link {text!r} names no record")
    field = field.upper() if dot else "VAL"
    if strict and dot and not _FIELD.fullmatch(field):
        raise LinkError(f"link {text!r}: {field!r} is not a field name")
    return Link(text, record=record, field=field, field_given=bool(dot), process=process, ms=ms)


def _parses_as_double(text: str) -> bool:
    # dbParseLink's test for a constant is epicsParseDouble, which refuses what strtod flags ERANGE
    # ("1e400", "1e-320"): such text names a PV
    try:
        parse_double(text, allow_units=False)
    except ValueError:
        return False
    return True


def _number(text: str) -> int | float:
    if text.lower().lstrip("+-").startswith("0x"):
        return int(text, 16)
    try:
        return int(text)
    except ValueError:
        return float(text)


def _strict_json(text: str) -> str:
    """An EPICS JSON value (JSON5's unquoted keys and single-quoted strings, the .db file's bare words) as
    JSON: a bare word that is no literal quoted, a single-quoted string double-quoted."""
    out, at = [], 0
    while True:
        token = JSON_TOKEN.match(text, at)
        at = token.end()
        kind = token.lastgroup
        if kind == "end":
            return "".join(out)
        piece = token[kind]
        if kind == "bare" and not _JSON_LITERAL.fullmatch(piece):
            piece = f'"{piece}"'
        elif kind == "string" and piece[0] == "'":
            # \' is the only escape JSON lacks; a double quote needs one
            piece = '"' + _SINGLE_QUOTED_ESCAPE.sub(lambda m: "'" if m[0] == "\\'" else (
                '\\"' if m[0] == '"' else m[0]), piece[1:-1]) + '"'
        out.append(piece)


def _json_constant(text: str) -> object:
    try:
        value = json.loads(_strict_json(text))
    except json.JSONDecodeError as exc:
        raise LinkError(f"link {text!r} is not valid JSON: {exc.msg}") from None
    if isinstance(value, dict):
        # {"const": X} is the only JSON link type a soft IOC without link plugins needs.
        if set(value) != {"const"}:
            raise LinkError(f"JSON link {text!r}: only {{\"const\": value}} is supported")
        value = value["const"]
    if isinstance(value, list):
        if not all(isinstance(v, (int, float, str)) for v in value):
            raise LinkError(f"constant array link {text!r} may hold only numbers and strings")
        return value
    if isinstance(value, (int, float, str)):
        return value
    raise LinkError(f"constant link {text!r} must be a number, string or array")
