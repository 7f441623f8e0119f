"""ioc.dbfile: EPICS .db files read as the C IOC reads them, and their conversion to the YAML schema."""
from __future__ import annotations

import logging
import subprocess
import textwrap
from pathlib import Path

import pytest
from differential import serve_both
from hypothesis import example, given
from hypothesis import strategies as st
from peers import tool

from caproto.dbr import ChannelType
from caproto.errors import CAError
from ioc.config import ConfigError, IocConfig, Located, RecordSpec, load_config, typed_value
from ioc.database import Database
from ioc.dbfile import DbAlias, DbInclude, convert_db_to_yaml, parse_db

FIXTURES = Path(__file__).parent / "fixtures" / "configs"
VACUUM = FIXTURES / "vacuum.db"
VACUUM_MACROS = {"P": "VAC:S1:", "R": "G1"}


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load_error(path: Path, macros: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, macros)
    return info.value


def values(config: IocConfig) -> dict[str, tuple[str, dict[str, object], list[str], dict[str, str]]]:
    """Everything a record declares, without positions: name -> (type, fields, aliases, info)."""
    return {r.name: (r.rtype, {k: v.value for k, v in r.fields.items()}, r.aliases, r.info)
            for r in config.records}


# -- a realistic file --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vacuum() -> IocConfig:
    return load_config(VACUUM, VACUUM_MACROS)


def test_records_come_in_file_order_with_includes_in_place(vacuum):
    assert [(r.name, r.rtype) for r in vacuum.records] == [
        ("VAC:S1:G1Pressure", "ai"), ("VAC:S1:G1Raw", "ao"), ("VAC:S1:G1Status", "mbbi"),
        ("VAC:S1:G1Ok", "calc"), ("VAC:S1:G1Note", "stringout"), ("VAC:S1:G1History", "waveform"),
        ("VAC:S1:Valve", "bo"), ("VAC:S1:ValveCycles", "longin")]


def test_quoted_and_bare_values_with_macros_defaults_and_escaped_quotes(vacuum):
    pressure = vacuum.records[0]
    assert {k: v.value for k, v in pressure.fields.items()} == {
        "DESC": 'Gauge G1 "cold cathode"', "SCAN": "1 second", "DTYP": "Soft Channel",
        "INP": "VAC:S1:G1Raw CP MS", "EGU": "Torr", "PREC": 3, "HOPR": 0.001, "LOPR": 1e-11,
        "HIHI": 1e-05, "HHSV": "MAJOR", "HIGH": 1e-06, "HSV": "MINOR", "MDEL": -1}
    assert (pressure.file, pressure.line) == (str(VACUUM), 9)
    assert pressure.fields["DESC"] == Located('Gauge G1 "cold cathode"', str(VACUUM), 11)
    assert pressure.fields["HHSV"].line == 19          # two fields on one line


def test_info_and_aliases_inside_and_outside_the_record(vacuum):
    pressure = vacuum.records[0]
    assert pressure.info == {"autosaveFields": "HIHI HIGH", "archive": "Monitor 1"}
    assert pressure.aliases == ["VAC:S1:G1P", "VAC:S1:G1Vacuum"]


def test_c_escapes_in_quoted_values_are_translated(vacuum):
    assert vacuum.records[4].fields["VAL"].value == "path C:\\vac\\log, tab\there"


def test_redefining_a_record_adds_fields_in_place(vacuum):
    raw = vacuum.records[1]
    assert {k: v.value for k, v in raw.fields.items()} == {
        "DESC": "Raw # reading", "VAL": "2.5e-8", "PINI": "YES", "FLNK": "VAC:S1:G1Status", "EGU": "V",
        "PREC": 4}
    assert (raw.line, raw.fields["EGU"].line, raw.fields["PREC"].line) == (28, 63, 66)


def test_json_values_are_passed_on_without_blanks(vacuum):
    assert vacuum.records[-1].fields["INP"].value == '{const:12}'
    assert vacuum.records[-1].file == str(FIXTURES / "vacuum_valve.db")


