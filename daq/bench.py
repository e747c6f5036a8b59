"""The bench file: which instruments are on the bench, how they are reached, how they are wired.

Both the runner (to open drivers) and the simulators (to stand in for the instruments) read
the same file, so it lives in the core. Structure is checked here; what a driver name or a
simulation parameter means is checked by the package that owns it, with the same kind of
error: file, field, fix.

```toml
[bench]
name = "DC voltage bench"

[instruments.calibrator]
driver = "fluke5522a"
resource = "TCPIP::127.0.0.1::5025::SOCKET"   # port 0: a simulator picks a free port
serial = "SIM5522A-0001"                       # checked against *IDN? on connect
visa = false                                   # true: go through pyvisa even for sockets

[instruments.calibrator.certificate.dcv]        # the reference's stated uncertainty
k = 2.0
ranges = [{ upto = 0.33, ppm = 15, floor = 1e-6 }, ...]

[instruments.calibrator.simulation]             # read only by `daq sim`
time_constant = 0.4

[[wiring]]
from = "calibrator.output"
to = "dmm.input"

[environment]                                   # optional: the room's conditions, logged per point
monitor = "room"                                # an instrument above whose driver reads ambient conditions
```
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daq.errors import ConfigError
from daq.transports.resource import ResourceAddress, parse_resource


@dataclass(frozen=True)
class InstrumentEntry:
    name: str
    driver: str
    resource: str
    address: ResourceAddress
    serial: str | None = None
    visa: bool = False
    timeout: float = 5.0
    certificate: dict[str, Any] = field(default_factory=dict)
    simulation: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    """Driver options that are facts of the instrument (a manual gauge's unit, scale, resolution)."""


@dataclass(frozen=True)
class Wire:
    source: str  # "instrument.terminal"
    sink: str


@dataclass(frozen=True)
class Bench:
    name: str
    source: str
    text: str
    instruments: dict[str, InstrumentEntry]
    wiring: tuple[Wire, ...]
    seed: int | None = None
    environment_monitor: str | None = None
    """The instrument read for the room's conditions around every point (ISO/IEC 17025 7.8.4.1), if any."""

    def with_resources(self, resources: dict[str, str]) -> Bench:
        """The same bench with some resource strings replaced (a simulator's real ports)."""
        new = {
            name: dataclasses.replace(entry, resource=resources[name], address=parse_resource(resources[name]))
            if name in resources else entry
            for name, entry in self.instruments.items()
        }
        return dataclasses.replace(self, instruments=new)

    def wired_to(self, sink: str) -> str | None:
        """The source terminal wired to `sink` ("dmm.input" -> "calibrator.output")."""
        for wire in self.wiring:
            if wire.sink == sink:
                return wire.source
        return None


def load_bench(path: str | Path) -> Bench:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(str(p), "(file)", "no such bench file", "give the path of a bench TOML file") from exc
    except OSError as exc:
        raise ConfigError(str(p), "(file)", f"cannot read: {exc.strerror}", "check the path and permissions") from exc
    return parse_bench(text, source=str(p))


def _require(table: dict[str, Any], key: str, kind: type | tuple[type, ...], source: str, where: str, fix: str) -> Any:
    if key not in table:
        raise ConfigError(source, f"{where}.{key}", "missing", fix)
    value = table[key]
    if not isinstance(value, kind):
        raise ConfigError(source, f"{where}.{key}", f"expected {getattr(kind, '__name__', kind)}, got {value!r}", fix)
    return value


def parse_bench(text: str, *, source: str = "<bench>") -> Bench:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc), "fix the TOML syntax at the line shown") from exc
    bench_table = data.get("bench", {})
    if not isinstance(bench_table, dict):
        raise ConfigError(source, "bench", "must be a table", "write [bench] with name = \"...\"")
    name = bench_table.get("name", Path(source).stem)
    seed = bench_table.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise ConfigError(source, "bench.seed", f"expected an integer, got {seed!r}", "write e.g. seed = 1")
    instruments_table = data.get("instruments")
    if not isinstance(instruments_table, dict) or not instruments_table:
        raise ConfigError(source, "instruments", "no instruments declared",
                          'add [instruments.NAME] with driver = "..." and resource = "..."')
    known = {"driver", "resource", "serial", "visa", "timeout", "certificate", "simulation", "settings"}
    instruments: dict[str, InstrumentEntry] = {}
    for inst_name, table in instruments_table.items():
        where = f"instruments.{inst_name}"
        if not isinstance(table, dict):
            raise ConfigError(source, where, "must be a table", f"write [instruments.{inst_name}]")
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(source, f"{where}.{unknown[0]}", "unknown field",
                              f"use one of {', '.join(sorted(known))}")
        driver = _require(table, "driver", str, source, where, 'name the driver, e.g. driver = "keysight34465a"')
        resource = _require(table, "resource", str, source, where,
                            'give a VISA resource string, e.g. "TCPIP::127.0.0.1::5025::SOCKET"')
        address = parse_resource(resource, source=source, field=f"{where}.resource")
        serial = table.get("serial")
        if serial is not None and not isinstance(serial, str):
            raise ConfigError(source, f"{where}.serial", f"expected a string, got {serial!r}",
                              'quote it: serial = "123"')
        visa = table.get("visa", False)
        if not isinstance(visa, bool):
            raise ConfigError(source, f"{where}.visa", f"expected true or false, got {visa!r}", "write visa = true")
        timeout = table.get("timeout", 5.0)
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError(source, f"{where}.timeout", f"expected seconds > 0, got {timeout!r}",
                              "write timeout = 5.0")
        for sub in ("certificate", "simulation", "settings"):
            if not isinstance(table.get(sub, {}), dict):
                raise ConfigError(source, f"{where}.{sub}", "must be a table", f"write [{where}.{sub}]")
        instruments[inst_name] = InstrumentEntry(
            inst_name, driver, resource, address, serial, visa, float(timeout),
            dict(table.get("certificate", {})), dict(table.get("simulation", {})), dict(table.get("settings", {})),
        )
    wires: list[Wire] = []
    wiring = data.get("wiring", [])
    if not isinstance(wiring, list):
        raise ConfigError(source, "wiring", "must be an array of tables",
                          'write [[wiring]] from = "a.output" to = "b.input"')
    for i, wire in enumerate(wiring):
        where = f"wiring[{i}]"
        if not isinstance(wire, dict):
            raise ConfigError(source, where, "must be a table", 'write [[wiring]] from = "a.output" to = "b.input"')
        ends = []
        for key in ("from", "to"):
            end = _require(wire, key, str, source, where, 'write e.g. from = "calibrator.output"')
            inst = end.split(".", 1)[0]
            if inst not in instruments:
                raise ConfigError(source, f"{where}.{key}", f"no instrument named {inst!r}",
                                  f"use one of {', '.join(sorted(instruments))}")
            if "." not in end:
                raise ConfigError(source, f"{where}.{key}", f"{end!r} names no terminal", f'write "{inst}.output"')
            ends.append(end)
        wires.append(Wire(ends[0], ends[1]))
    monitor = _environment_monitor(data.get("environment"), instruments, source)
    return Bench(str(name), source, text, instruments, tuple(wires), seed, monitor)


def _environment_monitor(table: Any, instruments: dict[str, InstrumentEntry], source: str) -> str | None:
    """`[environment] monitor = "room"`: which instrument of the bench logs the room's conditions.

    Only the structure is checked here; whether that instrument's driver can read the room is
    the runner's check (it knows the drivers)."""
    if table is None:
        return None
    example = 'write [environment] with monitor = "NAME", NAME an instrument of this bench'
    if not isinstance(table, dict):
        raise ConfigError(source, "environment", "must be a table", example)
    unknown = sorted(set(table) - {"monitor"})
    if unknown:
        raise ConfigError(source, f"environment.{unknown[0]}", "unknown field", "use monitor")
    monitor = _require(table, "monitor", str, source, "environment", example)
    if monitor not in instruments:
        raise ConfigError(source, "environment.monitor", f"no instrument named {monitor!r}",
                          f"use one of {', '.join(sorted(instruments))}, or declare [instruments.{monitor}]")
    return str(monitor)
