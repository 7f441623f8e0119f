"""Channel Access over UDP without I/O: name searches and their replies, beacons, the repeater.

A `Broadcaster` is one end of CA's datagram traffic. `Broadcaster.send` checks that each message may
travel over UDP from our role and returns one datagram's bytes; `Broadcaster.recv` cuts a received
datagram into messages and checks them the same way (a refused datagram changes nothing: drop it).
A client's broadcaster allocates search ids, remembers the searches not yet answered and follows its
registration with the CA repeater (`caproto.states.REPEATER_TRANSITIONS`).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import NamedTuple

from .circuit import IdAllocator
from .constants import CA_MINOR_VERSION, DONT_REPLY, Command, Role
from .errors import LocalProtocolError, RemoteProtocolError
from .framing import parse_datagram
from .messages import (
    Message,
    RepeaterConfirmResponse,
    RepeaterRegisterRequest,
    SearchRequest,
    SearchResponse,
    VersionRequest,
    _encode_name,
    pack_header,
)
from .states import DATAGRAM_MESSAGES, REPEATER_INITIAL, REPEATER_TRANSITIONS, RepeaterState, transition

__all__ = ["Broadcaster", "SEARCH_DATAGRAM_LIMIT", "SearchAnswer"]

logger = logging.getLogger(__name__)

# A search reply naming this address means "the address this reply came from" (rsrv always sends it).
_SENDER_ADDRESS = 0xFFFFFFFF   # 255.255.255.255
_SEARCH = int(Command.SEARCH)
_REPEATER_SUBJECT = "the repeater registration"
# libca's largest search datagram (MAX_UDP_SEND): fits in one Ethernet frame with room for headers.
SEARCH_DATAGRAM_LIMIT = 1024
_SEARCH_VERSION = VersionRequest(0, CA_MINOR_VERSION).to_bytes()


class SearchAnswer(NamedTuple):
    name: str
    address: tuple[str, int]    # where to open the circuit
    version: int | None         # the server's minor protocol version (None over TCP)


class Broadcaster:
    """The UDP side of CA for role ``our_role``; ``max_payload`` bounds received payloads."""

    def __init__(self, our_role: Role, max_payload: int | None = None) -> None:
        self.our_role = our_role
        self.their_role = our_role.peer
        self.max_payload = max_payload
        self.repeater_state: RepeaterState = REPEATER_INITIAL
        # search id -> name, for every search sent and not answered yet
        self.unanswered_searches: dict[int, str] = {}
        self._search_ids = IdAllocator()

    def __repr__(self) -> str:
        return (f"<Broadcaster {self.our_role.value} repeater={self.repeater_state.name} "
                f"unanswered={len(self.unanswered_searches)}>")

    def new_search_id(self) -> int:
        return self._search_ids.allocate(self.unanswered_searches)

    def search(self, *names: str) -> list[Message]:
        """VERSION and one SEARCH per name with a new search id: libca's search datagram, to ``send``."""
        return [VersionRequest(0, CA_MINOR_VERSION),
                *(SearchRequest(name, self.new_search_id(), CA_MINOR_VERSION, DONT_REPLY) for name in names)]

    def search_datagrams(self, searches: Iterable[tuple[str, int]], limit: int = SEARCH_DATAGRAM_LIMIT,
                         reply: int = DONT_REPLY) -> list[bytes]:
        """Datagrams searching for ``(name, search id)`` pairs: each VERSION, then as many SEARCH as fit in
        ``limit`` bytes (a name too long for that goes alone). The bytes ``send`` gives for those messages,
        made without building them: a client searches for thousands of names at once. The searches count
        as sent (unanswered) once all are encoded."""
        if self.our_role is not Role.CLIENT:
            raise LocalProtocolError(f"a {self.our_role.value} does not send SearchRequest")
        datagrams: list[bytes] = []
        parts = [_SEARCH_VERSION]
        size = len(_SEARCH_VERSION)
        sent: list[tuple[int, str]] = []
        for name, search_id in searches:
            payload = _encode_name(name)
            length = 16 + len(payload)
            if size + length > limit and len(parts) > 1:
                datagrams.append(b"".join(parts))
                parts = [_SEARCH_VERSION]
                size = len(_SEARCH_VERSION)
            # libca puts the search id in both parameters
            parts += (pack_header(_SEARCH, len(payload), reply, CA_MINOR_VERSION, search_id, search_id),
                      payload)
            size += length
            sent.append((search_id, name))
        if len(parts) > 1:
            datagrams.append(b"".join(parts))
        self.unanswered_searches.update(sent)
        return datagrams

    def send(self, *messages: Message) -> bytes:
        """One datagram holding ``messages``, after checking them (all of them, before any change)."""
        allowed = DATAGRAM_MESSAGES[self.our_role]
        repeater_state = self.repeater_state
        for message in messages:
            cls = type(message)
            if cls not in allowed:
                raise LocalProtocolError(f"a {self.our_role.value} does not send {cls.__name__} over UDP")
            if cls is RepeaterRegisterRequest:
                repeater_state = transition(REPEATER_TRANSITIONS, repeater_state, self.our_role, cls,
                                            self.our_role, _REPEATER_SUBJECT)
        self.repeater_state = repeater_state
        for message in messages:
            if type(message) is SearchRequest:
                self.unanswered_searches[message.cid] = message.name
        return b"".join([message.to_bytes() for message in messages])

    def recv(self, data: bytes | bytearray | memoryview, address: tuple[str, int]) -> list[Message]:
        """The messages of one datagram from ``address``. Raises a `RemoteProtocolError` (framing errors
        included) for a datagram that the peer's role may not send; then nothing changes."""
        messages = parse_datagram(data, self.our_role, self.max_payload)
        allowed = DATAGRAM_MESSAGES[self.their_role]
        repeater_state = self.repeater_state
        for message in messages:
            cls = type(message)
            if cls not in allowed:
                raise RemoteProtocolError(f"{cls.__name__} from {address[0]}:{address[1]} does not travel "
                                          f"over UDP")
            if cls is RepeaterConfirmResponse:
                repeater_state = transition(REPEATER_TRANSITIONS, repeater_state, self.their_role, cls,
                                            self.our_role, _REPEATER_SUBJECT)
        self.repeater_state = repeater_state
        return messages

    def answer(self, response: SearchResponse, address: tuple[str, int]) -> SearchAnswer | None:
        """The name a search reply answers and the server to connect to, if that search is still open
        (None for a second answer: another server has the same name, or a repeated search was answered
        twice). ``address`` is where the reply came from. The search is answered from then on."""
        name = self.unanswered_searches.pop(response.cid, None)
        if name is None:
            logger.debug("search reply from %s:%s for search id %s, which is not open", *address,
                         response.cid)
            return None
        # rsrv always sends "the sender's address": compared as the raw header field, it needs no text
        host = address[0] if response[4] == _SENDER_ADDRESS else response.ip
        return SearchAnswer(name, (host, response.port), response.version)
