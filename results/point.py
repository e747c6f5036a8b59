"""The result of one calibration point: error of indication, its uncertainty and the verdict.

Comparison model (direct comparison of a UUT against a reference, e.g. a DMM reading a
calibrator's output): E = x_UUT - x_ref, correction C = -E. The budget has four independent
inputs: UUT repeatability (type A, c = +1), reference repeatability (type A, c = -1), the
reference standard's own standard uncertainty from its certificate (c = -1) and the UUT's
resolution (c = +1). The reference repeatability stays in the table even when it is zero (a
calibrator's set value read back N times) so the certificate shows it was considered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from daq.units import magnitude_in, parse_unit
from results.decision import Decision, Rule, decide
from results.gum import (
    DEFAULT_COVERAGE_PROBABILITY,
    UncertaintyBudget,
    UncertaintyComponent,
    resolution,
    type_a,
)
from results.measurement_model import MeasurementModel, evaluate_gum
from results.model_inputs import InputQuantity
from results.rounding import round_result

UUT_REPEATABILITY = "UUT repeatability"
REFERENCE_REPEATABILITY = "reference repeatability"
REFERENCE_STANDARD = "reference standard"
UUT_RESOLUTION = "UUT resolution"
COMPARISON_MODEL = "x_uut - x_ref - d_std + d_res"
"""E = x_UUT - (x_ref + delta_std) + delta_res: the reference's deviation from its certificate
value and the UUT's rounding to its resolution are inputs of expectation zero."""


@dataclass(frozen=True)
class PointResult:
    nominal: float
    unit: str
    n: int
    """Number of UUT readings."""
    ref_mean: float
    uut_mean: float
    uut_std: float
    """Experimental standard deviation of the UUT readings (not of their mean)."""
    error: float
    correction: float
    u_c: float
    dof_eff: float
    k: float
    U: float
    """Expanded uncertainty rounded per ILAC-P14 (two significant digits); U_text keeps its zeros."""
    error_rounded: float
    U_unrounded: float
    tolerance: float
    decision: Decision
    """Made on the unrounded error and U: rounding is for display only."""
    budget: UncertaintyBudget
    error_text: str
    U_text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "nominal": self.nominal,
            "unit": self.unit,
            "n": self.n,
            "ref_mean": self.ref_mean,
            "uut_mean": self.uut_mean,
            "uut_std": self.uut_std,
            "error": self.error,
            "correction": self.correction,
            "u_c": self.u_c,
            "dof_eff": "inf" if math.isinf(self.dof_eff) else self.dof_eff,
            "k": self.k,
            "U": self.U,
            "error_rounded": self.error_rounded,
            "U_unrounded": self.U_unrounded,
            "error_text": self.error_text,
            "U_text": self.U_text,
            "tolerance": self.tolerance,
            "decision": self.decision.to_dict(),
            "budget": self.budget.to_dict(),
        }


def _magnitude(value: Any, unit: str, field: str) -> float:
    # Units at the edges: accept a pint quantity (converted) or a float already in `unit`.
    if hasattr(value, "to") and hasattr(value, "magnitude"):
        return magnitude_in(value, unit, source="point", field=field)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{field} must be finite, got {value!r}")
    return number


