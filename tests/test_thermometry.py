"""Thermometry bench: bath and readout simulators over pseudo-terminals, their drivers, on virtual time.

The drivers go through the real serial transport (pyserial-asyncio-fast on a pty); the tests
compare what they read with the simulators' ground truth (bath well temperatures, probe
errors) that a real bench never reveals.
"""

from __future__ import annotations

import asyncio
import math
import re
import statistics
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daq.bench import load_bench, parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError, InstrumentError
from daq.stability import StabilityCriteria, wait_until_stable
from daq.transports import open_transport
from drivers.bath import TemperatureBath as BathDriver
from drivers.capabilities import Controller, Thermometer
from drivers.fluke1529 import Readout1502A as Driver1502A
from drivers.fluke1529 import Readout1529
from drivers.registry import DRIVERS, build_driver, check_drivers
from simulators.bench_server import RunningBench, start_bench
from simulators.temperature_bath import TemperatureBath
from simulators.thermometer_readout import ThermometerReadout
from simulators.world import SimulatedWorld

BENCH_FILE = Path(__file__).resolve().parents[1] / "runner" / "data" / "thermometry-bench.toml"

BENCH = """
[bench]
name = "thermometry test bench"
seed = 5

[instruments.bath]
driver = "fluke_bath"
resource = "ASRL/dev/ttyUSB0::INSTR"
serial = "B-0001"

[instruments.bath.simulation]
wells = 4
time_constant = 300.0
overshoot = 0.1
stability = 0.002
control_noise = 0.0005
ambient = 23.0
dwell = 120.0
stability_limit = 0.02
gradients = [0.0, 1e-4, -2e-4, 5e-4]
offsets = [0.0, 0.001, -0.002, 0.0005]

[instruments.readout]
driver = "fluke1529"
resource = "ASRL/dev/ttyUSB1::INSTR"
serial = "R-0001"

[instruments.readout.simulation]
noise = 0.0003
measurement_time = 1.0
channels = [
  { channel = 1, offset = 0.0, gain = 0.0, noise = 0.0001 },
  { channel = 2, offset = 0.025, gain = 1e-4 },
  { channel = 3, offset = -0.04, gain = -2e-4 },
  { channel = 4, offset = 0.0, gain = 0.0, noise = 0.0001 },
]

[instruments.hart]
driver = "hart1502a"
resource = "ASRL/dev/ttyUSB2::INSTR"
serial = "H-0001"

[instruments.hart.simulation]
noise = 0.0002
channels = [{ channel = 1, offset = 0.005 }]

[[wiring]]
from = "bath.well1"
to = "readout.ch1"
[[wiring]]
from = "bath.well2"
to = "readout.ch2"
[[wiring]]
from = "bath.well3"
to = "readout.ch3"
[[wiring]]
from = "bath.well4"
to = "readout.ch4"
[[wiring]]
from = "bath.well1"
to = "hart.ch1"
"""

GRADIENTS = (0.0, 1e-4, -2e-4, 5e-4)
OFFSETS = (0.0, 0.001, -0.002, 0.0005)


@pytest.fixture
async def sim() -> AsyncIterator[RunningBench]:
    running = await start_bench(parse_bench(BENCH, source="thermo.toml"), VirtualClock())
    yield running
    await running.close()


def bath_model(sim: RunningBench) -> TemperatureBath:
    model = sim.world["bath"]
    assert isinstance(model, TemperatureBath)
    return model


def readout_model(sim: RunningBench, name: str = "readout") -> ThermometerReadout:
    model = sim.world[name]
    assert isinstance(model, ThermometerReadout)
    return model


async def _log(sim: RunningBench, name: str, sync: str = "*OPC?", start: int = 0) -> list[str]:
    """Commands the simulator received; a round trip of `sync` first makes sure writes have landed."""
    transport = open_transport(sim.resources[name])
    try:
        await transport.query(sync)
    finally:
        await transport.close()
    log = [c for _, c in sim.servers[name].commands if c != sync]
    return log[start:]


async def _bath(sim: RunningBench) -> BathDriver:
    bath = BathDriver("bath", open_transport(sim.resources["bath"]), "B-0001")
    await bath.connect()
    return bath


