"""int64in/int64out against the C softIoc: DBF_INT64 served as DOUBLE (CA has no 64-bit type) but read
as a string with every digit, conversions to LONG/SHORT/CHAR and of the limits, puts of text beyond 2**53,
drive limits, deadbands, alarms with hysteresis, links to and from 32-bit and double records, DOL, IVOA
and simulation. The same puts go to both IOCs; caget/camonitor outputs are compared (timestamps masked).
"""
from __future__ import annotations

import difflib

import pytest
from dboracle import differences, load_db, our_caget, parse_caget, reference_ioc
from differential import Pair, serve_both
from peers import run_tool
from test_processing_differential import finish_monitors, start_monitors
from test_records_fields import served_fields
from test_simulation_differential import run_sequence

from caproto.constants import AccessRights
from caproto.dbr import ChannelType
from caproto.errors import CAError

DB = r"""
record(int64in, "I:in") {
    field(VAL, "9007199254740993") field(EGU, "cts") field(HOPR, "1000") field(LOPR, "-5")
    field(HIGH, "100") field(HSV, "MINOR") field(HIHI, "9007199254740990") field(HHSV, "MAJOR")
    field(LOW, "-10") field(LSV, "MINOR") field(HYST, "3") field(MDEL, "2") field(ADEL, "50")
}
record(int64in, "I:big") { field(VAL, "-9223372036854775808") }
# constants keep every digit
record(int64in, "I:const") { field(INP, "9007199254740993") field(SIOL, "[9007199254740995]") }
record(int64out, "I:hex") { field(DOL, "0x10") }
record(int64in, "I:link") { field(INP, "I:out") field(MDEL, "-1") }
record(int64in, "I:fromai") { field(INP, "I:ai") }
record(int64in, "I:fromstr") { field(INP, "I:str") }
record(int64in, "I:sim") { field(SIOL, "I:out") field(SIMM, "YES") field(SIMS, "MINOR") field(INP, "I:ai") }
record(ai, "I:ai") { field(PREC, "2") }
# a failed INP read fails the processing, and softIoc a put that processed it: reached by FLNK
record(stringout, "I:str") { field(FLNK, "I:fromstr") }
record(int64out, "I:out") {
    field(DRVH, "1000000000000") field(DRVL, "-5") field(OUT, "I:lo PP") field(FLNK, "I:link")
    field(HOPR, "7") field(EGU, "m")
}
record(longin, "I:lo") { }
record(int64out, "I:plain") { field(OUT, "I:dbl PP") }
record(ao, "I:dbl") { field(PREC, "1") }
record(int64out, "I:dol") { field(DOL, "I:in") field(OMSL, "closed_loop") field(OUT, "I:sink PP") }
record(int64in, "I:sink") { }
record(int64out, "I:ivoa") {
    field(HIHI, "10") field(HHSV, "INVALID") field(IVOA, "Set output to IVOV") field(IVOV, "-7")
    field(OUT, "I:sink2 PP")
}
record(int64in, "I:sink2") { }
record(int64out, "I:simout") { field(SIOL, "I:sink3 PP") field(SIMM, "YES") field(OUT, "I:sink PP") }
record(int64in, "I:sink3") { }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

INT64 = ["I:in", "I:big", "I:const", "I:const.SVAL", "I:hex", "I:link", "I:fromai", "I:fromstr", "I:sim",
         "I:out", "I:plain", "I:dol", "I:sink", "I:ivoa", "I:sink2", "I:simout", "I:sink3"]
OTHERS = ["I:lo", "I:dbl"]
MONITORED = ["I:in", "I:link", "I:out", "I:lo", "I:dol", "I:sink", "I:ivoa", "I:sink2"]
FIELDS = [f"{pv}.{field}" for pv in ("I:in", "I:out", "I:ivoa", "I:sim")
          for field in ("STAT", "SEVR", "UDF", "LALM", "MLST", "ALST")]


def compare(pair: Pair) -> None:
    pair.assert_same("caget", "-w", "5", "-d", "DBR_TIME_STRING", *INT64, *OTHERS)
    pair.assert_same("caget", "-w", "5", "-d", "DBR_TIME_DOUBLE", *INT64)
    pair.assert_same("caget", "-w", "5", *FIELDS)


@pytest.fixture
def pair(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        yield pair


def test_int64_channels_read_as_softioc_serves_them(pair):
    pair.assert_same("cainfo", "I:in", "I:in.HOPR", "I:out.DRVH", "I:in.AFTC", "I:in.UTAG")
    compare(pair)
    for dbr in ("DBR_CTRL_DOUBLE", "DBR_CTRL_LONG", "DBR_GR_SHORT", "DBR_CTRL_CHAR", "DBR_CTRL_FLOAT",
                "DBR_STS_STRING"):
        pair.assert_same("caget", "-w", "5", "-d", dbr, "I:in", "I:big", "I:out", "I:ivoa", "I:in.HYST")


def test_int64_puts_and_processing_match_softioc(pair):
    steps = [
        # text: every digit kept; a fraction, hex, trailing text and values past 64 bits as softIoc
        ("I:in", "5"), ("I:in", "6"), ("I:in", "8"), ("I:in", "200"), ("I:in", "98"), ("I:in", "96"),
        ("I:in", "-11"), ("I:in", "-8"), ("I:in", "-6"), ("I:in", "9007199254740993"), ("I:in", "1.5e3"),
        ("I:in", "-12abc"), ("I:in", "0x10"), ("I:in", "1e30"), ("I:in", "99999999999999999999"),
        ("I:in", "-9223372036854775808"), ("I:in", "0"),
        # OUT to a longin (the low 32 bits) and FLNK to an int64in reading it back; drive limits
        ("I:out", "2000000000000"), ("I:out", "-100"), ("I:out", "4294967297"), ("I:out.DRVH", "0"),
        ("I:out", "123456789012345"),
        ("I:plain", "9007199254740993"), ("I:ai", "-3.99"), ("I:fromai.PROC", "1"), ("I:ai", "1e19"),
        ("I:fromai.PROC", "1"), ("I:str", "77"), ("I:str", "9007199254740993"), ("I:str", "1.5e3"),
        ("I:str", "x"),
        # DOL (closed loop), IVOA with an INVALID alarm, simulation
        ("I:in", "4242"), ("I:dol.PROC", "1"), ("I:ivoa", "5"), ("I:ivoa", "11"), ("I:ivoa", "3"),
        ("I:sim.PROC", "1"), ("I:sim.SIMM", "NO"), ("I:sim.PROC", "1"), ("I:simout", "31"),
        ("I:simout.SIMM", "NO"), ("I:simout", "32"),
    ]
    run_sequence(pair, steps, MONITORED, compare)


# --- every field of the new types, read in-process against softIoc (tests/dboracle.py) -------------------

FIELD_DB = r"""
record(int64in, "int64in") {
    field(EGU, "cts") field(HOPR, "100") field(LOPR, "3") field(HIGH, "50") field(HSV, "MINOR")
    field(VAL, "-9007199254740993") field(HIHI, "9007199254740993")
}
record(int64out, "int64out") { field(EGU, "m") field(HOPR, "100") field(DRVH, "20") field(DRVL, "30") }
"""


def reads(db, pv: str, data_type: str) -> bool:
    try:
        db.lookup(pv).read(ChannelType[data_type[4:]], 1)
    except CAError:
        return False
    return True


def every_field_matches_softioc(db_text: str, names: list[str], ca_env, tmp_path,
                                skip: tuple[str, ...] = ()) -> None:
    """cainfo's native type, count and access, and caget -d of four DBR types, for every field served
    (but ``skip``)."""
    db = load_db(db_text, tmp_path)
    pvs = [pv for name in names for pv in (f"{name}.{field}" for field in served_fields(name))
           if pv not in skip]
    mismatches = []
    with reference_ioc(db_text, ca_env, tmp_path):
        info = parse_caget(run_tool("cainfo", "-w", "5", *pvs, env=ca_env, timeout=60).stdout)
        for pv in pvs:
            chan = db.lookup(pv)
            assert chan is not None, f"we do not serve {pv}"
            ours = our_caget(db, pv, ChannelType.STRING)
            access = "read, write" if chan.access == AccessRights.READ_WRITE else "read, no write"
            for key, value in (("Native data type", ours["Native data type"]),
                               ("Element count", ours["Element count"]), ("Access", access)):
                if info[pv][key] != value:
                    mismatches.append(f"{pv} {key}: C {info[pv][key]!r}, ours {value!r}")
        for data_type in ("DBR_CTRL_DOUBLE", "DBR_TIME_STRING", "DBR_CTRL_LONG", "DBR_CTRL_ENUM"):
            # not text that is no number (NAME, EGU) as a number: that read fails, and caget then waits
            # out -w for it
            asked = [pv for pv in pvs if data_type == "DBR_TIME_STRING" or reads(db, pv, data_type)]
            result = run_tool("caget", "-w", "5", "-d", data_type, *asked, env=ca_env, timeout=60)
            reference = parse_caget(result.stdout, result.stderr)
            for pv in asked:
                problems = differences(reference[pv], our_caget(db, pv, ChannelType[data_type[4:]]))
                mismatches += [f"{pv} as {data_type}: {p}" for p in problems]
    assert not mismatches, "\n".join(mismatches)


def test_every_int64_field_reads_like_softioc(ca_env, tmp_path):
    every_field_matches_softioc(FIELD_DB, ["int64in", "int64out"], ca_env, tmp_path)


# --- lsi and lso ----------------------------------------------------------------------------------------

LS_DB = r"""
record(lsi, "L:in") { field(SIZV, "100") field(INP, {const:"hello world"}) }
record(lsi, "L:num") { field(INP, "12") }
record(lsi, "L:arr") { field(INP, ["abc", "def"]) }
record(lsi, "L:arrn") { field(INP, [1, 2]) }
record(lsi, "L:small") { field(SIZV, "5") }
record(lsi, "L:fromso") { field(INP, "L:so") field(SIZV, "64") field(MPST, "Always") field(PINI, "YES") }
record(stringout, "L:so") { field(VAL, "from a stringout") field(FLNK, "L:fromso") }
record(lso, "L:out") {
    field(SIZV, "80") field(OUT, "L:wf PP") field(FLNK, "L:fromwf") field(DOL, {const:"init"})
}
record(waveform, "L:wf") { field(FTVL, "CHAR") field(NELM, "50") }
record(lsi, "L:fromwf") { field(INP, "L:wf") field(SIZV, "30") field(APST, "Always") }
record(lso, "L:tostr") { field(OUT, "L:si PP") field(SIZV, "60") }
record(stringin, "L:si") { }
record(lso, "L:dol") { field(DOL, "L:in") field(OMSL, "closed_loop") field(SIZV, "200") }
record(lso, "L:cl") { field(OMSL, "closed_loop") }
record(lso, "L:ivoa") { field(IVOA, "Set output to IVOV") field(IVOV, "fallback") field(OUT, "L:si2 PP")
                        field(DOL, "L:bad MS") field(OMSL, "closed_loop") }
