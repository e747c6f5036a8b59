"""Simulated calibrator and DMM over real TCP sockets and a pseudo-terminal, on virtual time.

The tests speak SCPI with plain asyncio streams, never through the drivers: the simulators
are the reference the drivers are tested against, so they must be checked on their own.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import serial_asyncio_fast

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError
from daq.transports.resource import parse_resource
from simulators.bench_server import RunningBench, start_bench
from simulators.world import SimulatedWorld

BENCH = """
[bench]
name = "simulated DC voltage bench"
seed = 7

[instruments.calibrator]
driver = "fluke5522a"
resource = "TCPIP::127.0.0.1::0::SOCKET"
serial = "CAL-0042"

[instruments.calibrator.certificate.dcv]
k = 2.0
ranges = [{ upto = 0.33, ppm = 15, floor = 1e-6 }, { upto = 3.3, ppm = 9, floor = 2e-6 },
          { upto = 33, ppm = 10, floor = 20e-6 }, { upto = 330, ppm = 15, floor = 150e-6 },
          { upto = 1020, ppm = 15, floor = 1500e-6 }]

[instruments.calibrator.simulation]
time_constant = 0.4

[instruments.dmm]
driver = "keysight34465a"
resource = "TCPIP::127.0.0.1::0::SOCKET"
serial = "MY0001"

[instruments.dmm.simulation]
gain_ppm = 12
ranges = [{ range = 1, gain_ppm = -20, offset_ppm_of_range = 4 }]

[[wiring]]
from = "calibrator.output"
to = "dmm.input"
"""

TAU = 0.4


class ScpiClient:
    """A bare SCPI socket client: newline-terminated commands, one reply line per query."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, resource: str) -> ScpiClient:
        address = parse_resource(resource)
        return cls(*await asyncio.open_connection(address.host, address.port))

    async def write(self, command: str) -> None:
        self.writer.write(command.encode() + b"\n")
        await self.writer.drain()

    async def query(self, command: str) -> str:
        await self.write(command)
        line = await asyncio.wait_for(self.reader.readuntil(b"\n"), 5.0)
        return line.decode().rstrip("\r\n")

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def running(clock: VirtualClock) -> AsyncIterator[RunningBench]:
    bench = await start_bench(parse_bench(BENCH, source="sim-bench.toml"), clock)
    yield bench
    await bench.close()


@pytest.fixture
async def cal(running: RunningBench) -> AsyncIterator[ScpiClient]:
    client = await ScpiClient.connect(running.resources["calibrator"])
    yield client
    await client.close()


@pytest.fixture
async def dmm(running: RunningBench) -> AsyncIterator[ScpiClient]:
    client = await ScpiClient.connect(running.resources["dmm"])
    yield client
    await client.close()


def values(reply: str) -> list[float]:
    return [float(v) for v in reply.split(",")]


# --- serving -------------------------------------------------------------------------------


async def test_resources_are_real_ports_and_idn_answers(running: RunningBench, cal: ScpiClient,
                                                        dmm: ScpiClient) -> None:
    for name in ("calibrator", "dmm"):
        address = parse_resource(running.resources[name])
        assert address.kind == "socket" and address.host == "127.0.0.1" and address.port > 0
        assert running.bench.instruments[name].resource == running.resources[name]
    assert await cal.query("*IDN?") == "FLUKE,5522A,CAL-0042,SIM1.0"
    assert await dmm.query("*idn?") == "Keysight Technologies,34465A,MY0001,A.03.01-SIM"


async def test_connections_and_command_log_are_observable(running: RunningBench, clock: VirtualClock,
                                                          cal: ScpiClient) -> None:
    second = await ScpiClient.connect(running.resources["calibrator"])
    await cal.write("OUT 1 V\r")
    await clock.sleep(2.0)
    assert await second.query("OUT?") == "1.0000000E+00,V,0.0000000E+00,0,0.00E+00"
    await second.close()
    server = running.servers["calibrator"]
    assert server.connections_accepted == 2
    assert list(server.commands) == [(0.0, "OUT 1 V"), (2.0, "OUT?")]


async def test_several_commands_on_one_line_reply_joined(cal: ScpiClient) -> None:
    assert await cal.query("*IDN?;OPER?;OPER;:OPER?") == "FLUKE,5522A,CAL-0042,SIM1.0;0;1"


