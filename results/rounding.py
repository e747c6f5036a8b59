"""Rounding of reported results as ILAC-P14:09/2020 requires on calibration certificates.

ILAC-P14:09/2020 §5.3: the numerical value of the expanded uncertainty shall be given to at most
two significant digits; (a) the measurement result shall in the final statement be rounded to
the least significant digit of the expanded uncertainty; (b) the usual rules for rounding of
numbers apply, subject to the guidance in GUM (JCGM 100:2008) §7 (see also ISO 80000-1).
(The same text was §6.3 in ILAC-P14:01/2013; §5.5 of the 2020 edition is the CMC floor.)

What this module does with that:
- U always keeps two significant digits (the permitted maximum): one digit would change a U
  like 0.14 by up to 30 %, and the certificate also serves as input to the customer's own budget.
- "Usual rules" means round to nearest (ISO 80000-1 annex B), so 0.0001234 -> 0.00012, not
  0.00013. GUM 7.2.6 permits rounding U up "sometimes", with common sense; we don't, because
  ILAC-P14 makes round-to-nearest the rule and a lab-wide round-up policy would be a separate,
  stated choice.
- An exact tie goes away from zero (ROUND_HALF_UP; ISO 80000-1 B.3 rule B): never reports less
  uncertainty at a tie, and the same rule serves the signed measured value symmetrically.
- Floats are converted through their shortest repr, so 0.000125 is the decimal 0.000125 (a tie,
  giving 0.00013) rather than the binary value just above or below it.
Rounding is for display: calculations and decisions use the unrounded numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

SIGNIFICANT_DIGITS = 2
ROUNDING = ROUND_HALF_UP


@dataclass(frozen=True)
class RoundedUncertainty:
    U: float
    exponent: int
    """Decimal exponent of U's last kept digit: the result is rounded to 10**exponent."""
    text: str
    """U as printed, trailing zeros kept (0.10, not 0.1): they are significant."""


@dataclass(frozen=True)
class RoundedResult:
    value: float
    U: float
    exponent: int
    value_text: str
    U_text: str


def _to_decimal(x: float, what: str) -> Decimal:
    if isinstance(x, bool) or not isinstance(x, int | float | Decimal):
        raise ValueError(f"{what} must be a number, got {x!r}")
    if isinstance(x, Decimal):
        if not x.is_finite():
            raise ValueError(f"{what} must be finite, got {x!r}")
        return x
    if not math.isfinite(x):
        raise ValueError(f"{what} must be finite, got {x!r}")
    return Decimal(repr(float(x)))


def _quantize(d: Decimal, exponent: int) -> Decimal:
    # Enough precision for any digit count: the default 28 would refuse 1e6 to 1e-30.
    with localcontext() as context:
        context.prec = max(28, d.adjusted() - exponent + 3)
        return d.quantize(Decimal(1).scaleb(exponent), rounding=ROUNDING)


def _text(d: Decimal) -> str:
    if d.is_zero():
        d = d.copy_abs()  # no "-0.00" on a certificate
    return format(d, "f")


def round_expanded_uncertainty(U: float) -> RoundedUncertainty:
    """U to two significant digits, round to nearest, ties away from zero (ILAC-P14:09/2020 §5.3)."""
    d = _to_decimal(U, "expanded uncertainty U")
    if d <= 0:
        raise ValueError(
            f"expanded uncertainty U must be > 0 to be reported, got {U!r}; "
            "a zero U means a component is missing from the budget"
        )
    exponent = d.adjusted() - (SIGNIFICANT_DIGITS - 1)
    rounded = _quantize(d, exponent)
    if rounded.adjusted() > d.adjusted():
        # 0.0996 -> 0.100 has three digits: carry into the next decade and keep two (0.10).
        exponent += 1
        rounded = _quantize(d, exponent)
    return RoundedUncertainty(U=float(rounded), exponent=exponent, text=_text(rounded))


def round_result(value: float, U: float) -> RoundedResult:
    """Value rounded to the last digit of the rounded U (ILAC-P14:09/2020 §5.3 a)."""
    rounded_u = round_expanded_uncertainty(U)
    d = _to_decimal(value, "measured value")
    rounded = _quantize(d, rounded_u.exponent)
    return RoundedResult(
        value=float(rounded) + 0.0,  # + 0.0 turns -0.0 into 0.0
        U=rounded_u.U,
        exponent=rounded_u.exponent,
        value_text=_text(rounded),
        U_text=rounded_u.text,
    )
