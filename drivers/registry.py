"""Driver names as written in bench files, mapped to the classes that speak to them."""

from __future__ import annotations

from daq.bench import Bench, InstrumentEntry
from daq.errors import ConfigError
from daq.transports.resource import open_transport
from drivers.bath import TemperatureBath
from drivers.fluke1529 import Readout1502A, Readout1529
from drivers.fluke5522a import Calibrator5522A
from drivers.generic_scpi import SCPI_MAP_PREFIX, build_generic_scpi_driver, check_generic_scpi_entry
from drivers.hmt330 import Hmt330
from drivers.hp3458a import Hp3458A
from drivers.keysight34465a import Dmm34465A
from drivers.mettler_sics import MettlerSicsBalance
from drivers.modbus_map import ModbusDriver, build_modbus_driver
from drivers.pace import PaceController
from drivers.scpi import ScpiInstrument

DRIVERS: dict[str, type[ScpiInstrument]] = {
    "druck_pace": PaceController,
    "vaisala_hmt330": Hmt330,
    "mettler_sics": MettlerSicsBalance,
    "fluke5522a": Calibrator5522A,
    "keysight34465a": Dmm34465A,
    "fluke_bath": TemperatureBath,
    "fluke1529": Readout1529,
    "hart1502a": Readout1502A,
    "hp3458a": Hp3458A,
}


def check_drivers(bench: Bench) -> None:
    """Reject unknown driver names before anything is opened."""
    for entry in bench.instruments.values():
        if entry.address.kind.startswith("modbus-"):
            build_modbus_driver(entry, bench.source)  # names the driver or map-file mistake; opens nothing
            continue
        if entry.driver.startswith(SCPI_MAP_PREFIX):
            check_generic_scpi_entry(entry, bench.source)  # names the map-file mistake; opens nothing
            continue
        if entry.driver not in DRIVERS:
            raise ConfigError(
                bench.source, f"instruments.{entry.name}.driver", f"unknown driver {entry.driver!r}",
                f"use one of {', '.join(sorted(DRIVERS))}",
            )


def driver_class_of(entry: InstrumentEntry, bench_source: str = "<bench>") -> type | None:
    """The class (or, for a generic SCPI map, a class-like view of the map) whose limits a
    procedure checks before anything is opened: a source's `max_output`, a meter's `ranges`."""
    if entry.driver.startswith(SCPI_MAP_PREFIX):
        scpi_map = check_generic_scpi_entry(entry, bench_source)
        max_output = scpi_map.source_map.max_output if scpi_map.source_map is not None else 0.0
        return type(f"ScpiMap[{entry.name}]", (), {"ranges": tuple(scpi_map.ranges), "max_output": max_output})
    return DRIVERS.get(entry.driver)


def build_driver(entry: InstrumentEntry, bench_source: str = "<bench>") -> ScpiInstrument | ModbusDriver:
    """The driver for one bench entry, over the transport its resource string selects (not yet connected)."""
    if entry.address.kind.startswith("modbus-"):
        return build_modbus_driver(entry)
    if entry.driver.startswith(SCPI_MAP_PREFIX):
        return build_generic_scpi_driver(entry, bench_source)  # a map path relative to the bench file
    cls = DRIVERS[entry.driver]
    transport = open_transport(entry.resource, visa=entry.visa, timeout=entry.timeout)
    return cls(entry.name, transport, entry.serial)
