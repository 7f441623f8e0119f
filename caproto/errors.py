"""The exceptions of the core: who broke the protocol, and what a server reports with an ECA code."""
from __future__ import annotations

from .constants import ECA


class CaprotoError(Exception):
    """Base of every exception the core raises on purpose."""


class ProtocolError(CaprotoError):
    """A message that the protocol or the current state does not allow."""


class LocalProtocolError(ProtocolError):
    """*We* tried to send something illegal: a bug in the caller."""


class RemoteProtocolError(ProtocolError):
    """The *peer* sent something illegal: drop or answer the message, keep serving others."""


class FramingError(RemoteProtocolError):
    """Bytes that cannot be cut into messages."""


class PayloadTooLarge(FramingError):
    """A header announces a payload above the configured maximum (EPICS_CA_MAX_ARRAY_BYTES semantics)."""


class MalformedHeader(FramingError):
    """A header whose sizes are impossible (for example, not a multiple of 8 where one must be)."""


class TruncatedDatagram(FramingError):
    """A UDP datagram that ends inside a header or a payload."""


class UnknownCommand(FramingError):
    """A command id that no message class claims for the sending role."""


class CAError(CaprotoError):
    """A failure reported to a CA peer with an ECA status code (bad type, no write access, ...)."""

    def __init__(self, eca: ECA | int, message: str = "") -> None:
        self.eca = ECA(eca)
        super().__init__(message or self.eca.name)