async def _readout(sim: RunningBench) -> Readout1529:
    readout = Readout1529("readout", open_transport(sim.resources["readout"]), "R-0001")
    await readout.connect()
    return readout


# --- protocol -------------------------------------------------------------------------------------


async def test_serial_resources_are_pseudo_terminals(sim: RunningBench) -> None:
    for name in ("bath", "readout", "hart"):
        assert re.fullmatch(r"ASRL/dev/pts/\d+::INSTR", sim.resources[name])


async def test_bath_driver_commands_and_replies(sim: RunningBench) -> None:
    bath = await _bath(sim)
    assert isinstance(bath, Controller)
    assert bath.idn == "FLUKE,7341,B-0001,SIM1.0"
    await bath.set_setpoint(30.0)
    await bath.set_stability_limit(0.05)
    assert await bath.setpoint() == 30.0
    value = await bath.read_value()
    assert await bath.is_stable() is False
    await bath.safe_state()
    assert await _log(sim, "bath") == [
        "*IDN?", "*CLS", "SOUR:SPO 30", "SYST:ERR?", "OUTP:STAT 1", "SOUR:STAB:LIM 0.05", "SYST:ERR?",
        "SOUR:SPO?", "SOUR:SENS:DATA?", "SOUR:STAB:TEST?", "OUTP:STAT 0", "SOUR:SPO 23",
        "OUTP:STAT?"]
    assert value == pytest.approx(23.0, abs=0.01)  # just stepped: still at ambient
    raw = await bath.transport.query("SOUR:SENS:DATA?")
    assert re.fullmatch(r"-?\d+\.\d{3}", raw)
    assert await bath.transport.query("SOUR:SPO?") == "23.000"
    model = bath_model(sim)
    assert not model.heating and model.setpoint == 23.0 and model.stability_limit == 0.05
    await bath.close()


async def test_bath_refuses_a_setpoint_beyond_its_range(sim: RunningBench) -> None:
    bath = await _bath(sim)
    bath.max_setpoint = 500.0
    with pytest.raises(InstrumentError, match="Data out of range"):
        await bath.set_setpoint(400.0)  # beyond the simulated bath's 150 C: the queue says so
    assert bath_model(sim).setpoint == 23.0
    await bath.close()


async def test_readout_driver_commands_and_replies(sim: RunningBench) -> None:
    readout = await _readout(sim)
    assert isinstance(readout, Thermometer)
    assert readout.idn == "HART,1529,R-0001,SIM1.0"
    await readout.read(2)
    await readout.measure(3)
    assert await _log(sim, "readout") == ["*IDN?", "*CLS", "UNIT:TEMP C", "SYST:ERR?", "FETC? 2", "MEAS? 3"]
    raw = await readout.transport.query("FETC? 1")
    assert re.fullmatch(r"\d+\.\d{4}", raw)  # 1529 style: 25.0312
    await readout.transport.write("UNIT:TEMP K")
    assert float(await readout.transport.query("FETC? 4")) == pytest.approx(296.15, abs=0.01)
    await readout.transport.write("FETC? 9")
    assert (await readout.errors())[0].startswith("-222,")
    with pytest.raises(InstrumentError, match="no channel 5"):
        await readout.read(5)
    await readout.close()


async def test_hart_1502a_dialect(sim: RunningBench) -> None:
    hart = Driver1502A("hart", open_transport(sim.resources["hart"]), "H-0001")
    assert isinstance(hart, Thermometer)
    await hart.connect()
    value = await hart.read()
    raw = await hart.transport.query("t")
    assert re.fullmatch(r"t: +\d+\.\d{4} C", raw)  # t:  25.0012 C
    assert await _log(sim, "hart", sync="sa") == ["*IDN?", "u=c", "u", "t", "t"]
    model = readout_model(sim, "hart")
    assert value == pytest.approx(23.0 + 0.005, abs=6 * 0.0002 + 0.01)  # ambient bath, +5 mK probe
    await hart.transport.write("u=f")
    assert (await hart.transport.query("t")).endswith(" F")
    with pytest.raises(InstrumentError, match="expected C"):
        await hart.read()
    assert model.unit == "F"
    await hart.close()


