"""Channel filters (ioc/filters.py): the name parser, each filter, and the C softIoc as the oracle."""
from __future__ import annotations

import math
import queue
import socket
import struct
import subprocess
import threading

import numpy as np
import pytest
from differential import mask, serve_both
from peers import run_tool, tool

from caproto.constants import DBE_ALARM, DBE_LOG, DBE_PROPERTY, DBE_VALUE
from caproto.dbr import ChannelType, decode_payload
from ioc.config import load_config
from ioc.database import Database, FieldChannel
from ioc.filters import FilteredChannel, FilterError, FilterSpec, parse_suffix, split_field

# --- the parser ---------------------------------------------------------------------------------------


def arr(s: int = 0, i: int = 1, e: int = -1) -> FilterSpec:
    return FilterSpec("arr", (("e", e), ("i", i), ("s", s)))


@pytest.mark.parametrize("suffix, expected", [
    ("[2:5]", arr(2, 1, 5)),
    ("[3]", arr(3, 1, 3)),
    ("[0:2:-1]", arr(0, 2, -1)),
    ("[-3:]", arr(-3)),
    ("[:]", arr()),
    ("[::]", arr()),
    ("[2:]", arr(2)),
    ("[:4]", arr(0, 1, 4)),
    ("[1:0:4]", arr(1, 1, 4)),          # an increment below 1 is 1
    ("[1:-2:4]", arr(1, 1, 4)),
    ("[0x2:010]", arr(2, 1, 8)),        # strtol base 0: hex and octal
    ("[ 1: 3]", arr(1, 1, 3)),          # blanks before a number only
    ("[+1:-2]", arr(1, 1, -2)),
])
def test_array_range_shorthand_reads_as_start_increment_end(suffix, expected):
    assert parse_suffix(suffix) == (False, (expected,))


@pytest.mark.parametrize("suffix", ["[1 ]", "[]", "[1:2:3:4]", "[x]", "[1", "[1:2]x", "[2:5]$"])
def test_malformed_array_range_is_refused(suffix):
    with pytest.raises(FilterError):
        parse_suffix(suffix)


@pytest.mark.parametrize("suffix, expected", [
    ('{"arr":{"s":1,"e":3}}', [arr(1, 1, 3)]),
    ('{"arr":{"s":"2","e":4.7}}', [arr(2, 1, 4)]),           # a string or a double converts
    ('{"arr":{"s":"2x"}}', [arr(2)]),                         # epicsParseInt32 ignores what follows
    ('{"arr":{"":3}}', [arr(3)]),                             # a key matches an option it begins
    ('{"arr":{"s":{"e":2}}}', [arr(0, 1, 2)]),                # nested maps are flattened
    ('{ "arr" : { "s" : 2 } } ', [arr(2)]),
    ('{"arr":{"s":true}}', [arr(1)]),
    ('{"arr":{"s":2},"arr":{"e":1}}', [arr(2), arr(0, 1, 1)]),
    ('{}', []),
    ('{"dbnd":{"abs":1.5}}', [FilterSpec("dbnd", (("d", 1.5), ("m", 0)))]),
    ('{"dbnd":{"rel":20}}', [FilterSpec("dbnd", (("d", 20.0), ("m", 1)))]),
    ('{"dbnd":{"d":2,"m":"r"}}', [FilterSpec("dbnd", (("d", 2.0), ("m", 1)))]),
    ('{"dbnd":{"m":1}}', [FilterSpec("dbnd", (("d", 0.0), ("m", 1)))]),
    ('{"dbnd":{"abs":"1e"}}', [FilterSpec("dbnd", (("d", 1.0), ("m", 0)))]),
    ('{"dec":{"n":3}}', [FilterSpec("dec", (("n", 3),))]),
    ('{"ts":{}}', [FilterSpec("ts", (("epoch", 0), ("num", 0), ("str", 0)))]),
    ('{"ts":{"num":"n","epoch":"u"}}', [FilterSpec("ts", (("epoch", 1), ("num", 4), ("str", 0)))]),
    ('{"utag":{"M":3,"V":1}}', [FilterSpec("utag", (("M", 3), ("V", 1)))]),
])
def test_json_filters_parse_as_chfplugin_does(suffix, expected):
    assert parse_suffix(suffix) == (False, tuple(expected))


