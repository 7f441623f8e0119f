"""Requests that succeed, message by message and byte for byte against the C softIoc (``softIoc -S -d``).

Each case sends the same requests over a raw TCP circuit (or UDP socket) to both servers, reads until the
replies it waits for have come (the ECHO reply is the fence: rsrv answers requests in order), and compares
every reply's header and payload. What must differ between two servers is masked, each for a stated
reason (see ``Transcript`` in tests/wire.py): the server's resource ids (sids) and its port, current
timestamps, and the bytes rsrv leaves uninitialised (its send buffer holds whatever an earlier message
left there).

Failed requests have their own file, tests/test_ioc_wire_errors.py.
"""
from __future__ import annotations

import socket
import struct

import pytest
from differential import serve_both
from rawca import header
from wire import ECHO, READABLE_TYPES, TIMEOUT, chars, compare, doubles, monitor, name_payload, xheader

from caproto.constants import Command

DB = """\
record(ai, "d:ai") {
    field(DESC, "an analog input")
    field(VAL, "3.25")
    field(EGU, "mm")
    field(PREC, "3")
    field(HOPR, "10")
    field(LOPR, "-10")
    field(HIHI, "8")
    field(HIGH, "6")
    field(LOW, "-6")
    field(LOLO, "-8")
    field(HHSV, "MAJOR")
}
record(ao, "d:ao") {
    field(VAL, "1.5")
    field(EGU, "V")
    field(PREC, "2")
    field(DRVH, "100")
    field(DRVL, "-100")
    field(SCAN, "Passive")
    field(PINI, "YES")
}
record(bi, "d:bi") { field(VAL, "1") field(ZNAM, "Off") field(ONAM, "On") }
record(mbbi, "d:mbbi") { field(VAL, "2") field(ZRST, "zero") field(ONST, "one") field(TWST, "two") }
record(longin, "d:li") { field(VAL, "42") field(EGU, "counts") field(PINI, "YES") field(HIGH, "40")
                        field(HSV, "MINOR") }
record(stringin, "d:si") { field(VAL, "hello") }
record(waveform, "d:wd") { field(FTVL, "DOUBLE") field(NELM, "8") field(EGU, "s") field(PREC, "1") }
record(waveform, "d:wc") { field(FTVL, "CHAR") field(NELM, "20") }
record(waveform, "d:big") { field(FTVL, "CHAR") field(NELM, "70000") }
record(waveform, "d:bigd") { field(FTVL, "DOUBLE") field(NELM, "9000") }
record(waveform, "d:wq0") { field(FTVL, "DOUBLE") field(NELM, "4") }
record(waveform, "d:wq1") { field(FTVL, "DOUBLE") field(NELM, "4") }
record(waveform, "d:wq2") { field(FTVL, "LONG") field(NELM, "4") }
record(stringin, "d:sq0") { }
record(stringout, "d:sq1") { }
record(calc, "d:count") { field(CALC, "A+1") field(INPA, "d:count NPP") }
record(ao, "d:egu") { field(PREC, "12") }
record(ao, "d:egu10") { field(PREC, "10") }
record(ai, "d:badinp") { field(INP, "d:nosuch NPP NMS") }
record(ao, "d:badout") { field(OUT, "d:ai.RTYP NPP NMS") }
record(ao, "d:logged") { field(VAL, "1.5") field(PREC, "2") field(HIHI, "50") field(HHSV, "MAJOR") }
record(mbbo, "d:loggedm") { field(ZRST, "zero") field(ONST, "one") }
record(bo, "d:bo0") { field(ZNAM, "Off") field(ONAM, "On") }
record(calc, "d:calc0") { field(CALC, "A+B") }
record(ai, "d:inp0") { field(INP, "d:ai NPP") }
record(mbbo, "d:mbbo") { field(VAL, "1") field(ZRST, "zero") field(ONST, "one") field(TWST, "two") }
"""

@pytest.fixture(scope="module")
def pair(tmp_path_factory, repeater_port):
    with serve_both(DB, tmp_path_factory.mktemp("wire"), repeater_port) as both:
        yield both


# --- circuit set-up ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("version,priority", [(13, 0), (13, 1), (13, 99), (12, 50), (11, 0), (9, 0),
                                              (8, 0), (4, 0), (13, 100), (3, 0), (0, 0)])
def test_version_exchange(pair, version, priority):
    """The server's VERSION comes first; a supported client is served (ECHO), an unsupported version or
    a priority past 99 closes the circuit."""
    def scenario(wire):
        wire.exchange(header(Command.VERSION, 0, priority, version, 0, 0) + ECHO, Command.ECHO)
    compare(pair, scenario)


def test_request_before_version(pair):
    """A request before any VERSION is refused with ECA_DEFUNCT, each time it comes in a receive of its
    own; a CREATE_CHAN is refused the same way (its own version field does not count)."""
    def scenario(wire):
        wire.exchange(ECHO, Command.ERROR)
        wire.exchange(header(Command.READ_SYNC, 0, 1, 2, 3, 4), Command.ERROR)
        payload = name_payload("d:ai")
        wire.exchange(header(Command.CREATE_CHAN, len(payload), 0, 0, 1, 13) + payload, Command.ERROR)
    compare(pair, scenario)


@pytest.mark.parametrize("command", [Command.HOST_NAME, Command.CLIENT_NAME])
def test_host_and_client_name(pair, command):
    """Accepted silently before the first channel; after it, an ERROR (and ignored); without a NUL in
    its payload, an ERROR and the circuit closed."""
    def scenario(wire):
        wire.exchange(header(Command.VERSION, 0, 0, 13, 0, 0) + header(command, 8, 1, 2, 3, 4)
                      + b"someone\0" + header(command, 16, 0, 0, 0, 0) + b"a.host.name\0\0\0\0\0" + ECHO,
                      Command.ECHO)
        wire.open("d:ai")
        wire.exchange(header(command, 8, 0, 0, 0, 0) + b"late\0\0\0\0" + ECHO, Command.ECHO)
    compare(pair, scenario)

    def unterminated(wire):
        wire.exchange(header(Command.VERSION, 0, 0, 13, 0, 0) + header(command, 8, 0, 0, 0, 0)
                      + b"12345678" + ECHO, Command.ECHO)
    compare(pair, unterminated)


