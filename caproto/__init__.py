"""caproto: EPICS Channel Access in pure Python, as a protocol core that performs no I/O.

The names below are re-exported from the core modules for convenience (``from caproto import
VirtualCircuit, ClientChannel, ChannelType``). They are loaded on first use, so ``import caproto`` (or
``import caproto.constants``) stays light: numpy and the message classes load only when needed.
See docs/core.md.
"""
from __future__ import annotations

import importlib
from typing import Any

# module -> the public names it contributes
_EXPORTS: dict[str, tuple[str, ...]] = {
    "constants": (
        "CA_MAJOR_VERSION", "CA_MINOR_VERSION", "DEFAULT_SERVER_PORT", "DEFAULT_REPEATER_PORT",
        "DEFAULT_PRIORITY", "DEFAULT_MAX_ARRAY_BYTES", "Role", "Command", "SubscriptionType",
        "DBE_VALUE", "DBE_LOG", "DBE_ALARM", "DBE_PROPERTY", "AccessRights", "DO_REPLY", "DONT_REPLY",
        "ECA", "AlarmStatus", "AlarmSeverity",
    ),
    "errors": (
        "CaprotoError", "ProtocolError", "LocalProtocolError", "RemoteProtocolError", "FramingError",
        "PayloadTooLarge", "MalformedHeader", "TruncatedDatagram", "UnknownCommand", "CAError",
    ),
    "dbr": ("ChannelType", "Metadata", "native_type", "family", "promote", "encode_payload",
            "decode_payload"),
    "messages": (
        "Header", "Message", "VersionRequest", "VersionResponse", "SearchRequest", "SearchResponse",
        "NotFoundResponse", "EchoRequest", "EchoResponse", "RsrvIsUpResponse", "RepeaterRegisterRequest",
        "RepeaterConfirmResponse", "EventAddRequest", "EventAddResponse", "EventCancelRequest",
        "EventCancelResponse", "ReadRequest", "ReadResponse", "WriteRequest", "EventsOffRequest",
        "EventsOnRequest", "ReadSyncRequest", "ReadSyncResponse", "ErrorResponse", "ClearChannelRequest",
        "ClearChannelResponse", "ReadNotifyRequest", "ReadNotifyResponse", "CreateChanRequest",
        "CreateChanResponse", "WriteNotifyRequest", "WriteNotifyResponse", "ClientNameRequest",
        "HostNameRequest", "AccessRightsResponse", "CreateChFailResponse", "ServerDisconnResponse",
    ),
    "framing": ("NEED_DATA", "StreamParser", "parse_datagram"),
    "states": ("CircuitState", "ChannelState", "SubscriptionState", "RepeaterState"),
    "circuit": ("VirtualCircuit", "ClientChannel", "ServerChannel", "Subscription"),
    "broadcaster": ("Broadcaster", "SearchAnswer"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'caproto' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
