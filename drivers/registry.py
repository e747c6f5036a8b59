"""Driver names as written in bench files, mapped to the classes that speak to them."""

from __future__ import annotations

import math

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
from drivers.manual_entry import ManualEntry, ManualReader, TerminalManualReader
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


MANUAL_DRIVER = "manual_entry"


def _manual_entry(entry: InstrumentEntry, bench_source: str, reader: ManualReader | None) -> ManualEntry:
    """A UUT the operator reads: its scale and resolution come from `[instruments.X.settings]`."""
    where = f"instruments.{entry.name}"
    if entry.driver != MANUAL_DRIVER:
        raise ConfigError(bench_source, f"{where}.driver", f"a MANUAL resource needs driver {MANUAL_DRIVER!r}",
                          f'write driver = "{MANUAL_DRIVER}"')
    known = {"quantity", "unit", "resolution", "low", "high", "description"}
    unknown = sorted(set(entry.settings) - known)
    if unknown:
        raise ConfigError(bench_source, f"{where}.settings.{unknown[0]}", "unknown setting",
                          f"use {', '.join(sorted(known))}")
    try:
        return ManualEntry(
            entry.name, reader if reader is not None else TerminalManualReader(),
            quantity=str(entry.settings.get("quantity", "pressure")), unit=str(entry.settings.get("unit", "bar")),
            reading_resolution=float(entry.settings.get("resolution", 0.02)),
            low=float(entry.settings.get("low", 0.0)), high=float(entry.settings.get("high", math.inf)),
            description=str(entry.settings.get("description", "dial gauge")),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(bench_source, f"{where}.settings", str(exc),
                          "give resolution > 0 and low < high as numbers") from exc


def check_drivers(bench: Bench) -> None:
    """Reject unknown driver names before anything is opened."""
    for entry in bench.instruments.values():
        if entry.address.kind == "manual" or entry.driver == MANUAL_DRIVER:
            if entry.address.kind != "manual":
                raise ConfigError(bench.source, f"instruments.{entry.name}.resource",
                                  "a manually read UUT has no interface", 'write resource = "MANUAL"')
            _manual_entry(entry, bench.source, None)
            continue
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


def build_driver(entry: InstrumentEntry, bench_source: str = "<bench>", *,
                 manual_reader: ManualReader | None = None) -> ScpiInstrument | ModbusDriver | ManualEntry:
    """The driver for one bench entry, over the transport its resource string selects (not yet connected).

    `manual_reader` is who reads a MANUAL instrument: the operator at the terminal by default,
    the simulated operator in a simulated run."""
    if entry.address.kind == "manual":
        return _manual_entry(entry, bench_source, manual_reader)
    if entry.address.kind.startswith("modbus-"):
        return build_modbus_driver(entry)
    if entry.driver.startswith(SCPI_MAP_PREFIX):
        return build_generic_scpi_driver(entry, bench_source)  # a map path relative to the bench file
    cls = DRIVERS[entry.driver]
    transport = open_transport(entry.resource, visa=entry.visa, timeout=entry.timeout)
    return cls(entry.name, transport, entry.serial)