@pytest.mark.parametrize("version", [13, 9, 8, 4])
def test_create_chan(pair, version):
    """ACCESS_RIGHTS, then the CREATE_CHAN reply (native type, element count, the client's cid); an
    unknown name gets CREATE_CH_FAIL. The CREATE_CHAN's version field is the client's version: before CA
    4.9 (no extended headers) a count of 0xFFFF or more is announced as 0xFFFE."""
    names = ["d:ai", "d:ao", "d:bi", "d:mbbi", "d:li", "d:si", "d:wd", "d:wc", "d:ai.EGU", "d:ai.PREC",
             "d:ai.DESC", "d:ai.SCAN", "d:wc.NORD", "d:ai.DESC$", "d:ai.RTYP", "d:ai.NAME", "nope",
             "d:ai.NOPE", "d:wd.VAL$", "d:big"]

    def scenario(wire):
        wire.exchange(header(Command.VERSION, 0, 0, 13, 0, 0) + ECHO, Command.ECHO)
        for cid, name in enumerate(names, 1):
            payload = name_payload(name)
            wire.exchange(header(Command.CREATE_CHAN, len(payload), 0, 0, cid, version) + payload + ECHO,
                          Command.ECHO)
    compare(pair, scenario)


@pytest.mark.parametrize("payload,version", [(b"", 13), (b"d:ai\0\0\0\0", 3)])
def test_create_chan_refused(pair, payload, version):
    """An empty CREATE_CHAN is ignored; one from a client older than CA 4.4 closes the circuit."""
    compare(pair, lambda wire: wire.exchange(
        header(Command.VERSION, 0, 0, 13, 0, 0) + header(Command.CREATE_CHAN, len(payload), 0, 0, 1, version)
        + payload + ECHO, Command.ECHO))


def test_name_filling_the_payload(pair):
    """rsrv forces the payload's last byte to NUL: a name that fills it loses its last character."""
    compare(pair, lambda wire: wire.exchange(
        header(Command.VERSION, 0, 0, 13, 0, 0) + header(Command.CREATE_CHAN, 8, 0, 0, 1, 13)
        + b"d:ai.EGU" + header(Command.CREATE_CHAN, 8, 0, 0, 2, 13) + b"d:wd.VAL" + ECHO, Command.ECHO))


# --- reads -----------------------------------------------------------------------------------------------

WAVEFORM_DOUBLES = header(Command.WRITE, 40, 6, 5, 0, 0) + doubles(1, 2.5, -3, 4e10, 5)
WAVEFORM_CHARS = header(Command.WRITE, 8, 4, 6, 0, 0) + chars(104, 105, 0, 255, 1, 65)

# pv -> element counts asked for (0: "as many as there are")
READS = {
    "d:ai": (0, 1, 2),
    "d:ao": (0, 1),
    "d:bi": (0, 1),
    "d:mbbi": (0, 1),
    "d:li": (0, 1, 3),
    "d:si": (0, 1, 2),
    "d:ai.EGU": (0, 1),
    "d:ai.PREC": (0, 1),
    "d:ai.DESC": (0, 1),
    "d:ai.SCAN": (0, 1),
    "d:ai.DESC$": (0, 1, 5, 41),
    "d:ai.HIHI": (0, 1),
    "d:ai.HHSV": (0, 1),
    "d:ai.NAME": (0, 1),
    "d:ai.UDF": (0, 1),
    "d:ai.RVAL": (0, 1),
    "d:ai.STAT": (0, 1),
    "d:ai.INP": (0, 1),
    "d:ai.INP$": (0, 1, 3),
    "d:ai.FLNK": (0, 1),
    "d:li.HOPR": (0, 1),
    "d:wd.NORD": (0, 1),
    "d:wd.FTVL": (0, 1),
    "d:ai.RTYP": (0, 1, 5),
    "d:wd.[1:3]": (0, 1, 3, 4),
    'd:wd.{"arr":{"s":-2}}': (0, 1, 2, 3),
    'd:ai.{"dbnd":{"abs":1}}': (0, 1),
    'd:ao.{"ts":{}}': (0, 1),
    # Not here: a string field of a record with enum states (bi.ZNAM, mbbi.ZRST) read as DBR_ENUM. rsrv's
    # fast conversion hands the string to the record's put_enum_str, which sets the record's VAL (a read
    # that writes), and sends an uninitialised value.
    "d:wd": (0, 1, 4, 5, 6, 8, 11),      # NORD is 5 (written first), NELM 8
    "d:wc": (0, 1, 5, 6, 7, 20, 23),     # NORD 6, NELM 20
}


def _fill(wire, pv: str, sid: int) -> None:
    """Give the waveforms fewer elements than they can hold, the case where counts matter."""
    record_name, _, rest = pv.partition(".")
    filtered = rest[:1] in ("[", "{")        # a filtered channel writes the whole field
    fill = {"d:wd": WAVEFORM_DOUBLES, "d:wc": WAVEFORM_CHARS}.get(record_name if filtered else pv)
    if fill is not None:
        fill = fill[:8] + struct.pack(">I", sid) + fill[12:]
        wire.exchange(fill + ECHO, Command.ECHO)


@pytest.mark.parametrize("pv", READS)
def test_read_notify_every_type(pair, pv):
    """READ_NOTIFY of every readable DBR type with each count: sizes, counts, values and metadata."""
    def scenario(wire):
        sid, = wire.open(pv)
        _fill(wire, pv, sid)
        requests = [(data_type, count) for data_type in READABLE_TYPES for count in READS[pv]]
        wire.exchange(b"".join(header(Command.READ_NOTIFY, 0, data_type, count, sid, ioid)
                               for ioid, (data_type, count) in enumerate(requests)) + ECHO, Command.ECHO)
    compare(pair, scenario)


@pytest.mark.parametrize("pv", READS)
def test_plain_read_every_type(pair, pv):
    """Plain READ (the reply carries the cid): count 0 is the metadata alone, one string is cut after
    its NUL."""
    def scenario(wire):
        sid, = wire.open(pv)
        _fill(wire, pv, sid)
        requests = [(data_type, count) for data_type in READABLE_TYPES for count in READS[pv]]
        wire.exchange(b"".join(header(Command.READ, 0, data_type, count, sid, ioid)
                               for ioid, (data_type, count) in enumerate(requests)) + ECHO, Command.ECHO)
    compare(pair, scenario)


