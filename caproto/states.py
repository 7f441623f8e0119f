"""The Channel Access state tables: what each side may send in each state, and the state it leads to.

Every table has the same shape, ``table[sender][state][event class] -> next state``: the sender is the
role that sends the message (a client sends requests, a server responses), the state is the state of
the machine the message concerns, and the event class is a message class. The rows of sender None
(``CONNECTION``) hold the two pseudo-events, which nobody sends: the connection ends (`CircuitClosed`),
and a channel closes under its subscriptions (`ChannelClosed`). Both ends of a connection run the
same tables: a client checks its own requests against the client rows before sending them and the
server's responses against the server rows when they arrive; a server does the opposite. Reading a
table tells you the protocol; `transition` applies one.

Machines:

- a circuit (one TCP connection) has one state per side: the client's side starts in
  SEND_VERSION_REQUEST, the server's in SEND_VERSION_RESPONSE; each becomes CONNECTED once that side has
  sent its VERSION. The sides are independent because neither waits for the other: libca sends VERSION,
  CLIENT_NAME, HOST_NAME and CREATE_CHAN in one burst, and rsrv sends its VERSION as soon as it accepts.
- a channel (one CREATE_CHAN on a circuit, known by cid and, once connected, sid);
- a subscription (one EVENT_ADD, known by subscriptionid);
- a client's registration with the CA repeater (UDP).
"""
from __future__ import annotations

import enum

from .constants import Role
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .messages import (
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
    NotFoundResponse,
    ReadNotifyRequest,
    ReadNotifyResponse,
    ReadRequest,
    ReadResponse,
    ReadSyncRequest,
    ReadSyncResponse,
    RepeaterConfirmResponse,
    RepeaterRegisterRequest,
    RsrvIsUpResponse,
    SearchRequest,
    SearchResponse,
    ServerDisconnResponse,
    VersionRequest,
    VersionResponse,
    WriteNotifyRequest,
    WriteNotifyResponse,
    WriteRequest,
)

CLIENT = Role.CLIENT
SERVER = Role.SERVER


class _State(enum.Enum):
    # Members are singletons, so identity hashing is right; Enum's own __hash__ runs Python code, and
    # every message sent or received looks states up in the tables several times.
    __hash__ = object.__hash__


class CircuitState(_State):
    SEND_VERSION_REQUEST = "SEND_VERSION_REQUEST"    # client side: nothing sent yet
    SEND_VERSION_RESPONSE = "SEND_VERSION_RESPONSE"  # server side: nothing sent yet
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"


class ChannelState(_State):
    SEND_CREATE_CHAN_REQUEST = "SEND_CREATE_CHAN_REQUEST"
    AWAIT_CREATE_CHAN_RESPONSE = "AWAIT_CREATE_CHAN_RESPONSE"
    CONNECTED = "CONNECTED"
    MUST_CLOSE = "MUST_CLOSE"    # CLEAR_CHANNEL requested: the server must close it and confirm
    CLOSED = "CLOSED"
    FAILED = "FAILED"            # the server refused CREATE_CHAN


class SubscriptionState(_State):
    SEND_EVENT_ADD_REQUEST = "SEND_EVENT_ADD_REQUEST"
    SUBSCRIBED = "SUBSCRIBED"
    AWAIT_EVENT_CANCEL_RESPONSE = "AWAIT_EVENT_CANCEL_RESPONSE"
    CANCELLED = "CANCELLED"


class RepeaterState(_State):
    SEND_REPEATER_REGISTER = "SEND_REPEATER_REGISTER"
    AWAIT_REPEATER_CONFIRM = "AWAIT_REPEATER_CONFIRM"
    REGISTERED = "REGISTERED"


class CircuitClosed:
    """Pseudo-event, not a message: the TCP connection ended (closed by either side, or broken)."""


class ChannelClosed:
    """Pseudo-event, not a message: a channel closed, which ends every subscription on it."""


State = CircuitState | ChannelState | SubscriptionState | RepeaterState
# Rows keyed by None hold the pseudo-events: nobody sends them, the connection does.
Table = dict[Role | None, dict[State, dict[type, State]]]
CONNECTION = None


def _all(events: tuple[type, ...], target: State) -> dict[type, State]:
    return dict.fromkeys(events, target)


# --- circuit -------------------------------------------------------------------------------------------

# Everything a client may send on a circuit once it has sent VERSION (SEARCH over TCP is what name
# servers answer).
CIRCUIT_REQUESTS: tuple[type, ...] = (
    HostNameRequest, ClientNameRequest, CreateChanRequest, ClearChannelRequest,
    ReadNotifyRequest, ReadRequest, WriteRequest, WriteNotifyRequest,
    EventAddRequest, EventCancelRequest, EventsOffRequest, EventsOnRequest, ReadSyncRequest,
    EchoRequest, SearchRequest,
)
# Everything a server may send on a circuit once it has sent VERSION.
CIRCUIT_RESPONSES: tuple[type, ...] = (
    AccessRightsResponse, CreateChanResponse, CreateChFailResponse, ServerDisconnResponse,
    ClearChannelResponse, ReadNotifyResponse, ReadResponse, WriteNotifyResponse,
    EventAddResponse, EventCancelResponse, ErrorResponse, EchoResponse, ReadSyncResponse,
    SearchResponse, NotFoundResponse,
)