async def test_drivers_come_from_the_registry() -> None:
    bench = load_bench(BENCH_FILE)
    check_drivers(bench)
    assert {"fluke_bath", "fluke1529", "hart1502a"} <= set(DRIVERS)
    assert isinstance(build_driver(bench.instruments["bath"]), BathDriver)
    assert isinstance(build_driver(bench.instruments["uut_b"]), Readout1529)
    world = SimulatedWorld(bench, VirtualClock())
    assert world["bath"].output_terminals == tuple(f"well{k}" for k in range(1, 10))


# --- bath physics ----------------------------------------------------------------------------------


async def test_bath_overshoots_then_settles_and_flags_stable_only_after(sim: RunningBench) -> None:
    clock = sim.clock
    model = bath_model(sim)
    bath = await _bath(sim)
    await bath.set_setpoint(33.0)
    trace: list[tuple[float, float, bool | None]] = []
    for _ in range(300):  # 3000 s, every 10 s
        await clock.sleep(10.0)
        trace.append((clock.now(), await bath.read_value(), await bath.is_stable()))
    peak_t, peak, _ = max(trace, key=lambda s: s[1])
    assert peak == pytest.approx(34.0, abs=0.05)  # 10 % of a 10 C step
    assert 500 < peak_t < 900
    crossing = next(t for t, v, _ in trace if v > 33.0)
    assert crossing < peak_t
    first_stable = next(t for t, _, flag in trace if flag)
    assert first_stable > peak_t
    # The flag means what the instrument says: the control stayed inside the limit for the whole dwell.
    for t, _, flag in trace:
        inside = all(abs(model.control_at(t - model.dwell * i / 240) - 33.0) <= model.stability_limit
                     for i in range(241))
        if flag:
            assert inside, t
    # Once the transient itself is well inside the limit, the flag stays 1.
    decayed = next(t for t, _, _ in trace if model.transient_at(t) < model.stability_limit - 5 * model.stability)
    assert all(flag for t, _, flag in trace if t >= decayed + model.dwell)
    assert all(not flag for t, _, flag in trace if t <= crossing + model.dwell)
    # Only a band: with a short dwell the flag can say 1 during a slow swing through the setpoint
    # while the transient is not yet gone, which is why procedures require the flag AND statistics.
    assert model.transient_at(first_stable - model.dwell) < 2 * model.stability_limit
    settled = [v for t, v, _ in trace if t > 2500]
    assert statistics.fmean(settled) == pytest.approx(33.0, abs=0.003)
    # Short-term stability: the fluctuation and display noise are there, at their configured size.
    assert 0.001 < statistics.stdev(settled) < 0.004
    await bath.close()


async def test_second_setpoint_starts_from_where_the_fluid_is(sim: RunningBench) -> None:
    model = bath_model(sim)
    model.set_setpoint(50.0)
    await sim.clock.sleep(200.0)
    before = model.control_mean_at(sim.clock.now())
    model.set_setpoint(40.0)
    assert model.control_mean_at(sim.clock.now()) == pytest.approx(before, abs=1e-12)
    model.set_heating(False)  # heating off: it drifts back to ambient
    await sim.clock.sleep(5000.0)
    assert model.control_mean_at(sim.clock.now()) == pytest.approx(23.0, abs=0.01)


def test_gradients_make_the_wells_differ_as_configured() -> None:
    world = SimulatedWorld(parse_bench(BENCH, source="thermo.toml"), VirtualClock())
    model = world["bath"]
    assert isinstance(model, TemperatureBath)
    model.set_setpoint(80.0)
    for t in (100.0, 2000.0, 5000.0):
        control = model.control_at(t)
        for k in range(4):
            expected = GRADIENTS[k] * (control - 23.0) + OFFSETS[k]
            assert model.well_at(k + 1, t) - control == pytest.approx(expected, abs=1e-12)
    # Settled at 80 C: well 4 is 5e-4 * 57 + 0.5 mK = 29 mK above the control, well 3 13.4 mK below.
    assert model.well_at(4, 5000.0) - model.well_at(3, 5000.0) == pytest.approx(
        (5e-4 + 2e-4) * (model.control_at(5000.0) - 23.0) + 0.0025, abs=1e-12)


