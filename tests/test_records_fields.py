"""Field tables: their shape, the DBF -> CA type rules, and every field compared with softIoc's."""
from __future__ import annotations

import re

import pytest
from dboracle import differences, load_db, our_caget, parse_caget, reference_ioc
from differential import serve_both
from peers import EPICS_BIN, run_tool

from caproto.constants import AccessRights
from caproto.dbr import ChannelType
from ioc.records import RECORD_TYPES, record_type
from ioc.records.common import COMMON_FIELDS
from ioc.records.fields import DBF, NATIVE_DBR, SPC
from ioc.records.menus import MENUS

TYPES = ["ai", "ao", "bi", "bo", "mbbi", "mbbo", "longin", "longout", "stringin", "stringout", "waveform",
         "calc"]
# types added later, whose field tables are compared with softIoc's in their own differential tests
LATER_TYPES = ["mbbiDirect", "mbboDirect", "aai", "aao", "sel", "subArray", "compress", "histogram",
               "permissive", "state", "printf"]

# One record of each type, with enough fields set that the metadata hooks have something to report.
DB = """
record(ai, "ai") { field(EGU, "V") field(PREC, "3") field(HOPR, "10") field(LOPR, "-10") field(HIHI, "8")
                   field(HHSV, "MAJOR") field(VAL, "1.5") }
record(ao, "ao") { field(EGU, "V") field(PREC, "3") field(HOPR, "10") field(DRVH, "5") field(DRVL, "-5")
                   field(LOW, "-1") field(LSV, "MINOR") }
record(bi, "bi") { field(ZNAM, "zz") }
record(bo, "bo") { field(ONAM, "oo") field(HIGH, "1.5") }
record(mbbi, "mbbi") { field(ZRST, "a") field(TWST, "c") }
record(mbbo, "mbbo") { field(ONST, "b") }
record(longin, "longin") { field(EGU, "cts") field(HOPR, "100") field(LOPR, "3") field(HIGH, "50")
                           field(HSV, "MINOR") }
record(longout, "longout") { field(EGU, "cts") field(HOPR, "100") field(DRVH, "20") field(DRVL, "30") }
record(stringin, "stringin") { field(VAL, "abc") }
record(stringout, "stringout") { field(DESC, "a description") field(OUT, "stringin.VAL PP") }
record(waveform, "waveform") { field(FTVL, "FLOAT") field(NELM, "8") field(EGU, "mm") field(HOPR, "7")
                               field(PREC, "4") field(INP, "[1.5, 2.5]") }
record(calc, "calc") { field(CALC, "A+B") field(INPA, "ai") field(EGU, "K") field(PREC, "1") }
"""


def served_fields(name: str) -> list[str]:
    """Every field a client can reach (softIoc serves all but DBF_NOACCESS ones, plus RTYP)."""
    rtype = record_type(name)
    names = [f.name for f in rtype.fields if f.dbf is not DBF.NOACCESS or f.special is SPC.DBADDR]
    return names + ["RTYP"]


@pytest.mark.parametrize("name", TYPES + LATER_TYPES)
def test_every_record_type_starts_with_dbcommon(name):
    rtype = record_type(name)
    assert rtype.fields[:len(COMMON_FIELDS)] == COMMON_FIELDS
    names = [f.name for f in rtype.fields]
    assert len(names) == len(set(names)), "a field is declared twice"
    assert "VAL" in rtype.by_name


def test_registry_holds_the_issue_record_types():
    record_type("ai")  # loads the built-in families
    assert set(TYPES + LATER_TYPES) <= set(RECORD_TYPES)


@pytest.mark.parametrize("name", TYPES + LATER_TYPES)
def test_menu_fields_name_known_menus_and_valid_initial_choices(name):
    for fld in record_type(name).fields:
        if fld.dbf is DBF.MENU:
            assert fld.menu in MENUS, f"{name}.{fld.name} uses unknown menu {fld.menu}"
            if fld.initial and not fld.initial.isdigit():
                assert fld.initial in MENUS[fld.menu]


def test_dbf_to_ca_types_follow_the_c_server():
    expected = {DBF.STRING: "STRING", DBF.CHAR: "CHAR", DBF.UCHAR: "CHAR", DBF.SHORT: "INT",
                DBF.USHORT: "LONG", DBF.LONG: "LONG", DBF.ULONG: "DOUBLE", DBF.INT64: "DOUBLE",
                DBF.UINT64: "DOUBLE", DBF.FLOAT: "FLOAT", DBF.DOUBLE: "DOUBLE", DBF.ENUM: "ENUM",
                DBF.MENU: "ENUM", DBF.DEVICE: "ENUM", DBF.INLINK: "STRING", DBF.OUTLINK: "STRING",
                DBF.FWDLINK: "STRING"}
    assert {dbf: t.name for dbf, t in NATIVE_DBR.items()} == expected