@pytest.mark.parametrize("suffix", [
    '{"bogus":{}}', '{"arr":{"st":3}}', '{"arr":[1]}', '{"arr":null}', '{"arr":1}', '{"arr":{}}{"arr":{}}',
    '{"arr":{"s":99999999999}}', '{"arr":{"s":""}}', '{"dec":{}}', '{"dec":{"n":0}}', '{"dec":{"n":"2"}}',
    '{"dec":{"n":2.0}}', '{"dbnd":{"m":"x"}}', '{"ts":{"num":1}}', '{"arr":{"s":1}', '{"arr":{"s":1,}}',
    '{"sync":{"m":"while","s":"gate"}}', '{"sync":{"while":"gate"}}',
])
def test_filters_softioc_refuses_are_refused(suffix):
    with pytest.raises(FilterError):
        parse_suffix(suffix)


def test_long_string_range_and_json_follow_in_that_order():
    assert parse_suffix('$[1:]{"ts":{}}') == (True, (arr(1), FilterSpec("ts", (("epoch", 0), ("num", 0),
                                                                               ("str", 0)))))
    with pytest.raises(FilterError):
        parse_suffix('{"ts":{}}[1:]')


@pytest.mark.parametrize("after_dot, expected", [
    ("VAL", ("VAL", "")), ("", ("", "")), ("[2:5]", ("", "[2:5]")), ("NAME$", ("NAME", "$")),
    ('B_1{"ts":{}}', ("B_1", '{"ts":{}}')), ("VAL junk", ("VAL", " junk")),
])
def test_field_name_is_the_identifier_after_the_dot(after_dot, expected):
    assert split_field(after_dot) == expected


# --- filters on a database ---------------------------------------------------------------------------

DB = r"""
record(ai, "ai") { field(VAL, "21.5") field(PREC, "2") field(EGU, "degC") field(HOPR, "100")
                   field(HIHI, "50") field(HHSV, "MAJOR") }
record(waveform, "wf") { field(FTVL, "DOUBLE") field(NELM, "10") field(PREC, "1")
                         field(INP, "[1,2,3,4,5,6,7]") }
record(waveform, "wl") { field(FTVL, "LONG") field(NELM, "8") }
record(stringin, "si") { field(VAL, "hello") }
"""


@pytest.fixture
def db(tmp_path) -> Database:
    path = tmp_path / "filters.db"
    path.write_text(DB)
    return Database.from_config(load_config(path))


def values(chan, data_type=ChannelType.DOUBLE, count=0):
    payload, n = chan.read(data_type, count)
    return decode_payload(data_type, n, payload)[0]


def put(chan, value: float) -> None:
    chan.write(ChannelType.DOUBLE, 1, struct.pack(">d", value))


def test_plain_names_stay_shared_field_channels(db):
    assert type(db.lookup("ai")) is FieldChannel
    assert db.lookup("ai") is db.lookup("ai.VAL") is db.lookup("ai.")
    assert db.lookup("ai.NAME$") is db.lookup("ai.NAME$")


def test_each_lookup_of_a_filtered_name_is_a_new_channel(db):
    first, second = db.lookup("wf.[2:5]"), db.lookup("wf.[2:5]")
    assert isinstance(first, FilteredChannel) and first is not second
    assert first.base is db.lookup("wf")


@pytest.mark.parametrize("name", ['wf.{"bogus":{}}', "wf.[x]", "ai.VAL$[1]", 'ai.{"dec":{"n":0}}',
                                  "ai.NOPE[1]", 'nope.[1]'])
