"""The put-sequence comparison shared by the differential tests of record types: reads, then puts while
camonitor watches with each event mask, then the reads again, against softIoc and ours; every difference
reported at once."""
from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator, Sequence

from differential import Pair
from test_processing_differential import MASKS, finish_monitors, start_monitors


@contextlib.contextmanager
def watched(pair: Pair, pvs: list[str]) -> Iterator[dict[str, list]]:
    """camonitor of ``pvs`` with each event mask against both IOCs; every camonitor is stopped on the way
    out, also when the test fails before finish_monitors (which would leave them running)."""
    monitors: dict[str, list] = {}
    try:
        for side, env in (("C", pair.reference), ("ours", pair.ours)):
            monitors[side] = start_monitors(env, pvs)
        yield monitors
    finally:
        for monitor in (m for side in monitors.values() for m in side):
            if monitor.proc.poll() is None:
                monitor.proc.terminate()
                monitor.proc.wait(timeout=5)


def event_differences(monitors: dict[str, list]) -> list[str]:
    """finish_monitors on both sides: one failure message per event mask whose events differ."""
    events = {side: finish_monitors(m) for side, m in monitors.items()}
    failures = []
    for event_mask, ref, ours in zip(MASKS, events["C"], events["ours"], strict=True):
        if ref != ours:
            diff = "\n".join(difflib.unified_diff(ref, ours, "C softIoc", "ours", lineterm="", n=1))
            failures.append(f"camonitor -m {event_mask} events differ:\n{diff}")
    return failures


def differences(pair: Pair, commands: Sequence[Sequence[str]]) -> list[str]:
    """``pair.assert_same(*command)`` for each command; the failure messages."""
    failures = []
    for command in commands:
        try:
            pair.assert_same(*command)
        except AssertionError as error:
            failures.append(str(error))
    return failures


def caget(dbr: str, pvs: Sequence[str]) -> tuple[str, ...]:
    return ("caget", "-w", "5", "-d", dbr, *pvs)


def assert_put_sequence_matches(pair: Pair, reads: Sequence[Sequence[str]], monitored: list[str],
                                puts: Sequence[Sequence[str]]) -> None:
    """``reads`` compared, then every put of ``puts`` under camonitor of ``monitored`` (which must include
    P:end, an ai whose VAL and EGU puts mark the end of the events), then ``reads`` again."""
    failures = differences(pair, reads)
    with watched(pair, monitored) as monitors:
        failures += differences(pair, [("caput", "-w", "5", *put) for put in puts])
        pair.assert_same("caput", "-w", "5", "P:end", "1")
        pair.assert_same("caput", "-w", "5", "P:end.EGU", "done")
        failures += event_differences(monitors)
    failures += differences(pair, reads)
    assert not failures, "\n\n".join(failures)
