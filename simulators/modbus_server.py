"""The wire side of simulated Modbus instruments: pymodbus servers over TCP and over a pty pair.

Built on the pymodbus 3.16 simulator API (`SimDevice` + `SimData`, one `action` callback per
access), not the deprecated `ModbusDeviceContext`/`SequentialDataBlock` path. The action
fills the registers a request reads from the live model (so values follow the clock) and
hands written values to the model, which may refuse them with a Modbus exception.

RTU: a Modbus RTU server opens a serial *device path*, and so does the client; a single pty
gives only one path (the master has none). `NullModemPair` makes two ptys and pumps bytes
between their masters, like a null-modem cable between two serial ports: the server opens
one end, the driver the other (`MODBUS-RTU::/dev/pts/N::unit`).

Float encoding is done here with `struct`, independently of `daq.transports.modbus`, so a
word-order bug on either side shows up in the tests instead of cancelling out.

Faults: each controller model carries a `FaultSchedule` (`model.faults`, or
`running.faults("oven")` on a served bench), armed as for the SCPI instruments
(`simulators.faults`). A Modbus request is matched as the command `"<function code>:<start
address>"`, decimal: `command="3"` is every holding-register read, `"3:32770"` the float PV
read (0x8000 + 2*1), `"3:1"` the scaled PV read, `"16:32772"` a float setpoint write, `"6:2"` a
scaled one; no command: every request. Faults are applied per request by a request handler
(`_fault_handler_class`) in front of pymodbus's own, for the unit the request addresses:

- `drop`: no reply; TCP: the connection is closed (the client sees it lost); RTU: silence.
- `delay`: the request is answered `delay` s of wall time late. RTU: a new request on the
  line meanwhile discards the late reply (a half-duplex slave does not talk over the master),
  so it never answers the next request; TCP: it goes to the connection the client has left.
- `garbage`: TCP: a whole MBAP frame (right transaction id and length) whose PDU has no valid
  function code (0x64 and junk), which pymodbus's client cannot decode (it drops the
  connection); RTU: the right reply with a corrupted CRC, which the client discards.
- `truncate`: the first half of the reply frame; TCP: then the connection closes; RTU: then
  silence.
- `stuck`: the request runs, but every register it reads repeats the value last served from
  that address (the fresh one if none yet); time and the model go on.
- `error`: Modbus exception `code` if 1..255, else 4 (server device failure); nothing runs.
- `power_cycle`: no reply, the controller is back in its power-on state (`model.power_on()`:
  setpoint to its default, PV at ambient); TCP: every connection closes; RTU: silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import struct
import tty
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from daq.bench import Bench
from daq.errors import ConfigError
from daq.transports.resource import parse_resource
from simulators.eurotherm3200 import (
    FLOAT_BASE,
    PARAMETERS,
    WRITABLE,
    Eurotherm3200,
    SetpointRejected,
)

#: Function codes that write holding registers.
_WRITES = (6, 16, 23)
#: Exception code of an `error` fault whose `code` is no Modbus exception code (the SCPI default).
DEVICE_FAILURE = 4
#: The PDU of a `garbage` reply over TCP: function code 0x64 (none defined) and junk.
GARBAGE_PDU = b"\x64#?%&*!~\x7f"
#: Set while a `stuck` fault's request reads the registers.
_STUCK: contextvars.ContextVar[bool] = contextvars.ContextVar("modbus_stuck", default=False)


def modbus_command(function_code: int, address: int) -> str:
    """The command a fault's `command` is matched against: `"<function code>:<start address>"`."""
    return f"{function_code}:{address}"


