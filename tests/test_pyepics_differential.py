"""Our IOC against the C softIoc through pyepics (which bundles the real libca): reads with every option,
puts good and bad, with and without put-callback, monitors of each form and event mask, caget_many /
caput_many and a 100,000-element array, compared operation by operation.

One server pair serves the whole module; each test uses its own records, so the tests do not depend on
their order. pyepics runs in one process per server (see pyepics_session.py).
"""
from __future__ import annotations

import difflib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from differential import Pair, diagnostics, output_of, serve_both

SESSION = Path(__file__).with_name("pyepics_session.py")
WAVEFORM_TYPES = ["STRING", "CHAR", "UCHAR", "SHORT", "USHORT", "LONG", "ULONG", "INT64", "UINT64", "FLOAT",
                  "DOUBLE", "ENUM"]
BIG = 100_000


def records(prefix: str) -> str:
    """One record of every type the IOC issue names, under ``prefix``."""
    waveforms = "\n".join(
        f'record(waveform, "{prefix}wf{ftvl}") {{ field(FTVL, "{ftvl}") field(NELM, "8") field(PREC, "2") '
        f'field(EGU, "{ftvl.lower()}s") field(HOPR, "50") field(LOPR, "-5") }}' for ftvl in WAVEFORM_TYPES)
    return f"""
record(ai, "{prefix}ai") {{
    field(DESC, "An analog input") field(VAL, "21.5") field(EGU, "degC") field(PREC, "2")
    field(HOPR, "100") field(LOPR, "-10") field(HIHI, "50") field(HIGH, "40") field(LOW, "1")
    field(LOLO, "-5") field(HHSV, "MAJOR") field(HSV, "MINOR") field(LSV, "MINOR") field(LLSV, "MAJOR")
    field(ADEL, "2") field(MDEL, "0.5")
}}
record(ao, "{prefix}ao") {{
    field(VAL, "3.25") field(PREC, "3") field(DRVH, "10") field(DRVL, "-10") field(HOPR, "20")
    field(LOPR, "-20") field(EGU, "mm") field(HIGH, "8") field(HSV, "MINOR")
}}
record(bi, "{prefix}bi") {{ field(ZNAM, "Off") field(ONAM, "On") field(OSV, "MINOR") field(VAL, "1") }}
record(bo, "{prefix}bo") {{ field(ZNAM, "Closed") field(ONAM, "Open") field(VAL, "1") }}
record(mbbi, "{prefix}mbbi") {{ field(ZRST, "zero") field(ONST, "one") field(TWST, "two") field(VAL, "1") }}
record(mbbo, "{prefix}mbbo") {{
    field(ZRST, "Idle") field(ONST, "Run") field(TWST, "Fault") field(TWSV, "MAJOR")
}}
record(longin, "{prefix}li") {{
    field(VAL, "42") field(EGU, "counts") field(HOPR, "1000") field(LOPR, "-5") field(HIGH, "500")
    field(HSV, "MINOR") field(MDEL, "3")
}}
record(longout, "{prefix}lo") {{ field(VAL, "-7") field(DRVH, "100") field(DRVL, "-100") field(HOPR, "200") }}
record(bi, "{prefix}bz") {{ field(VAL, "1") }}
record(mbbi, "{prefix}mbbz") {{ field(FFST, "fifteen") field(VAL, "15") }}
record(mbbo, "{prefix}mbbn") {{ field(VAL, "3") }}
record(stringin, "{prefix}si") {{ field(VAL, "hello") }}
record(stringout, "{prefix}so") {{ field(VAL, "world") }}
record(lsi, "{prefix}lsi") {{ field(SIZV, "80") }}
record(lso, "{prefix}lso") {{ field(SIZV, "60") }}
record(int64in, "{prefix}i64i") {{ field(VAL, "1234567890123") field(EGU, "ticks") field(HOPR, "5000") }}
record(int64out, "{prefix}i64o") {{ field(VAL, "-99") field(DRVH, "1000") field(DRVL, "-1000") }}
record(calc, "{prefix}calc") {{
    field(CALC, "A+B*2") field(A, "1") field(B, "2.5") field(PREC, "1") field(EGU, "V")
}}
record(calcout, "{prefix}calcout") {{
    field(CALC, "A*2") field(A, "3") field(OUT, "{prefix}lo PP") field(OOPT, "Every Time")
    field(DOPT, "Use CALC")
}}
{waveforms}
"""


