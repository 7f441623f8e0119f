"""SCAN "Event" lists by PRIO, against the C softIoc. dbScan.c keeps one list per priority for each event,
each in PHAS order then load order, and postEvent queues the LOW, MEDIUM and HIGH lists' callbacks in that
order. softIoc's callback threads are not scheduled by priority here, so its order across priorities
varies from post to post; what holds at every post, and what this test checks on both IOCs, is each
list's own order and that each record processes once. Ours runs the lists in the order they are queued.

Every record on the event reads a shared counter through a PP link, so its VAL is its place in the pass.
"""
from __future__ import annotations

import time

import pytest
from differential import Pair, serve_both

DB = r"""
record(calc, "Q:count") { field(CALC, "VAL+1") }
record(calc, "Q:low_a") { field(SCAN, "Event") field(EVNT, "prio") field(PRIO, "LOW") field(PHAS, "0")
                          field(INPA, "Q:count PP") field(CALC, "A") }
record(calc, "Q:low_b") { field(SCAN, "Event") field(EVNT, "prio") field(PRIO, "LOW") field(PHAS, "-1")
                          field(INPA, "Q:count PP") field(CALC, "A") }
record(calc, "Q:med_a") { field(SCAN, "Event") field(EVNT, "prio") field(PRIO, "MEDIUM") field(PHAS, "5")
                          field(INPA, "Q:count PP") field(CALC, "A") }
record(calc, "Q:med_b") { field(SCAN, "Event") field(EVNT, "prio") field(PRIO, "MEDIUM") field(PHAS, "5")
                          field(INPA, "Q:count PP") field(CALC, "A") }
record(calc, "Q:high_a") { field(SCAN, "Event") field(EVNT, "prio") field(PRIO, "HIGH") field(PHAS, "2")
                           field(INPA, "Q:count PP") field(CALC, "A") }
record(calc, "Q:high_b") { field(SCAN, "Event") field(EVNT, "prio") field(PRIO, "HIGH") field(PHAS, "-3")
                           field(INPA, "Q:count PP") field(CALC, "A") }
record(event, "Q:post") { field(VAL, "prio") }
"""

MEMBERS = ["Q:low_a", "Q:low_b", "Q:med_a", "Q:med_b", "Q:high_a", "Q:high_b"]
LOW, MEDIUM, HIGH = 0, 1, 2
PRIORITY = {"Q:low_a": LOW, "Q:low_b": LOW, "Q:med_a": MEDIUM, "Q:med_b": MEDIUM, "Q:high_a": HIGH,
            "Q:high_b": HIGH}
POSTS = 8
SIDES = ("C", "ours")


def _caget(pair: Pair, side: str, *pvs: str) -> list[float]:
    result = pair.run("caget", "-w", "5", "-t", *pvs)[SIDES.index(side)]
    return [float(word) for word in result.stdout.split()]


def _places(pair: Pair, side: str, before: float) -> dict[str, float]:
    """Each member's place in the pass that the last post started, once every member has processed."""
    deadline = time.monotonic() + 10
    while True:
        places = dict(zip(MEMBERS, _caget(pair, side, *MEMBERS), strict=True))
        if min(places.values()) > before:
            return places
        assert time.monotonic() < deadline, f"{side}: the event's lists were not processed: {places}"
        time.sleep(0.02)    # polling PVs of another process: no event to wait on


def _lists(places: dict[str, float], priority: dict[str, int]) -> dict[int, list[str]]:
    """The members of each priority in the order they processed."""
    by_priority: dict[int, list[str]] = {}
    for pv in sorted(places, key=places.get):
        by_priority.setdefault(priority[pv], []).append(pv)
    return by_priority


@pytest.fixture(scope="module")
def pair(tmp_path_factory, repeater_port):
    with serve_both(DB, tmp_path_factory.mktemp("prio"), repeater_port) as both:
        yield both


def test_each_priority_list_keeps_phas_order(pair):
    expected = {LOW: ["Q:low_b", "Q:low_a"], MEDIUM: ["Q:med_a", "Q:med_b"], HIGH: ["Q:high_b", "Q:high_a"]}
    before = dict.fromkeys(SIDES, 0.0)
    for _ in range(POSTS):
        pair.assert_same("caput", "-w", "5", "Q:post.PROC", "1")
        for side in SIDES:
            places = _places(pair, side, before[side])
            # one processing each: six consecutive places
            assert sorted(places.values()) == [before[side] + i for i in range(1, 7)], (side, places)
            assert _lists(places, PRIORITY) == expected, f"{side}: {places}"
            if side == "ours":
                # ours: the lists in the order postEvent queues them
                assert sorted(places, key=places.get) == [*expected[LOW], *expected[MEDIUM], *expected[HIGH]]
            before[side] = max(places.values())


def test_prio_put_moves_a_record_to_the_end_of_its_new_list(pair):
    # PRIO is SPC_SCAN: scanDelete from the HIGH list, scanAdd to the LOW one, after its PHAS equals
    pair.assert_same("caput", "-w", "5", "Q:high_a.PHAS", "0")
    pair.assert_same("caput", "-w", "5", "Q:high_a.PRIO", "LOW")
    before = {side: _caget(pair, side, "Q:count")[0] for side in SIDES}
    pair.assert_same("caput", "-w", "5", "Q:post.PROC", "1")
    moved = {**PRIORITY, "Q:high_a": LOW}
    for side in SIDES:
        places = _places(pair, side, before[side])
        expected = {LOW: ["Q:low_b", "Q:low_a", "Q:high_a"], MEDIUM: ["Q:med_a", "Q:med_b"],
                    HIGH: ["Q:high_b"]}
        assert _lists(places, moved) == expected, f"{side}: {places}"
