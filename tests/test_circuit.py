"""VirtualCircuit, ClientChannel and ServerChannel: the rules of one TCP circuit, on both ends.

Three kinds of evidence: the conversations libca and rsrv really had (tests/fixtures/captures) replayed
through a client circuit and a server circuit talking to each other; targeted tests of every refusal;
and a client circuit driving the C softIoc over a real socket.
"""
from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from peers import soft_ioc

from caproto.circuit import NEED_DATA, ClientChannel, ServerChannel, VirtualCircuit
from caproto.constants import ECA, AccessRights, Command, Role, SubscriptionType
from caproto.dbr import ChannelType, Metadata
from caproto.errors import LocalProtocolError, PayloadTooLarge, RemoteProtocolError
from caproto.framing import StreamParser
from caproto.messages import (
    AccessRightsResponse,
    ClearChannelRequest,
    ClearChannelResponse,
    ClientNameRequest,
    CreateChanRequest,
    CreateChanResponse,
    CreateChFailResponse,
    EchoRequest,
    EchoResponse,
    ErrorResponse,
    EventAddRequest,
    EventAddResponse,
    EventCancelRequest,
    EventCancelResponse,
    EventsOffRequest,
    EventsOnRequest,
    HostNameRequest,
    Message,
    ReadNotifyRequest,
    ReadNotifyResponse,
    ReadRequest,
    ReadResponse,
    ServerDisconnResponse,
    VersionRequest,
    VersionResponse,
    WriteNotifyRequest,
    WriteNotifyResponse,
)
from caproto.states import ChannelState, CircuitState, SubscriptionState

CAPTURES = Path(__file__).parent / "fixtures" / "captures"
ADDRESS = ("127.0.0.1", 5064)


def load_capture(path: Path) -> dict:
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


def parse(stream: bytes, our_role: Role) -> list[Message]:
    parser = StreamParser(our_role)
    parser.feed(stream)
    return list(parser)


def replay(client_messages: list[Message], server_messages: list[Message]
           ) -> tuple[VirtualCircuit, VirtualCircuit]:
    """Two circuits re-enact a captured conversation, each checking what it sends and what it receives.

    The capture has no timing between the two directions, so the order is found the way the tables
    allow: the server's next message goes as soon as the server circuit accepts it (send() refuses
    without changing anything), otherwise the client's next one.
    """
    client = VirtualCircuit(Role.CLIENT, ADDRESS, 0)
    server = VirtualCircuit(Role.SERVER, ("127.0.0.1", 40000))
    c = s = 0
    while c < len(client_messages) or s < len(server_messages):
        refusals = []
        for sender, receiver, queue, index in ((server, client, server_messages, s),
                                                (client, server, client_messages, c)):
            if index == len(queue):
                continue
            try:
                data = sender.send(queue[index])
            except LocalProtocolError as exc:
                refusals.append(exc)
                continue
            receiver.recv(data)
            assert receiver.next_command() == queue[index]
            assert receiver.next_command() is NEED_DATA
            if sender is server:
                s += 1
            else:
                c += 1
            break
        else:
            raise AssertionError(f"stuck after {c} client and {s} server messages: {refusals}")
    return client, server


LIBCA_CAPTURES = sorted(p for p in CAPTURES.glob("*.json*")
                        if load_capture(p)["tcp"] and p.name != "hand_built_tcp.json")


@pytest.mark.parametrize("path", LIBCA_CAPTURES, ids=lambda p: p.name.split(".")[0])
def test_real_libca_and_rsrv_conversations_follow_the_tables(path):
    capture = load_capture(path)
    for connection in capture["tcp"]:
        client_messages = parse(bytes.fromhex(connection["client_to_server"]), Role.SERVER)
        server_messages = parse(bytes.fromhex(connection["server_to_client"]), Role.CLIENT)
        client, server = replay(client_messages, server_messages)
        for circuit in (client, server):
            assert circuit.our_state is circuit.their_state is CircuitState.CONNECTED
            assert circuit.client_username == capture["user"]
            assert circuit.client_hostname == capture["host"]
        # Both ends saw the same channels and subscriptions come and go.
        assert {cid: (ch.name, ch.sid, ch.state) for cid, ch in client.channels.items()} == \
               {cid: (ch.name, ch.sid, ch.state) for cid, ch in server.channels.items()}
        assert client.subscriptions.keys() == server.subscriptions.keys()


def test_caget_conversation_ends_with_the_channel_cleared():
    connection = load_capture(CAPTURES / "caget_time_double.json")["tcp"][0]
    client, server = replay(parse(bytes.fromhex(connection["client_to_server"]), Role.SERVER),
                            parse(bytes.fromhex(connection["server_to_client"]), Role.CLIENT))
    assert client.channels == {} and server.channels == {}
    assert server.priority == 0 and server.their_version == 13 and client.their_version == 13