CIRCUIT_INITIAL: dict[Role, CircuitState] = {
    CLIENT: CircuitState.SEND_VERSION_REQUEST,
    SERVER: CircuitState.SEND_VERSION_RESPONSE,
}

CIRCUIT_TRANSITIONS: Table = {
    CLIENT: {
        CircuitState.SEND_VERSION_REQUEST: {VersionRequest: CircuitState.CONNECTED},
        CircuitState.CONNECTED: _all(CIRCUIT_REQUESTS, CircuitState.CONNECTED),
        CircuitState.DISCONNECTED: {},
    },
    SERVER: {
        CircuitState.SEND_VERSION_RESPONSE: {VersionResponse: CircuitState.CONNECTED},
        CircuitState.CONNECTED: _all(CIRCUIT_RESPONSES, CircuitState.CONNECTED),
        CircuitState.DISCONNECTED: {},
    },
    CONNECTION: {
        CircuitState.SEND_VERSION_REQUEST: {CircuitClosed: CircuitState.DISCONNECTED},
        CircuitState.SEND_VERSION_RESPONSE: {CircuitClosed: CircuitState.DISCONNECTED},
        CircuitState.CONNECTED: {CircuitClosed: CircuitState.DISCONNECTED},
    },
}

# --- channel -------------------------------------------------------------------------------------------

# Requests a client may make on a connected channel without changing its state.
CHANNEL_REQUESTS: tuple[type, ...] = (
    ReadNotifyRequest, ReadRequest, WriteRequest, WriteNotifyRequest, EventAddRequest, EventCancelRequest,
)
# Replies a server may send about a connected channel. They may still come after CLEAR_CHANNEL: the
# server sent them before it read the request.
CHANNEL_REPLIES: tuple[type, ...] = (
    AccessRightsResponse, ReadNotifyResponse, ReadResponse, WriteNotifyResponse,
    EventAddResponse, EventCancelResponse, ErrorResponse,
)

CHANNEL_INITIAL = ChannelState.SEND_CREATE_CHAN_REQUEST

CHANNEL_TRANSITIONS: Table = {
    CLIENT: {
        ChannelState.SEND_CREATE_CHAN_REQUEST: {CreateChanRequest: ChannelState.AWAIT_CREATE_CHAN_RESPONSE},
        ChannelState.AWAIT_CREATE_CHAN_RESPONSE: {},
        ChannelState.CONNECTED: {
            **_all(CHANNEL_REQUESTS, ChannelState.CONNECTED),
            ClearChannelRequest: ChannelState.MUST_CLOSE,
        },
        ChannelState.MUST_CLOSE: {},
        ChannelState.CLOSED: {},
        ChannelState.FAILED: {},
    },
    SERVER: {
        ChannelState.SEND_CREATE_CHAN_REQUEST: {},
        ChannelState.AWAIT_CREATE_CHAN_RESPONSE: {
            # rsrv announces the access rights first, then the channel.
            AccessRightsResponse: ChannelState.AWAIT_CREATE_CHAN_RESPONSE,
            CreateChanResponse: ChannelState.CONNECTED,
            CreateChFailResponse: ChannelState.FAILED,
            # rsrv answers a CREATE_CHAN it has no memory for with ERROR.
            ErrorResponse: ChannelState.FAILED,
        },
        ChannelState.CONNECTED: {
            **_all(CHANNEL_REPLIES, ChannelState.CONNECTED),
            ServerDisconnResponse: ChannelState.CLOSED,
        },
        ChannelState.MUST_CLOSE: {
            **_all(CHANNEL_REPLIES, ChannelState.MUST_CLOSE),
            ClearChannelResponse: ChannelState.CLOSED,
            ServerDisconnResponse: ChannelState.CLOSED,
        },
        ChannelState.CLOSED: {},
        ChannelState.FAILED: {},
    },
    CONNECTION: {
        ChannelState.SEND_CREATE_CHAN_REQUEST: {CircuitClosed: ChannelState.CLOSED},
        ChannelState.AWAIT_CREATE_CHAN_RESPONSE: {CircuitClosed: ChannelState.CLOSED},
        ChannelState.CONNECTED: {CircuitClosed: ChannelState.CLOSED},
        ChannelState.MUST_CLOSE: {CircuitClosed: ChannelState.CLOSED},
    },
}

