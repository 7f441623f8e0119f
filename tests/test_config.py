"""ioc.config: the YAML schema, macros, includes, and every error naming file, line and field."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioc.config import (
    ConfigError,
    DeviceSpec,
    IocConfig,
    Located,
    RecordSpec,
    dump_yaml,
    load_config,
    typed_value,
)
from ioc.macros import MacroError, expand, parse_macros

REPO = Path(__file__).resolve().parents[1]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load_error(path: Path, macros: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, macros)
    return info.value


def by_name(config: IocConfig) -> dict[str, RecordSpec]:
    return {record.name: record for record in config.records}


# -- the schema ----------------------------------------------------------------------------------------

def test_demo_config_loads_with_prefix_applied():
    config = load_config(REPO / "configs" / "demo.yaml")
    names = [record.name for record in config.records]
    assert "DEMO:temperature" in names
    temperature = by_name(config)["DEMO:temperature"]
    assert temperature.rtype == "ai"
    assert temperature.fields["VAL"].value == 21.5
    assert temperature.fields["EGU"].value == "degC"


def test_records_keep_order_type_and_the_line_of_every_field(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        prefix: "DEMO:"
        records:
          - name: temperature
            type: ai
            fields:
              VAL: 21.5
              EGU: degC
          - name: wave
            type: waveform
            fields: {FTVL: DOUBLE, NELM: 1000}
        """)
    config = load_config(path)
    assert [(r.name, r.rtype, r.line) for r in config.records] == [("DEMO:temperature", "ai", 3),
                                                                   ("DEMO:wave", "waveform", 8)]
    temperature = config.records[0]
    assert temperature.file == str(path)
    assert temperature.fields == {"VAL": Located(21.5, str(path), 6), "EGU": Located("degC", str(path), 7)}
    assert config.records[1].fields["NELM"] == Located(1000, str(path), 10)
    assert config.devices == []


def test_plain_numbers_become_numbers_only_when_they_print_back_as_written(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        records:
          - name: r
            type: ao
            fields: {VAL: 21.5, PREC: 2, DRVH: -3, HOPR: 1.50, LOPR: 1e3, DRVL: "2", PINI: YES,
                     DESC: Off, OMSL: ~, EGU: 007, ASLO: 0.1, AOFF: null}
        """)
    fields = {key: loc.value for key, loc in load_config(path).records[0].fields.items()}
    assert fields == {"VAL": 21.5, "PREC": 2, "DRVH": -3, "HOPR": "1.50", "LOPR": "1e3", "DRVL": "2",
                      "PINI": "YES", "DESC": "Off", "OMSL": "~", "EGU": "007", "ASLO": 0.1, "AOFF": "null"}


def test_field_names_are_upper_cased(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        records:
          - {name: r, type: ai, fields: {egu: mm, Prec: 3}}
        """)
    assert set(load_config(path).records[0].fields) == {"EGU", "PREC"}


def test_aliases_and_info_are_read_with_the_prefix_on_aliases(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        prefix: "P:"
        records:
          - name: temp
            type: ai
            aliases: [t, temperature]
            info: {autosaveFields: VAL EGU, archive: 1}
        """)
    record = load_config(path).records[0]
    assert record.aliases == ["P:t", "P:temperature"]
    assert record.info == {"autosaveFields": "VAL EGU", "archive": "1"}


def test_devices_get_the_prefix_and_keep_sim_settings_as_written(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        prefix: "IOC:"
        devices:
          - type: motorsim
            name: m1
            fields: {velo: 1, EGU: degrees}
            sim: {home: 500, high_limit: 20000.5}
        """)
    assert load_config(path).devices == [DeviceSpec(
        type="motorsim", name="IOC:m1",
        fields={"VELO": Located(1, str(path), 5), "EGU": Located("degrees", str(path), 5)},
        sim={"home": Located(500, str(path), 6), "high_limit": Located(20000.5, str(path), 6)},
        file=str(path), line=3)]