DB = (records("R:") + records("F:") + records("P:") + records("W:") + records("M:") + records("N:")
      + records("T:") + records("U:")) + f"""
record(waveform, "A:big") {{ field(FTVL, "DOUBLE") field(NELM, "{BIG}") }}
record(ai, "M:end") {{ field(PREC, "1") }}
record(calcout, "M:dly") {{
    field(CALC, "A*2") field(ODLY, "0.2") field(OUT, "M:dlo PP") field(FLNK, "M:fl")
}}
record(longout, "M:dlo") {{ }}
record(calc, "M:fl") {{ field(CALC, "VAL+1") }}
"""
SCALARS = ["ai", "ao", "bi", "bo", "mbbi", "mbbo", "li", "lo", "si", "so", "lsi", "lso", "i64i", "i64o",
           "calc", "calcout"]
ALL = SCALARS + [f"wf{ftvl}" for ftvl in WAVEFORM_TYPES]
# enumerated records with no state names, or only the last one
UNNAMED = ["bz", "mbbz", "mbbn"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory, repeater_port):
    # softIoc refuses arrays above 16 kB unless told; the same limit is given to both servers and clients.
    with serve_both(DB, tmp_path_factory.mktemp("pyepics"), repeater_port,
                    {"EPICS_CA_MAX_ARRAY_BYTES": str(8 * BIG + 1024)}) as pair:
        yield pair


def run_session(env: dict[str, str], ops_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SESSION), str(ops_path)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def as_lines(outcome) -> list[str]:
    """An outcome as text to diff: a monitored sequence one event a line, anything else indented JSON."""
    if isinstance(outcome, list) and len(outcome) == 3 and isinstance(outcome[1], list):
        results, events, end = outcome
        return [f"put results: {json.dumps(results)}", *(json.dumps(event) for event in events), end]
    return json.dumps(outcome, indent=1).splitlines()


def assert_same_session(pair: Pair, operations: list[dict], tmp_path: Path) -> list:
    """Run the operations through pyepics against both servers at once; every outcome and every libca
    diagnostic must be the same. Returns the C server's outcomes."""
    ops_path = tmp_path / "operations.json"
    ops_path.write_text(json.dumps(operations))
    procs = {side: run_session(env, ops_path) for side, env in (("C", pair.reference), ("ours", pair.ours))}
    results = {}
    for side, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0 and stdout, f"pyepics session against {side} failed:\n{stderr[-3000:]}"
        results[side] = (json.loads(stdout), stderr)
    (ref, ref_err), (ours, our_err) = results["C"], results["ours"]
    # every PV asked for exists: a session that timed out against both servers would compare equal
    timed_out = [label for label, outcome in ref
                 if isinstance(outcome, dict) and outcome.get("raised") == "TimeoutError"]
    assert not timed_out, f"no answer from softIoc for {timed_out}"
    failures = []
    for (label, ref_outcome), (_, our_outcome) in zip(ref, ours, strict=True):
        if ref_outcome != our_outcome:
            ref_text, our_text = as_lines(ref_outcome), as_lines(our_outcome)
            diff = "\n".join(difflib.unified_diff(ref_text, our_text, "C softIoc", "ours", lineterm="", n=2))
            failures.append(f"{label}:\n{diff}")
    lossy = "errlog: lost" in ref_err or "errlog: lost" in our_err
    ref_diag, our_diag = diagnostics(ref_err, lossy), diagnostics(our_err, lossy)
    if ref_diag != our_diag:
        failures.append(f"libca diagnostics differ:\nonly from C: {sorted(set(ref_diag) - set(our_diag))}\n"
                        f"only from ours: {sorted(set(our_diag) - set(ref_diag))}")
    log = output_of(pair.our_process)[-2000:]
    assert not failures, "\n\n".join(failures) + f"\n--- our IOC's log:\n{log}"
    return ref


