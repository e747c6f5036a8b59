"""The 3458A reference DMM: its simulator and driver, exact commands on the wire, native TCP and pyvisa-py."""

from __future__ import annotations

import pytest

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import TransportTimeout
from daq.transports import open_transport
from daq.transports.visa import VisaTransport
from drivers.capabilities import Meter, MeterOverload
from drivers.fluke5522a import Calibrator5522A
from drivers.hp3458a import Hp3458A
from drivers.registry import DRIVERS, build_driver, check_drivers
from simulators.bench_server import start_bench
from simulators.dmm3458a import Dmm3458A
from simulators.world import MODELS

BENCH = """
[bench]
name = "3458A bench"
seed = 11

[instruments.calibrator]
driver = "fluke5522a"
resource = "TCPIP::127.0.0.1::0::SOCKET"

[instruments.calibrator.simulation]
time_constant = 0.4

[instruments.refdmm]
driver = "hp3458a"
resource = "TCPIP::127.0.0.1::0::SOCKET"
visa = true

[instruments.refdmm.simulation]
gain_ppm = 1.5
offset_ppm_of_range = 0.2
noise_ppm_of_range = 0.02

[[wiring]]
from = "calibrator.output"
to = "refdmm.input"
"""


@pytest.fixture
async def sim():
    running = await start_bench(parse_bench(BENCH, source="bench.toml"), VirtualClock(), seed=11)
    yield running
    await running.close()


async def _log(running, name, driver, start=0):
    """The commands the simulator received; an `ID?` round trip first makes sure writes have landed."""
    assert await driver.transport.query("ID?") == "HP3458A"
    log = [c for _, c in running.servers[name].commands if c != "ID?"]
    return log[start:]


def _transport(resource: str, via_visa: bool):
    return VisaTransport(resource, timeout=5) if via_visa else open_transport(resource)


def test_registered_for_bench_files_and_the_simulated_world():
    assert DRIVERS["hp3458a"] is Hp3458A
    assert MODELS["hp3458a"] is Dmm3458A
    bench = parse_bench(BENCH, source="bench.toml")
    check_drivers(bench)
    driver = build_driver(bench.instruments["refdmm"])
    assert isinstance(driver, Hp3458A)
    assert type(driver.transport).__name__ == "VisaTransport"  # visa = true: pyvisa even for a socket


@pytest.mark.parametrize("via_visa", [False, True], ids=["native-tcp", "pyvisa-py"])
async def test_exact_commands_and_replies(sim, via_visa):
    dmm = Hp3458A("refdmm", _transport(sim.resources["refdmm"], via_visa))
    assert isinstance(dmm, Meter)
    await dmm.connect()
    assert dmm.idn == "HP3458A"
    assert await _log(sim, "refdmm", dmm) == ["END ALWAYS", "ERRSTR?"]
    await dmm.configure("dcv", 10.0, 100)
    values = await dmm.read(2)
    assert await _log(sim, "refdmm", dmm, 2) == [
        "PRESET NORM", "END ALWAYS", "DCV 10", "NPLC 100", "NDIG 8", "ERRSTR?", "TRIG SGL", "TRIG SGL"]
    assert len(values) == 2 and all(abs(v) < 1e-5 for v in values)  # nothing sourced: about 0 V
    model = sim.world["refdmm"]
    assert (model.range, model.auto_range, model.nplc, model.ndig, model.end_mode) == (10.0, False, 100.0, 8, "ALWAYS")
    # the plain replies, as they come off the wire
    assert await dmm.transport.query("ERRSTR?") == '0,"NO ERROR"'
    assert await dmm.transport.query("END?") == "2"
    reading = await dmm.transport.query("TRIG SGL")
    assert reading.count("E") == 1 and len(reading.split("E")[0].split(".")[1]) == 9  # NDIG 8: 9 decimals
    await dmm.close()


async def test_unknown_command_is_queued_for_errstr(sim):
    dmm = Hp3458A("refdmm", open_transport(sim.resources["refdmm"]))
    await dmm.connect()
    await dmm.transport.write("FROB 3")
    await dmm.transport.write("NDIG 12")
    assert await dmm.errors() == ['103,"UNDEFINED COMMAND"', '105,"PARAMETER OUT OF RANGE;NDIG 12 outside 3..8"']
    assert await dmm.errors() == []
    await dmm.close()


async def test_without_end_always_a_reading_never_completes(sim):
    """Power-on END OFF: no EOI with the reading, the gateway never forwards it, the controller times out."""
    transport = open_transport(sim.resources["refdmm"], timeout=0.2)
    assert await transport.query("END?") == "0"
    with pytest.raises(TransportTimeout):
        await transport.query("TRIG SGL")
    assert sim.world["refdmm"].readings_without_eoi == 1
    await transport.write("END ALWAYS")
    assert float(await transport.query("TRIG SGL")) == pytest.approx(0.0, abs=1e-5)
    await transport.close()


@pytest.mark.parametrize("via_visa", [False, True], ids=["native-tcp", "pyvisa-py"])
async def test_readings_through_the_wiring_agree_with_the_true_error(sim, via_visa):
    entry = sim.bench.instruments["refdmm"]
    dmm = build_driver(entry) if via_visa else Hp3458A("refdmm", open_transport(entry.resource))
    assert isinstance(dmm, Hp3458A)
    cal = Calibrator5522A("calibrator", open_transport(sim.resources["calibrator"]))
    await dmm.connect()
    await cal.connect()
    await cal.set_output(10.0, "V")
    await cal.operate()
    await sim.clock.sleep(30.0)
    await dmm.configure("dcv", 10.0, 100)
    values = await dmm.read(5)
    model: Dmm3458A = sim.world["refdmm"]
    true_input = sim.world.calibrator("calibrator").true_output(10.0)
    expected = true_input + model.true_error(true_input, 10.0)
    sigma = model.noise_sigma(10.0, 100)
    assert model.true_error(true_input, 10.0) == pytest.approx(1.5e-5 + 2e-6, rel=1e-3)  # 1.5 ppm + 0.2 ppm of 10 V
    for v in values:
        assert v == pytest.approx(expected, abs=5 * sigma + model.quantum(10.0, 8))
    assert abs(sum(values) / len(values) - expected) < 5 * sigma / len(values) ** 0.5 + 1e-8
    await cal.safe_state()
    await dmm.close()
    await cal.close()


async def test_overload_is_refused(sim):
    dmm = Hp3458A("refdmm", open_transport(sim.resources["refdmm"]))
    cal = Calibrator5522A("calibrator", open_transport(sim.resources["calibrator"]))
    await dmm.connect()
    await cal.connect()
    await cal.set_output(5.0, "V")
    await cal.operate()
    await sim.clock.sleep(10.0)
    await dmm.configure("dcv", 1.0, 1)
    with pytest.raises(MeterOverload):
        await dmm.read(1)
    await cal.safe_state()
    await dmm.close()
    await cal.close()


def test_resolution_and_noise_model():
    model = Dmm3458A("m", VirtualClock(), noise_ppm_of_range=0.02)
    assert model.quantum(10.0, 8) == pytest.approx(1e-8)
    assert model.noise_sigma(10.0, 1) == pytest.approx(10 * model.noise_sigma(10.0, 100))
    assert Hp3458A("d", open_transport("TCPIP::127.0.0.1::1::SOCKET")).resolution(10.0) == pytest.approx(1e-8)
