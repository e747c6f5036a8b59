"""Modbus TCP and Modbus RTU through pymodbus (>=3.16,<4): holding registers as numbers.

Resource strings (parsed here, accepted by `daq.transports.resource.parse_resource`):

    MODBUS-TCP::host::port::unit            e.g. MODBUS-TCP::192.168.1.30::502::1
    MODBUS-RTU::/dev/ttyUSB0::unit          e.g. MODBUS-RTU::/dev/ttyUSB0::1
    MODBUS-RTU::/dev/ttyUSB0::unit::baud    e.g. MODBUS-RTU::/dev/pts/5::1::9600 (default 19200, 8N1)

`unit` is the Modbus device id (pymodbus calls it `device_id`, older code `slave`), 1..247;
port 0 in a bench file lets a simulator pick a free port.

Numbers on the wire:
- `int16` / `uint16`: one register; the engineering value is `raw * scale` (scale 0.1 for an
  instrument configured with one decimal place), writes round `value / scale` and refuse what
  does not fit in 16 bits.
- `float32`: two registers, IEEE 754; `word_order="big"` (high word first, Eurotherm and most
  PLCs) or `"little"`.

One lock per instrument keeps request/response pairs whole. pymodbus's own retries and
background reconnect are switched off: after a timeout or a broken connection the client is
dropped and a fresh one is opened on the next call, so a late response can never answer the
next request. The client is created lazily inside the running loop, as pymodbus requires.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from daq.errors import ConfigError, InstrumentError, TransportError, TransportTimeout

WordOrder = Literal["big", "little"]
WORD_ORDERS: tuple[WordOrder, ...] = ("big", "little")
INT_TYPES = {"int16": (-32768, 32767), "uint16": (0, 65535)}

_TCP = re.compile(r"^MODBUS-TCP::([^:]+)::(\d+)::(\d+)$", re.IGNORECASE)
_RTU = re.compile(r"^MODBUS-RTU::([^:]+)::(\d+)(?:::(\d+))?$", re.IGNORECASE)
_FORMS = '"MODBUS-TCP::192.168.1.30::502::1" or "MODBUS-RTU::/dev/ttyUSB0::1" (optionally "::19200" baud)'

_EXCEPTION_NAMES = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "device failure",
    5: "acknowledge", 6: "device busy", 8: "memory parity error", 10: "gateway path unavailable",
    11: "gateway target did not respond",
}


class ModbusValueError(InstrumentError):
    """A value that cannot be written to a register (beyond 16 bits, not finite)."""


class ModbusExceptionResponse(InstrumentError):
    """The instrument answered with a Modbus exception (illegal address, illegal value, ...)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ModbusAddress:
    resource: str
    protocol: Literal["tcp", "rtu"]
    unit: int
    host: str = ""
    port: int = 0
    device: str = ""
    baudrate: int = 19200

    def with_port(self, port: int) -> ModbusAddress:
        return ModbusAddress(f"MODBUS-TCP::{self.host}::{port}::{self.unit}", "tcp", self.unit, self.host, port)


def is_modbus_resource(text: str) -> bool:
    return text.strip().upper().startswith("MODBUS-")


def parse_modbus_resource(resource: str, *, source: str = "<input>", field: str = "resource") -> ModbusAddress:
    text = resource.strip()
    m = _TCP.match(text)
    if m:
        port, unit = int(m.group(2)), int(m.group(3))
        if not 0 <= port <= 65535:
            raise ConfigError(source, field, f"port {port} out of range in {resource!r}", "use a port 1..65535 (502)")
        _check_unit(unit, resource, source, field)
        return ModbusAddress(text, "tcp", unit, host=m.group(1), port=port)
    m = _RTU.match(text)
    if m:
        unit = int(m.group(2))
        _check_unit(unit, resource, source, field)
        baud = int(m.group(3)) if m.group(3) else 19200
        if baud <= 0:
            raise ConfigError(source, field, f"baud rate {baud} in {resource!r}", "use e.g. ::9600 or ::19200")
        return ModbusAddress(text, "rtu", unit, device=m.group(1), baudrate=baud)
    raise ConfigError(source, field, f"{resource!r} is not a Modbus resource string", f"write e.g. {_FORMS}")