def evaluate_comparison_point(
    nominal: Any,
    unit: str,
    uut_values: Sequence[float],
    ref_values: Sequence[float],
    reference_u: Any,
    reference_dof: float,
    uut_resolution: Any,
    tolerance: Any,
    rule: Rule = "guarded",
    p: float = DEFAULT_COVERAGE_PROBABILITY,
    ref_note: str = "",
    *,
    guard_band: Any = None,
    guard_band_factor: float | None = None,
) -> PointResult:
    """Evaluate E = x_UUT - x_ref at one point; readings are magnitudes in `unit`.

    `reference_u` is the reference's standard uncertainty (its certificate's U / k), and
    `tolerance` the +- half-width of the UUT's specification at this point (e.g. from
    `symmetric_tolerance`). Quantities with units are accepted wherever a value is expected.
    """
    parse_unit(unit, source="point", field="unit")
    nominal_value = _magnitude(nominal, unit, "nominal")
    reference_u_value = _magnitude(reference_u, unit, "reference_u")
    resolution_value = _magnitude(uut_resolution, unit, "uut_resolution")
    tolerance_value = _magnitude(tolerance, unit, "tolerance")
    if not reference_dof > 0:
        raise ValueError(f"{REFERENCE_STANDARD}: degrees of freedom must be > 0 (inf if exactly known), "
                         f"got {reference_dof!r}")
    if reference_u_value < 0:
        raise ValueError(f"reference_u must be >= 0, got {reference_u!r}")
    if tolerance_value <= 0:
        raise ValueError(
            f"tolerance is the +- half-width of the specification and must be > 0, got {tolerance!r}"
        )

    # The point is a measurement model like any other, evaluated by the one GUM core; the budget
    # table below is its presentation (same components, same numbers, with the notes a
    # certificate reviewer wants).
    uut = type_a(UUT_REPEATABILITY, uut_values, sensitivity=1.0, unit=unit)
    ref = type_a(REFERENCE_REPEATABILITY, ref_values, sensitivity=-1.0, unit=unit)
    assert uut.value is not None and ref.value is not None  # type_a always sets the mean
    inputs = {
        "x_uut": InputQuantity("x_uut", uut.value, uut.u, uut.dof, "t", unit=unit),
        "x_ref": InputQuantity("x_ref", ref.value, ref.u, ref.dof, "t", unit=unit),
        "d_std": InputQuantity("d_std", 0.0, reference_u_value, reference_dof,
                               "normal" if math.isinf(reference_dof) else "t", unit=unit),
        "d_res": InputQuantity.from_half_width("d_res", 0.0, resolution_value / 2.0, "rectangular", unit=unit),
    }
    model = MeasurementModel({"E": COMPARISON_MODEL}, inputs, output_units={"E": unit}, source="point")
    estimate = evaluate_gum(model, p)["E"]
    lines = {line.input: line for line in estimate.budget}
    standard = UncertaintyComponent(
        name=REFERENCE_STANDARD,
        kind="B",
        distribution=inputs["d_std"].distribution,
        u=reference_u_value,
        sensitivity=lines["d_std"].sensitivity,
        dof=reference_dof,
        note=ref_note,
    )
    budget = UncertaintyBudget(
        (uut, ref, standard, resolution(UUT_RESOLUTION, resolution_value, sensitivity=lines["d_res"].sensitivity)),
        p=p,
    )
    error = estimate.value
    u_c = estimate.u
    k = estimate.k
    U_unrounded = estimate.U
    reported = round_result(error, U_unrounded)
    w = None if guard_band is None else _magnitude(guard_band, unit, "guard_band")
    if guard_band_factor is not None:  # ILAC-G8:2019 4.2.3: w = r U, r chosen by the lab or the customer
        if w is not None:
            raise ValueError("give guard_band or guard_band_factor, not both")
        w = guard_band_factor * U_unrounded
    decision = decide(error, U_unrounded, -tolerance_value, tolerance_value, rule=rule, guard_band=w,
                      guard_band_label=None if guard_band_factor is None else f"{guard_band_factor:g} U")
    uut_std = uut.u * math.sqrt(len(uut_values))
    return PointResult(
        nominal=nominal_value,
        unit=unit,
        n=len(uut_values),
        ref_mean=ref.value,
        uut_mean=uut.value,
        uut_std=uut_std,
        error=error,
        correction=-error,
        u_c=u_c,
        dof_eff=estimate.dof,
        k=k,
        U=reported.U,
        error_rounded=reported.value,
        U_unrounded=U_unrounded,
        tolerance=tolerance_value,
        decision=decision,
        budget=budget,
        error_text=reported.value_text,
        U_text=reported.U_text,
    )
