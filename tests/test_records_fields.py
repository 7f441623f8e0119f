"""Field tables: their shape, the DBF -> CA type rules, and every field compared with softIoc's."""
from __future__ import annotations

import re

import pytest
from dboracle import load_db, parse_caget, reference_ioc
from differential import serve_both
from peers import EPICS_BIN, run_tool

from caproto.constants import AccessRights
from ioc.records import RECORD_TYPES, record_type
from ioc.records.common import COMMON_FIELDS
from ioc.records.fields import DBF, NATIVE_DBR, SPC
from ioc.records.menus import MENUS

# Every record type served both by softIoc and by us (the motor record is only ours), swept field by field
# from softIoc's own .dbd.
SOFTIOC_DBD = EPICS_BIN.parent.parent / "dbd" / "softIoc.dbd"
SWEPT_TYPES = ["ai", "ao", "bi", "bo", "mbbi", "mbbo", "longin", "longout", "stringin", "stringout",
               "waveform", "aai", "aao", "calc", "calcout", "fanout", "dfanout", "seq", "sel", "subArray",
               "int64in", "int64out", "lsi", "lso", "mbbiDirect", "mbboDirect", "compress", "histogram",
               "permissive", "state", "printf", "event"]
# Each type with what a database usually sets (display metadata, limits, states, sizes, links), so that the
# fields whose metadata or count follow others are swept with something to follow; no delays (ODLY, DLYn),
# which would leave a processed record busy for a time that the reads of both servers would straddle.
CONFIGURED = {
    "ai": 'field(EGU, "V") field(PREC, "3") field(HOPR, "10") field(LOPR, "-10") field(HIHI, "8") '
          'field(HHSV, "MAJOR") field(LINR, "LINEAR") field(EGUF, "20") field(VAL, "1.5") field(INP, "d:ao")',
    "ao": 'field(EGU, "mm") field(PREC, "2") field(DRVH, "5") field(DRVL, "-5") field(HOPR, "6") '
          'field(LOW, "-1") field(LSV, "MINOR") field(OUT, "d:ai PP") field(OROC, "0.5")',
    "bi": 'field(ZNAM, "Off") field(ONAM, "On") field(OSV, "MINOR") field(VAL, "1")',
    "bo": 'field(ZNAM, "Closed") field(ONAM, "Open") field(HIGH, "1.5") field(DOL, "1")',
    "mbbi": 'field(ZRST, "zero") field(TWST, "two") field(TWSV, "MINOR") field(NOBT, "4")',     # ONST unset
    "mbbo": 'field(ZRST, "Idle") field(ONST, "Run") field(ZRVL, "3") field(ONVL, "5") field(VAL, "1")',
    "longin": 'field(EGU, "cts") field(HOPR, "100") field(LOPR, "3") field(HIGH, "50") field(HSV, "MINOR") '
              'field(VAL, "60")',
    "longout": 'field(EGU, "steps") field(DRVH, "20") field(DRVL, "30") field(VAL, "-7")',     # DRVL > DRVH
    "stringin": 'field(VAL, "abc") field(INP, "d:stringout")',
    "stringout": 'field(VAL, "output") field(DESC, "a description") field(OUT, "d:event.VAL PP")',
    "waveform": 'field(FTVL, "FLOAT") field(NELM, "8") field(EGU, "A") field(HOPR, "7") field(PREC, "4") '
                'field(INP, [1.5, 2.5])',
    "aai": 'field(FTVL, "LONG") field(NELM, "5") field(EGU, "cts") field(INP, [1, 2, 3])',
    "aao": 'field(FTVL, "SHORT") field(NELM, "4") field(PREC, "1") field(DOL, [4, 5])',
    "calc": 'field(CALC, "A+B") field(INPA, "d:ai") field(B, "2") field(EGU, "K") field(PREC, "1") '
            'field(HOPR, "30")',
    "calcout": 'field(CALC, "A*2") field(INPA, "d:longin") field(OUT, "d:ao") field(OOPT, "On Change") '
               'field(DOPT, "Use OCAL") field(OCAL, "A") field(PREC, "2")',
    "fanout": 'field(LNK1, "d:calc") field(SELM, "Specified") field(SELN, "1")',
    "dfanout": 'field(OUTA, "d:ao") field(VAL, "1.5") field(PREC, "1") field(HOPR, "10") field(EGU, "V")',
    "seq": 'field(DOL1, "1") field(LNK1, "d:longout") field(SELM, "All") field(PREC, "1")',
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


def served_fields(name: str) -> list[str]:
    """Every field of our table for ``name`` that a client can reach (all but DBF_NOACCESS ones, plus
    RTYP), as other differential tests sweep them."""
    rtype = record_type(name)
    names = [f.name for f in rtype.fields if f.dbf is not DBF.NOACCESS or f.special is SPC.DBADDR]
    return names + ["RTYP"]


@pytest.mark.parametrize("name", SWEPT_TYPES)
def test_every_record_type_starts_with_dbcommon(name):
    rtype = record_type(name)
    assert rtype.fields[:len(COMMON_FIELDS)] == COMMON_FIELDS
    names = [f.name for f in rtype.fields]
    assert len(names) == len(set(names)), "a field is declared twice"
    assert "VAL" in rtype.by_name


def test_registry_holds_every_swept_record_type():
    record_type("ai")  # loads the built-in families
    assert set(SWEPT_TYPES) <= set(RECORD_TYPES)


@pytest.mark.parametrize("name", SWEPT_TYPES)
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
    db = load_db(DATABASES["configured"], tmp_path)
    for fld in record_type("ai").fields:
        chan = db.lookup(f"d:ai.{fld.name}")
        if chan is None:
            continue
        expected = AccessRights.READ if fld.special is SPC.NOMOD else AccessRights.READ_WRITE
        assert chan.access == expected, fld.name


def test_noaccess_fields_are_not_served_as_softioc_does_not(ca_env, tmp_path):
    db = load_db(DATABASES["configured"], tmp_path)
    hidden = [f"d:ai.{f.name}" for f in record_type("ai").fields if f.dbf is DBF.NOACCESS]
    assert hidden and all(db.lookup(pv) is None for pv in hidden)
    with reference_ioc(DATABASES["configured"], ca_env, tmp_path):
        result = run_tool("cainfo", "-w", "1", hidden[0], env=ca_env)
    assert "not found" in result.stderr + result.stdout


# --- every field of one record of every type, served by softIoc and by ours --------------------------------

@pytest.fixture(scope="module", params=[*sorted(DATABASES), "processed"])
def swept(request, tmp_path_factory, repeater_port):
    """Both servers serving one record of each type (configured, and processed once each in turn for
    "processed"), and every swept PV grouped by the native type softIoc's cainfo gives it."""
    db = DATABASES.get(request.param, DATABASES["configured"])
    with serve_both(db, tmp_path_factory.mktemp(request.param), repeater_port) as pair:
        if request.param == "processed":
            for name in SWEPT_TYPES:
                pair.assert_same("caput", "-w", "5", f"d:{name}.PROC", "1")
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


@pytest.mark.parametrize("dbr", ["DBR_STRING", "DBR_TIME_STRING", "DBR_CTRL_STRING"])
def test_every_field_of_every_record_type_reads_as_text_like_softioc(swept, dbr):
    pair, natives = swept
    pair.assert_same("caget", "-w", "5", "-d", dbr,
                     *(pv for group in natives.values() for pv in group))


@pytest.mark.parametrize("dbr", ["DBR_CTRL_DOUBLE", "DBR_CTRL_FLOAT", "DBR_CTRL_LONG", "DBR_CTRL_SHORT",
                                 "DBR_CTRL_CHAR", "DBR_CTRL_ENUM", "DBR_STSACK_STRING"])
def test_every_numeric_field_of_every_record_type_converts_like_softioc(swept, dbr):
    pair, natives = swept
    pair.assert_same("caget", "-w", "5", "-d", dbr,
                     *(pv for native, group in natives.items() if native != "STRING" for pv in group))


def test_every_text_field_of_every_record_type_as_a_long_string_like_softioc(swept):
    pair, natives = swept
    # Not the "$" of an array VAL of FTVL STRING: softIoc serves it as a char[40] (through which a put
    # writes into the array's buffer, whatever FTVL), which we do not serve.
    unserved = {f"d:{name}.VAL" for name in ("waveform", "aai", "aao", "subArray")}
    pvs = [f"{pv}$" for pv in natives["STRING"] if pv not in unserved]
    pair.assert_same("cainfo", "-w", "5", *pvs)
    pair.assert_same("caget", "-w", "5", "-S", *pvs)


RTYP_DB = """
record(ai, "t:ai") {}
record(lsi, "t:lsi") { field(INP, "t:ai.RTYP$") field(SIZV, "20") }
record(stringin, "t:si") { field(INP, "t:ai.RTYP$") }
record(waveform, "t:wf") { field(INP, "t:ai.RTYP$") field(FTVL, "CHAR") field(NELM, "10") }
record(lso, "t:lso") { field(OUT, "t:ai.RTYP$") field(SIZV, "20") }
record(printf, "t:printf") { field(FMT, "%ls|%s") field(INP0, "t:ai.RTYP$") field(INP1, "t:ai.RTYP") }
"""


def test_record_type_name_as_a_long_string_like_softioc(tmp_path, repeater_port):
    # RTYP$: the name as a char[40] (getAttrValue), read by clients and through links, never written
    with serve_both(RTYP_DB, tmp_path, repeater_port) as pair:
        pair.assert_same("cainfo", "-w", "5", "t:ai.RTYP$")
        for flags in ([], ["-S"], ["-#", "5"], ["-d", "DBR_STRING"], ["-d", "DBR_CTRL_CHAR"],
                      ["-d", "DBR_TIME_STRING"], ["-d", "DBR_CLASS_NAME"], ["-d", "DBR_DOUBLE"]):
            pair.assert_same("caget", "-w", "2", *flags, "t:ai.RTYP$")
        pair.assert_same("caput", "-w", "2", "-S", "t:ai.RTYP$", "bo")
        for name in ("t:lsi", "t:si", "t:wf", "t:printf"):
            pair.assert_same("caput", "-w", "2", f"{name}.PROC", "1")
        pair.assert_same("caput", "-w", "2", "t:lso", "bo")
        text = pair.assert_same("caget", "-w", "2", "-d", "DBR_STSACK_STRING", "t:lsi", "t:si", "t:wf",
                                "t:lso", "t:printf")
    assert "ai|ai" in text
