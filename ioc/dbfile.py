"""EPICS database files: ``.db`` files and substitution files read into specs, and converted to YAML.

Accepted, as EPICS Base 7 reads it: ``record``/``grecord(TYPE, NAME) { ... }`` with ``field(NAME, VALUE)``,
``info(NAME, VALUE)`` and ``alias(NAME)`` inside; top-level ``alias(RECORD, ALIAS)`` and ``include "FILE"``;
``#`` comments; quoted strings with C escapes or bare words; JSON values (``field(INP, {const: 3.14})``,
``[1, 2, 3]``); macro references ``$(P)``, ``${P}``, ``$(P=default)`` anywhere a value or name may be.

Macros are expanded token by token rather than line by line as dbLoadRecords does, so a macro value
cannot add syntax (a quote or a comma) to the file, and a reference inside a comment is never expanded.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .config import ConfigError, IocConfig, Located, RecordSpec, dump_yaml, load_config, typed_value
from .database import parse_field_value
from .links import JSON_TOKEN, LinkError, Process, parse_link
from .macros import MacroError, expand
from .records import record_type
from .records.fields import DBF, INTEGER_RANGE

log = logging.getLogger(__name__)


@dataclass
class DbAlias:
    """``alias(RECORD, ALIAS)`` at top level, or ``alias(ALIAS)`` inside RECORD's body."""
    record: str
    alias: str
    file: str
    line: int


@dataclass
class DbInclude:
    """``include "PATH"``, or a substitution file's template with the macros of one row.

    The path is as written, relative to the including file; ``macros`` are added to the including
    file's macros (already expanded).
    """
    path: str
    file: str
    line: int
    macros: dict[str, str] = dataclasses.field(default_factory=dict)


DbItem = RecordSpec | DbAlias | DbInclude

# A macro reference inside a bare word, with one level of nesting: $(P), ${P}, $(P=$(Q)).
_MACRO = r"\$[({](?:[^(){}\n]|\$[({][^(){}\n]*[)}])*[)}]"
# Atomic groups: a failed fast match must not retry every split of a run of blanks (2**n ways).
_SKIP = r"(?>(?:[ \t\r\n\f\v]+|#[^\n]*)*)"
_SKIP_RE = re.compile(_SKIP)
_WORD = r"(?>(?:[A-Za-z0-9_\-+:.\[\]<>;]+|" + _MACRO + r")+)"
# A quoted string's content: no quote, backslash or newline except as an escape (unrolled for speed).
_CONTENT = r'[^"\\\n]*(?:\\.[^"\\\n]*)*'
_STRING = re.compile(f'"{_CONTENT}"')
_SINGLE_QUOTED = re.compile(r"'[^'\\\n]*(?:\\.[^'\\\n]*)*'")     # a JSON value's other string quote
_TOKEN = re.compile(
    _SKIP + r"(?:"
    r'(?P<string>"' + _CONTENT + '")'
    r"|(?P<punct>[(){},])"
    r"|(?P<word>" + _WORD + r")"
    r"|(?P<end>\Z)"
    r"|(?P<bad>.))",
    re.S,
)

# Substitution files (dbLoadTemplate, msi) have their own punctuation and single-quoted strings.
_SUBSTITUTION_TOKEN = re.compile(
    _SKIP + r"(?:"
    r'(?P<string>"' + _CONTENT + r"\"|'[^'\\\n]*(?:\\.[^'\\\n]*)*')"
    r"|(?P<punct>[{},=])"
    r"|(?P<word>(?>(?:[A-Za-z0-9_\-+:./\\\[\]<>;]+|" + _MACRO + r")+))"
    r"|(?P<end>\Z)"
    r"|(?P<bad>.))",
    re.S,
)


def _word_or_string(group: str) -> str:
    """A bare word in ``group``, or a quoted string's content in ``group + "_q"``."""
    return f'(?:"(?P<{group}_q>{_CONTENT})"|(?P<{group}>{_WORD}))'