def _check_unit(unit: int, resource: str, source: str, field: str) -> None:
    if not 1 <= unit <= 247:
        raise ConfigError(source, field, f"unit (device id) {unit} out of range in {resource!r}",
                          "use the instrument's Modbus address, 1..247")


def encode_int(value: float, *, scale: float = 1.0, type_: str = "int16", where: str = "") -> int:
    """The raw register for an engineering value (two's complement for int16)."""
    lo, hi = INT_TYPES[type_]
    if value != value or value in (float("inf"), float("-inf")):
        raise ModbusValueError(f"{where}: {value!r} is not a finite number")
    raw = round(value / scale)
    if not lo <= raw <= hi:
        raise ModbusValueError(
            f"{where}: {value:g} is {raw} in register units (scale {scale:g}), beyond {type_} {lo}..{hi}"
        )
    return raw & 0xFFFF


def decode_int(raw: int, *, scale: float = 1.0, type_: str = "int16") -> float:
    if type_ == "int16" and raw >= 0x8000:
        raw -= 0x10000
    return raw * scale


def encode_float32(value: float, word_order: WordOrder = "big") -> list[int]:
    from pymodbus.client import AsyncModbusTcpClient as _Client

    return list(_Client.convert_to_registers(float(value), _Client.DATATYPE.FLOAT32, word_order=word_order))


def decode_float32(registers: Sequence[int], word_order: WordOrder = "big") -> float:
    from pymodbus.client import AsyncModbusTcpClient as _Client

    value = _Client.convert_from_registers(list(registers), _Client.DATATYPE.FLOAT32, word_order=word_order)
    assert isinstance(value, float)
    return value


class _Link:
    """One Modbus connection and the lock that keeps its request/response pairs whole.

    TCP: one per transport (a gateway takes several connections). RTU: one per serial device
    and event loop, shared by every unit on that RS-485 line, since a port opens only once.
    """

    def __init__(self, key: tuple[Any, str] | None = None) -> None:
        self.key = key
        self.lock = asyncio.Lock()
        self.client: Any = None
        self.users: set[int] = set()


_SERIAL_LINKS: dict[tuple[Any, str], _Link] = {}


