"""Raw CA circuits for byte-for-byte differential tests against the C softIoc: requests packed by hand,
replies recorded message by message and masked where two servers must differ (see ``Transcript``).

Used by tests/test_wire_differential.py and tests/test_wire_fuzz_differential.py.
"""
from __future__ import annotations

import collections
import difflib
import hashlib
import socket
import struct
from dataclasses import dataclass, field

from rawca import header

from caproto.constants import Command
from caproto.dbr import element_size, metadata_size

READABLE_TYPES = [*range(35), 37, 38]     # PUT_ACKT and PUT_ACKS cannot be read (a failure: the other file)
MAX_STRING = 40
# Metadata bytes that only align the struct (db_access.h's RISC_pad fields): rsrv never writes them.
RISC_PADS = {11: [(4, 1)], 13: [(4, 4)], 15: [(12, 2)], 17: [(12, 2)], 18: [(12, 3)], 20: [(12, 4)],
             23: [(6, 2)], 25: [(18, 1)], 27: [(6, 2)], 30: [(6, 2)], 32: [(20, 1)], 34: [(6, 2)]}
STRING_VALUED = {0, 7, 14, 21, 28, 37, 38}
TIME_TYPES = range(14, 21)
CLASS_NAME = 38
ECHO = header(Command.ECHO, 0, 0, 0, 0, 0)
TIMEOUT = 10.0


def xheader(command: int, size: int, data_type: int, count: int, p1: int, p2: int) -> bytes:
    """A request header, in the extended form when the size or count needs it."""
    if size < 0xFFFF and count < 0xFFFF:
        return header(command, size, data_type, count, p1, p2)
    return struct.pack(">HHHHIIII", command, 0xFFFF, data_type, 0, p1, p2, size, count)


def name_payload(name: str) -> bytes:
    data = name.encode() + b"\0"
    return data + b"\0" * (-len(data) % 8)


def monitor(mask: int) -> bytes:
    return struct.pack(">fffHH", 0, 0, 0, mask, 0)


def doubles(*values: float) -> bytes:
    return struct.pack(f">{len(values)}d", *values)


def chars(*values: int) -> bytes:
    data = bytes(values)
    return data + b"\0" * (-len(data) % 8)


def masked_data(data_type: int, autosize: bool, count: int, payload: bytes) -> str:
    """A data reply's payload in hex, with ``__`` for bytes rsrv leaves uninitialised and ``TT`` for a
    current timestamp (a zero one, of a record never processed, is compared)."""
    shown = bytearray(payload.hex().encode())

    def hide(start: int, stop: int, mark: bytes = b"_") -> None:
        stop = min(stop, len(payload))
        if start < stop:
            shown[2 * start:2 * stop] = mark * (2 * (stop - start))

    if data_type in TIME_TYPES and any(payload[4:12]):
        hide(4, 12, b"T")           # when each server processed the record
    for start, size in RISC_PADS.get(data_type, ()):
        hide(start, start + size)
    offset = metadata_size(data_type)
    if data_type in STRING_VALUED:
        # a string's bytes after its NUL are whatever rsrv's buffer held; rsrv fills only the first
        # element of a CLASS_NAME array
        for i in range(max(count, 1)):
            start = offset + i * MAX_STRING
            element = payload[start:start + MAX_STRING]
            if data_type == CLASS_NAME and i > 0:
                hide(start, start + MAX_STRING)
            elif b"\0" in element:      # rsrv always terminates a string; an unterminated one is shown
                hide(start + element.index(b"\0") + 1, start + MAX_STRING)
    if autosize:
        # count 0 ("as many as there are"): rsrv sizes the message for the field's capacity, then cuts it
        # to the elements read, leaving the alignment bytes after them unwritten
        hide(offset + count * element_size(data_type), len(payload))
    return shown.decode()