def test_yaml_anchors_share_field_sets_between_records(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        records:
          - {name: a, type: ai, fields: &gauge {EGU: Torr, PREC: 3}}
          - {name: b, type: ai, fields: *gauge}
        """)
    a, b = load_config(path).records
    assert a.fields == b.fields == {"EGU": Located("Torr", str(path), 2), "PREC": Located(3, str(path), 2)}


def test_an_undefined_yaml_alias_is_a_syntax_error(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        records:
          - {name: a, type: ai, fields: *gauge}
        """)
    assert_error(load_error(path), path, 2, None, "YAML syntax error", "undefined alias 'gauge'")


def test_prefix_applies_wherever_it_is_written(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        records: [{name: a, type: ai, aliases: [b]}]
        devices: [{name: m1, type: motorsim}]
        prefix: "P:"
        """)
    (record,), (device,) = load_config(path).records, load_config(path).devices
    assert (record.name, record.aliases, device.name) == ("P:a", ["P:b"], "P:m1")


def test_an_empty_file_declares_nothing(tmp_path):
    assert load_config(write(tmp_path, "empty.yaml", "# nothing yet\n")) == IocConfig([], [])


def test_keys_left_empty_declare_nothing(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        records:
          - name: r
            type: ai
            fields:
            info:
        #  - {name: commented, type: ai}
        include:
        devices:
        """)
    assert load_config(path) == IocConfig([RecordSpec("r", "ai", {}, str(path), 2)], [])


# -- macros ------------------------------------------------------------------------------------------

def test_macros_apply_to_prefix_names_values_aliases_and_info(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        prefix: "$(P)"
        records:
          - name: "${R}temp"
            type: $(TYPE=ai)
            fields: {DESC: "$(R) in $(ROOM=lab)", PREC: $(PREC), INP: "$(P)$(R)raw CP"}
            aliases: ["$(R)t"]
            info: {owner: $(OWNER=nobody)}
        """)
    record = load_config(path, {"P": "IOC:", "R": "g1:", "PREC": "3"}).records[0]
    assert record.name == "IOC:g1:temp"
    assert record.rtype == "ai"
    assert {k: v.value for k, v in record.fields.items()} == {
        "DESC": "g1: in lab", "PREC": 3, "INP": "IOC:g1:raw CP"}
    assert record.aliases == ["IOC:g1:t"]
    assert record.info == {"owner": "nobody"}


def test_a_backslash_keeps_a_dollar_from_starting_a_macro(tmp_path):
    path = write(tmp_path, "ioc.yaml", r"""
        records:
          - {name: r, type: stringout, fields: {VAL: '\$(NOT_A_MACRO) costs \\$(P)'}}
        """)
    assert load_config(path, {"P": "5"}).records[0].fields["VAL"].value == r"$(NOT_A_MACRO) costs \5"


def test_undefined_macro_names_file_line_and_field(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        records:
          - name: r
            type: ai
            fields:
              EGU: $(UNITS)
        """)
    error = load_error(path)
    assert (error.file, error.line, error.field) == (str(path), 5, "EGU")
    assert str(error) == f"{path}:5: field EGU: undefined macro $(UNITS)"


@pytest.mark.parametrize(("value", "message"), [
    ("$(A)", "macro A refers to itself (A -> B -> A)"),
    ("$(P", "unterminated macro reference"),
    ("$()", "empty macro name"),
])
def test_bad_macro_references_are_errors_at_their_field(tmp_path, value, message):
    path = write(tmp_path, "ioc.yaml", f"""
        records:
          - {{name: r, type: ai, fields: {{DESC: "{value}"}}}}
        """)
    error = load_error(path, {"A": "$(B)", "B": "$(A)"})
    assert (error.line, error.field) == (2, "DESC")
    assert message in error.message


