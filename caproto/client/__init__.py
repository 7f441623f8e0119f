"""The Channel Access client: trio tasks and sockets built on the sans-I/O core.

Everything that touches the network lives in this package; ``caproto`` itself stays free of I/O.
``caproto.client.sync`` wraps it for code that does not use trio.
"""
from .context import Context
from .environment import ClientSettings
from .errors import CAError, ClientError, ConnectionTimeout, Disconnected, RequestTimeout, ServerError
from .pv import PV, ConnectionState, Subscription

__all__ = ["Context", "ClientSettings", "PV", "Subscription", "ConnectionState", "CAError", "ClientError",
           "ConnectionTimeout", "Disconnected", "RequestTimeout", "ServerError"]