@dataclass
class Transcript:
    """What one server sent, message by message, masked. Resource ids are renamed in the order the
    server handed them out (each server numbers its own), the server's port is named PORT."""
    port: int
    sids: dict[int, str] = field(default_factory=dict)
    # (command, ioid, type) -> element counts asked for: a subscription id may name several subscriptions
    asked: dict[tuple[int, int, int], set[int]] = field(default_factory=dict)
    lines: list = field(default_factory=list)

    def sid(self, value: int) -> str | int:
        return self.sids.get(value, value)

    def describe(self, message) -> tuple:
        if isinstance(message, str):
            return (message,)
        command, data_type, count, p1, p2, payload = message
        name = Command(command).name if command in Command._value2member_map_ else command
        if command == Command.CREATE_CHAN:
            self.sids.setdefault(p2, f"sid{len(self.sids)}")
            return name, data_type, count, p1, self.sid(p2), payload.hex()
        if command in (Command.SEARCH, ) and data_type == self.port:
            return name, "PORT", count, p1, p2, payload.hex()
        if command == Command.CLEAR_CHANNEL or (command == Command.EVENT_ADD and not payload):
            return name, data_type, count, self.sid(p1), p2, payload.hex()
        if command == Command.ERROR:
            quoted = struct.unpack(">HHHHII", payload[:16])
            text = payload[16:].split(b"\0", 1)[0]      # rsrv pads the text with stale buffer bytes
            quoted = (*quoted[:4], self.sid(quoted[4]), quoted[5])
            return name, len(payload), data_type, count, p1, p2, quoted, text
        if command in (Command.READ_NOTIFY, Command.READ, Command.EVENT_ADD) and payload:
            asked = self.asked.get((command, p2, data_type), set())
            # a reply is to a count-0 request when one was made and no other asked for the count it has
            # (a failed one always has count 0)
            autosize = 0 in asked and count not in asked - {0}
            shown = masked_data(data_type, autosize, count, payload)
            if len(shown) > 512:    # a large array: its digest keeps a failure's diff readable
                shown = f"{shown[:64]}... sha1 {hashlib.sha1(shown.encode()).hexdigest()}"
            return name, len(payload), data_type, count, p1, p2, shown
        return name, len(payload), data_type, count, p1, p2, payload.hex()


class Wire:
    """A raw TCP circuit that records the masked replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.transcript = Transcript(port)
        self.buffer = b""
        self.closed = False

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        # remember the element count of each data request, by (command, ioid, type): the masks need it
        view = data
        while len(view) >= 16:
            command, size, data_type, count, _, p2 = struct.unpack(">HHHHII", view[:16])
            start = 16
            if size == 0xFFFF:
                size, count = struct.unpack(">II", view[16:24])
                start = 24
            if command in (Command.READ_NOTIFY, Command.READ, Command.EVENT_ADD):
                self.transcript.asked.setdefault((command, p2, data_type), set()).add(count)
            view = view[start + size:]
        self.sock.sendall(data)

    def _next(self):
        while True:
            if len(self.buffer) >= 16:
                command, size, data_type, count, p1, p2 = struct.unpack(">HHHHII", self.buffer[:16])
                start = 16
                if size == 0xFFFF:
                    if len(self.buffer) < 24:
                        size = None
                    else:
                        size, count = struct.unpack(">II", self.buffer[16:24])
                        start = 24
                if size is not None and len(self.buffer) >= start + size:
                    message = (command, data_type, count, p1, p2, self.buffer[start:start + size])
                    self.buffer = self.buffer[start + size:]
                    return message
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return "TIMEOUT"
            if not chunk:
                return "EOF"
            self.buffer += chunk

    def exchange(self, data: bytes, *until: int, unordered: bool = False) -> list:
        """Send ``data``, then read until every command of ``until`` came (as often as listed), or the
        server closed the circuit. ``unordered``: rsrv sends these replies from two threads (the event
        task for monitor updates and put-callback completions), so their order is not defined."""
        self.send(data)
        waiting = collections.Counter(until)
        got = []
        while +waiting and not self.closed:
            message = self._next()
            if isinstance(message, str):
                self.closed = True
            else:
                waiting[message[0]] -= 1
            got.append(self.transcript.describe(message))
        if unordered:
            got.sort(key=repr)
        self.transcript.lines.extend(got)
        return got

    def open(self, *names: str, version: int = 13, priority: int = 0) -> list[int]:
        """VERSION and one CREATE_CHAN per name; the sids."""
        requests = header(Command.VERSION, 0, priority, version, 0, 0)
        for cid, name in enumerate(names, 1):
            payload = name_payload(name)
            requests += header(Command.CREATE_CHAN, len(payload), 0, 0, cid, version) + payload
        before = len(self.transcript.sids)
        self.exchange(requests + ECHO, Command.ECHO)
        by_name = {v: k for k, v in self.transcript.sids.items()}
        return [by_name[f"sid{i}"] for i in range(before, len(self.transcript.sids))]


def compare(pair, scenario) -> None:
    """Run ``scenario(wire)`` against both servers; the masked transcripts must be equal."""
    transcripts = []
    for env in (pair.reference, pair.ours):
        wire = Wire(int(env["EPICS_CAS_SERVER_PORT"]))
        try:
            scenario(wire)
        finally:
            wire.close()
        transcripts.append([repr(line) for line in wire.transcript.lines])
    reference, ours = transcripts
    if ours != reference:
        diff = "\n".join(difflib.unified_diff(reference, ours, "C softIoc", "ours", lineterm="", n=3))
        raise AssertionError(f"the replies differ:\n{diff}")
