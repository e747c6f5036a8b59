"""Serve a whole simulated bench: one server per instrument, on the transports the file names.

Why: the runner, a demo or a test opens the bench exactly as it would open the real one,
by resource string. A `TCPIP::host::port::SOCKET` instrument gets a TCP server there (port 0
picks a free port); an `ASRL/dev/...::INSTR` instrument gets a fresh pseudo-terminal, since a
simulator cannot own a real serial device; resources only pyvisa reaches (GPIB, USB, VXI-11)
get a TCP socket on 127.0.0.1. `resources` and `bench` report where each instrument really
listens, ready for `Bench.with_resources`.

`faults = [...]` in an instrument's `[simulation]` table is read here (see `simulators.faults`)
and armed on the instrument before it is served; the models never see it.
"""

from __future__ import annotations

import dataclasses
import errno
from dataclasses import dataclass, field
from types import TracebackType

from daq.bench import Bench
from daq.clock import Clock
from daq.errors import ConfigError
from simulators.faults import Fault, FaultSchedule, parse_faults
from simulators.modbus_server import ModbusSimServer, start_modbus_server
from simulators.scpi_instrument import ScpiInstrument
from simulators.scpi_server import ScpiPtyServer, ScpiTcpServer
from simulators.world import SimulatedWorld

ScpiServer = ScpiTcpServer | ScpiPtyServer | ModbusSimServer


@dataclass
class RunningBench:
    """A simulated bench being served; close it (or use `async with`) to free its ports."""

    bench: Bench
    world: SimulatedWorld
    clock: Clock
    servers: dict[str, ScpiServer]
    resources: dict[str, str]
    pty_servers: dict[str, ScpiPtyServer] = field(default_factory=dict)

    def instrument(self, name: str) -> ScpiInstrument:
        return self.world[name]

    def faults(self, name: str) -> FaultSchedule:
        """The fault schedule of instrument `name` (arm faults on it; it applies on every transport)."""
        return self.world[name].faults

    async def serve_pty(self, name: str, *, latency: float | None = None) -> str:
        """Also serve instrument `name` on a new pseudo-terminal; returns `ASRL/dev/pts/N::INSTR`."""
        if name in self.pty_servers:
            return self.pty_servers[name].resource
        server = await ScpiPtyServer(self.world[name], latency=latency).start()
        self.pty_servers[name] = server
        return server.resource

    async def close(self) -> None:
        for server in [*self.servers.values(), *self.pty_servers.values()]:
            await server.close()
        self.servers.clear()
        self.pty_servers.clear()
        self.world.stop()

    async def __aenter__(self) -> RunningBench:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def start_bench(
    bench: Bench, clock: Clock, seed: int | None = None, *, latency: float | None = None
) -> RunningBench:
    """Build the world of `bench` and serve every instrument; `latency` overrides the bench's."""
    bench_faults = read_bench_faults(bench)
    world = SimulatedWorld(_without_faults(bench), clock, seed)
    for name, faults in bench_faults.items():
        for fault in faults:
            world[name].faults.add(fault)
    servers: dict[str, ScpiServer] = {}
    resources: dict[str, str] = {}
    try:
        for name, entry in bench.instruments.items():
            address = entry.address
            server: ScpiServer
            if address.kind == "manual":
                resources[name] = address.resource  # read by the (simulated) operator: nothing to serve
                continue
            if address.kind.startswith("modbus-"):
                server = await start_modbus_server(world[name], entry, bench.source)
            elif address.kind == "serial":
                server = await ScpiPtyServer(world[name], latency=latency).start()
            else:
                host = address.host if address.kind == "socket" else "127.0.0.1"
                port = address.port if address.kind == "socket" else 0
                server = ScpiTcpServer(world[name], host, port, latency=latency)
                try:
                    await server.start()
                except OSError as exc:
                    raise _bind_error(bench.source, name, host, port, exc) from exc
            servers[name] = server
            resources[name] = server.resource
    except BaseException:
        for started in servers.values():
            await started.close()
        raise
    return RunningBench(bench.with_resources(resources), world, clock, servers, resources)


def read_bench_faults(bench: Bench) -> dict[str, list[Fault]]:
    """Every instrument's `simulation.faults`, validated (ConfigError naming the field)."""
    return {
        name: parse_faults(entry.simulation.get("faults"), source=bench.source,
                           where=f"instruments.{name}.simulation.faults")
        for name, entry in bench.instruments.items()
    }


def _without_faults(bench: Bench) -> Bench:
    """The bench as the instrument models read it: fault schedules are the servers' business."""
    if not any("faults" in e.simulation for e in bench.instruments.values()):
        return bench
    instruments = {
        name: dataclasses.replace(entry, simulation={k: v for k, v in entry.simulation.items() if k != "faults"})
        for name, entry in bench.instruments.items()
    }
    return dataclasses.replace(bench, instruments=instruments)


async def serve_pty(instrument: ScpiInstrument, *, latency: float | None = None) -> ScpiPtyServer:
    """Serve one instrument model on a new pseudo-terminal (its `resource` is `ASRL/dev/pts/N::INSTR`)."""
    return await ScpiPtyServer(instrument, latency=latency).start()


def _bind_error(source: str, name: str, host: str, port: int, exc: OSError) -> ConfigError:
    field_name = f"instruments.{name}.resource"
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(source, field_name, f"port {port} on {host} is already in use",
                           "use port 0 to let the simulator pick a free port")
    return ConfigError(source, field_name, f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                       "a simulated bench listens on this machine: use TCPIP::127.0.0.1::0::SOCKET")