async def test_unknown_command_is_silent_and_queued(cal: ScpiClient, dmm: ScpiClient) -> None:
    await cal.write("FROB 12")
    assert await cal.query("OPER?") == "0"  # the unknown command produced no reply of its own
    assert await cal.query("ERR?") == '-113,"Undefined header"'
    assert await cal.query("ERR?") == '0,"No Error"'
    await dmm.write("VOLT:DC:NPLC banana")
    await dmm.write("SYST:BOGUS")
    assert await dmm.query("VOLT:DC:NPLC?") == "+1.00000000E+01"
    assert (await dmm.query("SYST:ERR?")).startswith('-104,"Data type error')
    assert await dmm.query("SYSTem:ERRor:NEXT?") == '-113,"Undefined header"'
    assert await dmm.query("SYST:ERR?") == '+0,"No error"'


async def test_closing_mid_measurement_hangs_up_cleanly(clock: VirtualClock,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    running = await start_bench(parse_bench(BENCH, source="sim-bench.toml"), clock)
    client = await ScpiClient.connect(running.resources["dmm"])
    await client.write("VOLT:DC:NPLC 100;:SAMP:COUN 1000;:READ?")  # 2000 s of integration
    await clock.sleep(1.0)
    assert running.servers["dmm"].open_connections == 1
    await running.close()
    assert await asyncio.wait_for(client.reader.read(), 5.0) == b""  # EOF, no partial reply
    await client.close()
    await asyncio.sleep(0)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_reply_latency_is_spent_on_the_clock(clock: VirtualClock) -> None:
    running = await start_bench(parse_bench(BENCH, source="sim-bench.toml"), clock, latency=0.25)
    client = await ScpiClient.connect(running.resources["dmm"])
    try:
        assert (await client.query("*IDN?")).startswith("Keysight")
        assert clock.now() == pytest.approx(0.25)
    finally:
        await client.close()
        await running.close()


async def test_pty_serves_the_same_instrument(running: RunningBench, cal: ScpiClient) -> None:
    resource = await running.serve_pty("calibrator")
    address = parse_resource(resource)
    assert address.kind == "serial" and address.device.startswith("/dev/")
    reader, writer = await serial_asyncio_fast.open_serial_connection(url=address.device, baudrate=9600)
    try:
        writer.write(b"*IDN?\r\n")
        assert await asyncio.wait_for(reader.readuntil(b"\n"), 5.0) == b"FLUKE,5522A,CAL-0042,SIM1.0\n"
        writer.write(b"OUT -100 MV\n")
        writer.write(b"OUT?\n")
        reply = await asyncio.wait_for(reader.readuntil(b"\n"), 5.0)
        assert reply == b"-1.0000000E-01,V,0.0000000E+00,0,0.00E+00\n"
    finally:
        writer.close()
    assert await cal.query("OUT?") == "-1.0000000E-01,V,0.0000000E+00,0,0.00E+00"  # one model, two wires


async def test_pty_with_plain_file_descriptors(running: RunningBench) -> None:
    path = parse_resource(await running.serve_pty("dmm")).device
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    loop = asyncio.get_running_loop()
    received = bytearray()
    got_line = asyncio.Event()

    def readable() -> None:
        received.extend(os.read(fd, 1024))
        if b"\n" in received:
            got_line.set()

    loop.add_reader(fd, readable)
    try:
        os.write(fd, b"SAMP:COUN 3;SAMP:COUN?\n")
        await asyncio.wait_for(got_line.wait(), 5.0)
        assert bytes(received) == b"+3\n"
    finally:
        loop.remove_reader(fd)
        os.close(fd)


# --- calibrator ----------------------------------------------------------------------------


async def test_calibrator_settles_as_a_first_order_lag(running: RunningBench, clock: VirtualClock,
                                                       cal: ScpiClient) -> None:
    model = running.world.calibrator("calibrator")
    await cal.write("OUT 10 V")
    assert model.output_at(clock.now()) == 0.0 and not model.operating  # standby until OPER
    await cal.write("OPER")
    isr = int(await cal.query("ISR?"))
    assert isr & 1 and not isr & (1 << 12)
    target = model.true_output(10.0)
    await clock.sleep(TAU)
    assert model.output_at(clock.now()) == pytest.approx(target * (1 - math.exp(-1)), rel=1e-12)
    await clock.sleep(5 * TAU - TAU)
    assert not int(await cal.query("ISR?")) & (1 << 12)  # 5 tau: still 67 mV away
    await clock.sleep(15 * TAU)
    assert int(await cal.query("ISR?")) == (1 << 12) | 1
    assert model.output_at(clock.now()) == pytest.approx(target, abs=10 * math.exp(-20) * 1.01)
    # A new value starts from where the output is, not from zero.
    t1 = clock.now()
    v1 = model.output_at(t1)
    await cal.write("OUT 5 V")
    await cal.query("*OPC?")
    new_target = model.true_output(5.0)
    expected = new_target + (v1 - new_target) * math.exp(-1)
    assert model.output_at(t1 + TAU) == pytest.approx(expected, rel=1e-12)


async def test_out_query_and_isr_in_standby(running: RunningBench, cal: ScpiClient) -> None:
    await cal.write("OUT -100 MV")
    assert await cal.query("OUT?") == "-1.0000000E-01,V,0.0000000E+00,0,0.00E+00"
    assert await cal.query("ISR?") == "0"
    await cal.write("OUT 2.5V;*RST")
    assert await cal.query("OUT?") == "0.0000000E+00,V,0.0000000E+00,0,0.00E+00"


async def test_above_33_volts_while_operating_drops_to_standby(running: RunningBench, clock: VirtualClock,
                                                               cal: ScpiClient) -> None:
    model = running.world.calibrator("calibrator")
    await cal.write("OUT 10 V;OPER")
    await clock.sleep(10.0)
    await cal.write("OUT 100 V")
    assert await cal.query("OPER?") == "0"
    assert not model.operating and model.output_at(clock.now()) == 0.0
    assert int(await cal.query("ISR?")) & 1 == 0
    assert await cal.query("OUT?") == "1.0000000E+02,V,0.0000000E+00,0,0.00E+00"
    await cal.write("OPER")
    assert await cal.query("OPER?") == "1"
    await clock.sleep(20.0)
    assert model.output_at(clock.now()) == pytest.approx(model.true_output(100.0), abs=1e-9)


async def test_outside_limits_and_ac_forms_are_errors_without_change(running: RunningBench,
                                                                     cal: ScpiClient) -> None:
    await cal.write("OUT 1 V")
    await cal.write("OUT 1100 V")
    assert (await cal.query("ERR?")).startswith('200,"Outside limits')
    # AC and ohms are simulated now (tests/test_multifunction_protocol.py); forms they refuse:
    await cal.write("OUT 1 V, 1 MHZ")
    await cal.write("OUT 10 OHM, 1 KHZ")
    assert (await cal.query("ERR?")).startswith('200,"Outside limits')
    assert (await cal.query("ERR?")).startswith('-224,"Illegal parameter value')
    assert await cal.query("ERR?") == '0,"No Error"'
    assert running.world.calibrator("calibrator").nominal == 1.0


# --- DMM -----------------------------------------------------------------------------------


async def test_read_returns_sample_count_values_and_takes_their_time(clock: VirtualClock,
                                                                     dmm: ScpiClient) -> None:
    await dmm.write("CONF:VOLT:DC 10")
    await dmm.write("VOLT:DC:NPLC 10;SAMP:COUN 5")
    t0 = clock.now()
    readings = values(await dmm.query("READ?"))
    assert len(readings) == 5
    assert clock.now() - t0 == pytest.approx(5 * 10 / 50)
    assert all(abs(r) < 1e-4 for r in readings)  # nothing sourced: 0 V plus offset and noise


async def test_dmm_measures_the_calibrator_through_the_wiring(running: RunningBench, clock: VirtualClock,
                                                              cal: ScpiClient, dmm: ScpiClient) -> None:
    model_cal = running.world.calibrator("calibrator")
    model_dmm = running.world.dmm("dmm")
    await cal.write("OUT 10 V;OPER")
    await clock.sleep(20 * TAU)
    await dmm.write("CONF:VOLT:DC 10;:VOLT:DC:NPLC 100;:SAMP:COUN 4")
    readings = values(await dmm.query("READ?"))
    true_volts = model_cal.true_output(10.0)
    expected = true_volts + model_dmm.true_error(true_volts, 10.0)
    tolerance = 5 * model_dmm.noise_sigma(10.0, 100) + model_dmm.quantum(10.0)
    assert all(abs(r - expected) < tolerance for r in readings)
    # The errors are real: 12 ppm gain + 2 ppm offset on 10 V, far above the noise.
    assert model_dmm.true_error(true_volts, 10.0) == pytest.approx(140e-6, rel=1e-3)
    # What a calibration would find: the mean corrected for the DMM's error is the calibrator's
    # true output, nominal plus a deviation of the size its certificate allows (U = 120 uV, k = 2).
    corrected = statistics.fmean(readings) - model_dmm.true_error(true_volts, 10.0)
    assert corrected - 10.0 == pytest.approx(model_cal.deviation(10.0), abs=tolerance)
    assert 0 < abs(model_cal.deviation(10.0)) < 4 * 60e-6


async def test_dmm_sees_the_source_settling(running: RunningBench, clock: VirtualClock,
                                            cal: ScpiClient, dmm: ScpiClient) -> None:
    await dmm.write("CONF:VOLT:DC 10;:VOLT:DC:NPLC 1;:SAMP:COUN 40")
    await cal.write("OUT 10 V;OPER")
    readings = values(await dmm.query("READ?"))
    assert readings[0] < 1.0 and readings[-1] > 8.0
    assert all(b > a for a, b in zip(readings[:20], readings[1:21], strict=True))


async def test_per_range_override_and_range_selection(running: RunningBench, clock: VirtualClock,
                                                      cal: ScpiClient, dmm: ScpiClient) -> None:
    model = running.world.dmm("dmm")
    assert model.true_error(1.0, 1.0) == pytest.approx(-20e-6 + 4e-6)
    assert model.true_error(1.0, 10.0) == pytest.approx(12e-6 + 20e-6)
    await cal.write("OUT 0.5 V;OPER")
    await clock.sleep(20 * TAU)
    reading = float(await dmm.query("MEAS:VOLT:DC?"))  # autorange
    assert await dmm.query("VOLT:DC:RANG?") == "+1.00000000E+00"
    assert reading == pytest.approx(model_true(running, 0.5, 1.0), abs=5e-6)
    await dmm.write("CONFigure:VOLTage:DC MAX")
    assert await dmm.query("SENSe:VOLTage:DC:RANGe?") == "+1.00000000E+03"
    assert await dmm.query("VOLT:DC:RANG:AUTO?") == "0"


def model_true(running: RunningBench, nominal: float, range_: float) -> float:
    volts = running.world.calibrator("calibrator").true_output(nominal)
    return volts + running.world.dmm("dmm").true_error(volts, range_)


async def test_overload_on_a_range_too_small(clock: VirtualClock, cal: ScpiClient, dmm: ScpiClient) -> None:
    await cal.write("OUT 10 V;OPER")
    await clock.sleep(20 * TAU)
    await dmm.write("CONF:VOLT:DC 1")
    assert await dmm.query("READ?") == "+9.900000000E+37"
    assert values(await dmm.query("MEAS:VOLT:DC? 1")) == [9.9e37]
    assert abs(float(await dmm.query("MEAS:VOLT:DC? 10")) - 10.0) < 1e-3


async def test_bench_close_cancels_a_triggered_acquisition(running: RunningBench, clock: VirtualClock,
                                                           dmm: ScpiClient) -> None:
    model = running.world.dmm("dmm")
    await dmm.write("SAMP:COUN 1000;:INIT")
    await clock.sleep(1.0)
    assert 0 < model.samples_taken < 1000
    await running.close()
    taken = model.samples_taken
    await clock.sleep(10.0)
    assert model.samples_taken == taken


async def test_init_fetch_and_configure_query(clock: VirtualClock, dmm: ScpiClient) -> None:
    await dmm.write("FETC?")
    assert (await dmm.query("SYST:ERR?")).startswith("-230,")
    await dmm.write("CONF:VOLT:DC 10,1E-6;:SAMP:COUN 3;:INIT")
    assert await dmm.query("VOLT:DC:NPLC?") == "+1.00000000E+01"
    assert len(values(await dmm.query("FETC?"))) == 3
    assert await dmm.query("CONF?") == '"VOLT +1.00000000E+01,+1.00000000E-06"'


# --- the world -----------------------------------------------------------------------------


def build(text: str, seed: int | None = None) -> SimulatedWorld:
    return SimulatedWorld(parse_bench(text, source="b.toml"), VirtualClock(), seed)


def test_deviation_is_reproducible_and_depends_on_the_seed() -> None:
    a = build(BENCH).calibrator("calibrator")
    b = build(BENCH).calibrator("calibrator")
    other = build(BENCH, seed=8).calibrator("calibrator")
    b.deviation(1.0)  # visiting points in another order changes nothing
    assert a.deviation(10.0) == b.deviation(10.0) == b.deviation(10.000000000000001)
    assert a.deviation(10.0) != other.deviation(10.0)
    assert a.deviation(10.0) != a.deviation(-10.0)
    assert a.deviation(0.0) == a.deviation(-0.0)
    assert build(BENCH).seed == 7 and build(BENCH, seed=3).seed == 3
    assert build(BENCH.replace("seed = 7", "")).seed == 0


def test_deviation_size_follows_the_certificate() -> None:
    cal = build(BENCH).calibrator("calibrator")
    points = [10.0 + i * 1e-3 for i in range(400)]
    sigma = (10e-6 * 10 + 20e-6) / 2
    spread = math.sqrt(sum(cal.deviation(p) ** 2 for p in points) / len(points))
    assert 0.85 * sigma < spread < 1.15 * sigma


def test_deviation_is_the_same_in_another_process() -> None:
    code = ("from daq.bench import parse_bench; from daq.clock import VirtualClock; "
            "from simulators.world import SimulatedWorld; import sys; "
            "w = SimulatedWorld(parse_bench(sys.stdin.read()), VirtualClock()); "
            "print(repr(w.calibrator('calibrator').deviation(10.0)))")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], input=BENCH, capture_output=True, text=True,
                         env=env, cwd=root, check=True).stdout
    assert float(out) == build(BENCH).calibrator("calibrator").deviation(10.0)