def test_camonitor_conversation_leaves_its_subscription_live():
    connection = load_capture(CAPTURES / "camonitor_counter.json")["tcp"][0]
    client, _ = replay(parse(bytes.fromhex(connection["client_to_server"]), Role.SERVER),
                       parse(bytes.fromhex(connection["server_to_client"]), Role.CLIENT))
    (subscription,) = client.subscriptions.values()
    assert subscription.state is SubscriptionState.SUBSCRIBED
    assert subscription.request.mask == SubscriptionType.DBE_VALUE | SubscriptionType.DBE_ALARM
    assert subscription.channel.state is ChannelState.CONNECTED


def test_server_circuit_refuses_the_bogus_event_cancel_that_rsrv_answered_with_badmonid():
    connection = load_capture(CAPTURES / "hand_built_tcp.json")["tcp"][0]
    requests = parse(bytes.fromhex(connection["client_to_server"]), Role.SERVER)
    responses = parse(bytes.fromhex(connection["server_to_client"]), Role.CLIENT)
    bogus = requests[-1]
    assert isinstance(bogus, EventCancelRequest)
    assert responses[-1].status_code == ECA.BADMONID
    with pytest.raises(AssertionError, match=r"stuck .*EventCancelRequest names subscription"):
        replay(requests, responses)
    # The server circuit, fed the raw bytes, refuses that one message and nothing before it.
    server = VirtualCircuit(Role.SERVER, ("127.0.0.1", 40000))
    server.recv(bytes.fromhex(connection["client_to_server"]))
    assert [server.next_command(), server.next_command()] == requests[:2]
    server.send(VersionResponse(13), *server.channels[1].create(ChannelType.STRING, 1, sid=0))
    assert [server.next_command() for _ in requests[2:-1]] == requests[2:-1]
    with pytest.raises(RemoteProtocolError, match="EventCancelRequest names subscription 77") as info:
        server.next_command()
    assert info.value.header == bogus.header


# --- a pair of circuits ----------------------------------------------------------------------------------

class Pair:
    """A client circuit and a server circuit wired back to back."""

    def __init__(self) -> None:
        self.client = VirtualCircuit(Role.CLIENT, ADDRESS, 0)
        self.server = VirtualCircuit(Role.SERVER, ("127.0.0.1", 40000))

    def to_server(self, *commands: Message) -> list[Message]:
        self.server.recv(self.client.send(*commands))
        return list(self.server.commands())

    def to_client(self, *commands: Message) -> list[Message]:
        self.client.recv(self.server.send(*commands))
        return list(self.client.commands())

    def connect(self, name: str = "PV:1", native: ChannelType = ChannelType.DOUBLE, count: int = 1
                ) -> tuple[ClientChannel, ServerChannel]:
        if self.client.our_state is CircuitState.SEND_VERSION_REQUEST:
            self.to_server(VersionRequest(0, 13), HostNameRequest("host"), ClientNameRequest("user"))
            self.to_client(VersionResponse(13))
        channel = ClientChannel(name, self.client)
        self.to_server(channel.create())
        server_channel = self.server.channels[channel.cid]
        self.to_client(*server_channel.create(native, count))
        return channel, server_channel


@pytest.fixture
def pair() -> Pair:
    return Pair()


def test_channel_connects_with_native_type_count_and_access(pair):
    channel, server_channel = pair.connect("XF:ai", ChannelType.LONG, 10)
    assert isinstance(server_channel, ServerChannel) and server_channel.name == "XF:ai"
    for end in (channel, server_channel):
        assert end.state is ChannelState.CONNECTED
        assert (end.native_type, end.native_count) == (ChannelType.LONG, 10)
        assert end.access_rights == AccessRights.READ_WRITE
    assert channel.sid == server_channel.sid
    assert pair.client.channels_by_sid[channel.sid] is channel
    assert (pair.server.client_hostname, pair.server.client_username) == ("host", "user")


def test_read_turns_bytes_into_values_and_metadata(pair):
    channel, server_channel = pair.connect()
    (request,) = pair.to_server(channel.read(ChannelType.TIME_DOUBLE))
    assert request == ReadNotifyRequest(ChannelType.TIME_DOUBLE, 0, channel.sid, request.ioid)
    stamp = Metadata.from_timestamp(1_700_000_000.5, status=3, severity=2)
    (response,) = pair.to_client(server_channel.read([1.5], request.ioid, stamp))
    assert list(response.data) == [1.5]
    assert (response.metadata.status, response.metadata.severity) == (3, 2)
    assert response.metadata.timestamp == pytest.approx(1_700_000_000.5)
    assert response.status == ECA.NORMAL
    assert channel.pending == {} and server_channel.pending == {}


