"""Cutting received bytes into CA messages: a TCP stream parser and a UDP datagram parser.

`StreamParser` takes bytes split anywhere (one byte at a time, or many messages in one chunk). Its buffer is
a ``bytearray`` read through an offset and compacted once per `feed`, so parsing N messages costs O(total
bytes), never O(N x buffer). `next_message` returns a message object, `next_raw` a plain tuple
``(command, data_type, data_count, parameter1, parameter2, payload)`` for servers that dispatch on command
ids; both return `NEED_DATA` until a whole message is buffered. `parse_datagram` cuts one UDP datagram.

Errors (all `caproto.errors.FramingError`, a `RemoteProtocolError`; every one carries ``header``, the
offending `Header` or None):

`PayloadTooLarge`
    The header announces a payload above ``max_payload`` (EPICS_CA_MAX_ARRAY_BYTES semantics), or above
    `PAYLOAD_SIZE_CEILING` when no maximum is set. Raised as soon as the header is read, before any of the
    payload is buffered. The stream parser then skips that message's bytes as they arrive (as rsrv does), so
    the circuit may go on: answer ERROR ECA_TOLARGE, or close.
`MalformedHeader`
    A payload size that is not a multiple of 8 (rsrv drops such a client), or a payload too short for what
    its command must carry. The stream cannot be trusted after a misaligned size: the parser raises the same
    error on every later call.
`TruncatedDatagram`
    A datagram that ends inside a header or a payload.
`UnknownCommand`
    `next_message` / `parse_datagram` met a command id that the peer's role never sends. The stream parser
    has consumed that message and may go on; `next_raw` returns every command id, known or not.

`parse_datagram` errors also carry ``messages``: the messages parsed before the bad one.
"""
from __future__ import annotations

import struct
from collections.abc import Iterator

from .constants import EXTENDED_MARKER, Role
from .errors import FramingError, MalformedHeader, PayloadTooLarge, TruncatedDatagram, UnknownCommand
from .messages import _CHECKS, _CLASSES, _EMPTY_CLASSES, _UNDECODED, Header, Message

__all__ = ["NEED_DATA", "PAYLOAD_SIZE_CEILING", "RawMessage", "StreamParser", "parse_datagram"]

# No honest CA message is this large; a size above it is rejected even when no maximum is configured.
PAYLOAD_SIZE_CEILING = 1 << 31

RawMessage = tuple[int, int, int, int, int, bytes]

_STANDARD = struct.Struct(">HHHHII")
_unpack_standard = _STANDARD.unpack_from
_unpack_extension = struct.Struct(">II").unpack_from
_new_header = _new_message = tuple.__new__
# How a received message is built, by what the sender is. Picked by identity: hashing an Enum member for
# a dict lookup costs more than parsing a small datagram's header.
_SERVER = Role.SERVER
_SENT_BY_CLIENTS = _CLASSES[Role.CLIENT], _EMPTY_CLASSES[Role.CLIENT], _CHECKS[Role.CLIENT]
_SENT_BY_SERVERS = _CLASSES[Role.SERVER], _EMPTY_CLASSES[Role.SERVER], _CHECKS[Role.SERVER]
# Payloads this large are memoryview slices of an immutable chunk rather than copies.
_VIEW_FROM = 1 << 16


class _NeedData:
    """Sentinel: no complete message is buffered yet."""
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()


def _error(cls: type[FramingError], text: str, header: Header | None) -> FramingError:
    exc = cls(text)
    exc.header = header
    return exc