def _dump_from_softioc(load: str, tmp_path: Path, env: dict[str, str]) -> str:
    """The records as the C IOC loaded them: dbDumpRecord after the ``load`` command, with no iocInit."""
    script = tmp_path / "st.cmd"
    script.write_text(f'{load}\ndbDumpRecord pdbbase "" 1\n')
    result = subprocess.run([tool("softIoc"), str(script)], cwd=FIXTURES, env=env, capture_output=True,
                            text=True, timeout=30, stdin=subprocess.DEVNULL)
    lines = [line for line in result.stdout.splitlines()
             if line.startswith(("record(", "grecord(", "alias(", "\tfield(", "\tinfo(", "}"))]
    assert lines, result.stdout + result.stderr
    return "\n".join(lines)


def _same_value(epics: str, ours: object) -> bool:
    """The C IOC prints fields after converting them (1e-05 as 1.0e-05, 1 as 0x1, JSON re-rendered)."""
    text = str(ours)
    if epics == text or epics == text.replace('"', ""):
        return True
    try:
        return float(int(epics, 0) if epics.startswith("0x") else epics) == float(text)
    except ValueError:
        return False


def assert_same_as_softioc(ours: IocConfig, load: str, tmp_path: Path, env: dict[str, str]) -> None:
    dumped = _dump_from_softioc(load, tmp_path, env)
    theirs: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {}
    their_aliases: dict[str, list[str]] = {}
    for item in parse_db(dumped, "dump", {}):
        if isinstance(item, DbAlias):
            their_aliases.setdefault(item.record, []).append(item.alias)
        else:
            theirs[item.name] = (item.rtype, {k: str(v.value) for k, v in item.fields.items()}, item.info)
    assert {r.name: r.rtype for r in ours.records} == {name: t[0] for name, t in theirs.items()}
    for record in ours.records:
        rtype, their_fields, info = theirs[record.name]
        assert record.info == info
        assert sorted(record.aliases) == sorted(their_aliases.get(record.name, []))
        for name, located in record.fields.items():
            assert _same_value(their_fields[name], located.value), (record.name, name, their_fields[name])


def test_records_fields_aliases_and_info_match_what_softioc_loads(vacuum, tmp_path, ca_env):
    macros = ",".join(f"{k}={v}" for k, v in VACUUM_MACROS.items())
    assert_same_as_softioc(vacuum, f'dbLoadRecords("{VACUUM.name}", "{macros}")', tmp_path, ca_env)


def test_substitution_file_loads_the_records_dbloadtemplate_loads(tmp_path, ca_env):
    table = load_config(FIXTURES / "table.substitutions")
    assert [(r.name, *(r.fields[f].value for f in ("DESC", "EGU", "PREC"))) for r in table.records] == [
        ("TBL:x", "X axis", "mm", 2), ("TBL:y", "Y axis", "mm", 3), ("TBL:rot", "rotation of TBL:", "deg", 3),
        ("TBL:z", "motor z", "um", 4)]
    assert (table.records[0].file, table.records[0].line) == (str(FIXTURES / "motor.template"), 2)
    assert_same_as_softioc(table, 'dbLoadTemplate("table.substitutions")', tmp_path, ca_env)


@pytest.mark.parametrize(("text", "line", "words"), [
    ('file "t.db" {\n  pattern {A}\n  {1, 2}\n}\n', 3, ["2 values for 1 pattern names"]),
    ('file "t.db" {\n  {A=$(B)}\n}\n', 2, ["undefined macro $(B)"]),
    ('global {A}\n', 1, ["expected '='"]),
    ('file "t.db" {\n  record(ai, x)\n}\n', 2, ["expected {, pattern, global or }", "'record'"]),
    ('pattern {A}\n', 1, ["expected file or global"]),
    ('file "absent.db" {\n  {A=1}\n}\n', 2, ["include file", "absent.db not found"]),
])
def test_broken_substitution_files_name_file_and_line(tmp_path, text, line, words):
    path = write(tmp_path, "x.substitutions", text)
    error = load_error(path)
    assert (error.file, error.line) == (str(path), line), str(error)
    for word in words:
        assert word in error.message, str(error)