def test_world_true_error_is_the_calibration_truth() -> None:
    world = build(BENCH)
    cal, dmm = world.calibrator("calibrator"), world.dmm("dmm")
    volts = cal.true_output(0.5)
    assert world.true_error("dmm", 0.5, 1.0) == dmm.true_error(volts, 1.0)
    assert dmm.true_error(volts, 1.0) == pytest.approx(-20e-6 * volts + 4e-6)
    assert world.true_error("dmm", 0.5) == world.true_error("dmm", 0.5, 1.0)  # autorange picks 1 V
    assert world.true_error("calibrator", 0.5) == cal.deviation(0.5) == pytest.approx(volts - 0.5, abs=1e-15)


def test_unwired_input_reads_zero_volts() -> None:
    world = build(BENCH.split("[[wiring]]")[0])
    assert world.dmm("dmm").input_at(5.0) == 0.0
    assert world.terminal_at("dmm.input", 5.0) == 0.0


@pytest.mark.parametrize(
    ("change", "field", "fix_mentions"),
    [
        (('driver = "keysight34465a"', 'driver = "keithley2002"'), "instruments.dmm.driver", "keysight34465a"),
        (("time_constant = 0.4", "time_konstant = 0.4"), "instruments.calibrator.simulation.time_konstant",
         "time_constant"),
        (("time_constant = 0.4", 'time_constant = "fast"'), "instruments.calibrator.simulation.time_constant",
         "seconds"),
        (("time_constant = 0.4", "time_constant = 0"), "instruments.calibrator.simulation.time_constant",
         "0.4"),
        (("gain_ppm = 12", "gain_ppm = true"), "instruments.dmm.simulation.gain_ppm", "gain_ppm"),
        (("{ range = 1,", "{ range = 2,"), "instruments.dmm.simulation.ranges[0].range", "34465A"),
        (('to = "dmm.input"', 'to = "dmm.output"'), "wiring[0].to", '"dmm.input"'),
        (('from = "calibrator.output"', 'from = "dmm.input"'), "wiring[0].from", "no output"),
        (("k = 2.0", "k = -1"), "instruments.calibrator.certificate.dcv.k", "k = 2.0"),
    ],
)
def test_bad_simulation_config_names_the_field(change: tuple[str, str], field: str,
                                               fix_mentions: str) -> None:
    text = BENCH.replace(*change)
    assert text != BENCH
    with pytest.raises(ConfigError) as info:
        build(text)
    assert info.value.source == "b.toml"
    assert info.value.field == field
    assert fix_mentions in info.value.fix + info.value.problem


async def test_port_in_use_is_a_config_error(running: RunningBench, clock: VirtualClock) -> None:
    taken = parse_resource(running.resources["dmm"]).port
    text = BENCH.replace("TCPIP::127.0.0.1::0::SOCKET", f"TCPIP::127.0.0.1::{taken}::SOCKET", 1)
    with pytest.raises(ConfigError) as info:
        await start_bench(parse_bench(text, source="b.toml"), clock)
    assert info.value.field == "instruments.calibrator.resource"
    assert "port 0" in info.value.fix