# The usual record head and field/info statement, each in one match: a file of 100,000 records has
# millions of tokens. Anything less usual (a comment or line break inside, a JSON value) does not match
# and goes token by token, to the same result.
_BLANKS = r"[ \t\r\n\f\v]*+"      # what the tokenizer skips, less comments (\s would take more)
_FAST_HEAD = re.compile(_SKIP + r"(?P<kw>g?record)[ \t]*\([ \t]*" + _word_or_string("type")
                        + r"[ \t]*,[ \t]*" + _word_or_string("name") + r"[ \t]*\)(?P<body>" + _BLANKS
                        + r"\{)?")
_FAST_END = re.compile(_SKIP + r"\}")
_FAST_ITEM = re.compile(_SKIP + r"(?P<kw>field|info)[ \t]*\([ \t]*" + _word_or_string("key")
                        + r"[ \t]*,[ \t]*(?![\[{])" + _word_or_string("value") + r"[ \t]*\)")
_BLANK_CHARS = " \t\r\n\f\v"
_FIELD_NAME = r"[A-Za-z0-9_]+"
# A record body of plain ``field(NAME, VALUE)`` statements is split in one pass by _BODY_FIELDS into
# [gap, blanks, name, value, gap, blanks, name, value, ..., tail], name and value as written (quotes
# included). It is all fields when every gap is empty and the tail blank: a comment, info, alias, a JSON
# value, a macro in a name, a line break inside a statement leave something else in a gap, and the body
# goes statement by statement instead. A line break can only be in the blanks before a ``field``.
_BODY_FIELDS = re.compile("(" + _BLANKS + r")field[ \t]*\([ \t]*(\"" + _FIELD_NAME + r"\"|" + _FIELD_NAME
                          + r")[ \t]*,[ \t]*(?![\[{])(\"" + _CONTENT + r"\"|" + _WORD + r")[ \t]*\)")
# Quicker still, for a body of quoted values only (no escape, no macro): split at the quotes, the
# values are every other piece and the pieces between them must each be one ``") field(NAME, "`` (a ")"
# is put before the first), the last one ``")"``; each different piece is checked once. A line break
# may only be in the blanks before ``field``.
_BETWEEN_QUOTES = re.compile(r"\)" + _BLANKS + r"field[ \t]*\([ \t]*(" + _FIELD_NAME + r")[ \t]*,[ \t]*")


_NUMBER_START = frozenset("-0123456789")

_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "0": "\0"}
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|.)", re.S)

# Statements of the .dbd language, which a .db file may not hold.
_DBD_KEYWORDS = {"path", "addpath", "menu", "recordtype", "device", "driver", "link", "registrar",
                 "function", "variable", "breaktable"}


def parse_db(text: str, file: str, macros: Mapping[str, str]) -> list[DbItem]:
    """The records, aliases and includes of one ``.db`` file's text, in file order.

    Field values are ``typed_value`` of their text (JSON values stay text); includes are not followed.
    """
    return _Parser(text, file, macros).parse()


def parse_substitutions(text: str, file: str, macros: Mapping[str, str]) -> list[DbInclude]:
    """The template loads of a substitution file, one per row, in file order.

    ``file "T.db" { pattern {A, B} {a1, b1} {a2, b2} }`` and ``file T.db { {A=a1, B=b1} }`` rows, and
    ``global {A=a}`` definitions that hold for the rest of the file, as dbLoadTemplate reads them.
    """
    return _SubstitutionParser(text, file, macros).parse()


def convert_db_to_yaml(path: str | os.PathLike[str], macros: Mapping[str, str] | None = None,
                       skip_unsupported: bool = False,
                       supported_types: Collection[str] | None = None) -> str:
    """The YAML declaration of a ``.db`` file (with its includes and macros applied), in record order.

    With ``skip_unsupported``, records of types the IOC does not serve (or not in ``supported_types``
    when given) are left out and named in a warning.
    """
    config = load_config(path, macros)
    if skip_unsupported:
        if supported_types is None:
            supported_types = {r.rtype for r in config.records if record_type(r.rtype) is not None}
        skipped = [record for record in config.records if record.rtype not in supported_types]
        if skipped:
            log.warning("skipped %d records of unsupported types: %s", len(skipped),
                        ", ".join(f"{record.name} ({record.rtype})" for record in skipped))
        config = IocConfig([record for record in config.records if record.rtype in supported_types],
                           config.devices)
    _as_yaml_reads_them(config)
    # softIoc makes a link to a PV it does not serve a CA link to another IOC; the YAML loader takes such
    # a link only when the PV is declared, so that a typo in hand-written YAML stays an error.
    config.external_pvs = external_pvs(config)
    return dump_yaml(config, comment=f"Converted from {os.fspath(path)}")


