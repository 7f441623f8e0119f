"""The database contract the server relies on: loading and validation, lookup, reads, writes, posts, scans."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from caproto.constants import DBE_ALARM, DBE_LOG, DBE_PROPERTY, DBE_VALUE, ECA, EPICS_EPOCH_OFFSET
from caproto.dbr import ChannelType, decode_payload, encode_payload
from caproto.errors import CAError
from ioc.config import ConfigError, load_config
from ioc.database import Completion, Database
from ioc.records import RecordType, register
from ioc.records.common import COMMON_FIELDS
from ioc.records.fields import DBF, Field


def build(tmp_path, text: str, name: str = "test.yaml") -> Database:
    path = tmp_path / name
    path.write_text(text)
    return Database.from_config(load_config(path))


def read(db: Database, pv: str, data_type: ChannelType = ChannelType.TIME_DOUBLE, count: int = 0):
    payload, n = db.lookup(pv).read(data_type, count)
    return decode_payload(data_type, n, payload)


def put(db: Database, pv: str, value, data_type: ChannelType = ChannelType.DOUBLE):
    values = value if isinstance(value, list) else [value]
    return db.lookup(pv).write(data_type, len(values), encode_payload(data_type, values))


YAML = """
records:
  - name: temp
    type: ai
    fields: {VAL: 21.5, EGU: degC, PREC: 2, HOPR: 100, LOPR: 0, HIGH: 30, HSV: MINOR, MDEL: 1}
    aliases: [temperature]
  - name: out
    type: ao
    fields: {DRVH: 10, DRVL: -10, HOPR: 20, LOPR: -20}
  - name: count
    type: longout
    fields: {DRVH: 5, DRVL: 1}
  - name: sw
    type: bo
    fields: {ZNAM: Off, ONAM: On}
  - name: mode
    type: mbbo
    fields: {ZRST: Idle, ONST: Run, TWST: Stop}
  - name: plain
    type: mbbo
  - name: wave
    type: waveform
    fields: {FTVL: DOUBLE, NELM: 100}
  - name: text
    type: stringout
