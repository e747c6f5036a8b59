"""What every procedure offers the runner, whatever it calibrates.

A procedure names the instruments it needs, plans its points, checks everything it can
before anything is energised, and measures one point at a time through the context it is
given, returning one result per UUT channel (a DMM has one; a bath comparison up to eight).
The runner owns everything around a point: attempts, storage, faults, safe state, resume.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from daq.bench import Bench
from daq.errors import DaqError
from daq.stability import StabilityRecord
from procedures.context import PointContext
from results.point import PointResult


@dataclass(frozen=True)
class PlannedPoint:
    """One calibration point as planned (stored with the run, so resume knows the plan)."""

    index: int
    nominal: float
    unit: str
    range_: float
    label: str
    field: str = ""  # where it was written in the procedure file, for error messages

    def as_plan(self) -> dict[str, Any]:
        return {"nominal": self.nominal, "unit": self.unit, "range": self.range_, "label": self.label}


@dataclass
class PointOutcome:
    """A measured point: the stability evidence and one result per UUT channel ("" for a single UUT)."""

    stability: StabilityRecord
    results: dict[str, PointResult] = field(default_factory=dict)


class StabilityTimeout(DaqError):
    """The point did not become stable within its timeout; the record says which criterion failed."""

    def __init__(self, label: str, record: StabilityRecord) -> None:
        super().__init__(f"point {label}: {record.reason}")
        self.label = label
        self.record = record


DriverClassOf = Callable[[str], type | None]
"""Instrument name in the bench -> its driver class (for limits such as a calibrator's range)."""


class Procedure(Protocol):
    kind: str
    name: str
    source: str
    text: str

    @property
    def points(self) -> list[PlannedPoint]: ...

    def instrument_names(self) -> tuple[str, ...]:
        """The bench instruments this procedure opens (and puts in safe state)."""
        ...

    def validate(self, bench: Bench, driver_class: DriverClassOf) -> None:
        """Every check that needs no instrument; a `ConfigError` names file, field and fix."""
        ...

    def noisy_channels(self, instruments: Mapping[str, Any], point: PlannedPoint) -> dict[str, tuple[str, float]]:
        """Reading channel -> (meter it comes from, its resolution), for the stuck-reading check."""
        ...

    async def run_point(self, ctx: PointContext, point: PlannedPoint) -> PointOutcome: ...
