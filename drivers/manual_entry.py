"""A unit under test with no interface (a dial pressure gauge, a liquid-in-glass thermometer).

The "instrument" is the operator: `ManualEntry.read()` asks for each indication through an
injected `ManualReader`, so the same procedure runs with a person at the terminal, with a
web form, or with the simulator that plays the operator (`simulators.manual_gauge`) in tests
and on the simulated bench.

Who validates what:
- the reader turns what was typed into a number and asks again on a typo
  (`TerminalManualReader` does this with any blocking `ask` function, e.g. `rich.prompt.Prompt.ask`,
  in a worker thread so the event loop keeps sampling the other instruments);
- the driver checks the number against the gauge's range and asks again (up to `attempts`
  times) with a prompt that says why, then gives up with an `InstrumentError`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from daq.errors import InstrumentError


@runtime_checkable
class ManualReader(Protocol):
    """Whoever reads the gauge: returns the indication, in `unit`, read to `resolution`."""

    async def read_indication(self, prompt: str, unit: str, resolution: float) -> float: ...


def parse_indication(text: str) -> float | None:
    """A typed indication as a number (`1.24`, `1,24`, ` +1.24 `), or None if it is not one."""
    cleaned = text.strip().replace(",", ".")
    if cleaned.count(".") > 1:
        return None
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class TerminalManualReader:
    """Asks with a blocking `ask(prompt) -> str` (e.g. `input`, `rich.prompt.Prompt.ask`) in a thread.

    A typo (not a number) is answered with `complain(message)` and asked again, up to
    `attempts` times; then `InstrumentError`.
    """

    def __init__(self, ask: Callable[[str], str] = input, *, complain: Callable[[str], None] = print,
                 attempts: int = 5) -> None:
        self.ask = ask
        self.complain = complain
        self.attempts = attempts

    async def read_indication(self, prompt: str, unit: str, resolution: float) -> float:
        question = f"{prompt} [{unit}, to {resolution:g}]"
        for _ in range(self.attempts):
            text = await asyncio.to_thread(self.ask, question)
            value = parse_indication(text)
            if value is not None:
                return value
            self.complain(f"{text!r} is not a number; type the indication in {unit}, e.g. {resolution * 50:g}")
        raise InstrumentError(f"no readable indication after {self.attempts} attempts: {prompt}")


class ManualEntry:
    """A `Meter`-like UUT read by the operator: `read()` prompts through the `ManualReader`.

    `quantity` names what it measures ("pressure", "temperature"), `unit` the unit of its
    scale, `reading_resolution` the resolution an operator reads to (e.g. 1/5 of a division),
    `low`..`high` the scale (a value outside is asked again: a typo or a misread).
    """

    def __init__(
        self,
        name: str,
        reader: ManualReader,
        *,
        quantity: str = "pressure",
        unit: str = "bar",
        reading_resolution: float = 0.02,
        low: float = 0.0,
        high: float = math.inf,
        description: str = "dial gauge",
        attempts: int = 3,
    ) -> None:
        if reading_resolution <= 0:
            raise ValueError("reading_resolution must be positive")
        if not low < high:
            raise ValueError("the scale needs low < high")
        self.name = name
        self.reader = reader
        self.quantity = quantity
        self.unit = unit
        self.reading_resolution = reading_resolution
        self.low = low
        self.high = high
        self.description = description
        self.attempts = attempts
        self.idn = f"MANUAL,{description},{name},-"
        self.readings_taken = 0

    async def connect(self) -> None:
        """Nothing to open: the operator is there (or the run asks for one when it first reads)."""

    async def identify(self) -> str:
        return self.idn

    async def close(self) -> None:
        """Nothing to close."""

    async def configure(self, function: str, range_: float | None, nplc: float | None = None) -> None:
        if function.strip().lower() != self.quantity:
            raise InstrumentError(f"{self.name}: a {self.description} measures {self.quantity}, not {function!r}")

    async def read(self, count: int = 1) -> list[float]:
        """`count` indications, each asked of the operator (in `unit`)."""
        values = []
        for i in range(count):
            prompt = f"{self.name}: read the {self.description}"
            if count > 1:
                prompt += f" (reading {i + 1} of {count})"
            values.append(await self._ask(prompt))
        return values

    def resolution(self, range_: float | None = None) -> float:
        return self.reading_resolution

    async def _ask(self, prompt: str) -> float:
        question = prompt
        for _ in range(self.attempts):
            value = await self.reader.read_indication(question, self.unit, self.reading_resolution)
            if math.isfinite(value) and self.low <= value <= self.high:
                self.readings_taken += 1
                return float(value)
            question = (f"{prompt} ({value:g} {self.unit} is outside the scale "
                        f"{self.low:g}..{self.high:g} {self.unit}; read again)")
        raise InstrumentError(f"{self.name}: no indication within {self.low:g}..{self.high:g} {self.unit} "
                              f"after {self.attempts} attempts")
