"""The state tables: well formed, complete, applied by transition(), and drawn by the diagram generator."""
from __future__ import annotations

import importlib.util
from collections import deque
from pathlib import Path

import pytest

from caproto import messages
from caproto.constants import Role
from caproto.errors import LocalProtocolError, RemoteProtocolError
from caproto.messages import (
    CreateChanRequest,
    CreateChanResponse,
    EventAddResponse,
    ReadNotifyRequest,
    RepeaterConfirmResponse,
    VersionRequest,
)
from caproto.states import (
    CHANNEL_INITIAL,
    CHANNEL_TRANSITIONS,
    CIRCUIT_INITIAL,
    CIRCUIT_TRANSITIONS,
    CONNECTION,
    DATAGRAM_MESSAGES,
    REPEATER_INITIAL,
    REPEATER_TRANSITIONS,
    SUBSCRIPTION_INITIAL,
    SUBSCRIPTION_TRANSITIONS,
    TABLES,
    ChannelClosed,
    ChannelState,
    CircuitClosed,
    CircuitState,
    RepeaterState,
    SubscriptionState,
    transition,
)

DOCS = Path(__file__).parent.parent / "docs"
STATE_ENUMS = {"circuit": CircuitState, "channel": ChannelState, "subscription": SubscriptionState,
               "repeater": RepeaterState}
INITIAL = {
    "circuit": set(CIRCUIT_INITIAL.values()),
    "channel": {CHANNEL_INITIAL},
    "subscription": {SUBSCRIPTION_INITIAL},
    "repeater": {REPEATER_INITIAL},
}
TERMINAL = {
    "circuit": {CircuitState.DISCONNECTED},
    "channel": {ChannelState.CLOSED, ChannelState.FAILED},
    "subscription": {SubscriptionState.CANCELLED},
    "repeater": set(),
}
MESSAGE_CLASSES = {getattr(messages, name) for name in messages.__all__
                   if isinstance(getattr(messages, name), type) and issubclass(getattr(messages, name),
                                                                                messages.Message)
                   and getattr(messages, name) is not messages.Message}


@pytest.mark.parametrize("name", TABLES)
def test_table_rows_use_one_state_enum(name):
    enum = STATE_ENUMS[name]
    for sender, rows in TABLES[name].items():
        for state, events in rows.items():
            assert isinstance(state, enum), f"{name}[{sender}]: {state!r} is not a {enum.__name__}"
            for event, target in events.items():
                assert isinstance(target, enum), f"{name}[{sender}][{state}][{event}] -> {target!r}"


@pytest.mark.parametrize("name", TABLES)
def test_each_sender_sends_only_its_own_messages(name):
    for sender, rows in TABLES[name].items():
        for state, events in rows.items():
            for event in events:
                if sender is CONNECTION:
                    assert event in (CircuitClosed, ChannelClosed), f"{name}: {event} in the connection rows"
                else:
                    assert event.SENDER is sender, (
                        f"{name}[{sender.value}][{state.name}] lists {event.__name__}, which the "
                        f"{event.SENDER.value} sends")


@pytest.mark.parametrize("name", TABLES)
def test_terminal_states_have_no_exit_and_live_states_end_with_the_connection(name):
    table = TABLES[name]
    for sender, rows in table.items():
        for state in TERMINAL[name]:
            assert not rows.get(state), f"{name}: {state.name} has exits for {sender}"
    pseudo = ChannelClosed if name == "subscription" else CircuitClosed
    if name == "repeater":
        return  # UDP: nothing ends with a connection
    live = {s for rows in table.values() for s in rows} - TERMINAL[name] - {
        SubscriptionState.SEND_EVENT_ADD_REQUEST}  # a subscription exists once its EVENT_ADD is sent
    for state in live:
        assert pseudo in table[CONNECTION].get(state, {}), f"{name}: {state.name} does not end on {pseudo}"


@pytest.mark.parametrize("name", TABLES)
def test_every_state_is_reachable_from_an_initial_state(name):
    table = TABLES[name]
    seen = set(INITIAL[name])
    queue = deque(seen)
    while queue:
        state = queue.popleft()
        for rows in table.values():
            for target in rows.get(state, {}).values():
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
    assert seen == set(STATE_ENUMS[name])


def test_every_message_class_is_allowed_somewhere():
    used = set().union(*DATAGRAM_MESSAGES.values())
    for table in TABLES.values():
        for rows in table.values():
            for events in rows.values():
                used.update(events)
    assert MESSAGE_CLASSES - used == set()