class ModbusTransport:
    """One Modbus instrument (one unit id on a TCP gateway or an RTU line).

    Several transports on the same `MODBUS-RTU::<device>` share that line: one client, one lock,
    the line's timeout and baud rate from the first transport that opens it.
    """

    def __init__(self, resource: str, *, timeout: float = 1.0, baudrate: int | None = None) -> None:
        self.address = parse_modbus_resource(resource)
        self.resource = self.address.resource
        self.unit = self.address.unit
        self.timeout = timeout
        self.baudrate = baudrate or self.address.baudrate
        self.reconnects = 0
        self._link: _Link | None = None

    def _get_link(self) -> _Link:
        if self._link is None:
            if self.address.protocol == "tcp":
                self._link = _Link()
            else:
                key = (asyncio.get_running_loop(), self.address.device)
                self._link = _SERIAL_LINKS.get(key) or _SERIAL_LINKS.setdefault(key, _Link(key))
            self._link.users.add(id(self))
        return self._link

    def _new_client(self) -> Any:
        if self.address.protocol == "tcp":
            from pymodbus.client import AsyncModbusTcpClient

            return AsyncModbusTcpClient(self.address.host, port=self.address.port, timeout=self.timeout, retries=0,
                                        reconnect_delay=0)
        from pymodbus.client import AsyncModbusSerialClient

        return AsyncModbusSerialClient(self.address.device, baudrate=self.baudrate, timeout=self.timeout,
                                       retries=0, reconnect_delay=0)

    async def _ensure_open(self, link: _Link) -> Any:
        if link.client is not None and link.client.connected:
            return link.client
        self._drop(link, count=False)
        client = self._new_client()
        try:
            async with asyncio.timeout(self.timeout + 1.0):
                ok = await client.connect()
        except (OSError, TimeoutError) as exc:
            client.close()
            raise TransportError(f"{self.resource}: cannot connect ({exc or 'timeout'})") from exc
        if not ok:
            client.close()
            where = (f"{self.address.host}:{self.address.port}" if self.address.protocol == "tcp"
                     else self.address.device)
            raise TransportError(f"{self.resource}: cannot connect to {where} (refused, absent or in use)")
        link.client = client
        return client

    def _drop(self, link: _Link, count: bool = True) -> None:
        client, link.client = link.client, None
        if client is not None:
            client.close()
            if count:
                self.reconnects += 1

    async def _call(self, what: str, request: Callable[[Any], Awaitable[Any]]) -> Any:
        from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

        link = self._get_link()
        async with link.lock:
            client = await self._ensure_open(link)
            try:
                async with asyncio.timeout(self.timeout + 1.0):  # pymodbus times out first; this is a backstop
                    response = await request(client)
            except (TimeoutError, ModbusIOException) as exc:
                self._drop(link)
                raise TransportTimeout(
                    f"{self.resource}: no response to {what} within {self.timeout} s (unit {self.unit})"
                ) from exc
            except (ConnectionException, OSError) as exc:
                self._drop(link)
                raise TransportError(f"{self.resource}: {what} failed, connection lost ({exc})") from exc
            except ModbusException as exc:
                self._drop(link)
                raise TransportError(f"{self.resource}: {what} failed: {exc}") from exc
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            name = _EXCEPTION_NAMES.get(code, "unknown exception")
            raise ModbusExceptionResponse(
                f"{self.resource}: {what} refused by the instrument: Modbus exception {code} ({name})", code
            )
        return response

    # -- raw registers -------------------------------------------------------------------

    async def read_registers(self, address: int, count: int = 1) -> list[int]:
        """Holding registers (function 3) from `address` (0-based protocol address)."""
        response = await self._call(
            f"read of {count} holding register(s) at {address}",
            lambda c: c.read_holding_registers(address, count=count, device_id=self.unit),
        )
        registers = list(response.registers)[:count]
        if len(registers) != count:
            raise TransportError(f"{self.resource}: asked for {count} registers at {address}, got {len(registers)}")
        return registers

    async def write_registers(self, address: int, values: Sequence[int]) -> None:
        """Write one register (function 6) or several (function 16)."""
        vals = [int(v) & 0xFFFF for v in values]
        if len(vals) == 1:
            await self._call(f"write of register {address}",
                             lambda c: c.write_register(address, vals[0], device_id=self.unit))
        else:
            await self._call(f"write of {len(vals)} registers at {address}",
                             lambda c: c.write_registers(address, vals, device_id=self.unit))

    # -- numbers ---------------------------------------------------------------------------

    async def read_int(self, address: int, *, scale: float = 1.0, type_: str = "int16") -> float:
        (raw,) = await self.read_registers(address, 1)
        return decode_int(raw, scale=scale, type_=type_)

    async def write_int(self, address: int, value: float, *, scale: float = 1.0, type_: str = "int16") -> None:
        raw = encode_int(value, scale=scale, type_=type_, where=f"{self.resource}: register {address}")
        await self.write_registers(address, [raw])

    async def read_float32(self, address: int, *, word_order: WordOrder = "big") -> float:
        return decode_float32(await self.read_registers(address, 2), word_order)

    async def write_float32(self, address: int, value: float, *, word_order: WordOrder = "big") -> None:
        if value != value or value in (float("inf"), float("-inf")):
            raise ModbusValueError(f"{self.resource}: register {address}: {value!r} is not a finite number")
        await self.write_registers(address, encode_float32(value, word_order))

    async def close(self) -> None:
        """Release this instrument; the connection closes when the last user of its line has gone."""
        link, self._link = self._link, None
        if link is None:
            return
        async with link.lock:
            link.users.discard(id(self))
            if not link.users:
                self._drop(link, count=False)
                if link.key is not None and _SERIAL_LINKS.get(link.key) is link:
                    del _SERIAL_LINKS[link.key]
