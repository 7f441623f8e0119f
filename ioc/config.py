"""Load an IOC declaration (YAML, or an EPICS ``.db`` file) into record and device specs.

Every value keeps the file and line it was written on, so the checks that need record-type knowledge
(``ioc.database``) can point at it. This module checks what needs none: syntax, keys, includes, macros and
duplicate names. The schema is documented in docs/yaml-schema.md.
"""
from __future__ import annotations

import difflib
import gc
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .macros import MacroError, expand

_TOP_KEYS = ("prefix", "records", "include", "devices", "external_pvs")
_RECORD_KEYS = ("name", "type", "fields", "aliases", "info")
_DEVICE_KEYS = ("type", "name", "fields", "sim")
_INCLUDE_KEYS = ("file", "macros")
_SUBSTITUTION_SUFFIXES = (".substitutions", ".subs", ".substitution")

# The NAME field holds 61 characters including the terminating NUL.
MAX_NAME_LENGTH = 60
# dbRecordNameValidate refuses these; "$" usually means an unexpanded macro.
_BAD_NAME_CHARS = re.compile(r"[\x00-\x20\"'.$]")
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*\$?")


@dataclass(slots=True)
class Located:
    """A scalar read from a config file, with where it came from."""
    value: object
    file: str
    line: int


@dataclass(slots=True)
class RecordSpec:
    name: str                       # full record name, prefix and macros applied
    rtype: str                      # "ai", "waveform", ...
    fields: dict[str, Located]      # field name (upper case) -> value as written (str/int/float)
    file: str
    line: int
    aliases: list[str] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=dict)


@dataclass
class DeviceSpec:
    """A ``devices:`` entry (motorsim, ...)."""
    type: str
    name: str
    fields: dict[str, Located]
    sim: dict[str, Located]
    file: str
    line: int


@dataclass
class IocConfig:
    records: list[RecordSpec]
    devices: list[DeviceSpec]
    # PVs served by other IOCs that links may name (YAML `external_pvs:`): "REC" or "REC.FIELD"
    external_pvs: list[str] = field(default_factory=list)


class ConfigError(Exception):
    """A broken config file; ``str()`` is ``"FILE:LINE: field FIELD: message"``.

    The field part is left out when no field is involved, the line part when the file could not be read.
    """

    def __init__(self, file: str, line: int, field: str | None, message: str) -> None:
        super().__init__(file, line, field, message)
        self.file = file
        self.line = line
        self.field = field
        self.message = message

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = f" field {self.field}:" if self.field else ""
        return f"{where}:{what} {self.message}"


# In YAML text a backslash protects "$" (and itself) from macro expansion.
_ESCAPE = re.compile(r"\\([\\$])")

_INT = re.compile(r"0|-?[1-9][0-9]*")
_FLOAT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def typed_value(text: str) -> int | float | str:
    """The value a field's text stands for: a number when it prints back exactly as written, else the text.

    So ``str(typed_value(t)) == t`` always holds: ``"2"`` is 2, ``"21.5"`` is 21.5, but ``"1.50"``,
    ``"007"``, ``"1e3"`` and ``"YES"`` stay strings for the record's own conversion rules.
    """
    if not text or text[0] not in "-0123456789":
        return text
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text) and repr(float(text)) == text:
        return float(text)
    return text


def load_config(path: str | os.PathLike[str], macros: Mapping[str, str] | None = None) -> IocConfig:
    """Read a ``.yaml``/``.yml`` IOC declaration, an EPICS ``.db`` file or a substitution file
    (``.substitutions``, ``.subs``), with everything it includes.

    ``macros`` are the top-level macro values (as ``dbLoadRecords("file", "P=...")`` gives them).
    Raises ConfigError naming the file, line and field of the first problem.
    """
    loader = _Loader()
    path = os.fspath(path)
    # Loading allocates millions of objects and frees none: the cyclic collector's passes over the
    # growing heap would cost several times the parsing itself on a 100,000-record file. A large file's
    # result is then frozen out of later collections (which would scan it all again, more than once)
    # without a scan: what was garbage is collected first, and loading leaves no reference cycles
    # behind (tests/test_config.py checks), so only live objects are frozen.
    large = _size(path) >= _FREEZE_SIZE
    collecting = gc.isenabled()
    if large:
        gc.collect()
    gc.disable()
    try:
        loader.load(path, dict(macros or {}), None)
        if large:
            gc.freeze()
    finally:
        if collecting:
            gc.enable()
    return IocConfig(loader.records, loader.devices, loader.external_pvs)


