"""The UDP search responder: answers SEARCH for the names this IOC serves, nothing else.

As rsrv does, a reply datagram starts with a VERSION message that echoes the client's sequence number,
followed by one SEARCH reply per name found; names we do not serve get no reply over UDP (NOT_FOUND is
only ever sent over TCP).
"""
from __future__ import annotations

import logging

import trio

from caproto.constants import CA_MINOR_VERSION, Command, Role
from caproto.errors import FramingError
from caproto.framing import NEED_DATA, StreamParser
from caproto.messages import pack_header

log = logging.getLogger(__name__)

SEQUENCE_NO_IS_VALID = 1
_MAX_DATAGRAM = 0xFFFF
# The oldest client minor version that rsrv still answers (CA_VSUPPORTED).
_MIN_CLIENT_VERSION = 4


def search_replies(datagram: bytes, lookup, tcp_port: int) -> bytes | None:
    """The reply datagram for one received datagram, or None when nothing in it is ours."""
    parser = StreamParser(Role.SERVER, max_payload=_MAX_DATAGRAM)
    parser.feed(datagram)
    sequence = 0
    replies = []
    while True:
        raw = parser.next_raw()
        if raw is NEED_DATA:
            break
        command, data_type, data_count, p1, p2, payload = raw
        if command == Command.VERSION:
            sequence = p1
        elif command == Command.SEARCH:
            if data_count < _MIN_CLIENT_VERSION:
                continue
            name = bytes(payload).split(b"\0", 1)[0].decode("latin-1")
            if name and lookup(name) is not None:
                replies.append(pack_header(Command.SEARCH, 8, tcp_port, 0, 0xFFFFFFFF, p2)
                               + CA_MINOR_VERSION.to_bytes(2, "big") + b"\0" * 6)
    if parser.buffered:
        raise FramingError(f"{parser.buffered} trailing bytes in a search datagram")
    if not replies:
        return None
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
        try:
            reply = search_replies(datagram, database.lookup, tcp_port)
        except FramingError as exc:
            log.warning("bad search datagram from %s:%d: %s", address[0], address[1], exc)
            continue
        if reply is not None:
            try:
                await sock.sendto(reply, address)
            except OSError as exc:
                log.warning("search reply to %s:%d failed: %s", address[0], address[1], exc)
