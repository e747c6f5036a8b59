"""Monte Carlo propagation (JCGM 101:2008) against published results and exact answers.

Published values reproduced:
- JCGM 101 9.2, additive model Y = X1 + X2 + X3 + X4, probabilistically symmetric 95 %
  intervals: Table 2 (all N(0, 1)): y = 0.00, u(y) = 2.00, [-3.92, 3.92]; Table 3 (all
  rectangular with standard deviation 1): u(y) = 2.00, [-3.88, 3.88]. The same table values are
  asserted by Sandia's suncal (sandialabs/suncal, test/test_examples.py, test_montecarlo, "Values
  from Table 2/3 in GUM Supplement 1"). Exact checks: 1.96 x 2 = 3.920 and the 97.5 % point of
  the Irwin-Hall sum of four rectangulars, 3.8794.
- JCGM 101 9.2.4 (three N(0, 1) and one rectangular of standard deviation 10, half-width
  10 sqrt(3)): the GUM interval +-19.9 is far too long; the exact 95 % interval of the
  convolution is +-16.99 (computed by quadrature here); the GUM is not validated.
- NPL Best Practice Guide 6 (DEM-ES-011) 9.2, y = ln(x), x rectangular on [0.1, 1.1] (as
  asserted by suncal test_NPLlog): GUM y = -0.511, u = 0.481; Monte Carlo y = -0.665,
  u = 0.606, shortest 95 % interval [-1.895, 0.095]. Exactly: E[ln x] = -0.6649 and, the density
  rising, the shortest interval is [ln 0.15, ln 1.1] = [-1.897, 0.0953].
- JCGM 101 9.3, mass calibration: the first-order GUM u = 0.0539 mg with interval
  [1.1285, 1.3395] mg; with the higher-order terms u = 0.0750 mg; Monte Carlo u = 0.075 mg
  (exactly 0.07548 mg, derived below). The clause-8 pattern: the first-order GUM is not
  validated (d ~ 0.044 mg); with the higher-order terms it is for n_dig = 1, not for n_dig = 2.
- GUM H.1 end gauge: the Monte Carlo mean and u agree with the GUM including its second-order
  terms (34 nm, GUM H.1.7), which are exact for this bilinear model, to the tolerance of 7.9.2.
"""

from __future__ import annotations

import copy
import math
import time
import tracemalloc

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from daq.errors import ConfigError
from results.coverage_intervals import coverage_count, shortest_interval, symmetric_interval
from results.measurement_model import MeasurementModel, evaluate_gum
from results.model_inputs import InputQuantity
from results.montecarlo import (
    adaptive_batch_size,
    evaluate_mc,
    mc_json,
    numerical_tolerance,
    validate_gum,
)

SQRT3 = math.sqrt(3.0)

H1 = {
    "outputs": {"l": "ls + d - ls*(da*theta + as_*dtheta)"},
    "inputs": {
        "ls": {"value": 50000623.6, "u": 25, "dof": 18, "unit": "nm"},
        "d": {"value": 215, "u": 9.7, "dof": 25.6, "unit": "nm"},
        "da": {"value": 0, "distribution": "rectangular", "half_width": 1e-6, "dof": 50, "unit": "1/K"},
        "theta": {"value": -0.1, "u": 0.41, "unit": "K"},
        "as_": {"value": 11.5e-6, "distribution": "rectangular", "half_width": 2e-6, "unit": "1/K"},
        "dtheta": {"value": 0, "distribution": "rectangular", "half_width": 0.05, "dof": 2, "unit": "K"},
    },
    "coverage": 0.99,
}

MASS = {  # JCGM 101 9.3: calibration of a 100 g weight against a reference, with air buoyancy
    "outputs": {"dm": "(mRc + dmRc)*(1 + (rho_a - rho_a0)*(1/rho_W - 1/rho_R)) - m_nom"},
    "inputs": {
        "mRc": {"value": 100000.000, "u": 0.050, "unit": "mg"},
        "dmRc": {"value": 1.234, "u": 0.020, "unit": "mg"},
        "rho_a": {"value": 1.20, "distribution": "rectangular", "half_width": 0.10, "unit": "kg/m**3"},
        "rho_W": {"value": 8e3, "distribution": "rectangular", "half_width": 1e3, "unit": "kg/m**3"},
        "rho_R": {"value": 8e3, "distribution": "rectangular", "half_width": 0.05e3, "unit": "kg/m**3"},
        "rho_a0": {"value": 1.2, "u": 0, "unit": "kg/m**3"},
        "m_nom": {"value": 100000, "u": 0, "unit": "mg"},
    },
    "coverage": 0.95,
}


