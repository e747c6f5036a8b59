"""Driver names as written in bench files, mapped to the classes that speak to them."""

from __future__ import annotations

from daq.bench import Bench, InstrumentEntry
from daq.errors import ConfigError
from daq.transports.resource import open_transport
from drivers.bath import TemperatureBath
from drivers.fluke1529 import Readout1502A, Readout1529
from drivers.fluke5522a import Calibrator5522A
from drivers.keysight34465a import Dmm34465A
from drivers.modbus_map import ModbusDriver, build_modbus_driver
from drivers.scpi import ScpiInstrument

DRIVERS: dict[str, type[ScpiInstrument]] = {
    "fluke5522a": Calibrator5522A,
    "keysight34465a": Dmm34465A,
    "fluke_bath": TemperatureBath,
    "fluke1529": Readout1529,
    "hart1502a": Readout1502A,
}


def check_drivers(bench: Bench) -> None:
    """Reject unknown driver names before anything is opened."""
    for entry in bench.instruments.values():
        if entry.address.kind.startswith("modbus-"):
            build_modbus_driver(entry, bench.source)  # names the driver or map-file mistake; opens nothing
            continue
        if entry.driver not in DRIVERS:
            raise ConfigError(
                bench.source, f"instruments.{entry.name}.driver", f"unknown driver {entry.driver!r}",
                f"use one of {', '.join(sorted(DRIVERS))}",
            )


def build_driver(entry: InstrumentEntry) -> ScpiInstrument | ModbusDriver:
    """The driver for one bench entry, over the transport its resource string selects (not yet connected)."""
    if entry.address.kind.startswith("modbus-"):
        return build_modbus_driver(entry)
    cls = DRIVERS[entry.driver]
    transport = open_transport(entry.resource, visa=entry.visa, timeout=entry.timeout)
    return cls(entry.name, transport, entry.serial)