def test_read_of_count_zero_gets_every_element(pair):
    channel, server_channel = pair.connect("WF", ChannelType.DOUBLE, 100)
    (request,) = pair.to_server(channel.read())
    (response,) = pair.to_client(server_channel.read(np.arange(7.0), request.ioid))
    assert response.data_count == 7 and list(response.data) == list(range(7))


def test_obsolete_read_is_answered_with_the_cid(pair):
    channel, server_channel = pair.connect()
    (request,) = pair.to_server(ReadRequest(ChannelType.DOUBLE, 1, channel.sid, 77))
    (response,) = pair.to_client(server_channel.read(2.5, 77))
    assert isinstance(response, ReadResponse) and response.sid == channel.cid and list(response.data) == [2.5]


def test_write_notify_is_answered_with_its_status(pair):
    channel, server_channel = pair.connect()
    (request,) = pair.to_server(channel.write(4.25))
    assert list(request.data) == [4.25] and request.data_type == ChannelType.DOUBLE
    (response,) = pair.to_client(server_channel.write(request.ioid, ECA.PUTFAIL))
    assert response == WriteNotifyResponse(ChannelType.DOUBLE, 1, ECA.PUTFAIL, request.ioid)


def test_plain_write_expects_no_answer(pair):
    channel, _ = pair.connect()
    (request,) = pair.to_server(channel.write("3", ChannelType.STRING, notify=False))
    assert request.data == ["3"]
    assert pair.server.pending == {} and pair.client.pending == {}


def test_subscription_lifecycle(pair):
    channel, server_channel = pair.connect()
    (request,) = pair.to_server(channel.subscribe(ChannelType.TIME_DOUBLE, mask=SubscriptionType.DBE_VALUE))
    assert request.mask == SubscriptionType.DBE_VALUE
    subid = request.subscriptionid
    for value in (1.0, 2.0):
        (update,) = pair.to_client(server_channel.update(subid, value))
        assert list(update.data) == [value] and update.data_type == ChannelType.TIME_DOUBLE
    pair.to_server(channel.unsubscribe(subid))
    assert pair.client.subscriptions[subid].state is SubscriptionState.AWAIT_EVENT_CANCEL_RESPONSE
    # an update the server sent before it read the cancel is still welcome
    pair.to_client(server_channel.update(subid, 3.0))
    (confirmation,) = pair.to_client(server_channel.unsubscribe(subid))
    assert (confirmation.sid, confirmation.subscriptionid) == (channel.sid, subid)
    assert pair.client.subscriptions == {} and pair.server.subscriptions == {}
    with pytest.raises(LocalProtocolError, match=f"EventAddResponse names subscription {subid}"):
        pair.server.send(EventAddResponse(4.0, ChannelType.DOUBLE, 1, ECA.NORMAL, subid))


def test_clear_channel_ends_its_subscriptions_and_pending_requests(pair):
    channel, server_channel = pair.connect()
    pair.to_server(channel.subscribe(), channel.read())
    pair.to_server(channel.clear())
    assert channel.state is ChannelState.MUST_CLOSE
    (subscription,) = pair.client.subscriptions.values()
    pair.to_client(server_channel.clear())
    assert channel.state is ChannelState.CLOSED and server_channel.state is ChannelState.CLOSED
    assert subscription.state is SubscriptionState.CANCELLED
    for circuit in (pair.client, pair.server):
        assert (circuit.channels, circuit.channels_by_sid, circuit.subscriptions, circuit.pending) == \
               ({}, {}, {}, {})


def test_server_disconn_closes_the_channel_and_frees_its_cid(pair):
    channel, server_channel = pair.connect()
    pair.to_server(channel.subscribe())
    pair.to_client(server_channel.disconnect())
    assert channel.state is ChannelState.CLOSED and pair.client.subscriptions == {}
    again = ClientChannel("PV:1", pair.client, channel.cid)
    assert pair.client.channels[channel.cid] is again


def test_create_chan_failure(pair):
    pair.connect()
    channel = ClientChannel("NO:SUCH:PV", pair.client)
    pair.to_server(channel.create())
    pair.to_client(pair.server.channels[channel.cid].fail())
    assert channel.state is ChannelState.FAILED
    assert channel.cid not in pair.client.channels and channel.cid not in pair.server.channels


