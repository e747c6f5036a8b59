"""Drivers against the simulators: the exact commands on the wire, and the replies understood.

Over the native TCP path and over pyvisa-py (`TCPIP::...::SOCKET` through VISA), as a user
with a GPIB or USB instrument would use it.
"""

from __future__ import annotations

import pytest

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import InstrumentError
from daq.transports import open_transport
from daq.transports.visa import VisaTransport
from drivers.capabilities import Meter, MeterOverload, Source
from drivers.fluke5522a import Calibrator5522A
from drivers.keysight34465a import Dmm34465A
from simulators.bench_server import start_bench


@pytest.fixture
async def sim(bench_toml):
    clock = VirtualClock()
    running = await start_bench(parse_bench(bench_toml, source="bench.toml"), clock, seed=3)
    running.kept = dict(running.servers)
    yield running
    await running.close()


async def _log(running, name, driver=None, start=0):
    """The commands the simulator received; a `*OPC?` round trip first makes sure writes have landed."""
    if driver is not None:
        assert await driver.transport.query("*OPC?") == "1"
    log = [c for _, c in running.kept[name].commands if c != "*OPC?"]
    return log[start:]


async def test_calibrator_command_sequence(sim):
    cal = Calibrator5522A("calibrator", open_transport(sim.resources["calibrator"]), "SIM5522A-0001")
    assert isinstance(cal, Source)
    await cal.connect()
    assert await _log(sim, "calibrator", cal) == ["*IDN?", "*CLS"]
    await cal.set_output(-1.5, "V")
    await cal.operate()
    assert await _log(sim, "calibrator", cal, 2) == ["OUT -1.5 V", "ERR?", "OPER", "OPER?"]
    assert await cal.output() == (-1.5, "V")
    assert await cal.is_settled() is False  # just stepped: still settling
    await sim.clock.sleep(10.0)
    assert await cal.is_settled() is True
    await cal.set_output(50, "V")  # > 33 V: the real instrument drops to standby
    assert await cal.is_operating() is False
    await cal.operate()
    assert await cal.is_operating() is True
    await cal.safe_state()
    assert (await _log(sim, "calibrator", cal))[-3:] == ["STBY", "OUT 0 V", "OPER?"]
    assert sim.world.calibrator("calibrator").operating is False
    await cal.close()


async def test_calibrator_refuses_beyond_range_without_sending(sim):
    cal = Calibrator5522A("calibrator", open_transport(sim.resources["calibrator"]))
    await cal.connect()
    n = len(await _log(sim, "calibrator", cal))
    with pytest.raises(InstrumentError, match="beyond"):
        await cal.set_output(1100, "V")
    assert len(await _log(sim, "calibrator", cal)) == n
    await cal.close()


async def test_instrument_errors_are_read_from_the_queue(sim):
    dmm = Dmm34465A("dmm", open_transport(sim.resources["dmm"]))
    await dmm.connect()
    await dmm.transport.write("VOLT:DC:BOGUS 3")
    errors = await dmm.errors()
    assert len(errors) == 1 and errors[0].startswith("-113")
    assert await dmm.errors() == []  # the queue was drained
    await dmm.close()


async def test_serial_number_mismatch_is_refused(sim):
    dmm = Dmm34465A("dmm", open_transport(sim.resources["dmm"]), expected_serial="MY-OTHER-UNIT")
    with pytest.raises(InstrumentError, match="does not match"):
        await dmm.connect()
    await dmm.close()


@pytest.mark.parametrize("via_visa", [False, True], ids=["native-tcp", "pyvisa-py"])
async def test_dmm_reads_the_calibrator_through_the_wiring(sim, via_visa):
    res = sim.resources["dmm"]
    transport = VisaTransport(res, timeout=5) if via_visa else open_transport(res)
    dmm = Dmm34465A("dmm", transport, "SIM34465A-0001")
    assert isinstance(dmm, Meter)
    await dmm.connect()
    cal = Calibrator5522A("calibrator", open_transport(sim.resources["calibrator"]))
    await cal.connect()
    await cal.set_output(10.0, "V")
    await cal.operate()
    await sim.clock.sleep(30.0)
    start = len(await _log(sim, "dmm", dmm))
    await dmm.configure("dcv", 10.0, 10)
    values = await dmm.read(4)
    assert await _log(sim, "dmm", dmm, start) == [
        "CONF:VOLT:DC 10", "VOLT:DC:NPLC 10", "SYST:ERR?", "SAMP:COUN 4", "READ?"]
    world = sim.world
    expected = world.calibrator("calibrator").true_output(10.0) + world.true_error("dmm", 10.0, 10.0)
    sigma = world.dmm("dmm").noise_sigma(10.0, 10)
    assert len(values) == 4
    for v in values:
        assert v == pytest.approx(expected, abs=6 * sigma + 1e-6)
    await cal.safe_state()
    await dmm.close()
    await cal.close()


async def test_overload_is_reported_not_averaged(sim):
    dmm = Dmm34465A("dmm", open_transport(sim.resources["dmm"]))
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


async def test_dmm_driver_over_a_pseudo_terminal_serial_port(sim):
    """The same simulator over a pty: the serial transport (pyserial-asyncio-fast) end to end."""
    resource = await sim.serve_pty("dmm")
    assert resource.startswith("ASRL/dev/") and resource.endswith("::INSTR")
    dmm = Dmm34465A("dmm", open_transport(resource, baudrate=115200), "SIM34465A-0001")
    await dmm.connect()
    assert dmm.idn.startswith("Keysight Technologies,34465A,SIM34465A-0001")
    await dmm.configure("dcv", 10.0, 1)
    values = await dmm.read(3)
    assert len(values) == 3 and all(abs(v) < 1e-3 for v in values)  # nothing sourced: reads ~0 V
    await dmm.close()
