"""Reading the `[instruments.<name>.simulation]` table with errors that name the field.

The bench file is shared with the runner; a typo in a simulation parameter would otherwise
silently fall back to a default and the demo would show the wrong physics. Unknown keys and
wrong types are rejected with the file, the field and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daq.errors import ConfigError


@dataclass(frozen=True)
class NumberParameter:
    """A real-valued simulation parameter with its default and lower bound."""

    default: float
    minimum: float | None = None
    exclusive_minimum: bool = False
    hint: str = ""

    def read(self, value: Any, *, source: str, field: str) -> float:
        fix = self.hint or f"write e.g. {field.rsplit('.', 1)[-1]} = {self.default!r}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(source, field, f"expected a number, got {value!r}", fix)
        number = float(value)
        if self.minimum is not None:
            too_small = number <= self.minimum if self.exclusive_minimum else number < self.minimum
            if too_small:
                relation = ">" if self.exclusive_minimum else ">="
                raise ConfigError(source, field, f"must be {relation} {self.minimum:g}, got {value!r}", fix)
        return number


TableReader = Callable[[Any, str], Any]
"""Reads one structured parameter (value, field name) and returns its parsed form."""

#: Parameters every simulated instrument accepts.
COMMON_PARAMETERS = {
    "latency": NumberParameter(0.0, 0.0, hint="give the reply latency in seconds, e.g. latency = 0.002"),
}


def read_simulation_parameters(
    instrument: str,
    table: dict[str, Any],
    *,
    source: str,
    numbers: dict[str, NumberParameter],
    structured: dict[str, TableReader] | None = None,
) -> dict[str, Any]:
    """Every known parameter with its value or default; any unknown key is a ConfigError."""
    structured = structured or {}
    numbers = {**COMMON_PARAMETERS, **numbers}
    where = f"instruments.{instrument}.simulation"
    known = sorted(set(numbers) | set(structured))
    for key in table:
        if key not in numbers and key not in structured:
            raise ConfigError(source, f"{where}.{key}", "unknown simulation parameter",
                              f"use one of {', '.join(known)}")
    values: dict[str, Any] = {}
    for key, spec in numbers.items():
        if key in table:
            values[key] = spec.read(table[key], source=source, field=f"{where}.{key}")
        else:
            values[key] = spec.default
    for key, reader in structured.items():
        values[key] = reader(table.get(key), f"{where}.{key}")
    return values