"""


# --- loading and validation -------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, field, message", [
    ("{NOPE: 1}", "NOPE", "has no field NOPE"),
    ("{HIHI: abc}", "HIHI", "not a number"),
    ("{PREC: 1.5}", "PREC", "not an integer"),
    ("{PREC: 70000}", "PREC", "not an integer"),
    ("{HHSV: LOUD}", "HHSV", "not one of"),
    ("{EGU: ThisUnitIsFarTooLong}", "EGU", "longer than 15"),
    ("{INP: missing.VAL}", "INP", "no record named 'missing'"),
    ("{INP: temp.NOPE}", "INP", "has no field NOPE"),
    ("{INP: temp WEIRD}", "INP", "unknown link modifier"),
    ("{DTYP: Soft Timestamp}", "DTYP", "not available"),
    ("{LINR: typeKdegC}", "LINR", "breakpoint"),
])
def test_bad_fields_are_config_errors_at_their_line(tmp_path, fields, field, message):
    text = f"records:\n  - name: temp\n    type: ai\n    fields: {fields}\n"
    with pytest.raises(ConfigError) as info:
        build(tmp_path, text)
    assert info.value.field == field
    assert info.value.line == 4
    assert message in info.value.message
    assert info.value.file.endswith("test.yaml")


def test_unknown_record_type_is_a_config_error_naming_the_record(tmp_path):
    with pytest.raises(ConfigError) as info:
        build(tmp_path, "records:\n  - name: r\n    type: bogus\n")
    assert "bogus" in str(info.value) and info.value.line == 2


def test_unknown_record_types_can_be_skipped(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("records:\n  - name: r\n    type: bogus\n  - name: ok\n    type: ai\n")
    db = Database.from_config(load_config(path), skip_unsupported=True)
    assert db.pv_names() == ["ok"]


def test_calc_syntax_error_names_record_and_position(tmp_path):
    text = "records:\n  - name: c\n    type: calc\n    fields:\n      CALC: 'A+*2'\n"
    with pytest.raises(ConfigError) as info:
        build(tmp_path, text)
    assert info.value.field == "CALC" and info.value.line == 5
    assert "record c" in info.value.message and "position" in info.value.message


def test_db_file_errors_point_into_the_db_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        build(tmp_path, 'record(ai, "a") {\n  field(HHSV, "LOUD")\n}\n', "x.db")
    assert (info.value.field, info.value.line) == ("HHSV", 2)


def test_db_file_link_modifiers_are_found_as_dbparselink_finds_them(tmp_path):
    # a .db file means what it means to softIoc: "WEIRD" holds no modifier; "XXPPMSS" holds PP and MSS
    text = 'record(ai, "a") {\n  field(INP, "a.VAL WEIRD")\n}\nrecord(ai, "b") { field(INP, "a XXPPMSS") }\n'
    db = build(tmp_path, text, "x.db")
    assert read(db, "a.INP", ChannelType.STRING)[0] == ["a.VAL NPP NMS"]
    assert read(db, "b.INP", ChannelType.STRING)[0] == ["a PP MSS"]


def test_db_file_links_to_pvs_not_served_here_never_connect(tmp_path):
    # as in softIoc, where they are CA links to other IOCs; YAML names must resolve (see above)
    text = 'record(ai, "a") {\n  field(INP, "other:ioc:pv CP MS")\n  field(FLNK, "nowhere")\n}\n'
    db = build(tmp_path, text, "x.db")
    assert read(db, "a.INP", ChannelType.STRING)[0] == ["other:ioc:pv CP MS"]
    with pytest.raises(CAError):
        put(db, "a.PROC", 1, ChannelType.LONG)
    assert read(db, "a.SEVR", ChannelType.STRING)[0] == ["INVALID"]


def test_yaml_link_marked_ca_may_name_a_pv_of_another_ioc(tmp_path):
    text = "records:\n  - name: a\n    type: ai\n    fields: {INP: other:ioc:pv CA MS}\n"
    db = build(tmp_path, text)
    assert read(db, "a.INP", ChannelType.STRING)[0] == ["other:ioc:pv CA MS"]
    with pytest.raises(CAError):        # a CA link that never connects: the read fails
        put(db, "a.PROC", 1, ChannelType.LONG)
    assert read(db, "a.SEVR", ChannelType.STRING)[0] == ["INVALID"]


def test_yaml_link_to_a_declared_external_pv_keeps_its_flags(tmp_path):
    text = ("external_pvs: [other:ioc:pv, other:x.PROC, other:whole]\n"
            "records:\n  - name: a\n    type: ai\n"
            "    fields: {INP: other:ioc:pv CP MS, FLNK: other:x.PROC, TSEL: other:whole.TIME}\n")
    db = build(tmp_path, text)
    assert read(db, "a.INP", ChannelType.STRING)[0] == ["other:ioc:pv CP MS"]
    assert read(db, "a.FLNK", ChannelType.STRING)[0] == ["other:x.PROC"]
    assert read(db, "a.TSEL", ChannelType.STRING)[0] == ["other:whole.TIME NPP NMS"]


@pytest.mark.parametrize("fields, message", [
    ("{INP: tmep CP}", "no record named 'tmep'"),          # CP is not a declaration: typos stay errors
    ("{INP: other:ioc:pv.VAL}", "no record named 'other:ioc:pv'"),   # only .EGU is declared
    ("{INP: temp.NOPE CA}", "has no field NOPE"),           # a record served here: its fields are known
])
def test_yaml_links_to_undeclared_pvs_are_still_errors(tmp_path, fields, message):
    text = ("external_pvs: [other:ioc:pv.EGU]\n"
            f"records:\n  - name: temp\n    type: ai\n    fields: {fields}\n")
    with pytest.raises(ConfigError) as info:
        build(tmp_path, text)
    assert (info.value.field, info.value.line) == ("INP", 5), str(info.value)
    assert message in info.value.message and info.value.file.endswith("test.yaml")


# --- lookup ------------------------------------------------------------------------------------------------

def test_lookup_resolves_record_field_alias_and_caches(tmp_path):
    db = build(tmp_path, YAML)
    chan = db.lookup("temp")
    assert chan is db.lookup("temp.VAL")
    assert db.lookup("temperature.EGU") is db.lookup("temp.EGU")
    assert chan.native_type is ChannelType.DOUBLE and chan.max_count == 1
    assert db.lookup("nothing") is None and db.lookup("temp.NOPE") is None
    assert db.lookup("temp.MLIS") is None          # DBF_NOACCESS
    assert set(db.pv_names()) >= {"temp", "temperature", "wave"}


def test_long_string_channels_exist_only_for_string_and_link_fields(tmp_path):
    db = build(tmp_path, YAML)
    desc = db.lookup("temp.DESC$")
    assert (desc.native_type, desc.max_count) == (ChannelType.CHAR, 41)
    assert db.lookup("temp.INP$").max_count == 1024
    assert db.lookup("temp.VAL$") is None


def test_rtyp_reads_the_record_type_and_refuses_puts(tmp_path):
    db = build(tmp_path, YAML)
    values, _ = read(db, "wave.RTYP", ChannelType.STRING)
    assert values == ["waveform"]
    with pytest.raises(CAError) as info:
        put(db, "wave.RTYP", "ai", ChannelType.STRING)
    assert info.value.eca == ECA.PUTFAIL


def test_array_and_enum_channel_types(tmp_path):
    db = build(tmp_path, YAML)
    assert (db.lookup("wave").native_type, db.lookup("wave").max_count) == (ChannelType.DOUBLE, 100)
    assert db.lookup("mode").native_type is ChannelType.ENUM
    assert db.lookup("plain").native_type is ChannelType.LONG     # an mbbo without states is a number
    assert db.lookup("wave.NORD").native_type is ChannelType.DOUBLE    # ULONG


# --- reads ------------------------------------------------------------------------------------------------

def test_initial_state_before_processing(tmp_path):
    db = build(tmp_path, YAML)
    values, md = read(db, "temp")
    assert values[0] == 21.5 and (md.status, md.severity, md.secs) == (17, 0, 0)   # UDF, NO_ALARM, never
    _, md = read(db, "out")
    assert (md.status, md.severity) == (17, 3)     # no VAL given: UDF/INVALID


def test_ctrl_metadata_of_val_and_other_fields(tmp_path):
    db = build(tmp_path, YAML)
    _, md = read(db, "temp", ChannelType.CTRL_DOUBLE)
    assert (md.units, md.precision, md.upper_disp_limit, md.lower_ctrl_limit) == ("degC", 2, 100, 0)
    assert md.upper_warning_limit == 30 and math.isnan(md.upper_alarm_limit)
    _, md = read(db, "out", ChannelType.CTRL_DOUBLE)
    assert (md.upper_ctrl_limit, md.lower_ctrl_limit, md.upper_disp_limit) == (10, -10, 20)
    _, md = read(db, "temp.PREC", ChannelType.CTRL_DOUBLE)
    assert (md.upper_disp_limit, md.lower_disp_limit) == (32767, -32768)
    _, md = read(db, "mode", ChannelType.CTRL_ENUM)
    assert md.enum_strings == ("Idle", "Run", "Stop")
    _, md = read(db, "temp.SCAN", ChannelType.CTRL_ENUM)
    assert md.enum_strings[:2] == ("Passive", "Event") and len(md.enum_strings) == 10


def test_reads_are_cached_until_the_record_changes(tmp_path):
    db = build(tmp_path, YAML)
    chan = db.lookup("temp")
    first = chan.read(ChannelType.TIME_DOUBLE, 1)
    assert chan.read(ChannelType.TIME_DOUBLE, 1) is first
    put(db, "temp", 25.0)
    assert chan.read(ChannelType.TIME_DOUBLE, 1) is not first


def test_long_string_reads_text_and_one_nul(tmp_path):
    db = build(tmp_path, YAML)
    put(db, "temp.DESC", "hello", ChannelType.STRING)
    values, _ = read(db, "temp.DESC$", ChannelType.CHAR)
    assert bytes(values) == b"hello\0"
    put(db, "temp.DESC$", list(b"a much longer description\0"), ChannelType.CHAR)
    assert read(db, "temp.DESC", ChannelType.STRING)[0] == ["a much longer description"]


def test_waveform_count_zero_reads_nord_and_larger_counts_pad(tmp_path):
    db = build(tmp_path, YAML)
    assert len(read(db, "wave")[0]) == 0
    put(db, "wave", [1.0, 2.0, 3.0])
    assert read(db, "wave")[0].tolist() == [1.0, 2.0, 3.0]
    assert read(db, "wave.NORD")[0][0] == 3
    assert read(db, "wave", ChannelType.DOUBLE, 5)[0].tolist() == [1.0, 2.0, 3.0, 0.0, 0.0]


def test_processing_stamps_the_epics_epoch_time(tmp_path):
    db = build(tmp_path, YAML)
    put(db, "temp", 22.0)
    _, md = read(db, "temp")
    assert abs(md.secs + EPICS_EPOCH_OFFSET - time.time()) < 5
    assert (md.status, md.severity) == (0, 0)


# --- writes ----------------------------------------------------------------------------------------------

def test_drive_limits_clamp_outputs(tmp_path):
    db = build(tmp_path, YAML)
    put(db, "out", 55.0)
    assert read(db, "out")[0][0] == 10
    put(db, "count", 9, ChannelType.LONG)
    assert read(db, "count", ChannelType.LONG)[0][0] == 5


def test_enums_take_an_index_or_a_state_name(tmp_path):
    db = build(tmp_path, YAML)
    put(db, "sw", "On", ChannelType.STRING)
    assert read(db, "sw", ChannelType.STRING)[0] == ["On"]
    put(db, "mode", 2, ChannelType.ENUM)
    assert read(db, "mode", ChannelType.STRING)[0] == ["Stop"]
    put(db, "mode", "1", ChannelType.STRING)
    assert read(db, "mode", ChannelType.STRING)[0] == ["Run"]


def test_a_link_put_to_a_pv_not_served_here_never_connects(tmp_path):
    db = build(tmp_path, YAML)
    put(db, "temp.INP", "nowhere", ChannelType.STRING)
    assert read(db, "temp.INP", ChannelType.STRING)[0] == ["nowhere NPP NMS"]
    with pytest.raises(CAError) as info:      # ai's process() returns the failed read's status
        put(db, "temp.PROC", 1, ChannelType.LONG)
    assert info.value.eca == ECA.PUTFAIL
    assert read(db, "temp.STAT", ChannelType.STRING)[0] == ["LINK"]


@pytest.mark.parametrize("pv, value, data_type, code", [
    ("temp", "abc", ChannelType.STRING, ECA.PUTFAIL),
    ("sw", "Maybe", ChannelType.STRING, ECA.PUTFAIL),
    ("mode", "7", ChannelType.STRING, ECA.PUTFAIL),
    ("temp.STAT", 1, ChannelType.ENUM, ECA.NOWTACCESS),
    ("wave.NORD", 3, ChannelType.DOUBLE, ECA.NOWTACCESS),
    ("temp", "ai", ChannelType.CLASS_NAME, ECA.PUTFAIL),
    ("temp", "1.0", ChannelType.TIME_STRING, ECA.PUTFAIL),
])
def test_bad_puts_raise_the_c_ioc_code_and_change_nothing(tmp_path, pv, value, data_type, code):
    db = build(tmp_path, YAML)
    chan = db.lookup(pv)
    before = chan.read(ChannelType.TIME_STRING, 1)
    with pytest.raises(CAError) as info:
        put(db, pv, value, data_type)
    assert info.value.eca == code
    assert chan.read(ChannelType.TIME_STRING, 1) == before


def test_put_of_a_metadata_type_stores_its_value(tmp_path):
    # db_access's dbChannel_put takes the value out of a STS/TIME/GR/CTRL struct and ignores the rest
    db = build(tmp_path, YAML)
    put(db, "temp", 3.5, ChannelType.CTRL_DOUBLE)
    assert read(db, "temp")[0][0] == 3.5
    put(db, "temp", "4.5", ChannelType.STS_STRING)
    assert read(db, "temp")[0][0] == 4.5


def test_waveform_of_strings_takes_whole_strings(tmp_path):
    db = build(tmp_path, "records:\n  - {name: w, type: waveform, fields: {FTVL: STRING, NELM: 3}}\n")
    put(db, "w", ["ab", "cd"], ChannelType.STRING)
    assert read(db, "w", ChannelType.STRING)[0] == ["ab", "cd"]


def test_disp_rejects_puts_to_every_field_but_disp(tmp_path):
    db = build(tmp_path, YAML)
    put(db, "temp.DISP", 1, ChannelType.CHAR)
    with pytest.raises(CAError) as info:
        put(db, "temp", 5.0)
    assert info.value.eca == ECA.PUTFAIL
    put(db, "temp.DISP", 0, ChannelType.CHAR)
    put(db, "temp", 5.0)
    assert read(db, "temp")[0][0] == 5.0


def test_link_fields_can_be_rewritten_to_existing_records(tmp_path):
    db = build(tmp_path, YAML)
    put(db, "out.OUT", "temp PP", ChannelType.STRING)
    assert read(db, "out.OUT", ChannelType.STRING)[0] == ["temp PP NMS"]
    put(db, "out", 7.0)
    assert read(db, "temp")[0][0] == 7.0


def test_put_ackt_and_acks_acknowledge_alarms(tmp_path):
    db = build(tmp_path, YAML)
    put(db, "temp", 50.0)                       # HIGH/MINOR, ACKS follows to MINOR
    values, md = read(db, "temp", ChannelType.STSACK_STRING)
    assert (md.severity, md.acks, md.ackt) == (1, 1, 1)
    put(db, "temp", 1, ChannelType.PUT_ACKS)
    assert read(db, "temp", ChannelType.STSACK_STRING)[1].acks == 0
    put(db, "temp", 0, ChannelType.PUT_ACKT)
    assert read(db, "temp.ACKT", ChannelType.ENUM)[0][0] == 0


# --- posts -----------------------------------------------------------------------------------------------

def test_subscribers_get_the_posted_masks(tmp_path):
    db = build(tmp_path, YAML)
    masks: list[int] = []
    unsubscribe = db.lookup("temp").subscribe(masks.append)
    put(db, "temp", 21.9)                      # first processing: UDF alarm clears, MLST starts at 0
    put(db, "temp", 22.5)                      # within MDEL 1 of 21.9: archive (ADEL 0) only
    put(db, "temp", 40.0)                      # value, log and the HIGH alarm
    put(db, "temp.EGU", "K", ChannelType.STRING)
    unsubscribe()
    put(db, "temp", 10.0)
    assert masks == [DBE_VALUE | DBE_LOG | DBE_ALARM, DBE_LOG, DBE_VALUE | DBE_LOG | DBE_ALARM, DBE_PROPERTY]


def test_metadata_puts_post_value_on_the_field(tmp_path):
    db = build(tmp_path, YAML)
    masks: list[int] = []
    db.lookup("temp.HOPR").subscribe(masks.append)
    put(db, "temp.HOPR", 200.0)
    assert masks == [DBE_VALUE | DBE_LOG, DBE_PROPERTY]


# --- time: scans, PINI, links (virtual clock) ---------------------------------------------------------------

SCANNED = """
records:
  - {name: fast, type: calc, fields: {CALC: "VAL+1", SCAN: ".1 second"}}
  - {name: slow, type: calc, fields: {CALC: "VAL+1", SCAN: "1 second", PHAS: 1}}
  - {name: once, type: calc, fields: {CALC: "7", PINI: "YES"}}
  - {name: pulse, type: bo, fields: {HIGH: 2}}
  - {name: src, type: ao}
  - {name: follower, type: calc, fields: {CALC: "A*10", INPA: "src CP"}}
