"""One small immutable class per Channel Access message, and the 16/24-byte header that frames them all.

Wire format (CA protocol 4.13, all big-endian)::

    u16 command | u16 payload_size | u16 data_type | u16 data_count | u32 parameter1 | u32 parameter2

followed by ``payload_size`` bytes of payload, always padded to a multiple of 8. When the payload reaches
0xFFFF bytes or the count 0xFFFF elements, the *extended* form is used: ``payload_size`` is 0xFFFF and
``data_count`` 0 in those 16 bytes, and a u32 payload size and a u32 count follow (24 bytes in all). A
receiver recognises the extended form by ``payload_size == 0xFFFF`` alone, as rsrv and libca do.

Each class below names its fields as the protocol specification does and knows where they live in the
header and payload. Every message has ``COMMAND``, ``header`` (a `Header`), ``payload`` (bytes-like, padded),
``bytes(msg)`` / ``msg.to_bytes()``, equality by wire content and a readable ``repr``. Classes are
registered per (command, *sender*): VERSION, CLEAR_CHANNEL, ECHO and others exist in both directions, and a
response is never taken for a request. ``message_class(command, sender)`` finds a class;
``read_message(header, payload, role)`` builds the message *we* (``role``) received.

Messages that carry DBR data (READ/READ_NOTIFY/EVENT_ADD responses, WRITE/WRITE_NOTIFY requests) take
``data`` (values) plus optional ``metadata`` and encode them with `caproto.dbr.encode_payload`; their
``from_payload(...)`` constructor takes an already-encoded payload and does no coding at all (the server's
hot path). Received data decodes lazily, on first access to ``data`` or ``metadata``.

A message received from the wire keeps the header it came with, so ``bytes(msg)`` gives back the same bytes
(up to the choice of header form, which is always the canonical one).

Messages are tuple subclasses (command, payload_size, data_type, data_count, parameter1, parameter2,
payload, cache), so that reading a field is one C-level item lookup and a message cannot be changed; the
last item caches what is derived from the others: the packed header, the decoded values (or name) and the
metadata. Compare messages with ``==`` (class and wire content), not as tuples.
"""
from __future__ import annotations

import ipaddress
import operator
import struct
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

from . import dbr
from .constants import DO_REPLY, EXTENDED_MARKER, Command, Role
from .errors import LocalProtocolError, MalformedHeader, RemoteProtocolError, UnknownCommand

__all__ = [
    "Header", "Message", "pack_header", "pack_message", "encode", "message_class", "read_message",
    "VersionRequest", "VersionResponse", "SearchRequest", "SearchResponse", "NotFoundResponse",
    "EchoRequest", "EchoResponse", "RsrvIsUpResponse", "RepeaterRegisterRequest", "RepeaterConfirmResponse",
    "EventAddRequest", "EventAddResponse", "EventCancelRequest", "EventCancelResponse", "ReadRequest",
    "ReadResponse", "WriteRequest", "EventsOffRequest", "EventsOnRequest", "ReadSyncRequest",
    "ReadSyncResponse", "ErrorResponse", "ClearChannelRequest", "ClearChannelResponse", "ReadNotifyRequest",
    "ReadNotifyResponse", "CreateChanRequest", "CreateChanResponse", "WriteNotifyRequest",
    "WriteNotifyResponse", "ClientNameRequest", "HostNameRequest", "AccessRightsResponse",
    "CreateChFailResponse", "ServerDisconnResponse",
]

_STANDARD = struct.Struct(">HHHHII")
_EXTENDED = struct.Struct(">HHHHIIII")
_EXTENSION = struct.Struct(">II")
STANDARD_HEADER_SIZE = _STANDARD.size
EXTENDED_HEADER_SIZE = _EXTENDED.size

_CLIENT = Role.CLIENT
_SERVER = Role.SERVER


