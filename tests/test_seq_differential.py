"""The seq record against the C softIoc: link groups in order with their delays, DOLn read at each group,
SELM All/Specified/Mask with SELN, SELL, OFFS and SHFT, the record active until the last group is done
(caput -c waits), and the DLYn/DOn metadata."""
from __future__ import annotations

import difflib

import pytest
import trio
import trio.testing
from dboracle import load_db
from differential import Pair, serve_both
from test_calcout_differential import assert_same_field_tables
from test_processing_differential import MASKS, finish_monitors, start_monitors

from caproto.dbr import ChannelType, encode_payload

DB = r"""
record(ao, "S:src") { field(VAL, "1.5") field(PREC, "3") field(EGU, "mm") field(HOPR, "9") field(LOPR, "-9")
                      field(HIGH, "7") field(HSV, "MINOR") }
record(ao, "S:sel") { field(VAL, "2") }
record(seq, "S:all") {
    field(DOL0, "S:src") field(LNK0, "S:t0 PP") field(DLY1, "0.1") field(DOL1, "5") field(LNK1, "S:t1 PP")
    field(DOL2, "S:src") field(LNK2, "S:t2.HIGH") field(DLYF, "0.05") field(DOLF, "S:src")
    field(LNKF, "S:tf PP") field(FLNK, "S:after") field(PREC, "2")
}
record(seq, "S:spec") { field(SELM, "Specified") field(SELL, "S:sel") field(OFFS, "-1")
                        field(DOL0, "10") field(LNK0, "S:t0 PP") field(DOL1, "11") field(LNK1, "S:t1 PP")
                        field(DOL2, "12") field(LNK2, "S:t3 PP") }
record(seq, "S:mask") { field(SELM, "Mask") field(SELN, "6") field(SHFT, "1") field(DOL0, "20")
                        field(LNK0, "S:t0 PP") field(DOL1, "21") field(LNK1, "S:t1 PP") field(DOL2, "22")
                        field(LNK2, "S:t3 PP") }
record(seq, "S:only") { field(SELM, "Specified") field(SELN, "4") field(DOL4, "S:src") field(DO3, "8") }
record(seq, "S:slow") { field(DLY0, "1.5") field(DOL0, "S:src") field(LNK0, "S:t3 PP") }
record(ao, "S:t0") { field(PREC, "2") }
record(ao, "S:t1") { field(PREC, "2") }
record(ao, "S:t2") { field(PREC, "2") }
record(ao, "S:t3") { field(PREC, "2") }
record(ao, "S:tf") { field(PREC, "2") }
record(calc, "S:after") { field(CALC, "VAL+1") }
record(ai, "P:end") { field(HIGH, "0.5") field(HSV, "MINOR") field(VAL, "0") field(PINI, "YES") }
"""

READ = ["S:all", "S:all.DO0", "S:all.DO1", "S:all.DO2", "S:all.DOF", "S:t0", "S:t1", "S:t2", "S:t2.HIGH",
        "S:t3", "S:tf", "S:after", "S:spec", "S:spec.SELN", "S:mask", "S:mask.SELN", "S:only", "S:only.DO4",
        "S:only.SELN"]
META = ["S:all.DLY0", "S:all.DLY1", "S:all.DLYF", "S:all.DO0", "S:all.DO1", "S:all.DO2", "S:all.DO3",
        "S:all", "S:all.OFFS", "S:only.DO4", "S:only.DO5"]
MONITORED = ["S:all", "S:all.DO0", "S:all.DO2", "S:spec.SELN", "S:t0", "S:t1", "S:t3", "P:end"]


def puts() -> list[tuple[str, str]]:
    # caput -c: each put returns once the sequence is done, so the next one finds the record idle
    steps = [("S:all.PROC", "1"), ("S:src", "2.25"), ("S:all.PROC", "1"), ("S:all.PROC", "1")]
    for sel in ("0", "1", "2", "3", "4", "17"):
        steps += [("S:sel", sel), ("S:spec.PROC", "1")]
    for seln, shft in (("6", "1"), ("1", "0"), ("1", "-2"), ("3", "16"), ("12", "2")):
        steps += [("S:mask.SELN", seln), ("S:mask.SHFT", shft), ("S:mask.PROC", "1")]
    steps += [("S:only.PROC", "1"), ("S:src", "8"), ("S:only.PROC", "1"), ("S:all.SELM", "Mask"),
              ("S:all.SELN", "32769"), ("S:all", "1")]
    return steps