def additive(fourth: InputQuantity | None = None, shape: str = "normal") -> MeasurementModel:
    """JCGM 101 9.2: Y = X1 + X2 + X3 + X4, each with expectation 0 and standard deviation 1."""
    names = ["X1", "X2", "X3", "X4"]
    if shape == "normal":
        inputs = {n: InputQuantity(n, 0.0, 1.0) for n in names}
    else:
        inputs = {n: InputQuantity.from_half_width(n, 0.0, SQRT3, "rectangular") for n in names}
    if fourth is not None:
        inputs["X4"] = fourth
    return MeasurementModel({"Y": "X1 + X2 + X3 + X4"}, inputs)


def model_of(outputs: dict[str, str], *inputs: InputQuantity, correlations: object = None) -> MeasurementModel:
    return MeasurementModel(outputs, {q.name: q for q in inputs}, correlations)  # type: ignore[arg-type]


# -- numerical tolerance and coverage intervals -------------------------------------------------


@pytest.mark.parametrize(
    ("u", "digits", "delta"),
    [(0.075, 2, 0.0005), (2.0, 2, 0.05), (34.0, 2, 0.5), (0.0539, 2, 0.0005), (0.0999, 2, 0.005),
     (5.73e-5, 2, 5e-7), (2.0, 1, 0.5), (0.0, 2, 0.0)],
)
def test_numerical_tolerance_follows_jcgm101_7_9_2(u: float, digits: int, delta: float) -> None:
    assert numerical_tolerance(u, digits) == pytest.approx(delta, rel=1e-12)


def test_adaptive_batch_size_is_max_of_j_and_ten_thousand() -> None:
    assert adaptive_batch_size(0.95) == 10_000  # J = 2000
    assert adaptive_batch_size(0.999) == 100_000  # J = 100 / 0.001
    assert adaptive_batch_size(0.9545) == 10_000


def test_coverage_interval_indices_of_7_7() -> None:
    values = np.arange(1.0, 101.0)  # y_(r) = r
    assert coverage_count(100, 0.90) == 90
    interval = symmetric_interval(values, 0.90)  # r = (100 - 90)/2 = 5: [y_(5), y_(95)]
    assert (interval.low, interval.high) == (5.0, 95.0)
    odd = symmetric_interval(np.arange(1.0, 102.0), 0.90)  # q = int(90.9 + 0.5) = 91, (101 - 91)/2 = 5
    assert (odd.low, odd.high) == (5.0, 96.0)
    assert coverage_count(100_000, 0.95) == 95_000  # 0.95 * 1e5 is 94999.99999999999 in binary
    skewed = np.sort(np.concatenate([np.linspace(0.0, 1.0, 90), np.linspace(1.0, 100.0, 10)]))
    short = shortest_interval(skewed, 0.90)
    assert (short.low, short.high) == (0.0, 1.0)
    with pytest.raises(ValueError, match="too few"):
        coverage_count(10, 0.99)


# -- sampling every input distribution ----------------------------------------------------------


