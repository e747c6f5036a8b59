"""VISA-form resource strings select the transport.

`TCPIP::host::port::SOCKET` and `ASRL/dev/...::INSTR` take the native asyncio paths unless
VISA is asked for; everything else (GPIB, USB, VXI-11 `INSTR`, numbered ASRL) goes through
pyvisa, which knows how to reach it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daq.errors import ConfigError
from daq.transports.base import Transport

_SOCKET = re.compile(r"^TCPIP(\d*)::([^:]+)::(\d+)::SOCKET$", re.IGNORECASE)
_ASRL_PATH = re.compile(r"^ASRL(/[^:]+)::INSTR$", re.IGNORECASE)
_VISA = re.compile(r"^(GPIB\d*::\d+(::\d+)?|USB\d*::.+|TCPIP\d*::[^:]+(::[^:]+)?|ASRL\d+|VXI\d*::.+|PXI.+)::INSTR$",
                   re.IGNORECASE)


@dataclass(frozen=True)
class ResourceAddress:
    resource: str
    kind: str  # "socket", "serial" or "visa"
    host: str = ""
    port: int = 0
    device: str = ""

    def with_port(self, port: int) -> ResourceAddress:
        if self.kind != "socket":
            raise ValueError("only socket resources have a port")
        return ResourceAddress(f"TCPIP::{self.host}::{port}::SOCKET", "socket", self.host, port)


def parse_resource(resource: str, *, source: str = "<input>", field: str = "resource") -> ResourceAddress:
    text = resource.strip()
    if text.upper() == "MANUAL":  # a UUT with no interface: the operator reads it
        return ResourceAddress("MANUAL", "manual")
    m = _SOCKET.match(text)
    if m:
        port = int(m.group(3))
        if not 0 <= port <= 65535:
            raise ConfigError(source, field, f"port {port} out of range in {resource!r}", "use a port 1..65535")
        return ResourceAddress(text, "socket", m.group(2), port)
    m = _ASRL_PATH.match(text)
    if m:
        return ResourceAddress(text, "serial", device=m.group(1))
    if _VISA.match(text):
        return ResourceAddress(text, "visa")
    if text.upper().startswith("MODBUS-"):
        # MODBUS-TCP::host::port::unit or MODBUS-RTU::/dev/ttyUSB0::unit[::baud]; see daq.transports.modbus
        from daq.transports.modbus import parse_modbus_resource

        mb = parse_modbus_resource(text, source=source, field=field)
        return ResourceAddress(text, f"modbus-{mb.protocol}", mb.host, mb.port, mb.device)
    raise ConfigError(
        source, field, f"{resource!r} is not a VISA resource string",
        'write e.g. "TCPIP::192.168.1.20::5025::SOCKET", "GPIB0::22::INSTR", "ASRL/dev/ttyUSB0::INSTR" '
        'or "MODBUS-TCP::192.168.1.30::502::1"',
    )


def open_transport(
    resource: str,
    *,
    visa: bool = False,
    timeout: float = 5.0,
    baudrate: int = 9600,
    read_termination: str = "\n",
    write_termination: str = "\n",
) -> Transport:
    """Build (but do not yet connect) the transport for a resource string."""
    address = parse_resource(resource)
    if address.kind.startswith("modbus-"):
        raise ConfigError("<input>", "resource", f"{resource!r} is a Modbus resource, not a message transport",
                          "open it with daq.transports.modbus.ModbusTransport (a Modbus driver does this)")
    if address.kind == "socket" and not visa:
        from daq.transports.tcp import TcpSocketTransport

        return TcpSocketTransport(
            address.host, address.port, timeout=timeout, read_termination=read_termination,
            write_termination=write_termination, resource=address.resource,
        )
    if address.kind == "serial" and not visa:
        from daq.transports.serial import SerialTransport

        return SerialTransport(
            address.device, baudrate=baudrate, timeout=timeout, read_termination=read_termination,
            write_termination=write_termination, resource=address.resource,
        )
    from daq.transports.visa import VisaTransport

    return VisaTransport(
        address.resource, timeout=timeout, read_termination=read_termination, write_termination=write_termination
    )