# -- syntax --------------------------------------------------------------------------------------------

def test_grecord_bodiless_records_and_multiline_heads(tmp_path):
    path = write(tmp_path, "x.db", """
        record(ai, a)
        grecord(bo,
                "b") {}
        record(
          stringin , "c" ) { field(VAL, "x") }
        """)
    assert values(load_config(path)) == {"a": ("ai", {}, [], {}), "b": ("bo", {}, [], {}),
                                         "c": ("stringin", {"VAL": "x"}, [], {})}


def test_macros_in_bare_words_braces_and_defaults(tmp_path):
    path = write(tmp_path, "x.db", """
        record(ai, $(P)${R}x) {
            field(EGU, $(E=mm))
            field(DESC, "$(D=$(P)default)")
            field(PREC, $(N))
        }
        """)
    assert values(load_config(path, {"P": "IOC:", "R": "r:", "N": "2"})) == {
        "IOC:r:x": ("ai", {"EGU": "mm", "DESC": "IOC:default", "PREC": 2}, [], {})}


def test_a_macro_in_a_comment_is_not_expanded_and_escaped_dollars_stay(tmp_path):
    path = write(tmp_path, "x.db", r"""
        # $(UNDEFINED) is fine here
        record(stringout, r) { field(VAL, "\$(NOT_A_MACRO) # not a comment") }  # $(NOR_HERE)
        """)
    assert load_config(path).records[0].fields["VAL"].value == "$(NOT_A_MACRO) # not a comment"


def test_json_values_keep_their_tokens_as_written(tmp_path):
    # as softIoc reads a field back: unquoted keys and words stay so, single quotes too; blanks and
    # comments between tokens go
    path = write(tmp_path, "x.db", """
        record(ai, r) {
            field(INP, {calc: {expr: "A+1", args: [1.5, -2, 0x10, NaN, abc, null, 'it\\'s # "x"'],  # comment
                        time: true}})
            info(Q:group, {"G": {+channel: VAL}})
        }
        """)
    record = load_config(path).records[0]
    assert record.fields["INP"] == Located(
        """{calc:{expr:"A+1",args:[1.5,-2,0x10,NaN,abc,null,'it\\'s # "x"'],time:true}}""", str(path), 2)
    assert record.info == {"Q:group": '{"G":{+channel:VAL}}'}


def test_long_blank_runs_before_an_unusual_statement_parse_quickly():
    """A fast-path miss after 200 blanks must not try every way of splitting them (it once hung)."""
    blanks = " " * 200
    text = f"record(ai, r) {{\n    field(PREC, 2){blanks}# c\n{blanks}field(INP, {{const: 1}})\n}}\n"
    assert parse_db(text, "x.db", {})[0].fields["INP"].value == '{const:1}'


def test_parse_db_lists_items_without_following_includes():
    items = parse_db('include "a.db"\nrecord(ai, x) { alias(y) }\nalias(x, z)\n', "f.db", {})
    assert [type(item).__name__ for item in items] == ["DbInclude", "RecordSpec", "DbAlias", "DbAlias"]
    assert items[0] == DbInclude("a.db", "f.db", 1)
    assert items[2:] == [DbAlias("x", "y", "f.db", 2), DbAlias("x", "z", "f.db", 3)]