def _as_yaml_reads_them(config: IocConfig) -> None:
    """Rewrite the values that YAML's strict reading would refuse or read otherwise, as the .db file means
    them: a link with modifiers inside words ("REC QQCPPXMSITT") as softIoc prints it back ("REC CPP
    MSI"), an integer out of its field's range as the number softIoc casts it to ("70000" in a SHORT,
    4464)."""
    for spec in config.records:
        rtype = record_type(spec.rtype)
        if rtype is None:
            continue
        for name, located in spec.fields.items():
            fld = rtype.by_name.get(name)
            if fld is None:
                continue
            text = str(located.value)
            if fld.is_link:
                value = _link_as_meant(text, fld.dbf is DBF.FWDLINK)
            elif fld.dbf in INTEGER_RANGE:
                try:
                    meant = parse_field_value(rtype, fld, text, strict=False)
                except ValueError:
                    continue    # loading the YAML reports it, at its line
                try:
                    value = None if parse_field_value(rtype, fld, text) == meant else meant
                except ValueError:
                    value = meant
            else:
                continue
            if value is not None:
                spec.fields[name] = Located(value, located.file, located.line)


def _link_as_meant(text: str, forward: bool) -> str | None:
    """The link text softIoc prints back, where YAML would refuse ``text`` or read it otherwise."""
    try:
        meant = parse_link(text, strict=False)
    except LinkError:
        return None     # loading the YAML reports it, at its line
    try:
        read = parse_link(text)
    except LinkError:
        read = None
    if meant.is_constant or (read is not None and (read.record, read.field, read.process, read.ms)
                             == (meant.record, meant.field, meant.process, meant.ms)):
        return None
    return meant.canonical(forward=forward)


def external_pvs(config: IocConfig) -> list[str]:
    """The PVs that links of ``config``'s records name but none of its records serves (RECORD or
    RECORD.FIELD as written), in order of first use. A link marked CA needs no declaration; a field of a
    served record that cannot be linked to (softIoc: a CA link no server answers) is declared too."""
    served: dict[str, RecordSpec] = {}
    for spec in config.records:
        served[spec.name] = spec
        served.update(dict.fromkeys(spec.aliases, spec))
    found: dict[str, None] = {}
    for spec in config.records:
        rtype = record_type(spec.rtype)
        if rtype is None:
            continue        # not loadable anyway
        for name, located in spec.fields.items():
            fld = rtype.by_name.get(name)
            if fld is None or not fld.is_link:
                continue
            try:
                link = parse_link(str(located.value), strict=False)
            except LinkError:
                continue    # loading the YAML reports it, at its line
            if link.is_constant or link.process is Process.CA or link.pv in found:
                continue
            target = served.get(link.record)
            if target is not None:
                target_type = record_type(target.rtype)
                field_name = link.field.rstrip("$")
                if (target_type is None or (fld.name == "TSEL" and field_name == "TIME")
                        or target_type.links_here(field_name)):
                    continue
            found[link.pv] = None
    return list(found)


class _FieldNames(dict[str, str]):
    """Field names as written (maybe quoted) -> upper case, one string per name for every record."""

    def __missing__(self, written: str) -> str:
        name = self[written] = sys.intern((written[1:-1] if written[:1] == '"' else written).upper())
        return name


class _BetweenQuotes(dict[str, str | None]):
    """The text between two quoted values -> the upper-case name of the field it opens (None if it is
    not ``") field(NAME, "``)."""

    def __missing__(self, between: str) -> str | None:
        match = _BETWEEN_QUOTES.fullmatch(between)
        name = self[between] = None if match is None else sys.intern(match[1].upper())
        return name