class StreamParser:
    """Bytes of one TCP circuit in, messages out. ``role`` is *our* role: a server parses requests.

    ``max_payload`` is the largest payload accepted, in bytes (None: only `PAYLOAD_SIZE_CEILING`).

    ``extended_headers``: whether a payload size of 0xFFFF announces an extended header. A server sets it
    from the client's minor version: CA 4.9 brought extended headers, and to an older client 0xFFFF is a
    plain size (not a multiple of 8, so the message is malformed), as rsrv reads it.

    Payloads come out as ``bytes`` or, from 64 KiB up, as a read-only ``memoryview``: of the ``bytes`` object
    that was fed when one chunk held the whole message, else of the one ``bytes`` object its chunks were
    joined into once the last of them arrived (the chunks of a large message are only collected until then:
    growing a buffer chunk by chunk would copy it again and again).
    """
    __slots__ = ("role", "max_payload", "extended_headers", "_limit", "_fast_below", "_buf", "_pos", "_skip",
                 "_broken", "_classes", "_empty_classes", "_checks", "_chunks", "_gathered", "_wanted")

    def __init__(self, role: Role, max_payload: int | None = None, extended_headers: bool = True) -> None:
        self.role = role
        self.max_payload = max_payload
        self.extended_headers = extended_headers
        self._limit = PAYLOAD_SIZE_CEILING if max_payload is None else min(max_payload, PAYLOAD_SIZE_CEILING)
        # Payload sizes below this take the inline path (never the extended marker 0xFFFF).
        self._fast_below = min(self._limit + 1, EXTENDED_MARKER)
        # The unparsed bytes are _buf[_pos:]. _buf is the caller's own bytes object while whole messages are
        # read out of it, and a bytearray while a partial message waits for more.
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._skip = 0     # bytes of an oversized message still to discard as they arrive
        self._broken: FramingError | None = None
        self._classes, self._empty_classes, self._checks = (_SENT_BY_CLIENTS if role is _SERVER
                                                            else _SENT_BY_SERVERS)
        # While a large message is incomplete: its chunks so far, their total size, the size it needs.
        self._chunks: list[bytes | memoryview] = []
        self._gathered = 0
        self._wanted = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as a message (a partial message at the end of a stream)."""
        return len(self._buf) - self._pos + self._gathered

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes."""
        if self._skip:
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = memoryview(data)[dropped:]
        if self._wanted:
            self._gather(data)
            return
        buf = self._buf
        pos = self._pos
        if pos >= len(buf):
            # Nothing pending: read straight out of an immutable bytes object; copy anything else, which the
            # caller may reuse (a recv_into buffer).
            self._buf = data if type(data) is bytes else bytes(data)
        elif type(buf) is bytes:
            self._buf = bytearray(memoryview(buf)[pos:])
            self._buf += data
        else:
            # One move per feed of what is left unparsed (a partial message), never per message.
            del buf[:pos]
            buf += data
        self._pos = 0

    def _gather(self, data: bytes | bytearray | memoryview) -> None:
        self._chunks.append(data if type(data) is bytes else bytes(data))
        self._gathered += len(data)
        if self._gathered >= self._wanted:
            self._buf = b"".join(self._chunks)
            self._pos = 0
            self._chunks = []
            self._gathered = self._wanted = 0

    # The two readers below share one shape: a fast path inline for the common message (aligned payload
    # below both 64 KiB and max_payload), `_frame` for everything else. The duplication is deliberate:
    # a method call per message costs as much as the rest of the fast path.

    def next_raw(self) -> RawMessage | _NeedData:
        """``(command, data_type, data_count, parameter1, parameter2, payload)`` or `NEED_DATA`.

        ``payload`` is ``b""`` when empty; the header's sizes are the true (extended) ones.
        """
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < 16:
            return NEED_DATA
        command, size, data_type, data_count, p1, p2 = _unpack_standard(buf, pos)
        if not size:
            self._pos = pos + 16
            return command, data_type, data_count, p1, p2, b""
        if size & 7 or size >= self._fast_below:
            frame = self._frame()
            if frame is NEED_DATA:
                return NEED_DATA
            command, _, data_type, data_count, p1, p2, payload = frame
            return command, data_type, data_count, p1, p2, payload
        end = pos + 16 + size
        if end > len(buf):
            return NEED_DATA
        self._pos = end
        if type(buf) is bytes:
            return command, data_type, data_count, p1, p2, buf[pos + 16:end]
        return command, data_type, data_count, p1, p2, bytes(buf[pos + 16:end])

    def next_raws(self) -> list[RawMessage]:
        """Every whole message buffered, as `next_raw` tuples (an empty list when none is whole).

        For a server reading a stream of small requests: one call per received chunk instead of one per
        message. An error is raised only for the first message of a batch: the messages before a bad one
        are returned first, and the next call raises.
        """
        batch: list[RawMessage] = []
        append = batch.append
        while True:
            buf = self._buf
            pos = self._pos
            available = len(buf)
            fast_below = self._fast_below
            copy = type(buf) is not bytes
            careful = False
            while available - pos >= 16:
                command, size, data_type, data_count, p1, p2 = _unpack_standard(buf, pos)
                if not size:
                    pos += 16
                    append((command, data_type, data_count, p1, p2, b""))
                    continue
                if size & 7 or size >= fast_below:
                    careful = True
                    break
                end = pos + 16 + size
                if end > available:
                    break
                append((command, data_type, data_count, p1, p2,
                        bytes(buf[pos + 16:end]) if copy else buf[pos + 16:end]))
                pos = end
            self._pos = pos
            if not careful or batch:
                return batch
            # An extended, large or misaligned message at the head of the buffer: the careful path.
            frame = self._frame()
            if frame is NEED_DATA:
                return batch
            command, _, data_type, data_count, p1, p2, payload = frame
            append((command, data_type, data_count, p1, p2, payload))

    def next_message(self) -> Message | _NeedData:
        """The next whole message, or `NEED_DATA`."""
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < 16:
            return NEED_DATA
        command, size, data_type, data_count, p1, p2 = _unpack_standard(buf, pos)
        if not size:
            self._pos = pos + 16
            fields = (command, 0, data_type, data_count, p1, p2, b"", [None, _UNDECODED, _UNDECODED])
            classes = self._empty_classes
        elif size & 7 or size >= self._fast_below:
            frame = self._frame()
            if frame is NEED_DATA:
                return NEED_DATA
            fields = (*frame, [None, _UNDECODED, _UNDECODED])
            classes = self._classes if frame[1] else self._empty_classes   # (an extended header may say 0)
        else:
            end = pos + 16 + size
            if end > len(buf):
                return NEED_DATA
            self._pos = end
            payload = buf[pos + 16:end] if type(buf) is bytes else bytes(buf[pos + 16:end])
            fields = (command, size, data_type, data_count, p1, p2, payload, [None, _UNDECODED, _UNDECODED])
            classes = self._classes
        try:
            cls = classes[command]
            if cls is None:
                raise UnknownCommand(f"command {command} is not one a {self.role.peer.value} sends")
            check = self._checks[command]
            if check is not None:
                check(fields)
        except IndexError:
            raise _error(UnknownCommand, f"command {command} is not one a {self.role.peer.value} sends",
                         _new_header(Header, fields[:6])) from None
        except FramingError as exc:
            exc.header = _new_header(Header, fields[:6])
            raise
        return _new_message(cls, fields)

    def _frame(self) -> tuple | _NeedData:
        """The careful path: (command, payload_size, data_type, data_count, parameter1, parameter2,
        payload) or NEED_DATA, for extended headers, large or oversized payloads and misaligned sizes.

        A misaligned size breaks the stream for good: the parser stays at that header, so every later call
        comes here and raises the same error again."""
        if self._broken is not None:
            raise self._broken
        buf = self._buf
        pos = self._pos
        available = len(buf) - pos
        command, size, data_type, data_count, p1, p2 = _unpack_standard(buf, pos)
        start = pos + 16
        if size == EXTENDED_MARKER and self.extended_headers:
            if available < 24:
                return NEED_DATA
            size, data_count = _unpack_extension(buf, start)
            start += 8
        if size & 7:
            self._broken = _error(
                MalformedHeader, f"payload size {size} of command {command} is not a multiple of 8",
                _new_header(Header, (command, size, data_type, data_count, p1, p2)))
            raise self._broken
        if size > self._limit:
            self._reject(command, size, data_type, data_count, p1, p2, start - pos)
        end = start + size
        if end > len(buf):
            if size >= _VIEW_FROM:
                # Collect the rest of this message without copying it until it is whole (see _gather).
                self._chunks = [memoryview(buf)[pos:]]   # _buf lets go of buf: nothing changes it now
                self._gathered = len(buf) - pos
                self._wanted = end - pos
                self._buf = b""
                self._pos = 0
            return NEED_DATA
        self._pos = end
        if size < _VIEW_FROM:
            payload = buf[start:end] if type(buf) is bytes else bytes(buf[start:end])
        elif type(buf) is bytes:
            payload = memoryview(buf)[start:end]
        else:
            # Hand the accumulated bytearray over to the payload instead of copying out of it; parsing
            # goes on in a fresh buffer holding what follows (usually nothing or a partial header).
            view = memoryview(buf).toreadonly()
            payload = view[start:end]
            self._buf = bytes(view[end:])
            self._pos = 0
        return command, size, data_type, data_count, p1, p2, payload

    def _reject(self, command: int, size: int, data_type: int, data_count: int, p1: int, p2: int,
                header_size: int) -> None:
        header = _new_header(Header, (command, size, data_type, data_count, p1, p2))
        total = header_size + size
        here = min(total, len(self._buf) - self._pos)
        self._pos += here
        self._skip = total - here
        limit = "the ceiling" if self.max_payload is None else "max_payload"
        raise _error(PayloadTooLarge, f"command {command} announces a {size}-byte payload; {limit} is "
                                      f"{self._limit}", header)

    def __iter__(self) -> Iterator[Message]:
        """The whole messages buffered so far."""
        while True:
            msg = self.next_message()
            if msg is NEED_DATA:
                return
            yield msg