FILL = [("wfSTRING", ["alpha", "beta", "gamma", "delta", "e", "f", "g", "h"]), ("wfCHAR", "text with spaces"),
        ("wfUCHAR", [200, 0, 65]), ("wfSHORT", [-32768, 32767, 5]), ("wfUSHORT", [65535]),
        ("wfLONG", [1, 2, 3, 4, 5, 6, 7, 8]), ("wfULONG", [4294967295]), ("wfINT64", [-(2**40), 2**52]),
        ("wfUINT64", [2**53]), ("wfFLOAT", [0.1, -1e30, 3.5]), ("wfDOUBLE", [1 / 3, -0.0, 1e-300, 2.5e10]),
        ("wfENUM", [3, 65535]), ("lsi.VAL$", "a long string input, longer than forty characters: 1234567890"),
        ("lso.VAL$", "a long string output, longer than forty characters"), ("si", ""), ("ai", -1e-7),
        ("mbbo", 2), ("bi", 0)]
GET_OPTIONS = [{}, {"as_string": True}, {"as_numpy": False}, {"count": 1}, {"count": 2, "as_numpy": False},
               {"as_string": True, "count": 3}, {"with_ctrlvars": True}, {"count": 20},
               {"as_string": True, "as_numpy": False}]


def read_operations(prefix: str) -> list[dict]:
    ops = []
    for name in (f"{prefix}{record}" for record in ALL + UNNAMED):
        ops += [{"op": "attrs", "pv": name}, {"op": "info", "pv": name},
                {"op": "ctrlvars", "pv": name}, {"op": "timevars", "pv": name},
                {"op": "meta", "pv": name, "kw": {"form": "ctrl"}},
                {"op": "meta", "pv": name, "kw": {"form": "time", "as_string": True}}]
        ops += [{"op": "get", "pv": name, "kw": kw} for kw in GET_OPTIONS]
    for field in ("ai.EGU", "ai.RTYP", "ai.NAME", "ai.DESC", "ai.PREC", "ai.SCAN", "ai.HHSV", "wfDOUBLE.NORD",
                  "wfCHAR.FTVL", "lsi.VAL$", "lsi.SIZV", "lso.VAL$", "mbbo.ONST", "calc.CALC", "calc.CALC$",
                  "ai.INP", "calcout.OUT", "calcout.OUT$", "i64i.VAL", "so.VAL", "ai.SEVR"):
        name = f"{prefix}{field}"
        ops += [{"op": "attrs", "pv": name}, {"op": "info", "pv": name}, {"op": "ctrlvars", "pv": name},
                {"op": "get", "pv": name}, {"op": "get", "pv": name, "kw": {"as_string": True}}]
    return ops


def test_reads_with_every_option_match_softioc(pair, tmp_path):
    assert_same_session(pair, read_operations("R:"), tmp_path)


def test_reads_of_filled_records_match_softioc(pair, tmp_path):
    fill = [{"op": "put", "pv": f"F:{record}", "value": value, "kw": {"wait": True},
             "label": f"fill F:{record}"} for record, value in FILL]
    assert_same_session(pair, fill + read_operations("F:"), tmp_path)