def test_large_array_reads(pair):
    """Reads of 2,560 of 70,000 elements, as many as there are, one, fewer, and all: extended headers both
    ways (softIoc grows its buffers past EPICS_CA_MAX_ARRAY_BYTES)."""
    values = bytes(range(1, 256)) * 10 + bytes(range(1, 11))

    def scenario(wire):
        sid, = wire.open("d:big")
        wire.exchange(header(Command.WRITE, len(values), 4, len(values), sid, 0) + values + ECHO,
                      Command.ECHO)
        requests = [(data_type, count) for data_type in (0, 4, 6, 18, 34) for count in (0, 1, 3000, 70000)]
        wire.exchange(b"".join(xheader(command, 0, data_type, count, sid, ioid)
                               for command in (Command.READ_NOTIFY, Command.READ)
                               for ioid, (data_type, count) in enumerate(requests)) + ECHO, Command.ECHO)
    compare(pair, scenario)


def test_read_sync_and_echo(pair):
    """READ_SYNC and ECHO come back as they were sent, header fields and payload."""
    compare(pair, lambda wire: wire.exchange(
        header(Command.VERSION, 0, 0, 13, 0, 0) + header(Command.READ_SYNC, 0, 7, 8, 9, 10)
        + header(Command.ECHO, 16, 1, 2, 3, 4) + b"0123456789abcdef"
        + header(Command.READ_SYNC, 0, 0, 0, 0, 0) + ECHO, Command.ECHO, Command.ECHO))


# --- writes ----------------------------------------------------------------------------------------------

# pv -> (data type, count, payload) of each write
WRITES = {
    "d:ao": [(6, 1, doubles(2.5)), (0, 1, b"-7.125".ljust(40, b"\0")),
             (5, 1, struct.pack(">i", 9) + bytes(4)), (2, 1, struct.pack(">f", 0.5) + bytes(4)),
             (1, 1, struct.pack(">h", -3) + bytes(6))],
    "d:bi": [(3, 1, struct.pack(">H", 0) + bytes(6)), (0, 1, b"On".ljust(40, b"\0"))],
    "d:mbbi": [(3, 1, struct.pack(">H", 1) + bytes(6)), (0, 1, b"two".ljust(40, b"\0")),
               (0, 1, b"1".ljust(40, b"\0"))],
    "d:si": [(0, 1, b"written".ljust(40, b"\0")), (4, 3, chars(65, 66, 0))],
    "d:ai.EGU": [(0, 1, b"furlong".ljust(40, b"\0"))],
    "d:ai.SCAN": [(3, 1, struct.pack(">H", 0) + bytes(6)), (0, 1, b"Passive".ljust(40, b"\0"))],
    "d:wd": [(6, 3, doubles(1, 2, 3)), (6, 8, doubles(*range(8))), (0, 2, b"4".ljust(40, b"\0") * 2)],
    "d:wc": [(4, 4, chars(1, 2, 3, 4)), (0, 1, b"77".ljust(40, b"\0"))],
}


@pytest.mark.parametrize("pv", WRITES)
@pytest.mark.parametrize("command", [Command.WRITE, Command.WRITE_NOTIFY])
def test_write_then_read(pair, pv, command):
    """WRITE (no reply) and WRITE_NOTIFY (its reply echoes type and count), each followed by reads of
    the value in several types."""
    def scenario(wire):
        sid, = wire.open(pv)
        for ioid, (data_type, count, payload) in enumerate(WRITES[pv]):
            reads = b"".join(header(Command.READ_NOTIFY, 0, t, 0, sid, 100 + t) for t in (0, 6, 20, 34))
            request = header(command, len(payload), data_type, count, sid, ioid) + payload
            if command == Command.WRITE:
                wire.exchange(request + reads + ECHO, Command.ECHO)
            else:
                # rsrv's event task sends the put-callback's reply: it may overtake the reads' or not
                wire.exchange(request + reads + ECHO, Command.ECHO, Command.WRITE_NOTIFY, unordered=True)
    compare(pair, scenario)


# --- a number's text longer than the STRING field it is put into -----------------------------------------

@pytest.mark.parametrize("pv,data_type,payload", [
    ("d:egu.EGU", 6, doubles(99)), ("d:egu.EGU", 6, doubles(1e6)), ("d:egu.EGU", 6, doubles(-1.5e-300)),
    ("d:egu.EGU", 6, doubles(123456.789)), ("d:egu.EGU", 2, struct.pack(">f", 99) + bytes(4)),
    ("d:egu10.EGU", 6, doubles(0.5))],
    ids=["99", "1e6", "-1.5e-300", "123456.789", "float 99", "0.5, PREC 10"])
def test_number_text_runs_past_string_field(pair, pv, data_type, payload):
    """cvt_d_st writes a number's text into a STRING field without a bound: with PREC 12, 99 is
    " 9.900000000000e+01", longer than EGU's 16 bytes. Read as DBR_STRING it ends at the field's size; a
    numeric read parses it to its NUL, past the field (99, not 9.9; with PREC 10, 0.5 and not the 5 of
    " 5.0000000000e-"), until a string put ends it inside the field."""
    def scenario(wire):
        sid, = wire.open(pv)
        reads = b"".join(header(Command.READ_NOTIFY, 0, t, count, sid, 100 + t)
                         for t, count in ((0, 1), (6, 1), (2, 1), (1, 1), (27, 2), (34, 0)))
        wire.exchange(header(Command.WRITE, len(payload), data_type, 1, sid, 1) + payload + reads + ECHO,
                      Command.ECHO)
        wire.exchange(header(Command.WRITE, 40, 0, 1, sid, 2) + b"5".ljust(40, b"\0") + reads + ECHO,
                      Command.ECHO)
    compare(pair, scenario)


@pytest.mark.parametrize("pv", ["d:mbbo", "d:bi", "d:ao.SCAN"])
def test_string_put_of_no_elements_to_enum(pair, pv):
    """A DBR_STRING WRITE of count 0 to a menu or ENUM field: dbPut's putStringEnum (and its menu kin)
    converts the first string whatever the count, here from the bytes after the request, the next
    request's header: the empty string. mbbo takes it as its first state with an empty string (THST);
    elsewhere it is no state."""
    def scenario(wire):
        sid, = wire.open(pv)
        reads = header(Command.READ_NOTIFY, 0, 0, 1, sid, 2) + header(Command.READ_NOTIFY, 0, 1, 1, sid, 3)
        wire.exchange(header(Command.WRITE, 0, 0, 0, sid, 1) + reads + ECHO, Command.ECHO)
    compare(pair, scenario)