def test_macro_expansion_follows_maclib_rules():
    macros = {"P": "IOC:", "M": "$(P)m1", "AXIS": "X", "X_OFFSET": "12"}
    assert expand("$(M).VAL", macros) == "IOC:m1.VAL"
    assert expand("${P}${AXIS}", macros) == "IOC:X"
    assert expand("$(Q=default)", macros) == "default"
    assert expand("$(Q=$(P)d)", macros) == "IOC:d"
    assert expand("$(P=$(UNDEFINED))", macros) == "IOC:"      # an unused default is not expanded
    assert expand("$($(AXIS)_OFFSET)", macros) == "12"
    assert expand(r"\$(P)", macros) == r"\$(P)"
    assert expand("cost $5 (or more)", macros) == "cost $5 (or more)"
    with pytest.raises(MacroError, match=r"undefined macro \$\(Q\)"):
        expand("$(Q)", macros)


_names = st.from_regex(r"[A-Z][A-Z0-9_]{0,6}", fullmatch=True)
_plain = st.text(st.characters(blacklist_characters="$\\", blacklist_categories=("Cs",)), max_size=8)


@given(st.dictionaries(_names, _plain, min_size=1),
       st.lists(st.tuples(_plain, st.integers(0, 2)), max_size=6), st.data())
def test_expansion_replaces_each_reference_by_its_value_and_leaves_text_alone(macros, parts, data):
    """Any text built from literal pieces and $(NAME)/${NAME}/$(NAME=default) references expands to
    the pieces with each reference replaced (the default only when the name is undefined)."""
    template, expected = [], []
    for literal, form in parts:
        name = data.draw(st.sampled_from(sorted(macros)) | _names)
        default = data.draw(_plain.filter(lambda s: ")" not in s))
        reference = ("$(" + name + ")", "${" + name + "}", "$(" + name + "=" + default + ")")[form]
        if form < 2 and name not in macros:
            continue
        template += [literal, reference]
        expected += [literal, macros.get(name, default)]
    assert expand("".join(template), macros) == "".join(expected)


def test_parse_macros_reads_dbloadrecords_definitions():
    assert parse_macros("P=IOC:, R = m1 ,DESC=\"a, b\",E=x\\,y") == {
        "P": "IOC:", "R": "m1", "DESC": "a, b", "E": "x,y"}
    assert parse_macros("") == {}
    with pytest.raises(MacroError, match="NAME=VALUE"):
        parse_macros("P")


# -- includes ------------------------------------------------------------------------------------------

def test_include_is_relative_to_the_including_file_and_passes_macros(tmp_path):
    write(tmp_path, "sub/motor.yaml", """
        records:
          - {name: "$(P)$(M)", type: ao, fields: {DESC: "$(M) of $(SECTION)"}}
        include:
          - {file: ../common/status.yaml, macros: {R: "$(M):"}}
        """)
    write(tmp_path, "common/status.yaml", """
        records:
          - {name: "$(P)$(R)status", type: bi}
        """)
    top = write(tmp_path, "ioc.yaml", """
        include:
          - {file: sub/motor.yaml, macros: {P: "$(P)mtr:", M: m1}}
          - {file: sub/motor.yaml, macros: {P: "$(P)mtr:", M: m2}}
        records:
          - {name: "$(P)top", type: ai}
        """)
    config = load_config(top, {"P": "IOC:", "SECTION": "S1"})
    assert [r.name for r in config.records] == [
        "IOC:mtr:m1", "IOC:mtr:m1:status", "IOC:mtr:m2", "IOC:mtr:m2:status", "IOC:top"]
    first = config.records[0]
    assert first.fields["DESC"].value == "m1 of S1"
    assert first.file == str(tmp_path / "sub" / "motor.yaml")
    assert config.records[1].file == str(tmp_path / "common" / "status.yaml")