"""
CYCLE = """
  - {name: ping, type: calc, fields: {CALC: "A+1", INPA: "pong CP"}}
  - {name: pong, type: calc, fields: {CALC: "A+1", INPA: "ping CP"}}
"""


@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.mark.trio
async def test_periodic_scans_process_at_their_rate(tmp_path, clock):
    db = build(tmp_path, SCANNED)
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        await trio.sleep(1.05)
        assert db.records["fast"].VAL == 10
        assert db.records["slow"].VAL == 1
        assert db.records["once"].VAL == 7                # PINI
        put(db, "fast.SCAN", "1 second", ChannelType.STRING)
        await trio.sleep(3.0)
        assert db.records["fast"].VAL == 13
        put(db, "fast.SCAN", "Passive", ChannelType.STRING)
        await trio.sleep(3.0)
        assert db.records["fast"].VAL == 13
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_bo_high_returns_to_zero_after_its_time(tmp_path, clock):
    db = build(tmp_path, SCANNED)
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        put(db, "pulse", 1, ChannelType.ENUM)
        await trio.sleep(1.9)
        assert db.records["pulse"].VAL == 1
        await trio.sleep(0.2)
        assert db.records["pulse"].VAL == 0
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_cp_links_process_on_source_posts(tmp_path, clock):
    db = build(tmp_path, SCANNED)
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        put(db, "src", 4.5)
        await trio.testing.wait_all_tasks_blocked()
        assert db.records["follower"].VAL == 45
        nursery.cancel_scope.cancel()


async def test_a_cp_cycle_spins_without_starving_other_tasks(tmp_path):
    # ping and pong re-trigger each other forever, as in the C IOC; scans and other tasks still run.
    # (Real time: a virtual clock only advances when nothing is runnable, which a cycle never allows.)
    db = build(tmp_path, SCANNED + CYCLE)
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        with trio.fail_after(5):
            await trio.sleep(0.35)
        assert db.records["fast"].VAL >= 2
        assert db.records["ping"].VAL > 10
        nursery.cancel_scope.cancel()


def test_flnk_cycles_stop_at_the_busy_record(tmp_path):
    db = build(tmp_path, """
