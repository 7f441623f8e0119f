"""Simulation mode of bi, bo, mbbi, mbbo, waveform, ai, ao, longin and longout against the C softIoc:
SIMM put directly or read through SIML, SIOL read (inputs) or written (outputs), SIMS as the SIMM alarm's
severity, SDLY's delayed completion, SSCN's scan swap, a constant SIML/SIOL at init, device time. The same
puts go to both IOCs and the real caget/caput/camonitor outputs are compared (timestamps masked)."""
from __future__ import annotations

import difflib
from collections.abc import Callable

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
record(bi, "S:bis") { field(SIOL, "S:src") field(SSCN, "Event") }
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
# ai, ao, longin, longout: the same SIMM/SIML/SIOL paths, plus RAW's conversions through RVAL
record(ai, "A:ai") {
    field(INP, "S:real") field(SIOL, "S:src") field(SIMS, "MINOR") field(PREC, "2") field(LINR, "SLOPE")
    field(ESLO, "0.5") field(EOFF, "1") field(HIGH, "4") field(HSV, "MAJOR")
}
record(ai, "A:ail") { field(SIML, "S:mode") field(SIOL, "S:src") field(SIMS, "MAJOR") field(INP, "S:real") }
record(ai, "A:aic") { field(SIML, "2") field(SIOL, "2.5") field(SIMS, "INVALID") field(ASLO, "3") }
record(ai, "A:ais") { field(SIOL, "S:src") field(SSCN, "Event") }
record(ai, "A:aid") { field(SIOL, "S:src") field(SDLY, "0.2") field(SIMM, "YES") field(SIMS, "MINOR") }
record(ao, "A:ao") {
    field(OUT, "A:ao_real PP") field(SIOL, "A:ao_sim PP") field(SIMS, "MINOR") field(LINR, "SLOPE")
    field(ESLO, "0.25") field(PREC, "1") field(DRVH, "100") field(DRVL, "-100")
}
record(ao, "A:aol") { field(SIML, "S:mode") field(SIOL, "A:ao_sim PP") field(OUT, "A:ao_real PP") }
record(ao, "A:aoc") { field(SIML, "1") field(SIOL, "A:ao_sim PP") field(SIMS, "MAJOR") field(DOL, "6") }
record(ao, "A:aod") { field(SIOL, "A:ao_sim PP") field(SDLY, "0.2") field(SIMM, "YES") field(OROC, "2") }
record(ao, "A:aos") { field(SIOL, "A:ao_sim PP") field(SSCN, "Event") }
# no links at all: processing still updates OLDSIMM. (Every SSCN here is Event, so that no periodic scan
# races the puts while a record simulates.)
record(ai, "A:aisn") { field(SSCN, "Event") }
record(ao, "A:aosn") { field(SSCN, "Event") }
record(ai, "A:ao_sim") { field(PREC, "2") }
record(ai, "A:ao_real") { field(PREC, "2") }
record(longin, "A:li") {
    field(INP, "S:real") field(SIOL, "S:src") field(SIMS, "MINOR") field(HIGH, "5") field(HSV, "MINOR")
}
record(longin, "A:lil") { field(SIML, "S:mode") field(SIOL, "S:src") field(INP, "S:real") }
record(longin, "A:lic") { field(SIML, "1") field(SIOL, "7") field(SIMS, "MAJOR") }
record(longin, "A:lis") { field(SIOL, "S:src") field(SSCN, "Event") }
record(longin, "A:lid") { field(SIOL, "S:src") field(SDLY, "0.2") field(SIMM, "YES") }
record(longout, "A:lo") {
    field(OUT, "A:lo_real PP") field(SIOL, "A:lo_sim PP") field(SIMS, "MINOR") field(OOPT, "On Change")
}
record(longout, "A:lol") { field(SIML, "S:mode") field(SIOL, "A:lo_sim PP") field(OUT, "A:lo_real PP") }
record(longout, "A:loc") { field(SIML, "1") field(SIOL, "A:lo_sim PP") field(DOL, "9") }
record(longout, "A:lod") { field(SIOL, "A:lo_sim PP") field(SDLY, "0.2") field(SIMM, "YES") }
record(longout, "A:los") { field(SIOL, "A:lo_sim PP") field(SSCN, "Event") }
record(longin, "A:lo_sim") { }
record(longin, "A:lo_real") { }
# SIMM read through SIML outside each record's menu (2 is RAW for ai/ao, past YES for longin/longout)
record(longout, "A:simm") { field(FLNK, "A:aibad") }
record(ai, "A:aibad") {
    field(SIML, "A:simm") field(SIOL, "S:src") field(SIMS, "MINOR") field(FLNK, "A:aobad")
}
record(ao, "A:aobad") { field(SIML, "A:simm") field(SIOL, "A:ao_sim") field(FLNK, "A:libad") }
record(longin, "A:libad") { field(SIML, "A:simm") field(SIOL, "S:src") field(FLNK, "A:lobad") }
record(longout, "A:lobad") { field(SIML, "A:simm") field(SIOL, "A:lo_sim") field(SIMS, "MAJOR") }
record(ai, "T:ai") { field(SIOL, "T:src") field(TSE, "-2") field(SIMM, "YES") }
record(longin, "T:li") { field(SIOL, "T:src") field(TSE, "-2") field(SIMM, "YES") }
record(ai, "T:aic") { field(TSE, "-2") field(SIMM, "RAW") }
record(ao, "T:ao") { field(TSE, "-2") field(SIMM, "YES") field(SIOL, "T:src") }
record(longout, "T:lo") { field(TSE, "-2") field(SIMM, "YES") }
record(ao, "T:aoreal") { field(TSE, "-2") }
# out of simulation, the soft devices' device time: INP's source's timestamp
record(ai, "T:aiinp") { field(INP, "T:src") field(TSE, "-2") }
record(ai, "T:airaw") { field(INP, "T:src") field(TSE, "-2") field(DTYP, "Raw Soft Channel") }
record(longin, "T:liinp") { field(INP, "T:src") field(TSE, "-2") }
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