# --- subscription --------------------------------------------------------------------------------------

SUBSCRIPTION_INITIAL = SubscriptionState.SEND_EVENT_ADD_REQUEST

SUBSCRIPTION_TRANSITIONS: Table = {
    CLIENT: {
        SubscriptionState.SEND_EVENT_ADD_REQUEST: {EventAddRequest: SubscriptionState.SUBSCRIBED},
        SubscriptionState.SUBSCRIBED: {EventCancelRequest: SubscriptionState.AWAIT_EVENT_CANCEL_RESPONSE},
        SubscriptionState.AWAIT_EVENT_CANCEL_RESPONSE: {},
        SubscriptionState.CANCELLED: {},
    },
    SERVER: {
        SubscriptionState.SEND_EVENT_ADD_REQUEST: {},
        SubscriptionState.SUBSCRIBED: {
            EventAddResponse: SubscriptionState.SUBSCRIBED,
            # an EVENT_ADD the server could not install
            ErrorResponse: SubscriptionState.CANCELLED,
        },
        SubscriptionState.AWAIT_EVENT_CANCEL_RESPONSE: {
            # updates the server sent before it read the cancel
            EventAddResponse: SubscriptionState.AWAIT_EVENT_CANCEL_RESPONSE,
            EventCancelResponse: SubscriptionState.CANCELLED,
            ErrorResponse: SubscriptionState.CANCELLED,
        },
        SubscriptionState.CANCELLED: {},
    },
    CONNECTION: {
        SubscriptionState.SUBSCRIBED: {ChannelClosed: SubscriptionState.CANCELLED},
        SubscriptionState.AWAIT_EVENT_CANCEL_RESPONSE: {ChannelClosed: SubscriptionState.CANCELLED},
    },
}

# --- UDP -----------------------------------------------------------------------------------------------

# What each role may put in a datagram.
DATAGRAM_MESSAGES: dict[Role, frozenset[type]] = {
    CLIENT: frozenset({VersionRequest, SearchRequest, RepeaterRegisterRequest}),
    SERVER: frozenset({VersionResponse, SearchResponse, NotFoundResponse, RsrvIsUpResponse,
                       RepeaterConfirmResponse}),
}

REPEATER_INITIAL = RepeaterState.SEND_REPEATER_REGISTER

# A client's registration with its CA repeater, which answers in the server role. libca repeats the
# registration until it sees the confirmation, and a restarted repeater confirms again. libca registers
# with an *empty* datagram (for repeaters older than 3.12), which is no message: so a confirmation is
# welcome even when no REPEATER_REGISTER was sent.
REPEATER_TRANSITIONS: Table = {
    CLIENT: {
        RepeaterState.SEND_REPEATER_REGISTER: {RepeaterRegisterRequest: RepeaterState.AWAIT_REPEATER_CONFIRM},
        RepeaterState.AWAIT_REPEATER_CONFIRM: {RepeaterRegisterRequest: RepeaterState.AWAIT_REPEATER_CONFIRM},
        RepeaterState.REGISTERED: {RepeaterRegisterRequest: RepeaterState.REGISTERED},
    },
    SERVER: {
        RepeaterState.SEND_REPEATER_REGISTER: {RepeaterConfirmResponse: RepeaterState.REGISTERED},
        RepeaterState.AWAIT_REPEATER_CONFIRM: {RepeaterConfirmResponse: RepeaterState.REGISTERED},
        RepeaterState.REGISTERED: {RepeaterConfirmResponse: RepeaterState.REGISTERED},
    },
}

# Every table, by name, for the diagram generator and the tests.
TABLES: dict[str, Table] = {
    "circuit": CIRCUIT_TRANSITIONS,
    "channel": CHANNEL_TRANSITIONS,
    "subscription": SUBSCRIPTION_TRANSITIONS,
    "repeater": REPEATER_TRANSITIONS,
}


def transition(table: Table, state: State, sender: Role | None, event: type, our_role: Role,
               subject: str) -> State:
    """The state that ``event`` sent by ``sender`` leads to from ``state``.

    ``subject`` names the machine for the error message ("the circuit's client side", "channel 'XF:1'
    (cid 3)"). Raises the `refusal` when the table has no such transition.
    """
    try:
        return table[sender][state][event]
    except KeyError:
        raise refusal(state, sender, event, our_role, subject) from None


def refusal(state: State, sender: Role | None, event: type, our_role: Role, subject: str) -> ProtocolError:
    """The error for ``event`` from ``sender`` in ``state``: LocalProtocolError when we are the sender (or
    for a pseudo-event: a bug here), RemoteProtocolError when the peer is."""
    error = RemoteProtocolError if sender is our_role.peer else LocalProtocolError
    who = "" if sender is None else f" from the {sender.value}"
    return error(f"{event.__name__}{who} is not allowed while {subject} is {state.name}")