# Files from this size on (about 4,000 records of a .db file) are frozen out of the cyclic collector.
_FREEZE_SIZE = 1 << 20


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0            # the loader reports the file's problem


@dataclass(slots=True)
class _Name:
    """What a PV name already belongs to, for duplicate and alias checks."""
    kind: str                       # "record", "alias" or "device"
    target: RecordSpec | DeviceSpec
    file: str
    line: int


class _Loader:
    """Collects records and devices from a file and everything it includes."""

    def __init__(self) -> None:
        self.records: list[RecordSpec] = []
        self.devices: list[DeviceSpec] = []
        self.external_pvs: list[str] = []
        self.names: dict[str, _Name] = {}
        self.stack: list[str] = []          # real paths of the files being loaded, to catch cycles

    def load(self, path: str, macros: dict[str, str], included_at: tuple[str, int] | None) -> None:
        where = included_at or (path, 0)
        real = os.path.realpath(path)
        if real in self.stack:
            chain = " -> ".join(os.path.basename(p) for p in (*self.stack[self.stack.index(real):], real))
            raise ConfigError(*where, None, f"include cycle: {chain}")
        try:
            with open(path, encoding="utf-8-sig") as file:
                text = file.read()
        except FileNotFoundError:
            what = "include file" if included_at else "file"
            raise ConfigError(*where, None, f"{what} {path} not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(*where, None, f"cannot read {path}: {exc}") from None
        self.stack.append(real)
        try:
            if path.endswith((".yaml", ".yml")):
                _YamlFile(self, path, macros).load(text)
            else:
                self._load_db(path, text, macros)
        finally:
            self.stack.pop()

    def include(self, including: str, name: str, macros: dict[str, str], line: int) -> None:
        """Load ``name`` relative to the including file's directory, as dbLoadRecords paths are."""
        path = os.path.normpath(os.path.join(os.path.dirname(including), name))
        self.load(path, macros, (including, line))

    def _load_db(self, path: str, text: str, macros: dict[str, str]) -> None:
        """A .db file, or a substitution file (.substitutions, .subs) naming .db templates."""
        from . import dbfile  # dbfile needs ConfigError and Located from this module

        parse = dbfile.parse_substitutions if path.endswith(_SUBSTITUTION_SUFFIXES) else dbfile.parse_db
        names, records = self.names, self.records
        for item in parse(text, path, macros):
            if item.__class__ is RecordSpec:
                name = item.name
                # The usual record, new and well named, added without add_db_record's calls.
                if (name not in names and item.rtype != "*" and 0 < len(name) <= MAX_NAME_LENGTH
                        and not _BAD_NAME_CHARS.search(name)):
                    names[name] = _Name("record", item, item.file, item.line)
                    records.append(item)
                else:
                    self.add_db_record(item)
            elif isinstance(item, dbfile.DbAlias):
                self.add_alias(item.record, item.alias, item.file, item.line)
            else:
                self.include(path, item.path, {**macros, **item.macros}, item.line)

    # -- names -------------------------------------------------------------------------------------

    def claim(self, name: str, kind: str, target: RecordSpec | DeviceSpec, file: str, line: int) -> None:
        if not name:
            raise ConfigError(file, line, None, f"empty {kind} name")
        bad = _BAD_NAME_CHARS.search(name)
        if bad:
            hint = " (an undefined macro?)" if bad.group() == "$" else ""
            raise ConfigError(file, line, None, f"{kind} name {name!r} contains {bad.group()!r}{hint}")
        if len(name) > MAX_NAME_LENGTH:
            raise ConfigError(file, line, None,
                              f"{kind} name {name!r} is longer than {MAX_NAME_LENGTH} characters")
        first = self.names.get(name)
        if first is not None:
            raise ConfigError(file, line, None, f"duplicate name {name!r}: already used by the {first.kind} "
                                                f"defined at {first.file}:{first.line}")
        self.names[name] = _Name(kind, target, file, line)

    def record_named(self, name: str) -> RecordSpec | None:
        """The record called ``name`` directly or through an alias."""
        owner = self.names.get(name)
        if owner is None or not isinstance(owner.target, RecordSpec):
            return None
        return owner.target

    def add_record(self, spec: RecordSpec, alias_lines: list[int]) -> None:
        self.claim(spec.name, "record", spec, spec.file, spec.line)
        for alias, line in zip(spec.aliases, alias_lines, strict=True):
            self.claim(alias, "alias", spec, spec.file, line)
        self.records.append(spec)

    def add_db_record(self, spec: RecordSpec) -> None:
        """A .db record; as in the C IOC, defining an existing record again with the same type (or "*")
        adds and overrides fields rather than being an error."""
        existing = self.record_named(spec.name)
        if existing is None:
            if spec.rtype == "*":
                raise ConfigError(spec.file, spec.line, None, f'record("*", "{spec.name}"): no such record')
            self.add_record(spec, [])
        elif spec.rtype in ("*", existing.rtype):
            existing.fields.update(spec.fields)
            existing.info.update(spec.info)
        else:
            raise ConfigError(spec.file, spec.line, None,
                              f"record {spec.name!r} redefined as {spec.rtype}: it is the {existing.rtype} "
                              f"defined at {existing.file}:{existing.line}")

    def add_alias(self, record: str, alias: str, file: str, line: int) -> None:
        target = self.record_named(record)
        if target is None:
            raise ConfigError(file, line, None, f"alias {alias!r} refers to unknown record {record!r}")
        self.claim(alias, "alias", target, file, line)
        target.aliases.append(alias)

    def add_device(self, spec: DeviceSpec) -> None:
        self.claim(spec.name, "device", spec, spec.file, spec.line)
        self.devices.append(spec)


@dataclass(slots=True)
class _Node:
    """A YAML node reduced to what the schema reads: its kind, value, line and quoting."""
    kind: str           # "scalar", "sequence" or "mapping"
    value: Any          # str, list[_Node], or list[tuple[_Node, _Node]] in file order
    line: int
    style: str = ""     # a scalar's: "" plain, "'" or '"' quoted, "|" or ">" block


_YAML_PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)    # libyaml when available: ~10x faster