def test_a_refused_filter_is_no_channel(db, name):
    assert db.lookup(name) is None


@pytest.mark.parametrize("name, count, expected", [
    ("wf.[2:5]", 4, [3, 4, 5, 6]),
    ("wf.VAL[0:2:-1]", 5, [1, 3, 5, 7]),
    ("wf.[-3:]", 3, [5, 6, 7]),
    ("wf.[3]", 1, [4]),
    ("wf.[5:2]", 0, []),
    ('wf.[1:8]{"arr":{"s":1}}', 7, [3, 4, 5, 6, 7]),
    ('wf.{"arr":{"i":3}}', 4, [1, 4, 7]),
    ("wl.[2:5]", 4, []),
])
def test_arr_element_count_comes_from_nelm_values_from_nord(db, name, count, expected):
    chan = db.lookup(name)
    assert chan.max_count == count
    assert list(values(chan)) == expected


def test_arr_with_an_explicit_count_pads_with_zeros(db):
    assert list(values(db.lookup("wf.[5:]"), count=4)) == [6, 7, 0, 0]


def test_arr_on_a_scalar_changes_nothing(db):
    chan = db.lookup("ai.[2:5]")
    assert chan.max_count == 1 and list(values(chan)) == [21.5]


def test_arr_of_a_long_string_is_cut_after_the_first_nul(db):
    chan = db.lookup("si.VAL$[1:]")
    assert chan.native_type is ChannelType.CHAR and chan.max_count == 39
    assert bytes(values(chan, ChannelType.CHAR)) == b"ello\0"
    assert bytes(values(db.lookup("si.VAL$[1:2]"), ChannelType.CTRL_CHAR)) == b"e\0"
    assert bytes(values(db.lookup("si.VAL$[2]"), ChannelType.CHAR)) == b"l"     # one element: as it is


def test_ts_value_modes_change_type_and_count(db):
    db.records["ai"].TIME = (1000, 500_000_000)
    dbl = db.lookup('ai.{"ts":{"num":"dbl"}}')
    assert (dbl.native_type, dbl.max_count) == (ChannelType.DOUBLE, 1)
    assert list(values(dbl)) == [1000.5]
    both = db.lookup('ai.{"ts":{"num":"ts","epoch":"unix"}}')
    assert both.max_count == 2
    assert list(values(both)) == [1000 + 631152000, 500_000_000]
    text = db.lookup('ai.{"ts":{"str":"epics"}}')
    assert text.native_type is ChannelType.STRING
    assert values(text, ChannelType.STRING)[0].endswith(".500000")


def test_ts_without_options_stamps_with_the_current_time(db):
    chan = db.lookup('ai.{"ts":{}}')
    payload, n = chan.read(ChannelType.TIME_DOUBLE, 1)
    assert decode_payload(ChannelType.TIME_DOUBLE, n, payload)[1].secs > 1_000_000_000


def subscribe(chan, select: int = DBE_VALUE | DBE_ALARM) -> list[float]:
    """Subscribe as the server does, after the record has processed once (its first processing also
    posts an alarm change): the values of the first update and of every update sent."""
    if chan.record.STAT:
        put(chan.base.record.db.lookup(chan.record.NAME), chan.record.VAL)
    seen: list[float] = []
    chan.subscribe(lambda mask: seen.append(values(chan)[0]), select, first=True)
    return seen


def test_dbnd_abs_passes_changes_beyond_the_deadband_from_the_last_sent(db):
    chan = db.lookup('ai.{"dbnd":{"abs":1.5}}')
    seen = subscribe(chan)
    for value in (22, 23, 23.5, 24.9, 20, 20):
        put(db.lookup("ai"), value)
    assert seen == [21.5, 23.5, 20]