def test_error_response_ends_what_it_refuses(pair):
    channel, server_channel = pair.connect()
    (read,) = pair.to_server(channel.read())
    (subscribe,) = pair.to_server(channel.subscribe())
    pair.to_client(server_channel.error(read, ECA.GETFAIL, "no read"),
                   server_channel.error(subscribe, ECA.ALLOCMEM, "no memory"))
    assert pair.client.pending == {} and pair.client.subscriptions == {}
    assert channel.state is ChannelState.CONNECTED
    failing = ClientChannel("PV:2", pair.client)
    (create,) = pair.to_server(failing.create())
    pair.to_client(ErrorResponse(create, 0xFFFFFFFF, ECA.ALLOCMEM, "PV:2"))
    assert failing.state is ChannelState.FAILED
    # An ERROR about something the circuit does not know (rsrv's ECA_BADMONID) passes through.
    bogus = EventCancelRequest(ChannelType.DOUBLE, channel.sid, 999)
    (error,) = pair.to_client(ErrorResponse(bogus, channel.cid, ECA.BADMONID, "PV:1"))
    assert error.original_request == bogus.header


def test_events_off_and_on_are_recorded(pair):
    pair.connect()
    pair.to_server(EventsOffRequest())
    assert not pair.server.events_on and not pair.client.events_on
    pair.to_server(EventsOnRequest())
    assert pair.server.events_on


def test_echo_both_ways(pair):
    pair.connect()
    assert pair.to_server(EchoRequest()) == [EchoRequest()]
    assert pair.to_client(EchoResponse()) == [EchoResponse()]


def test_sides_need_not_wait_for_each_other(pair):
    # rsrv sends VERSION on accept, before it reads the client's; libca sends CREATE_CHAN before the
    # server's VERSION arrives.
    pair.to_client(VersionResponse(13))
    assert pair.client.their_state is CircuitState.CONNECTED
    assert pair.client.our_state is CircuitState.SEND_VERSION_REQUEST
    channel = ClientChannel("PV:1", pair.client)
    pair.to_server(VersionRequest(0, 13), channel.create())
    assert channel.state is ChannelState.AWAIT_CREATE_CHAN_RESPONSE


# --- refusals ----------------------------------------------------------------------------------------

def test_client_must_send_version_first(pair):
    channel = ClientChannel("PV:1", pair.client)
    with pytest.raises(LocalProtocolError, match="CreateChanRequest from the client is not allowed while "
                                                 "the circuit's client side is SEND_VERSION_REQUEST"):
        pair.client.send(channel.create())
    pair.server.recv(bytes(channel.create()))
    with pytest.raises(RemoteProtocolError, match="SEND_VERSION_REQUEST"):
        pair.server.next_command()


def test_version_priority_must_match_the_circuit(pair):
    with pytest.raises(LocalProtocolError, match="priority 5 differs"):
        pair.client.send(VersionRequest(5, 13))
    high = Pair()
    high.client = VirtualCircuit(Role.CLIENT, ADDRESS, 5)
    high.to_server(VersionRequest(5, 13))
    assert high.server.priority == 5


def test_read_before_create_chan_is_refused(pair):
    channel, server_channel = pair.connect()
    pending = ClientChannel("PV:2", pair.client)
    with pytest.raises(LocalProtocolError, match="cannot read channel 'PV:2' .* SEND_CREATE_CHAN_REQUEST"):
        pending.read()
    pair.to_server(pending.create())
    with pytest.raises(LocalProtocolError, match="AWAIT_CREATE_CHAN_RESPONSE"):
        pending.read()
    # A hand-built READ_NOTIFY for a sid that no channel has yet: refused on both ends.
    unknown_sid = channel.sid + 1
    with pytest.raises(LocalProtocolError, match=f"ReadNotifyRequest names sid {unknown_sid}: no channel"):
        pair.client.send(ReadNotifyRequest(ChannelType.DOUBLE, 1, unknown_sid, 1))
    pair.server.recv(bytes(ReadNotifyRequest(ChannelType.DOUBLE, 1, unknown_sid, 1)))
    with pytest.raises(RemoteProtocolError, match=f"ReadNotifyRequest names sid {unknown_sid}"):
        pair.server.next_command()


def test_second_create_chan_with_the_same_cid_is_refused(pair):
    channel, _ = pair.connect()
    with pytest.raises(LocalProtocolError, match=f"CreateChanRequest from the client is not allowed while "
                                                 f"channel 'PV:1' \\(cid {channel.cid}\\) is CONNECTED"):
        pair.client.send(channel.create())
    with pytest.raises(LocalProtocolError, match=f"cid {channel.cid} is already channel 'PV:1'"):
        ClientChannel("PV:1", pair.client, channel.cid)
    pair.server.recv(bytes(CreateChanRequest("PV:1", channel.cid, 13)))
    with pytest.raises(RemoteProtocolError, match="CreateChanRequest from the client .* CONNECTED"):
        pair.server.next_command()