def test_every_distribution_is_sampled_with_its_mean_and_standard_deviation() -> None:
    inputs = [
        InputQuantity("n", 10.0, 0.5),
        InputQuantity("t", 1.0, 0.2, dof=6, distribution="t"),
        InputQuantity.from_half_width("r", 5.0, 2.0, "rectangular"),
        InputQuantity.from_half_width("tr", -3.0, 1.5, "triangular"),
        InputQuantity.from_half_width("a", 0.0, 4.0, "arcsine"),
    ]
    model = model_of({f"y_{q.name}": q.name for q in inputs}, *inputs)
    result = evaluate_mc(model, trials=200_000, seed=3)
    for q in inputs:
        out = result[f"y_{q.name}"]
        expected_sd = q.u * math.sqrt(q.dof / (q.dof - 2)) if q.distribution == "t" else q.u
        assert out.value == pytest.approx(q.value, abs=4 * expected_sd / math.sqrt(200_000))
        assert out.u == pytest.approx(expected_sd, rel=0.01)
        if q.half_width is not None:  # bounded: nothing outside x +- a
            assert q.value - q.half_width <= out.interval.low and out.interval.high <= q.value + q.half_width
    # arcsine: the U shape puts 95.45 % of the probability close to the bounds
    arcsine = result["y_a"].interval
    assert arcsine.high == pytest.approx(4.0 * math.sin(math.pi / 2 * 0.9545), abs=0.01)
    # triangular 95.45 % point: a (1 - sqrt(1 - p)) from the centre
    assert result["y_tr"].interval.high == pytest.approx(-3.0 + 1.5 * (1 - math.sqrt(1 - 0.9545)), abs=0.01)


def test_correlated_normal_inputs_reproduce_the_requested_correlation() -> None:
    a, b, c = InputQuantity("a", 1.0, 0.1), InputQuantity("b", 2.0, 0.3), InputQuantity("c", 0.0, 1.0)
    model = model_of({"ya": "a", "yb": "b", "yc": "c"}, a, b, c, correlations=[("a", "b", 0.7)])
    result = evaluate_mc(model, trials=100_000, seed=5)
    assert result.r("ya", "yb") == pytest.approx(0.7, abs=0.01)
    assert result.r("ya", "yc") == pytest.approx(0.0, abs=0.015)
    assert result["ya"].u == pytest.approx(0.1, rel=0.01)
    assert result["yb"].u == pytest.approx(0.3, rel=0.01)
    assert result.covariance[0, 1] == pytest.approx(0.7 * 0.1 * 0.3, rel=0.03)
    pairs = {(p[0], p[1]): p[2] for p in result.to_dict()["correlations"]}
    assert pairs[("ya", "yb")] == pytest.approx(0.7, abs=0.01)


def test_a_correlation_of_one_is_drawn_by_eigen_decomposition() -> None:
    # r = 1 makes the covariance only semi-definite: Cholesky fails, the eigen route must not.
    a, b = InputQuantity("a", 1.0, 0.2), InputQuantity("b", 3.0, 0.2)
    model = model_of({"diff": "b - a", "total": "a + b"}, a, b, correlations=[("a", "b", 1.0)])
    result = evaluate_mc(model, trials=50_000, seed=1)
    assert result["diff"].u < 1e-12
    assert result["diff"].value == pytest.approx(2.0, abs=1e-12)
    assert result["total"].u == pytest.approx(0.4, rel=0.02)


def test_correlated_type_a_inputs_are_a_joint_t_with_the_gum_correlations() -> None:
    # GUM H.2: V, I, phi from five simultaneous readings; JCGM 102 6.5 multivariate t, nu = 4.
    data = {
        "outputs": {"R": "V/I*cos(phi)", "X": "V/I*sin(phi)", "Z": "V/I"},
        "inputs": {
            "V": {"samples": [5.007, 4.994, 5.005, 4.990, 4.999], "unit": "V"},
            "I": {"samples": [19.663, 19.639, 19.640, 19.685, 19.678], "unit": "mA"},
            "phi": {"samples": [1.0456, 1.0438, 1.0468, 1.0428, 1.0433], "unit": "rad"},
        },
        "correlations": [["V", "I", "samples"], ["V", "phi", "samples"], ["I", "phi", "samples"]],
    }
    model = MeasurementModel.from_json(data, source="h2.json")
    mc = evaluate_mc(model, trials=200_000, seed=2)
    gum = evaluate_gum(model)
    for a, b in (("R", "X"), ("R", "Z"), ("X", "Z")):
        assert mc.r(a, b) == pytest.approx(gum.r(a, b), abs=0.02)  # GUM H.4: -0.588, -0.485, 0.993
    # the t with nu = 4 has standard deviation sqrt(4/2) = 1.41 times the GUM's u
    assert mc["Z"].u == pytest.approx(math.sqrt(2.0) * gum["Z"].u, rel=0.05)
    assert mc["R"].value == pytest.approx(127.732, abs=0.002)


