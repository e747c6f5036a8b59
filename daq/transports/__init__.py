"""Message transports: one line-oriented face over TCP sockets, VISA and serial ports."""

from daq.transports.base import Transport
from daq.transports.modbus import ModbusTransport  # register-oriented, not a `Transport`; pymodbus loads lazily
from daq.transports.resource import ResourceAddress, open_transport, parse_resource

__all__ = ["ModbusTransport", "ResourceAddress", "Transport", "open_transport", "parse_resource"]
