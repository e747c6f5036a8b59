"""Druck PACE-class pressure controller: simulator over TCP, its driver, on virtual time.

The driver goes through the real TCP transport; the tests compare what it sees with the
simulator's ground truth (the true pressure at the output port, the sensor's true error).
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator

import pytest

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError, InstrumentError, TransportError, TransportTimeout
from daq.transports import open_transport
from drivers.capabilities import Controller
from drivers.pace import PaceController as PaceDriver
from drivers.registry import DRIVERS, build_driver, check_drivers
from simulators.bench_server import RunningBench, start_bench
from simulators.pace_controller import PaceController
from simulators.world import SimulatedWorld

BENCH = """
[bench]
name = "pressure test bench"
seed = 3

[instruments.pace]
driver = "druck_pace"
resource = "TCPIP::127.0.0.1::0::SOCKET"
serial = "P-0001"
timeout = 0.5

# The reference's certificate: correction = true - indicated, bar, at k = 2.
[instruments.pace.certificate.pressure]
k = 2.0
points = [{ at = 0.0, correction = -0.0004, U = 0.0006 }, { at = 10.0, correction = -0.0009, U = 0.0008 }]

[instruments.pace.simulation]
full_scale = 20.0
slew_rate = 0.5
fine_band = 0.05
time_constant = 2.0
stability = 0.0001
noise = 0.00002
in_limits = 0.002
in_limits_time = 10.0
vent_rate = 1.0
"""


@pytest.fixture
async def sim() -> AsyncIterator[RunningBench]:
    running = await start_bench(parse_bench(BENCH, source="pressure.toml"), VirtualClock())
    yield running
    await running.close()


def model(sim: RunningBench) -> PaceController:
    pace = sim.world["pace"]
    assert isinstance(pace, PaceController)
    return pace


async def _pace(sim: RunningBench) -> PaceDriver:
    pace = PaceDriver("pace", open_transport(sim.resources["pace"], timeout=0.5), "P-0001")
    await pace.connect()
    return pace


async def _log(sim: RunningBench, start: int = 0) -> list[str]:
    transport = open_transport(sim.resources["pace"])
    try:
        await transport.query("*OPC?")
    finally:
        await transport.close()
    return [c for _, c in sim.servers["pace"].commands if c != "*OPC?"][start:]


async def test_driver_commands_and_echoed_replies(sim: RunningBench) -> None:
    pace = await _pace(sim)
    assert isinstance(pace, Controller)
    assert pace.idn == "GE Druck,PACE5000,P-0001,SIM1.0"
    await pace.set_in_limits(0.002, 10.0)
    await pace.set_setpoint(5.0)
    assert await pace.setpoint() == 5.0
    await pace.read_value()
    assert await pace.is_stable() is False
    await pace.safe_state()
    assert await _log(sim) == [
        "*IDN?", "*CLS", ":UNIT:PRES BAR", ":SYST:ERR?",
        ":SOUR:PRES:INL 0.002", ":SYST:ERR?", ":SOUR:PRES:INL:TIME 10", ":SYST:ERR?",
        ":SOUR:PRES 5", ":SYST:ERR?", ":OUTP:STAT 1", ":SOUR:PRES?", ":SENS:PRES?", ":SENS:PRES:INL?",
        ":OUTP:STAT 0", ":SOUR:PRES:LEV:IMM:AMPL:VENT 1", ":OUTP:STAT?", ":SOUR:PRES:LEV:IMM:AMPL:VENT?",
        ":SYST:ERR?"]
    query = pace.transport.query
    assert re.fullmatch(r":SENS:PRES -?\d+\.\d{5}", await query(":SENS:PRES?"))
    assert re.fullmatch(r":SENS:PRES:INL -?\d+\.\d{5}, 0", await query(":SENS:PRES:INL?"))
    assert await query(":SOUR:PRES?") == ":SOUR:PRES 5.00000"
    assert await query(":SOUR:PRES:INL?") == ":SOUR:PRES:INL 0.002"
    assert await query(":SOUR:PRES:INL:TIME?") == ":SOUR:PRES:INL:TIME 10"
    assert await query(":OUTP:STAT?") == ":OUTP:STAT 0"
    assert await query(":UNIT:PRES?") == ":UNIT:PRES BAR"
    assert await query(":SYST:ERR?") == ':SYST:ERR 0,"No error"'
    # Long forms and no leading colon are the same commands.
    assert await query("SOURce:PRESsure:LEVel:IMMediate:AMPLitude?") == ":SOUR:PRES 5.00000"
    await pace.transport.write(":UNIT:PRES MBAR")
    assert await query(":SOUR:PRES?") == ":SOUR:PRES 5000.00"
    await pace.close()


async def test_errors_go_to_the_queue_and_the_driver_reports_them(sim: RunningBench) -> None:
    pace = await _pace(sim)
    pace.max_setpoint = 100.0
    with pytest.raises(InstrumentError, match="-222"):
        await pace.set_setpoint(50.0)  # beyond the simulated 20 bar module
    assert model(sim).setpoint == 0.0
    await pace.transport.write(":SOUR:PRES:BOGUS 1")
    await pace.transport.write(":UNIT:PRES FURLONG")
    assert await pace.errors() == ['-113,"Undefined header"', '-224,"Illegal parameter value;unit \'FURLONG\': '
                                   'use BAR, MBAR, HPA, KPA, MPA, PA, PSI"']
    with pytest.raises(InstrumentError, match="outside"):
        await pace.set_setpoint(500.0)  # the driver's own limit: nothing sent
    with pytest.raises(InstrumentError, match="unknown pressure unit"):
        await pace.set_unit("furlong")
    await pace.close()


async def test_slew_then_fine_control_then_in_limits_after_the_dwell(sim: RunningBench) -> None:
    clock = sim.clock
    pace = await _pace(sim)
    truth = model(sim)
    await pace.set_in_limits(0.002, 10.0)
    t0 = clock.now()
    await pace.set_setpoint(10.0)
    trace: list[tuple[float, float, bool]] = []
    for _ in range(80):  # 40 s, every 0.5 s
        await clock.sleep(0.5)
        value, flag = await pace.in_limits()
        trace.append((clock.now() - t0, value, flag))
    # Linear slew at 0.5 bar/s: 5 bar after 10 s, 9 bar after 18 s.
    at = {round(t, 1): v for t, v, _ in trace}
    assert at[10.0] == pytest.approx(5.0, abs=0.002)
    assert at[18.0] == pytest.approx(9.0, abs=0.002)
    # Fine control from 19.9 s (0.05 bar short): exponential with tau = 2 s.
    assert at[22.0] == pytest.approx(10.0 - 0.05 * math.exp(-(22.0 - 19.9) / 2.0), abs=0.001)
    # In limits (0.002 bar) from ~19.9 + 2 ln(25) = 26.3 s; the flag waits the 10 s dwell on top.
    first_flag = next(t for t, _, flag in trace if flag)
    assert 36.0 <= first_flag <= 37.0
    assert all(flag for t, _, flag in trace if t >= first_flag)
    # The loop holds its sensor at the setpoint; the true pressure is off by the sensor's error.
    assert trace[-1][1] == pytest.approx(10.0, abs=0.0008)
    settled = truth.mean_pressure_at(clock.now())
    assert settled == pytest.approx(10.0 - truth.true_error(settled), abs=1e-5)
    assert truth.true_error(settled) == pytest.approx(0.0009, abs=4 * 0.0004)  # the certificate's -correction
    assert truth.controlled_pressure(10.0) + truth.true_error(truth.controlled_pressure(10.0)) == pytest.approx(10.0)
    # A new setpoint clears the flag at once.
    await pace.set_setpoint(12.0)
    assert await pace.is_stable() is False
    await pace.close()


async def test_safe_state_vents_to_atmosphere(sim: RunningBench) -> None:
    clock = sim.clock
    pace = await _pace(sim)
    truth = model(sim)
    await pace.set_setpoint(8.0)
    await clock.sleep(40.0)
    assert truth.pressure_at(clock.now()) == pytest.approx(8.0, abs=0.01)
    await pace.safe_state()
    assert truth.mode == "vent" and truth.vents == 1
    assert await pace.vent_status() == 1  # venting
    await clock.sleep(4.0)
    assert truth.pressure_at(clock.now()) == pytest.approx(4.0, abs=0.01)  # 1 bar/s
    await clock.sleep(10.0)
    assert abs(truth.pressure_at(clock.now())) < 0.005
    assert await pace.vent_status() == 2  # complete
    assert abs(await pace.read_value()) < 0.01
    assert not await pace.output_on()
    # Output on again closes the vent and controls back to the setpoint.
    await pace.transport.write(":OUTP:STAT 1")
    await clock.sleep(30.0)
    assert await pace.read_value() == pytest.approx(8.0, abs=0.001)
    await pace.close()


async def test_output_off_holds_the_pressure(sim: RunningBench) -> None:
    clock = sim.clock
    pace = await _pace(sim)
    truth = model(sim)
    await pace.set_setpoint(2.0)
    await clock.sleep(3.0)  # mid-slew: 1.5 bar
    await pace.transport.write(":OUTP:STAT 0")
    await clock.sleep(30.0)
    assert truth.pressure_at(clock.now()) == pytest.approx(1.5, abs=0.01)
    assert await pace.is_stable() is False
    await pace.close()


async def test_dropped_connection_is_a_clear_transport_error_then_recovers(sim: RunningBench) -> None:
    pace = await _pace(sim)
    sim.faults("pace").arm("drop", ":SENS:PRES?")
    with pytest.raises(TransportError, match=r"':SENS:PRES\?' failed"):
        await pace.read_value()
    assert sim.faults("pace").fired("drop") == 1
    assert isinstance(await pace.read_value(), float)  # reconnects on next use
    assert sim.servers["pace"].connections_accepted == 2
    await pace.close()


async def test_delayed_reply_times_out_and_the_late_reply_is_not_taken(sim: RunningBench) -> None:
    pace = PaceDriver("pace", open_transport(sim.resources["pace"], timeout=0.15), "P-0001")
    await pace.connect()
    sim.faults("pace").arm("delay", ":SENS:PRES:INL?", delay=0.4)
    with pytest.raises(TransportTimeout, match=r"no reply to ':SENS:PRES:INL\?' within 0.15 s"):
        await pace.is_stable()
    assert await pace.setpoint() == 0.0  # a fresh connection: the late in-limits reply never answers this
    await pace.close()


async def test_registry_and_world_know_the_pace() -> None:
    bench = parse_bench(BENCH, source="pressure.toml")
    check_drivers(bench)
    assert DRIVERS["druck_pace"] is PaceDriver
    assert isinstance(build_driver(bench.instruments["pace"]), PaceDriver)
    world = SimulatedWorld(bench, VirtualClock())
    assert world["pace"].output_terminals == ("pressure",)


@pytest.mark.parametrize(
    ("change", "field", "mentions"),
    [
        (("slew_rate = 0.5", "slew_rate = 0"), "instruments.pace.simulation.slew_rate", "bar per second"),
        (("time_constant = 2.0", 'time_constant = "fast"'), "instruments.pace.simulation.time_constant",
         "expected a number"),
        (("in_limits = 0.002", "in_limit = 0.002"), "instruments.pace.simulation.in_limit", "in_limits"),
        (("full_scale = 20.0", "full_scale = 20.0\nminimum = 30.0"), "instruments.pace.simulation.minimum",
         "below full_scale"),
        (("vent_rate = 1.0", "vent_rate = 1.0\nunit = \"furlong\""), "instruments.pace.simulation.unit", "BAR"),
        (("noise = 0.00002", "noise = 0.00002\ngain = -2"), "instruments.pace.simulation.gain", "> -1"),
        (("noise = 0.00002", "noise = 0.00002\noffset = 0.0004"), "instruments.pace.simulation.offset",
         "certificate"),
        (("correction = -0.0004, U = 0.0006", "correction = -0.0004"),
         "instruments.pace.certificate.pressure.points[0].U", "expected a number"),
    ],
)
def test_bad_simulation_parameters_name_the_field(change: tuple[str, str], field: str, mentions: str) -> None:
    text = BENCH.replace(*change)
    assert text != BENCH
    with pytest.raises(ConfigError) as info:
        SimulatedWorld(parse_bench(text, source="pressure.toml"), VirtualClock())
    assert info.value.source == "pressure.toml"
    assert info.value.field == field
    assert mentions in info.value.problem + info.value.fix


def test_the_certified_sensor_differs_from_its_certificate_by_its_stated_uncertainty() -> None:
    """Per seed a fresh sensor: true error = -correction + a draw ~ Normal(0, U/k) at each certificate
    point, interpolated between them; the loop settles where that sensor reads the setpoint."""
    bench = parse_bench(BENCH, source="pressure.toml")
    at0, at10 = [], []
    for seed in range(300):
        pace = SimulatedWorld(bench, VirtualClock(), seed)["pace"]
        assert isinstance(pace, PaceController)
        at0.append(pace.true_error(0.0) - 0.0004)
        at10.append(pace.true_error(10.0) - 0.0009)
        mid = pace.true_error(5.0)
        assert mid == pytest.approx((pace.true_error(0.0) + pace.true_error(10.0)) / 2, abs=1e-12)
        p = pace.controlled_pressure(7.0)
        assert p + pace.true_error(p) == pytest.approx(7.0, abs=1e-12)
    for drawn, u in ((at0, 0.0003), (at10, 0.0004)):
        sd = (sum(d * d for d in drawn) / len(drawn)) ** 0.5
        assert 0.8 * u < sd < 1.2 * u
        assert abs(sum(drawn) / len(drawn)) < 3 * u / len(drawn) ** 0.5
    # Same seed, same sensor; a bench without a certificate keeps offset + gain as written.
    again = SimulatedWorld(bench, VirtualClock(), 7)["pace"]
    assert isinstance(again, PaceController)
    assert again.true_error(3.0) == SimulatedWorld(bench, VirtualClock(), 7)["pace"].true_error(3.0)
    start, end = BENCH.index("# The reference's certificate"), BENCH.index("[instruments.pace.simulation]")
    plain = BENCH[:start] + BENCH[end:].replace("noise = 0.00002", "noise = 0.00002\noffset = 0.0004\ngain = 5e-5")
    fixed = SimulatedWorld(parse_bench(plain, source="plain.toml"), VirtualClock(), 7)["pace"]
    assert isinstance(fixed, PaceController)
    assert fixed.true_error(10.0) == pytest.approx(0.0004 + 5e-5 * 10.0)