def _float_words(value: float) -> tuple[int, int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return hi, lo


def _words_float(hi: int, lo: int) -> float:
    return float(struct.unpack(">f", struct.pack(">HH", hi, lo))[0])


class EurothermRegisters:
    """The `SimDevice` of one controller model: register layout plus the access action."""

    def __init__(self, model: Eurotherm3200, unit: int = 1) -> None:
        self.model = model
        self.unit = unit
        self.requests = 0
        #: The register values last served, by address (what a `stuck` fault repeats).
        self.last_served: dict[int, int] = {}

    def device(self) -> Any:
        from pymodbus.simulator import DataType, SimData, SimDevice

        simdata = []
        for p in PARAMETERS:
            simdata.append(SimData(p, values=0, datatype=DataType.REGISTERS, readonly=p not in WRITABLE))
        for p in PARAMETERS:
            simdata.append(SimData(FLOAT_BASE + 2 * p, count=2, values=0, datatype=DataType.REGISTERS,
                                   readonly=p not in WRITABLE))
        return SimDevice(id=self.unit, simdata=simdata, action=self.action)

    async def action(
        self, function_code: int, start_address: int, address: int, count: int,
        registers: list[int], set_values: list[int] | list[bool] | None,
    ) -> Any:
        from pymodbus.constants import ExcCodes

        self.requests += 1
        if self.model.reply_latency > 0:
            await self.model.clock.sleep(self.model.reply_latency)
        addresses = range(address, address + count)
        if function_code in _WRITES and set_values is not None:
            values = [int(v) for v in set_values]
            written = dict(zip(addresses, values, strict=False))
            try:
                for p in WRITABLE:
                    if p in written:
                        self.model.set_value(p, self.model.unscale(written[p]))
                    hi_addr = FLOAT_BASE + 2 * p
                    halves = (hi_addr in written, hi_addr + 1 in written)
                    if any(halves):
                        if not all(halves):
                            return ExcCodes.ILLEGAL_ADDRESS
                        self.model.set_value(p, _words_float(written[hi_addr], written[hi_addr + 1]))
            except SetpointRejected:
                return ExcCodes.ILLEGAL_VALUE
            return None
        for p in PARAMETERS:
            if p in addresses:
                registers[p - start_address] = self.model.scaled(p)
            hi_addr = FLOAT_BASE + 2 * p
            if hi_addr in addresses or hi_addr + 1 in addresses:
                hi, lo = _float_words(self.model.value(p))
                registers[hi_addr - start_address] = hi
                registers[hi_addr + 1 - start_address] = lo
        stuck = _STUCK.get()
        for addr in addresses:
            i = addr - start_address
            if 0 <= i < len(registers):
                if stuck and addr in self.last_served:
                    registers[i] = self.last_served[addr]
                else:
                    self.last_served[addr] = registers[i]
        return None


@functools.cache
def _fault_handler_class() -> Any:
    """A pymodbus request handler that applies the addressed model's fault schedule (see the notes)."""
    from pymodbus.constants import ExcCodes
    from pymodbus.exceptions import NoSuchIdException
    from pymodbus.framer import FramerRTU
    from pymodbus.pdu import ExceptionResponse
    from pymodbus.server.requesthandler import ServerRequestHandler

    class FaultyRequestHandler(ServerRequestHandler):  # type: ignore[misc]
        sim: ModbusSimServer
        received = 0

        async def handle_request(self) -> None:
            pdu, addr = self.last_pdu, self.last_addr
            if not pdu:
                return
            self.received += 1
            line = self.sim.line(pdu.dev_id)
            fault = None
            if line is not None:
                command = modbus_command(pdu.function_code, int(getattr(pdu, "address", 0)))
                fault = line.model.faults.take(command)
            kind = fault.kind if fault is not None else ""
            serial = isinstance(self.framer, FramerRTU)
            if fault is not None and line is not None:
                if kind in ("drop", "power_cycle"):
                    if kind == "power_cycle":
                        line.model.power_on()
                        if not serial:
                            self.sim.drop_connections()
                    elif not serial:
                        self.close()
                    return
                if kind == "error":
                    code = fault.code if 1 <= fault.code <= 255 else DEVICE_FAILURE
                    error = ExceptionResponse(pdu.function_code, code)
                    error.transaction_id, error.dev_id = pdu.transaction_id, pdu.dev_id
                    self.server_send(error, addr)
                    return
                if kind == "delay":
                    seen = self.received
                    await asyncio.sleep(fault.delay)  # wall time: client timeouts are wall time
                    if serial and self.received != seen:
                        return  # a new request on the line: the late reply is never sent
            token = _STUCK.set(kind == "stuck")
            try:
                response = await pdu.datastore_update(self.server.context, pdu.dev_id)
            except NoSuchIdException:
                if self.server.ignore_missing_devices:
                    return
                response = ExceptionResponse(pdu.function_code, ExcCodes.GATEWAY_NO_RESPONSE)
            except Exception:  # pymodbus answers a failing datastore with exception 4 too
                response = ExceptionResponse(pdu.function_code, ExcCodes.DEVICE_FAILURE)
            finally:
                _STUCK.reset(token)
            response.transaction_id, response.dev_id = pdu.transaction_id, pdu.dev_id
            if kind == "garbage":
                frame = self.framer.buildFrame(response)
                if serial:
                    frame = frame[:-2] + bytes([frame[-2] ^ 0xFF, frame[-1] ^ 0x5A])  # wrong CRC
                else:
                    frame = self.framer.encode(GARBAGE_PDU, pdu.dev_id, pdu.transaction_id)
                self.send(frame, addr)
                return
            if kind == "truncate":
                frame = self.framer.buildFrame(response)
                self.send(frame[: max(1, len(frame) // 2)], addr)
                if not serial:
                    self.close()
                return
            self.server_send(response, addr)

    return FaultyRequestHandler


class NullModemPair:
    """Two pseudo-terminals whose masters are pumped into each other: a virtual null-modem cable."""

    def __init__(self) -> None:
        self._fds: list[int] = []
        self.paths: tuple[str, str] = ("", "")
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bytes_pumped = 0

    async def start(self) -> NullModemPair:
        self._loop = asyncio.get_running_loop()
        m1, s1 = os.openpty()
        m2, s2 = os.openpty()
        for s in (s1, s2):
            tty.setraw(s)
        for m in (m1, m2):
            os.set_blocking(m, False)
        self._fds = [m1, s1, m2, s2]  # keep the slave fds open: a master read fails with EIO once none is
        self.paths = (os.ttyname(s1), os.ttyname(s2))
        self._loop.add_reader(m1, self._pump, m1, m2)
        self._loop.add_reader(m2, self._pump, m2, m1)
        return self

    def _pump(self, src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        if data:
            self.bytes_pumped += len(data)
            with contextlib.suppress(OSError):
                os.write(dst, data)

    def close(self) -> None:
        if self._loop is not None and self._fds:
            for m in (self._fds[0], self._fds[2]):
                self._loop.remove_reader(m)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []


class ModbusSimServer:
    """A controller model served as Modbus TCP (`start_tcp`) or RTU over a pty pair (`start_rtu`).

    `others` puts more controllers on the same server under their own unit ids: an RS-485 line
    with several instruments, or a TCP gateway in front of one. A request for a unit that is not
    there gets exception 4 from pymodbus's simulator core (a real RTU line would stay silent).
    """

    def __init__(self, model: Eurotherm3200, unit: int = 1, *, others: dict[int, Eurotherm3200] | None = None) -> None:
        self.model = model
        self.unit = unit
        self.registers = EurothermRegisters(model, unit)
        self.lines = [self.registers] + [EurothermRegisters(m, u) for u, m in (others or {}).items()]
        if len({line.unit for line in self.lines}) != len(self.lines):
            raise ValueError("two controllers with one unit id on one server")
        self.resource = ""
        self._server: Any = None
        self._pair: NullModemPair | None = None

    @property
    def requests(self) -> int:
        return sum(line.requests for line in self.lines)

    def line(self, unit: int) -> EurothermRegisters | None:
        """The controller answering unit id `unit` on this server, if any."""
        return next((line for line in self.lines if line.unit == unit), None)

    def _hook_faults(self, server: Any) -> None:
        """Serve every connection with the fault-applying request handler."""
        handler_class = _fault_handler_class()

        def new_connection() -> Any:
            handler = handler_class(server, server.trace_packet, server.trace_pdu, server.trace_connect)
            handler.sim = self
            return handler

        server.callback_new_connection = new_connection

    def drop_connections(self) -> None:
        """Close every client connection (TCP); a serial line has none to close."""
        if self._server is None:
            return
        for connection in list(self._server.active_connections.values()):
            connection.close()

    def _devices(self) -> Any:
        devices = [line.device() for line in self.lines]
        return devices[0] if len(devices) == 1 else devices

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> ModbusSimServer:
        from pymodbus.server import ModbusTcpServer

        server = ModbusTcpServer(self._devices(), address=(host, port))
        self._hook_faults(server)
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:  # pymodbus reports a failed bind this way
            raise OSError(f"cannot listen on {host}:{port}") from exc
        self._server = server
        listener: Any = server.transport  # an asyncio.Server once listening
        bound = listener.sockets[0].getsockname()[1]
        self.resource = f"MODBUS-TCP::{host}::{bound}::{self.unit}"
        return self

    async def start_rtu(self, baudrate: int = 19200) -> ModbusSimServer:
        from pymodbus.framer import FramerType
        from pymodbus.server import ModbusSerialServer

        pair = await NullModemPair().start()
        server = ModbusSerialServer(self._devices(), framer=FramerType.RTU, port=pair.paths[0],
                                    baudrate=baudrate)
        self._hook_faults(server)
        try:
            await server.serve_forever(background=True)
        except BaseException:
            pair.close()
            raise
        self._pair, self._server = pair, server
        self.resource = f"MODBUS-RTU::{pair.paths[1]}::{self.unit}"
        return self

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()
        if self._pair is not None:
            self._pair.close()
            self._pair = None


@dataclass
class RunningModbus:
    """The Modbus instruments of a bench being served; merge `resources` into the bench."""

    servers: dict[str, ModbusSimServer] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)

    async def close(self) -> None:
        for server in self.servers.values():
            await server.close()
        self.servers.clear()

    async def __aenter__(self) -> RunningModbus:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


MODBUS_KINDS = ("modbus-tcp", "modbus-rtu")


async def start_modbus_server(model: Any, entry: Any, source: str = "<bench>") -> ModbusSimServer:
    """Serve one bench entry on a `MODBUS-...` resource from its world model (the bench-server hook).

    `MODBUS-TCP::host::port::unit` gets a pymodbus TCP server there (port 0: a free port);
    `MODBUS-RTU::<path>::unit` gets a fresh null-modem pty pair, since a simulator cannot own
    the real serial device. The server's `resource` says where it really listens.
    """
    from daq.transports.modbus import parse_modbus_resource

    field_name = f"instruments.{entry.name}.resource"
    if not isinstance(model, Eurotherm3200):
        raise ConfigError(source, f"instruments.{entry.name}.driver",
                          f"no Modbus simulator for driver {entry.driver!r}",
                          "simulate a Modbus instrument with driver = \"eurotherm3200\"")
    address = parse_modbus_resource(entry.resource, source=source, field=field_name)
    server = ModbusSimServer(model, address.unit)
    if address.protocol == "tcp":
        try:
            await server.start_tcp(address.host, address.port)
        except OSError as exc:
            raise ConfigError(source, field_name, f"cannot listen on {address.host}:{address.port}",
                              "use port 0 to let the simulator pick a free port") from exc
    else:
        await server.start_rtu(address.baudrate)
    return server


async def start_modbus_servers(world: Any, bench: Bench | None = None) -> RunningModbus:
    """Serve every `MODBUS-...` instrument of `bench` (default: the world's) from the world's models."""
    bench = bench or world.bench
    running = RunningModbus()
    try:
        for name, entry in bench.instruments.items():
            if parse_resource(entry.resource).kind not in MODBUS_KINDS:
                continue
            server = await start_modbus_server(world[name], entry, bench.source)
            running.servers[name] = server
            running.resources[name] = server.resource
    except BaseException:
        await running.close()
        raise
    return running
