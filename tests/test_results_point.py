"""A 10 V comparison point whose budget is worked out by hand below."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from scipy import stats

from daq.units import Q_
from results.point import PointResult, evaluate_comparison_point

UUT = [10.000010, 10.000012, 10.000008, 10.000011, 10.000009]  # mean 10.000010, s^2 = 10/4 uV^2
REF = [10.0] * 5  # a calibrator's set value: no observed scatter

# By hand, in uV: u(UUT) = sqrt(2.5/5) = sqrt(0.5); u(ref) = 0; u(standard) = 1.0 (U = 2, k = 2);
# u(resolution 1 uV) = 0.5/sqrt(3). u_c^2 = 0.5 + 0 + 1 + 1/12.
U_C = math.sqrt(0.5 + 1.0 + 1.0 / 12.0) * 1e-6
DOF = (0.5 + 1.0 + 1.0 / 12.0) ** 2 / (0.5**2 / 4)  # only the UUT type A has finite dof
K = stats.t.ppf((1 + 0.9545) / 2, DOF)


def evaluate(tolerance: float = 15e-6, **kwargs: Any) -> PointResult:
    return evaluate_comparison_point(
        10.0,
        "V",
        UUT,
        REF,
        1.0e-6,
        math.inf,
        1e-6,
        tolerance,
        ref_note="5522A cert, U = 2 uV (k = 2)",
        **kwargs,
    )


def test_error_budget_and_expanded_uncertainty_by_hand() -> None:
    r = evaluate()
    assert r.n == 5
    assert r.uut_mean == pytest.approx(10.000010, abs=1e-12)
    assert r.ref_mean == 10.0
    assert r.error == pytest.approx(10e-6, rel=1e-6)
    assert r.correction == -r.error
    assert r.uut_std == pytest.approx(math.sqrt(2.5) * 1e-6, rel=1e-6)
    assert r.u_c == pytest.approx(U_C, rel=1e-6)
    assert DOF == pytest.approx(40.11, abs=0.01)
    assert r.dof_eff == pytest.approx(DOF, rel=1e-6)
    assert r.k == pytest.approx(K, rel=1e-6)
    assert r.k == pytest.approx(2.06, abs=0.005)  # between the table's 2.13 (nu 20) and 2.05 (nu 50)
    assert r.U_unrounded == pytest.approx(K * U_C, rel=1e-6)  # 2.59 uV
    assert r.U == 2.6e-6
    assert r.U_text == "0.0000026"
    assert r.error_rounded == 1.00e-5
    assert r.error_text == "0.0000100"


def test_budget_rows_include_zero_reference_repeatability() -> None:
    rows = {row.name: row for row in evaluate().budget.as_rows()}
    assert list(rows) == [
        "UUT repeatability",
        "reference repeatability",
        "reference standard",
        "UUT resolution",
    ]
    ref = rows["reference repeatability"]
    assert ref.u == 0.0 and ref.percent == 0.0 and ref.sensitivity == -1.0
    assert "identical" in ref.note
    assert rows["reference standard"].sensitivity == -1.0
    assert rows["reference standard"].note == "5522A cert, U = 2 uV (k = 2)"
    assert rows["UUT resolution"].u == pytest.approx(0.5e-6 / math.sqrt(3))
    assert sum(row.percent for row in rows.values()) == pytest.approx(100.0)
    assert rows["reference standard"].percent == pytest.approx(100 * 1.0 / (0.5 + 1.0 + 1.0 / 12.0))


def test_decisions_against_tolerance() -> None:
    passed = evaluate(tolerance=15e-6)  # 10 uV error, acceptance limit 15 - 2.59 uV
    assert passed.decision.outcome == "pass"
    assert passed.decision.acceptance_upper == pytest.approx(15e-6 - K * U_C)
    undecided = evaluate(tolerance=8e-6)  # 8 < 10 < 8 + 2.59
    assert undecided.decision.statement == "conditional fail"
    assert evaluate(tolerance=7e-6).decision.outcome == "fail"  # 10 > 7 + 2.59
    simple = evaluate(tolerance=8e-6, rule="simple")
    assert simple.decision.outcome == "fail"
    assert simple.decision.rule.startswith("ILAC-G8:2019 simple acceptance")


def test_quantities_with_units_give_the_same_result() -> None:
    plain = evaluate()
    with_units = evaluate_comparison_point(
        Q_(10, "V"), "V", UUT, REF, Q_(1.0, "uV"), math.inf, Q_(1, "uV"), Q_(15, "uV")
    )
    assert with_units.nominal == 10.0
    assert with_units.tolerance == pytest.approx(15e-6)
    assert with_units.U_unrounded == pytest.approx(plain.U_unrounded, rel=1e-9)


def test_to_dict_is_json_ready() -> None:
    data = json.loads(json.dumps(evaluate().to_dict()))
    assert data["unit"] == "V"
    assert data["U"] == 2.6e-6
    assert data["decision"]["outcome"] == "pass"
    assert data["budget"]["components"][2]["dof"] == "inf"
    assert data["dof_eff"] == pytest.approx(DOF, rel=1e-6)


def test_infinite_dof_point_serialises_inf() -> None:
    r = evaluate_comparison_point(1.0, "V", [1.0, 1.0], [1.0, 1.0], 1e-6, math.inf, 1e-6, 1e-5)
    assert r.dof_eff == math.inf
    assert r.to_dict()["dof_eff"] == "inf"
    assert r.k == pytest.approx(2.0, abs=1e-5)


def test_clear_errors() -> None:
    with pytest.raises(ValueError, match="reference repeatability: a type A evaluation needs at least 2"):
        evaluate_comparison_point(10.0, "V", UUT, [10.0], 1e-6, math.inf, 1e-6, 1e-5)
    with pytest.raises(ValueError, match="tolerance"):
        evaluate(tolerance=0.0)
    with pytest.raises(ValueError, match="reference standard: degrees of freedom"):
        evaluate_comparison_point(10.0, "V", UUT, REF, 1e-6, 0, 1e-6, 1e-5)


def test_the_point_is_evaluated_by_the_general_gum_core() -> None:
    """The table and the reported numbers agree, and both come from the measurement-model core."""
    from results.measurement_model import MeasurementModel, evaluate_gum
    from results.model_inputs import InputQuantity

    r = evaluate()
    assert r.budget.u_c == pytest.approx(r.u_c, rel=1e-12)
    assert r.budget.dof_eff == pytest.approx(r.dof_eff, rel=1e-9)
    model = MeasurementModel(
        {"E": "uut - ref - std + res"},
        {"uut": InputQuantity.from_samples("uut", UUT, unit="V"), "ref": InputQuantity("ref", 10.0, 0.0, 4, unit="V"),
         "std": InputQuantity("std", 0.0, 1e-6, math.inf, unit="V"),
         "res": InputQuantity.from_half_width("res", 0.0, 0.5e-6, "rectangular", unit="V")},
        output_units={"E": "V"},
    )
    e = evaluate_gum(model)["E"]
    assert (e.value, e.u, e.dof, e.k) == pytest.approx((r.error, r.u_c, r.dof_eff, r.k), rel=1e-9)


def test_a_configured_guard_band_is_a_multiple_of_U() -> None:
    full = evaluate(tolerance=12e-6)  # error 10 uV, U 2.59 uV: 10 > 12 - 2.59 -> undecided with w = U
    half = evaluate(tolerance=12e-6, guard_band_factor=0.5)  # 10 <= 12 - 1.3 -> pass with w = U/2
    assert full.decision.outcome == "undecided" and half.decision.outcome == "pass"
    assert half.decision.guard_band == pytest.approx(0.5 * half.U_unrounded)
    assert half.decision.rule == "ILAC-G8:2019 guarded acceptance, w = 0.5 U"