class _Events:
    """Nodes composed one at a time from the YAML event stream.

    The schema's lists are read item by item, so a 100,000-record file is never held as one tree (PyYAML's
    tree of it takes a gigabyte). Tags are not resolved: scalars are read by their style.
    """

    def __init__(self, text: str) -> None:
        self.parser = _YAML_PARSER(text)
        self.anchors: dict[str, _Node] = {}

    def next_is(self, event_class: type) -> bool:
        return self.parser.check_event(event_class)

    def take(self) -> yaml.Event:
        return self.parser.get_event()

    def node(self, event: yaml.Event | None = None) -> _Node:
        """The node that starts with ``event`` (by default the next one)."""
        event = event or self.take()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in self.anchors:
                raise yaml.composer.ComposerError(None, None, f"found undefined alias {event.anchor!r}",
                                                  event.start_mark)
            return self.anchors[event.anchor]
        line = event.start_mark.line + 1
        if isinstance(event, yaml.ScalarEvent):
            node = _Node("scalar", event.value, line, event.style or "")
        elif isinstance(event, yaml.SequenceStartEvent):
            node = _Node("sequence", [], line)
            while not isinstance(item := self.take(), yaml.SequenceEndEvent):
                node.value.append(self.node(item))
        else:
            node = _Node("mapping", [], line)
            while not isinstance(key := self.take(), yaml.MappingEndEvent):
                node.value.append((self.node(key), self.node()))
        if event.anchor is not None:
            self.anchors[event.anchor] = node
        return node


