"""A bench's set of reference weights, as their certificates state them (grams).

`[[reference_weights]] id = "R100" nominal = 100.0 conventional_mass = 100.00012 U = 0.00005 k = 2.0`.
The balance procedure corrects with them and states their uncertainty; the simulated balance
draws each weight's true mass from the same certificate. The format is the bench file's, so
it lives in the core with it.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass

from daq.bench import Bench
from daq.errors import ConfigError

_FIELDS = ("id", "nominal", "conventional_mass", "U", "k")
_FIX = ('write [[reference_weights]] id = "R100" nominal = 100.0 conventional_mass = 100.00012 '
        "U = 0.00005 k = 2.0")


@dataclass(frozen=True)
class ReferenceWeight:
    """One weight of a reference set as its certificate states it (g)."""

    id: str
    nominal: float
    conventional_mass: float
    U: float
    k: float = 2.0

    @property
    def u(self) -> float:
        return self.U / self.k

    def as_arguments(self) -> dict[str, float]:
        """The certificate as the operator holds it (what a simulated operator is handed, too)."""
        return {"nominal": self.nominal, "conventional_mass": self.conventional_mass, "U": self.U, "k": self.k}


def read_reference_weights(bench: Bench) -> dict[str, ReferenceWeight]:
    """The bench's `[[reference_weights]]`, every field checked (ConfigError naming it)."""
    data = tomllib.loads(bench.text).get("reference_weights", [])
    if not isinstance(data, list):
        raise ConfigError(bench.source, "reference_weights", "must be an array of tables", _FIX)
    weights: dict[str, ReferenceWeight] = {}
    for i, entry in enumerate(data):
        where = f"reference_weights[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(bench.source, where, "must be a table", _FIX)
        unknown = sorted(set(entry) - set(_FIELDS))
        if unknown:
            raise ConfigError(bench.source, f"{where}.{unknown[0]}", "unknown field", f"use {', '.join(_FIELDS)}")
        weight_id = entry.get("id")
        if not isinstance(weight_id, str) or not weight_id:
            raise ConfigError(bench.source, f"{where}.id", f"expected a name, got {weight_id!r}", _FIX)
        if weight_id in weights:
            raise ConfigError(bench.source, f"{where}.id", f"weight {weight_id!r} given twice", "give each id once")
        numbers: dict[str, float] = {}
        for key in ("nominal", "conventional_mass", "U", "k"):
            value = entry.get(key, 2.0 if key == "k" else None)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or value <= 0:
                raise ConfigError(bench.source, f"{where}.{key}", f"expected a number > 0, got {value!r}", _FIX)
            numbers[key] = float(value)
        weights[weight_id] = ReferenceWeight(weight_id, numbers["nominal"], numbers["conventional_mass"],
                                             numbers["U"], numbers["k"])
    return weights