def test_put_of_no_elements_runs_the_rest_of_dbput(pair):
    """A WRITE of count 0 to a scalar field: dbPut stores nothing and raises LINK/INVALID, and goes on
    as after any put: UDF is cleared, the special handling after the put runs (a CALC holding a text
    that does not compile fails the put-callback again), the record processes."""
    def scenario(wire):
        sid, udf, calc = wire.open("d:bo0", "d:bo0.UDF", "d:calc0.CALC")
        reads = header(Command.READ_NOTIFY, 0, 7, 1, sid, 1) + header(Command.READ_NOTIFY, 0, 1, 1, udf, 2)
        wire.exchange(header(Command.WRITE, 8, 10, 0, sid, 3) + bytes(8) + reads + ECHO, Command.ECHO)
        for text in (b"A+", b"A+B"):
            wire.exchange(header(Command.WRITE, 40, 0, 1, calc, 4) + text.ljust(40, b"\0")
                          + header(Command.WRITE_NOTIFY, 8, 2, 0, calc, 5) + bytes(8)
                          + header(Command.READ_NOTIFY, 0, 0, 1, calc, 6) + ECHO,
                          Command.ECHO, Command.WRITE_NOTIFY, unordered=True)
    compare(pair, scenario)


def test_string_put_of_no_elements_to_a_link(pair):
    """A DBR_STRING put of count 0 to a link field: dbPutFieldLink parses the string all the same, here
    the empty one that the next request's header starts with: the link becomes an empty constant."""
    def scenario(wire):
        sid, = wire.open("d:inp0.INP")
        wire.exchange(header(Command.WRITE_NOTIFY, 0, 0, 0, sid, 1)
                      + header(Command.READ_NOTIFY, 0, 0, 1, sid, 2) + ECHO,
                      Command.ECHO, Command.WRITE_NOTIFY, unordered=True)
    compare(pair, scenario)


# --- the alarm message of a link that fails -------------------------------------------------------------

@pytest.mark.parametrize("pv", ["d:badinp", "d:badout"])
def test_link_alarm_message(pair, pv):
    """A get or put through a link that fails raises LINK/INVALID with the message "field INP" (dbLink's
    setLinkAlarm); a count-0 put's LINK/INVALID has none, and a later processing that changes only the
    message is an alarm change all the same: ACKS follows the severity again."""
    def scenario(wire):
        sid, proc, amsg = wire.open(pv, f"{pv}.PROC", f"{pv}.AMSG")
        state = header(Command.READ_NOTIFY, 0, 0, 1, amsg, 1) + header(Command.READ_NOTIFY, 0, 37, 1, sid, 2)
        acks = header(Command.WRITE, 8, 36, 1, sid, 3) + struct.pack(">H", 3).ljust(8, b"\0")
        wire.exchange(header(Command.WRITE, 0, 6, 0, sid, 4) + state + acks + state + ECHO, Command.ECHO)
        wire.exchange(header(Command.WRITE, 8, 1, 1, proc, 5) + bytes(8) + state + ECHO, Command.ECHO)
    compare(pair, scenario)


# --- subscriptions ---------------------------------------------------------------------------------------

MONITORED = {"d:ao": (6, 1), "d:wd": (6, 0), "d:wc": (4, 0), "d:mbbi": (3, 1), "d:si": (0, 1)}
# pv -> the value written before subscribing, then the one written after (a change, whatever ran before)
UPDATES = {
    "d:ao": ((6, 1, doubles(-1)), (6, 1, doubles(8.5))),
    "d:wd": ((6, 2, doubles(7, 7)), (6, 3, doubles(1, 2, 3))),
    "d:wc": ((4, 1, chars(7)), (4, 2, chars(9, 8))),
    "d:mbbi": ((3, 1, struct.pack(">H", 1) + bytes(6)), (3, 1, struct.pack(">H", 0) + bytes(6))),
    "d:si": ((0, 1, b"before".ljust(40, b"\0")), (0, 1, b"changed".ljust(40, b"\0"))),
}


@pytest.mark.parametrize("pv", MONITORED)
@pytest.mark.parametrize("data_type", [None, 20, 34, 37, 14])
def test_event_add_and_cancel(pair, pv, data_type):
    """EVENT_ADD's first update, an update after a WRITE, then the EVENT_CANCEL confirmation (an empty
    EVENT_ADD reply carrying the subscription's own type and count, whatever the cancel said)."""
    native, count = MONITORED[pv]
    data_type = native if data_type is None else data_type

    def write(sid: int, update) -> bytes:
        write_type, write_count, payload = update
        return header(Command.WRITE, len(payload), write_type, write_count, sid, 1) + payload

    def scenario(wire):
        sid, = wire.open(pv)
        before, after = UPDATES[pv]
        wire.exchange(write(sid, before) + ECHO, Command.ECHO)
        # rsrv's event task sends the first update: it may come before or after the ECHO reply
        wire.exchange(header(Command.EVENT_ADD, 16, data_type, count, sid, 42) + monitor(5) + ECHO,
                      Command.EVENT_ADD, Command.ECHO, unordered=True)
        wire.exchange(write(sid, after) + ECHO, Command.EVENT_ADD, Command.ECHO, unordered=True)
        wire.exchange(header(Command.EVENT_CANCEL, 0, 1, 3, sid, 42) + ECHO, Command.EVENT_ADD, Command.ECHO)
    compare(pair, scenario)


@pytest.mark.parametrize("pv", ["d:ai", "d:mbbi", "d:si", "d:wc", "d:ai.DESC$"])
@pytest.mark.parametrize("count", [0, 1])
def test_event_add_every_type(pair, pv, count):
    """The first update of a subscription in every readable type, then each cancelled."""
    def scenario(wire):
        sid, = wire.open(pv)
        _fill(wire, pv, sid)
        wire.exchange(b"".join(header(Command.EVENT_ADD, 16, data_type, count, sid, data_type) + monitor(5)
                               for data_type in READABLE_TYPES) + ECHO,
                      *[Command.EVENT_ADD] * len(READABLE_TYPES), Command.ECHO, unordered=True)
        wire.exchange(b"".join(header(Command.EVENT_CANCEL, 0, data_type, count, sid, data_type)
                               for data_type in READABLE_TYPES) + ECHO,
                      *[Command.EVENT_ADD] * len(READABLE_TYPES), Command.ECHO)
    compare(pair, scenario)