def test_include_takes_a_plain_file_name_and_db_files(tmp_path):
    write(tmp_path, "legacy.db", 'record(bo, "$(P)pump") { field(ZNAM, "Off") }\n')
    write(tmp_path, "more.yaml", "records: [{name: x, type: ai}]\n")
    top = write(tmp_path, "ioc.yaml", """
        include:
          - more.yaml
          - {file: legacy.db, macros: {P: "V:"}}
        """)
    config = load_config(top)
    assert [(r.name, r.rtype) for r in config.records] == [("x", "ai"), ("V:pump", "bo")]
    assert config.records[1].fields["ZNAM"] == Located("Off", str(tmp_path / "legacy.db"), 1)


def test_prefix_applies_only_to_the_file_that_declares_it(tmp_path):
    write(tmp_path, "other.yaml", "records: [{name: x, type: ai}]\n")
    top = write(tmp_path, "ioc.yaml", """
        prefix: "TOP:"
        records: [{name: y, type: ai}]
        include: [other.yaml]
        """)
    assert [r.name for r in load_config(top).records] == ["TOP:y", "x"]


# -- errors ------------------------------------------------------------------------------------------

def assert_error(error: ConfigError, path: Path, line: int, field: str | None, *words: str) -> None:
    assert (error.file, error.line, error.field) == (str(path), line, field), str(error)
    for word in words:
        assert word in error.message, str(error)
    assert str(error).startswith(f"{path}:{line}: " + (f"field {field}: " if field else ""))