# -- errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "line", "field", "words"), [
    ('record(ai, "x") {\n  field(DESC, "no end)\n}\n', 2, None, ["newline in string"]),
    ('record(ai, "x") {\n  field(DESC, "x"\n}\n', 3, None, ["expected ')'", "found '}'"]),
    ('record(ai, "x") {\n  field(DESC, "x")\n', 3, None, ["expected field, info, alias or }", "end of file"]),
    ('record(ai "x")\n', 1, None, ["expected ','", "found '\"x\"'"]),
    ('record(ai, "x") {\n  feld(DESC, "x")\n}\n', 2, None, ["found 'feld'"]),
    ('field(DESC, "x")\n', 1, None, ["expected record, alias or include", "'field'"]),
    ('menu(abc) { choice(a, "A") }\n', 1, None, ["belongs in a .dbd file"]),
    ('record(ai, "x") {\n  field(DESC, @)\n}\n', 2, None, ["invalid character '@'"]),
    ('record(ai, "x") {\n\n  field(EGU, "$(UNITS)")\n}\n', 3, "EGU", ["undefined macro $(UNITS)"]),
    ('record(ai, "x") {\n  field(INP, {const: $(V)})\n}\n', 2, "INP", ["undefined macro $(V)"]),
    ('record(ai, "x") {\n  field(INP, {const: [1, 2}\n', 2, "INP", ["unterminated JSON value"]),
    ('record(ai, "$(P)x")\n', 1, None, ["undefined macro $(P)"]),
    ('record(ai, "x")\nrecord(bo, "x")\n', 2, None, ["redefined as bo", "the ai defined at"]),
    ('record("*", "x") { field(DESC, "d") }\n', 1, None, ['record("*", "x"): no such record']),
    ('record(ai, "x")\nalias("y", "z")\n', 2, None, ["alias 'z' refers to unknown record 'y'"]),
    ('record(ai, "x") { alias("x") }\n', 1, None, ["duplicate name 'x'", "record defined at"]),
    ('record(ai, "x.y")\n', 1, None, ["contains '.'"]),
    ('include "nowhere.db"\n', 1, None, ["include file", "nowhere.db not found"]),
])
def test_broken_db_files_name_file_line_and_field(tmp_path, text, line, field, words):
    path = write(tmp_path, "x.db", text)
    error = load_error(path)
    assert (error.file, error.line, error.field) == (str(path), line, field), str(error)
    for word in words:
        assert word in error.message, str(error)


def test_include_cycle_in_db_files(tmp_path):
    write(tmp_path, "a.db", 'record(ai, "a")\ninclude "b.db"\n')
    b = write(tmp_path, "b.db", '# b.db\n# includes a.db\ninclude "a.db"\n')
    error = load_error(tmp_path / "a.db")
    assert (error.file, error.line) == (str(b), 3)
    assert "include cycle: a.db -> b.db -> a.db" in error.message


# -- conversion --------------------------------------------------------------------------------------

def test_convert_then_load_gives_the_same_records(vacuum, tmp_path):
    text = convert_db_to_yaml(VACUUM, VACUUM_MACROS)
    assert text.startswith(f"# Converted from {VACUUM}\nrecords:\n  - name: VAC:S1:G1Pressure\n")
    path = tmp_path / "vacuum.yaml"
    path.write_text(text)
    assert values(load_config(path)) == values(vacuum)
    assert list(values(load_config(path))) == list(values(vacuum))


def test_converted_yaml_is_readable(tmp_path):
    path = write(tmp_path, "x.db", """
        record(ai, "IOC:temp") {
            field(DESC, "Room: north")
            field(SCAN, "1 second")
            field(PREC, "2")
            field(HOPR, "1.50")
            field(INP, "IOC:raw CP MS")
            info(autosaveFields, "VAL")
            alias("IOC:t")
        }
        """)
    assert convert_db_to_yaml(path) == textwrap.dedent(f"""\
        # Converted from {path}
        external_pvs:
          - IOC:raw
        records:
          - name: IOC:temp
            type: ai
            fields:
              DESC: "Room: north"
              SCAN: 1 second
              PREC: 2
              HOPR: 1.50
              INP: IOC:raw CP MS
            aliases:
              - IOC:t
            info:
              autosaveFields: VAL
        """)


OTHER_IOCS_DB = """
    record(ai, "here:a") {
        field(INP, "there:pv CP MS")
        field(FLNK, "there:proc.PROC")
        alias("here:alias")
    }
    record(ai, "here:b") { field(INP, "there:pv") field(TSEL, "here:a.TIME") }
    record(ao, "here:c") {
        field(OUT, "there:other.EGU PP")
        field(DOL, "here:alias.NOPE")
        field(SDIS, "elsewhere:pv CA")
        field(FLNK, "here:b")
    }
    record(calc, "here:calc") { field(INPA, "here:alias CP") field(INPB, "there:pv NPP") field(CALC, "A+B") }
    """