@pytest.mark.parametrize("pv", ["d:wd", "d:wc"])
@pytest.mark.parametrize("mask", [1, 2, 4, 8, 15])
def test_array_subscriptions(pair, pv, mask):
    """Subscriptions to a waveform holding fewer elements than it can: counts 0 (as many as there are,
    then as many as a write leaves), below, at and past NORD, past NELM; each DBE mask (a PROPERTY-only
    subscription gets its first update alone)."""
    counts = {"d:wd": (0, 1, 4, 5, 6, 11), "d:wc": (0, 1, 5, 6, 7, 23)}[pv]
    grown = {"d:wd": (6, 7, doubles(*range(7))), "d:wc": (4, 9, chars(*range(10, 19)))}[pv]

    def scenario(wire):
        sid, = wire.open(pv)
        _fill(wire, pv, sid)
        subscriptions = b"".join(header(Command.EVENT_ADD, 16, data_type, count, sid, 10 * data_type + i)
                                 + monitor(mask) for data_type in (6, 20, 4)
                                 for i, count in enumerate(counts))
        first = [Command.EVENT_ADD] * (3 * len(counts))
        wire.exchange(subscriptions + ECHO, *first, Command.ECHO, unordered=True)
        data_type, count, payload = grown
        updates = first if mask & 3 else []     # a waveform's processing posts VALUE and LOG
        wire.exchange(header(Command.WRITE, len(payload), data_type, count, sid, 1) + payload + ECHO,
                      *updates, Command.ECHO, unordered=True)
    compare(pair, scenario)


def test_events_off_keeps_the_newest_update(pair):
    """Under EVENTS_OFF a subscription's updates wait, one per subscription (the newest); EVENTS_ON
    sends it."""
    def scenario(wire):
        sid, = wire.open("d:ao")
        writes = b"".join(header(Command.WRITE, 8, 6, 1, sid, 1) + doubles(v) for v in (7, 8, 9))
        wire.exchange(header(Command.EVENTS_OFF, 0, 0, 0, 0, 0) + header(Command.EVENT_ADD, 16, 6, 1, sid, 5)
                      + monitor(5) + writes + ECHO, Command.ECHO)
        wire.exchange(header(Command.EVENTS_ON, 0, 0, 0, 0, 0) + ECHO, Command.ECHO, Command.EVENT_ADD,
                      unordered=True)
        wire.exchange(header(Command.WRITE, 8, 6, 1, sid, 1) + doubles(10) + ECHO, Command.ECHO,
                      Command.EVENT_ADD, unordered=True)
    compare(pair, scenario)


LOGGED_TYPES = {"d:logged": (0, 14, 21, 27, 34, 37), "d:loggedm": (0, 7, 24, 31)}


def test_update_queued_by_value_reads_the_rest_when_sent(pair):
    """An update of a scalar field waiting under EVENTS_OFF holds what dbEvent logged at the post: the
    value, alarm status and severity, time stamp. dbGet reads the rest when it is sent: the precision
    and the enum strings a value is read as text with, the GR/CTRL metadata, ACKT and ACKS."""
    def scenario(wire):
        sid, msid, prec, hihi, zrst = wire.open("d:logged", "d:loggedm", "d:logged.PREC", "d:logged.HIHI",
                                                "d:loggedm.ZRST")
        subscriptions = b"".join(header(Command.EVENT_ADD, 16, t, 1, channel, 10 + t) + monitor(5)
                                 for channel, pv in ((sid, "d:logged"), (msid, "d:loggedm"))
                                 for t in LOGGED_TYPES[pv])
        wire.exchange(header(Command.EVENTS_OFF, 0, 0, 0, 0, 0) + subscriptions + ECHO, Command.ECHO)
        # (HIHI and ZRST process their record: what they post is logged after them; PREC does not)
        changes = (header(Command.WRITE, 8, 35, 1, sid, 1) + struct.pack(">H", 0).ljust(8, b"\0")
                   + header(Command.WRITE, 8, 6, 1, hihi, 3) + doubles(7.5)
                   + header(Command.WRITE, 40, 0, 1, zrst, 4) + b"nil".ljust(40, b"\0")
                   + header(Command.WRITE, 8, 1, 1, prec, 2) + struct.pack(">h", 5).ljust(8, b"\0"))
        wire.exchange(changes + ECHO, Command.ECHO)
        updates = [Command.EVENT_ADD] * sum(map(len, LOGGED_TYPES.values()))
        wire.exchange(header(Command.EVENTS_ON, 0, 0, 0, 0, 0) + ECHO, Command.ECHO, *updates, unordered=True)
    compare(pair, scenario)


def test_cancel_drops_the_waiting_update(pair):
    """An update waiting under EVENTS_OFF is dropped when its subscription is cancelled."""
    def scenario(wire):
        sid, = wire.open("d:ao")
        wire.exchange(header(Command.EVENTS_OFF, 0, 0, 0, 0, 0) + header(Command.EVENT_ADD, 16, 6, 1, sid, 5)
                      + monitor(5) + header(Command.WRITE, 8, 6, 1, sid, 1) + doubles(11)
                      + header(Command.EVENT_CANCEL, 0, 6, 1, sid, 5) + ECHO, Command.EVENT_ADD, Command.ECHO)
        # rsrv would send a released update from its event task; ours would send it before the ECHO reply
        wire.exchange(header(Command.EVENTS_ON, 0, 0, 0, 0, 0) + header(Command.WRITE, 8, 6, 1, sid, 1)
                      + doubles(12) + header(Command.READ_NOTIFY, 0, 6, 1, sid, 3) + ECHO, Command.ECHO)
    compare(pair, scenario)


def test_clear_channel(pair):
    """CLEAR_CHANNEL's reply echoes the request's header; the channel's subscriptions go with it."""
    def scenario(wire):
        sid, other = wire.open("d:ao", "d:li")
        wire.exchange(header(Command.EVENT_ADD, 16, 20, 1, sid, 5) + monitor(1) + ECHO, Command.EVENT_ADD,
                      Command.ECHO, unordered=True)
        wire.exchange(header(Command.CLEAR_CHANNEL, 0, 3, 4, sid, 1) + header(Command.CLEAR_CHANNEL, 0, 0, 0,
                                                                              other, 2) + ECHO, Command.ECHO)
        wire.exchange(header(Command.READ_NOTIFY, 0, 6, 1, sid, 9) + ECHO, Command.ERROR)
    compare(pair, scenario)


