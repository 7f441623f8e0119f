"""The UDP search responder: answers SEARCH for the names this IOC serves, nothing else.

As rsrv does, a reply datagram carries one SEARCH reply per name found, after a VERSION message that echoes
the client's sequence number when the client speaks CA 4.11 or later; names we do not serve get no reply
over UDP (NOT_FOUND is only ever sent over TCP). rsrv reads a datagram's messages in order and stops at the
first it will not serve: any message before a VERSION naming CA 4.4 or later, a SEARCH from an older client,
a command other than VERSION and SEARCH.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import trio

from caproto.constants import CA_MINOR_VERSION, Command, Role
from caproto.errors import FramingError
from caproto.framing import StreamParser
from caproto.messages import pack_header

log = logging.getLogger(__name__)

SEQUENCE_NO_IS_VALID = 1
_MAX_DATAGRAM = 0xFFFF
# The oldest client minor version that rsrv still answers (CA_VSUPPORTED), and the first whose datagrams
# carry a sequence number (CA_V411): older clients get their search replies without the VERSION.
_MIN_CLIENT_VERSION = 4
_SEQUENCE_VERSION = 11
_VERSION, _SEARCH = int(Command.VERSION), int(Command.SEARCH)     # plain ints: compared per message


def requested_name(payload: bytes | memoryview) -> str:
    """The PV name of a SEARCH or CREATE_CHAN payload as rsrv reads it: its last byte is forced to NUL."""
    return bytes(payload[:-1]).split(b"\0", 1)[0].decode("latin-1")


def _messages(parser: StreamParser) -> Iterator[tuple]:
    """The datagram's messages in order, up to the first one that does not frame (rsrv stops reading
    there and still answers what it found before)."""
    while True:
        try:
            batch = parser.next_raws()
        except FramingError as exc:
            log.warning("bad search datagram: %s", exc)
            return
        if not batch:
            return
        yield from batch


def search_replies(datagram: bytes, name_exists: Callable[[str], bool], tcp_port: int) -> bytes | None:
    """The reply datagram for one received datagram, or None when nothing in it is ours."""
    parser = StreamParser(Role.SERVER, max_payload=_MAX_DATAGRAM)
    parser.feed(datagram)
    version = 0      # rsrv forgets the client's version between datagrams
    sequence = 0
    replies = []
    reply_tail = CA_MINOR_VERSION.to_bytes(2, "big") + b"\0" * 6
    for raw in _messages(parser):
        command, data_type, data_count, p1, p2, payload = raw
        if command == _VERSION:
            version = data_count
            if version < _MIN_CLIENT_VERSION:
                break
            sequence = p1 if version >= _SEQUENCE_VERSION else 0
        elif command != _SEARCH or version < _MIN_CLIENT_VERSION or data_count < _MIN_CLIENT_VERSION:
            break
        elif len(payload) > 1 and name_exists(requested_name(payload)):
            replies.append(pack_header(Command.SEARCH, 8, tcp_port, 0, 0xFFFFFFFF, p2) + reply_tail)
    if not replies:
        return None
    if version < _SEQUENCE_VERSION:
        return b"".join(replies)
    return pack_header(Command.VERSION, 0, SEQUENCE_NO_IS_VALID, CA_MINOR_VERSION, sequence, 0) + b"".join(
        replies)


async def search_responder(sock: trio.socket.SocketType, database, tcp_port: int,
                           ignore: frozenset[str] = frozenset()) -> None:
    """Serve searches arriving on ``sock`` until cancelled."""
    while True:
        try:
            datagram, address = await sock.recvfrom(_MAX_DATAGRAM)
        except ConnectionResetError:
            continue  # an ICMP port-unreachable for an earlier reply: nothing to do with this datagram
        if address[0] in ignore:
            continue
        reply = search_replies(datagram, database.name_exists, tcp_port)
        if reply is not None:
            try:
                await sock.sendto(reply, address)
            except OSError as exc:
                log.warning("search reply to %s:%d failed: %s", address[0], address[1], exc)