def test_event_cancel_for_an_unknown_subscription_is_refused(pair):
    channel, _ = pair.connect()
    with pytest.raises(LocalProtocolError, match="has no subscription 5"):
        channel.unsubscribe(5)
    with pytest.raises(LocalProtocolError, match="EventCancelRequest names subscription 5, which does not"):
        pair.client.send(EventCancelRequest(ChannelType.DOUBLE, channel.sid, 5))
    pair.server.recv(bytes(EventCancelRequest(ChannelType.DOUBLE, channel.sid, 5)))
    with pytest.raises(RemoteProtocolError, match="EventCancelRequest names subscription 5"):
        pair.server.next_command()


def test_answers_must_match_a_pending_request(pair):
    channel, server_channel = pair.connect()
    with pytest.raises(LocalProtocolError, match="no request with ioid 3"):
        server_channel.read(1.0, 3)
    with pytest.raises(LocalProtocolError, match="ReadNotifyResponse answers ioid 3, which no "
                                                 "ReadNotifyRequest is waiting for"):
        pair.server.send(ReadNotifyResponse(1.0, ChannelType.DOUBLE, 1, ECA.NORMAL, 3))
    (write,) = pair.to_server(channel.write(1.0))
    with pytest.raises(LocalProtocolError, match="which no ReadNotifyRequest"):
        pair.server.send(ReadNotifyResponse(1.0, ChannelType.DOUBLE, 1, ECA.NORMAL, write.ioid))
    pair.client.recv(bytes(ReadNotifyResponse(1.0, ChannelType.DOUBLE, 1, ECA.NORMAL, write.ioid)))
    with pytest.raises(RemoteProtocolError):
        pair.client.next_command()


def test_an_ioid_is_not_reused_while_pending(pair):
    channel, _ = pair.connect()
    (read,) = pair.to_server(channel.read())
    with pytest.raises(LocalProtocolError, match=f"uses ioid {read.ioid}, which is still waiting"):
        pair.client.send(ReadNotifyRequest(ChannelType.DOUBLE, 1, channel.sid, read.ioid))
    assert channel.read().ioid != read.ioid


def test_messages_of_the_other_role_are_refused(pair):
    with pytest.raises(LocalProtocolError, match="a client does not send VersionResponse"):
        pair.client.send(VersionResponse(13))
    with pytest.raises(LocalProtocolError, match="a ClientChannel needs a circuit in the client role"):
        ClientChannel("PV", pair.server)


def test_sids_are_unique_on_a_circuit(pair):
    channel, server_channel = pair.connect()
    other = ClientChannel("PV:2", pair.client)
    pair.to_server(other.create())
    with pytest.raises(LocalProtocolError, match=f"sid {channel.sid}, which is already channel 'PV:1'"):
        pair.server.send(*pair.server.channels[other.cid].create(ChannelType.DOUBLE, 1, sid=channel.sid))


def test_a_refused_message_undoes_the_ones_sent_with_it(pair):
    pair.to_server(VersionRequest(0, 13))
    pair.to_client(VersionResponse(13))
    channel = ClientChannel("PV:1", pair.client)
    with pytest.raises(LocalProtocolError):
        pair.client.send(channel.create(), EventCancelRequest(ChannelType.DOUBLE, 0, 0))
    assert channel.state is ChannelState.SEND_CREATE_CHAN_REQUEST
    pair.to_server(channel.create())
    server_channel = pair.server.channels[channel.cid]
    with pytest.raises(LocalProtocolError):
        pair.server.send(*server_channel.create(ChannelType.DOUBLE, 1, sid=9), EchoRequest())
    assert server_channel.state is ChannelState.AWAIT_CREATE_CHAN_RESPONSE
    assert server_channel.sid is None and server_channel.access_rights is None
    assert pair.server.channels_by_sid == {}


def test_a_refused_message_undoes_the_requests_and_answers_sent_with_it(pair):
    channel, server_channel = pair.connect()
    bad = EventCancelRequest(ChannelType.DOUBLE, channel.sid, 5)
    with pytest.raises(LocalProtocolError):
        pair.client.send(channel.read(), bad)
    assert pair.client.pending == {} and channel.pending == {}
    request, = pair.to_server(channel.read())
    with pytest.raises(LocalProtocolError):
        pair.server.send(server_channel.read([2.5], request.ioid), EchoRequest())
    assert list(pair.server.pending) == list(server_channel.pending) == [request.ioid]
    assert server_channel.state is ChannelState.CONNECTED