records:
  - {name: a, type: calc, fields: {CALC: "VAL+1", FLNK: b}}
  - {name: b, type: calc, fields: {CALC: "VAL+1", FLNK: a}}
""")
    put(db, "a.PROC", 1, ChannelType.CHAR)
    assert (db.records["a"].VAL, db.records["b"].VAL) == (1, 1)


# --- asynchronous completion (a record type with a device that takes time) ---------------------------------

def _process_slow(rec) -> None:
    if not rec.PACT:
        rec.PACT = 1                      # device started: come back when it is done
        rec.db.call_later(5.0, lambda: rec.db.resume(rec))
        return
    rec.stamp()
    rec.VAL = rec.VAL + 1
    rec.post("VAL", DBE_VALUE | DBE_LOG)
    rec.fwd_link()
    rec.PACT = 0


register(RecordType(name="test_slow", fields=COMMON_FIELDS + (Field("VAL", DBF.DOUBLE, pp=True),),
                    process=_process_slow))


@pytest.mark.trio
async def test_asynchronous_processing_completes_the_put_callback_later(tmp_path, clock):
    db = build(tmp_path, "records:\n  - {name: s, type: test_slow}\n")
    async with trio.open_nursery() as nursery:
        await nursery.start(db.run)
        completion = put(db, "s", 1.0)
        assert isinstance(completion, Completion)
        start = trio.current_time()
        await completion.wait()
        assert trio.current_time() - start == pytest.approx(5.0)
        assert db.records["s"].VAL == 2.0
        nursery.cancel_scope.cancel()


def test_numeric_values_keep_their_storage_types(tmp_path):
    db = build(tmp_path, YAML)
    put(db, "wave", list(np.arange(4.0)))
    assert db.records["wave"].VAL.dtype == np.float64
    assert isinstance(db.records["count"].VAL, int)


NEW_TYPES_YAML = """
records:
  - name: bits_in
    type: mbbiDirect
    fields: {INP: bits_out, NOBT: 4}
  - name: bits_out
    type: mbboDirect
    fields: {B1: 1, B3: 1}
  - name: arr_in
    type: aai
    fields: {FTVL: DOUBLE, NELM: 4, INP: arr_out}
  - name: arr_out
    type: aao
    fields: {FTVL: LONG, NELM: 3, OMSL: closed_loop, DOL: "[4, 5, 6]"}
  - name: pick
    type: sel
    fields: {SELM: Median Signal, INPA: 1, INPB: 7, INPC: bits_out}
  - name: part
    type: subArray
    fields: {FTVL: LONG, MALM: 3, NELM: 2, INDX: 1, INP: arr_out}
