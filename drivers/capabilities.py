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


class BalanceRangeError(InstrumentError):
    """The load is outside the balance's weighing range (see the two subclasses)."""


class BalanceOverload(BalanceRangeError):
    """More than the balance's capacity is on the pan."""


class BalanceUnderload(BalanceRangeError):
    """Below the balance's range: the pan is missing or lifted."""


class BalanceNotStable(InstrumentError):
    """The balance did not reach its own stability within its timeout (or was busy)."""


@runtime_checkable
class Balance(Instrument, Protocol):
    """A weighing instrument; masses in g.

    No `safe_state()`: a balance energises nothing, so there is nothing to put safe.
    """

    async def read_stable(self) -> float:
        """The next stable net weight (waits for the balance's own stability), g."""
        ...

    async def read_immediate(self) -> tuple[float, bool]:
        """The net weight now and whether the balance calls it stable, g."""
        ...

    async def zero(self) -> None: ...

    async def tare(self) -> float:
        """Tare the present load; returns the tare weight, g."""
        ...

    def resolution(self) -> float:
        """Scale interval d in g (for the resolution budget term)."""
        ...