class _BetweenLines(dict[str, tuple[str, int] | None]):
    """As _BetweenQuotes, with how many line breaks the text holds."""

    def __missing__(self, between: str) -> tuple[str, int] | None:
        match = _BETWEEN_QUOTES.fullmatch(between)
        found = self[between] = None if match is None else (sys.intern(match[1].upper()), between.count("\n"))
        return found


class _Texts(dict[str, int | float | str]):
    """Plain texts -> ``typed_value`` of them."""

    def __missing__(self, text: str) -> int | float | str:
        value = self[text] = typed_value(text)
        return value


class _PlainValues(dict[str, int | float | str]):
    """Values as written (quoted or bare, no macro) -> ``typed_value`` of their text, escapes translated."""

    def __missing__(self, written: str) -> int | float | str:
        value = self[written] = typed_value(_unescape(written[1:-1]) if written[:1] == '"' else written)
        return value


def _found(kind: str, text: str) -> str:
    return "end of file" if kind == "end" else repr(text)


def _unescape(text: str) -> str:
    """Translate the C escapes of a quoted value, as dbTranslateEscape does."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: chr(int(m[1][1:], 16)) if m[1][0] == "x" and len(m[1]) > 1
                       else _C_ESCAPES.get(m[1], m[1]), text)


class _Parser:
    token = _TOKEN

    def __init__(self, text: str, file: str, macros: Mapping[str, str]) -> None:
        self.text = text
        self.file = file
        self.macros = macros
        self.pos = 0
        self.line = 1
        self._counted = 0           # self.line is the line of text[self._counted]
        # A large file repeats few names and values: each is read once.
        self._names = _FieldNames()
        self._values = _PlainValues()
        self._between = _BetweenQuotes()
        self._between_lines = _BetweenLines()
        self._texts = _Texts()

    def parse(self) -> list[DbItem]:
        items: list[DbItem] = []
        text, file, head_at = self.text, self.file, _FAST_HEAD.match
        while True:
            head = head_at(text, self.pos)
            if head:
                type_q, rtype, name_q, name, body = head.group("type_q", "type", "name_q", "name", "body")
                line = self.line_of(head.start("kw"))
                self.pos = head.end()
                rtype = self.expand(rtype if type_q is None else type_q, line, None)
                name = self.expand(name if name_q is None else name_q, line, None)
                fields = None if body is None else self.whole_body()
                if fields is not None:
                    items.append(RecordSpec(name, rtype, fields, file, line))
                else:
                    self.record(items, line, rtype, name, body=body is not None)
                continue
            kind, word, line = self.next()
            if kind == "end":
                return items
            if kind != "word":
                raise self.error(line, f"expected record, alias or include, found {word!r}")
            if word in ("record", "grecord"):
                self.expect("(")
                rtype = self.name("record type")
                self.expect(",")
                name = self.name("record name")
                self.expect(")")
                self.record(items, line, rtype, name)
            elif word == "alias":
                self.expect("(")
                record = self.name("record name")
                self.expect(",")
                alias = self.name("alias name")
                self.expect(")")
                items.append(DbAlias(record, alias, self.file, line))
            elif word == "include":
                items.append(DbInclude(self.name("include file name"), self.file, line))
            elif word in _DBD_KEYWORDS:
                raise self.error(line, f"{word!r} belongs in a .dbd file, not in a .db file")
            else:
                raise self.error(line, f"expected record, alias or include, found {word!r}")

    def whole_body(self) -> dict[str, Located] | None:
        """The fields of the record body from ``self.pos`` (just after its "{") up to its "}", if the
        body is only ``field(NAME, VALUE)`` statements; None (and nothing read) if it is anything else."""
        text, file = self.text, self.file
        close = text.find("}", self.pos)
        if close < 0:
            return None
        body = text[self.pos:close]
        if not ("\\" in body or "$" in body):
            parts = body.split('"')
            # An even count: the "}" was inside a quoted value.
            if len(parts) % 2 and len(parts) > 1 and parts[-1].rstrip(_BLANK_CHARS) == ")":
                parts[0] = ")" + parts[0]
                if "\n" in body:
                    fields = self.lines_between(parts, self.line_of(self.pos), body.count("\n"))
                else:
                    # The usual generated file, a record per line: every field on the body's line.
                    line, between, texts = self.line_of(self.pos), self._between, self._texts
                    fields = {between[part]: Located(texts[value], file, line)
                              for part, value in zip(parts[:-1:2], parts[1::2], strict=False)}
                    if None in fields:
                        fields = None
                if fields is not None:
                    self.pos = close + 1
                    return fields
        pieces = _BODY_FIELDS.split(body)
        if "".join(pieces[::4]).strip(_BLANK_CHARS):
            return None
        fields = self.fields(pieces, self.line_of(self.pos), "$" in body, "\n" in body)
        self.pos = close + 1
        return fields

    def lines_between(self, parts: list[str], line: int, newlines: int) -> dict[str, Located] | None:
        """The fields of a body split at its quotes (and a ")" put first), from ``line`` on, when it
        holds ``newlines`` line breaks; None if it is not only ``field(NAME, "VALUE")`` statements."""
        between, texts, file = self._between_lines, self._texts, self.file
        fields: dict[str, Located] = {}
        newlines -= parts[-1].count("\n")
        for part, value in zip(parts[:-1:2], parts[1::2], strict=False):
            found = between[part]
            if found is None:
                return None
            name, count = found
            line += count
            newlines -= count
            fields[name] = Located(texts[value], file, line)
        return fields if newlines == 0 else None      # else a value holds a line break

    def record(self, items: list[DbItem], line: int, rtype: str, name: str, body: bool = False) -> None:
        """The record whose head was just read (and the "{" if ``body``), then its aliases, onto ``items``."""
        spec = RecordSpec(name, rtype, {}, self.file, line)
        items.append(spec)
        if not body:
            kind, text, _ = self.peek()
            if (kind, text) != ("punct", "{"):
                return                          # a record without a body
            self.next()
        text, file, fields = self.text, self.file, spec.fields
        while True:
            fast = _FAST_ITEM.match(text, self.pos)
            if fast:
                # One pass per field of a large file: the common value (no macro, no escape, not a
                # number) is stored as it is, without the calls that the general case needs.
                kw, key_q, key, value_q, value = fast.group("kw", "key_q", "key", "value_q", "value")
                item_line = self.line_of(fast.start("kw"))
                self.pos = fast.end()
                if key_q is not None:
                    key = key_q
                if "$" in key:
                    key = self.expand(key, item_line, None)
                if kw != "field":
                    spec.info[key] = str(self.typed(value_q, value, item_line, None))
                    continue
                key = sys.intern(key.upper())    # one string per field name, not one per record
                raw = value if value_q is None else value_q
                if "$" in raw or "\\" in raw or raw[:1] in _NUMBER_START:
                    fields[key] = Located(self.typed(value_q, value, item_line, key), file, item_line)
                else:
                    fields[key] = Located(raw, file, item_line)
                continue
            end = _FAST_END.match(text, self.pos)
            if end:
                self.pos = end.end()
                return
            kind, word, item_line = self.next()
            if (kind, word) == ("punct", "}"):
                return
            if kind != "word":
                raise self.error(item_line, f"expected field, info, alias or }} in record {name!r}, "
                                            f"found {_found(kind, word)}")
            if word == "field":
                self.expect("(")
                field = self.name("field name").upper()
                self.expect(",")
                value = self.value(field)
                spec.fields[field] = Located(value, self.file, item_line)
            elif word == "info":
                self.expect("(")
                key = self.name("info name")
                self.expect(",")
                spec.info[key] = str(self.value(None))
            elif word == "alias":
                self.expect("(")
                items.append(DbAlias(name, self.name("alias name"), self.file, item_line))
            else:
                raise self.error(item_line, f"expected field, info, alias or }} in record {name!r}, "
                                            f"found {word!r}")
            self.expect(")")

    def fields(self, pieces: list[str], line: int, macros: bool, lines: bool) -> dict[str, Located]:
        """The fields of a body split by _BODY_FIELDS, from ``line`` on, as the statements would give;
        ``macros`` and ``lines`` tell whether the body holds a "$" and a line break."""
        names, values, file = self._names, self._values, self.file
        if not (macros or lines):
            # The usual generated file, a record per line: every field on the body's line.
            return {names[name]: Located(values[value], file, line)
                    for name, value in zip(pieces[2::4], pieces[3::4], strict=False)}
        fields: dict[str, Located] = {}
        for blanks, name, value in zip(pieces[1::4], pieces[2::4], pieces[3::4], strict=False):
            line += blanks.count("\n")
            key = names[name]
            if not macros or "$" not in value:
                fields[key] = Located(values[value], file, line)
            elif value[:1] == '"':
                fields[key] = Located(self.typed(value[1:-1], None, line, key), file, line)
            else:
                fields[key] = Located(self.typed(None, value, line, key), file, line)
        return fields

    # -- tokens ------------------------------------------------------------------------------------

    def line_of(self, pos: int) -> int:
        if pos > self._counted:
            self.line += self.text.count("\n", self._counted, pos)
            self._counted = pos
        return self.line

    def next(self) -> tuple[str, str, int]:
        """The next token as (kind, text, line); kind is string, punct, word or end."""
        match = self.token.match(self.text, self.pos)
        kind = match.lastgroup
        line = self.line_of(match.start(kind))
        self.pos = match.end()
        if kind == "bad":
            char = match[kind]
            if char == '"':
                raise self.error(line, "newline in string, closing quote missing")
            raise self.error(line, f"invalid character {char!r}")
        return kind, match[kind], line

    def peek(self) -> tuple[str, str, int]:
        saved = self.pos
        token = self.next()
        self.pos = saved
        return token

    def expect(self, punct: str) -> None:
        kind, text, line = self.next()
        if (kind, text) != ("punct", punct):
            raise self.error(line, f"expected {punct!r}, found {_found(kind, text)}")

    def name(self, what: str) -> str:
        """A name: a bare word or a quoted string (whose escapes stay as written, as in EPICS)."""
        kind, text, line = self.next()
        if kind == "word":
            return self.expand(text, line, None)
        if kind == "string":
            return self.expand(text[1:-1], line, None)
        raise self.error(line, f"expected {what}, found {_found(kind, text)}")

    def value(self, field: str | None) -> int | float | str:
        """A field or info value: a quoted string, a bare word, or a JSON object or array."""
        start = _SKIP_RE.match(self.text, self.pos).end()
        if self.text[start:start + 1] in ("[", "{"):
            return self.json(start, field)
        kind, text, line = self.next()
        if kind == "string":
            return self.typed(text[1:-1], None, line, field)
        if kind == "word":
            return self.typed(None, text, line, field)
        raise self.error(line, f"expected a value, found {_found(kind, text)}", field)

    def typed(self, quoted: str | None, bare: str | None, line: int, field: str | None) -> int | float | str:
        """A value given as a quoted string's content (C escapes translated) or as a bare word."""
        if quoted is not None:
            return typed_value(_unescape(self.expand(quoted, line, field)))
        return typed_value(self.expand(bare, line, field))

    def json(self, start: int, field: str | None) -> str:
        """A JSON value as the text EPICS hands to the field: its tokens as written (JSON5's unquoted keys
        and single-quoted strings too), without the blanks and comments between them."""
        line = self.line_of(start)
        pieces, depth, pos = [], 0, start
        while True:
            if pos >= len(self.text):
                raise self.error(line, "unterminated JSON value", field)
            c = self.text[pos]
            if c in "\"'":
                end = (_STRING if c == '"' else _SINGLE_QUOTED).match(self.text, pos)
                if end is None:
                    raise self.error(self.line_of(pos), "newline in string, closing quote missing", field)
                pieces.append(end[0])
                pos = end.end()
                continue
            if c == "#":
                pos = self.text.find("\n", pos)
                pos = len(self.text) if pos < 0 else pos
                continue
            pieces.append(c)
            pos += 1
            depth += (c in "[{") - (c in "]}")
            if depth == 0:
                break
        self.pos = pos
        raw = self.expand("".join(pieces), line, field)
        out, at = [], 0
        while True:
            token = JSON_TOKEN.match(raw, at)
            at = token.end()
            kind = token.lastgroup
            if kind == "end":
                return "".join(out)
            if kind == "bad":
                raise self.error(line, f"invalid character {token[kind]!r} in JSON value", field)
            out.append(token[kind])

    def expand(self, text: str, line: int, field: str | None, macros: Mapping[str, str] | None = None) -> str:
        if "$" not in text:
            return text
        try:
            return expand(text, self.macros if macros is None else macros)
        except MacroError as exc:
            raise self.error(line, str(exc), field) from None

    def error(self, line: int, message: str, field: str | None = None) -> ConfigError:
        return ConfigError(self.file, line, field, message)


