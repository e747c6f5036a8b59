"""The generic SCPI driver: map files checked with file/field/fix errors, and maps that reproduce the
dedicated drivers' exact commands against the same simulators (34465A meter, 5522A source, 3458A)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daq.bench import load_bench, parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError, InstrumentError
from daq.transports import open_transport
from drivers.capabilities import Meter, MeterOverload, Source
from drivers.fluke5522a import Calibrator5522A
from drivers.generic_scpi import GenericScpiInstrument, load_scpi_map, parse_scpi_map
from drivers.hp3458a import Hp3458A
from drivers.keysight34465a import Dmm34465A
from drivers.registry import build_driver, check_drivers
from simulators.bench_server import start_bench

DATA = Path(__file__).resolve().parents[1] / "runner" / "data"
MAP_34465A = DATA / "scpi-34465a.toml"
MAP_5522A = DATA / "scpi-5522a.toml"
MAP_3458A = DATA / "scpi-3458a.toml"


@pytest.fixture
async def sim(bench_toml):
    running = await start_bench(parse_bench(bench_toml, source="bench.toml"), VirtualClock(), seed=3)
    yield running
    await running.close()


def _generic(resource: str, map_path: Path, serial: str | None = None, **kw) -> GenericScpiInstrument:
    scpi_map = load_scpi_map(map_path)
    transport = open_transport(resource, read_termination=scpi_map.read_termination,
                               write_termination=scpi_map.write_termination, **kw)
    return GenericScpiInstrument(map_path.stem, transport, scpi_map, serial)


def _log(running, name: str) -> list[str]:
    return [c for _, c in running.servers[name].commands]


# --- the map file ---------------------------------------------------------------------------

def test_shipped_maps_load():
    dmm = load_scpi_map(MAP_34465A)
    assert dmm.functions["dcv"].commands == ("CONF:VOLT:DC {range}", "VOLT:DC:NPLC {nplc}")
    assert dmm.read is not None and dmm.read.parse == "list" and dmm.source_map is None
    cal = load_scpi_map(MAP_5522A)
    assert cal.source_map is not None and cal.source_map.safe_state == ("STBY", "OUT 0 V")
    assert load_scpi_map(MAP_3458A).read.query == "TRIG SGL"  # type: ignore[union-attr]


METER = """
[identify]
query = "*IDN?"
[errors]
query = "SYST:ERR?"
no_error = '^\\+?0,'
[configure.dcv]
commands = ["CONF:VOLT:DC {range}"]
[read]
query = "READ?"
"""


@pytest.mark.parametrize(("text", "field", "says"), [
    ("[identify\n", "(syntax)", ""),
    (METER + "[frobnicate]\nx = 1\n", "frobnicate", "unknown table"),
    (METER.replace('[identify]\nquery = "*IDN?"\n', ""), "identify", "missing"),
    (METER.replace('query = "READ?"', 'query = "READ?"\nparse = "csv"'), "read.parse", "unknown parser"),
    (METER.replace('query = "READ?"', 'query = "READ?"\nparse = "regex"\npattern = "V=[0-9.]+"'),
     "read.pattern", "capture group"),
    (METER.replace("{range}", "{rnage}"), "configure.dcv.commands[0]", "unknown placeholder {rnage}"),
    (METER.replace("no_error = '^\\+?0,'", "no_error = '(['"), "errors.no_error", "not a regular expression"),
    (METER.replace('[read]\nquery = "READ?"\n', ""), "read", "needs a [read] table"),
    (METER + "[meter]\nranges = [10, -1]\n", "meter.ranges", "positive numbers"),
    (METER + "[configure.acv]\ncomands = []\n", "configure.acv.comands", "unknown field"),
    (METER + '[source]\nmax_output = 10\nunit = "V"\nset_output = ["OUT {value} V"]\n',
     "source.safe_state", "missing"),
    (METER + '[source]\nmax_output = 10\nunit = "V"\nset_output = ["OUT {value} V"]\nsafe_state = ["STBY"]\n'
     'settled = { query = "ISR?", expect = "1", mask = 4096 }\n', "source.settled", "exactly one"),
    ('[identify]\nquery = "*IDN?"\n[errors]\nquery = "E?"\nno_error = "^0"\n', "(file)", "neither a meter"),
])
def test_map_mistakes_name_file_field_and_fix(text, field, says):
    with pytest.raises(ConfigError) as caught:
        parse_scpi_map(text, source="maps/my_dmm.toml")
    err = caught.value
    assert err.source == "maps/my_dmm.toml" and err.field == field and says in err.problem
    assert err.fix and "(fix: " in str(err)


BENCH_WITH_MAP = """
[instruments.dmm]
driver = "scpi:maps/dmm.toml"
resource = "TCPIP::127.0.0.1::5025::SOCKET"
"""


def test_bench_entry_names_a_map_relative_to_the_bench_file(tmp_path):
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "dmm.toml").write_text(MAP_34465A.read_text())
    bench_file = tmp_path / "bench.toml"
    bench_file.write_text(BENCH_WITH_MAP)
    bench = load_bench(bench_file)
    check_drivers(bench)
    driver = build_driver(bench.instruments["dmm"], bench.source)
    assert isinstance(driver, GenericScpiInstrument) and isinstance(driver, Meter)
    assert driver.map.name == "Keysight 34465A (generic SCPI map)"
    (tmp_path / "maps" / "dmm.toml").write_text(METER.replace("{range}", "{rnage}"))
    with pytest.raises(ConfigError, match=r"dmm\.toml: configure\.dcv\.commands\[0\]"):
        check_drivers(bench)
    bench_file.write_text(BENCH_WITH_MAP.replace("maps/dmm.toml", "maps/missing.toml"))
    with pytest.raises(ConfigError, match="no such SCPI map file") as caught:
        check_drivers(load_bench(bench_file))
    assert caught.value.source == str(tmp_path / "maps" / "missing.toml")


# --- against the simulators -------------------------------------------------------------------

async def _dmm_session(dmm: Meter) -> list[list[float]]:
    await dmm.connect()
    await dmm.configure("dcv", 10.0, 10)
    first = await dmm.read(4)
    second = await dmm.read(4)
    await dmm.configure("dcv", None, 1)
    third = await dmm.read(1)
    return [first, second, third]


async def test_generic_34465a_sends_what_the_dedicated_driver_sends(sim):
    cal = Calibrator5522A("calibrator", open_transport(sim.resources["calibrator"]))
    await cal.connect()
    await cal.set_output(10.0, "V")
    await cal.operate()
    await sim.clock.sleep(30.0)
    res = sim.resources["dmm"]
    dedicated = Dmm34465A("dmm", open_transport(res), "SIM34465A-0001")
    readings_dedicated = await _dmm_session(dedicated)
    await dedicated.close()
    n = len(_log(sim, "dmm"))
    generic = _generic(res, MAP_34465A, "SIM34465A-0001")
    readings_generic = await _dmm_session(generic)
    await generic.close()
    log = _log(sim, "dmm")
    assert log[n:] == log[:n]
    assert log[:n] == ["*IDN?", "*CLS", "CONF:VOLT:DC 10", "VOLT:DC:NPLC 10", "SYST:ERR?", "SAMP:COUN 4", "READ?",
                       "READ?", "CONF:VOLT:DC AUTO", "VOLT:DC:NPLC 1", "SYST:ERR?", "READ?"]
    world = sim.world
    expected = world.calibrator("calibrator").true_output(10.0) + world.true_error("dmm", 10.0, 10.0)
    for readings in (readings_dedicated, readings_generic):
        assert [len(r) for r in readings] == [4, 4, 1]
        for v in readings[0] + readings[1]:
            assert v == pytest.approx(expected, abs=6 * world.dmm("dmm").noise_sigma(10.0, 10) + 1e-6)
    assert generic.resolution(10.0) == dedicated.resolution(10.0)
    await cal.safe_state()
    await cal.close()


async def test_generic_meter_errors_overload_and_serial(sim):
    res = sim.resources["dmm"]
    with pytest.raises(InstrumentError, match="does not match"):
        await _generic(res, MAP_34465A, "MY-OTHER-UNIT").connect()
    dmm = _generic(res, MAP_34465A)
    await dmm.connect()
    await dmm.transport.write("VOLT:DC:BOGUS 3")
    assert [e[:4] for e in await dmm.errors()] == ["-113"]
    with pytest.raises(InstrumentError, match="not in .*scpi-34465a.toml"):
        await dmm.configure("acv", 1.0)
    with pytest.raises(InstrumentError, match="no range holds 2000"):
        await dmm.configure("dcv", 2000.0)
    cal = Calibrator5522A("calibrator", open_transport(sim.resources["calibrator"]))
    await cal.connect()
    await cal.set_output(5.0, "V")
    await cal.operate()
    await sim.clock.sleep(10.0)
    await dmm.configure("dcv", 1.0, 1)
    with pytest.raises(MeterOverload):
        await dmm.read(1)
    with pytest.raises(InstrumentError, match="has no \\[source\\]"):
        await dmm.set_output(1.0, "V")
    await dmm.safe_state()  # a meter-only map has nothing to make safe: the runner calls it on all
    await cal.safe_state()
    await cal.close()
    await dmm.close()


async def test_generic_5522a_sets_output_and_goes_to_safe_state(sim):
    model = sim.world.calibrator("calibrator")
    cal = _generic(sim.resources["calibrator"], MAP_5522A, "SIM5522A-0001")
    assert isinstance(cal, Source) and cal.max_output == 1020.0
    await cal.connect()
    await cal.set_output(-1500, "mV")
    await cal.operate()
    assert _log(sim, "calibrator") == ["*IDN?", "*CLS", "OUT -1.5 V", "ERR?", "OPER", "OPER?"]
    assert await cal.output() == (-1.5, "V")
    assert model.operating and model.nominal == -1.5
    assert await cal.is_settled() is False
    await sim.clock.sleep(10.0)
    assert await cal.is_settled() is True
    assert sim.world.terminal_at("calibrator.output", sim.clock.now()) == pytest.approx(
        model.true_output(-1.5), abs=1e-6)
    with pytest.raises(InstrumentError, match="beyond the 1020 V"):
        await cal.set_output(1100, "V")
    with pytest.raises(InstrumentError, match="'kV' not supported"):
        await cal.set_output(1, "kV")
    await cal.safe_state()
    assert await cal.transport.query("*OPC?") == "1"
    assert _log(sim, "calibrator")[-3:-1] == ["STBY", "OUT 0 V"]
    assert model.operating is False and model.nominal == 0.0
    assert sim.world.terminal_at("calibrator.output", sim.clock.now()) == 0.0
    await cal.close()


BENCH_3458A = """
[instruments.refdmm]
driver = "hp3458a"
resource = "TCPIP::127.0.0.1::0::SOCKET"
visa = true
"""


async def test_a_map_for_the_non_scpi_3458a_over_pyvisa_py():
    running = await start_bench(parse_bench(BENCH_3458A, source="bench.toml"), VirtualClock(), seed=1)
    try:
        res = running.resources["refdmm"]
        dedicated = Hp3458A("refdmm", open_transport(res))
        await dedicated.connect()
        n = len(_log(running, "refdmm"))
        await dedicated.configure("dcv", 10.0, 100)
        await dedicated.read(2)
        await dedicated.close()
        m = len(_log(running, "refdmm"))
        generic = _generic(res, MAP_3458A, visa=True)
        await generic.connect()
        await generic.configure("dcv", 10.0, 100)
        values = await generic.read(2)  # a query: every earlier write has landed
        await generic.close()
        log = _log(running, "refdmm")
        assert log[m:m + 2] == ["ID?", "END ALWAYS"]  # identify, then `after`
        assert log[m + 2:] == log[n:m] == [
            "PRESET NORM", "END ALWAYS", "DCV 10", "NPLC 100", "NDIG 8", "ERRSTR?", "TRIG SGL", "TRIG SGL"]
        assert len(values) == 2 and all(abs(v) < 1e-5 for v in values)
    finally:
        await running.close()


async def test_a_dc_voltage_run_through_generic_scpi_maps(tmp_path, bench_toml, procedure_toml):
    """A lab's map files stand in for both dedicated drivers in a whole calibration run."""
    from daq.clock import VirtualClock
    from procedures.dc_voltage import parse_procedure
    from runner.session import SessionOptions, run_session
    from simulators.bench_server import start_bench

    data = Path(__file__).resolve().parents[1] / "runner" / "data"
    clock = VirtualClock()
    running = await start_bench(parse_bench(bench_toml, source="bench.toml"), clock)
    try:
        text = running.bench.text
        for res in running.resources.values():  # in bench order: calibrator, then dmm
            text = text.replace('resource = "TCPIP::127.0.0.1::0::SOCKET"', f'resource = "{res}"', 1)
        text = text.replace('driver = "fluke5522a"', f'driver = "scpi:{data / "scpi-5522a.toml"}"').replace(
            'driver = "keysight34465a"', f'driver = "scpi:{data / "scpi-34465a.toml"}"')
        bench = parse_bench(text, source=str(tmp_path / "bench.toml"))
        outcome = await run_session(bench, parse_procedure(procedure_toml, source="p.toml"),
                                    SessionOptions(db=str(tmp_path / "g.sqlite"), live=False, assume_yes=True),
                                    clock=clock)
    finally:
        await running.close()
    assert outcome.status == "completed" and len(outcome.results) == 5
    for r, p in zip(outcome.results, outcome.procedure.points, strict=True):
        assert abs(r["error"] - running.world.true_error("dmm", p.nominal, p.range_)) <= 2 * r["U"]
    assert running.world.calibrator("calibrator").operating is False


async def test_daq_sim_stands_in_for_a_map_driven_instrument(bench_toml):
    """`simulator = "..."` lets `daq sim` serve an instrument that the bench reaches through a map file."""
    data = Path(__file__).resolve().parents[1] / "runner" / "data"
    text = bench_toml.replace('driver = "keysight34465a"', f'driver = "scpi:{data / "scpi-34465a.toml"}"').replace(
        "[instruments.dmm.simulation]\n", '[instruments.dmm.simulation]\nsimulator = "keysight34465a"\n')
    running = await start_bench(parse_bench(text, source="bench.toml"), VirtualClock())
    try:
        assert running.world.true_error("dmm", 10.0, 10.0) != 0.0
        assert "dmm" in running.resources
    finally:
        await running.close()
    with pytest.raises(ConfigError, match="simulator"):
        await start_bench(parse_bench(text.replace('simulator = "keysight34465a"', 'simulator = "hp9999"'),
                                      source="bench.toml"), VirtualClock())