@pytest.mark.parametrize(
    ("second", "fragment"),
    [
        (InputQuantity.from_half_width("b", 0.0, 1.0, "rectangular"), "'b' is rectangular"),
        (InputQuantity("b", 0.0, 1.0, dof=5, distribution="t"), "'b' is t"),
    ],
)
def test_correlated_inputs_without_a_joint_distribution_are_refused(second: InputQuantity, fragment: str) -> None:
    model = model_of({"y": "a + b"}, InputQuantity("a", 0.0, 1.0), second, correlations=[("a", "b", 0.5)])
    with pytest.raises(ConfigError) as caught:
        evaluate_mc(model, trials=10_000, seed=1)
    message = str(caught.value)
    assert "correlations" in message and fragment in message and "JCGM 101 6.4.8" in message
    assert "fix:" in message


def test_correlated_t_inputs_with_different_dof_are_refused() -> None:
    a = InputQuantity("a", 0.0, 1.0, dof=4, distribution="t")
    b = InputQuantity("b", 0.0, 1.0, dof=9, distribution="t")
    with pytest.raises(ConfigError, match="different degrees of freedom a: 4, b: 9"):
        evaluate_mc(model_of({"y": "a + b"}, a, b, correlations=[("a", "b", 0.5)]), trials=10_000, seed=1)


# -- JCGM 101 9.2: the additive model ------------------------------------------------------------


ENDPOINT_NOISE = 0.02
"""Allowed difference of a 95 % endpoint at M = 10^6: the standard error of the 2.5 % quantile,
sqrt(p (1 - p) / M) / f(y_low), is 0.0053 for these outputs (f ~ 0.03 / unit there), so the
published two decimals are met to three standard errors, not to half a unit in the last digit
(JCGM 101 itself states M = 10^6 gives the interval to "one or two" digits, 7.2.2)."""


def test_additive_model_normal_inputs_table_2() -> None:
    result = evaluate_mc(additive(), trials=1_000_000, seed=1, coverage=0.95)["Y"]
    assert result.value == pytest.approx(0.00, abs=0.006)  # standard error 0.002
    assert result.u == pytest.approx(2.00, abs=0.005)  # standard error 0.0014
    assert result.interval.low == pytest.approx(-3.92, abs=ENDPOINT_NOISE)  # exact: -1.96 x 2 = -3.9199
    assert result.interval.high == pytest.approx(3.92, abs=ENDPOINT_NOISE)
    assert result.shortest.length == pytest.approx(result.interval.length, abs=ENDPOINT_NOISE)  # symmetric pdf


def test_additive_model_rectangular_inputs_table_3() -> None:
    result = evaluate_mc(additive(shape="rectangular"), trials=1_000_000, seed=1, coverage=0.95)["Y"]
    assert result.u == pytest.approx(2.00, abs=0.005)
    assert result.interval.low == pytest.approx(-3.88, abs=ENDPOINT_NOISE)  # exact: -3.8794 (Irwin-Hall)
    assert result.interval.high == pytest.approx(3.88, abs=ENDPOINT_NOISE)


def _exact_interval_three_normal_one_rectangular() -> float:
    a, s = 10.0 * SQRT3, SQRT3  # X4 rectangular, sd 10; X1 + X2 + X3 ~ N(0, 3)

    def cdf(y: float) -> float:
        return integrate.quad(lambda t: stats.norm.cdf((y - t) / s), -a, a)[0] / (2 * a)

    return float(optimize.brentq(lambda c: cdf(c) - cdf(-c) - 0.95, 10.0, 25.0))