def test_read_only_fields_are_the_nomod_ones(tmp_path):
    db = load_db(DB, tmp_path)
    for fld in record_type("ai").fields:
        chan = db.lookup(f"ai.{fld.name}")
        if chan is None:
            continue
        expected = AccessRights.READ if fld.special is SPC.NOMOD else AccessRights.READ_WRITE
        assert chan.access == expected, fld.name


def all_pvs() -> list[str]:
    return [f"{name}.{field}" for name in TYPES for field in served_fields(name)]


def test_every_field_has_softiocs_native_type_count_and_access(ca_env, tmp_path):
    pvs = all_pvs()
    with reference_ioc(DB, ca_env, tmp_path):
        result = run_tool("cainfo", "-w", "5", *pvs, env=ca_env, timeout=60)
    reference = parse_caget(result.stdout)
    db = load_db(DB, tmp_path)
    mismatches = []
    for pv in pvs:
        ref = reference.get(pv)
        assert ref is not None and ref.get("State") == "connected", f"softIoc does not serve {pv}"
        chan = db.lookup(pv)
        assert chan is not None, f"we do not serve {pv}"
        ours = our_caget(db, pv, ChannelType.STRING)
        access = {AccessRights.READ: "read, no write", AccessRights.READ_WRITE: "read, write"}[chan.access]
        for key, value in (("Native data type", ours["Native data type"]),
                           ("Element count", ours["Element count"]), ("Access", access)):
            if ref[key] != value:
                mismatches.append(f"{pv} {key}: C {ref[key]!r}, ours {value!r}")
    assert not mismatches, "\n".join(mismatches)


def test_noaccess_fields_are_not_served_as_softioc_does_not(ca_env, tmp_path):
    db = load_db(DB, tmp_path)
    hidden = [f"ai.{f.name}" for f in record_type("ai").fields if f.dbf is DBF.NOACCESS]
    assert hidden and all(db.lookup(pv) is None for pv in hidden)
    with reference_ioc(DB, ca_env, tmp_path):
        result = run_tool("cainfo", "-w", "1", hidden[0], env=ca_env)
    assert "not found" in result.stderr + result.stdout


@pytest.mark.parametrize("data_type",
                         ["DBR_CTRL_DOUBLE", "DBR_TIME_STRING", "DBR_CTRL_LONG", "DBR_CTRL_ENUM"])
def test_every_field_reads_like_softioc(ca_env, tmp_path, data_type):
    db = load_db(DB, tmp_path)
    pvs = all_pvs()
    if data_type == "DBR_CTRL_ENUM":
        # softIoc reads a string field as DBR_ENUM through the record's put_enum_str, which on bi, bo,
        # mbbi and mbbo *writes* VAL as a side effect; we do not reproduce that, so skip string fields.
        pvs = [pv for pv in pvs if db.lookup(pv).native_type is not ChannelType.STRING]
    with reference_ioc(DB, ca_env, tmp_path):
        result = run_tool("caget", "-w", "5", "-d", data_type, *pvs, env=ca_env, timeout=60)
    reference = parse_caget(result.stdout, result.stderr)
    mismatches = []
    for pv in pvs:
        problems = differences(reference[pv], our_caget(db, pv, ChannelType[data_type[4:]]))
        mismatches += [f"{pv}: {p}" for p in problems]
    assert not mismatches, "\n".join(mismatches)


# --- every field of one record of every type, served by softIoc and by ours --------------------------------

SOFTIOC_DBD = EPICS_BIN.parent.parent / "dbd" / "softIoc.dbd"
SWEPT_TYPES = ["ai", "ao", "bi", "bo", "mbbi", "mbbo", "longin", "longout", "stringin", "stringout",
               "waveform", "aai", "aao", "calc", "calcout", "fanout", "dfanout", "seq", "sel", "subArray",
               "int64in", "int64out", "lsi", "lso", "mbbiDirect", "mbboDirect", "compress", "histogram",
               "permissive", "state", "printf", "event"]