record(ai, "L:bad") { field(HIHI, "1") field(HHSV, "INVALID") field(FLNK, "L:ivoa") }
record(stringin, "L:si2") { }
record(lsi, "L:sim") { field(SIOL, "L:so") field(SIMM, "YES") field(SIMS, "MINOR") }
record(lso, "L:simout") { field(SIOL, "L:wf PP") field(SIMM, "YES") field(SIMS, "MAJOR") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

# L:arrn and L:cl are never set (LEN 0): softIoc serves their VAL as no element at all
LS = ["L:in", "L:num", "L:arr", "L:arrn", "L:small", "L:fromso", "L:out", "L:fromwf", "L:tostr", "L:dol",
      "L:cl", "L:ivoa", "L:sim", "L:simout"]
LS_FIELDS = [f"{pv}.{field}" for pv in LS for field in ("LEN", "OLEN", "UDF", "STAT", "SEVR")]
LS_MONITORED = ["L:out.VAL$", "L:out.LEN", "L:fromso", "L:fromwf.LEN", "L:wf", "L:si2"]
LONG = "a long string that is longer than forty characters, much longer"


def compare_long_strings(pair: Pair) -> None:
    pair.assert_same("caget", "-w", "5", "-d", "DBR_TIME_STRING", *LS, "L:si", "L:si2")
    pair.assert_same("caget", "-w", "5", "-S", *(f"{pv}.VAL$" for pv in LS), *(f"{pv}.OVAL$" for pv in LS),
                     "L:wf")
    pair.assert_same("caget", "-w", "5", *LS_FIELDS)


def test_long_string_channels_read_as_softioc_serves_them(tmp_path, repeater_port):
    with serve_both(LS_DB, tmp_path, repeater_port) as pair:
        pair.assert_same("cainfo", "L:in", "L:in.VAL$", "L:in.OVAL", "L:in.OVAL$", "L:in.LEN", "L:small.VAL$",
                         "L:out.VAL$")
        for dbr in ("DBR_CHAR", "DBR_CTRL_CHAR", "DBR_TIME_CHAR", "DBR_TIME_LONG"):
            pair.assert_same("caget", "-w", "5", "-d", dbr, "L:in.VAL$", "L:small.VAL$")
        steps = [
            # a put of text to VAL$ keeps SIZV - 1 bytes; one to VAL is a DBR_STRING
            ("L:out.VAL$", LONG), ("L:out", "short"), ("L:out", "short"), ("L:out.VAL$", ""),
            ("L:tostr.VAL$", "x" * 59), ("L:small.VAL$", "abcdefghijklmno"), ("L:so", "read by INP"),
            ("L:in.PROC", "1"), ("L:dol.PROC", "1"), ("L:cl.PROC", "1"),
            # IVOA: DOL's INVALID alarm (MS) has IVOV written instead
            ("L:bad", "0.5"), ("L:bad", "7"), ("L:bad", "0"),
            ("L:sim.PROC", "1"), ("L:simout.VAL$", "simulated"), ("L:sim.SIMM", "NO"), ("L:sim.PROC", "1"),
        ]
        run_puts(pair, [["-S", pv, value] if pv.endswith("$") else [pv, value] for pv, value in steps],
                 LS_MONITORED, compare_long_strings)


def by_pv(lines: list[str]) -> list[str]:
    return sorted(lines, key=lambda line: line.split(" ", 1)[0])     # stable: keeps each PV's order


def run_puts(pair: Pair, puts: list[list[str]], monitored: list[str], check) -> None:
    """caput each of ``puts`` (its arguments) to both; then camonitor's events (every mask, each PV's
    in order: how two PVs' updates interleave depends on the servers' queues) and ``check`` compared."""
    pvs = [*monitored, "P:end"]
    monitors = {"C": start_monitors(pair.reference, pvs), "ours": start_monitors(pair.ours, pvs)}
    failures = []
    for args in puts:
        try:
            pair.assert_same("caput", "-w", "5", *args)
        except AssertionError as error:
            failures.append(str(error))
    pair.assert_same("caput", "-w", "5", "P:end", "1")
    pair.assert_same("caput", "-w", "5", "P:end.EGU", "done")
    events = {side: [by_pv(lines) for lines in finish_monitors(m)] for side, m in monitors.items()}
    for event_mask, ref, ours in zip(("va", "l", "a", "p"), events["C"], events["ours"], strict=True):
        if ref != ours:
            diff = "\n".join(difflib.unified_diff(ref, ours, "C softIoc", "ours", lineterm="", n=1))
            failures.append(f"camonitor -m {event_mask} events differ:\n{diff}")
    try:
        check(pair)
    except AssertionError as error:
        failures.append(str(error))
    assert not failures, "\n\n".join(failures)


def test_every_long_string_field_reads_like_softioc(ca_env, tmp_path):
    # VAL loaded (softIoc serves no element of a VAL never set) and numeric, so that it reads as a number.
    # Not INP/DOL: we write a JSON link's text back in another (equivalent) form.
    db = 'record(lsi, "lsi") { field(SIZV, "50") field(INP, {const:"1.5"}) }\n' \
         'record(lso, "lso") { field(DOL, {const:"2"}) field(IVOV, "3") }\n'
    every_field_matches_softioc(db, ["lsi", "lso"], ca_env, tmp_path, skip=("lsi.INP", "lso.DOL"))
