"""HP/Agilent/Keysight 3458A reference DMM, DC voltage, on its GPIB command set (not SCPI).

`END ALWAYS` comes first: at power-on the 3458A asserts no EOI with its readings (`END OFF`),
and a GPIB controller (or a GPIB-LAN gateway) that ends a message on EOI would wait for the
reading until it times out. Then `ID?` (-> `HP3458A`), and the error queue is drained with
`ERRSTR?` (`0,"NO ERROR"` when empty).

configure("dcv", range, nplc): `PRESET NORM`, `END ALWAYS` (again: cheap, and safe whatever
PRESET does to it), `DCV <range>` (function and range in one; `DCV AUTO` for autorange),
`NPLC <n>`, `NDIG 8`, then the error check. read(count): one `TRIG SGL` per reading, each
answered by a plain number (`1.000000123E+01`). Overload reads as +1E+38 and is refused.

Meant to be used over VISA (`visa = true` in the bench entry, or a GPIB resource string); it
works over any line transport. `ID?` carries no serial number, so the bench file's `serial`
cannot be checked on the bus; it stays in the record.
"""

from __future__ import annotations

from daq.errors import InstrumentError
from drivers.capabilities import MeterOverload
from drivers.scpi import ScpiInstrument

OVERLOAD = 1.0e38
RANGES_V = (0.1, 1.0, 10.0, 100.0, 1000.0)
MODEL_ID = "HP3458A"
NDIG = 8


class Hp3458A(ScpiInstrument):
    ranges = RANGES_V
    error_query = "ERRSTR?"
    no_error_codes = ("0", "+0")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.range_: float | None = None

    async def identify(self) -> str:
        self.idn = await self.transport.query("ID?")
        return self.idn

    async def connect(self) -> None:
        await self.transport.write("END ALWAYS")
        idn = await self.identify()
        if idn.strip().upper() != MODEL_ID:
            raise InstrumentError(
                f"{self.name}: ID? answered {idn!r}, not {MODEL_ID!r}; is a 3458A at {self.transport.resource}?"
            )
        await self.errors()  # drain what a previous session left; the 3458A has no *CLS to rely on

    async def configure(self, function: str, range_: float | None, nplc: float | None = None) -> None:
        if function != "dcv":
            raise InstrumentError(f"{self.name}: function {function!r} not supported (only 'dcv')")
        if range_ is not None and not any(abs(range_) <= r * (1 + 1e-9) for r in RANGES_V):
            raise InstrumentError(f"{self.name}: no DC voltage range holds {range_:g} V (largest 1000 V)")
        rng = "AUTO" if range_ is None else f"{range_:g}"
        await self.transport.write("PRESET NORM")
        await self.transport.write("END ALWAYS")
        await self.transport.write(f"DCV {rng}")
        if nplc is not None:
            await self.transport.write(f"NPLC {nplc:g}")
        await self.transport.write(f"NDIG {NDIG}")
        await self.check_errors(f"DCV {rng}")
        self.range_ = range_

    async def read(self, count: int = 1) -> list[float]:
        values = []
        for _ in range(count):
            reply = await self.transport.query("TRIG SGL")
            try:
                value = float(reply.strip())
            except ValueError as exc:
                raise InstrumentError(f"{self.name}: unreadable reply {reply!r} to TRIG SGL") from exc
            if abs(value) >= OVERLOAD:
                raise MeterOverload(f"{self.name}: overload on the {self.range_} V range")
            values.append(value)
        return values

    def resolution(self, range_: float) -> float:
        """NDIG 8 (8.5 digits): range x 1e-9, e.g. 10 nV on the 10 V range."""
        return range_ * 10.0 ** -(NDIG + 1)