def test_linear_gradient_when_only_the_farthest_well_is_given() -> None:
    text = BENCH.replace("gradients = [0.0, 1e-4, -2e-4, 5e-4]", "gradient = 3e-4")
    model = SimulatedWorld(parse_bench(text), VirtualClock())["bath"]
    assert isinstance(model, TemperatureBath)
    assert model.gradients == pytest.approx([0.0, 1e-4, 2e-4, 3e-4])


# --- readout through the wiring ----------------------------------------------------------------


async def test_readout_reads_the_bath_wells_with_each_probe_error(sim: RunningBench) -> None:
    clock = sim.clock
    bath = await _bath(sim)
    readout = await _readout(sim)
    model = readout_model(sim)
    await bath.set_setpoint(60.0)
    await clock.sleep(4000.0)
    residuals: dict[int, list[float]] = {ch: [] for ch in readout.channels}
    for _ in range(40):
        await clock.sleep(5.0)
        for ch in readout.channels:
            value = await readout.read(ch)
            truth = model.temperature_at(ch, clock.now())
            residuals[ch].append(value - truth - model.true_error(ch, truth))
    for ch, res in residuals.items():
        sigma = model.probes[ch].noise
        assert all(abs(r) < 5 * sigma + model.resolution for r in res), ch
        assert abs(statistics.fmean(res)) < 4 * sigma / math.sqrt(len(res)) + model.resolution, ch
    # The probe errors are real and far above the noise: 25 mK + 1e-4 * 60 C on channel 2.
    assert model.true_error(2, 60.0) == pytest.approx(0.031)
    # The wells the channels sit in differ: channel 4 (well 4) minus channel 1 (well 1), both exact probes.
    t = clock.now()
    a, b = await asyncio.gather(readout.read(1), readout.read(4))
    control = bath_model(sim).control_at(t)
    assert b - a == pytest.approx(5e-4 * (control - 23.0) + 0.0005, abs=6 * 0.0001 + 0.0002)
    await bath.close()
    await readout.close()


async def test_concurrent_channels_stay_paired_with_their_replies(sim: RunningBench) -> None:
    """gather() over every channel: each reply belongs to its own channel (the transport lock)."""
    clock = sim.clock
    readout = await _readout(sim)
    hart = Driver1502A("hart", open_transport(sim.resources["hart"]), "H-0001")
    await hart.connect()
    model = readout_model(sim)
    for _ in range(5):
        values = await asyncio.gather(*(readout.read(ch) for ch in (1, 2, 3, 4, 1, 3)), hart.read())
        t = clock.now()
        for ch, value in zip((1, 2, 3, 4, 1, 3), values, strict=False):
            truth = model.temperature_at(ch, t)
            assert value == pytest.approx(truth + model.true_error(ch, truth), abs=0.003), ch
    # MEAS? takes 1 s each: four channels of one readout in series, the other readout in parallel.
    t0 = clock.now()
    await asyncio.gather(*(readout.measure(ch) for ch in (1, 2, 3, 4)))
    assert clock.now() - t0 == pytest.approx(4.0)
    await readout.close()
    await hart.close()


# --- stability detection on the bath -------------------------------------------------------------