def test_yaml_syntax_error_points_at_the_line(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        records:
          - name: r
            type: ai
            fields: {VAL: 1, EGU: [mm}
        """)
    assert_error(load_error(path), path, 4, None, "YAML syntax error")


def test_unknown_top_level_key_suggests_the_right_one(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        prefix: "X:"
        record:
          - {name: r, type: ai}
        """)
    assert_error(load_error(path), path, 2, None, "unknown key 'record'", "did you mean 'records'?")


def test_unknown_record_key_is_an_error(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        records:
          - name: r
            type: ai
            field: {VAL: 1}
        """)
    assert_error(load_error(path), path, 4, None, "unknown key 'field' in a record", "'fields'")


@pytest.mark.parametrize(("record", "missing"), [("{type: ai}", "'name'"), ("{name: r}", "'type'")])
def test_record_without_name_or_type_is_an_error(tmp_path, record, missing):
    path = write(tmp_path, "ioc.yaml", f"""
        records:
          - {{name: ok, type: ai}}
          - {record}
        """)
    assert_error(load_error(path), path, 3, None, f"has no {missing}")


def test_duplicate_record_name_points_at_the_second_and_names_the_first(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        prefix: "P:"
        records:
          - {name: temp, type: ai}
          - {name: other, type: ai}
          - {name: temp, type: ao}
        """)
    assert_error(load_error(path), path, 5, None, "duplicate name 'P:temp'", f"record defined at {path}:3")


def test_duplicate_across_included_files_names_both_files(tmp_path):
    other = write(tmp_path, "other.yaml", "records: [{name: x, type: ai}]\n")
    top = write(tmp_path, "ioc.yaml", """
        include: [other.yaml]
        records:
          - name: y
            type: ai
            aliases: [z, x]
        """)
    assert_error(load_error(top), top, 5, None, "duplicate name 'x'", f"record defined at {other}:1")


def test_duplicate_field_is_an_error_naming_the_field(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        records:
          - name: r
            type: ai
            fields:
              EGU: mm
              egu: cm
        """)
    assert_error(load_error(path), path, 6, "EGU", "given twice", "first at line 5")


@pytest.mark.parametrize(("name", "problem"), [
    ('"a b"', "contains ' '"), ("r.VAL", "contains '.'"), ('"$(P=)"', "empty record name"),
    ("'\\$(P)x'", "an undefined macro?"), ("x" * 61, "longer than 60 characters"),
])
def test_bad_record_names_are_errors(tmp_path, name, problem):
    path = write(tmp_path, "ioc.yaml", f"""
        records:
          - name: {name}
            type: ai
        """)
    assert_error(load_error(path), path, 2, None, problem)


def test_missing_include_file_is_an_error_at_the_include(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        records: []
        include:
          - {file: nowhere.yaml, macros: {P: "X:"}}
        """)
    assert_error(load_error(path), path, 3, None, "include file", "nowhere.yaml not found")


def test_include_cycle_is_an_error_showing_the_cycle(tmp_path):
    write(tmp_path, "a.yaml", "include: [b.yaml]\n")
    b = write(tmp_path, "b.yaml", "records: []\ninclude: [{file: a.yaml}]\n")
    assert_error(load_error(tmp_path / "a.yaml"), b, 2, None, "include cycle: a.yaml -> b.yaml -> a.yaml")


def test_include_macro_that_is_undefined_is_an_error_at_its_line(tmp_path):
    write(tmp_path, "other.yaml", "records: []\n")
    path = write(tmp_path, "ioc.yaml", """
        include:
          - file: other.yaml
            macros:
              P: "$(SECTION):"
        """)
    assert_error(load_error(path), path, 4, None, "undefined macro $(SECTION)")


@pytest.mark.parametrize(("text", "line", "field", "words"), [
    ("records: {name: r}\n", 1, None, ["records must be a list"]),
    ("- just a list\n", 1, None, ["the top level must be a mapping"]),
    ("records:\n  - {name: r, type: ai, fields: {VAL: [1, 2]}}\n", 2, "VAL", ["single value"]),
    ("records:\n  - {name: r, type: ai, fields: {DESC: }}\n", 2, "DESC", ["no value"]),
    ("records:\n  - {name: r, type: ai, fields: [VAL]}\n", 2, None, ["fields must be a mapping"]),
    ("records:\n  - {name: [r], type: ai}\n", 2, None, ["single value"]),
    ("include:\n  - {macros: {P: x}}\n", 2, None, ["include has no 'file'"]),
    ("devices:\n  - {type: motorsim}\n", 2, None, ["device has no 'name'"]),
    ("records: []\n---\nrecords: []\n", 2, None, ["YAML syntax error", "found another document"]),
])
def test_malformed_schema_is_an_error(tmp_path, text, line, field, words):
    path = write(tmp_path, "ioc.yaml", text)
    assert_error(load_error(path), path, line, field, *words)


def test_missing_top_level_file_is_a_config_error_without_a_line(tmp_path):
    error = load_error(tmp_path / "absent.yaml")
    assert str(error) == f"{tmp_path / 'absent.yaml'}: file {tmp_path / 'absent.yaml'} not found"


def test_config_error_formats_with_and_without_field():
    assert str(ConfigError("a.yaml", 3, "VAL", "bad")) == "a.yaml:3: field VAL: bad"
    assert str(ConfigError("a.yaml", 3, None, "bad")) == "a.yaml:3: bad"


# -- writing YAML ----------------------------------------------------------------------------------

def test_typed_value_prints_back_as_written():
    assert [typed_value(t) for t in ("2", "-7", "0", "21.5", "1e-05", "-0", "1.50", "+5", "0x10", "nan")] \
        == [2, -7, 0, 21.5, 1e-05, "-0", "1.50", "+5", "0x10", "nan"]


_values = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(st.characters(blacklist_categories=("Cs",))))


@given(st.dictionaries(st.from_regex(r"[A-Z]{1,4}", fullmatch=True), _values),
       st.lists(st.text(st.characters(blacklist_categories=("Cs",))), max_size=3),
       st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1),
                       st.text(st.characters(blacklist_categories=("Cs",))), max_size=3))