# Each type with what a database usually sets (display metadata, limits, states, sizes, links), so that the
# fields whose metadata or count follow others are swept with something to follow.
CONFIGURED = {
    "ai": 'field(EGU, "V") field(PREC, "3") field(HOPR, "10") field(LOPR, "-10") field(HIHI, "8") '
          'field(HHSV, "MAJOR") field(LINR, "LINEAR") field(EGUF, "20") field(VAL, "1.5") field(INP, "d:ao")',
    "ao": 'field(EGU, "mm") field(PREC, "2") field(DRVH, "5") field(DRVL, "-5") field(HOPR, "6") '
          'field(LOW, "-1") field(LSV, "MINOR") field(OUT, "d:ai PP") field(OROC, "0.5")',
    "bi": 'field(ZNAM, "Off") field(ONAM, "On") field(OSV, "MINOR") field(VAL, "1")',
    "bo": 'field(ZNAM, "Closed") field(ONAM, "Open") field(HIGH, "1.5") field(DOL, "1")',
    "mbbi": 'field(ZRST, "zero") field(ONST, "one") field(TWST, "two") field(TWSV, "MINOR") field(NOBT, "4")',
    "mbbo": 'field(ZRST, "Idle") field(ONST, "Run") field(ZRVL, "3") field(ONVL, "5") field(VAL, "1")',
    "longin": 'field(EGU, "cts") field(HOPR, "100") field(LOPR, "3") field(HIGH, "50") field(HSV, "MINOR") '
              'field(VAL, "60")',
    "longout": 'field(EGU, "steps") field(DRVH, "20") field(DRVL, "-20") field(VAL, "-7")',
    "stringin": 'field(VAL, "abc") field(INP, "d:stringout")',
    "stringout": 'field(VAL, "output") field(DESC, "a description")',
    "waveform": 'field(FTVL, "DOUBLE") field(NELM, "8") field(EGU, "A") field(HOPR, "7") field(PREC, "4") '
                'field(INP, [1.5, 2.5])',
    "aai": 'field(FTVL, "LONG") field(NELM, "5") field(EGU, "cts") field(INP, [1, 2, 3])',
    "aao": 'field(FTVL, "SHORT") field(NELM, "4") field(PREC, "1") field(DOL, [4, 5])',
    "calc": 'field(CALC, "A+B") field(INPA, "d:ai") field(B, "2") field(EGU, "K") field(PREC, "1") '
            'field(HOPR, "30")',
    "calcout": 'field(CALC, "A*2") field(INPA, "d:longin") field(OUT, "d:ao") field(OOPT, "On Change") '
               'field(DOPT, "Use OCAL") field(OCAL, "A") field(PREC, "2") field(ODLY, "0.5")',
    "fanout": 'field(LNK1, "d:calc") field(SELM, "Specified") field(SELN, "1")',
    "dfanout": 'field(OUTA, "d:ao") field(VAL, "1.5") field(PREC, "1") field(HOPR, "10") field(EGU, "V")',
    "seq": 'field(DOL1, "1") field(LNK1, "d:longout") field(DLY1, "0.1") field(SELM, "All") field(PREC, "1")',
    "sel": 'field(INPA, "d:ai") field(B, "3") field(SELM, "High Signal") field(EGU, "mV") field(PREC, "2")',
    "subArray": 'field(FTVL, "DOUBLE") field(MALM, "8") field(NELM, "3") field(INDX, "1") '
                'field(INP, "d:waveform") field(EGU, "A")',
    "int64in": 'field(VAL, "1234567890123") field(EGU, "ticks") field(HOPR, "100000") field(HIHI, "5")',
    "int64out": 'field(VAL, "-99") field(DRVH, "1000") field(DRVL, "-1000")',
    "lsi": 'field(SIZV, "64") field(INP, {const:"a long string"})',
    "lso": 'field(SIZV, "30") field(DOL, {const:"init"}) field(OUT, "d:lsi")',
    "mbbiDirect": 'field(NOBT, "8") field(VAL, "5") field(SHFT, "2")',
    "mbboDirect": 'field(NOBT, "4") field(VAL, "9") field(OUT, "d:mbbiDirect")',
    "compress": 'field(ALG, "Circular Buffer") field(NSAM, "6") field(INP, "d:ao") field(PREC, "2") '
                'field(EGU, "mm") field(HOPR, "9")',
    "histogram": 'field(LLIM, "-10") field(ULIM, "10") field(NELM, "4") field(SVL, "d:ao") field(PREC, "1")',
    "permissive": 'field(VAL, "1") field(WFLG, "1") field(LABL, "go")',
    "state": 'field(VAL, "ready")',
    "printf": 'field(FMT, "%.2f %s") field(INP0, "d:ao") field(INP1, "d:stringin") field(SIZV, "50")',
    "event": 'field(VAL, "ev1") field(INP, "d:stringin")',
}
DATABASES = {
    "default": "".join(f'record({name}, "d:{name}") {{}}\n' for name in SWEPT_TYPES),
    "configured": "".join(f'record({name}, "d:{name}") {{ {CONFIGURED[name]} }}\n' for name in SWEPT_TYPES),
}
_RECORDTYPE = re.compile(r"^recordtype\((\w+)\)\s*\{(.*?)^\}", re.MULTILINE | re.DOTALL)
_FIELD = re.compile(r"^\s*field\((\w+),\s*(DBF_\w+)\)\s*\{(.*?)^\s*\}", re.MULTILINE | re.DOTALL)


