"""Numbers as a certificate prints them: U to two significant digits, the error to the same digit.

ILAC-P14:09/2020 5.3 through `results.rounding`; an SI prefix is chosen so that U reads as a
small number (41 µV, not 0.000041 V), and the error, the tolerance and the readings of a point
are printed on that same scale so a reader can compare them digit by digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from results.rounding import round_result

PREFIXABLE = {"V", "A", "Ω", "ohm", "Pa", "g", "Hz", "W", "F", "H", "S"}
_PREFIXES = ((1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))


@dataclass(frozen=True)
class Scale:
    """How a point's numbers print: rounded to `exponent` (U's last kept digit), shown with `prefix`."""

    factor: float
    prefix: str
    exponent: int
    unit: str

    @property
    def decimals(self) -> int:
        return max(0, -self.exponent + int(round(math.log10(self.factor))))

    def text(self, value: float | None, *, signed: bool = False) -> str:
        if value is None or not math.isfinite(value):
            return "—"
        rounded = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(self.exponent), rounding=ROUND_HALF_UP)
        shown = float(rounded) / self.factor
        text = f"{shown:+.{self.decimals}f}" if signed else f"{shown:.{self.decimals}f}"
        if float(text) == 0:  # no "-0.0" on a certificate
            text = text.replace("-", "+" if signed else "")
        return f"{text} {self.prefix}{self.unit}".rstrip()


def scale_for(error: float, U: float, unit: str) -> Scale:
    rounded = round_result(error, U)
    factor, prefix = 1.0, ""
    if unit in PREFIXABLE:
        factor, prefix = next(((f, p) for f, p in _PREFIXES if rounded.U >= f), _PREFIXES[-1])
    return Scale(factor, prefix, rounded.exponent, unit)


def readings_scale(scale: Scale) -> Scale:
    """Readings are printed in the base unit to the digit of the error (10.000013 V)."""
    return Scale(1.0, "", scale.exponent, scale.unit)


def value_text(value: float, unit: str) -> str:
    """A setpoint as people write it: 100 mV, 10 V, -100 V, 0 V."""
    if value == 0 or unit not in PREFIXABLE:
        return f"{value:g} {unit}".rstrip()
    factor, prefix = next(((f, p) for f, p in _PREFIXES if abs(value) >= f), _PREFIXES[-1])
    return f"{value / factor:g} {prefix}{unit}"
