"""Statements of conformity to a specification, by the decision rules of ILAC-G8:09/2019.

ISO/IEC 17025:2017 §7.8.6 requires the decision rule to be stated with the statement, so a
`Decision` carries the rule spelled out, the limits it used and the test uncertainty ratio, not
only the verdict.

Rules (ILAC-G8:2019 §4.2; tolerance limits TL, guard band w, acceptance limits AL = TL -/+ w):
- "simple" (§4.2.1, w = 0): pass iff the measured value lies within the tolerance limits. The
  risk is shared: at a limit the probability of false acceptance approaches 50 %, so the rule is
  only meaningful with an adequate TUR agreed with the customer.
- "guarded" (§4.2.3, non-binary with guard band, w = U by default): pass iff inside the limits
  shrunk by w, fail iff outside the limits widened by w, otherwise undecided ("conditional pass"
  inside the tolerance, "conditional fail" outside it). Both acceptance and rejection zone edges
  are inclusive, so the rule is symmetric: a fail is stated with the same confidence as a pass.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

Outcome = Literal["pass", "fail", "undecided"]
Rule = Literal["guarded", "simple"]
Statement = Literal["pass", "conditional pass", "conditional fail", "fail"]


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    statement: Statement
    """ILAC-G8 §4.2.3 wording: splits "undecided" by which side of the tolerance limit it is on."""
    rule: str
    measured_error: float
    U: float
    lower_limit: float
    upper_limit: float
    guard_band: float
    acceptance_lower: float
    acceptance_upper: float
    rejection_lower: float
    """At or beyond this (and rejection_upper) the item fails; equal to the limits for simple acceptance."""
    rejection_upper: float
    tur: float
    """Test uncertainty ratio (upper - lower) / (2 U): tolerance width against the U interval."""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_finite(value: float, what: str) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")


def decide(
    measured_error: float,
    U: float,
    lower_limit: float,
    upper_limit: float,
    rule: Rule = "guarded",
    guard_band: float | None = None,
    guard_band_label: str | None = None,
) -> Decision:
    """Pass, fail or undecided for a measured value (here: an error of indication) against limits."""
    _check_finite(measured_error, "measured error")
    _check_finite(lower_limit, "lower limit")
    _check_finite(upper_limit, "upper limit")
    if not math.isfinite(U) or U <= 0:
        raise ValueError(f"expanded uncertainty U must be finite and > 0 for a decision, got {U!r}")
    if not lower_limit < upper_limit:
        raise ValueError(f"lower limit {lower_limit!r} must be below upper limit {upper_limit!r}")
    tur = (upper_limit - lower_limit) / (2.0 * U)

    if rule == "simple":
        if guard_band not in (None, 0, 0.0):
            raise ValueError(f"simple acceptance has no guard band (w = 0); got guard_band={guard_band!r}")
        inside = lower_limit <= measured_error <= upper_limit
        return Decision(
            outcome="pass" if inside else "fail",
            statement="pass" if inside else "fail",
            rule="ILAC-G8:2019 simple acceptance, w = 0",
            measured_error=measured_error,
            U=U,
            lower_limit=lower_limit,
            upper_limit=upper_limit,
            guard_band=0.0,
            acceptance_lower=lower_limit,
            acceptance_upper=upper_limit,
            rejection_lower=lower_limit,
            rejection_upper=upper_limit,
            tur=tur,
            note=(
                f"shared risk: up to 50 % probability of false acceptance at a limit; meaningful only "
                f"with an adequate TUR agreed with the customer (here TUR = {tur:.2f})"
            ),
        )

    if rule != "guarded":
        raise ValueError(f"decision rule must be 'guarded' or 'simple', got {rule!r}")
    if guard_band is None:
        w, rule_text = U, "ILAC-G8:2019 guarded acceptance, w = U"
    else:
        if not math.isfinite(guard_band) or guard_band < 0:
            raise ValueError(f"guard band must be finite and >= 0, got {guard_band!r}")
        w = float(guard_band)
        rule_text = f"ILAC-G8:2019 guarded acceptance, w = {guard_band_label or f'{guard_band:.6g}'}"
    acceptance_lower, acceptance_upper = lower_limit + w, upper_limit - w
    rejection_lower, rejection_upper = lower_limit - w, upper_limit + w

    within_tolerance = lower_limit <= measured_error <= upper_limit
    if acceptance_lower <= measured_error <= acceptance_upper:
        outcome: Outcome = "pass"
        statement: Statement = "pass"
    elif measured_error <= rejection_lower or measured_error >= rejection_upper:
        outcome, statement = "fail", "fail"
    else:
        outcome = "undecided"
        statement = "conditional pass" if within_tolerance else "conditional fail"
    note = ""
    if acceptance_lower > acceptance_upper:
        note = f"guard band w = {w:.3g} leaves no acceptance zone: a pass is impossible at this uncertainty"
    return Decision(
        outcome=outcome,
        statement=statement,
        rule=rule_text,
        measured_error=measured_error,
        U=U,
        lower_limit=lower_limit,
        upper_limit=upper_limit,
        guard_band=w,
        acceptance_lower=acceptance_lower,
        acceptance_upper=acceptance_upper,
        rejection_lower=rejection_lower,
        rejection_upper=rejection_upper,
        tur=tur,
        note=note,
    )


def symmetric_tolerance(
    spec_ppm_of_reading: float, spec_ppm_of_range: float, reading: float, range: float
) -> float:
    """Half-width of a DMM-style accuracy spec, +-(ppm of reading + ppm of range), in the reading's unit.

    Magnitudes are used so a negative reading or range gives the same +- band.
    """
    for value, what in (
        (spec_ppm_of_reading, "ppm of reading"),
        (spec_ppm_of_range, "ppm of range"),
        (reading, "reading"),
        (range, "range"),
    ):
        _check_finite(value, what)
    if spec_ppm_of_reading < 0 or spec_ppm_of_range < 0:
        raise ValueError(
            f"accuracy spec terms must be >= 0, got {spec_ppm_of_reading!r} ppm of reading, "
            f"{spec_ppm_of_range!r} ppm of range"
        )
    return (spec_ppm_of_reading * abs(reading) + spec_ppm_of_range * abs(range)) * 1e-6
