"""A generic Modbus instrument described by a register-map file: a lab adds one without Python.

The map file (TOML):

```toml
[device]
name = "Eurotherm 3200 by map"   # optional, for messages
word_order = "big"               # default word order of float32 quantities: "big" (high word first) or "little"

[controller]                     # optional: makes the instrument a Controller for procedures
setpoint = "setpoint"            # a writable quantity
value = "pv"                     # the controlled quantity as the instrument measures it
output = "output"                # optional, output %

[quantities.pv]
address = 1                      # holding register, protocol (0-based) address; 0x8002 is fine in TOML
type = "int16"                   # int16 | uint16 | float32 (two registers)
scale = 0.1                      # engineering value = raw * scale (int types; float32 default 1)
unit = "degC"
access = "read"                  # "read" or "read-write"

[quantities.setpoint]
address = 2
type = "int16"
scale = 0.1
unit = "degC"
access = "read-write"
minimum = -50.0                  # optional write limits, checked before anything is sent
maximum = 500.0
safe_value = 20.0                # optional: written by safe_state() (writable quantities only)

[quantities.pv_float]
address = 0x8002
type = "float32"
word_order = "big"               # optional per quantity
unit = "degC"
access = "read"
```

Every mistake is a `ConfigError` naming the file, the field (`quantities.pv.type`) and the fix,
raised when the map is loaded, before the instrument is touched.

In a bench file the map is named by the driver: `driver = "modbus-map:maps/eurotherm3200.toml"`
(a path relative to the bench file); `driver = "eurotherm3200"` picks the built-in driver.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daq.errors import ConfigError, InstrumentError
from daq.transports.modbus import WORD_ORDERS, ModbusTransport, WordOrder
from drivers.eurotherm3200 import Eurotherm3200

TYPES = ("int16", "uint16", "float32")
ACCESS = ("read", "read-write")
_QUANTITY_FIELDS = ("address", "type", "scale", "unit", "access", "word_order", "safe_value", "minimum", "maximum")
_CONTROLLER_ROLES = ("setpoint", "value", "output")
MAP_DRIVER_PREFIX = "modbus-map:"


@dataclass(frozen=True)
class RegisterQuantity:
    name: str
    address: int
    type: str
    scale: float = 1.0
    unit: str = ""
    writable: bool = False
    word_order: WordOrder = "big"
    safe_value: float | None = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class RegisterMap:
    source: str
    name: str
    quantities: dict[str, RegisterQuantity]
    controller: dict[str, str]


def load_register_map(path: str | Path) -> RegisterMap:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(str(p), "(file)", "no such register-map file",
                          "give the path of a Modbus map TOML file (relative to the bench file)") from exc
    except OSError as exc:
        raise ConfigError(str(p), "(file)", f"cannot read: {exc.strerror}", "check the path and permissions") from exc
    return parse_register_map(text, source=str(p))


def _number(value: Any, source: str, field: str, fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(source, field, f"expected a number, got {value!r}", fix)
    return float(value)


def _word_order(value: Any, source: str, field: str) -> WordOrder:
    for order in WORD_ORDERS:
        if value == order:
            return order
    raise ConfigError(source, field, f"unknown word order {value!r}",
                      'write word_order = "big" (high word first) or "little"')


def parse_register_map(text: str, *, source: str = "<map>") -> RegisterMap:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc), "fix the TOML syntax at the line shown") from exc
    unknown_top = sorted(set(data) - {"device", "controller", "quantities"})
    if unknown_top:
        raise ConfigError(source, unknown_top[0], "unknown table", "use [device], [controller] and [quantities.NAME]")
    device = data.get("device", {})
    if not isinstance(device, dict):
        raise ConfigError(source, "device", "must be a table", 'write [device] with name = "..."')
    unknown_device = sorted(set(device) - {"name", "word_order"})
    if unknown_device:
        raise ConfigError(source, f"device.{unknown_device[0]}", "unknown field", "use name or word_order")
    name = device.get("name", Path(source).stem)
    if not isinstance(name, str):
        raise ConfigError(source, "device.name", f"expected a string, got {name!r}", 'write name = "My oven"')
    default_order = _word_order(device.get("word_order", "big"), source, "device.word_order")

    table = data.get("quantities")
    if not isinstance(table, dict) or not table:
        raise ConfigError(source, "quantities", "no quantities declared",
                          'add [quantities.NAME] with address = 1, type = "int16", access = "read"')
    quantities: dict[str, RegisterQuantity] = {}
    used: dict[int, str] = {}
    for qname, q in table.items():
        where = f"quantities.{qname}"
        if not isinstance(q, dict):
            raise ConfigError(source, where, "must be a table", f"write [quantities.{qname}] with address = ...")
        unknown = sorted(set(q) - set(_QUANTITY_FIELDS))
        if unknown:
            raise ConfigError(source, f"{where}.{unknown[0]}", "unknown field",
                              f"use one of {', '.join(_QUANTITY_FIELDS)}")
        if "address" not in q:
            raise ConfigError(source, f"{where}.address", "missing", "give the holding register, e.g. address = 1")
        address = q["address"]
        if isinstance(address, bool) or not isinstance(address, int) or not 0 <= address <= 65535:
            raise ConfigError(source, f"{where}.address", f"expected a register 0..65535, got {address!r}",
                              "write the protocol address, e.g. address = 1 or address = 0x8002")
        type_ = q.get("type")
        if type_ not in TYPES:
            raise ConfigError(source, f"{where}.type", "missing" if type_ is None else f"unknown type {type_!r}",
                              f'write type = "{TYPES[0]}", "{TYPES[1]}" or "{TYPES[2]}"')
        width = 2 if type_ == "float32" else 1
        if address + width - 1 > 65535:
            raise ConfigError(source, f"{where}.address", f"a float32 at {address} runs past register 65535",
                              "use an address <= 65534")
        for reg in range(address, address + width):
            if reg in used:
                raise ConfigError(source, f"{where}.address", f"register {reg} is already used by {used[reg]!r}",
                                  "give each quantity its own registers")
            used[reg] = qname
        scale = _number(q.get("scale", 1.0), source, f"{where}.scale", "write e.g. scale = 0.1 (one decimal place)")
        if scale == 0:
            raise ConfigError(source, f"{where}.scale", "must not be 0", "write e.g. scale = 0.1 or scale = 1")
        unit = q.get("unit", "")
        if not isinstance(unit, str):
            raise ConfigError(source, f"{where}.unit", f"expected a string, got {unit!r}", 'write unit = "degC"')
        access = q.get("access", "read")
        if access not in ACCESS:
            raise ConfigError(source, f"{where}.access", f"unknown access {access!r}",
                              'write access = "read" or access = "read-write"')
        if "word_order" in q and type_ != "float32":
            raise ConfigError(source, f"{where}.word_order", f"a {type_} is one register and has no word order",
                              "remove word_order, or use type = \"float32\"")
        order = _word_order(q["word_order"], source, f"{where}.word_order") if "word_order" in q else default_order
        limits: dict[str, float | None] = {}
        for key in ("minimum", "maximum", "safe_value"):
            if key in q:
                if access != "read-write":
                    raise ConfigError(source, f"{where}.{key}", f"{key} on a read-only quantity",
                                      f'write access = "read-write", or remove {key}')
                limits[key] = _number(q[key], source, f"{where}.{key}", f"write e.g. {key} = 20.0")
            else:
                limits[key] = None
        lo, hi, safe = limits["minimum"], limits["maximum"], limits["safe_value"]
        if lo is not None and hi is not None and lo > hi:
            raise ConfigError(source, f"{where}.minimum", f"minimum {lo:g} is above maximum {hi:g}", "swap them")
        if safe is not None and ((lo is not None and safe < lo) or (hi is not None and safe > hi)):
            raise ConfigError(source, f"{where}.safe_value", f"safe value {safe:g} is outside minimum..maximum",
                              "choose a safe value inside the write limits")
        quantity = RegisterQuantity(qname, address, type_, scale, unit, access == "read-write", order, safe, lo, hi)
        if safe is not None and type_ != "float32":
            _check_fits(quantity, safe, source, f"{where}.safe_value")
        quantities[qname] = quantity

    controller = data.get("controller", {})
    if not isinstance(controller, dict):
        raise ConfigError(source, "controller", "must be a table", 'write [controller] setpoint = "sp", value = "pv"')
    roles: dict[str, str] = {}
    for role, qname in controller.items():
        field = f"controller.{role}"
        if role not in _CONTROLLER_ROLES:
            raise ConfigError(source, field, "unknown role", f"use one of {', '.join(_CONTROLLER_ROLES)}")
        if qname not in quantities:
            raise ConfigError(source, field, f"no quantity named {qname!r}",
                              f"use one of {', '.join(sorted(quantities))}")
        roles[role] = qname
    if roles:
        for required in ("setpoint", "value"):
            if required not in roles:
                raise ConfigError(source, f"controller.{required}", "missing",
                                  f'name the quantity, e.g. {required} = "{next(iter(quantities))}"')
        if not quantities[roles["setpoint"]].writable:
            raise ConfigError(source, "controller.setpoint", f"quantity {roles['setpoint']!r} is read-only",
                              f'write access = "read-write" in [quantities.{roles["setpoint"]}]')
    return RegisterMap(source, name, quantities, roles)


def _check_fits(q: RegisterQuantity, value: float, source: str, field: str) -> None:
    from daq.transports.modbus import INT_TYPES

    lo, hi = INT_TYPES[q.type]
    raw = round(value / q.scale)
    if not lo <= raw <= hi:
        raise ConfigError(source, field, f"{value:g} is {raw} in register units, beyond {q.type} {lo}..{hi}",
                          "check scale and the value")


class ModbusMapDriver:
    """An instrument read and written through its register map; a `Controller` if the map says so."""

    def __init__(
        self, name: str, transport: ModbusTransport, register_map: RegisterMap, expected_serial: str | None = None
    ) -> None:
        self.name = name
        self.transport = transport
        self.map = register_map
        self.expected_serial = expected_serial
        self.idn = ""

    def _quantity(self, name: str) -> RegisterQuantity:
        try:
            return self.map.quantities[name]
        except KeyError:
            raise InstrumentError(
                f"{self.name}: no quantity {name!r} in {self.map.source}; "
                f"it has {', '.join(sorted(self.map.quantities))}"
            ) from None

    async def read(self, quantity: str) -> float:
        q = self._quantity(quantity)
        if q.type == "float32":
            return await self.transport.read_float32(q.address, word_order=q.word_order) * q.scale
        return round(await self.transport.read_int(q.address, scale=q.scale, type_=q.type), 9)

    async def read_all(self) -> dict[str, float]:
        return {name: await self.read(name) for name in self.map.quantities}

    async def write(self, quantity: str, value: float) -> None:
        q = self._quantity(quantity)
        if not q.writable:
            raise InstrumentError(f"{self.name}: {quantity!r} is read-only in {self.map.source} "
                                  f"(quantities.{quantity}.access)")
        if (q.minimum is not None and value < q.minimum) or (q.maximum is not None and value > q.maximum):
            raise InstrumentError(f"{self.name}: {quantity} = {value:g} {q.unit} is outside "
                                  f"{q.minimum if q.minimum is not None else '-inf'}.."
                                  f"{q.maximum if q.maximum is not None else 'inf'} set in {self.map.source}")
        if q.type == "float32":
            await self.transport.write_float32(q.address, value / q.scale, word_order=q.word_order)
        else:
            await self.transport.write_int(q.address, value, scale=q.scale, type_=q.type)

    def unit_of(self, quantity: str) -> str:
        return self._quantity(quantity).unit

    async def identify(self) -> str:
        first = next(iter(self.map.quantities))
        value = await self.read(first)
        self.idn = f"{self.map.name},{self.expected_serial or ''},{self.transport.resource} ({first} {value:g})"
        return self.idn

    async def connect(self) -> None:
        await self.identify()

    async def safe_state(self) -> None:
        """Write every quantity's `safe_value`, in map order; all are attempted, the first failure is raised."""
        failure: Exception | None = None
        for q in self.map.quantities.values():
            if q.safe_value is not None:
                try:
                    await self.write(q.name, q.safe_value)
                except Exception as exc:  # noqa: BLE001 - keep making the rest safe, then report
                    failure = failure or exc
        if failure is not None:
            raise failure

    # -- Controller, when the map has a [controller] table ---------------------------------

    def _role(self, role: str) -> str:
        if role not in self.map.controller:
            raise InstrumentError(f"{self.name}: {self.map.source} has no [controller] {role} = \"...\"; "
                                  "add it to use this instrument as a controller")
        return self.map.controller[role]

    async def set_setpoint(self, value: float) -> None:
        await self.write(self._role("setpoint"), value)

    async def setpoint(self) -> float:
        return await self.read(self._role("setpoint"))

    async def read_value(self) -> float:
        return await self.read(self._role("value"))

    async def output(self) -> float:
        return await self.read(self._role("output"))

    async def is_stable(self) -> bool | None:
        return None

    async def close(self) -> None:
        await self.transport.close()


#: What `build_modbus_driver` returns (for the driver registry's type).
ModbusDriver = Eurotherm3200 | ModbusMapDriver


def build_modbus_driver(entry: Any, bench_source: str = "<bench>") -> ModbusDriver:
    """The driver of a bench entry on a `MODBUS-...` resource (not yet connected).

    `driver = "eurotherm3200"` or `driver = "modbus-map:<path>"` (relative to the bench file).
    """
    field = f"instruments.{entry.name}.driver"
    transport = ModbusTransport(entry.resource, timeout=entry.timeout)
    if entry.driver == "eurotherm3200":
        return Eurotherm3200(entry.name, transport, entry.serial)
    if entry.driver.startswith(MAP_DRIVER_PREFIX):
        path = Path(entry.driver[len(MAP_DRIVER_PREFIX):].strip())
        if not path.is_absolute() and not bench_source.startswith("<"):
            path = Path(bench_source).parent / path
        return ModbusMapDriver(entry.name, transport, load_register_map(path), entry.serial)
    raise ConfigError(bench_source, field, f"no Modbus driver {entry.driver!r}",
                      'use driver = "eurotherm3200" or driver = "modbus-map:maps/my_instrument.toml"')
