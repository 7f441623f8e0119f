"""Simulation mode of bi, bo, mbbi, mbbo and waveform against the C softIoc: SIMM put directly or read
through SIML, SIOL read (inputs) or written (outputs), SIMS as the SIMM alarm's severity, SDLY's delayed
completion, SSCN's scan swap, a constant SIML/SIOL at init. The same puts go to both IOCs and the real
caget/caput/camonitor outputs are compared (timestamps masked)."""
from __future__ import annotations

import difflib

import pytest
from differential import Pair, serve_both
from test_processing_differential import finish_monitors, start_monitors

DB = r"""
record(ao, "S:src") { field(PREC, "1") }
record(ao, "S:real") { field(VAL, "1") field(PINI, "YES") }
record(bo, "S:mode") { field(ZNAM, "real") field(ONAM, "sim") }
# A SIMM outside the menu fails the processing: its records are reached through FLNK, because softIoc
# then also fails a put that processed them directly (dbPutField returns process()'s status).
record(longout, "S:simm") { field(FLNK, "S:bad") }
record(bi, "S:bi") {
    field(INP, "S:real") field(SIOL, "S:src") field(SIMS, "MINOR") field(ZNAM, "Off") field(ONAM, "On")
    field(OSV, "MAJOR") field(COSV, "MINOR")
}
record(bi, "S:bil") { field(SIML, "S:mode") field(SIOL, "S:src") field(SIMS, "MAJOR") field(INP, "S:real") }
record(bi, "S:bic") { field(SIML, "1") field(SIOL, "1") field(SIMS, "INVALID") field(ONAM, "set") }
record(bi, "S:bad") { field(SIML, "S:simm") field(SIOL, "S:src") field(SIMS, "MINOR") field(FLNK, "S:wfs") }
record(bi, "S:bis") { field(SIOL, "S:src") field(SSCN, "10 second") }
record(mbbi, "S:mbbi") {
    field(SIOL, "S:src") field(SIMS, "MAJOR") field(ZRST, "zero") field(ONST, "one") field(TWST, "two")
    field(ZRVL, "0") field(ONVL, "2") field(TWVL, "4") field(ONSV, "MINOR") field(UNSV, "INVALID")
}
record(mbbi, "S:mbbis") { field(SIOL, "S:src") field(SHFT, "1") field(SIML, "S:mode") }
record(bo, "S:bo") {
    field(SIOL, "S:bo_sim PP") field(OUT, "S:bo_real PP") field(SIMS, "MINOR") field(ZNAM, "no")
    field(ONAM, "yes") field(MASK, "6")
}
record(longin, "S:bo_sim") { }
record(longin, "S:bo_real") { }
record(mbbo, "S:mbbo") {
    field(SIOL, "S:mbbo_sim PP") field(OUT, "S:mbbo_real PP") field(SIMS, "MAJOR") field(ZRST, "a")
    field(ONST, "b") field(TWST, "c") field(ZRVL, "3") field(ONVL, "5") field(TWVL, "9")
}
record(longin, "S:mbbo_sim") { }
record(longin, "S:mbbo_real") { }
record(waveform, "S:wsrc") { field(FTVL, "DOUBLE") field(NELM, "6") }
record(waveform, "S:wf") {
    field(FTVL, "DOUBLE") field(NELM, "4") field(SIOL, "S:wsrc") field(SIMS, "MINOR") field(PREC, "2")
}
record(waveform, "S:wf1") { field(FTVL, "DOUBLE") field(SIOL, "S:src") field(SIMM, "YES") }
record(waveform, "S:wfc") { field(FTVL, "LONG") field(NELM, "3") field(SIMS, "MAJOR") }
record(waveform, "S:wfs") { field(FTVL, "SHORT") field(NELM, "3") field(SIOL, "S:src") field(SIML, "S:simm") }
record(bi, "S:bid") { field(SIOL, "S:src") field(SDLY, "0.3") field(SIMM, "YES") field(SIMS, "MINOR") }
record(bo, "S:bod") { field(SIOL, "S:bo_sim PP") field(SDLY, "0.2") field(SIMM, "YES") }
record(mbbi, "S:mbbid") { field(SIOL, "S:src") field(SDLY, "0.2") field(SIMM, "RAW") }
record(mbbo, "S:mbbod") { field(SIOL, "S:mbbo_sim PP") field(SDLY, "0.2") field(SIMM, "YES") }
record(waveform, "S:wfd") { field(FTVL, "DOUBLE") field(NELM, "4") field(SIOL, "S:wsrc") field(SDLY, "0.2") }
# TSE -2 (device time): in simulation an input takes its SIOL source's timestamp, or the current time
record(ao, "T:src") { }
record(bi, "T:bi") { field(SIOL, "T:src") field(TSE, "-2") field(SIMM, "YES") }
record(mbbi, "T:mbbi") { field(SIOL, "T:src") field(TSE, "-2") field(SIMM, "RAW") }
record(waveform, "T:wf") { field(SIOL, "T:src") field(TSE, "-2") field(SIMM, "YES") field(FTVL, "DOUBLE") }
record(bi, "T:bic") { field(TSE, "-2") field(SIMM, "YES") }
record(bi, "T:real") { field(TSE, "-2") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

MONITORED = ["S:bi", "S:bil", "S:bad", "S:wfs", "S:mbbi", "S:bo", "S:bo_sim", "S:bo_real", "S:mbbo",
             "S:mbbo_sim", "S:wf", "S:bid", "S:wfd"]
SCALARS = ["S:bi", "S:bil", "S:bic", "S:bad", "S:bis", "S:mbbi", "S:mbbis", "S:bo", "S:bo_sim", "S:bo_real",
           "S:mbbo", "S:mbbo_sim", "S:mbbo_real", "S:bid", "S:bod", "S:mbbid", "S:mbbod"]
FIELDS = [f"{pv}.{field}" for pv in ("S:bi", "S:bil", "S:bic", "S:bad", "S:mbbi", "S:mbbis", "S:bo", "S:mbbo")
          for field in ("SIMM", "SVAL", "RVAL", "STAT", "SEVR", "UDF")
          if not (field == "SVAL" and pv in ("S:bo", "S:mbbo"))]
FIELDS += ["S:bis.SCAN", "S:bis.SSCN", "S:bis.OLDSIMM", "S:bis.SIMM", "S:wf.NORD", "S:wfc.NORD",
           "S:wfs.NORD", "S:wfs.SIMM", "S:wfs.STAT", "S:wfs.SEVR", "S:wfd.NORD", "S:bid.PACT"]
ARRAYS = ["S:wf", "S:wf1", "S:wfc", "S:wfs", "S:wfd"]


def compare_state(pair: Pair) -> None:
    pair.assert_same("caget", "-w", "5", "-d", "DBR_TIME_STRING", *SCALARS)
    pair.assert_same("caget", "-w", "5", "-d", "DBR_TIME_DOUBLE", *SCALARS)
    pair.assert_same("caget", "-w", "5", *FIELDS)
    pair.assert_same("caget", "-w", "5", "-d", "DBR_TIME_DOUBLE", *ARRAYS)


def put(pair: Pair, pv: str, *values: str, callback: bool = False) -> None:
    args = ["-c"] if callback else []
    if len(values) > 1:
        args += ["-a", pv, str(len(values)), *values]
    else:
        args += [pv, *values]
    pair.assert_same("caput", "-w", "5", *args)


@pytest.fixture
def pair(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        yield pair


def test_initial_simulation_state_matches_softioc(pair):
    # S:bic's constant SIML puts it in simulation at init; nothing has processed it yet.
    compare_state(pair)


def test_inputs_read_siol_in_simulation_with_the_sims_alarm(pair):
    steps = [
        # bi: SIMM YES takes VAL from SIOL (ULONG, VAL = SVAL), RAW takes RVAL (VAL = RVAL != 0)
        ("S:bi.PROC", "1"), ("S:src", "1"), ("S:bi.SIMM", "YES"), ("S:bi.PROC", "1"), ("S:src", "0"),
        ("S:bi.PROC", "1"), ("S:src", "7.9"), ("S:bi.PROC", "1"), ("S:bi.SIMM", "RAW"), ("S:bi.PROC", "1"),
        ("S:src", "65536"), ("S:bi.PROC", "1"), ("S:src", "-1"), ("S:bi.PROC", "1"),
        ("S:bi.SIMM", "NO"), ("S:bi.PROC", "1"),
        # SIML: the mode follows a bo; a SIMM read through SIML outside the menu is a SOFT alarm
        ("S:bil.PROC", "1"), ("S:mode", "1"), ("S:src", "1"), ("S:bil.PROC", "1"), ("S:mode", "0"),
        ("S:bil.PROC", "1"), ("S:src", "1"), ("S:simm", "3"), ("S:simm", "2"), ("S:simm", "1"),
        ("S:bic.PROC", "1"),
        # mbbi: YES is VAL itself, RAW goes through the state values (and SHFT)
        ("S:mbbi.SIMM", "YES"), ("S:src", "2"), ("S:mbbi.PROC", "1"), ("S:mbbi.SIMM", "RAW"),
        ("S:mbbi.PROC", "1"), ("S:src", "4"), ("S:mbbi.PROC", "1"), ("S:src", "5"), ("S:mbbi.PROC", "1"),
        ("S:mode", "1"), ("S:src", "8"), ("S:mbbis.PROC", "1"), ("S:mbbis.SIMM", "RAW"),
        ("S:mbbis.PROC", "1"), ("S:mbbi.SIMM", "YES"), ("S:src", "20"), ("S:mbbi.PROC", "1"),
        # waveform: the SIOL source's elements and count; a constant SIOL gives no elements
        ("S:wsrc", "1", "2.5", "-3"), ("S:wf.SIMM", "YES"), ("S:wf.PROC", "1"),
        ("S:wsrc", "9", "8", "7", "6", "5", "4"), ("S:wf.PROC", "1"), ("S:wfc.SIMM", "YES"),
        ("S:wfc.PROC", "1"), ("S:wf1.PROC", "1"), ("S:simm", "1"), ("S:simm", "2"), ("S:simm", "0"),
        ("S:wf.SIMM", "NO"), ("S:wf.PROC", "1"),
    ]
    run_sequence(pair, steps)


def test_outputs_write_siol_in_simulation(pair):
    steps = [
        ("S:bo", "1"), ("S:bo.SIMM", "YES"), ("S:bo", "0"), ("S:bo", "1"), ("S:bo.SIMM", "RAW"),
        ("S:bo", "0"), ("S:bo", "1"), ("S:bo.SIMM", "NO"), ("S:bo", "0"),
        ("S:mbbo", "1"), ("S:mbbo.SIMM", "YES"), ("S:mbbo", "2"), ("S:mbbo.SIMM", "RAW"), ("S:mbbo", "b"),
        ("S:mbbo", "0"), ("S:mbbo.SIMM", "NO"), ("S:mbbo", "c"),
    ]
    run_sequence(pair, steps)


def test_sscn_swaps_the_scan_while_simulating(pair):
    for pv, value in [("S:bis.SIMM", "YES"), ("S:bis.SIMM", "YES"), ("S:bis.SIMM", "RAW"),
                      ("S:bis.SIMM", "NO")]:
        put(pair, pv, value)
        pair.assert_same("caget", "-w", "5", "S:bis.SCAN", "S:bis.SSCN", "S:bis.OLDSIMM", "S:bis.SIMM")


def test_sdly_completes_the_processing_later(pair):
    # A put-callback returns when the delayed second pass has read (or written) SIOL.
    put(pair, "S:src", "1")
    for pv in ("S:bid.PROC", "S:mbbid.PROC", "S:wfd.PROC"):
        put(pair, pv, "1", callback=True)
    put(pair, "S:wfd.SIMM", "YES")
    put(pair, "S:wsrc", "4", "3", "2", "1", "0")
    put(pair, "S:wfd.PROC", "1", callback=True)
    put(pair, "S:bod", "1", callback=True)
    put(pair, "S:mbbod", "2", callback=True)
    compare_state(pair)


def run_sequence(pair: Pair, steps: list[tuple[str, ...]]) -> None:
    pvs = [*MONITORED, "P:end"]
    monitors = {"C": start_monitors(pair.reference, pvs), "ours": start_monitors(pair.ours, pvs)}
    failures = []
    for pv, *values in steps:
        try:
            put(pair, pv, *values)
        except AssertionError as error:
            failures.append(str(error))
    put(pair, "P:end", "1")
    put(pair, "P:end.EGU", "done")
    events = {side: finish_monitors(m) for side, m in monitors.items()}
    for event_mask, ref, ours in zip(("va", "l", "a", "p"), events["C"], events["ours"], strict=True):
        if ref != ours:
            diff = "\n".join(difflib.unified_diff(ref, ours, "C softIoc", "ours", lineterm="", n=1))
            failures.append(f"camonitor -m {event_mask} events differ:\n{diff}")
    try:
        compare_state(pair)
    except AssertionError as error:
        failures.append(str(error))
    assert not failures, "\n\n".join(failures)


def timestamps(output: str) -> dict[str, str]:
    """caget -d DBR_TIME_*: each PV's Timestamp line."""
    stamps, name = {}, ""
    for line in output.splitlines():
        if line and not line.startswith(" "):
            name = line.strip()
        elif line.strip().startswith("Timestamp:"):
            stamps[name] = line.split(":", 1)[1].strip()
    return stamps


def test_device_time_in_simulation_comes_from_siol(pair):
    put(pair, "T:src", "5")
    for pv in ("T:bi", "T:mbbi", "T:wf", "T:bic", "T:real"):
        put(pair, f"{pv}.PROC", "1")
    pvs = ["T:src", "T:bi", "T:mbbi", "T:wf", "T:bic", "T:real"]
    pair.assert_same("caget", "-w", "5", "-d", "DBR_TIME_DOUBLE", *pvs)   # values, timestamps masked
    results = pair.run("caget", "-w", "5", "-d", "DBR_TIME_DOUBLE", *pvs)
    for side, result in zip(("C softIoc", "ours"), results, strict=True):
        stamps = timestamps(result.stdout)
        assert stamps["T:bi"] == stamps["T:mbbi"] == stamps["T:wf"] == stamps["T:src"], (side, stamps)
        # no SIOL source: the current time; outside simulation device time is the device's (none here)
        assert stamps["T:bic"] != "<undefined>" and stamps["T:real"] == "<undefined>", (side, stamps)