def parse_datagram(data: bytes | bytearray | memoryview, role: Role,
                   max_payload: int | None = None) -> list[Message]:
    """The messages of one UDP datagram received by ``role`` (an empty datagram gives none)."""
    limit = PAYLOAD_SIZE_CEILING if max_payload is None else min(max_payload, PAYLOAD_SIZE_CEILING)
    if type(data) is not bytes:
        data = bytes(data)
    classes, empty_classes, checks = _SENT_BY_CLIENTS if role is _SERVER else _SENT_BY_SERVERS
    end_of_data = len(data)
    messages: list[Message] = []
    append = messages.append
    pos = 0
    try:
        while pos < end_of_data:
            try:
                command, size, data_type, data_count, p1, p2 = _unpack_standard(data, pos)
            except struct.error:
                raise _error(TruncatedDatagram,
                             f"{end_of_data - pos} bytes left at offset {pos}: not a header", None) from None
            start = pos + 16
            if size == EXTENDED_MARKER:
                if end_of_data - pos < 24:
                    raise _error(TruncatedDatagram, f"extended header cut at offset {pos}", None)
                size, data_count = _unpack_extension(data, start)
                start += 8
            pos = start + size
            try:
                cls = (classes if size else empty_classes)[command]
            except IndexError:
                cls = None
            if size & 7 or size > limit or pos > end_of_data or cls is None:
                raise _datagram_error(role, limit, end_of_data - start,
                                      (command, size, data_type, data_count, p1, p2))
            fields = (command, size, data_type, data_count, p1, p2, data[start:pos] if size else b"",
                      [None, _UNDECODED, _UNDECODED])
            check = checks[command]
            if check is not None:
                try:
                    check(fields)
                except FramingError as exc:
                    exc.header = _new_header(Header, fields[:6])
                    raise
            append(_new_message(cls, fields))
    except FramingError as exc:
        exc.messages = messages
        raise
    return messages


def _datagram_error(role: Role, limit: int, remaining: int, header_fields: tuple) -> FramingError:
    """Why a datagram's message cannot be read (checked in this order: alignment, size, length, command)."""
    header = _new_header(Header, header_fields)
    command, size = header_fields[:2]
    if size & 7:
        return _error(MalformedHeader, f"payload size {size} of command {command} is not a multiple of 8",
                      header)
    if size > limit:
        return _error(PayloadTooLarge, f"command {command} announces a {size}-byte payload; the limit is "
                                       f"{limit}", header)
    if size > remaining:
        return _error(TruncatedDatagram, f"command {command} announces {size} payload bytes, {remaining} "
                                         "remain", header)
    return _error(UnknownCommand, f"command {command} is not one a {role.peer.value} sends", header)
