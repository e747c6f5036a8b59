"""Keysight 34465A / 34401A-class digital multimeter: DC voltage, AC voltage, 2- and 4-wire ohms.

`CONF:VOLT:DC <range>` (`CONF:VOLT:AC`, `CONF:RES`, `CONF:FRES`) then `VOLT:DC:NPLC`
(`RES:NPLC`, `FRES:NPLC`; AC has no NPLC), `SAMP:COUN n` and `READ?`, which returns a
comma-separated list. Overload reads as +9.9E37 and is refused here rather than averaged.
"""

from __future__ import annotations

from daq.errors import InstrumentError
from drivers.capabilities import MeterOverload
from drivers.scpi import ScpiInstrument

OVERLOAD = 9.9e37
RANGES_V = (0.1, 1.0, 10.0, 100.0, 1000.0)
RANGES_ACV = (0.1, 1.0, 10.0, 100.0, 750.0)
RANGES_OHM = (100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9)
#: function -> (CONF header, NPLC header or None, ranges, unit)
FUNCTIONS: dict[str, tuple[str, str | None, tuple[float, ...], str]] = {
    "dcv": ("CONF:VOLT:DC", "VOLT:DC:NPLC", RANGES_V, "V"),
    "acv": ("CONF:VOLT:AC", None, RANGES_ACV, "V"),
    "ohms": ("CONF:RES", "RES:NPLC", RANGES_OHM, "ohm"),
    "fres": ("CONF:FRES", "FRES:NPLC", RANGES_OHM, "ohm"),
}


class Dmm34465A(ScpiInstrument):
    ranges = RANGES_V
    ranges_by_function = {name: spec[2] for name, spec in FUNCTIONS.items()}
    error_query = "SYST:ERR?"
    digits_resolution = 1e-7  # 6.5 digits at 10 NPLC: resolution = range x 1e-7

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.range_: float | None = None
        self.function = "dcv"
        self.count = 1

    @staticmethod
    def range_for(value: float) -> float:
        """The smallest range that holds |value| (up to 120 % of range, as the instrument allows)."""
        for r in RANGES_V:
            if abs(value) <= 1.2 * r:
                return r
        raise InstrumentError(f"{abs(value):g} V is beyond the DMM's 1000 V range")

    async def configure(self, function: str, range_: float | None, nplc: float | None = None) -> None:
        """Select `function` ("dcv", "acv", "ohms" 2-wire, "fres" 4-wire) on `range_` (None: autorange);
        `nplc` sets the integration time (ignored for AC, which has none)."""
        if function not in FUNCTIONS:
            raise InstrumentError(f"{self.name}: function {function!r} not supported "
                                  f"(use one of {', '.join(FUNCTIONS)})")
        header, nplc_header, ranges, unit = FUNCTIONS[function]
        if range_ is not None and range_ not in ranges:
            raise InstrumentError(f"{self.name}: no {range_:g} {unit} range for {function!r} "
                                  f"(use one of {', '.join(f'{r:g}' for r in ranges)})")
        rng = "AUTO" if range_ is None else f"{range_:g}"
        await self.transport.write(f"{header} {rng}")
        if nplc is not None and nplc_header is not None:
            await self.transport.write(f"{nplc_header} {nplc:g}")
        await self.check_errors(f"{header} {rng}")
        self.range_ = range_
        self.function = function
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
            raise MeterOverload(f"{self.name}: overload on the {self.range_} {FUNCTIONS[self.function][3]} range")
        return values

    def resolution(self, range_: float) -> float:
        """The display step on `range_` in the configured function (AC shows one digit less)."""
        return range_ * (self.digits_resolution * 10 if self.function == "acv" else self.digits_resolution)
