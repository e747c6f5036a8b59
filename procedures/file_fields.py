"""Reading numbers out of a procedure file, each mistake a `ConfigError` naming the field and the fix."""

from __future__ import annotations

from typing import Any

from daq.errors import ConfigError


def whole_number(table: dict[str, Any], key: str, default: int, *, minimum: int, source: str, where: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(source, f"{where}.{key}", f"expected a whole number >= {minimum}, got {value!r}",
                          f"write e.g. {key} = {default}")
    return value


def probability(table: dict[str, Any], key: str, default: float, *, source: str, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ConfigError(source, f"{where}.{key}", f"expected a probability between 0 and 1, got {value!r}",
                          f"write e.g. {key} = {default} (not a percentage)")
    return float(value)