def test_dbnd_rel_deadband_is_a_percentage_of_the_last_sent(db):
    chan = db.lookup('ai.{"dbnd":{"rel":10}}')
    seen = subscribe(chan)
    for value in (23, 24, 26.5, 28, 29.5):
        put(db.lookup("ai"), value)
    assert seen == [21.5, 24, 26.5, 29.5]


def test_dbnd_passes_alarm_changes_whatever_the_value(db):
    chan = db.lookup('ai.{"dbnd":{"abs":100}}')
    seen = subscribe(chan)
    put(db.lookup("ai"), 60)          # beyond HIHI: the post carries DBE_ALARM
    put(db.lookup("ai"), 61)
    assert seen == [21.5, 60]


def test_dbnd_drops_a_first_update_of_nan_unless_the_mask_selects_alarms(db):
    put(db.lookup("ai"), math.nan)
    assert subscribe(db.lookup('ai.{"dbnd":{"abs":1}}'), DBE_VALUE) == []
    assert np.isnan(subscribe(db.lookup('ai.{"dbnd":{"abs":1}}'), DBE_VALUE | DBE_ALARM)).all()


def test_ts_stamps_the_first_update_behind_dbnd(db):
    chan = db.lookup('ai.{"dbnd":{"abs":1},"ts":{}}')
    stamps: list[int] = []

    def on_update(mask: int) -> None:
        payload, n = chan.read(ChannelType.TIME_DOUBLE, 1)
        stamps.append(decode_payload(ChannelType.TIME_DOUBLE, n, payload)[1].secs)

    chan.subscribe(on_update, DBE_VALUE, first=True)
    assert chan.record.TIME[0] == 0 and stamps[0] > 1_000_000_000   # never processed, stamped now


def test_a_plain_channel_sends_the_first_update_whatever_the_mask(db):
    seen: list[int] = []
    db.lookup("ai").subscribe(seen.append, 0, first=True)
    db.lookup("ai.EGU").subscribe(seen.append)            # no first update unless asked for
    assert seen == [0]


def test_dec_sends_every_nth_update_counting_the_first(db):
    chan = db.lookup('ai.{"dec":{"n":3}}')
    seen = subscribe(chan)
    for value in range(1, 8):
        put(db.lookup("ai"), value)
    assert seen == [21.5, 3, 6]


def test_dec_state_is_per_channel_not_per_name(db):
    one, two = db.lookup('ai.{"dec":{"n":2}}'), db.lookup('ai.{"dec":{"n":2}}')
    seen_one = subscribe(one)
    put(db.lookup("ai"), 1)
    seen_two = subscribe(two)
    put(db.lookup("ai"), 2)
    assert (seen_one, seen_two) == ([21.5, 2], [1])


def test_utag_passes_the_first_update_then_those_whose_tag_matches(db):
    chan = db.lookup('ai.{"utag":{"M":3,"V":1}}')
    seen = subscribe(chan)
    for tag, value in ((2, 1), (5, 2), (1, 3), (4, 4)):
        chan.record.UTAG = tag
        put(db.lookup("ai"), value)
    assert seen == [21.5, 2, 3]


def test_dec_passes_property_updates_without_counting_them(db):
    chan = db.lookup('ai.{"dec":{"n":2}}')
    seen: list[int] = []
    # a first update selecting DBE_PROPERTY is not counted either
    chan.subscribe(seen.append, DBE_VALUE | DBE_ALARM | DBE_PROPERTY, first=True)
    db.lookup("ai").record.post_all(DBE_PROPERTY)
    put(db.lookup("ai"), 1)
    put(db.lookup("ai"), 2)
    assert [m & DBE_PROPERTY for m in seen] == [DBE_PROPERTY, DBE_PROPERTY, 0]


