"""What a procedure may ask of an instrument, independent of make and model.

Procedures depend on these protocols only, so a 5522A or a 5730A, a 34465A or a 3458A
can fill the same role. Every `Source` has `safe_state()`: the runner calls it first on any
error, abort or crash path.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from daq.errors import InstrumentError


class MeterOverload(InstrumentError):
    """The input is beyond the selected range: expected while a source settles, a fault afterwards."""


@runtime_checkable
class Instrument(Protocol):
    name: str

    async def connect(self) -> None: ...

    async def identify(self) -> str: ...

    async def close(self) -> None: ...


@runtime_checkable
class Source(Instrument, Protocol):
    """Something that applies a stimulus: calibrators, supplies, controllers."""

    max_output: float

    async def set_output(self, value: float, unit: str) -> None: ...

    async def operate(self) -> None: ...

    async def standby(self) -> None: ...

    async def safe_state(self) -> None: ...

    async def is_settled(self) -> bool | None:
        """The instrument's own settled flag, or None if it has none."""
        ...

    async def output(self) -> tuple[float, str]: ...


@runtime_checkable
class Meter(Instrument, Protocol):
    """Something that measures: DMMs, readouts, sensors."""

    async def configure(self, function: str, range_: float | None, nplc: float | None = None) -> None: ...

    async def read(self, count: int = 1) -> list[float]: ...

    def resolution(self, range_: float) -> float:
        """Display resolution on a range, in the measured unit (for the resolution budget term)."""
        ...