def test_a_refused_received_message_is_consumed_and_the_circuit_goes_on(pair):
    channel, _ = pair.connect()
    bad = EventCancelRequest(ChannelType.DOUBLE, channel.sid, 5)
    pair.server.recv(bytes(bad) + bytes(EchoRequest()))
    with pytest.raises(RemoteProtocolError) as info:
        pair.server.next_command()
    assert info.value.header == bad.header
    assert pair.server.next_command() == EchoRequest()
    assert pair.server.next_command() is NEED_DATA


def test_framing_errors_pass_through():
    client = VirtualCircuit(Role.CLIENT, ADDRESS, 0, max_payload=16)
    client.recv(bytes(ReadNotifyResponse(np.zeros(10), ChannelType.DOUBLE, 10, ECA.NORMAL, 1)))
    with pytest.raises(PayloadTooLarge):
        client.next_command()


def test_bytes_split_anywhere_give_the_same_commands(pair):
    channel, server_channel = pair.connect()
    (read,) = pair.to_server(channel.read())
    wire = pair.server.send(server_channel.read([2.0], read.ioid), AccessRightsResponse(channel.cid, 1))
    received = []
    for i in range(len(wire)):
        pair.client.recv(wire[i:i + 1])
        received += pair.client.commands()
    assert [type(m) for m in received] == [ReadNotifyResponse, AccessRightsResponse]
    assert channel.access_rights == AccessRights.READ


def test_disconnect_closes_every_channel(pair):
    channel, _ = pair.connect()
    pair.to_server(channel.subscribe())
    (subscription,) = pair.client.subscriptions.values()
    pair.client.disconnect()
    pair.client.disconnect()
    assert (pair.client.our_state, pair.client.their_state) == (CircuitState.DISCONNECTED,) * 2
    assert channel.state is ChannelState.CLOSED and subscription.state is SubscriptionState.CANCELLED
    assert pair.client.channels == {} and pair.client.subscriptions == {}
    with pytest.raises(LocalProtocolError, match="EchoRequest from the client .* DISCONNECTED"):
        pair.client.send(EchoRequest())


def test_ids_skip_those_in_use():
    circuit = VirtualCircuit(Role.CLIENT, ADDRESS)
    taken = ClientChannel("A", circuit, 1)
    assert [ClientChannel(name, circuit).cid for name in "BCD"] == [0, 2, 3]
    assert taken.cid == 1
    circuit._cids._next = 0xFFFFFFFE
    assert [circuit.new_cid(), circuit.new_cid()] == [0xFFFFFFFE, 4]


# --- against the C softIoc ---------------------------------------------------------------------------

DB = """
record(ai, "cap:ai") { field(VAL, "3.25") field(PREC, "2") field(EGU, "mm") }
record(longout, "cap:lo") { field(VAL, "7") }
"""