def _served(db: Database) -> dict[str, object]:
    """What a client reads of every field of every record, as DBR_STRING (or the error), and where each
    link goes."""
    seen: dict[str, object] = {}
    for name, rec in db.records.items():
        for fld in rec.rtype.fields:
            chan = db.lookup(f"{name}.{fld.name}")
            if chan is None:
                continue
            try:
                seen[chan.name] = chan.read(ChannelType.STRING, 0)
            except CAError as exc:
                seen[chan.name] = exc.eca
        for field, (link, target, tfield) in (rec._links or {}).items():
            seen[f"{name}.{field} link"] = (link.text, target and target.NAME, tfield and tfield.name)
    return seen


def test_convert_declares_the_pvs_of_other_iocs_so_the_yaml_loads_and_serves_the_same(tmp_path):
    # softIoc makes a link to a PV it does not serve a CA link (to another IOC); YAML loads such a link only
    # for a PV listed in external_pvs (or a link marked CA), so convert lists them, links left as written
    path = write(tmp_path, "x.db", OTHER_IOCS_DB)
    text = convert_db_to_yaml(path)
    assert text.startswith(f"# Converted from {path}\nexternal_pvs:\n  - there:pv\n  - there:proc.PROC\n"
                           f"  - there:other.EGU\n  - here:alias.NOPE\nrecords:\n"), text
    yaml_path = tmp_path / "x.yaml"
    yaml_path.write_text(text)
    from_db = Database.from_config(load_config(path))
    from_yaml = Database.from_config(load_config(yaml_path))
    assert values(load_config(yaml_path)) == values(load_config(path))
    served = _served(from_db)
    assert served["here:a.INP link"] == ("there:pv CP MS", None, None)
    assert served["here:c.DOL link"] == ("here:alias.NOPE NPP NMS", None, None)
    assert served["here:calc.INPA link"] == ("here:alias CP NMS", "here:a", "VAL")
    assert _served(from_yaml) == served


def test_convert_writes_values_yaml_would_read_otherwise_as_the_db_file_means_them(tmp_path):
    # a .db file finds modifiers anywhere after the PV name (YAML takes whole words only), and casts an
    # integer into its field (YAML refuses one out of range)
    path = write(tmp_path, "x.db", 'record(ai, "s") { field(VAL, "3") field(PHAS, "70000") }\n'
                 'record(calc, "c") { field(INPA, "s QQCPPXMSITT") field(INPB, "s PP MS") '
                 'field(PREC, "010") }\n')
    text = convert_db_to_yaml(path)
    assert "INPA: s CPP MSI\n" in text and "INPB: s PP MS\n" in text, text
    assert "PHAS: 4464\n" in text and "PREC: 010\n" in text, text
    yaml_path = tmp_path / "x.yaml"
    yaml_path.write_text(text)
    assert _served(Database.from_config(load_config(yaml_path))) == _served(
        Database.from_config(load_config(path)))


def test_convert_declares_the_names_of_skipped_records(tmp_path):
    path = write(tmp_path, "x.db", 'record(ai, a) { field(INP, "m.RBV CP") }\nrecord(notARecordType, m)\n')
    text = convert_db_to_yaml(path, skip_unsupported=True)
    assert "external_pvs:\n  - m.RBV\n" in text
    yaml_path = tmp_path / "x.yaml"
    yaml_path.write_text(text)
    assert Database.from_config(load_config(yaml_path)).records["a"]._links["INP"][1] is None


def test_convert_can_skip_unsupported_record_types_with_a_warning(tmp_path, caplog):
    path = write(tmp_path, "x.db", 'record(ai, a)\nrecord(motor, m)\nrecord(bo, b)\n')
    with caplog.at_level(logging.WARNING, logger="ioc.dbfile"):
        text = convert_db_to_yaml(path, skip_unsupported=True, supported_types={"ai", "bo"})
    assert "m (motor)" in caplog.text
    yaml_path = tmp_path / "x.yaml"
    yaml_path.write_text(text)
    assert [r.name for r in load_config(yaml_path).records] == ["a", "b"]