def test_additive_model_dominant_rectangular_input_9_2_4_and_the_gum_not_validated() -> None:
    model = additive(InputQuantity.from_half_width("X4", 0.0, 10.0 * SQRT3, "rectangular"))
    mc = evaluate_mc(model, trials=1_000_000, seed=1, coverage=0.95)
    exact = _exact_interval_three_normal_one_rectangular()
    assert exact == pytest.approx(16.99, abs=0.005)
    assert mc["Y"].u == pytest.approx(math.sqrt(103.0), abs=0.03)
    assert mc["Y"].interval.high == pytest.approx(exact, abs=0.05)
    assert mc["Y"].interval.low == pytest.approx(-exact, abs=0.05)
    gum = evaluate_gum(model, 0.95)
    assert gum["Y"].high == pytest.approx(19.9, abs=0.05)
    check = validate_gum(gum, mc)["Y"]
    assert check.verdict == "not validated"
    assert check.d_high == pytest.approx(19.89 - exact, abs=0.06) and check.tolerance == 0.5


def test_clause_8_validates_the_gum_on_the_linear_additive_models() -> None:
    model = additive()
    check = validate_gum(evaluate_gum(model, 0.95), evaluate_mc(model, trials=1_000_000, seed=1, coverage=0.95))["Y"]
    assert check.tolerance == 0.05  # u = 2.0 -> 20 x 10^-1
    assert check.verdict == "validated", check
    # the rectangular case is validated by a margin of only 0.05 - 0.0405 = 0.0095 (exactly
    # d = 3.9199 - 3.8794); M = 4 x 10^6 keeps the endpoint's standard error (0.0027) well inside it
    rectangular = validate_gum(evaluate_gum(additive(shape="rectangular"), 0.95),
                               evaluate_mc(additive(shape="rectangular"), trials=4_000_000, seed=1, coverage=0.95))
    assert rectangular["Y"].verdict == "validated"
    assert rectangular["Y"].d_high == pytest.approx(3.9199 - 3.8794, abs=0.008)


def test_adaptive_procedure_on_the_additive_model() -> None:
    result = evaluate_mc(additive(), seed=7, coverage=0.95, adaptive=True)
    report = result.adaptive
    assert report is not None and report.converged
    assert report.batch_trials == 10_000 and report.batches >= 2
    assert result.trials == report.batches * report.batch_trials
    spread = report.spreads["Y"]
    assert spread.tolerance == 0.05
    assert spread.largest <= spread.tolerance
    out = result["Y"]  # within the numerical tolerance of the published Table 2 values
    assert out.value == pytest.approx(0.0, abs=0.05)
    assert out.u == pytest.approx(2.0, abs=0.05)
    assert out.interval.high == pytest.approx(3.92, abs=0.05)
    assert out.interval.low == pytest.approx(-3.92, abs=0.05)
    assert result.to_dict()["adaptive"]["converged"] is True


def test_adaptive_procedure_stops_at_max_trials_and_says_so() -> None:
    # nu = 1.5: the t has no variance, so u(y) never settles
    wild = InputQuantity("x", 0.0, 1.0, dof=1.5, distribution="t")
    result = evaluate_mc(model_of({"y": "x"}, wild), seed=1, coverage=0.95, adaptive=True, max_trials=50_000)
    assert result.adaptive is not None and not result.adaptive.converged
    assert result.trials == 50_000
    assert any("max_trials" in note for note in result.notes)
    assert any("no finite variance" in note for note in result.notes)


# -- non-linear models: shortest intervals and clause 8 ----------------------------------------------


def test_log_of_a_rectangular_input_npl_bpg6_9_2() -> None:
    model = model_of({"y": "log(x)"}, InputQuantity.from_half_width("x", 0.6, 0.5, "rectangular"))
    mc = evaluate_mc(model, trials=1_000_000, seed=12345, coverage=0.95)["y"]
    gum = evaluate_gum(model, 0.95)["y"]
    assert gum.value == pytest.approx(-0.511, abs=0.0005) and gum.u == pytest.approx(0.481, abs=0.0005)
    # exact: E[ln x] = -0.66490, sd 0.60623 (integrals of ln x, ln^2 x); standard errors at M = 10^6:
    # 0.0006 for the mean, 0.0005 for u, 0.0015 for the 5 % point (sqrt(0.05 x 0.95 / M) / 0.15)
    assert mc.value == pytest.approx(-0.66490, abs=0.002) and mc.value == pytest.approx(-0.665, abs=0.002)
    assert mc.u == pytest.approx(0.60623, abs=0.0015) and mc.u == pytest.approx(0.606, abs=0.002)
    assert mc.shortest.low == pytest.approx(math.log(0.15), abs=0.005)  # exact -1.8971
    assert mc.shortest.low == pytest.approx(-1.895, abs=0.005)  # published
    assert mc.shortest.high == pytest.approx(0.095, abs=0.001)  # exact ln 1.1 = 0.0953: the largest draw
    assert mc.shortest.length < mc.interval.length


