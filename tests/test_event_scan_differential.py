"""SCAN "Event" and the event record against the C softIoc: named and numbered events (EVNT "3.7" is
event 3, "0" none), an event record posting the event its VAL names (put, read through INP or SIOL),
EVNT/SCAN/PHAS puts moving a record between lists, PINI posts dropped before the scans run. The same puts
go to both IOCs; caget and camonitor outputs are compared (timestamps masked).

Event-scanned records process after the post, outside the put (softIoc: in a callback thread). Each step
that posts ends by posting "flush" and waiting until its list has processed: posts are handled in order,
so every earlier one has been too.
"""
from __future__ import annotations

import difflib
import time

import pytest
from differential import Pair, serve_both
from test_int64_lsi_differential import every_field_matches_softioc
from test_processing_differential import finish_monitors, start_monitors

DB = r"""
record(event, "E:ev") { field(VAL, "myev") }
record(event, "E:num") { field(VAL, "3") }
record(event, "E:pini") { field(VAL, "myev") field(PINI, "YES") }
record(event, "E:inp") { field(INP, "E:name") }
record(stringout, "E:name") { field(VAL, "other") }
record(event, "E:sim") { field(SIOL, "E:name") field(SIMM, "YES") field(SIMS, "MINOR") field(VAL, "myev") }
record(event, "E:siml") { field(SIML, "E:mode") field(SIOL, "E:name") field(INP, "E:name2") }
record(stringout, "E:name2") { field(VAL, "myev") }
# a SIMM outside the menu fails the processing, and softIoc a put that processed it: reached by FLNK
record(longout, "E:mode") { field(FLNK, "E:siml") }
record(event, "E:flush") { field(VAL, "flush") }
record(calc, "E:flushed") { field(SCAN, "Event") field(EVNT, "flush") field(CALC, "VAL+1") }
record(calc, "E:c1") { field(SCAN, "Event") field(EVNT, "myev") field(CALC, "VAL+1") field(FLNK, "E:fl") }
record(calc, "E:fl") { field(CALC, "VAL+1") }
record(calc, "E:c2") { field(SCAN, "Event") field(EVNT, "3.7") field(CALC, "VAL+1") }
record(calc, "E:c3") { field(SCAN, "Event") field(EVNT, " 3 ") field(CALC, "VAL+1") }
record(calc, "E:hex") { field(SCAN, "Event") field(EVNT, "0x3") field(CALC, "VAL+1") }
record(calc, "E:c0") { field(SCAN, "Event") field(EVNT, "0") field(CALC, "VAL+1") }
record(calc, "E:c256") { field(SCAN, "Event") field(EVNT, "256") field(CALC, "VAL+1") }
record(calc, "E:c4") { field(SCAN, "Event") field(EVNT, "other") field(CALC, "VAL+1") }
record(calc, "E:pass") { field(EVNT, "myev") field(CALC, "VAL+1") }
# PHAS orders a list: E:second reads E:first, which processes before it whatever the load order
record(calc, "E:second") { field(SCAN, "Event") field(EVNT, "order") field(PHAS, "2") field(INPA, "E:first")
                           field(CALC, "A*10") }
record(calc, "E:first") { field(SCAN, "Event") field(EVNT, "order") field(PHAS, "1") field(CALC, "VAL+1") }
record(event, "E:order") { field(VAL, "order") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

COUNTERS = ["E:c1", "E:fl", "E:c2", "E:c3", "E:hex", "E:c0", "E:c256", "E:c4", "E:pass", "E:first",
            "E:second"]
EVENTS = ["E:ev", "E:num", "E:pini", "E:inp", "E:sim", "E:siml"]
FIELDS = [f"{pv}.{field}" for pv in EVENTS for field in ("STAT", "SEVR", "UDF", "SVAL", "SIMM")]
FIELDS += [f"{pv}.{field}" for pv in ("E:c1", "E:c2") for field in ("SCAN", "EVNT", "PHAS")]


@pytest.fixture
def pair(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        yield pair


def flushed_count(pair: Pair) -> tuple[str, str]:
    ref, ours = pair.run("caget", "-w", "5", "-t", "E:flushed")
    return ref.stdout.strip(), ours.stdout.strip()


def flush(pair: Pair) -> None:
    """Post "flush" on both and wait until E:flushed has processed for it on both."""
    before = flushed_count(pair)
    pair.assert_same("caput", "-w", "5", "E:flush.PROC", "1")
    deadline = time.monotonic() + 10
    while True:
        now = flushed_count(pair)
        if all(float(n) == float(b) + 1 for n, b in zip(now, before, strict=True)):
            return
        assert time.monotonic() < deadline, f"the flush event was not processed: {before} -> {now}"
        time.sleep(0.02)    # polling a PV of another process: no event to wait on


def compare(pair: Pair) -> None:
    pair.assert_same("caget", "-w", "5", *COUNTERS)
    pair.assert_same("caget", "-w", "5", "-d", "DBR_TIME_STRING", *EVENTS)
    pair.assert_same("caget", "-w", "5", *FIELDS)


def by_pv(lines: list[str]) -> list[str]:
    return sorted(lines, key=lambda line: line.split(" ", 1)[0])     # stable: keeps each PV's order


def run(pair: Pair, steps: list[tuple[str, str]], monitored: list[str]) -> None:
    pvs = [*monitored, "P:end"]
    monitors = {"C": start_monitors(pair.reference, pvs), "ours": start_monitors(pair.ours, pvs)}
    failures = []
    for pv, value in steps:
        try:
            pair.assert_same("caput", "-w", "5", pv, value)
            flush(pair)
            pair.assert_same("caget", "-w", "5", *COUNTERS)
        except AssertionError as error:
            failures.append(f"after caput {pv} {value}: {error}")
    try:
        compare(pair)
    except AssertionError as error:
        failures.append(str(error))
    pair.assert_same("caput", "-w", "5", "P:end", "1")
    pair.assert_same("caput", "-w", "5", "P:end.EGU", "done")
    # Each PV's updates in order; how two records' updates interleave is a race in softIoc (the event
    # record posts its event, which a callback thread may process, before it posts its own VAL).
    events = {side: [by_pv(lines) for lines in finish_monitors(m)] for side, m in monitors.items()}
    for event_mask, ref, ours in zip(("va", "l", "a", "p"), events["C"], events["ours"], strict=True):
        if ref != ours:
            diff = "\n".join(difflib.unified_diff(ref, ours, "C softIoc", "ours", lineterm="", n=1))
            failures.append(f"camonitor -m {event_mask} events differ:\n{diff}")
    assert not failures, "\n\n".join(failures)


def test_event_state_after_init_matches_softioc(pair):
    # E:pini processed at init, but its post came before the scans ran: E:c1 has not processed
    pair.assert_same("cainfo", "E:ev", "E:ev.EVNT", "E:ev.EPVT")
    compare(pair)


def test_events_process_their_lists(pair):
    steps = [
        ("E:ev.PROC", "1"), ("E:num.PROC", "1"), ("E:inp.PROC", "1"), ("E:order.PROC", "1"),
        ("E:order.PROC", "1"),
        # a new VAL names another event without processing; the next processing posts it
        ("E:ev", "3"), ("E:ev.PROC", "1"), ("E:ev", " other "), ("E:ev.PROC", "1"), ("E:ev", "0.5"),
        ("E:ev.PROC", "1"), ("E:ev", "myev"),
        # INP and SIOL read the event's name
        ("E:name", "myev"), ("E:inp.PROC", "1"), ("E:name", "3"), ("E:sim.PROC", "1"),
        ("E:siml.PROC", "1"), ("E:name", "other"), ("E:mode", "1"), ("E:mode", "2"), ("E:mode", "0"),
    ]
    run(pair, steps, ["E:ev", "E:inp", "E:sim", "E:siml", "E:c1", "E:c2", "E:c4"])


def test_scan_and_evnt_puts_move_records_between_lists(pair):
    steps = [
        ("E:c1.EVNT", "3"), ("E:num.PROC", "1"), ("E:ev.PROC", "1"), ("E:c1.EVNT", "myev"),
        ("E:ev.PROC", "1"), ("E:c1.SCAN", "Passive"), ("E:ev.PROC", "1"), ("E:pass.SCAN", "Event"),
        ("E:ev.PROC", "1"), ("E:c1.SCAN", "Event"), ("E:ev.PROC", "1"), ("E:c2.EVNT", ""),
        ("E:num.PROC", "1"), ("E:c2.EVNT", "255.99"), ("E:num", "255"), ("E:num.PROC", "1"),
        ("E:first.PHAS", "3"), ("E:order.PROC", "1"),
    ]
    run(pair, steps, ["E:c1", "E:c2", "E:pass", "E:c1.EVNT", "E:c1.SCAN"])


def test_every_event_record_field_reads_like_softioc(ca_env, tmp_path):
    # text that reads as a number: a string read as DOUBLE fails otherwise, and caget waits out -w
    db = 'record(event, "event") { field(VAL, "7") field(SIOL, "5") field(DESC, "1.5") }\n'
    every_field_matches_softioc(db, ["event"], ca_env, tmp_path)
