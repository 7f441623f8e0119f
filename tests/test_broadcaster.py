"""Broadcaster: CA's UDP traffic on both ends, captured libca/rsrv/caRepeater datagrams, and softIoc live."""
from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path

import pytest
from peers import soft_ioc

from caproto.broadcaster import SEARCH_DATAGRAM_LIMIT, Broadcaster, SearchAnswer
from caproto.constants import DONT_REPLY, Command, Role
from caproto.errors import LocalProtocolError, RemoteProtocolError, TruncatedDatagram
from caproto.framing import parse_datagram
from caproto.messages import (
    AccessRightsResponse,
    CreateChanRequest,
    NotFoundResponse,
    RepeaterConfirmResponse,
    RepeaterRegisterRequest,
    RsrvIsUpResponse,
    SearchRequest,
    SearchResponse,
    VersionRequest,
    VersionResponse,
)
from caproto.states import RepeaterState

CAPTURES = Path(__file__).parent / "fixtures" / "captures"
SERVER_ADDRESS = ("127.0.0.1", 5064)
CLIENT_ADDRESS = ("127.0.0.1", 40000)


def load_capture(path: Path) -> dict:
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def test_search_is_answered_with_the_server_address():
    client, server = Broadcaster(Role.CLIENT), Broadcaster(Role.SERVER)
    datagram = client.send(*client.search("PV:1", "PV:2"))
    version, first, second = server.recv(datagram, CLIENT_ADDRESS)
    assert isinstance(version, VersionRequest)
    assert (first.name, second.name) == ("PV:1", "PV:2") and first.reply == DONT_REPLY
    assert client.unanswered_searches == {first.cid: "PV:1", second.cid: "PV:2"}
    reply = server.send(VersionResponse(13), SearchResponse(5064, "255.255.255.255", second.cid, 13))
    _, response = client.recv(reply, ("10.0.0.7", 5064))
    assert client.answer(response, ("10.0.0.7", 5064)) == SearchAnswer("PV:2", ("10.0.0.7", 5064), 13)
    assert client.unanswered_searches == {first.cid: "PV:1"}
    # a second server with the same name, or a repeated answer: the search is no longer open
    assert client.answer(response, ("10.0.0.8", 5064)) is None


def test_search_datagrams_are_what_send_gives_for_version_and_searches_within_1024_bytes():
    names = [(f"XF:31IDA-OP{{Tbl-Ax:X{i}}}Mtr.VAL", i) for i in range(200)]
    client = Broadcaster(Role.CLIENT)
    datagrams = client.search_datagrams(names)
    assert len(datagrams) > 1 and all(len(datagram) <= SEARCH_DATAGRAM_LIMIT for datagram in datagrams)
    seen = []
    reference = Broadcaster(Role.CLIENT)
    for datagram in datagrams:
        version, *searches = parse_datagram(datagram, Role.SERVER)
        assert version == VersionRequest(0, 13) and searches
        assert datagram == reference.send(version, *searches)
        seen += [(search.name, search.cid) for search in searches]
        assert all(search.reply == DONT_REPLY and search.version == 13 for search in searches)
    assert seen == names
    assert client.unanswered_searches == {search_id: name for name, search_id in names}


def test_a_name_too_long_for_a_search_datagram_still_goes_alone():
    datagrams = Broadcaster(Role.CLIENT).search_datagrams([("A" * 2000, 1), ("B", 2)])
    assert [[m.name for m in parse_datagram(d, Role.SERVER)[1:]] for d in datagrams] == [["A" * 2000], ["B"]]


def test_search_datagrams_refused_for_a_bad_name_register_nothing():
    client = Broadcaster(Role.CLIENT)
    with pytest.raises(LocalProtocolError):
        client.search_datagrams([("A", 1), ("B\0", 2)])
    assert client.unanswered_searches == {}
    with pytest.raises(LocalProtocolError):
        Broadcaster(Role.SERVER).search_datagrams([("A", 1)])


def test_search_reply_naming_an_address_is_taken_at_its_word():
    client = Broadcaster(Role.CLIENT)
    (_, request) = parse_datagram(client.send(*client.search("PV")), Role.SERVER)
    answer = client.answer(SearchResponse(6000, "10.1.2.3", request.cid, 13), ("127.0.0.1", 5064))
    assert answer.address == ("10.1.2.3", 6000)


def test_search_ids_are_not_reused_while_open():
    client = Broadcaster(Role.CLIENT)
    ids = [m.cid for m in client.search("A", "B", "C")[1:]]
    assert len(set(ids)) == 3
    client.send(SearchRequest("X", 7, 13))
    client._search_ids._next = 7
    assert client.new_search_id() != 7


def test_only_datagram_messages_may_be_sent():
    with pytest.raises(LocalProtocolError, match="a client does not send CreateChanRequest over UDP"):
        Broadcaster(Role.CLIENT).send(CreateChanRequest("PV", 1, 13))
    with pytest.raises(LocalProtocolError, match="a server does not send SearchRequest"):
        Broadcaster(Role.SERVER).send(SearchRequest("PV", 1, 13))


