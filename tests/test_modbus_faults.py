"""Faults injected by the Modbus simulator, over real Modbus TCP and RTU (pty pair).

Every fault kind of `simulators.faults`, on both transports: the Eurotherm driver meets a clear
error of the right kind (or, for `stuck`, a visibly repeated reading) and the next call succeeds.
Model time is virtual; the client timeout is real wall time, kept short (0.2 s).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import TransportTimeout
from daq.transports.modbus import ModbusExceptionResponse, ModbusTransport
from drivers.eurotherm3200 import Eurotherm3200 as Driver
from drivers.modbus_map import build_modbus_driver
from simulators.bench_server import start_bench
from simulators.eurotherm3200 import Eurotherm3200 as Model
from simulators.modbus_server import ModbusSimServer, modbus_command

TIMEOUT = 0.2
PV_FLOAT = modbus_command(3, 0x8000 + 2 * 1)  # "3:32770": the driver's PV read


@dataclass
class Served:
    protocol: str
    model: Model
    server: ModbusSimServer
    clock: VirtualClock
    transport: ModbusTransport
    driver: Driver


@pytest.fixture(params=["tcp", "rtu"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    clock = VirtualClock()
    model = Model(clock, ambient=20.0, time_constant=60.0)
    server = ModbusSimServer(model, unit=1)
    await (server.start_tcp() if request.param == "tcp" else server.start_rtu())
    transport = ModbusTransport(server.resource, timeout=TIMEOUT)
    driver = Driver("oven", transport)
    try:
        await driver.set_setpoint(100.0)
        await clock.sleep(30.0)
        yield Served(request.param, model, server, clock, transport, driver)
    finally:
        await driver.close()
        await server.close()


async def _fails_then_recovers(s: Served, error: type[Exception], match: str) -> None:
    """The armed read fails with `error` within about the timeout; the next read is the live PV."""
    started = time.perf_counter()
    with pytest.raises(error, match=match):
        await s.driver.read_pv()
    assert time.perf_counter() - started < TIMEOUT + 1.0
    assert await s.driver.read_pv() == pytest.approx(s.model.pv, abs=1e-4)


@pytest.mark.parametrize("kind", ["drop", "delay", "garbage", "truncate"])
async def test_lost_or_unreadable_reply_is_a_timeout_then_recovered(served: Served, kind: str) -> None:
    s = served
    fault = s.model.faults.arm(kind, PV_FLOAT, delay=0.6)
    await _fails_then_recovers(s, TransportTimeout, f"no response to read of 2 holding register.* within {TIMEOUT} s")
    assert s.model.faults.fired(kind) == 1 and fault not in s.model.faults.pending
    assert s.transport.reconnects == 1  # the client was dropped and a fresh one opened
    assert await s.driver.setpoint() == pytest.approx(100.0)  # nothing else was disturbed
    assert s.model.power_cycles == 0


async def test_delayed_reply_never_answers_the_next_request(served: Served) -> None:
    s = served
    s.model.faults.arm("delay", PV_FLOAT, delay=0.4)
    with pytest.raises(TransportTimeout):
        await s.driver.read_pv()
    # the late PV reply (two registers, like a setpoint read) must not be taken for this one
    await s.driver.set_setpoint(42.0)
    assert await s.driver.setpoint() == pytest.approx(42.0)
    await asyncio.sleep(0.3)  # past the delay: the late reply is either discarded (RTU) or on a dead connection
    assert await s.driver.setpoint() == pytest.approx(42.0)
    assert await s.driver.read_pv() == pytest.approx(s.model.pv, abs=1e-4)


async def test_error_is_a_modbus_exception_and_the_connection_survives(served: Served) -> None:
    s = served
    s.model.faults.arm("error", PV_FLOAT)  # the SCPI default code (-350) is no Modbus code: 4
    with pytest.raises(ModbusExceptionResponse, match="Modbus exception 4 \\(device failure\\)") as info:
        await s.driver.read_pv()
    assert info.value.code == 4
    s.model.faults.arm("error", "16", code=6)  # any write: device busy
    with pytest.raises(ModbusExceptionResponse, match="Modbus exception 6 \\(device busy\\)"):
        await s.driver.set_setpoint(55.0)
    assert s.model.target_setpoint == 100.0  # the refused write did not happen
    await s.driver.set_setpoint(55.0)
    assert s.model.target_setpoint == 55.0
    assert await s.driver.read_pv() == pytest.approx(s.model.pv, abs=1e-4)
    assert s.transport.reconnects == 0
    assert s.model.faults.fired("error") == 2


async def test_stuck_reading_repeats_the_last_value(served: Served) -> None:
    s = served
    before = await s.driver.read_pv()
    s.model.faults.arm("stuck", PV_FLOAT, count=3)
    stuck = []
    for _ in range(3):
        await s.clock.sleep(10.0)  # the block keeps heating
        stuck.append(await s.driver.read_pv())
    assert stuck == [before] * 3  # visibly stuck: the very same float
    assert s.model.pv > before + 5.0
    await s.clock.sleep(10.0)
    assert await s.driver.read_pv() == pytest.approx(s.model.pv, abs=1e-4)  # unstuck, live again
    assert await s.driver.setpoint() == pytest.approx(100.0)  # other registers were never stuck
    assert s.model.faults.fired("stuck") == 3


async def test_stuck_scaled_register_repeats_too(served: Served) -> None:
    s = served
    first = await s.transport.read_registers(1)
    s.model.faults.arm("stuck", "3:1")
    await s.clock.sleep(20.0)
    assert await s.transport.read_registers(1) == first
    assert await s.transport.read_registers(1) != first


async def test_power_cycle_loses_the_request_and_resets_the_controller(served: Served) -> None:
    s = served
    assert s.model.pv > 30.0
    s.model.faults.arm("power_cycle", PV_FLOAT)
    await _fails_then_recovers(s, TransportTimeout, "no response")
    assert s.model.power_cycles == 1
    assert await s.driver.setpoint() == pytest.approx(20.0)  # the power-on setpoint (ambient)
    assert await s.driver.read_pv() == pytest.approx(20.0)  # the block at ambient
    await s.driver.set_setpoint(100.0)  # the runner repeats the point: it works again
    await s.clock.sleep(60.0)
    assert await s.driver.read_pv() == pytest.approx(100.0 - 80.0 * 0.3679, abs=0.05)


async def test_power_cycle_closes_every_tcp_connection() -> None:
    clock = VirtualClock()
    model = Model(clock, power_on_setpoint=25.0)
    server = await ModbusSimServer(model).start_tcp()
    one = Driver("oven", ModbusTransport(server.resource, timeout=TIMEOUT))
    two = Driver("oven", ModbusTransport(server.resource, timeout=TIMEOUT))
    try:
        await one.set_setpoint(80.0)
        assert await two.setpoint() == pytest.approx(80.0)
        model.faults.arm("power_cycle", "3")
        with pytest.raises(TransportTimeout):
            await one.read_pv()
        # the other connection was closed under it while idle: the transport sees it closed
        # and opens a fresh one before its next request, which succeeds
        assert await two.setpoint() == pytest.approx(25.0)
        assert await one.setpoint() == pytest.approx(25.0)
    finally:
        await one.close()
        await two.close()
        await server.close()


async def test_after_and_count_and_command_matching() -> None:
    clock = VirtualClock()
    model = Model(clock)
    server = await ModbusSimServer(model).start_tcp()
    transport = ModbusTransport(server.resource, timeout=TIMEOUT)
    driver = Driver("oven", transport)
    try:
        model.faults.arm("error", PV_FLOAT, after=2, count=2)
        assert await driver.setpoint() == 20.0  # 3:32772 is not the PV: neither counted nor hit
        await driver.read_pv()
        await driver.read_pv()
        for _ in range(2):
            with pytest.raises(ModbusExceptionResponse):
                await driver.read_pv()
        await driver.read_pv()
        assert model.faults.fired() == 2
        assert model.faults.log == [("error", PV_FLOAT)] * 2
        model.faults.arm("error")  # no command: the next request whatever it is
        with pytest.raises(ModbusExceptionResponse):
            await driver.output()
        assert model.faults.log[-1] == ("error", "3:32774")
    finally:
        await driver.close()
        await server.close()


async def test_fault_hits_only_its_unit_on_a_shared_rtu_line() -> None:
    clock = VirtualClock()
    first, second = Model(clock), Model(clock, ambient=22.0)
    server = await ModbusSimServer(first, unit=1, others={2: second}).start_rtu()
    device = server.resource.split("::")[1]
    one = Driver("a", ModbusTransport(f"MODBUS-RTU::{device}::1", timeout=TIMEOUT))
    two = Driver("b", ModbusTransport(f"MODBUS-RTU::{device}::2", timeout=TIMEOUT))
    try:
        second.faults.arm("drop", "3")
        assert await one.read_pv() == pytest.approx(20.0)
        with pytest.raises(TransportTimeout, match="::2: no response"):
            await two.read_pv()
        assert await one.read_pv() == pytest.approx(20.0)
        assert await two.read_pv() == pytest.approx(22.0)
        assert first.faults.fired() == 0
    finally:
        await one.close()
        await two.close()
        await server.close()


FAULT_BENCH = """
[bench]
name = "oven faults"