"""


def test_yaml_declares_the_record_types_added_since(tmp_path):
    db = build(tmp_path, NEW_TYPES_YAML)
    assert db.records["bits_out"].VAL == 10
    put(db, "bits_in.PROC", 1, ChannelType.CHAR)
    bits_in = db.records["bits_in"]
    assert (bits_in.VAL, bits_in.B1, bits_in.B2, bits_in.B3) == (10, 1, 0, 1)
    put(db, "arr_in.PROC", 1, ChannelType.CHAR)
    assert list(db.records["arr_in"].VAL[:db.records["arr_in"].NORD]) == [4.0, 5.0, 6.0]
    put(db, "pick.PROC", 1, ChannelType.CHAR)
    assert (db.records["pick"].VAL, db.records["pick"].SELN) == (7.0, 3)
    put(db, "part.PROC", 1, ChannelType.CHAR)
    assert read(db, "part", ChannelType.LONG)[0].tolist() == [5, 6]


_TEXTS = st.one_of(
    st.from_regex(r"[+-]?(?:[0-9]{1,19}\.?[0-9]{0,19}|\.[0-9]{1,19})(?:[eE][+-]?[0-9]{1,3})?",
                  fullmatch=True),
    st.text(alphabet=" +-.0123456789eExXabinfINFt_\t", max_size=12),
)


@given(text=_TEXTS, padding=st.integers(0, 40))
@settings(max_examples=300, deadline=None)
def test_a_string_put_into_a_double_stores_what_the_general_conversion_stores(tmp_path_factory, text,
                                                                              padding):
    # The put path reads plain decimals straight from the payload's bytes; every other text takes the
    # general conversion. Both must store what the general conversion stores, or refuse alike.
    db = _strings_db(tmp_path_factory)
    payload = (text.encode() + bytes(padding))[:40]
    payload += bytes(-len(payload) % 8)
    chan = db.lookup("target")
    try:
        values, _ = decode_payload(ChannelType.STRING, 1, payload)
        expected = db._convert_for_put(chan, ChannelType.STRING, values)[0]
    except CAError as exc:
        with pytest.raises(CAError) as raised:
            chan.write(ChannelType.STRING, 1, payload)
        assert raised.value.eca == exc.eca
        return
    chan.write(ChannelType.STRING, 1, payload)
    stored = db.records["target"].VAL
    assert stored == expected or (math.isnan(stored) and math.isnan(expected))
    assert math.copysign(1, stored) == math.copysign(1, expected)


_STRINGS_DB: dict[str, Database] = {}


def _strings_db(tmp_path_factory) -> Database:
    if "db" not in _STRINGS_DB:
        _STRINGS_DB["db"] = build(tmp_path_factory.mktemp("strings"),
                                  "records:\n  - {name: target, type: ao}\n")
    return _STRINGS_DB["db"]


LAST_TYPES_YAML = """
records:
  - name: src
    type: waveform
    fields: {FTVL: DOUBLE, NELM: 4, INP: "[1, 8, 3, 6]"}
  - name: low
    type: compress
    fields: {ALG: N to 1 Low Value, N: 2, NSAM: 3, INP: src}
  - name: hist
    type: histogram
    fields: {LLIM: 0, ULIM: 10, NELM: 2, SVL: 7}
  - name: button
    type: permissive
    fields: {LABL: go, WFLG: 1}
  - name: mode
    type: state
    fields: {VAL: idle}
  - name: line
    type: printf
    fields: {FMT: "%.1f and %d", INP0: low, INP1: 5, SIZV: 20}
"""


def test_yaml_declares_compress_histogram_permissive_state_and_printf(tmp_path):
    db = build(tmp_path, LAST_TYPES_YAML)
    for name in ("src", "low", "hist", "line"):
        put(db, f"{name}.PROC", 1, ChannelType.CHAR)
    assert read(db, "low", ChannelType.DOUBLE)[0].tolist() == [1.0, 3.0]
    assert read(db, "hist", ChannelType.LONG)[0].tolist() == [0, 1]
    assert db.records["line"].VAL == "1.0 and 5"
    put(db, "button", 1, ChannelType.LONG)
    assert (db.records["button"].OVAL, db.records["button"].OFLG) == (1, 1)
    assert read(db, "mode", ChannelType.STRING)[0] == ["idle"]