def test_convert_skips_the_types_the_ioc_does_not_serve_by_default(tmp_path):
    path = write(tmp_path, "x.db", 'record(ai, a)\nrecord(notARecordType, m)\n')
    assert "notARecordType" in convert_db_to_yaml(path)
    assert "notARecordType" not in convert_db_to_yaml(path, skip_unsupported=True)


_separators = st.lists(st.sampled_from(["", " ", "\t", "\n", "  # a comment (with $(MACRO), \"quotes\")\n"]),
                       min_size=16, max_size=16)
_field_values = st.one_of(st.integers(-1000, 1000), st.floats(allow_nan=False, allow_infinity=False),
                          st.text(st.characters(blacklist_characters='"\\\n$', blacklist_categories=("Cs",))))


@given(st.dictionaries(st.from_regex(r"[A-Z]{1,4}", fullmatch=True), _field_values, max_size=4), _separators)
def test_layout_and_comments_between_tokens_do_not_change_the_result(fields, gaps):
    """Whatever the spacing, line breaks and comments between tokens, a record reads the same."""
    g = iter(gaps * 8).__next__
    body = "".join(f'{g()}field{g()}({g()}{name}{g()},{g()}"{value}"{g()}){g()}'
                   for name, value in fields.items())
    text = f'{g()}record{g()}({g()}ai{g()},{g()}"r"{g()}){g()}{{{body}}}{g()}\n'
    record = parse_db(text, "x.db", {})[0]
    assert (record.name, record.rtype) == ("r", "ai")
    # Values are typed whatever was quoted: "0" is the number 0, as in the C IOC.
    expected = {name: typed_value(str(value)) for name, value in fields.items()}
    assert {k: v.value for k, v in record.fields.items()} == expected


# -- the whole-body fast paths against statement-by-statement parsing ------------------------------

def _parsed_or_error(text: str, macros: dict[str, str]) -> object:
    try:
        items = parse_db(text, "x.db", macros)
    except ConfigError as exc:
        return str(exc)
    return [(item.name, item.rtype, item.line, item.fields, item.info, item.aliases)
            if isinstance(item, RecordSpec) else item for item in items]


_names = st.one_of(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,4}", fullmatch=True),
                   st.from_regex(r'"[A-Z]{1,4}"', fullmatch=True))
