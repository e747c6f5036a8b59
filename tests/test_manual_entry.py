"""Manual entry: a dial gauge with no interface, read by the operator (here, the simulator playing one).

The gauge is wired to the PACE's pressure output; the simulated operator reads the true
pressure through the gauge's error, hysteresis and reading resolution. The driver asks only
through the `ManualReader` it was given.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError, InstrumentError
from daq.transports import open_transport
from drivers.capabilities import Meter
from drivers.manual_entry import ManualEntry, ManualReader, TerminalManualReader, parse_indication
from drivers.pace import PaceController as PaceDriver
from simulators.bench_server import RunningBench, start_bench
from simulators.manual_gauge import ManualGauge
from simulators.pace_controller import PaceController
from simulators.world import SimulatedWorld

BENCH = """
[bench]
name = "dial gauge bench"
seed = 4

[instruments.pace]
driver = "druck_pace"
resource = "TCPIP::127.0.0.1::0::SOCKET"
serial = "P-0001"

[instruments.pace.simulation]
slew_rate = 1.0
time_constant = 2.0
stability = 0.0
noise = 0.0

[instruments.gauge]
driver = "manual_entry"
resource = "TCPIP::127.0.0.1::0::SOCKET"   # placeholder: a manual gauge has no interface

[instruments.gauge.simulation]
unit = "bar"
full_scale = 16.0
resolution = 0.02
offset = 0.01
gain = 0.002
hysteresis = 0.04
scatter = 0.0