def test_shortest_interval_of_an_asymmetric_output_is_shorter_and_lower() -> None:
    model = model_of({"y": "exp(x)"}, InputQuantity("x", 0.0, 0.5))
    out = evaluate_mc(model, trials=100_000, seed=4)["y"]  # endpoint standard error 0.45 %
    assert out.shortest.length < 0.95 * out.interval.length
    assert out.shortest.low < out.interval.low and out.shortest.high < out.interval.high
    # the symmetric interval of a lognormal is exp of the normal's: exp(+-2.0 x 0.5)
    assert out.interval.low == pytest.approx(math.exp(-0.5 * stats.norm.ppf(0.97725)), rel=0.015)
    assert out.interval.high == pytest.approx(math.exp(0.5 * stats.norm.ppf(0.97725)), rel=0.015)


def test_clause_8_does_not_validate_the_gum_on_a_strongly_non_linear_model() -> None:
    model = model_of({"y": "log(x)"}, InputQuantity.from_half_width("x", 0.6, 0.5, "rectangular"))
    checks = validate_gum(evaluate_gum(model), evaluate_mc(model, trials=100_000, seed=1))
    assert checks["y"].verdict == "not validated"
    assert checks["y"].d_low > 10 * checks["y"].tolerance


MASS_EXACT_U = 0.07548
"""u(dm) in mg, exactly: Var = Var(S)(1 + Var(AB)) + E[S]^2 E[A^2] E[B^2], S = mRc + dmRc,
A = rho_a - rho_a0, B = 1/rho_W - 1/rho_R, with E[1/rho] = ln((c + a)/(c - a))/(2a) and
E[1/rho^2] = 1/((c - a)(c + a)) for a rectangular rho on [c - a, c + a]."""


def test_mass_calibration_jcgm101_9_3() -> None:
    model = MeasurementModel.from_json(MASS, source="mass.json")
    first, second = evaluate_gum(model, 0.95), evaluate_gum(model, 0.95, second_order=True)
    assert first["dm"].u == pytest.approx(0.0539, abs=0.00005)
    assert (first["dm"].low, first["dm"].high) == pytest.approx((1.1285, 1.3395), abs=0.00005)
    assert second["dm"].u == pytest.approx(0.0750, abs=0.00005)
    mc = evaluate_mc(model, trials=1_000_000, seed=1, coverage=0.95)
    assert mc["dm"].value == pytest.approx(1.234, abs=0.0005)
    assert mc["dm"].u == pytest.approx(0.075, abs=0.001)  # published to two digits
    assert mc["dm"].u == pytest.approx(MASS_EXACT_U, abs=0.0002)  # 3 standard errors at M = 10^6
    assert validate_gum(first, mc)["dm"].verdict == "not validated"  # d ~ 0.044 mg >> 0.0005 mg
    with_terms = validate_gum(second, mc, interval="shortest")["dm"]
    assert with_terms.d_low < 0.005 and with_terms.d_high < 0.005  # two digits: still not validated
    assert with_terms.verdict == "not validated"
    assert validate_gum(second, mc, interval="shortest", significant_digits=1)["dm"].verdict == "validated"


# -- GUM H.1 ---------------------------------------------------------------------------------------


def test_h1_monte_carlo_agrees_with_the_gum_second_order_terms_to_the_tolerance() -> None:
    model = MeasurementModel.from_json(H1, source="h1.json")
    start = time.perf_counter()
    mc = evaluate_mc(model, trials=1_000_000, seed=1, coverage=0.99)["l"]
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0
    exact = evaluate_gum(model, 0.99, second_order=True)["l"]  # 34 nm (GUM H.1.7): exact variance here
    first = evaluate_gum(model, 0.99)["l"]  # 32 nm
    delta = numerical_tolerance(exact.u)
    assert delta == 0.5
    assert abs(mc.value - exact.value) <= delta
    assert abs(mc.u - exact.u) <= delta
    assert abs(mc.u - first.u) > 3 * delta  # the first-order GUM misses the product terms
    assert mc.unit == "nm"


