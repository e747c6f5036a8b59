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


@runtime_checkable
class Controller(Instrument, Protocol):
    """Something that holds a quantity at a setpoint: baths, dry-wells, process controllers.

    `safe_state()` is called by the runner on every error, abort or crash path (heating
    off, setpoint back to a safe value), like a `Source`'s.
    """

    async def set_setpoint(self, value: float) -> None: ...

    async def setpoint(self) -> float: ...

    async def read_value(self) -> float:
        """The controlled quantity as the controller's own sensor sees it."""
        ...

    async def is_stable(self) -> bool | None:
        """The controller's own stable flag, or None if it has none."""
        ...

    async def safe_state(self) -> None: ...


@runtime_checkable
class Thermometer(Instrument, Protocol):
    """A readout of one or more temperature channels (degC); channels may be read concurrently."""

    channels: tuple[int, ...]

    async def read(self, channel: int) -> float: ...

    def resolution(self) -> float:
        """Display resolution in degC (for the resolution budget term)."""
        ...
