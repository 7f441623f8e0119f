"""Event scan lists: event names, list membership as SCAN/EVNT/PHAS change, posts processed once each,
in order, after the poster's processing, and dropped before the scans run (PINI)."""
from __future__ import annotations

import pytest
import trio
import trio.testing

from caproto.dbr import ChannelType, encode_payload
from ioc.config import load_config
from ioc.database import Database
from ioc.scan import event_name

YAML = """
records:
  - {name: ev, type: event, fields: {VAL: go}}
  - {name: ev3, type: event, fields: {VAL: "3"}}
  - {name: early, type: event, fields: {VAL: go, PINI: YES}}
  - {name: a, type: calc, fields: {SCAN: Event, EVNT: go, CALC: "VAL+1", PHAS: 2}}
  - {name: b, type: calc, fields: {SCAN: Event, EVNT: go, CALC: "VAL+1", PHAS: 1}}
  - {name: n, type: calc, fields: {SCAN: Event, EVNT: "3.9", CALC: "VAL+1"}}
  - {name: idle, type: calc, fields: {EVNT: go, CALC: "VAL+1"}}
  - {name: mover, type: calc, fields: {SCAN: Event, EVNT: go, CALC: "VAL+1", PHAS: 0}}
"""


def build(tmp_path) -> Database:
    path = tmp_path / "events.yaml"
    path.write_text(YAML)
    return Database.from_config(load_config(path))


def put_string(db: Database, pv: str, text: str) -> None:
    db.lookup(pv).write(ChannelType.STRING, 1, encode_payload(ChannelType.STRING, [text]))


@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.mark.parametrize("evnt, name", [
    ("go", "go"), ("  go  ", "go"), ("", None), ("   ", None), ("0", None), ("0.99", None), ("1", "1"),
    ("3.7", "3"), (" 3 ", "3"), ("0x3", "3"), ("255.5", "255"), ("256", "256"), ("-1", "-1"),
    ("-0.5", "-0.5"), ("nan", "nan"), ("inf", "inf"), ("3abc", "3abc"), ("1e-400", "1e-400"),
])
def test_event_names_as_epics_reads_them(evnt, name):
    assert event_name(evnt) == name


def test_records_join_their_events_list_in_phas_order(tmp_path):
    db = build(tmp_path)
    recs = db.records
    assert db._scan.event_members("go") == [recs["mover"], recs["b"], recs["a"]]
    assert db._scan.event_members("3") == [recs["n"]]


def test_evnt_scan_and_phas_puts_move_a_record(tmp_path):
    db = build(tmp_path)
    recs, lists = db.records, db._scan
    put_string(db, "mover.EVNT", "3")
    assert recs["mover"] not in lists.event_members("go")
    assert lists.event_members("3") == [recs["n"], recs["mover"]]
    put_string(db, "mover.SCAN", "Passive")
    assert lists.event_members("3") == [recs["n"]]
    put_string(db, "idle.SCAN", "Event")
    put_string(db, "b.PHAS", "5")
    assert lists.event_members("go") == [recs["idle"], recs["a"], recs["b"]]   # PHAS 0, 2, 5
    put_string(db, "a.EVNT", "")
    assert lists.event_members("go") == [recs["idle"], recs["b"]]


async def test_a_post_processes_its_list_once_after_the_poster(tmp_path, clock):
    db = build(tmp_path)
    recs = db.records
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        # early (PINI) posted "go" before the scans ran: nothing processed it
        assert (recs["a"].VAL, recs["b"].VAL) == (0, 0)
        put_string(db, "ev.PROC", "1")
        # the list is processed by the event task, not inside the put
        assert recs["a"].VAL == 0
        await trio.testing.wait_all_tasks_blocked()
        assert (recs["a"].VAL, recs["b"].VAL, recs["mover"].VAL, recs["n"].VAL) == (1, 1, 1, 0)
        put_string(db, "ev.PROC", "1")
        put_string(db, "ev3.PROC", "1")
        db.post_event(3)
        await trio.testing.wait_all_tasks_blocked()
        assert (recs["a"].VAL, recs["n"].VAL, recs["idle"].VAL) == (2, 2, 0)
        nursery.cancel_scope.cancel()


async def test_a_record_moved_away_during_a_pass_is_skipped(tmp_path, clock):
    db = build(tmp_path)
    recs = db.records
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        db.post_event("go")
        put_string(db, "a.SCAN", "Passive")    # before the event task runs the pass
        await trio.testing.wait_all_tasks_blocked()
        assert (recs["a"].VAL, recs["b"].VAL) == (0, 1)
        nursery.cancel_scope.cancel()
