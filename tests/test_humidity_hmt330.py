"""Vaisala HMT330-class probe: simulator on a pseudo-terminal, its driver over the real serial transport."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import AsyncIterator

import pytest
import serial_asyncio_fast

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError, InstrumentError
from daq.transports import open_transport
from drivers.hmt330 import Hmt330
from drivers.registry import DRIVERS, build_driver, check_drivers
from simulators.bench_server import RunningBench, start_bench
from simulators.hmt330 import Hmt330Probe
from simulators.world import SimulatedWorld

BENCH = """
[bench]
name = "humidity test bench"
seed = 9

[instruments.probe]
driver = "vaisala_hmt330"
resource = "ASRL/dev/ttyUSB0::INSTR"
serial = "K1234567"

[instruments.probe.simulation]
initial_rh = 40.0
initial_temperature = 23.0
time_constant_rh = 600.0
time_constant_t = 900.0
stability_rh = 0.05
stability_t = 0.01
noise_rh = 0.03
noise_t = 0.01
offset_rh = 0.8
gain_rh = 0.01
offset_t = 0.15
"""


@pytest.fixture
async def sim() -> AsyncIterator[RunningBench]:
    running = await start_bench(parse_bench(BENCH, source="humidity.toml"), VirtualClock())
    yield running
    await running.close()


def probe_model(sim: RunningBench) -> Hmt330Probe:
    model = sim.world["probe"]
    assert isinstance(model, Hmt330Probe)
    return model


async def _probe(sim: RunningBench) -> Hmt330:
    probe = Hmt330("probe", open_transport(sim.resources["probe"], timeout=0.5), "K1234567")
    await probe.connect()
    return probe


async def test_driver_commands_and_replies(sim: RunningBench) -> None:
    assert re.fullmatch(r"ASRL/dev/pts/\d+::INSTR", sim.resources["probe"])
    probe = await _probe(sim)
    assert probe.idn == "VAISALA,HMT330,K1234567,5.16"
    rh, t = await probe.read()
    assert [c for _, c in sim.servers["probe"].commands] == ["VERS", "SNUM", "SMODE POLL", "SEND"]
    assert probe_model(sim).mode == "POLL"
    raw = await probe.transport.query("SEND")
    assert re.fullmatch(r"RH= \d\d\.\d %RH  T= \d\d\.\d 'C", raw)  # RH= 45.3 %RH  T= 23.1 'C
    assert rh == pytest.approx(40.0 + 0.8 + 0.4, abs=0.3)
    assert t == pytest.approx(23.15, abs=0.1)
    assert await probe.transport.query("SMODE") == "Output mode   : POLL"
    assert await probe.transport.query("FROB") == "Unknown command"
    await probe.close()


async def test_info_lines_come_back_on_the_wire(sim: RunningBench) -> None:
    port = sim.resources["probe"][len("ASRL"):-len("::INSTR")]
    reader, writer = await serial_asyncio_fast.open_serial_connection(url=port, baudrate=4800)
    writer.write(b"?\r\n")
    lines = [(await reader.readuntil(b"\n")).decode().rstrip("\r\n") for _ in range(6)]
    writer.close()
    assert lines[0] == "HMT330 / 5.16"
    assert lines[1] == "Serial number : K1234567"
    assert lines[3] == "Output mode   : STOP"


async def test_wrong_serial_or_reply_is_refused(sim: RunningBench) -> None:
    wrong = Hmt330("probe", open_transport(sim.resources["probe"], timeout=0.5), "K0000000")
    with pytest.raises(InstrumentError, match="'K1234567' from SNUM does not match"):
        await wrong.connect()
    await wrong.close()
    sim.faults("probe").arm("garbage", "SEND")
    probe = await _probe(sim)
    with pytest.raises(InstrumentError, match="unreadable reply"):
        await probe.read()
    await probe.close()


async def test_chamber_approaches_its_setpoints_first_order(sim: RunningBench) -> None:
    clock = sim.clock
    model = probe_model(sim)
    probe = await _probe(sim)
    model.set_chamber(rh=80.0, temperature=30.0)
    await clock.sleep(600.0)  # one RH time constant
    rh = model.humidity_at(clock.now())
    assert rh == pytest.approx(80.0 - 40.0 * math.exp(-1.0), abs=0.2)
    assert model.temperature_at(clock.now()) == pytest.approx(30.0 - 7.0 * math.exp(-600.0 / 900.0), abs=0.05)
    await clock.sleep(6000.0)
    readings = []
    for _ in range(30):
        await clock.sleep(10.0)
        readings.append(await probe.read())
    mean_rh = statistics.fmean(r for r, _ in readings)
    mean_t = statistics.fmean(t for _, t in readings)
    assert mean_rh == pytest.approx(80.0 + model.true_error_rh(80.0), abs=0.1)  # 80 + 0.8 + 0.8
    assert mean_t == pytest.approx(30.0 + 0.15, abs=0.05)
    assert sim.world.terminal_at("probe.humidity", clock.now()) == pytest.approx(80.0, abs=0.2)
    await probe.close()


async def test_registry_knows_the_hmt330() -> None:
    bench = parse_bench(BENCH, source="humidity.toml")
    check_drivers(bench)
    assert DRIVERS["vaisala_hmt330"] is Hmt330
    assert isinstance(build_driver(bench.instruments["probe"]), Hmt330)


@pytest.mark.parametrize(
    ("change", "field", "mentions"),
    [
        (("time_constant_rh = 600.0", "time_constant_rh = 0"), "instruments.probe.simulation.time_constant_rh",
         "seconds"),
        (("noise_t = 0.01", "noise_t = -0.01"), "instruments.probe.simulation.noise_t", ">= 0"),
        (("offset_t = 0.15", 'offset_t = "warm"'), "instruments.probe.simulation.offset_t", "expected a number"),
        (("gain_rh = 0.01", "gain = 0.01"), "instruments.probe.simulation.gain", "gain_rh"),
    ],
)
def test_bad_simulation_parameters_name_the_field(change: tuple[str, str], field: str, mentions: str) -> None:
    text = BENCH.replace(*change)
    assert text != BENCH
    with pytest.raises(ConfigError) as info:
        SimulatedWorld(parse_bench(text, source="humidity.toml"), VirtualClock())
    assert info.value.field == field
    assert mentions in info.value.problem + info.value.fix
