"""What the client raises, and the text libca gives each ECA status code (``ca_message``)."""
from __future__ import annotations

from caproto.errors import CAError, CaprotoError
from caproto.messages import ErrorResponse

__all__ = ["CAError", "ClientError", "ConnectionTimeout", "Disconnected", "RequestTimeout", "ServerError",
           "ca_message"]


class ServerError(CAError):
    """A request the server rejected with an ERROR message, kept in ``response``."""

    def __init__(self, response: ErrorResponse) -> None:
        self.response = response
        super().__init__(response.status_code, response.error_message or "")


class ClientError(CaprotoError):
    """Base of the client's own failures (not reported by a server)."""


class ConnectionTimeout(ClientError, TimeoutError):
    """Channels that did not connect in time; ``names`` lists them."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        shown = ", ".join(repr(n) for n in self.names[:5])
        more = f" and {len(self.names) - 5} more" if len(self.names) > 5 else ""
        super().__init__(f"channel(s) not connected: {shown}{more}")


class RequestTimeout(ClientError, TimeoutError):
    """A read or a put-callback got no answer in time (the server may still act on it)."""


class Disconnected(ClientError):
    """The channel lost its circuit while a request was outstanding, or is not connected now."""


# The messages of caerr.h, indexed by ECA message number (code >> 3); CA tools print these.
_MESSAGES = (
    "Normal successful completion",
    "Maximum simultaneous IOC connections exceeded",
    "Unknown internet host",
    "Unknown internet service",
    "Unable to allocate a new socket",
    "Unable to connect to internet host or service",
    "Unable to allocate additional dynamic memory",
    "Unknown IO channel",
    "Record field specified inappropriate for channel specified",
    "The requested data transfer is greater than available memory or EPICS_CA_MAX_ARRAY_BYTES",
    "User specified timeout on IO operation expired",
    "Sorry, that feature is planned but not supported at this time",
    "The supplied string is unusually large",
    "The request was ignored because the specified channel is disconnected",
    "The data type specifed is invalid",
    "Remote Channel not found",
    "Unable to locate all user specified channels",
    "Channel Access Internal Failure",
    "The requested local DB operation failed",
    "Channel read request failed",
    "Channel write request failed",
    "Channel subscription request failed",
    "Invalid element count requested",
    "Invalid string",
    "Virtual circuit disconnect",
    "Identical process variable names on multiple servers",
    "Request inappropriate within subscription (monitor) update callback",
    "Database value get for that channel failed during channel search",
    "Unable to initialize without the vxWorks VX_FP_TASK task option set",
    "Event queue overflow has prevented first pass event after event add",
    "Bad event subscription (monitor) identifier",
    "Remote channel has new network address",
    "New or resumed network connection",
    "Specified task isn't a member of a CA context",
    "Attempt to use defunct CA feature failed",
    "The supplied string is empty",
    "Unable to spawn the CA repeater thread- auto reconnect will fail",
    "No channel id match for search reply- search reply ignored",
    "Reseting dead connection- will try to reconnect",
    "Server (IOC) has fallen behind or is not responding- still waiting",
    "No internet interface with broadcast available",
    "Invalid event selection mask",
    "IO operations have completed",
    "IO operations are in progress",
    "Invalid synchronous group identifier",
    "Put callback timed out",
    "Read access denied",
    "Write access denied",
    "Requested feature is no longer supported",
    "Empty PV search address list",
    "No reasonable data conversion between client and server types",
    "Invalid channel identifier",
    "Invalid function pointer",
    "Thread is already attached to a client context",
    "Not supported by attached service",
    "User destroyed channel",
    "Invalid channel priority",
    "Preemptive callback not enabled - additional threads may not join context",
    "Client's protocol revision does not support transfers exceeding 16k bytes",
    "Virtual circuit connection sequence aborted",
    "Virtual circuit unresponsive",
)


def ca_message(status: int) -> str:
    """The caerr.h text of an ECA status code, as libca's ``ca_message`` returns it."""
    number = (int(status) & 0xFFFF) >> 3
    if number < len(_MESSAGES):
        return _MESSAGES[number]
    return "new CA message number known only by server - see caerr.h"