class Header(NamedTuple):
    """The six header fields with their true sizes (the extended form is a matter of packing only)."""
    command: int
    payload_size: int
    data_type: int
    data_count: int
    parameter1: int
    parameter2: int

    def pack(self) -> bytes:
        """16 bytes, or 24 when the payload size or the count does not fit in 16 bits."""
        return pack_header(*self)

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> Header:
        """The header at ``offset`` in ``data`` (standard or extended form)."""
        return cls.unpack_with_size(data, offset)[0]

    @classmethod
    def unpack_with_size(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[Header, int]:
        """The header at ``offset`` and how many bytes it took (16 or 24); `MalformedHeader` if cut short."""
        if len(data) - offset < STANDARD_HEADER_SIZE:
            raise MalformedHeader(f"{len(data) - offset} bytes cannot hold a 16-byte CA header")
        fields = _STANDARD.unpack_from(data, offset)
        if fields[1] != EXTENDED_MARKER:
            return _tuple_new(cls, fields), STANDARD_HEADER_SIZE
        if len(data) - offset < EXTENDED_HEADER_SIZE:
            raise MalformedHeader(f"{len(data) - offset} bytes cannot hold a 24-byte extended CA header")
        payload_size, data_count = _EXTENSION.unpack_from(data, offset + STANDARD_HEADER_SIZE)
        command, _, data_type, _, parameter1, parameter2 = fields
        return (_tuple_new(cls, (command, payload_size, data_type, data_count, parameter1, parameter2)),
                EXTENDED_HEADER_SIZE)


_tuple_new = tuple.__new__


def pack_header(command: int, payload_size: int, data_type: int, data_count: int, parameter1: int,
                parameter2: int) -> bytes:
    """The wire header, extended when ``payload_size`` or ``data_count`` reaches 0xFFFF."""
    try:
        if payload_size < EXTENDED_MARKER and data_count < EXTENDED_MARKER:
            return _STANDARD.pack(command, payload_size, data_type, data_count, parameter1, parameter2)
        return _EXTENDED.pack(command, EXTENDED_MARKER, data_type, 0, parameter1, parameter2, payload_size,
                              data_count)
    except (struct.error, TypeError) as exc:
        raise LocalProtocolError(
            f"header field out of range or not an integer: command={command} payload_size={payload_size} "
            f"data_type={data_type} data_count={data_count} parameter1={parameter1} "
            f"parameter2={parameter2} ({exc})") from None


def pack_message(command: int, data_type: int, data_count: int, parameter1: int, parameter2: int,
                 payload: bytes = b"") -> bytes:
    """Header + payload for a payload already padded to 8 bytes: the counterpart of ``next_raw()``."""
    return pack_header(command, len(payload), data_type, data_count, parameter1, parameter2) + payload


def _padded(raw: bytes) -> bytes:
    return raw + _PADDING[len(raw) & 7]


_PADDING = tuple(bytes(-n % 8) for n in range(8))
# What a NUL-terminated name of length n % 8 needs after it: the terminator and the padding (1 to 8 NULs).
_TERMINATION = tuple(bytes(8 - n) for n in range(8))


_ENCODING = dbr.STRING_ENCODING


def _encode_name(name: str | bytes) -> bytes:
    """NUL-terminated, then padded to 8 (a 7-character name takes 8 bytes, an 8-character one 16)."""
    raw = name if isinstance(name, bytes) else name.encode(_ENCODING, "surrogateescape")
    if b"\0" in raw:
        raise LocalProtocolError(f"a CA name cannot contain NUL: {name!r}")
    return raw + _TERMINATION[len(raw) & 7]


def _decode_name(payload: bytes) -> str:
    if type(payload) is not bytes:
        payload = bytes(payload)
    return payload.partition(b"\0")[0].decode(_ENCODING, "surrogateescape")


def _name_field() -> property:
    """A ``name`` read from the payload once, then from the message's cache."""
    def name(self: Message) -> str:
        cache = self[7]
        text = cache[1]
        if text is _UNDECODED:
            text = cache[1] = _decode_name(self[6])
        return text
    return property(name, doc="the name, as text")


def _ip_to_int(address: str | int) -> int:
    if isinstance(address, int):
        return address
    try:
        return int(ipaddress.IPv4Address(address))
    except ValueError:
        raise LocalProtocolError(f"not an IPv4 address: {address!r}") from None


def _int_to_ip(value: int) -> str:
    return f"{value >> 24}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


def _header_field(index: int, doc: str) -> property:
    return property(operator.itemgetter(index), doc=doc)


def _type_name(data_type: int) -> str:
    try:
        return f"ChannelType.{dbr.ChannelType(data_type).name}"
    except ValueError:
        return str(data_type)


_REGISTRY: dict[tuple[int, Role], type[Message]] = {}
# Per sender, indexed by command id: how a received 8-tuple (see Message) becomes a message. _CLASSES has
# the class that sender sends with a payload, _EMPTY_CLASSES with an empty one (None: that sender never
# sends that command). They differ for EVENT_ADD from a server: an update always has a payload, the
# confirmation of EVENT_CANCEL never. _CHECKS has, for the commands whose payload has a structure, a function
# of the 8-tuple that raises MalformedHeader if the payload cannot hold it. Plain tables rather than a
# function per command: most messages are then built with one C call, tuple.__new__(cls, fields).
_CLASSES: dict[Role, list[type[Message] | None]] = {
    _CLIENT: [None] * (max(Command) + 1),
    _SERVER: [None] * (max(Command) + 1),
}
_EMPTY_CLASSES: dict[Role, list[type[Message] | None]] = {
    _CLIENT: [None] * (max(Command) + 1),
    _SERVER: [None] * (max(Command) + 1),
}
_CHECKS: dict[Role, list[Callable[[tuple], None] | None]] = {
    _CLIENT: [None] * (max(Command) + 1),
    _SERVER: [None] * (max(Command) + 1),
}
# The cache (a message's last item) is [packed header, values or name, metadata]; the last two hold this
# until they are first read.
_UNDECODED = object()


def _make(cls: type, data_type: int, data_count: int, parameter1: int, parameter2: int,
          payload: bytes = b"", decoded: Any = _UNDECODED) -> Any:
    """A message built from fields: the header is packed now, which validates every field. ``decoded`` is
    what the payload decodes to, when the caller has it: a name given as a str that encoded (no NUL)
    decodes back to itself."""
    command = cls._CMD
    size = len(payload)
    packed = pack_header(command, size, data_type, data_count, parameter1, parameter2)
    return _tuple_new(cls, (command, size, data_type, data_count, parameter1, parameter2, payload,
                            [packed, decoded, _UNDECODED]))


def _rebuild(cls: type, fields: tuple) -> Message:
    return _tuple_new(cls, (*fields, [None, _UNDECODED, _UNDECODED]))


class Message(tuple):
    """Base of every CA message: header fields and payload, immutable once built."""
    __slots__ = ()

    COMMAND: ClassVar[int]
    SENDER: ClassVar[Role]
    _CMD: ClassVar[int]
    # Field names for repr, in constructor order.
    _FIELDS: ClassVar[tuple[str, ...]] = ()
    # Subclasses that share (COMMAND, SENDER) with another class set this False and are decoded by it.
    _REGISTER: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "COMMAND" not in cls.__dict__:
            return
        cls._CMD = int(cls.COMMAND)
        if cls.__dict__.get("_REGISTER", True):
            key = (cls._CMD, cls.SENDER)
            if key in _REGISTRY:
                raise TypeError(f"{cls.__name__} and {_REGISTRY[key].__name__} both claim {key}")
            _REGISTRY[key] = cls
            _CLASSES[cls.SENDER][cls._CMD] = _EMPTY_CLASSES[cls.SENDER][cls._CMD] = cls
            if "_check" in cls.__dict__:
                _CHECKS[cls.SENDER][cls._CMD] = cls._check

    @property
    def header(self) -> Header:
        return _tuple_new(Header, self[:6])

    payload = property(operator.itemgetter(6), doc="the payload, padded to 8 bytes")

    def to_bytes(self) -> bytes:
        cache = self[7]
        packed = cache[0]
        if packed is None:
            packed = cache[0] = pack_header(*self[:6])
        return packed + self[6]

    __bytes__ = to_bytes

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self[:7] == other[:7]

    def __ne__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self[:7] != other[:7]

    def __hash__(self) -> int:
        return hash((type(self), self[:6], bytes(self[6])))

    def __reduce__(self) -> tuple:
        return _rebuild, (type(self), self[:7])

    def _repr_value(self, name: str) -> str:
        value = getattr(self, name)
        if name == "data_type":
            return _type_name(value)
        return repr(value)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={self._repr_value(name)}" for name in self._FIELDS)
        return f"{type(self).__name__}({fields})"


def message_class(command: int, sender: Role) -> type[Message]:
    """The class of the message that ``sender`` sends with ``command``; `KeyError` if there is none."""
    return _REGISTRY[(int(command), sender)]


def read_message(header: Header, payload: bytes, role: Role) -> Message:
    """The message that *we*, playing ``role``, received (so it was sent by ``role.peer``).

    Raises `UnknownCommand` for a command the peer's role never sends, `MalformedHeader` when the payload
    cannot hold what the command needs.
    """
    sender = role.peer
    classes = (_CLASSES if payload else _EMPTY_CLASSES)[sender]
    command = header[0]
    cls = classes[command] if command < len(classes) else None
    if cls is None:
        raise UnknownCommand(f"command {command} is not one a {sender.value} sends ({header})")
    fields = (command, len(payload), header[2], header[3], header[4], header[5], payload,
              [None, _UNDECODED, _UNDECODED])
    check = _CHECKS[sender][command]
    if check is not None:
        check(fields)
    return _tuple_new(cls, fields)


def encode(*messages: Message) -> bytes:
    """The wire bytes of ``messages``, in order."""
    return b"".join([m.to_bytes() for m in messages])


# --- messages with DBR data ------------------------------------------------------------------------------

def _count_of(values: Any) -> int:
    if isinstance(values, (str, bytes, int, float)) or getattr(values, "ndim", 1) == 0:
        return 1
    return len(values)


_DBR_TYPES = frozenset(int(t) for t in dbr.ChannelType)
_decode_values = dbr.decode_values
_decode_metadata = dbr.decode_metadata


def _require_known_type(data_type: int, where: str) -> None:
    if data_type not in _DBR_TYPES:
        raise RemoteProtocolError(f"{where}: data_type {data_type} is not a DBR type")


class _DataMessage(Message):
    """A message whose payload is a DBR structure: ``data`` and ``metadata`` decode it on first use."""
    __slots__ = ()
    # rsrv's replies carry room for one element even at count 0 (dbr_size_n(type, 0)); this also keeps an
    # EVENT_ADD update from ever being empty, which would make it EVENT_CANCEL's confirmation.
    _ONE_ELEMENT_AT_LEAST: ClassVar[bool] = False

    @classmethod
    def _with_data(cls, data: Any, data_type: int, data_count: int | None, parameter1: int,
                   parameter2: int, metadata: dbr.Metadata | None) -> Any:
        if data_count is None:
            data_count = _count_of(data)
        try:
            payload = dbr.encode_payload(data_type, data, metadata, count=data_count)
        except (KeyError, ValueError, TypeError, struct.error, OverflowError) as exc:
            raise LocalProtocolError(
                f"{cls.__name__}: cannot encode {data!r} as {_type_name(data_type)} "
                f"x {data_count}: {exc}") from None
        if cls._ONE_ELEMENT_AT_LEAST and not data_count:
            floor = dbr.payload_size(data_type, 1)
            if len(payload) < floor:
                payload += bytes(floor - len(payload))
        return _make(cls, data_type, data_count, parameter1, parameter2, payload)

    @classmethod
    def _with_payload(cls, payload: bytes, data_type: int, data_count: int, parameter1: int,
                      parameter2: int) -> Any:
        return _make(cls, data_type, data_count, parameter1, parameter2,
                     payload if not len(payload) & 7 else _padded(bytes(payload)))

    # Values and metadata decode separately: a monitor callback that reads only ``data`` never pays for
    # building a Metadata.

    @property
    def data(self) -> Any:
        """The values: a numpy array (big-endian view of the payload) or a list of str."""
        cache = self[7]
        values = cache[1]
        if values is _UNDECODED:
            try:
                values = cache[1] = _decode_values(self[2], self[3], self[6])
            except KeyError:
                _require_known_type(self[2], type(self).__name__)
                raise
        return values

    @property
    def metadata(self) -> dbr.Metadata:
        cache = self[7]
        metadata = cache[2]
        if metadata is _UNDECODED:
            try:
                metadata = cache[2] = _decode_metadata(self[2], self[6])
            except KeyError:
                _require_known_type(self[2], type(self).__name__)
                raise
        return metadata

    def _repr_value(self, name: str) -> str:
        if name in ("data", "metadata"):
            try:
                return repr(getattr(self, name))
            except (RemoteProtocolError, ValueError) as exc:
                return f"<{len(self[6])} bytes that do not decode: {exc}>"
        return super()._repr_value(name)


# --- VERSION ------------------------------------------------------------------------------------------------

class VersionRequest(Message):
    """The client's protocol version and circuit priority, first on every circuit and in every search
    datagram. Over UDP libca puts 1 ("sequence number valid") in ``priority`` and a sequence number in
    ``sequence_id``."""
    __slots__ = ()
    COMMAND = Command.VERSION
    SENDER = _CLIENT
    _FIELDS = ("priority", "version", "sequence_id")

    def __new__(cls, priority: int, version: int, sequence_id: int = 0) -> VersionRequest:
        return _make(cls, priority, version, sequence_id, 0)

    priority = _header_field(2, "circuit priority 0-99 (TCP); 1 = sequence_id valid (UDP)")
    version = _header_field(3, "minor protocol version")
    sequence_id = _header_field(4, "search datagram sequence number (UDP)")


class VersionResponse(Message):
    """The server's protocol version: first on every circuit and in every search reply datagram, where
    rsrv echoes the request's ``priority`` flag and ``sequence_id``."""
    __slots__ = ()
    COMMAND = Command.VERSION
    SENDER = _SERVER
    _FIELDS = ("version", "priority", "sequence_id")

    def __new__(cls, version: int, priority: int = 0, sequence_id: int = 0) -> VersionResponse:
        return _make(cls, priority, version, sequence_id, 0)

    priority = _header_field(2, "0 on TCP; 1 = sequence_id valid (UDP)")
    version = _header_field(3, "minor protocol version")
    sequence_id = _header_field(4, "the sequence number of the search datagram answered (UDP)")


# --- SEARCH / NOT_FOUND ------------------------------------------------------------------------------------

class SearchRequest(Message):
    """Who serves ``name``? ``reply`` is DO_REPLY (a server that lacks the name answers NOT_FOUND over TCP)
    or DONT_REPLY (what libca sends over UDP)."""
    __slots__ = ()
    COMMAND = Command.SEARCH
    SENDER = _CLIENT
    _FIELDS = ("name", "cid", "version", "reply")

    def __new__(cls, name: str, cid: int, version: int, reply: int = DO_REPLY) -> SearchRequest:
        return _make(cls, reply, version, cid, cid, _encode_name(name),
                     name if type(name) is str else _UNDECODED)

    name = _name_field()

    reply = _header_field(2, "DO_REPLY or DONT_REPLY")
    version = _header_field(3, "the client's minor protocol version")
    cid = _header_field(5, "the search id (libca sends it in both parameters; servers answer parameter 2)")


_SEARCH_VERSION = struct.Struct(">H6x")


class SearchResponse(Message):
    """``name`` is served at ``ip``:``port``. ``ip`` "255.255.255.255" means "the address this reply
    came from". Over UDP the payload carries the server's minor ``version``; over TCP there is no payload
    and ``version`` is None."""
    __slots__ = ()
    COMMAND = Command.SEARCH
    SENDER = _SERVER
    _FIELDS = ("port", "ip", "cid", "version")

    def __new__(cls, port: int, ip: str | int, cid: int, version: int | None) -> SearchResponse:
        try:
            payload = b"" if version is None else _SEARCH_VERSION.pack(version)
        except struct.error as exc:
            raise LocalProtocolError(f"SearchResponse: {exc}") from None
        return _make(cls, port, 0, _ip_to_int(ip), cid, payload)

    @staticmethod
    def _check(fields: tuple) -> None:
        if 0 < fields[1] < 2:
            raise MalformedHeader(f"SEARCH reply payload of {fields[1]} bytes cannot hold a version")

    port = _header_field(2, "the server's TCP port")
    cid = _header_field(5, "the search id being answered")

    @property
    def ip(self) -> str:
        return _int_to_ip(self[4])

    @property
    def version(self) -> int | None:
        if not self[6]:
            return None
        return _SEARCH_VERSION.unpack_from(self[6])[0]


class NotFoundResponse(Message):
    """The server does not have the name of a DO_REPLY search (over TCP: rsrv stays silent over UDP)."""
    __slots__ = ()
    COMMAND = Command.NOT_FOUND
    SENDER = _SERVER
    _FIELDS = ("version", "cid")

    def __new__(cls, version: int, cid: int) -> NotFoundResponse:
        return _make(cls, DO_REPLY, version, cid, cid)

    version = _header_field(3, "the minor version the search carried")
    cid = _header_field(5, "the search id")


# --- messages without fields --------------------------------------------------------------------------------

class _Empty(Message):
    __slots__ = ()

    def __new__(cls) -> Any:
        return _make(cls, 0, 0, 0, 0)


class EchoRequest(_Empty):
    """Are you there? (libca sends it on an idle circuit.)"""
    __slots__ = ()
    COMMAND = Command.ECHO
    SENDER = _CLIENT


class EchoResponse(_Empty):
    __slots__ = ()
    COMMAND = Command.ECHO
    SENDER = _SERVER


class EventsOffRequest(_Empty):
    """Stop sending subscription updates (flow control) until EVENTS_ON."""
    __slots__ = ()
    COMMAND = Command.EVENTS_OFF
    SENDER = _CLIENT


class EventsOnRequest(_Empty):
    __slots__ = ()
    COMMAND = Command.EVENTS_ON
    SENDER = _CLIENT


class ReadSyncRequest(_Empty):
    """Obsolete synchronisation point; rsrv answers with the same message."""
    __slots__ = ()
    COMMAND = Command.READ_SYNC
    SENDER = _CLIENT


class ReadSyncResponse(_Empty):
    __slots__ = ()
    COMMAND = Command.READ_SYNC
    SENDER = _SERVER


# --- beacons and the repeater -------------------------------------------------------------------------------

class RsrvIsUpResponse(Message):
    """A beacon. rsrv sends ``address`` 0.0.0.0; the caRepeater fills in the sender's address."""
    __slots__ = ()
    COMMAND = Command.RSRV_IS_UP
    SENDER = _SERVER
    _FIELDS = ("version", "server_port", "beacon_id", "address")

    def __new__(cls, version: int, server_port: int, beacon_id: int, address: str | int) -> RsrvIsUpResponse:
        return _make(cls, version, server_port, beacon_id, _ip_to_int(address))

    version = _header_field(2, "the server's minor protocol version")
    server_port = _header_field(3, "the server's TCP port")
    beacon_id = _header_field(4, "counts up by one per beacon")

    @property
    def address(self) -> str:
        return _int_to_ip(self[5])


class RepeaterRegisterRequest(Message):
    """A client asks the caRepeater for beacons. (libca sends an empty datagram instead, which the
    repeater takes as the same request.)"""
    __slots__ = ()
    COMMAND = Command.REPEATER_REGISTER
    SENDER = _CLIENT
    _FIELDS = ("client_address",)

    def __new__(cls, client_address: str | int) -> RepeaterRegisterRequest:
        return _make(cls, 0, 0, 0, _ip_to_int(client_address))

    @property
    def client_address(self) -> str:
        return _int_to_ip(self[5])


class RepeaterConfirmResponse(Message):
    """The caRepeater's answer to a registration."""
    __slots__ = ()
    COMMAND = Command.REPEATER_CONFIRM
    SENDER = _SERVER
    _FIELDS = ("repeater_address",)

    def __new__(cls, repeater_address: str | int) -> RepeaterConfirmResponse:
        return _make(cls, 0, 0, 0, _ip_to_int(repeater_address))

    @property
    def repeater_address(self) -> str:
        return _int_to_ip(self[5])


# --- names --------------------------------------------------------------------------------------------------

class ClientNameRequest(Message):
    """The user name, for access security."""
    __slots__ = ()
    COMMAND = Command.CLIENT_NAME
    SENDER = _CLIENT
    _FIELDS = ("name",)

    def __new__(cls, name: str) -> ClientNameRequest:
        return _make(cls, 0, 0, 0, 0, _encode_name(name), name if type(name) is str else _UNDECODED)

    name = _name_field()


class HostNameRequest(Message):
    """The client's host name, for access security."""
    __slots__ = ()
    COMMAND = Command.HOST_NAME
    SENDER = _CLIENT
    _FIELDS = ("name",)

    def __new__(cls, name: str) -> HostNameRequest:
        return _make(cls, 0, 0, 0, 0, _encode_name(name), name if type(name) is str else _UNDECODED)

    name = _name_field()


# --- channels -----------------------------------------------------------------------------------------------

class CreateChanRequest(Message):
    """Open a channel to ``name`` on this circuit; ``cid`` is the client's id for it."""
    __slots__ = ()
    COMMAND = Command.CREATE_CHAN
    SENDER = _CLIENT
    _FIELDS = ("name", "cid", "version")

    def __new__(cls, name: str, cid: int, version: int) -> CreateChanRequest:
        return _make(cls, 0, 0, cid, version, _encode_name(name), name if type(name) is str else _UNDECODED)

    name = _name_field()

    cid = _header_field(4, "the client's channel id")
    version = _header_field(5, "the client's minor protocol version")


class CreateChanResponse(Message):
    """The channel is open: its native type and element count, and the server's id for it."""
    __slots__ = ()
    COMMAND = Command.CREATE_CHAN
    SENDER = _SERVER
    _FIELDS = ("data_type", "data_count", "cid", "sid")

    def __new__(cls, data_type: int, data_count: int, cid: int, sid: int) -> CreateChanResponse:
        return _make(cls, data_type, data_count, cid, sid)

    data_type = _header_field(2, "native DBR type")
    data_count = _header_field(3, "native element count")
    cid = _header_field(4, "the client's channel id")
    sid = _header_field(5, "the server's channel id")


class CreateChFailResponse(Message):
    """The server cannot open the channel (no such name)."""
    __slots__ = ()
    COMMAND = Command.CREATE_CH_FAIL
    SENDER = _SERVER
    _FIELDS = ("cid",)

    def __new__(cls, cid: int) -> CreateChFailResponse:
        return _make(cls, 0, 0, cid, 0)

    cid = _header_field(4, "the client's channel id")


class AccessRightsResponse(Message):
    """Read/write access of a channel (sent before CREATE_CHAN's response, and on every change)."""
    __slots__ = ()
    COMMAND = Command.ACCESS_RIGHTS
    SENDER = _SERVER
    _FIELDS = ("cid", "access_rights")

    def __new__(cls, cid: int, access_rights: int) -> AccessRightsResponse:
        return _make(cls, 0, 0, cid, int(access_rights))

    cid = _header_field(4, "the client's channel id")
    access_rights = _header_field(5, "AccessRights bits: 1 read, 2 write")


class ClearChannelRequest(Message):
    __slots__ = ()
    COMMAND = Command.CLEAR_CHANNEL
    SENDER = _CLIENT
    _FIELDS = ("sid", "cid")

    def __new__(cls, sid: int, cid: int) -> ClearChannelRequest:
        return _make(cls, 0, 0, sid, cid)

    sid = _header_field(4, "the server's channel id")
    cid = _header_field(5, "the client's channel id")


class ClearChannelResponse(Message):
    __slots__ = ()
    COMMAND = Command.CLEAR_CHANNEL
    SENDER = _SERVER
    _FIELDS = ("sid", "cid")

    def __new__(cls, sid: int, cid: int) -> ClearChannelResponse:
        return _make(cls, 0, 0, sid, cid)

    sid = _header_field(4, "the server's channel id")
    cid = _header_field(5, "the client's channel id")


class ServerDisconnResponse(Message):
    """The server dropped the channel; the client should search for it again."""
    __slots__ = ()
    COMMAND = Command.SERVER_DISCONN
    SENDER = _SERVER
    _FIELDS = ("cid",)

    def __new__(cls, cid: int) -> ServerDisconnResponse:
        return _make(cls, 0, 0, cid, 0)

    cid = _header_field(4, "the client's channel id")


# --- reads --------------------------------------------------------------------------------------------------

class ReadNotifyRequest(Message):
    """Read ``data_count`` elements (0: the current length) as ``data_type``; ``ioid`` tags the answer."""
    __slots__ = ()
    COMMAND = Command.READ_NOTIFY
    SENDER = _CLIENT
    _FIELDS = ("data_type", "data_count", "sid", "ioid")

    def __new__(cls, data_type: int, data_count: int, sid: int, ioid: int) -> ReadNotifyRequest:
        return _make(cls, data_type, data_count, sid, ioid)

    data_type = _header_field(2, "requested DBR type")
    data_count = _header_field(3, "requested element count; 0 asks for the current length")
    sid = _header_field(4, "the server's channel id")
    ioid = _header_field(5, "the client's request id")


class ReadNotifyResponse(_DataMessage):
    """The answer to READ_NOTIFY. ``status`` is an ECA code; on failure the payload is zeros."""
    __slots__ = ()
    COMMAND = Command.READ_NOTIFY
    SENDER = _SERVER
    _ONE_ELEMENT_AT_LEAST = True
    _FIELDS = ("data", "data_type", "data_count", "status", "ioid", "metadata")

    def __new__(cls, data: Any, data_type: int, data_count: int | None, status: int, ioid: int,
                metadata: dbr.Metadata | None = None) -> ReadNotifyResponse:
        return cls._with_data(data, data_type, data_count, status, ioid, metadata)

    @classmethod
    def from_payload(cls, payload: bytes, data_type: int, data_count: int, status: int,
                     ioid: int) -> ReadNotifyResponse:
        """From an encoded DBR payload (padded to 8 here if it is not); nothing is decoded."""
        return cls._with_payload(payload, data_type, data_count, status, ioid)

    data_type = _header_field(2, "DBR type of the payload")
    data_count = _header_field(3, "element count of the payload")
    status = _header_field(4, "ECA status code")
    ioid = _header_field(5, "the client's request id")


class ReadRequest(Message):
    """Obsolete (pre-3.13) read; still answered by rsrv."""
    __slots__ = ()
    COMMAND = Command.READ
    SENDER = _CLIENT
    _FIELDS = ("data_type", "data_count", "sid", "ioid")

    def __new__(cls, data_type: int, data_count: int, sid: int, ioid: int) -> ReadRequest:
        return _make(cls, data_type, data_count, sid, ioid)

    data_type = _header_field(2, "requested DBR type")
    data_count = _header_field(3, "requested element count")
    sid = _header_field(4, "the server's channel id")
    ioid = _header_field(5, "the client's request id")


class ReadResponse(_DataMessage):
    """The answer to the obsolete READ. rsrv puts the channel's *cid* in parameter 1 (called ``sid`` in
    the protocol specification) and trims a single DBR_STRING to its length + 1."""
    __slots__ = ()
    COMMAND = Command.READ
    SENDER = _SERVER
    _ONE_ELEMENT_AT_LEAST = True
    _FIELDS = ("data", "data_type", "data_count", "sid", "ioid", "metadata")

    def __new__(cls, data: Any, data_type: int, data_count: int | None, sid: int, ioid: int,
                metadata: dbr.Metadata | None = None) -> ReadResponse:
        return cls._with_data(data, data_type, data_count, sid, ioid, metadata)

    @classmethod
    def from_payload(cls, payload: bytes, data_type: int, data_count: int, sid: int,
                     ioid: int) -> ReadResponse:
        """From an encoded DBR payload (padded to 8 here if it is not); nothing is decoded."""
        return cls._with_payload(payload, data_type, data_count, sid, ioid)

    data_type = _header_field(2, "DBR type of the payload")
    data_count = _header_field(3, "element count of the payload")
    sid = _header_field(4, "channel id (rsrv sends the client's cid)")
    ioid = _header_field(5, "the client's request id")


# --- writes -------------------------------------------------------------------------------------------------

class WriteRequest(_DataMessage):
    """Put without completion notice; a failure comes back as an ERROR message."""
    __slots__ = ()
    COMMAND = Command.WRITE
    SENDER = _CLIENT
    _FIELDS = ("data", "data_type", "data_count", "sid", "ioid", "metadata")

    def __new__(cls, data: Any, data_type: int, data_count: int | None, sid: int, ioid: int,
                metadata: dbr.Metadata | None = None) -> WriteRequest:
        return cls._with_data(data, data_type, data_count, sid, ioid, metadata)

    @classmethod
    def from_payload(cls, payload: bytes, data_type: int, data_count: int, sid: int,
                     ioid: int) -> WriteRequest:
        """From an encoded DBR payload (padded to 8 here if it is not); nothing is decoded."""
        return cls._with_payload(payload, data_type, data_count, sid, ioid)

    data_type = _header_field(2, "DBR type of the payload")
    data_count = _header_field(3, "element count of the payload")
    sid = _header_field(4, "the server's channel id")
    ioid = _header_field(5, "the client's request id")


class WriteNotifyRequest(_DataMessage):
    """Put with completion notice (put-callback): WRITE_NOTIFY answers when processing is done."""
    __slots__ = ()
    COMMAND = Command.WRITE_NOTIFY
    SENDER = _CLIENT
    _FIELDS = ("data", "data_type", "data_count", "sid", "ioid", "metadata")

    def __new__(cls, data: Any, data_type: int, data_count: int | None, sid: int, ioid: int,
                metadata: dbr.Metadata | None = None) -> WriteNotifyRequest:
        return cls._with_data(data, data_type, data_count, sid, ioid, metadata)

    @classmethod
    def from_payload(cls, payload: bytes, data_type: int, data_count: int, sid: int,
                     ioid: int) -> WriteNotifyRequest:
        """From an encoded DBR payload (padded to 8 here if it is not); nothing is decoded."""
        return cls._with_payload(payload, data_type, data_count, sid, ioid)

    data_type = _header_field(2, "DBR type of the payload")
    data_count = _header_field(3, "element count of the payload")
    sid = _header_field(4, "the server's channel id")
    ioid = _header_field(5, "the client's request id")


class WriteNotifyResponse(Message):
    """The put-callback is done; ``status`` is an ECA code."""
    __slots__ = ()
    COMMAND = Command.WRITE_NOTIFY
    SENDER = _SERVER
    _FIELDS = ("data_type", "data_count", "status", "ioid")

    def __new__(cls, data_type: int, data_count: int, status: int, ioid: int) -> WriteNotifyResponse:
        return _make(cls, data_type, data_count, status, ioid)

    data_type = _header_field(2, "DBR type of the put")
    data_count = _header_field(3, "element count of the put")
    status = _header_field(4, "ECA status code")
    ioid = _header_field(5, "the client's request id")


# --- subscriptions ------------------------------------------------------------------------------------------

_MONITOR = struct.Struct(">fffH2x")


class EventAddRequest(Message):
    """Subscribe: send ``data_type`` x ``data_count`` on every post matching ``mask`` (DBE_* bits).
    ``low``, ``high`` and ``to`` are obsolete deadband fields (libca sends zeros)."""
    __slots__ = ()
    COMMAND = Command.EVENT_ADD
    SENDER = _CLIENT
    _FIELDS = ("data_type", "data_count", "sid", "subscriptionid", "low", "high", "to", "mask")

    def __new__(cls, data_type: int, data_count: int, sid: int, subscriptionid: int, low: float,
                high: float, to: float, mask: int) -> EventAddRequest:
        try:
            payload = _MONITOR.pack(low, high, to, int(mask))
        except struct.error as exc:
            raise LocalProtocolError(f"EventAddRequest: {exc}") from None
        return _make(cls, data_type, data_count, sid, subscriptionid, payload)

    @staticmethod
    def _check(fields: tuple) -> None:
        if fields[1] < _MONITOR.size:
            raise MalformedHeader(f"EVENT_ADD request payload of {fields[1]} bytes; 16 are needed")

    data_type = _header_field(2, "requested DBR type")
    data_count = _header_field(3, "requested element count; 0 asks for the current length")
    sid = _header_field(4, "the server's channel id")
    subscriptionid = _header_field(5, "the client's subscription id")

    @property
    def low(self) -> float:
        return _MONITOR.unpack_from(self[6])[0]

    @property
    def high(self) -> float:
        return _MONITOR.unpack_from(self[6])[1]

    @property
    def to(self) -> float:
        return _MONITOR.unpack_from(self[6])[2]

    @property
    def mask(self) -> int:
        return _MONITOR.unpack_from(self[6])[3]


class EventAddResponse(_DataMessage):
    """One subscription update; ``status_code`` is an ECA code (on failure the payload is zeros)."""
    __slots__ = ()
    COMMAND = Command.EVENT_ADD
    SENDER = _SERVER
    _ONE_ELEMENT_AT_LEAST = True
    _FIELDS = ("data", "data_type", "data_count", "status_code", "subscriptionid", "metadata")

    def __new__(cls, data: Any, data_type: int, data_count: int | None, status_code: int,
                subscriptionid: int, metadata: dbr.Metadata | None = None) -> EventAddResponse:
        return cls._with_data(data, data_type, data_count, status_code, subscriptionid, metadata)

    @classmethod
    def from_payload(cls, payload: bytes, data_type: int, data_count: int, status_code: int,
                     subscriptionid: int) -> EventAddResponse:
        """From an encoded DBR payload (padded to 8 here if it is not); nothing is decoded."""
        if not payload:
            raise LocalProtocolError("an EVENT_ADD response needs a payload (an empty one is EVENT_CANCEL's "
                                     "confirmation)")
        return cls._with_payload(payload, data_type, data_count, status_code, subscriptionid)

    data_type = _header_field(2, "DBR type of the payload")
    data_count = _header_field(3, "element count of the payload")
    status_code = _header_field(4, "ECA status code")
    subscriptionid = _header_field(5, "the client's subscription id")


class EventCancelRequest(Message):
    """Cancel a subscription. libca repeats the subscription's type and count."""
    __slots__ = ()
    COMMAND = Command.EVENT_CANCEL
    SENDER = _CLIENT
    _FIELDS = ("data_type", "sid", "subscriptionid", "data_count")

    def __new__(cls, data_type: int, sid: int, subscriptionid: int,
                data_count: int = 0) -> EventCancelRequest:
        return _make(cls, data_type, data_count, sid, subscriptionid)

    data_type = _header_field(2, "the subscription's DBR type")
    data_count = _header_field(3, "the subscription's element count")
    sid = _header_field(4, "the server's channel id")
    subscriptionid = _header_field(5, "the client's subscription id")


class EventCancelResponse(Message):
    """The server's confirmation of EVENT_CANCEL: an EVENT_ADD message with an empty payload that echoes
    the subscription's type, count, sid and id."""
    __slots__ = ()
    COMMAND = Command.EVENT_ADD
    SENDER = _SERVER
    _REGISTER = False  # shares (EVENT_ADD, server) with EventAddResponse: the payload size tells them apart
    _FIELDS = ("data_type", "sid", "subscriptionid", "data_count")

    def __new__(cls, data_type: int, sid: int, subscriptionid: int,
                data_count: int = 0) -> EventCancelResponse:
        return _make(cls, data_type, data_count, sid, subscriptionid)

    data_type = _header_field(2, "the subscription's DBR type")
    data_count = _header_field(3, "the subscription's element count")
    sid = _header_field(4, "the server's channel id")
    subscriptionid = _header_field(5, "the client's subscription id")


# A real update always has a payload (even a count-0 one carries its metadata struct).
_EMPTY_CLASSES[_SERVER][Command.EVENT_ADD] = EventCancelResponse


# --- errors -------------------------------------------------------------------------------------------------

class ErrorResponse(Message):
    """The server rejects a request: quotes its header, gives an ECA ``status_code`` and a text."""
    __slots__ = ()
    COMMAND = Command.ERROR
    SENDER = _SERVER
    _FIELDS = ("original_request", "cid", "status_code", "error_message")

    def __new__(cls, original_request: Header | Message, cid: int, status_code: int,
                error_message: str) -> ErrorResponse:
        if isinstance(original_request, Message):
            original_request = original_request.header
        quoted = pack_header(*original_request)
        text = error_message.encode(_ENCODING, "surrogateescape") + b"\0"
        return _make(cls, 0, 0, cid, int(status_code), _padded(quoted + text))

    @staticmethod
    def _check(fields: tuple) -> None:
        try:
            Header.unpack_with_size(fields[6])
        except MalformedHeader:
            raise MalformedHeader(f"ERROR payload of {fields[1]} bytes cannot quote a request header"
                                  ) from None

    cid = _header_field(4, "the channel's cid, or 0xFFFFFFFF")
    status_code = _header_field(5, "ECA status code")

    @property
    def original_request(self) -> Header:
        return Header.unpack(self[6])

    @property
    def error_message(self) -> str:
        _, size = Header.unpack_with_size(self[6])
        return _decode_name(self[6][size:])