def run_puts(pair: Pair) -> list[str]:
    failures = []
    for pv, value in puts():
        try:
            pair.assert_same("caput", "-c", "-w", "5", pv, value)
        except AssertionError as error:
            failures.append(str(error))
    return failures


def compare_reads(pair: Pair) -> list[str]:
    failures = []
    for dbr, pvs in (("DBR_TIME_DOUBLE", READ), ("DBR_CTRL_DOUBLE", META),
                     ("DBR_STS_STRING", ["S:all.SELM"])):
        try:
            pair.assert_same("caget", "-w", "5", "-d", dbr, *pvs)
        except AssertionError as error:
            failures.append(str(error))
    return failures


def test_seq_matches_softioc(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        failures = compare_reads(pair)
        monitors = {"C": start_monitors(pair.reference, MONITORED),
                    "ours": start_monitors(pair.ours, MONITORED)}
        failures += run_puts(pair)
        pair.assert_same("caput", "-w", "5", "P:end", "1")
        pair.assert_same("caput", "-w", "5", "P:end.EGU", "done")
        events = {side: finish_monitors(m) for side, m in monitors.items()}
        for event_mask, ref, ours in zip(MASKS, events["C"], events["ours"], strict=True):
            if ref != ours:
                diff = "\n".join(difflib.unified_diff(ref, ours, "C softIoc", "ours", lineterm="", n=1))
                failures.append(f"camonitor -m {event_mask} events differ:\n{diff}")
        failures += compare_reads(pair)
        assert not failures, "\n\n".join(failures)


def test_seq_is_active_until_its_delayed_group_ran(tmp_path, repeater_port):
    with serve_both(DB, tmp_path, repeater_port) as pair:
        # DLY0 is 1.5 s: both IOCs are read well inside the delay
        pair.assert_same("caput", "-w", "5", "S:slow.PROC", "1")
        pair.assert_same("caget", "-w", "5", "S:slow.PACT", "S:t3")
        pair.assert_same("caput", "-c", "-w", "5", "S:slow.PROC", "1")
        pair.assert_same("caget", "-w", "5", "S:slow.PACT", "S:t3", "S:slow.DO0")


def test_seq_field_table_and_metadata_match_softioc(tmp_path, repeater_port):
    # S:all's DOL0 and DOL2 read S:src: DO1, LNK1, DO3 and LNK3 report S:src's metadata
    with serve_both(DB, tmp_path, repeater_port) as pair:
        assert_same_field_tables(pair, {"S:all": "seq", "S:spec": "seq"})


# --- our side alone, on a virtual clock ---------------------------------------------------------------------

@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0)


async def test_groups_run_in_order_after_their_delays(tmp_path, clock):
    db = load_db(DB, tmp_path)
    seq, t0, t1, tf = (db.records[name] for name in ("S:all", "S:t0", "S:t1", "S:tf"))
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        chan = db.lookup("S:all.PROC")
        completion = chan.write(ChannelType.CHAR, 1, encode_payload(ChannelType.CHAR, [1]))
        assert completion is not None and seq.PACT == 1
        assert t0.VAL == 0.0                # even group 0 (no delay) runs from a callback
        await trio.sleep(0.01)
        assert (t0.VAL, t1.VAL) == (1.5, 0.0)
        await trio.sleep(0.1)
        assert (t1.VAL, tf.VAL) == (5.0, 0.0)
        with trio.fail_after(0.06):
            await completion.wait()
        assert (tf.VAL, seq.PACT, db.records["S:after"].VAL) == (1.5, 0, 1.0)
        nursery.cancel_scope.cancel()