A_MONITORED = ["A:ai", "A:ail", "A:ao", "A:aol", "A:ao_sim", "A:ao_real", "A:li", "A:lil", "A:lo", "A:lol",
               "A:lo_sim", "A:lo_real", "A:aibad", "A:aobad", "A:libad", "A:lobad"]
A_SCALARS = [*A_MONITORED, "A:aic", "A:ais", "A:aid", "A:aoc", "A:aod", "A:aos", "A:lic", "A:lis", "A:lid",
             "A:loc", "A:lod", "A:los"]
_TARGETS = ("A:ao_sim", "A:ao_real", "A:lo_sim", "A:lo_real")
A_FIELDS = [f"{pv}.{field}" for pv in A_SCALARS if pv not in _TARGETS
            for field in ("SIMM", "OLDSIMM", "SCAN", "SSCN", "STAT", "SEVR", "UDF", "PACT")]
A_FIELDS += [f"{pv}.SVAL" for pv in ("A:ai", "A:ail", "A:aic", "A:aid", "A:aibad", "A:li", "A:lil", "A:lic",
                                     "A:lid")]
A_FIELDS += [f"{pv}.{field}" for pv in ("A:ai", "A:aic", "A:ao", "A:aoc", "A:aod")
             for field in ("RVAL", "ORAW")]
A_FIELDS += [f"{pv}.{field}" for pv in ("A:ao", "A:aod", "A:aoc") for field in ("OVAL", "PVAL", "OMOD")]
A_FIELDS += [f"{pv}.PVAL" for pv in ("A:lo", "A:lol", "A:loc", "A:lod")]


def compare_analog_state(pair: Pair) -> None:
    pair.assert_same("caget", "-w", "5", "-d", "DBR_TIME_DOUBLE", *A_SCALARS)
    pair.assert_same("caget", "-w", "5", *A_FIELDS)


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
    # S:bic's (and A:aic's, A:aoc's, ...) constant SIML puts it in simulation at init; nothing has
    # processed it yet.
    compare_state(pair)
    compare_analog_state(pair)


def test_analog_and_long_inputs_read_siol_in_simulation(pair):
    steps = [
        # ai: YES takes VAL from SIOL, RAW takes RVAL = floor(SVAL) through the conversion
        ("A:ai.PROC", "1"), ("S:src", "3.7"), ("A:ai.SIMM", "YES"), ("A:ai.PROC", "1"), ("S:src", "5"),
        ("A:ai.PROC", "1"), ("A:ai.SIMM", "RAW"), ("A:ai.PROC", "1"), ("S:src", "-2.5"), ("A:ai.PROC", "1"),
        ("S:src", "1e12"), ("A:ai.PROC", "1"), ("S:src", "nan"), ("A:ai.PROC", "1"),
        ("A:ai.SIMM", "NO"), ("A:ai.PROC", "1"),
        # SIML switches the mode at each processing; a constant SIML did so at init
        ("S:src", "8.5"), ("A:ail.PROC", "1"), ("S:mode", "1"), ("A:ail.PROC", "1"), ("S:mode", "0"),
        ("A:ail.PROC", "1"), ("A:aic.PROC", "1"), ("A:aic.SVAL", "4.5"), ("A:aic.PROC", "1"),
        # longin: YES only; SIOL's value as a LONG
        ("S:src", "6.9"), ("A:li.PROC", "1"), ("A:li.SIMM", "YES"), ("A:li.PROC", "1"), ("S:src", "-3"),
        ("A:li.PROC", "1"), ("A:li.SIMM", "NO"), ("A:li.PROC", "1"), ("S:mode", "1"), ("A:lil.PROC", "1"),
        ("S:mode", "0"), ("A:lil.PROC", "1"), ("A:lic.PROC", "1"),
        # SIMM through SIML outside the menus: SOFT/INVALID, nothing read or written
        ("A:simm", "2"), ("A:simm", "3"), ("A:simm", "1"), ("A:simm", "0"),
    ]
    run_sequence(pair, steps, A_MONITORED, compare_analog_state)