_quoted = st.one_of(
    st.text(st.sampled_from('aZ09 .:#}{[]()$,\t=\\"'), max_size=8).map(
        lambda text: '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(['")}"', '"}"', '""', '") field(X, "', '"a\\"}"', '"1.50"', '"-0"']))
_bare = st.one_of(st.from_regex(r"[A-Za-z0-9_:.+\-\[\]<>;]{1,6}", fullmatch=True),
                  st.sampled_from(["0", "-1", "2.5", "1e3", "007", "$(M)", "$(U)", "a$(M=d)", "[1]"]))
_spaces = st.sampled_from(["", " ", "\t", "\n", "  \n  ", "\r\n"])
_statements = st.one_of(
    st.tuples(st.just("field"), _names, st.one_of(_quoted, _bare), _spaces, _spaces),
    st.tuples(st.sampled_from(["info(a, \"b\")", "alias(z)", "# note\n", "field(X, {const: 1})", "feld(A, 1)",
                               'field(A, "x\ny")', "field(A", '"', ")"]), st.just(""), st.just(""),
              _spaces, _spaces))


@given(st.lists(_statements, max_size=6), _spaces, st.booleans())
@example([("field", "A", '")}"', " ", "")], "", True)
@example([("field", "A", '"x"', "", " "), ("field", "B", '"}"', "\t", "")], "\n", True)
@example([("field", '"b"', "1.50", "", ""), ("field", "c", '"$(M)\\t"', "\n", "")], " ", True)
def test_whole_body_fast_paths_read_as_statement_by_statement(statements, before, closed):
    """A record body read in one piece gives the same fields, values, lines and errors as read statement
    by statement (which an info statement at its start forces)."""
    body = "".join(f"{gap}{kind}({name}, {value}){tail}" if name else f"{gap}{kind}{tail}"
                   for kind, name, value, gap, tail in statements)
    end = "}\n" if closed else "\n"
    text = 'record(ai, "r") {%s' + before + body + end + 'record(bo, "s") { field(VAL, "1") }\n'
    fast = _parsed_or_error(text % "", {"M": "m"})
    careful = _parsed_or_error(text % 'info(zz, "")', {"M": "m"})
    if isinstance(careful, list):
        for item in careful:
            if isinstance(item, tuple):
                item[4].pop("zz", None)
    assert fast == careful


def test_quoted_one_line_bodies_read_as_statement_by_statement():
    fast = ('record(ai, r) { field(VAL, "1.5") field("EGU", "m}m") field(desc, "a # b")\tfield(PREC,"2") '
            'field(INP, ")}") field(OUT, ") field(X, ") }\n')
    careful = fast.replace(" }\n", " # c\n}\n")
    assert _parsed_or_error(fast, {}) == _parsed_or_error(careful, {})
    fields = parse_db(fast, "x.db", {})[0].fields
    assert {k: v.value for k, v in fields.items()} == {"VAL": 1.5, "EGU": "m}m", "DESC": "a # b", "PREC": 2,
                                                      "INP": ")}", "OUT": ") field(X, "}


def test_an_error_deep_in_a_large_file_names_its_line(tmp_path):
    """Fields are numbered from the body's line, so a file's lines count wherever the error is; the file
    is large enough (1 MB) for load_config to freeze its result out of the cyclic collector."""
    desc = "x" * 100
    lines = [f'record(ai, "r{i}") {{ field(VAL, "{i}") field(EGU, "mm") field(PREC, "3") '
             f'field(DESC, "{desc}") }}' for i in range(6000)]
    lines[4321] = 'record(ai, "bad") {\n  field(VAL, "1")\n  field(EGU, "$(UNITS)") }'
    path = tmp_path / "big.db"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 1 << 20
    error = load_error(path)
    assert (error.file, error.line, error.field) == (str(path), 4324, "EGU")
    lines[4321] = 'record(ai, "bad") {\n  field(VAL, "1")\n  field(EGU, "mm") field(NOPE, "1") }'
    path.write_text("\n".join(lines) + "\n")
    config = load_config(path)
    assert config.records[4321].fields["NOPE"] == Located(1, str(path), 4324)
    assert config.records[5999].fields["PREC"] == Located(3, str(path), 6002)



# JSON link values as softIoc takes them: read back as written less the blanks (unquoted keys and single
# quotes kept), loaded as their constant
JSON_LINKS_DB = """
record(ai, "j:key") { field(INP, {const:"x"}) }
record(ai, "j:num") { field(INP, { const : 1.5 }) }
record(ai, "j:quoted") { field(INP, {"const":"2"}) }
record(ai, "j:array") { field(INP, [ 1 , 2 ]) }
record(ai, "j:nested") { field(INP, {const:[3,4]}) }
record(ai, "j:single") { field(INP, {'const':'5'}) }
record(waveform, "j:strings") { field(INP, ["a", 'b', "c d"]) field(FTVL, "STRING") field(NELM, "4") }
record(lsi, "j:lsi") { field(INP, {const: 'it\\'s "long"'}) field(SIZV, "40") }
"""


def test_json_links_read_back_and_load_as_in_softioc(tmp_path, repeater_port):
    names = ["j:key", "j:num", "j:quoted", "j:array", "j:nested", "j:single", "j:strings", "j:lsi"]
    with serve_both(JSON_LINKS_DB, tmp_path, repeater_port) as pair:
        links = pair.assert_same("caget", "-w", "5", *(f"{name}.INP" for name in names))
        pair.assert_same("caget", "-w", "5", *(f"{name}.INP$" for name in names))
        values = pair.assert_same("caget", "-w", "5", *names)
    # caget prints quotes escaped
    assert "{const:1.5}" in links and r"{\'const\':\'5\'}" in links
    assert r"it\'s \"long\"" in values
