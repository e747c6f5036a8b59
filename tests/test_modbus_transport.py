"""The Modbus transport: resource strings, dead and silent peers, reconnect after a failure."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from daq.clock import VirtualClock
from daq.errors import ConfigError, InstrumentError, TransportError, TransportTimeout
from daq.transports.modbus import (
    ModbusTransport,
    ModbusValueError,
    decode_float32,
    decode_int,
    encode_float32,
    encode_int,
    parse_modbus_resource,
)
from daq.transports.resource import open_transport, parse_resource
from simulators.eurotherm3200 import Eurotherm3200 as Model
from simulators.modbus_server import ModbusSimServer, NullModemPair


def test_resource_strings() -> None:
    tcp = parse_resource("MODBUS-TCP::192.168.1.30::502::7")
    assert (tcp.kind, tcp.host, tcp.port) == ("modbus-tcp", "192.168.1.30", 502)
    rtu = parse_resource("modbus-rtu::/dev/ttyUSB0::1")
    assert (rtu.kind, rtu.device) == ("modbus-rtu", "/dev/ttyUSB0")
    assert parse_modbus_resource("MODBUS-TCP::192.168.1.30::502::7").unit == 7
    assert parse_modbus_resource("MODBUS-RTU::/dev/ttyUSB0::2::9600").baudrate == 9600
    assert parse_modbus_resource("MODBUS-RTU::/dev/ttyUSB0::2").baudrate == 19200


@pytest.mark.parametrize(
    ("resource", "problem"),
    [
        ("MODBUS-TCP::host::502", "is not a Modbus resource string"),
        ("MODBUS-TCP::host::70000::1", "port 70000 out of range"),
        ("MODBUS-TCP::host::502::0", "unit (device id) 0 out of range"),
        ("MODBUS-RTU::/dev/ttyUSB0::300", "unit (device id) 300 out of range"),
    ],
)
def test_bad_resource_strings_name_the_field(resource: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_resource(resource, source="bench.toml", field="instruments.oven.resource")
    assert info.value.field == "instruments.oven.resource"
    assert problem in info.value.problem
    assert info.value.fix


def test_a_modbus_resource_is_not_a_message_transport() -> None:
    with pytest.raises(ConfigError, match="ModbusTransport"):
        open_transport("MODBUS-TCP::127.0.0.1::502::1")


def test_number_encoding() -> None:
    assert encode_int(-12.3, scale=0.1) == (-123) & 0xFFFF
    assert decode_int((-123) & 0xFFFF, scale=0.1) == pytest.approx(-12.3)
    assert decode_int(0xFFFF, type_="uint16") == 65535
    with pytest.raises(ModbusValueError, match="beyond int16"):
        encode_int(3300.0, scale=0.1, where="oven")
    assert encode_float32(1.0) == [0x3F80, 0x0000]
    assert encode_float32(1.0, "little") == [0x0000, 0x3F80]
    assert decode_float32([0x0000, 0x3F80], "little") == 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_dead_port_is_a_clear_transport_error() -> None:
    port = _free_port()
    transport = ModbusTransport(f"MODBUS-TCP::127.0.0.1::{port}::1", timeout=0.3)
    with pytest.raises(TransportError, match=f"MODBUS-TCP::127.0.0.1::{port}::1: cannot connect"):
        await transport.read_registers(1)
    await transport.close()


async def test_silent_tcp_peer_is_a_timeout() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = ModbusTransport(f"MODBUS-TCP::127.0.0.1::{port}::1", timeout=0.2)
    started = time.perf_counter()
    with pytest.raises(TransportTimeout, match=r"no response to read of 1 holding register\(s\) at 1 within 0.2 s"):
        await transport.read_registers(1)
    assert time.perf_counter() - started < 2.0
    assert transport.reconnects == 1
    await transport.close()
    server.close()
    await server.wait_closed()


async def test_silent_rtu_line_is_a_timeout() -> None:
    pair = await NullModemPair().start()  # nobody at the other end of the cable
    transport = ModbusTransport(f"MODBUS-RTU::{pair.paths[1]}::1", timeout=0.2)
    try:
        with pytest.raises(TransportTimeout, match=f"MODBUS-RTU::{pair.paths[1]}::1: no response"):
            await transport.read_float32(0x8002)
    finally:
        await transport.close()
        pair.close()


async def test_missing_serial_device_is_a_transport_error() -> None:
    transport = ModbusTransport("MODBUS-RTU::/dev/does-not-exist::1", timeout=0.2)
    with pytest.raises(TransportError, match="MODBUS-RTU::/dev/does-not-exist::1: cannot connect"):
        await transport.read_registers(1)
    await transport.close()


async def test_reconnects_after_the_instrument_comes_back() -> None:
    clock = VirtualClock()
    model = Model(clock)
    first = await ModbusSimServer(model).start_tcp()
    port = int(first.resource.split("::")[2])
    transport = ModbusTransport(first.resource, timeout=0.3)
    assert await transport.read_int(1, scale=0.1) == pytest.approx(20.0)
    await first.close()
    with pytest.raises(TransportError):
        await transport.read_int(1, scale=0.1)
    second = await ModbusSimServer(model).start_tcp(port=port)
    try:
        assert await transport.read_int(2, scale=0.1) == pytest.approx(20.0)
    finally:
        await transport.close()
        await second.close()


async def test_concurrent_callers_share_one_connection() -> None:
    clock = VirtualClock()
    model = Model(clock)
    server = await ModbusSimServer(model).start_tcp()
    transport = ModbusTransport(server.resource, timeout=1.0)
    try:
        results = await asyncio.gather(*(transport.read_registers(p) for p in (1, 2, 3, 4, 5) * 4))
        assert [r[0] for r in results] == [200, 200, 0, 0, 200] * 4
        assert transport.reconnects == 0
    finally:
        await transport.close()
        await server.close()


async def test_units_on_one_rtu_line_share_it() -> None:
    clock = VirtualClock()
    first, second = Model(clock), Model(clock, ambient=22.0)
    server = await ModbusSimServer(first, unit=1, others={2: second}).start_rtu()
    device = server.resource.split("::")[1]
    one = ModbusTransport(f"MODBUS-RTU::{device}::1", timeout=0.5)
    two = ModbusTransport(f"MODBUS-RTU::{device}::2", timeout=0.5)
    absent = ModbusTransport(f"MODBUS-RTU::{device}::9", timeout=0.5)
    try:
        await one.write_int(2, 40.0, scale=0.1)
        await two.write_float32(0x8004, 60.0)
        readings = await asyncio.gather(*(t.read_int(2, scale=0.1) for t in (one, two) * 5))
        assert readings == [40.0, 60.0] * 5
        assert (first.target_setpoint, second.target_setpoint) == (40.0, 60.0)
        with pytest.raises(InstrumentError, match="::9: read of 1 holding register"):
            await absent.read_registers(1)
        assert await two.read_int(1, scale=0.1) == pytest.approx(22.0)
    finally:
        for t in (one, two, absent):
            await t.close()
        await server.close()