[[wiring]]
from = "pace.pressure"
to = "gauge.input"
"""


@pytest.fixture
async def sim() -> AsyncIterator[RunningBench]:
    running = await start_bench(parse_bench(BENCH, source="gauge.toml"), VirtualClock())
    yield running
    await running.close()


def gauge_model(sim: RunningBench) -> ManualGauge:
    gauge = sim.world["gauge"]
    assert isinstance(gauge, ManualGauge)
    return gauge


def _expected(p: float, ascending: bool) -> float:
    indication = p + 0.01 + 0.002 * p + (-0.02 if ascending else 0.02)
    return round(round(indication / 0.02) * 0.02, 3)


async def test_gauge_reads_with_hysteresis_and_resolution(sim: RunningBench) -> None:
    clock = sim.clock
    gauge = gauge_model(sim)
    assert isinstance(gauge, ManualReader)
    pace = PaceDriver("pace", open_transport(sim.resources["pace"]), "P-0001")
    await pace.connect()
    uut = ManualEntry("gauge", gauge, unit="bar", reading_resolution=0.02, low=0.0, high=16.0)
    assert isinstance(uut, Meter)
    readings: dict[tuple[float, bool], float] = {}
    for target, ascending in [(2.0, True), (6.0, True), (10.0, True), (6.0, False), (2.0, False)]:
        await pace.set_setpoint(target)
        await clock.sleep(40.0)
        true_p = sim.world.terminal_at("gauge.input", clock.now())
        assert gauge.ascending_at(clock.now()) is ascending
        (value,) = await uut.read()
        assert value == pytest.approx(_expected(true_p, ascending), abs=1e-9)
        assert value == pytest.approx(gauge.indication_at(clock.now()), abs=1e-9)
        readings[(target, ascending)] = value
    # Descending reads 0.04 bar (the hysteresis) above ascending at the same pressure.
    assert readings[(6.0, False)] - readings[(6.0, True)] == pytest.approx(0.04, abs=1e-9)
    assert readings[(2.0, False)] - readings[(2.0, True)] == pytest.approx(0.04, abs=1e-9)
    # Every reading sits on the 0.02 bar grid (1/5 of a 0.1 bar division).
    assert all(abs(v / 0.02 - round(v / 0.02)) < 1e-9 for v in readings.values())
    # The prompts went through the ManualReader, asking in the gauge's unit and resolution.
    assert len(gauge.prompts) == 5
    assert gauge.prompts[0] == ("gauge: read the dial gauge", "bar", 0.02)
    await pace.close()


async def test_true_error_ground_truth_and_scatter() -> None:
    world = SimulatedWorld(parse_bench(BENCH.replace("scatter = 0.0", "scatter = 0.01"), source="g.toml"),
                           VirtualClock())
    gauge = world["gauge"]
    pace = world["pace"]
    assert isinstance(gauge, ManualGauge) and isinstance(pace, PaceController)
    assert gauge.true_error(10.0, ascending=True) == pytest.approx(0.01 + 0.02 - 0.02)
    assert gauge.true_error(10.0, ascending=False) == pytest.approx(0.01 + 0.02 + 0.02)
    pace.set_output(True)
    pace.set_setpoint(5.0)
    values = [gauge.indication_at(100.0) for _ in range(200)]
    assert len(set(values)) > 2  # the operator's scatter, rounded to the 0.02 grid
    assert all(abs(v / 0.02 - round(v / 0.02)) < 1e-9 for v in values)
    mean = sum(values) / len(values)
    assert mean == pytest.approx(5.0 + gauge.true_error(5.0, ascending=True), abs=0.005)


async def test_reading_beyond_the_scale_is_asked_again_then_refused() -> None:
    class Scripted:
        def __init__(self, answers: list[float]) -> None:
            self.answers = answers
            self.prompts: list[str] = []

        async def read_indication(self, prompt: str, unit: str, resolution: float) -> float:
            self.prompts.append(prompt)
            return self.answers.pop(0)

    reader = Scripted([61.0, 6.1])
    uut = ManualEntry("gauge", reader, low=0.0, high=16.0)
    assert await uut.read() == [6.1]
    assert "61 bar is outside the scale 0..16 bar" in reader.prompts[1]
    reader = Scripted([-5.0, math.nan, 99.0])
    with pytest.raises(InstrumentError, match="no indication within 0..16 bar after 3 attempts"):
        await ManualEntry("gauge", reader, low=0.0, high=16.0).read()
    many = Scripted([1.0, 1.02])
    assert await ManualEntry("gauge", many, high=16.0).read(2) == [1.0, 1.02]
    assert many.prompts == ["gauge: read the dial gauge (reading 1 of 2)",
                            "gauge: read the dial gauge (reading 2 of 2)"]
    with pytest.raises(InstrumentError, match="measures pressure"):
        await ManualEntry("gauge", many).configure("voltage", None)


async def test_terminal_reader_re_asks_on_a_typo_in_a_thread() -> None:
    answers = iter(["1..2", "abc", " 1,24 "])
    asked: list[str] = []
    complaints: list[str] = []

    def ask(question: str) -> str:
        asked.append(question)
        return next(answers)

    reader = TerminalManualReader(ask, complain=complaints.append)
    assert isinstance(reader, ManualReader)
    assert await reader.read_indication("gauge: read the dial gauge", "bar", 0.02) == 1.24
    assert asked[0] == "gauge: read the dial gauge [bar, to 0.02]"
    assert len(asked) == 3 and len(complaints) == 2 and "'abc' is not a number" in complaints[1]
    assert parse_indication("inf") is None and parse_indication("-0.5") == -0.5
    with pytest.raises(InstrumentError, match="after 2 attempts"):
        await TerminalManualReader(lambda q: "x", complain=complaints.append, attempts=2).read_indication("g", "bar", 1)


async def test_simulated_operator_refuses_a_unit_its_scale_does_not_have(sim: RunningBench) -> None:
    with pytest.raises(ValueError, match="scale is in 'bar'"):
        await ManualEntry("gauge", gauge_model(sim), unit="psi").read()


@pytest.mark.parametrize(
    ("change", "field", "mentions"),
    [
        (("resolution = 0.02", "resolution = 0"), "instruments.gauge.simulation.resolution", "> 0"),
        (("scatter = 0.0", "scatter = -0.1"), "instruments.gauge.simulation.scatter", ">= 0"),
        (('unit = "bar"', 'unit = "inHg"'), "instruments.gauge.simulation.unit", "psi"),
        (("full_scale = 16.0", "full_scale = -1.0"), "instruments.gauge.simulation.full_scale", "above minimum"),
        (("hysteresis = 0.04", "hysteris = 0.04"), "instruments.gauge.simulation.hysteris", "hysteresis"),
        (('to = "gauge.input"', 'to = "gauge.output"'), "wiring[0].to", '"gauge.input"'),
    ],
)
def test_bad_gauge_parameters_name_the_field(change: tuple[str, str], field: str, mentions: str) -> None:
    text = BENCH.replace(*change)
    assert text != BENCH
    with pytest.raises(ConfigError) as info:
        SimulatedWorld(parse_bench(text, source="gauge.toml"), VirtualClock())
    assert info.value.field == field
    assert mentions in info.value.problem + info.value.fix