# --- Bad Resource ID ------------------------------------------------------------------------------------

@pytest.mark.parametrize("request_", [
    header(Command.READ, 0, 6, 1, 99999, 1),
    header(Command.READ_NOTIFY, 0, 6, 1, 99999, 1),
    header(Command.WRITE, 8, 6, 1, 99999, 1) + doubles(1),
    header(Command.WRITE_NOTIFY, 8, 6, 1, 99999, 1) + doubles(1),
    header(Command.EVENT_ADD, 16, 6, 1, 99999, 1) + monitor(1),
    header(Command.EVENT_CANCEL, 0, 6, 1, 99999, 1),
    header(Command.CLEAR_CHANNEL, 0, 0, 0, 99999, 1),
    header(Command.READ_NOTIFY, 0, 39, 1, 99999, 1),       # the type is checked first: no ERROR
], ids=["READ", "READ_NOTIFY", "WRITE", "WRITE_NOTIFY", "EVENT_ADD", "EVENT_CANCEL", "CLEAR_CHANNEL",
        "READ_NOTIFY-bad-type"])
def test_bad_resource_id(pair, request_):
    """An unknown sid: rsrv's ERROR names its source line, and the circuit is closed."""
    def scenario(wire):
        wire.open("d:ai")
        wire.exchange(request_ + ECHO, Command.ECHO)
    compare(pair, scenario)


# --- searches --------------------------------------------------------------------------------------------

def search(name: str, cid: int, reply: int = 5, version: int = 13) -> bytes:
    payload = name_payload(name)
    return header(Command.SEARCH, len(payload), reply, version, cid, cid) + payload


def test_tcp_search(pair):
    """A SEARCH over a circuit: found names answered with the server's port, unknown ones only with
    DO_REPLY (NOT_FOUND); an empty name is ignored. The name test is rsrv's dbChannelTest: a "$" or a
    filter after a known field is not looked at."""
    def scenario(wire):
        wire.exchange(header(Command.VERSION, 0, 0, 13, 0, 0) + search("d:ai", 1) + search("d:ai", 2, 10)
                      + search("nope", 3, 10) + search("nope", 4, 5) + search("d:ai.NOPE", 5, 10)
                      + search("d:wc.VAL$", 6, 10) + search("d:ai.EGU", 7, 10, version=11)
                      + header(Command.SEARCH, 0, 10, 13, 8, 8) + ECHO, Command.ECHO)
    compare(pair, scenario)
    compare(pair, lambda wire: wire.exchange(header(Command.VERSION, 0, 0, 13, 0, 0)
                                             + search("d:ai", 1, 10, version=3) + ECHO, Command.ECHO))