def test_h1_memory_stays_bounded() -> None:
    model = MeasurementModel.from_json(H1, source="h1.json")
    tracemalloc.start()
    try:
        evaluate_mc(model, trials=1_000_000, seed=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40e6  # the 8 MB of kept output values, a covariance copy, and 20 000-trial chunks


# -- repeatability ----------------------------------------------------------------------------------


def test_a_seed_repeats_the_run_and_an_unseeded_run_reports_its_seed() -> None:
    model = MeasurementModel.from_json(H1, source="h1.json")
    one = evaluate_mc(model, trials=50_000, seed=42).to_dict()
    two = evaluate_mc(model, trials=50_000, seed=42).to_dict()
    other = evaluate_mc(model, trials=50_000, seed=43).to_dict()
    assert one == two
    assert one["outputs"]["l"]["value"] != other["outputs"]["l"]["value"]
    fresh = evaluate_mc(model, trials=50_000)
    again = evaluate_mc(model, trials=50_000, seed=fresh.seed)
    assert again.to_dict() == fresh.to_dict()


def test_a_non_finite_model_value_is_a_clear_error() -> None:
    model = model_of({"y": "sqrt(x)"}, InputQuantity("x", 0.5, 1.0))
    with pytest.raises(ConfigError) as caught:
        evaluate_mc(model, trials=10_000, seed=1)
    message = str(caught.value)
    assert "outputs.y" in message and "Monte Carlo draws" in message and "e.g. at x = -" in message


def test_python_api_rejects_bad_arguments() -> None:
    model = additive()
    with pytest.raises(ValueError, match=r"trials must be >= 100/\(1 - p\) = 2000"):
        evaluate_mc(model, trials=1000, coverage=0.95)
    with pytest.raises(ValueError, match="coverage"):
        evaluate_mc(model, coverage=95)
    with pytest.raises(ValueError, match="seed"):
        evaluate_mc(model, trials=10_000, seed=-1)
    gum = evaluate_gum(model, 0.99)
    with pytest.raises(ValueError, match="p = 0.99"):
        validate_gum(gum, evaluate_mc(model, trials=10_000, seed=1, coverage=0.95))


# -- JSON contract ------------------------------------------------------------------------------------


def test_mc_json_contract_on_h1() -> None:
    data = copy.deepcopy(H1)
    data["mc"] = {"trials": 100_000, "seed": 1}
    out = mc_json(data, source="h1.json")
    assert out["method"] == "mc" and out["trials"] == 100_000 and out["seed"] == 1 and out["coverage"] == 0.99
    l_out = out["outputs"]["l"]
    assert set(l_out) >= {"value", "u", "interval", "shortest_interval", "unit"}
    assert l_out["unit"] == "nm" and l_out["u"] == pytest.approx(34, abs=1)
    assert out["gum"]["outputs"]["l"]["u"] == pytest.approx(31.7, abs=0.1)
    validation = out["validation"]
    assert validation["verdict"] in ("validated", "not validated")
    assert set(validation["outputs"]["l"]) >= {"verdict", "d_low", "d_high", "tolerance", "gum_interval", "mc_interval"}
    assert mc_json(data, source="h1.json") == out  # repeatable from the file


def test_mc_json_second_order_gum_options_and_several_outputs() -> None:
    data = {
        "outputs": {"a": "x + y", "b": "x - y"},
        "inputs": {"x": {"value": 1.0, "u": 0.1}, "y": {"value": 2.0, "u": 0.1}},
        "coverage": 0.95,
        "mc": {"trials": 1e5, "seed": 3},  # 1e5 is a float in JSON: a whole number is accepted
    }
    out = mc_json(data, source="m.json")
    assert out["trials"] == 100_000
    ((a, b, r),) = out["correlations"]
    assert (a, b) == ("a", "b") and r == pytest.approx(0.0, abs=0.01)
    assert out["validation"]["verdict"] == "validated"


def test_mc_json_adaptive() -> None:
    data = {"outputs": {"y": "x1 + x2"}, "inputs": {"x1": {"value": 0, "u": 1}, "x2": {"value": 0, "u": 1}},
            "coverage": 0.95, "mc": {"adaptive": True, "seed": 2, "max_trials": 5_000_000}}
    out = mc_json(data, source="m.json")
    assert out["adaptive"]["converged"] is True
    assert out["adaptive"]["outputs"]["y"]["tolerance"] == 0.05  # u = 1.4 = 14 x 10^-1
    assert out["validation"]["verdict"] == "validated"


def test_mc_json_gum_not_available_still_gives_the_monte_carlo_result() -> None:
    data = {"outputs": {"y": "sqrt(x*x)"}, "inputs": {"x": {"value": 0, "u": 1}}, "mc": {"trials": 20_000, "seed": 1}}
    out = mc_json(data, source="m.json")
    assert out["validation"]["verdict"] == "not available"
    assert "not differentiable" in out["validation"]["reason"]
    assert out["outputs"]["y"]["value"] == pytest.approx(math.sqrt(2 / math.pi), abs=0.02)


@pytest.mark.parametrize(
    ("mc", "fragment"),
    [
        ({"trials": 100}, "m.json: mc.trials: 100 trials are too few (at least 10000)"),
        ({"trials": 100000.5}, "m.json: mc.trials: trials must be a whole number"),
        ({"trials": "many"}, "m.json: mc.trials: trials must be a whole number"),
        ({"trials": True}, "m.json: mc.trials: trials must be a whole number"),
        ({"trials": 10**9}, "m.json: mc.trials: 1000000000 trials would need 8.0 GB per output"),
        ({"seed": -1}, "m.json: mc.seed: the seed must be >= 0"),
        ({"seed": 1.5}, "m.json: mc.seed: the seed must be a whole number"),
        ({"trails": 10}, "m.json: mc.trails: unknown option 'trails' (fix: did you mean 'trials'?"),
        ({"adaptive": "yes"}, "m.json: mc.adaptive: must be true or false"),
        ({"adaptive": True, "trials": 100000}, "m.json: mc.trials: trials cannot be given with \"adaptive\": true"),
        ({"max_trials": 100000}, "m.json: mc.max_trials: max_trials only bounds the adaptive procedure"),
        ({"adaptive": True, "max_trials": 100}, "m.json: mc.max_trials: max_trials must be between 20000"),
        ({"validate_with": "longest"}, "m.json: mc.validate_with: unknown interval 'longest'"),
        ({"significant_digits": 0}, "m.json: mc.significant_digits: must be between 1 and 4"),
        ({"chunk": 10}, "m.json: mc.chunk: chunk must be between 1000 and 10000000"),
        ([1000000], "m.json: mc: mc options must be an object"),
    ],
)
def test_bad_mc_options_are_config_errors_naming_the_field(mc: object, fragment: str) -> None:
    data = {"outputs": {"y": "x"}, "inputs": {"x": {"value": 1.0, "u": 0.1}}, "mc": mc}
    with pytest.raises(ConfigError) as caught:
        mc_json(data, source="m.json")
    assert fragment in str(caught.value)
    assert "(fix:" in str(caught.value)


def test_mc_json_checks_the_model_part_as_the_gum_does() -> None:
    with pytest.raises(ConfigError, match="m.json: mcc: unknown key 'mcc' \\(fix: did you mean 'mc'"):
        mc_json({"outputs": {"y": "x"}, "inputs": {"x": {"value": 1, "u": 1}}, "mcc": {}}, source="m.json")
    with pytest.raises(ConfigError, match="m.json: coverage"):
        mc_json({"outputs": {"y": "x"}, "inputs": {"x": {"value": 1, "u": 1}}, "coverage": 95}, source="m.json")
    with pytest.raises(ConfigError, match="m.json: inputs.x"):
        mc_json({"outputs": {"y": "x"}, "inputs": {"x": {"value": 1}}}, source="m.json")