class _YamlFile:
    """One YAML file of the schema, read node by node so every value keeps its line."""

    def __init__(self, loader: _Loader, path: str, macros: dict[str, str]) -> None:
        self.loader = loader
        self.path = path
        self.macros = macros
        self.prefix = ""
        # What the file declares, in file order, added once the whole file (and so its prefix) is read.
        self.declared: list[Callable[[], None]] = []

    def load(self, text: str) -> None:
        events = _Events(text)
        try:
            self.read(events)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            what = ", ".join(part for part in (exc.context, exc.problem) if part)
            raise ConfigError(self.path, mark.line + 1 if mark else 0, None,
                              f"YAML syntax error: {what}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(self.path, 0, None, f"YAML syntax error: {exc}") from None
        finally:
            events.parser.dispose()
        # The closures refer to this object: drop them, so nothing is left for the cyclic collector.
        declared, self.declared = self.declared, []
        for add in declared:
            add()

    def read(self, events: _Events) -> None:
        """The top-level mapping; the items of its lists are handled as they are read."""
        events.take()                                   # stream start
        if events.next_is(yaml.StreamEndEvent):
            return                                      # an empty file
        events.take()                                   # document start
        if not events.next_is(yaml.MappingStartEvent):
            raise self.error(events.node(), None, "the top level must be a mapping (key: value)")
        events.take()
        seen: dict[str, _Node] = {}
        handlers = {"records": self.record, "devices": self.device, "include": self.include,
                    "external_pvs": self.external_pv}
        while not events.next_is(yaml.MappingEndEvent):
            key = self.key(events.node(), "the top level", _TOP_KEYS, seen)
            if key in handlers and events.next_is(yaml.SequenceStartEvent):
                events.take()
                while not events.next_is(yaml.SequenceEndEvent):
                    handlers[key](events.node())
                events.take()
            elif key == "prefix":
                self.prefix = self.text(events.node())
            else:
                self.sequence(events.node(), key)       # an error unless left empty
        events.take()                                   # mapping end
        events.take()                                   # document end
        if not events.next_is(yaml.StreamEndEvent):
            raise yaml.composer.ComposerError("expected a single document in the stream", None,
                                              "but found another document", events.take().start_mark)

    # -- schema ------------------------------------------------------------------------------------

    def record(self, node: _Node) -> None:
        entries = self.mapping(node, "a record", _RECORD_KEYS)
        if "name" not in entries:
            raise ConfigError(self.path, node.line, None, "record has no 'name'")
        name = self.text(entries["name"][1])
        if "type" not in entries:
            raise ConfigError(self.path, node.line, None, f"record {name!r} has no 'type'")
        aliases = self.sequence(entries["aliases"][1], "aliases") if "aliases" in entries else []
        spec = RecordSpec(
            name=name,
            rtype=self.text(entries["type"][1]),
            fields=self.fields(entries.get("fields"), "fields", upper=True),
            file=self.path,
            line=node.line,
            aliases=[self.text(alias) for alias in aliases],
            info={key: self.text(value) for key, (_, value) in self.entries(entries.get("info"), "info")},
        )
        alias_lines = [alias.line for alias in aliases]

        def add() -> None:
            spec.name = self.prefix + spec.name
            spec.aliases = [self.prefix + alias for alias in spec.aliases]
            self.loader.add_record(spec, alias_lines)

        self.declared.append(add)

    def device(self, node: _Node) -> None:
        entries = self.mapping(node, "a device", _DEVICE_KEYS)
        for key in ("type", "name"):
            if key not in entries:
                raise ConfigError(self.path, node.line, None, f"device has no {key!r}")
        spec = DeviceSpec(
            type=self.text(entries["type"][1]),
            name=self.text(entries["name"][1]),
            fields=self.fields(entries.get("fields"), "fields", upper=True),
            sim=self.fields(entries.get("sim"), "sim", upper=False),
            file=self.path,
            line=node.line,
        )

        def add() -> None:
            spec.name = self.prefix + spec.name
            self.loader.add_device(spec)

        self.declared.append(add)

    def include(self, node: _Node) -> None:
        if node.kind == "scalar":
            name, macros = self.text(node), self.macros
        else:
            entries = self.mapping(node, "an include", _INCLUDE_KEYS)
            if "file" not in entries:
                raise ConfigError(self.path, node.line, None, "include has no 'file'")
            name = self.text(entries["file"][1])
            # Macro values are expanded here, in the including file's macros, as iocsh expands the
            # arguments of dbLoadRecords; so P: "$(P)sub:" extends the including file's P.
            macros = dict(self.macros)
            for macro, (_, value) in self.entries(entries.get("macros"), "macros"):
                macros[macro] = self.expand(value, None)
        self.declared.append(lambda: self.loader.include(self.path, name, macros, node.line))

    def external_pv(self, node: _Node) -> None:
        """A PV of another IOC that links may name: a record name, or NAME.FIELD (no prefix applies)."""
        name = self.text(node)
        record, dot, field_name = name.partition(".")
        if not record or _BAD_NAME_CHARS.search(record) or (dot and not _FIELD_NAME.fullmatch(field_name)):
            raise self.error(node, None, f"external_pvs: {name!r} is not a PV name (RECORD or RECORD.FIELD, "
                                         f"without link flags)")
        self.loader.external_pvs.append(f"{record}.{field_name.upper()}" if dot else record)

    def fields(self, pair: tuple[_Node, _Node] | None, what: str, upper: bool) -> dict[str, Located]:
        """Field values (or device settings) by name, each with its line."""
        fields: dict[str, Located] = {}
        for key, (_, value) in self.entries(pair, what, upper):
            fields[key] = Located(self.value(value, key), self.path, value.line)
        return fields

    # -- nodes -------------------------------------------------------------------------------------

    def error(self, node: _Node, field: str | None, message: str) -> ConfigError:
        return ConfigError(self.path, node.line, field, message)

    def key(self, node: _Node, what: str, allowed: tuple[str, ...] | None, seen: dict[str, _Node],
            upper: bool = False) -> str:
        """A mapping key, checked against the allowed ones and those ``seen`` before it."""
        if node.kind != "scalar":
            raise self.error(node, None, f"a key in {what} must be a plain name")
        key = sys.intern(node.value.upper() if upper else node.value)   # shared by every record
        if allowed is not None and key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "expected " + ", ".join(allowed)
            raise self.error(node, None, f"unknown key {key!r} in {what} ({hint})")
        if key in seen:
            raise self.error(node, key if upper else None,
                             f"{key!r} given twice in {what} (first at line {seen[key].line})")
        seen[key] = node
        return key

    def mapping(self, node: _Node, what: str, allowed: tuple[str, ...] | None = None,
                upper: bool = False) -> dict[str, tuple[_Node, _Node]]:
        """The entries of a mapping node by key, in file order; unknown and repeated keys are errors."""
        if node.kind != "mapping":
            raise self.error(node, None, f"{what} must be a mapping (key: value)")
        seen: dict[str, _Node] = {}
        return {self.key(key, what, allowed, seen, upper): (key, value) for key, value in node.value}

    def entries(self, pair: tuple[_Node, _Node] | None, what: str,
                upper: bool = False) -> list[tuple[str, tuple[_Node, _Node]]]:
        """The entries of an optional ``key: {mapping}`` value; none when the key is absent or empty."""
        if pair is None or _empty(pair[1]):
            return []
        return list(self.mapping(pair[1], what, None, upper).items())

    def sequence(self, node: _Node, what: str) -> list[_Node]:
        """The items of a list; a key left empty (``records:`` with everything commented out) has none."""
        if _empty(node):
            return []
        if node.kind != "sequence":
            raise self.error(node, None, f"{what} must be a list (- item)")
        return node.value

    def expand(self, node: _Node, field: str | None) -> str:
        """A scalar's text with macros expanded."""
        if node.kind != "scalar":
            raise self.error(node, field, "expected a single value, not a list or mapping")
        if "$" not in node.value:
            return node.value
        try:
            return expand(node.value, self.macros)
        except MacroError as exc:
            raise self.error(node, field, str(exc)) from None

    def text(self, node: _Node, field: str | None = None) -> str:
        """A scalar as a string: macros expanded, then ``\\$`` and ``\\\\`` unescaped."""
        text = self.expand(node, field)
        return _ESCAPE.sub(r"\1", text) if "\\" in text else text

    def value(self, node: _Node, field: str) -> int | float | str:
        """A field value: quoted scalars are strings; plain ones are numbers when written as numbers."""
        text = self.text(node, field)
        if node.style:                  # quoted or block: a string as written
            return text
        if node.value == "":
            raise self.error(node, field, 'no value (write "" for an empty string)')
        return typed_value(text)


def _empty(node: _Node) -> bool:
    return node.kind == "scalar" and not node.style and node.value == ""


# -- writing the schema ---------------------------------------------------------------------------------

# Strings that read back as themselves when written plain: no YAML indicator at the start, no ": " or
# " #" inside, no trailing ":" or space. Anything else is written double-quoted.
_PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_/<>;+.:()\[\]-]*(?: [A-Za-z0-9_/<>;+.:()\[\]-]+)*")


