"""Calibration curves against published and hand-computed numbers.

GUM H.3 (JCGM 100:2008, Annex H.3, Table H.6): the thermometer data and the published results
y1 = -0.1712 °C, u(y1) = 0.0029 °C, y2 = 0.00218, u(y2) = 0.00067, r(y1, y2) = -0.930,
s = 0.0035 °C, b(30 °C) = -0.1494 °C with u = 0.0041 °C. The same data and results (with more
digits from GTC's own run) are in the GTC documentation, "Calibration of a thermometer (GUM H3)",
https://gtc.readthedocs.io/en/latest/API/GUM_H3.html (MSLNZ/GTC docs/API/GUM_H3.rst).

IEC 60751: A = 3.9083e-3, B = -5.775e-7, C = -4.183e-12, and the Pt100 table values
R(-200 °C) = 18.52 ohm, R(-100 °C) = 60.26 ohm, R(100 °C) = 138.51 ohm, R(850 °C) = 390.48 ohm.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from daq.errors import ConfigError
from results.fits import (
    IEC_60751_A,
    IEC_60751_B,
    IEC_60751_C,
    CallendarVanDusenFit,
    cvd_resistance,
    cvd_temperature,
    fit_callendar_van_dusen,
    fit_json,
    fit_line,
    fit_polynomial,
    resistance_ratio,
)

# JCGM 100:2008 Table H.6: thermometer readings t_k and observed corrections b_k = t_R,k - t_k, in °C.
H3_T = [21.521, 22.012, 22.512, 23.003, 23.507, 23.999, 24.513, 25.002, 25.503, 26.010, 26.511]
H3_B = [-0.171, -0.169, -0.166, -0.159, -0.164, -0.165, -0.156, -0.157, -0.159, -0.161, -0.160]
H3_T0 = 20.0


def _round(value: float, decimals: int) -> float:
    return round(value, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


# --------------------------------------------------------------------------------------------
# GUM H.3
# --------------------------------------------------------------------------------------------


def test_gum_h3_published_numbers_to_published_digits() -> None:
    fit = fit_line(H3_T, H3_B, x_offset=H3_T0)
    y1, y2 = fit.coefficients
    assert _round(y1.value, 4) == -0.1712
    assert _round(y1.u, 4) == 0.0029
    assert _round(y2.value, 5) == 0.00218
    assert _round(y2.u, 5) == 0.00067
    assert _round(float(fit.correlation[0, 1]), 3) == -0.930
    assert _round(fit.residual_sd, 4) == 0.0035
    assert fit.dof == 9
    b30 = fit.predict(30.0)
    assert _round(b30.y, 4) == -0.1494
    assert _round(b30.u_mean, 4) == 0.0041


def test_gum_h3_agrees_with_gtc_to_full_precision() -> None:
    # GTC prints intercept -0.17120379013135004, slope 0.0021826977398872894 with
    # u = 0.0006679387732278323, and the sum of squared residuals 0.000110096583109.
    fit = fit_line(H3_T, H3_B, x_offset=H3_T0)
    assert fit.coefficient("a0").value == pytest.approx(-0.17120379013135004, rel=1e-12)
    assert fit.coefficient("a1").value == pytest.approx(0.0021826977398872894, rel=1e-12)
    assert fit.coefficient("a1").u == pytest.approx(0.0006679387732278323, rel=1e-12)
    assert float(fit.residuals @ fit.residuals) == pytest.approx(0.000110096583109, rel=1e-11)


def test_gum_h3_through_the_json_contract() -> None:
    out = fit_json({"x": H3_T, "y": H3_B, "model": "line", "x_offset": 20, "predict": [30]}, source="h3.json")
    json.dumps(out, allow_nan=False)
    assert out["model"] == "line"
    assert out["weighted"] is False
    assert "chi2" not in out and "birge_ratio" not in out
    assert [c["name"] for c in out["coefficients"]] == ["a0", "a1"]
    assert _round(out["coefficients"][0]["value"], 4) == -0.1712
    assert _round(out["coefficients"][1]["u"], 5) == 0.00067
    assert _round(out["correlation"][0][1], 3) == -0.930
    assert _round(out["residual_sd"], 4) == 0.0035
    assert out["dof"] == 9
    assert len(out["residuals"]) == 11
    (p,) = out["predictions"]
    assert p["x"] == 30.0
    assert _round(p["y"], 4) == -0.1494
    assert _round(p["u_mean"], 4) == 0.0041
    assert p["u_new"] == pytest.approx(math.hypot(p["u_mean"], out["residual_sd"]), rel=1e-12)


def test_offset_only_reparameterises_the_same_line() -> None:
    with_offset = fit_line(H3_T, H3_B, x_offset=H3_T0)
    without = fit_line(H3_T, H3_B)
    a0, a1 = without.values
    assert with_offset.values[0] == pytest.approx(a0 + a1 * H3_T0, rel=1e-12)
    assert with_offset.values[1] == pytest.approx(a1, rel=1e-12)
    for x in (20.0, 24.0, 30.0):
        assert with_offset.predict(x).y == pytest.approx(without.predict(x).y, rel=1e-12)
        assert with_offset.predict(x).u_mean == pytest.approx(without.predict(x).u_mean, rel=1e-10)


# --------------------------------------------------------------------------------------------
# Straight lines and polynomials
# --------------------------------------------------------------------------------------------


def test_exact_line_recovers_slope_and_intercept() -> None:
    x = [0.0, 1.0, 2.0, 3.0, 4.0]
    y = [3.0 - 2.0 * v for v in x]
    fit = fit_line(x, y)
    assert fit.coefficient("a0").value == pytest.approx(3.0, abs=1e-14)
    assert fit.coefficient("a1").value == pytest.approx(-2.0, abs=1e-14)
    assert fit.residual_sd == pytest.approx(0.0, abs=1e-14)
    assert np.all(np.isfinite(fit.correlation))
    out = fit_json({"x": x, "y": y, "model": "line", "predict": [10]}, source="exact.json")
    json.dumps(out, allow_nan=False)  # an exact fit has zero variances: correlation must not be NaN
    assert out["predictions"][0]["y"] == pytest.approx(-17.0, abs=1e-12)


def test_exact_zero_residuals_give_identity_correlation_not_nan() -> None:
    fit = fit_line([0, 1, 2], [0, 0, 0])
    assert np.all(fit.residuals == 0)
    assert np.array_equal(fit.correlation, np.eye(2))


@pytest.mark.parametrize("degree", [2, 3])
def test_exact_polynomial_recovers_coefficients_for_the_offset_variable(degree: int) -> None:
    a = [0.5, -1.25, 0.03, -0.0004][: degree + 1]
    x0 = 20.0
    x = np.linspace(10.0, 40.0, 9)
    y = np.polynomial.polynomial.polyval(x - x0, a)
    fit = fit_polynomial(x, y, degree, x_offset=x0)
    assert fit.model == f"poly{degree}"
    assert fit.names == tuple(f"a{k}" for k in range(degree + 1))
    np.testing.assert_allclose(fit.values, a, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_poly3_covariance_matches_numpy_polyfit(weighted: bool) -> None:
    rng = np.random.default_rng(7)
    x = np.linspace(-5.0, 15.0, 12)
    u = np.linspace(0.01, 0.03, 12)
    y = 1.0 + 0.2 * x - 0.03 * x**2 + 0.001 * x**3 + rng.normal(0.0, u)
    if weighted:
        fit = fit_polynomial(x, y, 3, u_y=u)
        coeffs, cov = np.polyfit(x, y, 3, w=1.0 / u, cov="unscaled")
    else:
        fit = fit_polynomial(x, y, 3)
        coeffs, cov = np.polyfit(x, y, 3, cov=True)
    np.testing.assert_allclose(fit.values, coeffs[::-1], rtol=1e-9)
    np.testing.assert_allclose(fit.covariance, cov[::-1, ::-1], rtol=1e-8)


def test_ill_conditioned_raw_x_is_solved_stably() -> None:
    # x near 1000 with a cubic in raw x: the naive Vandermonde has condition ~1e17; the fit is
    # done on centred x, so the curve is as good as with a sensible offset.
    x = np.linspace(1000.0, 1010.0, 11)
    y = 0.1 + 0.02 * (x - 1005.0) - 0.003 * (x - 1005.0) ** 2 + 1e-4 * (x - 1005.0) ** 3
    raw = fit_polynomial(x, y, 3)
    centred = fit_polynomial(x, y, 3, x_offset=1005.0)
    np.testing.assert_allclose(centred.values, [0.1, 0.02, -0.003, 1e-4], rtol=1e-9, atol=1e-13)
    for v in (1000.0, 1003.3, 1010.0):
        assert raw.value(v) == pytest.approx(centred.value(v), abs=1e-12)


def test_weighted_line_against_hand_computation() -> None:
    # x = 0, 1, 2; y = 0, 1, 3; u = 1, 1, 2 -> w = 1, 1, 1/4.
    # S = 9/4, Sx = 3/2, Sxx = 2, Sy = 7/4, Sxy = 5/2, D = S Sxx - Sx^2 = 9/4.
    # a1 = (S Sxy - Sx Sy)/D = 4/3; a0 = (Sxx Sy - Sx Sxy)/D = -1/9;
    # var a0 = Sxx/D = 8/9, var a1 = S/D = 1, cov = -Sx/D = -2/3;
    # residuals 1/9, -2/9, 4/9; chi2 = 1/81 + 4/81 + 4/81 = 1/9; Birge = 1/3; s = sqrt(21)/9.
    fit = fit_line([0.0, 1.0, 2.0], [0.0, 1.0, 3.0], u_y=[1.0, 1.0, 2.0])
    np.testing.assert_allclose(fit.values, [-1 / 9, 4 / 3], rtol=1e-13)
    np.testing.assert_allclose(fit.covariance, [[8 / 9, -2 / 3], [-2 / 3, 1.0]], rtol=1e-13)
    np.testing.assert_allclose(fit.residuals, [1 / 9, -2 / 9, 4 / 9], rtol=1e-12)
    assert fit.chi2 == pytest.approx(1 / 9, rel=1e-13)
    assert fit.birge_ratio == pytest.approx(1 / 3, rel=1e-13)
    assert fit.residual_sd == pytest.approx(math.sqrt(21) / 9, rel=1e-13)
    assert fit.dof == 1
    assert fit.correlation[0, 1] == pytest.approx((-2 / 3) / math.sqrt(8 / 9), rel=1e-13)
    out = fit_json({"x": [0, 1, 2], "y": [0, 1, 3], "u_y": [1, 1, 2], "model": "line"}, source="w.json")
    assert out["weighted"] is True
    assert out["chi2"] == pytest.approx(1 / 9, rel=1e-13)
    assert out["birge_ratio"] == pytest.approx(1 / 3, rel=1e-13)


def test_weighted_covariance_is_not_rescaled_by_the_scatter() -> None:
    x = [0.0, 1.0, 2.0, 3.0]
    y = [0.0, 1.5, 1.5, 3.0]
    u = [0.1] * 4
    small = fit_line(x, y, u_y=u)
    # covariance = (A^T W A)^-1 depends on u only, and scales with u^2; the Birge ratio carries the misfit.
    big = fit_line(x, y, u_y=[1.0] * 4)
    np.testing.assert_allclose(small.covariance * 100, big.covariance, rtol=1e-12)
    assert small.birge_ratio == pytest.approx(10 * big.birge_ratio, rel=1e-12)  # type: ignore[operator]


def test_prediction_uncertainty_formula_for_an_unweighted_line() -> None:
    # u_mean^2 = s^2 (1/n + (x - xbar)^2 / Sxx); u_new^2 = u_mean^2 + s^2 (textbook prediction of a line).
    fit = fit_line(H3_T, H3_B)
    t = np.array(H3_T)
    s = fit.residual_sd
    sxx = float(np.sum((t - t.mean()) ** 2))
    for x in (21.0, 24.0, 30.0, 35.0):
        p = fit.predict(x)
        expected = s * math.sqrt(1 / len(t) + (x - t.mean()) ** 2 / sxx)
        assert p.u_mean == pytest.approx(expected, rel=1e-10)
        assert p.u_new == pytest.approx(math.hypot(expected, s), rel=1e-10)


def test_prediction_uncertainty_is_g_c_gt_of_the_reported_coefficients() -> None:
    x = np.linspace(0.0, 10.0, 8)
    y = np.array([0.1, 0.95, 2.2, 2.9, 4.1, 5.05, 5.9, 7.2]) + 0.01 * x**2
    u = np.full(8, 0.05)
    fit = fit_polynomial(x, y, 2, u_y=u, x_offset=5.0)
    for xv in (-2.0, 3.0, 12.0):
        g = np.array([1.0, xv - 5.0, (xv - 5.0) ** 2])
        p = fit.predict(xv)
        assert p.y == pytest.approx(float(g @ fit.values), rel=1e-12)
        assert p.u_mean == pytest.approx(math.sqrt(g @ fit.covariance @ g), rel=1e-10)
        assert p.u_new == pytest.approx(math.hypot(p.u_mean, fit.residual_sd), rel=1e-12)
        assert fit.predict(xv, u_observation=0.05).u_new == pytest.approx(math.hypot(p.u_mean, 0.05), rel=1e-12)


def test_inverse_of_a_polynomial_by_newton() -> None:
    fit = fit_line(H3_T, H3_B, x_offset=H3_T0)
    inv = fit.solve_for_x(-0.16, u_y=0.001)
    assert fit.value(inv.x) == pytest.approx(-0.16, abs=1e-15)
    slope = fit.derivative(inv.x)
    assert inv.u_x == pytest.approx(math.hypot(0.001, fit.u_curve(inv.x)) / abs(slope), rel=1e-12)


# --------------------------------------------------------------------------------------------
# Callendar–Van Dusen
# --------------------------------------------------------------------------------------------

CVD_T = [-200.0, -150.0, -100.0, -50.0, -20.0, 0.0, 50.0, 100.0, 200.0, 300.0, 420.0, 660.0, 850.0]


def test_nominal_pt100_matches_iec_60751_table() -> None:
    table = {-200.0: 18.52, -100.0: 60.26, 0.0: 100.00, 100.0: 138.51, 850.0: 390.48}
    for t, r in table.items():
        assert round(cvd_resistance(t), 2) == r
    assert resistance_ratio(100.0) == pytest.approx(1.385055, rel=1e-12)


@pytest.mark.parametrize("r0", [None, 100.0])
def test_cvd_fit_recovers_iec_60751_coefficients(r0: float | None) -> None:
    r = [cvd_resistance(t, 100.0) for t in CVD_T]
    fit = fit_callendar_van_dusen(CVD_T, r, r0=r0)
    assert isinstance(fit, CallendarVanDusenFit)
    assert fit.names == ("R0", "A", "B", "C")
    assert fit.r0_fitted is (r0 is None)
    assert fit.coefficient("R0").value == pytest.approx(100.0, rel=1e-12)
    assert fit.coefficient("A").value == pytest.approx(IEC_60751_A, rel=1e-10)
    assert fit.coefficient("B").value == pytest.approx(IEC_60751_B, rel=1e-9)
    assert fit.coefficient("C").value == pytest.approx(IEC_60751_C, rel=1e-7)
    assert fit.dof == len(CVD_T) - (4 if r0 is None else 3)
    assert fit.residual_sd < 1e-10


def test_cvd_without_points_below_zero_fits_only_a_and_b() -> None:
    t = [0.0, 50.0, 100.0, 200.0, 300.0, 420.0]
    fit = fit_callendar_van_dusen(t, [cvd_resistance(v, 25.0) for v in t])
    assert fit.names == ("R0", "A", "B")
    assert fit.coefficient("R0").value == pytest.approx(25.0, rel=1e-12)
    assert fit.coefficient("A").value == pytest.approx(IEC_60751_A, rel=1e-10)
    assert fit.coefficient("B").value == pytest.approx(IEC_60751_B, rel=1e-9)
    with pytest.raises(ValueError, match="C was not fitted"):
        fit.predict(-10.0)


def test_cvd_inverse_and_its_uncertainty() -> None:
    for t in (-195.0, -80.0, -0.5, 0.0, 0.5, 156.6, 419.5, 849.0):
        assert cvd_temperature(cvd_resistance(t)) == pytest.approx(t, abs=1e-9)
    r = [cvd_resistance(v) for v in CVD_T]
    fit = fit_callendar_van_dusen(CVD_T, r, r0=100.0)
    for t in (-120.0, 25.0, 600.0):
        inv = fit.temperature(cvd_resistance(t), u_r=0.002)
        assert inv.x == pytest.approx(t, abs=1e-9)
        # exact data and exact R0: the curve has no uncertainty; u(t) = u(R) / (dR/dt)
        dr_dt = 100.0 * (IEC_60751_A + 2 * IEC_60751_B * t + (IEC_60751_C * (4 * t**3 - 300 * t**2) if t < 0 else 0))
        assert inv.u_x == pytest.approx(0.002 / dr_dt, rel=1e-6)


def test_cvd_known_r0_uncertainty_propagates_like_a_finite_difference() -> None:
    rng = np.random.default_rng(3)
    r = np.array([cvd_resistance(v) for v in CVD_T]) + rng.normal(0, 0.002, len(CVD_T))
    u_r0 = 0.004
    fit = fit_callendar_van_dusen(CVD_T, r, r0=100.0, u_r0=u_r0)
    base = fit_callendar_van_dusen(CVD_T, r, r0=100.0)
    h = 1e-4
    up = fit_callendar_van_dusen(CVD_T, r, r0=100.0 + h)
    down = fit_callendar_van_dusen(CVD_T, r, r0=100.0 - h)
    sensitivity = (up.values[1:] - down.values[1:]) / (2 * h)
    expected = base.covariance[1:, 1:] + np.outer(sensitivity, sensitivity) * u_r0**2
    np.testing.assert_allclose(fit.covariance[1:, 1:], expected, rtol=1e-6)
    np.testing.assert_allclose(fit.covariance[0, 1:], sensitivity * u_r0**2, rtol=1e-6)
    assert fit.coefficient("R0").u == u_r0


def test_cvd_through_the_json_contract() -> None:
    r = [cvd_resistance(v) for v in CVD_T]
    u = [0.001] * len(CVD_T)
    out = fit_json({"x": CVD_T, "y": r, "u_y": u, "model": "cvd", "predict": [-50, 0, 100], "x_unit": "degC",
                    "y_unit": "ohm"}, source="prt.json")
    json.dumps(out, allow_nan=False)
    assert [c["name"] for c in out["coefficients"]] == ["R0", "A", "B", "C"]
    assert out["coefficients"][1]["value"] == pytest.approx(IEC_60751_A, rel=1e-9)
    assert out["r0_fitted"] is True
    assert out["weighted"] is True
    assert out["chi2"] < 1e-12
    assert out["x_unit"] == "degC" and out["y_unit"] == "ohm"
    assert [p["y"] for p in out["predictions"]] == pytest.approx([cvd_resistance(t) for t in (-50, 0, 100)])
    known = fit_json({"x": CVD_T, "y": r, "model": "cvd", "r0": 100, "u_r0": 0.001}, source="prt.json")
    assert known["r0_fitted"] is False
    assert known["coefficients"][0] == {"name": "R0", "value": 100.0, "u": 0.001}


# --------------------------------------------------------------------------------------------
# Bad input: a ConfigError naming the field and the fix, never a NaN
# --------------------------------------------------------------------------------------------

GOOD: dict[str, Any] = {"x": [1.0, 2.0, 3.0, 4.0], "y": [1.1, 1.9, 3.2, 3.9], "model": "line"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"y": [1.0, 2.0, 3.0]}, "y"),  # length mismatch
        ({"u_y": [0.1, 0.1]}, "u_y"),  # length mismatch
        ({"x": [1.0, 2.0], "y": [1.0, 2.0]}, "x"),  # a line needs 3 points
        ({"model": "poly3"}, "x"),  # 4 points, 4 coefficients
        ({"model": "poly2", "x": [1.0, 1.0, 2.0, 2.0]}, "x"),  # only 2 distinct x for 3 coefficients
        ({"x": [5.0, 5.0, 5.0, 5.0]}, "x"),  # all x equal
        ({"u_y": [0.1, 0.0, 0.1, 0.1]}, "u_y[1]"),
        ({"u_y": [0.1, 0.1, -0.2, 0.1]}, "u_y[2]"),
        ({"model": "cubic"}, "model"),
        ({"model": None}, "model"),
        ({"x": [1.0, "2", 3.0, 4.0]}, "x[1]"),
        ({"x": [1.0, True, 3.0, 4.0]}, "x[1]"),
        ({"y": [1.0, 2.0, None, 4.0]}, "y[2]"),
        ({"y": [1.0, 2.0, float("nan"), 4.0]}, "y[2]"),
        ({"x": "1, 2, 3, 4"}, "x"),
        ({"u_y": 0.1}, "u_y"),
        ({"x_offset": "twenty"}, "x_offset"),
        ({"predict": [30, "forty"]}, "predict[1]"),
        ({"predict": 30}, "predict"),
        ({"uy": [0.1, 0.1, 0.1, 0.1]}, "uy"),  # misspelt key: refused, not silently unweighted
        ({"r0": 100}, "r0"),  # cvd-only key on a polynomial
        ({"x_unit": "bananas"}, "x_unit"),
    ],
)
def test_bad_input_names_the_field_and_a_fix(changes: dict[str, Any], field: str) -> None:
    data = {**GOOD, **changes}
    if changes.get("model", "") is None:
        del data["model"]
    with pytest.raises(ConfigError) as info:
        fit_json(data, source="bad.json")
    assert info.value.source == "bad.json"
    assert info.value.field == field
    assert info.value.fix


def test_missing_x_and_non_object() -> None:
    with pytest.raises(ConfigError) as info:
        fit_json({"y": [1, 2, 3], "model": "line"}, source="bad.json")
    assert info.value.field == "x"
    with pytest.raises(ConfigError) as info:
        fit_json([1, 2, 3], source="bad.json")  # type: ignore[arg-type]
    assert info.value.fix


CVD_GOOD: dict[str, Any] = {"x": CVD_T, "y": [cvd_resistance(t) for t in CVD_T], "model": "cvd"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"x": [-250.0] + CVD_T[1:]}, "x[0]"),  # outside the IEC 60751 range
        ({"y": [-1.0] + CVD_T[1:]}, "y[0]"),  # a resistance must be positive
        ({"r0": 0}, "r0"),
        ({"r0": "100 ohm"}, "r0"),
        ({"u_r0": 0.01}, "u_r0"),  # u_r0 without r0
        ({"r0": 100, "u_r0": -0.01}, "u_r0"),
        ({"x_offset": 20}, "x_offset"),
        ({"x": [0.0, 100.0, 200.0], "y": [100.0, 138.5, 175.9]}, "x"),  # 3 points, 3 coefficients
    ],
)
def test_bad_cvd_input_names_the_field_and_a_fix(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        fit_json({**CVD_GOOD, **changes}, source="prt.json")
    assert info.value.field == field
    assert info.value.fix


def test_cvd_prediction_below_zero_without_c_is_a_config_error() -> None:
    t = [0.0, 100.0, 200.0, 300.0]
    with pytest.raises(ConfigError) as info:
        fit_json({"x": t, "y": [cvd_resistance(v) for v in t], "model": "cvd", "predict": [50, -10]}, source="prt.json")
    assert info.value.field == "predict[1]"
    assert "below 0" in info.value.problem