class Searcher:
    """UDP searches to one server, from one socket; a second socket sends the fence, a search sent after
    the datagram under test: rsrv answers datagrams in order and sends what it has for one client before
    it reads another's, so once the fence's reply is in, every reply to the test is too.

    The fence goes out only after the expected reply came: rsrv holds its reply while more datagrams
    wait, and flushes it when the next one (from another client) is read, having already forgotten the
    client's version: the reply then loses its VERSION message (a race of the C server's)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.fence = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for sock in (self.sock, self.fence):
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(TIMEOUT)

    def close(self) -> None:
        self.sock.close()
        self.fence.close()

    def replies(self, datagram: bytes, answered: bool) -> list[str]:
        address = ("127.0.0.1", self.port)
        self.sock.sendto(datagram, address)
        got = []
        if answered:
            try:
                got.append(self.sock.recvfrom(65536)[0])
            except TimeoutError:
                got.append(b"TIMEOUT")
        self.fence.sendto(header(Command.VERSION, 0, 0, 13, 1, 0) + search("d:ai", 1), address)
        self.fence.recvfrom(65536)
        self.sock.setblocking(False)
        try:
            while True:
                got.append(self.sock.recvfrom(65536)[0])
        except BlockingIOError:
            pass
        # the server's TCP port rides in each SEARCH reply's data type field
        return [reply.hex().replace(struct.pack(">H", self.port).hex(), "PORT") for reply in got]


def version(minor: int, sequence: int, priority: int = 0) -> bytes:
    return header(Command.VERSION, 0, priority, minor, sequence, 0)


# case -> (datagram, whether softIoc answers it)
UDP_CASES = {
    "found": (version(13, 77) + search("d:ai", 1), True),
    "found with DO_REPLY": (version(13, 78) + search("d:ai", 1, 10), True),
    "unknown with DO_REPLY": (version(13, 79) + search("nope", 2, 10), False),
    "several": (version(13, 80) + search("d:ai", 1) + search("nope", 2, 10) + search("d:wd", 3)
                + search("d:ai.EGU", 4) + search("d:wc.VAL$", 5) + search("d:ai.NOPE", 6), True),
    "filters and modifiers": (version(13, 91) + search('d:ai.{"dbnd":{"abs":1}}', 1) + search("d:wd.[1:2]", 2)
                              + search('d:ai{"dbnd":{}}', 3) + search("d:ai.VAL$junk", 4)
                              + search("d:ai.RTYP", 5) + search("d:ai.", 6) + search("d:ai.VALX", 7), True),
    "VERSION alone": (version(13, 92), False),
    "priority": (version(13, 81, priority=50) + search("d:li", 1), True),
    "minor 11": (version(11, 82) + search("d:li", 1, version=11), True),
    "minor 10": (version(10, 83) + search("d:li", 1, version=10), True),
    "minor 4": (version(4, 84) + search("d:li", 1, version=4), True),
    "minor 3": (version(3, 85) + search("d:li", 1, version=3), False),
    "no VERSION": (search("d:ai", 1), False),
    "an old search in the middle": (version(13, 86) + search("d:ai", 1) + search("d:ao", 2, version=3)
                                    + search("d:bi", 3), True),
    "an empty name": (version(13, 87) + header(Command.SEARCH, 0, 5, 13, 9, 9) + search("d:ai", 1), True),
    "another command": (version(13, 88) + search("d:ai", 1) + header(Command.ECHO, 0, 0, 0, 0, 0)
                        + search("d:bi", 2), True),
    "two VERSIONs": (version(13, 89) + search("d:ai", 1) + version(10, 90) + search("d:bi", 2, version=10),
                     True),
}


@pytest.mark.parametrize("case", UDP_CASES)
def test_udp_search(pair, case):
    """The reply datagram: a VERSION with the client's sequence number (CA 4.11 and later), one SEARCH
    reply per name found (the server's port, the protocol's minor version in the payload); rsrv stops
    reading a datagram at the first message it will not serve."""
    datagram, answered = UDP_CASES[case]
    results = []
    for env in (pair.reference, pair.ours):
        searcher = Searcher(int(env["EPICS_CAS_SERVER_PORT"]))
        try:
            results.append(searcher.replies(datagram, answered))
        finally:
            searcher.close()
    reference, ours = results
    assert ours == reference


# --- clients older than CA 4.9 (no extended headers) ----------------------------------------------------

OLD_CLIENT_READS = {
    "d:big": [(4, 0), (4, 1), (4, 100), (4, 0xFFF0), (4, 0xFFF7), (4, 0xFFF8), (4, 0xFFFE), (4, 0xFFFF),
              (0, 1), (0, 1638), (0, 1639), (6, 8191), (6, 8192), (20, 8189), (20, 8190), (34, 0)],
    "d:bigd": [(6, 0), (6, 1), (6, 8191), (6, 8192), (14, 0), (1, 0), (0, 0)],
    "d:wd": [(6, 0), (34, 0), (6, 8)],
}


@pytest.mark.parametrize("pv", OLD_CLIENT_READS)
@pytest.mark.parametrize("command", [Command.READ_NOTIFY, Command.READ])
@pytest.mark.parametrize("version", [8, 9])
def test_old_client_large_reads(pair, pv, command, version):
    """A client older than CA 4.9 cannot take a reply of 0xFFFF elements or bytes or more: rsrv answers
    ECA_16KARRAYCLIENT in an ERROR (count 0 asks for the field's capacity)."""
    def scenario(wire):
        sid, = wire.open(pv, version=version)
        requests = OLD_CLIENT_READS[pv]
        wire.exchange(b"".join(header(command, 0, data_type, count, sid, ioid)
                               for ioid, (data_type, count) in enumerate(requests)) + ECHO, Command.ECHO)
    compare(pair, scenario)


@pytest.mark.parametrize("version", [8, 9])
def test_old_client_large_subscription(pair, version):
    """A subscription whose updates a client older than CA 4.9 cannot take: each update is an ERROR."""
    def scenario(wire):
        sid, = wire.open("d:bigd", version=version)
        wire.exchange(header(Command.EVENT_ADD, 16, 6, 0, sid, 3) + monitor(5) + ECHO,
                      Command.ECHO, Command.ERROR if version < 9 else Command.EVENT_ADD, unordered=True)
        wire.exchange(header(Command.WRITE, 16, 6, 2, sid, 1) + doubles(1, 2) + ECHO,
                      Command.ECHO, Command.ERROR if version < 9 else Command.EVENT_ADD, unordered=True)
        wire.exchange(header(Command.EVENT_CANCEL, 0, 6, 0, sid, 3) + ECHO, Command.EVENT_ADD, Command.ECHO)
    compare(pair, scenario)


# --- extended headers from clients older than CA 4.9 ----------------------------------------------------

def extended(command: int, size: int, data_type: int, count: int, p1: int, p2: int) -> bytes:
    """A request header in the extended form, whatever its sizes."""
    return struct.pack(">HHHHIIII", command, 0xFFFF, data_type, 0, p1, p2, size, count)


OLD_CLIENT_EXTENDED = {
    "READ_NOTIFY, minor 8": (8, 8, lambda sid: extended(Command.READ_NOTIFY, 0, 6, 70000, sid, 3)),
    "READ_NOTIFY of one, minor 8": (8, 8, lambda sid: extended(Command.READ_NOTIFY, 0, 6, 1, sid, 3)),
    "WRITE, minor 4": (4, 4, lambda sid: extended(Command.WRITE, 8, 6, 1, sid, 3) + doubles(2)),
    "ECHO, minor 8": (8, 8, lambda sid: extended(Command.ECHO, 8, 0, 0, 0, 0) + bytes(8)),
    "ECHO, minor 9": (9, 9, lambda sid: extended(Command.ECHO, 8, 0, 0, 0, 0) + bytes(8)),
    # a CREATE_CHAN's version replaces the VERSION's, either way
    "READ_NOTIFY, VERSION 13, CREATE_CHAN 8": (13, 8, lambda sid: extended(Command.READ_NOTIFY, 0, 6, 1, sid,
                                                                           3)),
    "READ_NOTIFY, VERSION 8, CREATE_CHAN 13": (8, 13, lambda sid: extended(Command.READ_NOTIFY, 0, 6, 1, sid,
                                                                           3)),
    # a VERSION in the same receive counts for the header that follows it
    "ECHO after VERSION 13 then 8": (13, 13, lambda sid: header(Command.VERSION, 0, 0, 8, 0, 0)
                                     + extended(Command.ECHO, 0, 0, 0, 0, 0)),
    "ECHO after VERSION 8 then 13": (8, 8, lambda sid: header(Command.VERSION, 0, 0, 13, 0, 0)
                                     + extended(Command.ECHO, 0, 0, 0, 0, 0)),
}


@pytest.mark.parametrize("case", OLD_CLIENT_EXTENDED)
def test_old_client_extended_header(pair, case):
    """rsrv reads an extended header only from a client of CA 4.9 or later: to an older one a payload size
    of 0xFFFF is a size like any other, not a multiple of 8, so the request is rejected as misaligned (an
    ERROR quoting the plain header) and the circuit closed."""
    version, create_version, request = OLD_CLIENT_EXTENDED[case]

    def scenario(wire):
        wire.exchange(header(Command.VERSION, 0, 0, version, 0, 0) + ECHO, Command.ECHO)
        payload = name_payload("d:bigd")
        wire.exchange(header(Command.CREATE_CHAN, len(payload), 0, 0, 1, create_version) + payload + ECHO,
                      Command.ECHO)
        sid = next(iter(wire.transcript.sids))
        wire.exchange(request(sid) + ECHO, Command.ECHO)
    compare(pair, scenario)


def test_extended_header_before_version(pair):
    """Before any VERSION the circuit has no version that knows extended headers: a VERSION in that form
    is misaligned (an ERROR, the circuit closed); another request is refused as from too old a client
    (its header quoted with the size 0xFFFF), and rsrv skips 0xFFFF bytes after it as its payload, then
    serves what follows."""
    compare(pair, lambda wire: wire.exchange(extended(Command.VERSION, 0, 0, 13, 0, 0) + ECHO, Command.ECHO))

    def scenario(wire):
        wire.sock.sendall(extended(Command.ECHO, 0, 0, 0, 0, 0)[:16])    # (a header that says no more)
        wire.exchange(b"", Command.ERROR)
        wire.exchange(bytes(0xFFFF) + header(Command.VERSION, 0, 0, 13, 0, 0) + ECHO, Command.ECHO)
    compare(pair, scenario)


# --- unknown commands -----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [5, 13, 27, 28, 29, 100, 0xFFFF])
@pytest.mark.parametrize("versioned", [False, True])
def test_unknown_command(pair, command, versioned):
    """A command code rsrv has no handler for: before any VERSION refused like any other request
    (ECA_DEFUNCT), after it an ERROR "invalid (damaged?) request code" and the circuit closed."""
    def scenario(wire):
        if versioned:
            wire.exchange(header(Command.VERSION, 0, 0, 13, 0, 0) + header(command, 8, 1, 2, 3, 4) + bytes(8)
                          + ECHO, Command.ECHO)
        else:
            wire.exchange(header(command, 8, 1, 2, 3, 4) + bytes(8), Command.ERROR)
            wire.exchange(ECHO, Command.ERROR)
    compare(pair, scenario)


# --- array subscriptions read their value when the update is sent ----------------------------------------

@pytest.mark.parametrize("pv,write", [
    ("d:wq0", (6, 3, doubles(1, 2, 3))), ("d:wq1", (6, 2, doubles(4, 5))),
    ("d:wq2", (5, 2, struct.pack(">ii", 6, 7))),
    ("d:sq0", (0, 1, b"one".ljust(40, b"\0"))), ("d:sq1", (0, 1, b"two".ljust(40, b"\0")))])
def test_events_off_array_update_reads_at_send_time(pair, pv, write):
    """Under EVENTS_OFF, the first update of a subscription to a never-processed record waits; writes
    follow. On EVENTS_ON each subscription sends one update."""
    data_type, count, payload = write

    def scenario(wire):
        sid, = wire.open(pv)
        subs = b"".join(header(Command.EVENT_ADD, 16, t, 0, sid, 10 * t + m) + monitor(m)
                        for t in (20, 34, 1) for m in (1, 5, 8))
        writes = b"".join(header(Command.WRITE, len(payload), data_type, count, sid, i) + payload
                          for i in range(2))
        wire.exchange(header(Command.EVENTS_OFF, 0, 0, 0, 0, 0) + subs + writes + ECHO, Command.ECHO)
        wire.exchange(header(Command.EVENTS_ON, 0, 0, 0, 0, 0) + ECHO, Command.ECHO, *[Command.EVENT_ADD] * 9,
                      unordered=True)
        wire.exchange(ECHO, Command.ECHO)
    compare(pair, scenario)


def test_subscription_id_used_twice(pair):
    """An EVENT_ADD with a subscription id in use starts one more subscription (on the same channel or
    another): each sends updates; EVENT_CANCEL ends the channel's oldest with that id."""
    def scenario(wire):
        ao, li = wire.open("d:ao", "d:li")
        wire.exchange(header(Command.EVENTS_OFF, 0, 0, 0, 0, 0) + header(Command.EVENT_ADD, 16, 6, 1, ao, 5)
                      + monitor(5) + header(Command.EVENT_ADD, 16, 20, 1, ao, 5) + monitor(5)
                      + header(Command.EVENT_ADD, 16, 5, 1, li, 5) + monitor(5)
                      + header(Command.EVENT_CANCEL, 0, 0, 0, ao, 5) + ECHO, Command.EVENT_ADD, Command.ECHO)
        wire.exchange(header(Command.EVENTS_ON, 0, 0, 0, 0, 0) + ECHO, Command.ECHO, Command.EVENT_ADD,
                      Command.EVENT_ADD, unordered=True)
        cancels = header(Command.EVENT_CANCEL, 0, 0, 0, ao, 5) + header(Command.EVENT_CANCEL, 0, 0, 0, li, 5)
        wire.exchange(cancels + ECHO, Command.EVENT_ADD, Command.EVENT_ADD, Command.ECHO)
        wire.exchange(header(Command.EVENT_CANCEL, 0, 0, 0, ao, 5) + ECHO, Command.ECHO)
    compare(pair, scenario)


def test_puts_that_fail_and_processing(pair):
    """A put-callback whose put fails in dbPut (a DBR type dbPut does not take) still processes the record
    of a PROC or PP field (dbNotify); a plain WRITE that fails does not. An alarm acknowledgement
    processes through a put-callback, and through a plain WRITE to PROC only. A link field takes text
    only."""
    def scenario(wire):
        proc, inp, count = wire.open("d:count.PROC", "d:ai.INP", "d:count")
        read = header(Command.READ_NOTIFY, 0, 6, 1, count, 99)
        for command in (Command.WRITE_NOTIFY, Command.WRITE):
            for data_type, payload in ((12, bytes(8) + struct.pack(">i", 1) + bytes(4)),
                                       (38, b"calc".ljust(40, b"\0")),
                                       (36, struct.pack(">H", 0) + bytes(6))):
                replies = [Command.WRITE_NOTIFY] if command == Command.WRITE_NOTIFY else []
                wire.exchange(header(command, len(payload), data_type, 1, proc, 7) + payload + read + ECHO,
                              *replies, Command.READ_NOTIFY, Command.ECHO, unordered=True)
        for command in (Command.WRITE_NOTIFY, Command.WRITE):
            for data_type, payload, n in ((6, doubles(1), 1), (36, struct.pack(">H", 0) + bytes(6), 1),
                                          (4, chars(*b"d:li"), 4), (4, chars(*b"d:li\0"), 5)):
                replies = [Command.WRITE_NOTIFY] if command == Command.WRITE_NOTIFY else []
                wire.exchange(header(command, len(payload), data_type, n, inp, 7)
                              + payload + header(Command.READ_NOTIFY, 0, 0, 1, inp, 98) + ECHO,
                              *replies, Command.READ_NOTIFY, Command.ECHO, unordered=True)
    compare(pair, scenario)