GOOD_PUTS = [
    ("ai", 12.5), ("ao", 5.5), ("ao", -3.5), ("bi", 0), ("bo", "Closed"), ("bo", 1), ("mbbi", 2),
    ("mbbo", "Fault"), ("mbbo", 1), ("li", 600), ("lo", 99), ("si", "new in"), ("so", "new out"),
    ("lsi", "x" * 70), ("lso", "a long string output of fifty characters, or so.."), ("i64i", 2**40),
    ("i64o", 512), ("calc", 9.5), ("calcout", 4), ("wfSTRING", ["one", "two", "three"]), ("wfCHAR", "chars!"),
    ("wfUCHAR", [1, 2, 255]), ("wfSHORT", [-3, 4]), ("wfUSHORT", [65535, 1]), ("wfLONG", [-(2**31), 7]),
    ("wfULONG", [4294967295, 0, 1]), ("wfINT64", [1, -2, 3]), ("wfUINT64", [5, 6]), ("wfFLOAT", [0.5, 1.25]),
    ("wfDOUBLE", [1.5, -2.5, 3.75, 1e300]), ("wfENUM", [0, 1, 2]), ("bz", 0), ("mbbz", 14), ("mbbn", 9),
]
BAD_PUTS = [
    ("mbbo", "Nonsense"), ("bo", "Maybe"), ("ao", "abc"), ("ao", 50), ("ao", -50), ("lo", 5000),
    ("i64o", -9999),
    ("si", "s" * 45), ("so", "t" * 39), ("lso", "u" * 70), ("wfDOUBLE", list(range(12))),
    ("wfSTRING", ["v" * 45, "w"]), ("wfCHAR", "c" * 20), ("ai.RTYP", "bo"), ("ai.NAME", "X:y"),
    ("ai.PREC", "abc"), ("ai.SCAN", "7 seconds"), ("ai.EGU", "e" * 20), ("li", "12abc"),
]
# DBR_STRING puts, converted by the server, not by pyepics.
STRING_PUTS = [
    ("mbbo", "Run"), ("mbbo", "Nonsense"), ("mbbo", "2"), ("mbbo", "17"), ("bo", "Open"), ("bo", "Maybe"),
    ("ao", "abc"), ("ao", "1e3"), ("ao", " 4.5 "), ("ao", "0x10"), ("lo", "0x10"), ("lo", "12abc"),
    ("lo", "3.7"), ("li", "-8"), ("i64o", "123456789012"), ("ai.SCAN", "2 second"), ("ai.SCAN", "bogus"),
    ("ai.HHSV", "MINOR"), ("ai.HHSV", "7"), ("ai.RTYP", "bo"), ("calc.CALC", "A-B"), ("calc.CALC", "A+(("),
    ("calcout.OUT", "X:nothing"), ("wfDOUBLE", "2.5"), ("wfCHAR", "ab"), ("bz", "1"), ("bz", "One"),
    ("mbbz", "fifteen"), ("mbbz", "3"), ("mbbz", "16"), ("mbbn", "7"), ("mbbn", "Idle"),
]

# Put-callbacks in the field's own type, for their completion status.
NATIVE_STATUS_PUTS = [
    ("ao", 1.5), ("ao", 99.0), ("lo", -500), ("mbbo", 1), ("mbbo", 9), ("bo", 3), ("ai.RTYP", "bo"),
    ("ai.NAME", "X:y"), ("wfDOUBLE", list(range(12))), ("wfSHORT", []), ("so", "ok"), ("calc.CALC", "B+"),
    ("calc.PROC", 1), ("ai.DISP", 1), ("ai", 2.5), ("ai.DISP", 0), ("ai", 3.5), ("ai.HHSV", 9),
]


def put_operations(prefix: str, wait: bool) -> list[dict]:
    ops = []
    reads = [{"op": "get", "pv": f"{prefix}{record}", "kw": {"as_string": True}} for record in ALL + UNNAMED]
    reads += [{"op": "timevars", "pv": f"{prefix}{record}"} for record in ALL + UNNAMED]
    for record, value in GOOD_PUTS + BAD_PUTS:
        name = f"{prefix}{record}"
        ops.append({"op": "put", "pv": name, "value": value, "kw": {"wait": wait},
                    "label": f"put {name} {value!r} wait={wait}"})
        ops += [{"op": "get", "pv": name}, {"op": "get", "pv": name, "kw": {"as_string": True}},
                {"op": "timevars", "pv": name}]
    for record, value in STRING_PUTS:
        name = f"{prefix}{record}"
        # A put-callback goes through libca directly, for the status that completes it.
        ops.append({"op": "put_status" if wait else "put_as", "pv": name, "value": value, "ftype": 0,
                    "label": f"DBR_STRING put {name} {value!r} wait={wait}"})
        ops += [{"op": "get", "pv": name, "kw": {"as_string": True}}, {"op": "timevars", "pv": name}]
    if wait:
        for record, value in NATIVE_STATUS_PUTS:
            name = f"{prefix}{record}"
            ops += [{"op": "put_status", "pv": name, "value": value,
                     "label": f"put-callback {name} {value!r}"},
                    {"op": "get", "pv": name}, {"op": "timevars", "pv": name}]
    return ops + reads + [{"op": "get", "pv": f"{prefix}lo.VAL", "label": "calcout wrote its output"}]


@pytest.mark.parametrize("wait", [False, True], ids=["plain", "callback"])
def test_puts_good_and_bad_match_softioc(pair, tmp_path, wait):
    # Each variant on its own records: the plain puts on P:, the put-callbacks on W:.
    assert_same_session(pair, put_operations("W:" if wait else "P:", wait), tmp_path)