async def test_wait_until_stable_waits_for_the_overshoot_to_decay(sim: RunningBench) -> None:
    clock = sim.clock
    bath = await _bath(sim)
    model = bath_model(sim)
    await bath.set_setpoint(33.0)
    t0 = clock.now()

    async def sample() -> tuple[float, bool | None]:
        return await bath.read_value(), None

    criteria = StabilityCriteria(window=20, max_std=0.004, max_slope=2e-5, interval=10.0, timeout=6000.0,
                                 use_instrument_flag=False)
    record = await wait_until_stable(sample, criteria, clock, target=33.0)
    assert record.stable
    stable_at = record.ended_at
    # Peak of the overshoot near 680 s; the setpoint is first crossed near 390 s. Neither is "stable".
    assert stable_at - t0 > 900
    window_start = record.trace[-criteria.window][0]
    assert model.transient_at(window_start) < 0.02
    assert abs(record.final["mean"] - 33.0) < 0.01
    # With the instrument flag too, stability comes no earlier than the bath's own verdict.

    async def sample_with_flag() -> tuple[float, bool | None]:
        return await bath.read_value(), await bath.is_stable()

    await bath.set_setpoint(43.0)
    t1 = clock.now()
    flagged = await wait_until_stable(
        sample_with_flag, StabilityCriteria(window=20, max_std=0.004, max_slope=2e-5, interval=10.0,
                                            timeout=6000.0), clock, target=43.0)
    assert flagged.stable and flagged.trace[-1][2] is True
    assert flagged.ended_at - t1 > 900
    await bath.close()


async def test_a_statistical_window_without_slope_bound_is_fooled_near_the_peak(sim: RunningBench) -> None:
    """Why the slope criterion matters: a wide band and std alone accept the overshoot's crest."""
    clock = sim.clock
    bath = await _bath(sim)
    await bath.set_setpoint(33.0)

    async def sample() -> tuple[float, bool | None]:
        return await bath.read_value(), None

    loose = StabilityCriteria(window=5, max_std=0.05, interval=10.0, timeout=6000.0, use_instrument_flag=False)
    record = await wait_until_stable(sample, loose, clock)
    assert record.stable and record.final["mean"] > 33.5  # declared on the crest, 0.5 C off
    await bath.close()


# --- configuration errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "mentions"),
    [
        (("overshoot = 0.1", "overshoot = 1.5"), "instruments.bath.simulation.overshoot", "[0, 1)"),
        (("overshoot = 0.1", "overshoot = -0.1"), "instruments.bath.simulation.overshoot", ">= 0"),
        (("time_constant = 300.0", "time_constant = 0"), "instruments.bath.simulation.time_constant", "seconds"),
        (("stability = 0.002", 'stability = "good"'), "instruments.bath.simulation.stability", "expected a number"),
        (("wells = 4", "wells = 0"), "instruments.bath.simulation.wells", "wells = 8"),
        (("wells = 4", "wells = 2.5"), "instruments.bath.simulation.wells", "whole number"),
        (("gradients = [0.0, 1e-4, -2e-4, 5e-4]", "gradients = [0.0, 1e-4]"),
         "instruments.bath.simulation.gradients", "one per well"),
        (("offsets = [0.0, 0.001, -0.002, 0.0005]", 'offsets = [0.0, 0.001, "x", 0.0005]'),
         "instruments.bath.simulation.offsets[2]", "expected a number"),
        (("dwell = 120.0", "dwel = 120.0"), "instruments.bath.simulation.dwel", "dwell"),
        (("{ channel = 3,", "{ channel = 5,"), "instruments.readout.simulation.channels[2].channel", "1..4"),
        (("{ channel = 1, offset = 0.005 }", "{ channel = 2, offset = 0.005 }"),
         "instruments.hart.simulation.channels[0].channel", "1..1"),
        (("noise = 0.0003", "noise = -1"), "instruments.readout.simulation.noise", ">= 0"),
        (("{ channel = 2, offset = 0.025,", "{ channel = 2, ofset = 0.025,"),
         "instruments.readout.simulation.channels[1].ofset", "offset"),
        (('to = "readout.ch4"', 'to = "readout.ch5"'), "wiring[3].to", '"readout.ch4"'),
        (('from = "bath.well4"', 'from = "bath.well5"'), "wiring[3].from", '"bath.well4"'),
    ],
)
def test_bad_simulation_parameters_name_the_field(change: tuple[str, str], field: str, mentions: str) -> None:
    text = BENCH.replace(*change)
    assert text != BENCH
    with pytest.raises(ConfigError) as info:
        SimulatedWorld(parse_bench(text, source="thermo.toml"), VirtualClock())
    assert info.value.source == "thermo.toml"
    assert info.value.field == field
    assert mentions in info.value.problem + info.value.fix