class Connection:
    """A socket and a client circuit: what a real client's I/O layer does, in a dozen lines."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.circuit = VirtualCircuit(Role.CLIENT, ("127.0.0.1", port), 0)
        self.received: list[Message] = []
        self._unclaimed: list[Message] = []

    def send(self, *commands: Message) -> None:
        self.sock.sendall(self.circuit.send(*commands))

    def expect(self, cls: type) -> Message:
        """The first ``cls`` received and not yet claimed, receiving until one arrives (the socket timeout
        bounds the wait)."""
        while True:
            for command in self._unclaimed:
                if isinstance(command, cls):
                    self._unclaimed.remove(command)
                    return command
            data = self.sock.recv(65536)
            assert data, f"softIoc closed the circuit while we waited for {cls.__name__}"
            self.circuit.recv(data)
            commands = list(self.circuit.commands())
            self.received += commands
            self._unclaimed += commands


def test_client_circuit_drives_the_c_soft_ioc(ca_env, tmp_path):
    with soft_ioc(DB, ca_env, tmp_path):
        conn = Connection(int(ca_env["EPICS_CA_SERVER_PORT"]))
        try:
            ai = ClientChannel("cap:ai", conn.circuit)
            lo = ClientChannel("cap:lo", conn.circuit)
            conn.send(VersionRequest(0, 13), HostNameRequest("testhost"), ClientNameRequest("tester"),
                      ai.create(), lo.create())
            conn.expect(VersionResponse)
            while lo.state is not ChannelState.CONNECTED or ai.state is not ChannelState.CONNECTED:
                conn.expect(CreateChanResponse)
            assert (ai.native_type, ai.native_count, ai.access_rights) == (ChannelType.DOUBLE, 1,
                                                                           AccessRights.READ_WRITE)
            assert lo.native_type is ChannelType.LONG

            conn.send(ai.read(ChannelType.CTRL_DOUBLE))
            reading = conn.expect(ReadNotifyResponse)
            assert list(reading.data) == [3.25]
            assert (reading.metadata.units, reading.metadata.precision) == ("mm", 2)

            conn.send(lo.subscribe(ChannelType.TIME_LONG))
            first = conn.expect(EventAddResponse)
            assert list(first.data) == [7]
            conn.send(lo.write(42))
            done = conn.expect(WriteNotifyResponse)
            assert done.status == ECA.NORMAL
            update = conn.expect(EventAddResponse)
            assert list(update.data) == [42] and update.metadata.secs > 0

            (subscription,) = conn.circuit.subscriptions
            conn.send(lo.unsubscribe(subscription))
            conn.expect(EventCancelResponse)
            conn.send(ai.clear(), lo.clear())
            while conn.circuit.channels:
                conn.expect(ClearChannelResponse)
            assert ai.state is ChannelState.CLOSED and lo.state is ChannelState.CLOSED
            assert conn.circuit.pending == {} and conn.circuit.subscriptions == {}
            assert [m.COMMAND for m in conn.received][:3] == [Command.VERSION, Command.ACCESS_RIGHTS,
                                                               Command.CREATE_CHAN]
        finally:
            conn.sock.close()


# --- both ends always agree (hypothesis) ------------------------------------------------------------

def snapshot(circuit: VirtualCircuit) -> tuple:
    """Everything a message can change on a circuit."""
    return (circuit.our_state, circuit.their_state, circuit.priority, circuit.events_on,
            {cid: (ch.name, ch.state, ch.sid, ch.native_type, ch.native_count, ch.access_rights,
                   sorted(ch.subscriptions), sorted(ch.pending)) for cid, ch in circuit.channels.items()},
            sorted(circuit.channels_by_sid),
            {i: (s.state, s.channel.cid) for i, s in circuit.subscriptions.items()},
            sorted(circuit.pending))


SMALL = st.integers(0, 1)  # few ids, so that random messages often meet the channel they name
CLIENT_MESSAGES = st.one_of(
    st.builds(lambda cid: CreateChanRequest(f"PV:{cid}", cid, 13), SMALL),
    st.builds(lambda sid, ioid: ReadNotifyRequest(ChannelType.DOUBLE, 1, sid, ioid), SMALL, SMALL),
    st.builds(lambda sid, ioid: WriteNotifyRequest(1.0, ChannelType.DOUBLE, 1, sid, ioid), SMALL, SMALL),
    st.builds(lambda sid, sub: EventAddRequest(ChannelType.DOUBLE, 1, sid, sub, 0, 0, 0, 5), SMALL, SMALL),
    st.builds(lambda sid, sub: EventCancelRequest(ChannelType.DOUBLE, sid, sub, 1), SMALL, SMALL),
    st.builds(ClearChannelRequest, SMALL, SMALL),
    st.just(EchoRequest()), st.just(EventsOffRequest()), st.just(EventsOnRequest()),
)
SERVER_MESSAGES = st.one_of(
    st.builds(lambda cid, sid: CreateChanResponse(ChannelType.DOUBLE, 1, cid, sid), SMALL, SMALL),
    st.builds(lambda cid: AccessRightsResponse(cid, 3), SMALL),
    st.builds(CreateChFailResponse, SMALL),
    st.builds(ServerDisconnResponse, SMALL),
    st.builds(lambda ioid: ReadNotifyResponse(2.0, ChannelType.DOUBLE, 1, ECA.NORMAL, ioid), SMALL),
    st.builds(lambda ioid: WriteNotifyResponse(ChannelType.DOUBLE, 1, ECA.NORMAL, ioid), SMALL),
    st.builds(lambda sub: EventAddResponse(3.0, ChannelType.DOUBLE, 1, ECA.NORMAL, sub), SMALL),
    st.builds(lambda sid, sub: EventCancelResponse(ChannelType.DOUBLE, sid, sub, 1), SMALL, SMALL),
    st.builds(ClearChannelResponse, SMALL, SMALL),
    st.builds(lambda sub: ErrorResponse(EventAddRequest(ChannelType.DOUBLE, 1, 0, sub, 0, 0, 0, 5), 0,
                                        ECA.ALLOCMEM, "x"), SMALL),
    st.just(EchoResponse()),
)
BATCHES = {role: st.lists(messages, min_size=1, max_size=2)
           for role, messages in ((Role.CLIENT, CLIENT_MESSAGES), (Role.SERVER, SERVER_MESSAGES))}


class BothEnds(RuleBasedStateMachine):
    """A client and a server circuit, driven by the channel helpers and by random hand-built messages.

    After every step: a refused send changed nothing, whatever one end sent the other accepted, and both
    ends agree on every channel, subscription and pending request."""

    def __init__(self) -> None:
        super().__init__()
        self.pair = Pair()
        self.pair.to_server(VersionRequest(0, 13))
        self.pair.to_client(VersionResponse(13))

    def deliver(self, role: Role, *commands: Message) -> None:
        sender, receiver = ((self.pair.client, self.pair.server) if role is Role.CLIENT
                            else (self.pair.server, self.pair.client))
        before = snapshot(sender)
        try:
            data = sender.send(*commands)
        except LocalProtocolError:
            assert snapshot(sender) == before, f"refused {commands} changed the sender"
            return
        receiver.recv(data)
        assert list(receiver.commands()) == list(commands)

    def client_channels(self, state: ChannelState) -> list:
        return [ch for ch in self.pair.client.channels.values() if ch.state is state]

    @rule(name=st.sampled_from(["PV:a", "PV:b", "PV:c"]))
    def open_channel(self, name):
        self.deliver(Role.CLIENT, ClientChannel(name, self.pair.client).create())

    @rule(data=st.data(), sid=SMALL, fail=st.booleans())
    def answer_create(self, data, sid, fail):
        waiting = [ch for ch in self.pair.server.channels.values()
                   if ch.state is ChannelState.AWAIT_CREATE_CHAN_RESPONSE]
        if waiting:
            channel = data.draw(st.sampled_from(waiting))
            answers = [channel.fail()] if fail else channel.create(ChannelType.DOUBLE, 1, sid)
            self.deliver(Role.SERVER, *answers)

    @rule(data=st.data(), action=st.sampled_from(["read", "write", "put", "subscribe", "clear"]))
    def use_channel(self, data, action):
        connected = self.client_channels(ChannelState.CONNECTED)
        if connected:
            channel = data.draw(st.sampled_from(connected))
            command = {"read": channel.read, "write": lambda: channel.write(1.0),
                       "put": lambda: channel.write(1.0, notify=False), "subscribe": channel.subscribe,
                       "clear": channel.clear}[action]()
            self.deliver(Role.CLIENT, command)

    @rule(data=st.data())
    def unsubscribe(self, data):
        live = [s for s in self.pair.client.subscriptions.values()
                if s.state is SubscriptionState.SUBSCRIBED and s.channel.state is ChannelState.CONNECTED]
        if live:
            subscription = data.draw(st.sampled_from(live))
            self.deliver(Role.CLIENT, subscription.channel.unsubscribe(subscription.subscriptionid))

    @rule(data=st.data())
    def answer_request(self, data):
        pending = [(ch, ioid) for ch in self.pair.server.channels.values() for ioid in ch.pending]
        if pending:
            channel, ioid = data.draw(st.sampled_from(pending))
            request = channel.pending[ioid]
            reading = isinstance(request, ReadNotifyRequest)
            self.deliver(Role.SERVER, channel.read(4.0, ioid) if reading else channel.write(ioid))

    @rule(data=st.data(), cancel=st.booleans())
    def post_update(self, data, cancel):
        subscriptions = list(self.pair.server.subscriptions.values())
        if subscriptions:
            subscription = data.draw(st.sampled_from(subscriptions))
            channel, subid = subscription.channel, subscription.subscriptionid
            self.deliver(Role.SERVER, channel.unsubscribe(subid) if cancel else channel.update(subid, 5.0))

    @rule(data=st.data(), disconnect=st.booleans())
    def close_channel(self, data, disconnect):
        channels = [ch for ch in self.pair.server.channels.values() if ch.sid is not None]
        if channels:
            channel = data.draw(st.sampled_from(channels))
            self.deliver(Role.SERVER, channel.disconnect() if disconnect else channel.clear())

    @rule(commands=st.lists(CLIENT_MESSAGES, min_size=1, max_size=2))
    def hand_built_requests(self, commands):
        self.deliver(Role.CLIENT, *commands)

    @rule(commands=st.lists(SERVER_MESSAGES, min_size=1, max_size=2))
    def hand_built_responses(self, commands):
        self.deliver(Role.SERVER, *commands)

    @invariant()
    def both_ends_agree(self):
        assert snapshot(self.pair.client)[4:] == snapshot(self.pair.server)[4:]


BothEnds.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_what_one_end_may_send_the_other_accepts_and_both_agree = BothEnds.TestCase