TIME_KEYS = ["value", "char_value", "status", "severity", "ftype", "count"]
CTRL_KEYS = TIME_KEYS + ["units", "precision", "enum_strs", "upper_disp_limit", "lower_disp_limit",
                         "upper_alarm_limit", "upper_warning_limit", "lower_warning_limit",
                         "lower_alarm_limit", "upper_ctrl_limit", "lower_ctrl_limit"]
DBE_VALUE, DBE_LOG, DBE_ALARM, DBE_PROPERTY = 1, 2, 4, 8


def assert_monitored(reference: list, subscriptions: list) -> None:
    """The C server's monitored sequence ran to its end, with a first update for every subscription (a
    sequence that failed the same way against both servers would compare equal)."""
    outcome = reference[0][1]
    assert isinstance(outcome, list) and outcome[2] == "complete", outcome
    labelled = {event[0].split(":", 1)[0] for event in outcome[1]}
    assert labelled == {str(number) for number in range(len(subscriptions))}


def test_monitors_of_each_form_and_mask_match_softioc(pair, tmp_path):
    watched = ["M:ai", "M:ao", "M:mbbo", "M:bo", "M:li", "M:so", "M:lso", "M:i64o", "M:calc", "M:wfDOUBLE",
               "M:wfCHAR", "M:wfSTRING"]
    masks = [DBE_VALUE | DBE_ALARM, DBE_LOG, DBE_ALARM, DBE_PROPERTY,
             DBE_VALUE | DBE_LOG | DBE_ALARM | DBE_PROPERTY]
    subscriptions = [[name, form, mask] for name in watched for form in ("time", "ctrl") for mask in masks]
    puts = [
        ["M:ai", 21.7], ["M:ai", 22.0], ["M:ai", 24.0], ["M:ai", 45.0], ["M:ai", 55.0], ["M:ai", 0.0],
        ["M:ai.EGU", "K"], ["M:ai.HOPR", 150], ["M:ai.PREC", 4], ["M:ai.ADEL", 0], ["M:ai", 0.1],
        ["M:ao", 9], ["M:ao", 9], ["M:ao", 20], ["M:ao.DRVH", 30], ["M:ao.EGU", "cm"],
        ["M:mbbo", 1], ["M:mbbo", 2], ["M:mbbo.ONST", "Running"], ["M:mbbo.TWSV", "MINOR"], ["M:mbbo", 0],
        ["M:bo", 0], ["M:bo.ONAM", "Shut"], ["M:bo", 1],
        ["M:li", 1], ["M:li", 2], ["M:li", 600], ["M:li.EGU", "ticks"],
        ["M:so", "first"], ["M:so", "first"], ["M:so", "second"],
        ["M:lso", "a longer string than forty characters, for lso"], ["M:i64o", 77],
        ["M:calc.A", 10], ["M:calc.EGU", "mV"], ["M:calc.PREC", 3],
        ["M:wfDOUBLE", [1, 2, 3]], ["M:wfDOUBLE", [1, 2, 3]], ["M:wfDOUBLE.EGU", "mm"],
        ["M:wfDOUBLE.HOPR", 9],
        ["M:wfCHAR", "hello"], ["M:wfSTRING", ["a", "b"]],
        ["M:end", 1],
    ]
    subscriptions.append(["M:end", "time", DBE_VALUE])
    ops = [{"op": "monitor", "subscriptions": subscriptions, "puts": puts, "end": 1.0,
            "keys": CTRL_KEYS, "label": "monitored put sequence"}]
    assert_monitored(assert_same_session(pair, ops, tmp_path), subscriptions)