def test_a_filter_sees_only_posts_its_subscription_selected(db):
    put(db.lookup("ai"), 0)
    chan = db.lookup('ai.{"dec":{"n":2}}')
    seen: list[int] = []
    chan.subscribe(seen.append, DBE_ALARM, first=True)   # counted: the next selected post is dropped
    put(db.lookup("ai"), 1)            # value only: not selected, not counted
    put(db.lookup("ai"), 60)           # alarm: counted, dropped
    put(db.lookup("ai"), 1)            # alarm cleared: sent
    assert seen == [DBE_ALARM, DBE_VALUE | DBE_LOG | DBE_ALARM]


def test_a_write_through_a_filtered_channel_writes_the_field(db):
    put(db.lookup("wf.[2:3]"), 9.5)
    assert list(values(db.lookup("wf"))) == [9.5]


# --- against the C softIoc --------------------------------------------------------------------------

ORACLE_DB = DB + r"""
record(ai, "m:ai") { field(PREC, "1") field(HIHI, "8") field(HHSV, "MAJOR") }
record(waveform, "m:wf") { field(FTVL, "LONG") field(NELM, "6") }
record(bo, "m:done") { field(ZNAM, "no") field(ONAM, "yes") }
record(waveform, "p:wf") { field(FTVL, "DOUBLE") field(NELM, "10") field(INP, "[1,2,3,4,5,6,7]") }
record(ai, "p:ai") { field(VAL, "1") }
record(ai, "f:n0") { field(VAL, "nan") }
record(ai, "f:n1") { field(VAL, "nan") }
record(ai, "f:n2") { field(VAL, "nan") }
record(ai, "f:n3") { field(VAL, "nan") }
record(ai, "f:n4") { field(VAL, "nan") }
record(ai, "f:a0") { field(VAL, "1") }
"""
GET_NAMES = ["wf.[2:5]", "si.VAL$[1:2]", "si.VAL$[2]", "wf.VAL[0:2:-1]", "wf.[-3:]", "wf.[3]",
             'wf.{"arr":{"s":1,"e":3}}',
             'wf.{"arr":{"i":2}}', "wl.[2:5]", "wf.[9]", 'wf.[2:5]{"arr":{"s":1}}', "ai.[2:5]", "ai.",
             'ai.{"dbnd":{"abs":1.5}}', 'ai.{"dec":{"n":3}}', "ai.NAME$[0:3]", "si.VAL$[1:]",
             'ai.{"ts":{"num":"dbl"}}', 'ai.{"ts":{"num":"ts"}}', 'ai.{"ts":{"num":"sec","epoch":"unix"}}',
             'wf.{"ts":{"num":"ts"},"arr":{"s":1}}', 'wf.[0]{"ts":{"num":"ts"}}',
             'ai.{"dbnd":{"abs":1},"ts":{"num":"dbl"}}']
# Text that is no number: read as a number or CHAR, both IOCs answer ECA_GETFAIL (softIoc with an
# uninitialised payload), so compared for string requests only.
TS_STRING = 'ai.{"ts":{"str":"epics"}}'
STRING_NAMES = [TS_STRING, 'ai.RTYP{"ts":{}}']


@pytest.fixture(scope="module")
def pair(tmp_path_factory, repeater_port):
    with serve_both(ORACLE_DB, tmp_path_factory.mktemp("filters"), repeater_port) as pair:
        yield pair


def test_caget_of_filtered_names_matches_softioc(pair):
    pair.assert_same("caget", "-w", "5", *GET_NAMES, *STRING_NAMES, "ai.INP$[0:3]")
    pair.assert_same("caget", "-w", "5", "-a", 'ai.{"ts":{}}', 'wf.{"ts":{}}',
                     'ai.{"dbnd":{"abs":1},"ts":{}}')
    pair.assert_same("caget", "-w", "5", "-#", "3", "wl.[2:5]", "wf.[1:8]")


@pytest.mark.parametrize("dbr", ["DBR_CTRL_DOUBLE", "DBR_TIME_DOUBLE", "DBR_STRING", "DBR_CTRL_STRING",
                                 "DBR_CTRL_CHAR", "DBR_TIME_CHAR"])
