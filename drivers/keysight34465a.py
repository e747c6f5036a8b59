"""Keysight 34465A / 34401A-class digital multimeter, DC voltage.

`CONF:VOLT:DC <range>` then `VOLT:DC:NPLC`, `SAMP:COUN n` and `READ?`, which returns a
comma-separated list. Overload reads as +9.9E37 and is refused here rather than averaged.
"""

from __future__ import annotations

from daq.errors import InstrumentError
from drivers.capabilities import MeterOverload
from drivers.scpi import ScpiInstrument

OVERLOAD = 9.9e37
RANGES_V = (0.1, 1.0, 10.0, 100.0, 1000.0)


class Dmm34465A(ScpiInstrument):
    ranges = RANGES_V
    error_query = "SYST:ERR?"
    digits_resolution = 1e-7  # 6.5 digits at 10 NPLC: resolution = range x 1e-7

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.range_: float | None = None
        self.count = 1

    @staticmethod
    def range_for(value: float) -> float:
        """The smallest range that holds |value| (up to 120 % of range, as the instrument allows)."""
        for r in RANGES_V:
            if abs(value) <= 1.2 * r:
                return r
        raise InstrumentError(f"{abs(value):g} V is beyond the DMM's 1000 V range")

    async def configure(self, function: str, range_: float | None, nplc: float | None = None) -> None:
        if function != "dcv":
            raise InstrumentError(f"{self.name}: function {function!r} not supported (only 'dcv')")
        rng = "AUTO" if range_ is None else f"{range_:g}"
        await self.transport.write(f"CONF:VOLT:DC {rng}")
        if nplc is not None:
            await self.transport.write(f"VOLT:DC:NPLC {nplc:g}")
        await self.check_errors(f"CONF:VOLT:DC {rng}")
        self.range_ = range_
        self.count = 1

    async def read(self, count: int = 1) -> list[float]:
        if count != self.count:
            await self.transport.write(f"SAMP:COUN {count}")
            self.count = count
        reply = await self.transport.query("READ?")
        try:
            values = [float(v) for v in reply.split(",")]
        except ValueError as exc:
            raise InstrumentError(f"{self.name}: unreadable reply {reply!r} to READ?") from exc
        if len(values) != count:
            raise InstrumentError(f"{self.name}: asked for {count} readings, got {len(values)}: {reply!r}")
        if any(abs(v) >= OVERLOAD for v in values):
            raise MeterOverload(f"{self.name}: overload on the {self.range_} V range")
        return values

    def resolution(self, range_: float) -> float:
        return range_ * self.digits_resolution