def dump_yaml(config: IocConfig, comment: str | None = None) -> str:
    """Write ``config`` in the YAML schema; ``load_config`` of the result gives the same specs."""
    out = [f"# {line}" for line in comment.splitlines()] if comment else []
    if config.external_pvs:
        out.append("external_pvs:")
        out.extend(f"  - {_scalar(name)}" for name in config.external_pvs)
    out.append("records:" if config.records else "records: []")
    for record in config.records:
        out.append(f"  - name: {_scalar(record.name)}")
        out.append(f"    type: {_scalar(record.rtype)}")
        out.extend(_block("fields", {key: loc.value for key, loc in record.fields.items()}))
        if record.aliases:
            out.append("    aliases:")
            out.extend(f"      - {_scalar(alias)}" for alias in record.aliases)
        out.extend(_block("info", record.info))
    if config.devices:
        out.append("devices:")
    for device in config.devices:
        out.append(f"  - type: {_scalar(device.type)}")
        out.append(f"    name: {_scalar(device.name)}")
        out.extend(_block("fields", {key: loc.value for key, loc in device.fields.items()}))
        out.extend(_block("sim", {key: loc.value for key, loc in device.sim.items()}))
    return "\n".join(out) + "\n"


def _block(key: str, values: Mapping[str, object]) -> list[str]:
    if not values:
        return []
    return [f"    {key}:",
            *(f"      {_scalar(name, expanded=False)}: {_scalar(value)}" for name, value in values.items())]


def _scalar(value: object, expanded: bool = True) -> str:
    """``value`` as YAML that the loader reads back as it is; ``expanded`` if the loader expands macros."""
    if isinstance(value, int | float):
        return repr(value)
    text = _ESCAPE_OUT.sub(r"\\\1", str(value)) if expanded else str(value)
    if (_PLAIN.fullmatch(text) and ": " not in text and not text.endswith(":")
            and isinstance(typed_value(text), str)):
        return text
    return '"' + "".join(_yaml_char(c) for c in text) + '"'


# What the loader would take as macro references or escapes: "$", and a backslash before "$" or "\\".
_ESCAPE_OUT = re.compile(r"(\\(?=[\\$])|\$)")


def _yaml_char(c: str) -> str:
    """One character inside a YAML double-quoted scalar."""
    if c in '"\\':
        return "\\" + c
    if c.isprintable() and c not in "\x85\u2028\u2029\ufeff":
        return c
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