def test_caget_of_filtered_names_in_other_types_matches_softioc(pair, dbr):
    strings = STRING_NAMES if "STRING" in dbr else []
    # a link's text ignores the filters (getLinkValue): NaN as DOUBLE, the text as STRING
    pair.assert_same("caget", "-w", "5", "-d", dbr, *GET_NAMES, *strings, "ai.INP$[0:3]", "wf.INP$[2:5]")


def test_a_string_timestamp_read_as_a_number_fails_like_softioc(pair):
    pair.assert_same("caget", "-w", "0.5", "-d", "DBR_CTRL_DOUBLE", TS_STRING)


def test_caput_through_filters_writes_the_field_like_softioc(pair):
    pair.assert_same("caput", "-w", "5", "-a", "p:wf.[2:5]", "2", "9", "8")
    pair.assert_same("caget", "-w", "5", "p:wf", "p:wf.[2:5]")
    pair.assert_same("caput", "-w", "5", 'p:ai.{"dbnd":{"abs":1}}', "7")
    pair.assert_same("caput", "-w", "5", "p:wf.[5:2]", "3")


def test_cainfo_element_counts_match_softioc(pair):
    pair.assert_same("cainfo", "-w", "5", "wf.[2:5]", "wf.[5:2]", "wf.VAL[0:2:-1]", "ai.[2:5]",
                     "ai.DESC$[-5:]", 'ai.{"ts":{"num":"ts"}}', 'ai.{"ts":{"str":"iso"}}')


def test_refused_filters_are_not_found_like_softioc(pair):
    pair.assert_same("cainfo", "-w", "1", 'wf.{"bogus":{}}', "wf.[x]", 'ai.{"sync":{"m":"while","s":"gate"}}',
                     'ai.{"dec":{"n":0}}', 'wf.{"arr":{"s":99999999999}}', "ai.VAL$", "ai.VAL junk")