def test_dump_then_load_gives_back_every_value(tmp_path_factory, fields, aliases, info):
    record = RecordSpec("IOC:{x}rec-1", "ai", {k: Located(v, "x", 1) for k, v in fields.items()}, "x", 1,
                        [f"alias{i}" for i in range(len(aliases))], info)
    device = DeviceSpec("motorsim", "m1", {}, {"home": Located(aliases[0] if aliases else 5, "x", 1)}, "x", 1)
    path = tmp_path_factory.mktemp("dump") / "out.yaml"
    path.write_text(dump_yaml(IocConfig([record], [device]), comment="generated\nby a test"))
    loaded = load_config(path)
    got = loaded.records[0]
    assert (got.name, got.rtype, got.aliases, got.info) == (record.name, "ai", record.aliases, info)
    assert {k: v.value for k, v in got.fields.items()} == fields
    assert loaded.devices[0].sim["home"].value == device.sim["home"].value


def _dump_and_load_string(text: str, directory: Path) -> object:
    record = RecordSpec("r", "stringout", {"VAL": Located(text, "x", 1)}, "x", 1)
    path = directory / "out.yaml"
    path.write_text(dump_yaml(IocConfig([record], [])))
    return load_config(path, {"P": "expanded"}).records[0].fields["VAL"].value


@pytest.mark.parametrize("text", ["Room: north", "a #b", "- x", "> x", "$(P)", "a\\$(P)\\", "", "1.0",
                                  "YES", "[1, 2]", "{a: 1}", "\x85\u2028", "'q'", '"dq"'])
def test_dumped_strings_that_look_like_yaml_or_macros_read_back_as_written(tmp_path, text):
    assert _dump_and_load_string(text, tmp_path) == text


@given(st.text(st.characters(blacklist_categories=("Cs",))))
def test_dumped_strings_survive_macro_expansion_and_escapes(tmp_path_factory, text):
    assert _dump_and_load_string(text, tmp_path_factory.mktemp("dump")) == text


# -- garbage: load_config and Database.from_config freeze their results without a scan --------------

@pytest.mark.parametrize("name", ["configs/demo.yaml", "configs/motorsim.yaml",
                                  "tests/fixtures/configs/vacuum.db"])
def test_loading_and_building_leave_no_reference_cycles(name):
    """What load_config and Database.from_config leave behind is freed by reference counting alone, so
    freezing everything after them (instead of collecting first) keeps no garbage forever."""
    import gc

    from ioc.database import Database

    macros = {"P": "VAC:S1:", "R": "G1"}
    gc.collect()
    collecting = gc.isenabled()
    gc.disable()
    try:
        config = load_config(REPO / name, macros)
        assert gc.collect() == 0
        database = Database._build(config, skip_unsupported=False)
        assert gc.collect() == 0
        assert database.records
    finally:
        if collecting:
            gc.enable()


def test_external_pvs_are_read_with_macros_and_without_the_prefix(tmp_path):
    path = write(tmp_path, "ioc.yaml", """
        prefix: "X:"
        external_pvs:
          - $(OTHER)temp
          - other:ioc:motor.rbv
        records:
          - {name: r, type: ai, fields: {INP: $(OTHER)temp CP}}
        """)
    config = load_config(path, {"OTHER": "Y:"})
    # field names are upper-cased as in a link; the prefix is this file's, not the other IOC's
    assert config.external_pvs == ["Y:temp", "other:ioc:motor.RBV"]


@pytest.mark.parametrize("entry", ["other:pv CA", "other:pv.", "other:pv.1X", "'other pv'"])
def test_external_pv_that_is_not_a_pv_name_is_an_error_at_its_line(tmp_path, entry):
    path = write(tmp_path, "ioc.yaml", f"""
        records: []
        external_pvs:
          - ok:pv
          - {entry}
        """)
    assert_error(load_error(path), path, 4, None, "is not a PV name")


def test_dump_then_load_keeps_external_pvs(tmp_path):
    config = IocConfig([RecordSpec("r", "ai", {"INP": Located("o:p CP", "x", 1)}, "x", 1)], [],
                       ["o:p", "o:q.EGU", "o:{x}r-1:"])
    path = tmp_path / "out.yaml"
    path.write_text(dump_yaml(config))
    assert load_config(path).external_pvs == config.external_pvs