def test_analog_and_long_outputs_write_siol_in_simulation(pair):
    steps = [
        # ao: YES writes OVAL to SIOL, RAW writes RVAL (the SLOPE conversion's raw value)
        ("A:ao", "1.5"), ("A:ao.SIMM", "YES"), ("A:ao", "2.5"), ("A:ao", "250"), ("A:ao.SIMM", "RAW"),
        ("A:ao", "3"), ("A:ao", "-7.3"), ("A:ao.SIMM", "NO"), ("A:ao", "4"),
        # SIML switches SIMM before the write; constant SIML and DOL at init
        ("A:aol", "1"), ("S:mode", "1"), ("A:aol", "2"), ("S:mode", "0"), ("A:aol", "3"), ("A:aoc.PROC", "1"),
        ("A:aoc", "11"),
        # longout: On Change compares with PVAL, which the simulated write leaves alone
        ("A:lo", "1"), ("A:lo", "1"), ("A:lo.SIMM", "YES"), ("A:lo", "2"), ("A:lo", "2"), ("A:lo.SIMM", "NO"),
        ("A:lo", "2"), ("A:lo", "1"), ("S:mode", "1"), ("A:lol", "5"), ("S:mode", "0"), ("A:lol", "6"),
        ("A:loc.PROC", "1"),
    ]
    run_sequence(pair, steps, A_MONITORED, compare_analog_state)


def test_analog_and_long_sscn_swaps_the_scan(pair):
    pvs = ["A:ais", "A:aos", "A:lis", "A:los", "A:aisn", "A:aosn"]
    fields = [f"{pv}.{field}" for pv in pvs for field in ("SCAN", "SSCN", "OLDSIMM", "SIMM")]
    for value in ("YES", "YES", "NO", "YES", "NO"):
        for pv in pvs:
            put(pair, f"{pv}.SIMM", value)
        pair.assert_same("caget", "-w", "5", *fields)
    for pv in pvs:
        put(pair, f"{pv}.PROC", "1")
    pair.assert_same("caget", "-w", "5", *fields)


def test_sscn_swap_posts_no_scan_event(pair):
    pvs = ["A:ais.SCAN", "P:end"]
    monitors = {"C": start_monitors(pair.reference, pvs), "ours": start_monitors(pair.ours, pvs)}
    put(pair, "A:ais.SIMM", "YES")
    put(pair, "A:ais.SIMM", "NO")
    put(pair, "P:end", "1")
    put(pair, "P:end.EGU", "done")
    events = {side: finish_monitors(m) for side, m in monitors.items()}
    assert events["ours"] == events["C"]


def test_analog_and_long_sdly_completes_later(pair):
    put(pair, "S:src", "2.5")
    put(pair, "A:aid.PROC", "1", callback=True)
    put(pair, "A:lid.PROC", "1", callback=True)
    put(pair, "A:aod", "7", callback=True)
    put(pair, "A:lod", "-4", callback=True)
    compare_analog_state(pair)


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


def run_sequence(pair: Pair, steps: list[tuple[str, ...]], monitored: list[str] = MONITORED,
                 check: Callable[[Pair], None] = compare_state) -> None:
    pvs = [*monitored, "P:end"]
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
        check(pair)
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
    pvs = ["T:src", "T:bi", "T:mbbi", "T:wf", "T:bic", "T:real", "T:ai", "T:li", "T:aic", "T:ao", "T:lo",
           "T:aoreal", "T:aiinp", "T:airaw", "T:liinp"]
    for pv in pvs[1:]:
        put(pair, f"{pv}.PROC", "1")
    pair.assert_same("caget", "-w", "5", "-d", "DBR_TIME_DOUBLE", *pvs)   # values, timestamps masked
    results = pair.run("caget", "-w", "5", "-d", "DBR_TIME_DOUBLE", *pvs)
    for side, result in zip(("C softIoc", "ours"), results, strict=True):
        stamps = timestamps(result.stdout)
        from_src = ("T:bi", "T:mbbi", "T:wf", "T:ai", "T:li", "T:aiinp", "T:airaw", "T:liinp")
        assert {stamps[pv] for pv in from_src} == {stamps["T:src"]}, (side, stamps)
        # no SIOL source (outputs never take theirs): the current time; outside simulation device time
        # is the device's (none without INP)
        assert all(stamps[pv] != "<undefined>" for pv in ("T:bic", "T:aic", "T:ao", "T:lo")), (side, stamps)
        assert stamps["T:ao"] != stamps["T:src"], (side, stamps)
        assert stamps["T:real"] == stamps["T:aoreal"] == "<undefined>", (side, stamps)
