"""Message transports: one line-oriented face over TCP sockets, VISA and serial ports."""

from daq.transports.base import Transport
from daq.transports.resource import ResourceAddress, open_transport, parse_resource

__all__ = ["ResourceAddress", "Transport", "open_transport", "parse_resource"]