def test_refused_datagram_changes_nothing():
    client = Broadcaster(Role.CLIENT)
    with pytest.raises(LocalProtocolError):
        client.send(SearchRequest("PV", 1, 13), CreateChanRequest("PV", 1, 13))
    assert client.unanswered_searches == {}
    datagram = bytes(RepeaterConfirmResponse("127.0.0.1")) + bytes(AccessRightsResponse(1, 3))
    with pytest.raises(RemoteProtocolError, match="AccessRightsResponse from 127.0.0.1:5065 does not travel"):
        client.recv(datagram, ("127.0.0.1", 5065))
    assert client.repeater_state is RepeaterState.SEND_REPEATER_REGISTER


def test_truncated_datagram_is_a_framing_error():
    with pytest.raises(TruncatedDatagram):
        Broadcaster(Role.SERVER).recv(bytes(SearchRequest("PV", 1, 13))[:-3], CLIENT_ADDRESS)


def test_repeater_registration():
    client = Broadcaster(Role.CLIENT)
    client.send(RepeaterRegisterRequest("127.0.0.1"))
    assert client.repeater_state is RepeaterState.AWAIT_REPEATER_CONFIRM
    client.send(RepeaterRegisterRequest("127.0.0.1"))
    client.recv(bytes(RepeaterConfirmResponse("127.0.0.1")), ("127.0.0.1", 5065))
    assert client.repeater_state is RepeaterState.REGISTERED
    # beacons forwarded by the repeater
    (beacon,) = client.recv(bytes(RsrvIsUpResponse(13, 5064, 3, "10.0.0.1")), ("127.0.0.1", 5065))
    assert (beacon.server_port, beacon.beacon_id, beacon.address) == (5064, 3, "10.0.0.1")


def test_server_sends_beacons_and_not_found():
    server = Broadcaster(Role.SERVER)
    wire = server.send(RsrvIsUpResponse(13, 5064, 0, 0), NotFoundResponse(13, 4))
    assert [m.COMMAND for m in parse_datagram(wire, Role.CLIENT)] == [Command.RSRV_IS_UP, Command.NOT_FOUND]


@pytest.mark.parametrize("path", sorted(CAPTURES.glob("*.json*")), ids=lambda p: p.name.split(".")[0])
def test_captured_datagrams_pass_both_ends(path):
    """Every datagram libca, rsrv and caRepeater sent: the sender's broadcaster sends the same bytes, the
    receiver's accepts them, and every search is answered."""
    capture = load_capture(path)
    client, server = Broadcaster(Role.CLIENT), Broadcaster(Role.SERVER)
    answers = []
    for datagram in capture["udp"]:
        if datagram["src_port"] == datagram["dst_port"]:
            continue  # libca waking its own receive thread on exit
        data = bytes.fromhex(datagram["hex"])
        source = (datagram["src"], datagram["src_port"])
        beacon = data[:2] == Command.RSRV_IS_UP.to_bytes(2, "big")
        from_client = datagram["dst_port"] == capture["server_port"] or (
            datagram["dst_port"] == capture["repeater_port"] and not beacon)
        sender, receiver = (client, server) if from_client else (server, client)
        messages = parse_datagram(data, receiver.our_role)
        assert sender.send(*messages) == data
        received = receiver.recv(data, source)
        assert received == messages
        answers += [client.answer(m, source) for m in received if isinstance(m, SearchResponse)]
    assert client.unanswered_searches == {}
    for answer in answers:
        assert answer is not None and answer.name.startswith("cap:")
        assert answer.address == ("127.0.0.1", capture["server_port"])
    if path.name.startswith(("camonitor_idle", "repeater_register")):
        assert client.repeater_state is RepeaterState.REGISTERED


def test_search_finds_the_c_soft_ioc_and_the_repeater_confirms(ca_env, tmp_path, repeater_port):
    port = int(ca_env["EPICS_CA_SERVER_PORT"])
    with soft_ioc('record(ai, "bc:ai") {}\n', ca_env, tmp_path), \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
        client = Broadcaster(Role.CLIENT)
        searches = client.search("bc:ai", "bc:missing")
        found = None
        # rsrv may not read its UDP port yet when TCP already listens: search again, as clients do.
        for _ in range(40):
            sock.sendto(client.send(*searches), ("127.0.0.1", port))
            try:
                data, source = sock.recvfrom(65536)
            except TimeoutError:
                continue
            found = [client.answer(m, source) for m in client.recv(data, source)
                     if isinstance(m, SearchResponse)]
            break
        assert found == [SearchAnswer("bc:ai", ("127.0.0.1", port), 13)]
        assert list(client.unanswered_searches.values()) == ["bc:missing"]

        sock.settimeout(10)
        sock.sendto(client.send(RepeaterRegisterRequest("127.0.0.1")), ("127.0.0.1", repeater_port))
        while client.repeater_state is not RepeaterState.REGISTERED:
            data, source = sock.recvfrom(65536)
            client.recv(data, source)