def test_a_channel_goes_from_create_to_connected_to_closed():
    state = CHANNEL_INITIAL
    steps = [(Role.CLIENT, CreateChanRequest), (Role.SERVER, messages.AccessRightsResponse),
             (Role.SERVER, CreateChanResponse), (Role.CLIENT, ReadNotifyRequest),
             (Role.SERVER, messages.ReadNotifyResponse), (Role.CLIENT, messages.ClearChannelRequest),
             (Role.SERVER, EventAddResponse), (Role.SERVER, messages.ClearChannelResponse)]
    for sender, event in steps:
        state = transition(CHANNEL_TRANSITIONS, state, sender, event, Role.CLIENT, "the channel")
    assert state is ChannelState.CLOSED


def test_our_illegal_message_is_a_local_error_naming_message_and_state():
    with pytest.raises(LocalProtocolError) as info:
        transition(CHANNEL_TRANSITIONS, ChannelState.AWAIT_CREATE_CHAN_RESPONSE, Role.CLIENT,
                   ReadNotifyRequest, Role.CLIENT, "channel 'X' (cid 1)")
    assert str(info.value) == ("ReadNotifyRequest from the client is not allowed while channel 'X' (cid 1) "
                               "is AWAIT_CREATE_CHAN_RESPONSE")


def test_peer_illegal_message_is_a_remote_error():
    with pytest.raises(RemoteProtocolError, match="CreateChanRequest from the client .* CONNECTED"):
        transition(CHANNEL_TRANSITIONS, ChannelState.CONNECTED, Role.CLIENT, CreateChanRequest,
                   Role.SERVER, "channel 'X' (cid 1)")


def test_client_must_send_version_first():
    with pytest.raises(LocalProtocolError, match="CreateChanRequest .* SEND_VERSION_REQUEST"):
        transition(CIRCUIT_TRANSITIONS, CircuitState.SEND_VERSION_REQUEST, Role.CLIENT, CreateChanRequest,
                   Role.CLIENT, "the circuit's client side")
    assert transition(CIRCUIT_TRANSITIONS, CircuitState.SEND_VERSION_REQUEST, Role.CLIENT, VersionRequest,
                      Role.CLIENT, "the circuit") is CircuitState.CONNECTED


def test_repeater_confirmation_registers_even_without_a_register_message():
    # libca registers with an empty datagram, which is no message.
    for state in RepeaterState:
        assert transition(REPEATER_TRANSITIONS, state, Role.SERVER, RepeaterConfirmResponse, Role.CLIENT,
                          "the repeater registration") is RepeaterState.REGISTERED


def test_updates_in_flight_after_cancel_are_accepted_but_not_after_confirmation():
    state = transition(SUBSCRIPTION_TRANSITIONS, SubscriptionState.AWAIT_EVENT_CANCEL_RESPONSE, Role.SERVER,
                       EventAddResponse, Role.CLIENT, "the subscription")
    assert state is SubscriptionState.AWAIT_EVENT_CANCEL_RESPONSE
    with pytest.raises(RemoteProtocolError):
        transition(SUBSCRIPTION_TRANSITIONS, SubscriptionState.CANCELLED, Role.SERVER, EventAddResponse,
                   Role.CLIENT, "the subscription")


def _load_diagram_generator():
    spec = importlib.util.spec_from_file_location("make_state_diagrams", DOCS / "make_state_diagrams.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_diagrams_match_the_tables():
    generator = _load_diagram_generator()
    expected = generator.diagrams()
    assert {path.name for path in expected} == {f"{name}.dot" for name in TABLES}
    for path, text in expected.items():
        assert path.exists(), f"{path} missing: run python docs/make_state_diagrams.py"
        assert path.read_text() == text, f"{path} is stale: run python docs/make_state_diagrams.py"


def test_diagram_has_an_edge_per_transition():
    text = _load_diagram_generator().render("channel", CHANNEL_TRANSITIONS)
    assert '"SEND_CREATE_CHAN_REQUEST" -> "AWAIT_CREATE_CHAN_RESPONSE" [label="CreateChanRequest", ' \
           'color=blue' in text
    assert '"MUST_CLOSE" -> "CLOSED" [label="ClearChannelResponse\\nServerDisconnResponse", ' \
           'color=darkgreen' in text
    assert '"CONNECTED" -> "CLOSED" [label="CircuitClosed", color=gray' in text