def test_monitors_of_fields_and_of_failing_puts_match_softioc(pair, tmp_path):
    # More subscriptions than rsrv puts in one event queue (35): a later queue's updates are sent after an
    # earlier one's. M:lo (which M:calcout writes) is watched before M:calcout: the other way round, C
    # sends them in either order (its event task may wake between the two records' posts).
    watched = ["M:ai.SEVR", "M:ai.EGU", "M:ao.DRVH", "M:mbbo.ONST", "M:lsi.VAL$", "M:lso", "M:lo",
               "M:calcout", "M:calc", "M:mbbi", "M:i64i", "M:wfCHAR", "M:wfENUM"]
    masks = [DBE_VALUE, DBE_ALARM, DBE_PROPERTY, DBE_VALUE | DBE_LOG | DBE_ALARM | DBE_PROPERTY]
    subscriptions = [[name, form, mask] for name in watched for form in ("time", "ctrl") for mask in masks]
    # fewer elements than the array holds, or more than it has
    subscriptions += [["M:wfCHAR", "time", DBE_VALUE, 2], ["M:wfENUM", "ctrl", DBE_VALUE | DBE_PROPERTY, 7]]
    string = 0
    puts = [
        ["M:ai", "lots", string], ["M:ai", "60", string], ["M:ai.EGU", "mK", string],
        ["M:ai.HHSV", "bad", string],
        ["M:ai", 1.5], ["M:ao.DRVH", "x", string], ["M:ao.DRVH", 4], ["M:ao", 7],
        ["M:mbbo", "Nonsense", string], ["M:mbbo.ONST", "One"], ["M:mbbo.ZRST", "Zero"], ["M:mbbo", 7, 1],
        ["M:lsi.VAL$", "a long string input"], ["M:lsi.VAL$", "a long string input"], ["M:lsi.VAL$", ""],
        ["M:lso", "ok"], ["M:lso", "x" * 45, string],
        ["M:calcout.A", 5], ["M:calcout.CALC", "A*(", string], ["M:calcout.CALC", "A+1"], ["M:calcout.A", 6],
        ["M:calc.CALC", "A/0"], ["M:calc.A", 1], ["M:calc.CALC", "A+B"],
        ["M:mbbi", 1], ["M:mbbi.ONST", "uno"], ["M:mbbi.ONSV", "MAJOR"], ["M:mbbi", 1], ["M:mbbi.PROC", 1],
        ["M:i64i", 2**45], ["M:i64i.EGU", "s"], ["M:i64i", "9007199254740993", string],
        ["M:wfCHAR", "ab"], ["M:wfCHAR", "ab", string], ["M:wfCHAR.NELM", 4], ["M:wfCHAR.PREC", 1],
        ["M:wfENUM", [1, 2]], ["M:wfENUM", "x", string],
        ["M:lo", 1e12, 6], ["M:lo", float("nan"), 6], ["M:lo", -3.9, 6], ["M:lo.HOPR", 7],
        ["M:end", 2],
    ]
    subscriptions.append(["M:end", "time", DBE_VALUE])
    ops = [{"op": "monitor", "subscriptions": subscriptions, "puts": puts, "end": 2.0,
            "keys": CTRL_KEYS, "label": "monitored fields and failing puts"}]
    assert_monitored(assert_same_session(pair, ops, tmp_path), subscriptions)


def test_monitors_of_a_delayed_output_and_its_put_callback_match_softioc(pair, tmp_path):
    # calcout ODLY: the put-callback completes once the delayed output (and the forward link) are done
    subscriptions = [["M:dly", "time", DBE_VALUE], ["M:dly.DLYA", "time", DBE_VALUE],
                     ["M:dlo", "time", DBE_VALUE | DBE_ALARM], ["M:fl", "ctrl", DBE_VALUE | DBE_PROPERTY],
                     ["M:dly.A", "time", DBE_VALUE | DBE_LOG], ["M:end", "time", DBE_VALUE]]
    puts = [["M:dly.A", 3], ["M:dly.A", 4], ["M:dly.ODLY", 0], ["M:dly.A", 5], ["M:dly.CALC", "A*(", 0],
            ["M:dly.A", 2.5], ["M:fl.EGU", "n"], ["M:end", 3]]
    ops = [{"op": "monitor", "subscriptions": subscriptions, "puts": puts, "end": 3.0,
            "keys": ["value", "status", "severity", "units"], "label": "delayed output"},
           {"op": "timevars", "pv": "M:dly"}, {"op": "get", "pv": "M:dlo"}, {"op": "get", "pv": "M:fl"}]
    ref = assert_same_session(pair, ops, tmp_path)
    assert ref[0][1][2] == "complete", ref[0][1]


