"""The transports against real peers: asyncio TCP servers, a pseudo-terminal, pyvisa-py."""

import asyncio
import os
import tty

import pytest

from daq.errors import ConfigError, TransportTimeout
from daq.transports import open_transport, parse_resource
from daq.transports.serial import SerialTransport
from daq.transports.tcp import TcpSocketTransport
from daq.transports.visa import VisaTransport


async def _echo_server(delay_first: float = 0.0):
    """Replies 'R:<cmd>' to each line; the first reply may be late (to provoke a timeout)."""
    state = {"n": 0, "connections": 0}

    async def handle(reader, writer):
        state["connections"] += 1
        while line := await reader.readline():
            state["n"] += 1
            if state["n"] == 1 and delay_first:
                await asyncio.sleep(delay_first)
            writer.write(b"R:" + line.strip() + b"\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], state


def test_resource_strings_select_the_transport():
    assert parse_resource("TCPIP::127.0.0.1::5025::SOCKET").kind == "socket"
    assert parse_resource("TCPIP0::10.0.0.5::5025::SOCKET").port == 5025
    assert parse_resource("ASRL/dev/ttyUSB0::INSTR").device == "/dev/ttyUSB0"
    assert parse_resource("GPIB0::22::INSTR").kind == "visa"
    assert parse_resource("USB0::0x2A8D::0x0101::MY1234::INSTR").kind == "visa"
    assert parse_resource("TCPIP::10.0.0.5::inst0::INSTR").kind == "visa"
    assert isinstance(open_transport("TCPIP::127.0.0.1::5025::SOCKET"), TcpSocketTransport)
    assert isinstance(open_transport("TCPIP::127.0.0.1::5025::SOCKET", visa=True), VisaTransport)
    assert isinstance(open_transport("GPIB0::22::INSTR"), VisaTransport)
    with pytest.raises(ConfigError, match="not a VISA resource string"):
        parse_resource("192.168.1.5:5025")


async def test_tcp_query_and_concurrent_callers_do_not_interleave():
    server, port, _ = await _echo_server()
    t = TcpSocketTransport("127.0.0.1", port, timeout=2)
    replies = await asyncio.gather(*(t.query(f"Q{i}") for i in range(50)))
    assert replies == [f"R:Q{i}" for i in range(50)]
    await t.close()
    server.close()


async def test_tcp_late_reply_is_never_taken_for_the_next_answer():
    server, port, state = await _echo_server(delay_first=0.3)
    t = TcpSocketTransport("127.0.0.1", port, timeout=0.1)
    with pytest.raises(TransportTimeout):
        await t.query("SLOW?")
    assert await t.query("NEXT?") == "R:NEXT?"  # not "R:SLOW?"
    assert state["connections"] == 2  # dropped and reconnected
    await t.close()
    server.close()


async def test_serial_transport_over_a_pseudo_terminal():
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    loop = asyncio.get_running_loop()
    buf = bytearray()

    def on_readable():
        buf.extend(os.read(master, 1024))
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            os.write(master, b"PTY:" + line + b"\r\n")

    loop.add_reader(master, on_readable)
    try:
        t = SerialTransport(path, baudrate=9600, timeout=2)
        assert await t.query("*IDN?") == "PTY:*IDN?"
        assert await t.query("t") == "PTY:t"
        await t.close()
    finally:
        loop.remove_reader(master)
        os.close(master)
        os.close(slave)


async def test_visa_transport_through_pyvisa_py_socket():
    server, port, _ = await _echo_server()
    t = VisaTransport(f"TCPIP::127.0.0.1::{port}::SOCKET", timeout=2)
    assert await t.query("*IDN?") == "R:*IDN?"
    assert await t.query("READ?") == "R:READ?"
    await t.close()
    server.close()
