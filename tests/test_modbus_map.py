"""The generic Modbus register-map driver: a map file drives the simulated Eurotherm; bad maps are named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daq.clock import VirtualClock
from daq.errors import ConfigError, InstrumentError
from daq.transports.modbus import ModbusTransport
from drivers.capabilities import Controller
from drivers.modbus_map import ModbusMapDriver, build_modbus_driver, load_register_map, parse_register_map
from simulators.eurotherm3200 import Eurotherm3200 as Model
from simulators.modbus_server import ModbusSimServer

EUROTHERM_MAP = """
[device]
name = "Eurotherm 3200 by map"
word_order = "big"

[controller]
setpoint = "setpoint"
value = "pv"
output = "output"

[quantities.pv]
address = 1
type = "int16"
scale = 0.1
unit = "degC"
access = "read"

[quantities.setpoint]
address = 2
type = "int16"
scale = 0.1
unit = "degC"
access = "read-write"
minimum = -50.0
maximum = 400.0
safe_value = 20.0

[quantities.output]
address = 3
type = "int16"
scale = 0.1
unit = "%"

[quantities.pv_float]
address = 0x8002
type = "float32"
unit = "degC"

[quantities.setpoint_float]
address = 0x8004
type = "float32"
word_order = "big"
unit = "degC"
access = "read-write"

[quantities.working_sp_raw]
address = 5
type = "uint16"
"""


@pytest.fixture(params=["tcp", "rtu"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Model, ModbusSimServer, VirtualClock]]:
    clock = VirtualClock()
    model = Model(clock)
    server = ModbusSimServer(model, unit=1)
    await (server.start_tcp() if request.param == "tcp" else server.start_rtu())
    yield model, server, clock
    await server.close()


async def test_map_driver_reads_and_writes_the_controller(
    served: tuple[Model, ModbusSimServer, VirtualClock], tmp_path: Path
) -> None:
    model, server, clock = served
    path = tmp_path / "eurotherm.toml"
    path.write_text(EUROTHERM_MAP)
    driver = ModbusMapDriver("oven", ModbusTransport(server.resource), load_register_map(path))
    assert isinstance(driver, Controller)
    try:
        await driver.connect()
        assert driver.idn.startswith("Eurotherm 3200 by map")
        await driver.set_setpoint(120.5)
        assert model.target_setpoint == pytest.approx(120.5)
        await clock.sleep(90.0)
        values = await driver.read_all()
        assert values["setpoint"] == pytest.approx(120.5)
        assert values["setpoint_float"] == pytest.approx(120.5)
        assert values["pv"] == pytest.approx(round(values["pv_float"], 1), abs=1e-9)
        assert values["pv"] == pytest.approx(model.pv, abs=0.05)
        assert values["working_sp_raw"] == 1205
        assert await driver.output() == pytest.approx(model.output_percent, abs=0.05)
        assert driver.unit_of("output") == "%"
        await driver.write("setpoint_float", 99.75)
        assert await driver.setpoint() == pytest.approx(99.8)  # int16 view at one decimal
        with pytest.raises(InstrumentError, match="read-only"):
            await driver.write("pv", 10.0)
        with pytest.raises(InstrumentError, match="outside"):
            await driver.set_setpoint(450.0)
        with pytest.raises(InstrumentError, match="no quantity 'humidity'"):
            await driver.read("humidity")
        await driver.safe_state()
        assert model.target_setpoint == 20.0
    finally:
        await driver.close()


async def test_bench_names_a_map_file_relative_to_itself(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "oven.toml").write_text(EUROTHERM_MAP)

    class Entry:
        name = "oven"
        driver = "modbus-map:maps/oven.toml"
        resource = "MODBUS-TCP::127.0.0.1::502::1"
        timeout = 1.0
        serial = None

    driver = build_modbus_driver(Entry(), str(tmp_path / "bench.toml"))
    assert isinstance(driver, ModbusMapDriver)
    assert "setpoint" in driver.map.quantities
    Entry.driver = "modbus-map:maps/missing.toml"
    with pytest.raises(ConfigError, match="missing.toml: \\(file\\): no such register-map file"):
        build_modbus_driver(Entry(), str(tmp_path / "bench.toml"))
    Entry.driver = "keysight34465a"
    with pytest.raises(ConfigError, match="instruments.oven.driver: no Modbus driver"):
        build_modbus_driver(Entry(), str(tmp_path / "bench.toml"))


BASE = """
[quantities.pv]
address = 1
type = "int16"
scale = 0.1
access = "read"
"""


@pytest.mark.parametrize(
    ("text", "field", "problem", "fix"),
    [
        ("", "quantities", "no quantities declared", "add [quantities.NAME]"),
        ("[quantities.pv]\ntype = \"int16\"\n", "quantities.pv.address", "missing", "address = 1"),
        ("[quantities.pv]\naddress = 70000\ntype = \"int16\"\n", "quantities.pv.address", "0..65535", "0x8002"),
        ("[quantities.pv]\naddress = 1\ntype = \"int32\"\n", "quantities.pv.type", "unknown type 'int32'",
         'type = "int16"'),
        ("[quantities.pv]\naddress = 1\n", "quantities.pv.type", "missing", 'type = "int16"'),
        (BASE.replace("scale = 0.1", "scale = 0"), "quantities.pv.scale", "must not be 0", "scale = 0.1"),
        (BASE.replace("scale = 0.1", 'scale = "0.1"'), "quantities.pv.scale", "expected a number", "scale = 0.1"),
        (BASE.replace('access = "read"', 'access = "write"'), "quantities.pv.access", "unknown access",
         '"read-write"'),
        (BASE + "safe_value = 20.0\n", "quantities.pv.safe_value", "read-only", 'access = "read-write"'),
        (BASE + "registr = 3\n", "quantities.pv.registr", "unknown field", "address, type"),
        (BASE + 'word_order = "big"\n', "quantities.pv.word_order", "no word order", "float32"),
        (BASE + "[quantities.sp]\naddress = 1\ntype = \"int16\"\n", "quantities.sp.address",
         "already used by 'pv'", "own registers"),
        ('[device]\nword_order = "middle"\n' + BASE, "device.word_order", "unknown word order", '"big"'),
        (BASE.replace('access = "read"', 'access = "read-write"') + "safe_value = 5000.0\n",
         "quantities.pv.safe_value", "beyond int16", "check scale"),
        (BASE + '[controller]\nsetpoint = "pv"\nvalue = "pv"\n', "controller.setpoint", "read-only",
         'access = "read-write"'),
        (BASE + '[controller]\nsetpoint = "sp"\n', "controller.setpoint", "no quantity named 'sp'", "use one of pv"),
        (BASE + "[quantities\n", "(syntax)", "", "fix the TOML syntax"),
    ],
)
def test_bad_map_files_name_file_field_and_fix(text: str, field: str, problem: str, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_register_map(text, source="maps/oven.toml")
    err = info.value
    assert err.source == "maps/oven.toml"
    assert err.field == field
    assert problem in err.problem
    assert fix in err.fix
    assert str(err).startswith(f"maps/oven.toml: {field}: ")
