"""AC voltage and resistance on the wire: the simulators on their own, then the drivers' exact commands.

The simulators are spoken to with the bare transport (no driver), since they are the reference
the drivers are tested against; then the drivers' commands are read back from the server log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError, InstrumentError
from daq.transports import open_transport
from drivers.capabilities import MeterOverload
from drivers.fluke5522a import Calibrator5522A
from drivers.keysight34465a import Dmm34465A
from simulators.bench_server import start_bench
from simulators.world import SimulatedWorld

BENCH_FILE = Path(__file__).resolve().parents[1] / "runner" / "data" / "dmm-multifunction-bench.toml"


@pytest.fixture
async def sim():
    clock = VirtualClock()
    running = await start_bench(parse_bench(BENCH_FILE.read_text(), source=str(BENCH_FILE)), clock, seed=5)
    running.kept = dict(running.servers)
    yield running
    await running.close()


async def _log(running, name, transport, start=0):
    """The commands the simulator received; a `*OPC?` round trip first makes sure writes have landed."""
    assert await transport.query("*OPC?") == "1"
    return [c for _, c in running.kept[name].commands if c != "*OPC?"][start:]


async def _raw(sim, name):
    return open_transport(sim.resources[name])  # opens on first use


# --- the calibrator simulator ---------------------------------------------------------------


async def test_calibrator_sources_ac_and_ohms_and_reports_them_in_out_query(sim):
    cal = await _raw(sim, "calibrator")
    model = sim.world.calibrator("calibrator")
    await cal.write("OUT 1 V, 1 KHZ")
    assert await cal.query("OUT?") == "1.0000000E+00,V,0.0000000E+00,0,1.00E+03"
    await cal.write("OPER")
    await sim.clock.sleep(20.0)
    assert int(await cal.query("ISR?")) & (1 << 12)
    signal = model.signal_at(sim.clock.now())
    assert (signal.function, signal.frequency) == ("acv", 1000.0)
    assert signal.value == pytest.approx(model.true_output(1.0, "acv", 1000.0), abs=1e-9)
    assert model.output_at(sim.clock.now()) == 0.0  # no DC on the terminals while sourcing AC
    await cal.write("OUT 200 MV, 50 KHZ")  # same function: stays in operate, moves to the new target
    assert await cal.query("OPER?") == "1"
    assert await cal.query("OUT?") == "2.0000000E-01,V,0.0000000E+00,0,5.00E+04"
    await cal.write("OUT 10 KOHM")  # a change of function drops to standby
    assert await cal.query("OPER?") == "0"
    assert await cal.query("OUT?") == "1.0000000E+04,OHM,0.0000000E+00,0,0.00E+00"
    assert model.signal_at(sim.clock.now()).function == "off"
    await cal.write("OPER")
    await sim.clock.sleep(20.0)
    assert model.signal_at(sim.clock.now()).value == pytest.approx(model.true_output(1e4, "ohms"), rel=1e-9)
    await cal.write("OUT 1 V, 0 HZ")  # 0 Hz is DC
    assert await cal.query("OUT?") == "1.0000000E+00,V,0.0000000E+00,0,0.00E+00"
    assert await cal.query("ERR?") == '0,"No Error"'
    await cal.close()


@pytest.mark.parametrize(("command", "code"), [
    ("OUT 1 V, 1 MHZ", "200"),         # beyond the AC frequency envelope
    ("OUT 500 V, 50 KHZ", "200"),      # > 330 V only up to 10 kHz
    ("OUT 0.1 MV, 1 KHZ", "200"),      # below the smallest AC amplitude
    ("OUT -1 V, 1 KHZ", "200"),        # an RMS amplitude is not negative
    ("OUT 10 OHM, 1 KHZ", "-224"),     # a resistance has no frequency
    ("OUT -5 OHM", "200"),
    ("OUT 2 GOHM", "-224"),            # unit not known
    ("OUT 1 V, 1 KV", "-224"),         # the second parameter must be a frequency
    ("OUT 1 A", "-224"),
])
async def test_calibrator_refusals_go_to_the_error_queue_and_change_nothing(sim, command, code):
    cal = await _raw(sim, "calibrator")
    await cal.write("OUT 1 V")
    await cal.write(command)
    assert (await cal.query("ERR?")).startswith(f'{code},')
    assert await cal.query("ERR?") == '0,"No Error"'
    assert await cal.query("OUT?") == "1.0000000E+00,V,0.0000000E+00,0,0.00E+00"
    await cal.close()


def test_calibrator_deviations_are_drawn_per_function_from_their_certificates():
    bench = parse_bench(BENCH_FILE.read_text(), source="bench.toml")
    cal = SimulatedWorld(bench, VirtualClock(), seed=11).calibrator("calibrator")
    same = SimulatedWorld(bench, VirtualClock(), seed=11).calibrator("calibrator")
    assert cal.function_deviation("acv", 1.0, 1e3) == same.function_deviation("acv", 1.0, 1e3)
    assert cal.function_deviation("acv", 1.0, 1e3) != cal.function_deviation("acv", 1.0, 5e4)
    assert cal.function_deviation("ohms", 100.0) != cal.function_deviation("acv", 100.0, 1e3)
    assert cal.acv_uncertainty.expanded(1.0, 1e3) == pytest.approx(150e-6 + 60e-6)
    assert cal.acv_uncertainty.expanded(1.0, 5e4) == pytest.approx(300e-6 + 50e-6)
    assert cal.ohms_uncertainty.expanded(100.0) == pytest.approx(28e-4 + 1.4e-3)
    # Over many seeds the AC deviations scatter with the certificate's U/k.
    draws = [SimulatedWorld(bench, VirtualClock(), seed=s).calibrator("calibrator").function_deviation(
        "acv", 1.0, 1e3) for s in range(400)]
    sigma = (sum(d * d for d in draws) / len(draws)) ** 0.5
    assert sigma == pytest.approx(210e-6 / 2, rel=0.15)


def test_a_bad_ac_certificate_is_refused_naming_the_field():
    text = BENCH_FILE.read_text().replace("{ upto = 0.33, fmin = 10, fmax = 45,",
                                          "{ upto = 0.33, fmin = 10, fmux = 45,")
    with pytest.raises(ConfigError, match=r"certificate\.acv\.bands\[0\]\.fmux"):
        SimulatedWorld(parse_bench(text, source="bench.toml"), VirtualClock())
    text = BENCH_FILE.read_text().replace("lead_ohms = 0.015", "lead_ohms = -1")
    with pytest.raises(ConfigError, match=r"simulation\.ohms\.lead_ohms"):
        SimulatedWorld(parse_bench(text, source="bench.toml"), VirtualClock())


# --- the DMM simulator ------------------------------------------------------------------------


async def test_dmm_measures_ac_and_ohms_of_what_the_calibrator_presents(sim):
    cal, dmm = await _raw(sim, "calibrator"), await _raw(sim, "dmm")
    model = sim.world.dmm("dmm")
    calibrator = sim.world.calibrator("calibrator")
    await cal.write("OUT 1 V, 50 KHZ")
    await cal.write("OPER")
    await sim.clock.sleep(20.0)
    await dmm.write("CONF:VOLT:AC 1")
    assert await dmm.query("CONF?") == '"VOLT:AC +1.00000000E+00,+1.00000000E-07"'
    assert await dmm.query("VOLT:AC:RANG?") == "+1.00000000E+00"
    await dmm.write("SAMP:COUN 20")
    t0 = sim.clock.now()
    values = [float(v) for v in (await dmm.query("READ?")).split(",")]
    assert sim.clock.now() - t0 == pytest.approx(20 * 0.25)  # AC: a fixed time per reading, no NPLC
    volts = calibrator.true_output(1.0, "acv", 5e4)
    expected = volts + model.function_true_error("acv", volts, 1.0, 5e4)
    assert model.frequency_error_ppm(5e4) == pytest.approx(-0.5 * (5e4 / 1.5e6) ** 2 * 1e6)
    sigma = model.function_noise_sigma("acv", 1.0, 10)
    assert sum(values) / len(values) == pytest.approx(expected, abs=5 * sigma / len(values) ** 0.5 + 1e-6)
    await dmm.write("CONF:VOLT:DC 1")  # DC coupling sees no DC in an AC signal
    assert abs(float(await dmm.query("READ?"))) < 1e-5

    await cal.write("OUT 100 OHM")
    await dmm.write("CONF:FRES 100")
    assert float(await dmm.query("READ?")) == 9.9e37  # the calibrator dropped to standby: open terminals
    await cal.write("OPER")
    await sim.clock.sleep(20.0)
    await dmm.write("FRES:NPLC 100")
    assert await dmm.query("FRES:NPLC?") == "+1.00000000E+02"
    ohms = calibrator.true_output(100.0, "ohms")
    four = float(await dmm.query("READ?"))
    assert four == pytest.approx(ohms + model.function_true_error("fres", ohms, 100.0), abs=2e-5)
    await dmm.write("CONF:RES 100")
    assert await dmm.query("CONF?") == '"RES +1.00000000E+02,+1.00000000E-05"'
    two = float(await dmm.query("READ?"))
    assert two - four == pytest.approx(0.015, abs=4e-4)  # the leads, in 2-wire only (5 sigma of the noise)
    await dmm.write("CONF:VOLT:AC 1")
    assert abs(float(await dmm.query("READ?"))) < 1e-4  # a resistance presents no AC voltage
    assert await dmm.query("SYST:ERR?") == '+0,"No error"'
    await cal.close()
    await dmm.close()


@pytest.mark.parametrize(("command", "code"), [
    ("CONF:RES 5 GOHM", "-104"),       # numbers only, no unit suffix
    ("CONF:FRES 2E9", "-222"),         # beyond the largest resistance range
    ("CONF:VOLT:AC 1000", "-222"),     # AC stops at 750 V
    ("CONF:VOLT:AC 1,-1", "-222"),
    ("RES:RANG 100", "-224"),          # a resistance range while measuring DC volts
])
async def test_dmm_refusals_go_to_the_error_queue(sim, command, code):
    dmm = await _raw(sim, "dmm")
    await dmm.write(command)
    reply = await dmm.query("SYST:ERR?")
    assert reply.startswith(f"{int(code):+d},") or reply.startswith(f"{code},"), reply
    assert await dmm.query("SYST:ERR?") == '+0,"No error"'
    await dmm.close()


# --- the drivers: exact commands ---------------------------------------------------------------


async def test_calibrator_driver_ac_and_ohms_commands(sim):
    cal = Calibrator5522A("calibrator", open_transport(sim.resources["calibrator"]), "SIM5522A-0001")
    await cal.connect()
    start = len(await _log(sim, "calibrator", cal.transport))
    await cal.set_output(1.0, "V", frequency=1000.0)
    await cal.operate()
    await cal.set_output(100.0, "ohm")
    await cal.set_output(10.0, "kohm")
    await cal.set_output(250.0, "mV", frequency=50e3)
    assert await _log(sim, "calibrator", cal.transport, start) == [
        "OUT 1 V, 1000 HZ", "ERR?", "OPER", "OPER?", "OUT 100 OHM", "ERR?", "OUT 10000 OHM", "ERR?",
        "OUT 0.25 V, 50000 HZ", "ERR?"]
    assert await cal.output_setting() == (0.25, "V", 50000.0)
    n = len(await _log(sim, "calibrator", cal.transport))
    for args, kwargs, match in [
        ((1.0, "V"), {"frequency": 1e6}, "Hz is outside"),
        ((2000.0, "V"), {"frequency": 1e3}, "AC is outside"),
        ((100.0, "ohm"), {"frequency": 1e3}, "no frequency"),
        ((2e9, "ohm"), {}, "outside the calibrator"),
        ((1.0, "A"), {}, "not supported"),
    ]:
        with pytest.raises(InstrumentError, match=match):
            await cal.set_output(*args, **kwargs)
    assert len(await _log(sim, "calibrator", cal.transport)) == n  # refused without sending
    await cal.safe_state()
    await cal.close()


async def test_dmm_driver_configures_each_function(sim):
    dmm = Dmm34465A("dmm", open_transport(sim.resources["dmm"]), "SIM34465A-0001")
    await dmm.connect()
    start = len(await _log(sim, "dmm", dmm.transport))
    await dmm.configure("acv", 1.0, 10)
    await dmm.configure("ohms", 100.0, 10)
    await dmm.configure("fres", 1e4, 100)
    await dmm.configure("dcv", None, 1)
    assert await _log(sim, "dmm", dmm.transport, start) == [
        "CONF:VOLT:AC 1", "SYST:ERR?",                 # AC has no NPLC
        "CONF:RES 100", "RES:NPLC 10", "SYST:ERR?",
        "CONF:FRES 10000", "FRES:NPLC 100", "SYST:ERR?",
        "CONF:VOLT:DC AUTO", "VOLT:DC:NPLC 1", "SYST:ERR?"]
    assert dmm.resolution(10.0) == pytest.approx(1e-6)
    await dmm.configure("acv", 10.0)
    assert dmm.resolution(10.0) == pytest.approx(1e-5)
    n = len(await _log(sim, "dmm", dmm.transport))
    with pytest.raises(InstrumentError, match="not supported"):
        await dmm.configure("dci", 1.0)
    with pytest.raises(InstrumentError, match="no 1000 V range"):
        await dmm.configure("acv", 1000.0)
    assert len(await _log(sim, "dmm", dmm.transport)) == n
    await dmm.close()


async def test_ohms_on_open_terminals_is_an_overload_not_a_reading(sim):
    dmm = Dmm34465A("dmm", open_transport(sim.resources["dmm"]))
    await dmm.connect()
    await dmm.configure("fres", 100.0, 1)
    with pytest.raises(MeterOverload, match="100.0 ohm range"):
        await dmm.read(1)
    await dmm.close()
