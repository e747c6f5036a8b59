"""The one pint registry of the application.

pint costs ~10 us per quantity operation and ~130 us per parse, so quantities live at the
edges (setpoints, tolerances, results) and hot loops carry floats with a unit held once.
"""

from __future__ import annotations

from typing import Any

import pint

from daq.errors import ConfigError

ureg: pint.UnitRegistry = pint.UnitRegistry(cache_folder=":auto:")
pint.set_application_registry(ureg)
Q_ = ureg.Quantity
Quantity = pint.Quantity


def parse_unit(text: str, *, source: str = "<input>", field: str = "unit") -> pint.Unit:
    """Parse a unit name, turning pint's exception into an error that names the field."""
    try:
        return ureg.Unit(text)
    except (pint.errors.UndefinedUnitError, AttributeError, ValueError, TypeError) as exc:
        raise ConfigError(source, field, f"unknown unit {text!r}",
                          "use a unit such as V, mV, uV, ohm, degC") from exc


def parse_quantity(value: Any, *, source: str = "<input>", field: str = "value", unit: str | None = None) -> Any:
    """Accept `"10 mV"`, a number with a separate unit, or a number alone (dimensionless)."""
    try:
        if isinstance(value, int | float):
            if unit is None:
                return Q_(float(value))
            return Q_(float(value), parse_unit(unit, source=source, field=field))
        if isinstance(value, str):
            text = value.strip()
            parts = text.split(None, 1)
            magnitude = float(parts[0])
            unit_text = parts[1] if len(parts) > 1 else (unit or "")
            return Q_(magnitude, parse_unit(unit_text, source=source, field=field) if unit_text else "")
    except ValueError as exc:
        raise ConfigError(source, field, f"cannot read {value!r} as a quantity",
                          'write e.g. "10 V" or "-100 mV"') from exc
    raise ConfigError(source, field, f"cannot read {value!r} as a quantity", 'write e.g. "10 V" or "-100 mV"')


def magnitude_in(quantity: Any, unit: str, *, source: str = "<input>", field: str = "value") -> float:
    """Convert to `unit` and return a float, with a dimensionality error that names the field."""
    try:
        return float(quantity.to(unit).magnitude)
    except pint.errors.DimensionalityError as exc:
        raise ConfigError(source, field, f"{quantity} is not convertible to {unit}",
                          f"give the value in {unit}") from exc