# Puts in a DBR type pyepics would not choose (ftype): DBR_CHAR arrays into "$" channels of strings and
# links with and without their NUL, numbers into strings, links and enum fields, out-of-range conversions.
TYPED_PUTS = [
    ("calcout.OUT$", [82, 58, 108, 111, 32, 80, 80], 4), ("calcout.OUT$", [82, 58, 108, 111, 0], 4),
    ("calcout.OUT$", "R:ao", 0), ("calcout.OUT$", 1.5, 6), ("calcout.OUT", 1.5, 6), ("calcout.OUT$", [0], 4),
    ("calc.CALC$", [65, 43, 66], 4), ("so.VAL$", [65, 43, 66], 4), ("so.VAL$", [104, 105, 0], 4),
    ("so.VAL$", "65", 0), ("lsi.VAL$", [104, 105, 106, 107], 4), ("lsi.VAL$", [65, 66], 4),
    ("lsi", "short", 0), ("wfENUM", ["a", "b"], 0), ("wfSTRING", [1.5, 2.25], 6), ("wfCHAR", [65, 66, 67], 5),
    ("so", [65, 66, 0], 4), ("so", 3.14159265, 6), ("lo", 1e12, 6), ("lo", -1e12, 6),
    ("wfUCHAR", [-1, 300], 5),
    ("wfSHORT", [1e6, -1e6, 2.7], 6), ("bo", 7, 5), ("mbbo", 2.9, 6), ("mbbo", -1, 5), ("i64o", 1e300, 6),
    ("ai.PREC", 70000, 5), ("ai.EGU", 12.5, 6), ("ai.SCAN", 42, 1), ("wfFLOAT", [1e40, -1e-50], 6),
    ("wfULONG", [-1, 5e9], 6), ("wfUINT64", [-1], 5),
]


@pytest.mark.parametrize("wait", [False, True], ids=["plain", "callback"])
def test_puts_in_other_dbr_types_match_softioc(pair, tmp_path, wait):
    prefix = "T:" if wait else "U:"
    ops = []
    for record, value, ftype in TYPED_PUTS:
        name = f"{prefix}{record}"
        label = f"DBR {ftype} put {name} {value!r} wait={wait}"
        if wait:
            ops.append({"op": "put_status", "pv": name, "value": value, "ftype": ftype, "label": label})
        else:
            ops.append({"op": "put_as", "pv": name, "value": value, "ftype": ftype, "label": label})
        read = name.removesuffix("$")
        ops += [{"op": "get", "pv": read}, {"op": "get", "pv": read, "kw": {"as_string": True}}]
    assert_same_session(pair, ops, tmp_path)


def test_caget_many_and_caput_many_match_softioc(pair, tmp_path):
    names = [f"N:{record}" for record in ALL]
    values = [7, 8, 1, 0, 2, 1, 5, 6, "s", "t", "long s", "long t", 9, 10, 11, 2, ["x", "y"], "zz", [1, 2],
              [3], [4], [5], [6], [7], [8], [9.5], [0.25], [1]]
    ops = [
        {"op": "caget_many", "pvs": names, "label": "caget_many"},
        {"op": "caget_many", "pvs": names, "kw": {"as_string": True}, "label": "caget_many as_string"},
        {"op": "caget_many", "pvs": [*names[:3], "N:missing"], "kw": {"connection_timeout": 1.0},
         "label": "caget_many with a missing PV"},
        {"op": "caput_many", "pvs": names, "values": values, "label": "caput_many"},
        {"op": "caget_many", "pvs": names, "label": "caget_many after caput_many"},
        {"op": "caput_many", "pvs": names, "values": values[::-1], "kw": {"wait": "each"},
         "label": "caput_many wait=each"},
        {"op": "caput_many", "pvs": names[:6], "values": values[:6], "kw": {"wait": "all"},
         "label": "caput_many wait=all"},
        {"op": "caget_many", "pvs": names, "kw": {"as_string": True}, "label": "caget_many after all"},
        {"op": "put", "pv": "N:wfCHAR", "value": "char text", "kw": {"wait": True}},
        {"op": "get", "pv": "N:wfCHAR", "kw": {"as_string": True}},
        {"op": "caget", "pv": "N:wfCHAR", "kw": {"as_string": True}},
        {"op": "get", "pv": "N:wfUCHAR", "kw": {"as_string": True}},
    ]
    assert_same_session(pair, ops, tmp_path)


def test_100000_doubles_round_trip_like_softioc(pair, tmp_path):
    ref = assert_same_session(pair, [{"op": "big", "pv": "A:big", "count": BIG}], tmp_path)
    outcome = ref[0][1]
    assert outcome["equal"] is True and outcome["length"] == BIG and outcome["update equal"] is True, outcome