class _SubstitutionParser(_Parser):
    token = _SUBSTITUTION_TOKEN

    def parse(self) -> list[DbInclude]:
        items: list[DbInclude] = []
        scope: dict[str, str] = {}          # global definitions so far
        while True:
            kind, word, line = self.next()
            if kind == "end":
                return items
            if (kind, word) == ("word", "global"):
                self.expect("{")
                scope.update(self.definitions(scope))
            elif (kind, word) == ("word", "file"):
                template = self.words(scope, "template file name", single=True)[0]
                items.extend(self.template(template, scope))
            else:
                raise self.error(line, f"expected file or global, found {_found(kind, word)}")

    def template(self, template: str, scope: dict[str, str]) -> list[DbInclude]:
        """The rows of ``file TEMPLATE { ... }``, after its name."""
        self.expect("{")
        items: list[DbInclude] = []
        pattern: list[str] | None = None
        while True:
            kind, word, line = self.next()
            if (kind, word) == ("punct", "}"):
                return items
            if (kind, word) == ("word", "global"):
                self.expect("{")
                scope.update(self.definitions(scope))
            elif (kind, word) == ("word", "pattern"):
                self.expect("{")
                pattern = self.words(scope, "macro name")
            elif (kind, word) != ("punct", "{"):
                raise self.error(line, f"expected {{, pattern, global or }}, found {_found(kind, word)}")
            elif pattern is None:
                items.append(DbInclude(template, self.file, line, {**scope, **self.definitions(scope)}))
            else:
                values = self.words(scope, "value")
                if len(values) > len(pattern):
                    raise self.error(line, f"{len(values)} values for {len(pattern)} pattern names")
                # A short row leaves the last names undefined, as dbLoadTemplate does.
                row = dict(zip(pattern, values, strict=False))
                items.append(DbInclude(template, self.file, line, {**scope, **row}))

    def words(self, scope: dict[str, str], what: str, single: bool = False) -> list[str]:
        """Words or strings up to the closing "}" (commas optional), or just one word if ``single``."""
        found: list[str] = []
        while True:
            kind, text, line = self.next()
            if kind in ("word", "string"):
                text = text[1:-1] if kind == "string" else text
                found.append(self.expand(text, line, None, {**self.macros, **scope}))
                if single:
                    return found
            elif (kind, text) == ("punct", "}") and not single:
                return found
            elif (kind, text) != ("punct", ",") or single:
                raise self.error(line, f"expected a {what}, found {_found(kind, text)}")

    def definitions(self, scope: dict[str, str]) -> dict[str, str]:
        """``NAME=VALUE`` pairs up to the closing "}" (commas optional), values expanded."""
        defined: dict[str, str] = {}
        while True:
            kind, name, line = self.next()
            if (kind, name) == ("punct", "}"):
                return defined
            if (kind, name) == ("punct", ","):
                continue
            if kind != "word":
                raise self.error(line, f"expected NAME=VALUE, found {_found(kind, name)}")
            self.expect("=")
            defined[name] = self.words({**scope, **defined}, "value", single=True)[0]