def _monitor(env: dict[str, str], names: list[str], puts: list[tuple[str, ...]]) -> dict[str, list[str]]:
    """camonitor ``names`` and m:done while ``puts`` are made; each name's lines, timestamps masked."""
    proc = subprocess.Popen([tool("camonitor"), "-w", "5", *names, "m:done"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        seen: dict[str, list[str]] = {}
        initial = 0
        while initial < len(names) + 1:             # every first update (the filters here pass them)
            line = lines.get(timeout=60)
            seen.setdefault(line.split()[0], []).append(mask(line.rstrip()))
            initial += 1
        for args in puts:
            assert run_tool("caput", "-w", "5", *args, env=env).returncode == 0
        assert run_tool("caput", "-w", "5", "m:done", "yes", env=env).returncode == 0
        while True:                                  # updates of one circuit arrive in order
            line = lines.get(timeout=60)
            seen.setdefault(line.split()[0], []).append(mask(line.rstrip()))
            if line.split()[0] == "m:done" and "yes" in line:
                return seen
    finally:
        proc.terminate()
        proc.wait()


def test_camonitor_through_filters_matches_softioc(pair):
    names = ['m:ai.{"dbnd":{"abs":1.5}}', 'm:ai.{"dbnd":{"rel":20}}', 'm:ai.{"dec":{"n":3}}',
             'm:ai.{"ts":{}}', 'm:ai.{"dec":{"n":2},"dbnd":{"abs":0.4}}', "m:wf.[1:3]",
             'm:wf.{"arr":{"s":-2}}']
    puts = [("m:ai", str(v)) for v in (1, 1.5, 3, 3.2, 5, 9, 9.5, 2, 2.1, -4, 0)]
    puts += [("-a", "m:wf", "3", "1", "2", "3"), ("-a", "m:wf", "5", "5", "6", "7", "8", "9"),
             ("-a", "m:wf", "1", "4")]
    reference = _monitor(pair.reference, names, puts)
    ours = _monitor(pair.ours, names, puts)
    assert ours == reference
    # the filters did filter: 12 values of m:ai (with the first), 4 of m:wf
    assert [len(reference[name]) for name in names] == [8, 9, 4, 12, 6, 4, 4]


def _header(command: int, size: int, data_type: int, count: int, p1: int, p2: int) -> bytes:
    return struct.pack(">HHHHII", command, size, data_type, count, p1, p2)


def _updates(port: int, name: str, select: int, data_type: int, puts: list[float]) -> list[tuple[str, bool]]:
    """EVENT_ADD ``name`` with event mask ``select``, put ``puts`` to its record's VAL on the same circuit:
    each update (value, stamped?) up to the one carrying the last put's value."""
    names = [name, name.split(".")[0]]
    request = _header(0, 0, 0, 13, 0, 0)
    for cid, text in enumerate(names):
        raw = text.encode() + b"\0"
        raw += b"\0" * (-len(raw) % 8)
        request += _header(18, len(raw), 0, 0, cid, 13) + raw
    updates: list[tuple[str, bool]] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        buffer, sids = b"", {}
        while True:
            while len(buffer) >= 16:
                command, size, dtype, count, p1, p2 = struct.unpack(">HHHHII", buffer[:16])
                if len(buffer) < 16 + size:
                    break
                payload, buffer = buffer[16:16 + size], buffer[16 + size:]
                if command == 18:
                    sids[p1] = p2
                    if len(sids) == 2:
                        # the first update (if any) is queued before any post of the puts
                        sock.sendall(_header(1, 16, data_type, 1, sids[0], 7)
                                     + struct.pack(">fffHH", 0, 0, 0, select, 0)
                                     + b"".join(_header(4, 8, 6, 1, sids[1], 9) + struct.pack(">d", value)
                                                for value in puts))
                elif command == 1:
                    value, metadata = decode_payload(dtype, count, payload)
                    updates.append((str(float(value[0])), bool(metadata and metadata.secs)))
                    if float(value[0]) == puts[-1]:
                        return updates
            chunk = sock.recv(65536)
            assert chunk, f"{name}: the server closed the circuit"
            buffer += chunk


@pytest.mark.parametrize("name, select, data_type, puts", [
    ('f:n0.{"dbnd":{"abs":1}}', DBE_VALUE, ChannelType.DOUBLE, [5]),      # NaN: no first update
    ('f:n1.{"dbnd":{"abs":1}}', DBE_VALUE | DBE_ALARM, ChannelType.DOUBLE, [5]),
    ('f:n2.{"dec":{"n":2},"dbnd":{"abs":1}}', DBE_VALUE, ChannelType.DOUBLE, [2, 3, 4, 6]),
    ('f:n3.{"dbnd":{"abs":1},"ts":{}}', DBE_VALUE, ChannelType.TIME_DOUBLE, [2]),
    ('f:a0.{"dbnd":{"abs":1},"ts":{}}', DBE_VALUE, ChannelType.TIME_DOUBLE, [3]),  # first stamped now
    ("f:n4", DBE_VALUE, ChannelType.DOUBLE, [5]),
])
def test_first_update_through_filters_matches_softioc(pair, name, select, data_type, puts):
    reference = _updates(int(pair.reference["EPICS_CAS_SERVER_PORT"]), name, select, data_type, puts)
    ours = _updates(int(pair.ours["EPICS_CAS_SERVER_PORT"]), name, select, data_type, puts)
    assert ours == reference


def test_parse_errors_are_logged_not_raised(db, caplog):
    assert db.lookup('ai.{"bogus":{}}') is None
    assert "bogus" in caplog.text


def test_numpy_selection_composes_two_ranges(db):
    chan = db.lookup("wf.[1:6]{\"arr\":{\"i\":2}}")
    assert chan.max_count == 3
    assert np.array_equal(values(chan), [2, 4, 6])