def softioc_fields(rtype: str) -> list[str]:
    """The fields softIoc's own .dbd declares for ``rtype`` that a client can reach: all but DBF_NOACCESS,
    except those whose address the record supplies (SPC_DBADDR), plus RTYP."""
    bodies = dict(_RECORDTYPE.findall(SOFTIOC_DBD.read_text()))
    return [name for name, dbf, body in _FIELD.findall(bodies[rtype])
            if dbf != "DBF_NOACCESS" or "SPC_DBADDR" in body] + ["RTYP"]


@pytest.fixture(scope="module", params=sorted(DATABASES))
def swept(request, tmp_path_factory, repeater_port):
    """Both servers serving one record of each type, and every swept PV grouped by the native type
    softIoc's cainfo gives it."""
    with serve_both(DATABASES[request.param], tmp_path_factory.mktemp(request.param), repeater_port) as pair:
        pvs = [f"d:{name}.{field}" for name in SWEPT_TYPES for field in softioc_fields(name)]
        result = run_tool("cainfo", "-w", "5", *pvs, env=pair.reference, timeout=120)
        groups: dict[str, list[str]] = {}
        for pv, info in parse_caget(result.stdout).items():
            assert info.get("State") == "connected", f"softIoc does not serve {pv}"
            groups.setdefault(info["Native data type"].removeprefix("DBF_"), []).append(pv)
        assert sum(map(len, groups.values())) == len(pvs)
        yield pair, groups


def test_every_field_of_every_record_type_has_softiocs_type_count_and_access(swept):
    pair, natives = swept
    pair.assert_same("cainfo", "-w", "5", *(pv for group in natives.values() for pv in group))


@pytest.mark.parametrize("family", ["DBR_", "DBR_TIME_", "DBR_CTRL_"])
def test_every_field_of_every_record_type_reads_like_softioc(swept, family):
    pair, natives = swept
    failures = []
    for native, pvs in sorted(natives.items()):
        try:
            pair.assert_same("caget", "-w", "5", "-d", family + native, *pvs)
        except AssertionError as error:
            failures.append(str(error))
    assert not failures, "\n\n".join(failures)


def test_every_field_of_every_record_type_reads_as_text_like_softioc(swept):
    pair, natives = swept
    pair.assert_same("caget", "-w", "5", "-d", "DBR_STRING",
                     *(pv for group in natives.values() for pv in group))


@pytest.mark.parametrize("dbr", ["DBR_CTRL_DOUBLE", "DBR_CTRL_FLOAT", "DBR_CTRL_LONG", "DBR_CTRL_SHORT",
                                 "DBR_CTRL_CHAR", "DBR_CTRL_ENUM", "DBR_STSACK_STRING"])
def test_every_numeric_field_of_every_record_type_converts_like_softioc(swept, dbr):
    pair, natives = swept
    pair.assert_same("caget", "-w", "5", "-d", dbr,
                     *(pv for native, group in natives.items() if native != "STRING" for pv in group))


def test_every_text_field_of_every_record_type_as_a_long_string_like_softioc(swept):
    pair, natives = swept
    # Not RTYP$ nor the "$" of an array VAL of FTVL STRING: softIoc serves both as char[40] (the record type
    # name; the first element's text), where we do not serve them yet.
    unserved = {"RTYP", *(f"{name}.VAL" for name in ("waveform", "aai", "aao", "subArray"))}
    pvs = [f"{pv}$" for pv in natives["STRING"] if pv.split(".")[1] not in unserved
           and pv.split(":")[1] not in unserved]
    pair.assert_same("cainfo", "-w", "5", *pvs)
    pair.assert_same("caget", "-w", "5", "-S", *pvs)