[instruments.oven]
driver = "eurotherm3200"
resource = "MODBUS-TCP::127.0.0.1::0::1"
timeout = 0.2

[instruments.oven.simulation]
faults = [{ kind = "error", command = "3:32770", after = 1, code = 4 }]

[instruments.furnace]
driver = "eurotherm3200"
resource = "MODBUS-RTU::/dev/ttyUSB0::1"
timeout = 0.2
"""


async def test_bench_faults_armed_from_the_file_and_by_name() -> None:
    clock = VirtualClock()
    bench = parse_bench(FAULT_BENCH, source="oven.toml")
    async with await start_bench(bench, clock) as running:
        oven = build_modbus_driver(running.bench.instruments["oven"], bench.source)
        furnace = build_modbus_driver(running.bench.instruments["furnace"], bench.source)
        try:
            assert await oven.read_value() == pytest.approx(20.0)
            with pytest.raises(ModbusExceptionResponse):
                await oven.read_value()  # the bench file's fault, after one PV read
            assert await oven.read_value() == pytest.approx(20.0)
            running.faults("furnace").arm("truncate", "3")
            with pytest.raises(TransportTimeout):
                await furnace.read_value()
            assert await furnace.read_value() == pytest.approx(20.0)
            assert running.faults("oven").fired("error") == 1
            assert running.faults("furnace").fired("truncate") == 1
        finally:
            await oven.close()
            await furnace.close()
