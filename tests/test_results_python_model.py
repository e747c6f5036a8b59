"""Models as Python code: numerical sensitivities agree with the analytic ones, and MC works too."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from daq.errors import ConfigError
from results.measurement_model import MeasurementModel, evaluate_gum
from results.model_inputs import InputQuantity
from results.montecarlo import evaluate_mc
from results.python_model import model_from_functions

INPUTS = {
    "V": InputQuantity("V", 4.999, 0.0032, 4, unit="V"),
    "I": InputQuantity("I", 0.019661, 9.5e-6, 4, unit="A"),
    "phi": InputQuantity("phi", 1.04446, 7.5e-4, 4, unit="rad"),
}
CORRELATIONS = [("V", "I", -0.36), ("V", "phi", 0.86), ("I", "phi", -0.65)]


def resistance(V, I, phi):  # noqa: E741 - the GUM's names
    return V / I * np.cos(phi)


def test_numerical_sensitivities_match_the_analytic_model():
    python = evaluate_gum(model_from_functions({"R": (resistance, "ohm")}, INPUTS, CORRELATIONS))["R"]
    analytic = evaluate_gum(MeasurementModel({"R": "V/I*cos(phi)"}, INPUTS, CORRELATIONS, {"R": "ohm"}))["R"]
    assert python.value == pytest.approx(analytic.value, rel=1e-14)
    assert python.u == pytest.approx(analytic.u, rel=1e-7)
    assert python.dof == pytest.approx(analytic.dof, rel=1e-6)
    for a, b in zip(python.budget, analytic.budget, strict=True):
        assert a.sensitivity == pytest.approx(b.sensitivity, rel=1e-6)


def test_an_implicit_model_solved_numerically():
    """A PRT: t from R by solving the Callendar-Van Dusen equation; u(t) = u(R) / (dR/dt)."""
    a, b, r0 = 3.9083e-3, -5.775e-7, 100.0

    def temperature(R):  # noqa: N803
        return brentq(lambda t: r0 * (1 + a * t + b * t * t) - R, -50, 500)

    R = InputQuantity("R", 138.5055, 0.002, math.inf, unit="ohm")
    t = evaluate_gum(model_from_functions({"t": (temperature, "delta_degC")}, {"R": R}))["t"]
    assert t.value == pytest.approx(100.0, abs=1e-4)
    slope = r0 * (a + 2 * b * t.value)
    assert t.u == pytest.approx(0.002 / slope, rel=1e-6)
    mc = evaluate_mc(model_from_functions({"t": (temperature, "delta_degC")}, {"R": R}), trials=20_000, seed=3)
    assert mc.outputs["t"].u == pytest.approx(t.u, rel=0.05)  # float-only function, vectorised for MC


def test_mixed_units_of_one_dimension_are_refused_and_unknown_parameters_named():
    inputs = dict(INPUTS, I=InputQuantity("I", 19.661, 0.0095, 4, unit="mA"))
    inputs["V2"] = InputQuantity("V2", 5.0, 0.001, unit="mV")
    with pytest.raises(ConfigError, match="same unit"):
        model_from_functions({"R": (resistance, "ohm")}, inputs)

    def needs_temperature(V, T):  # noqa: N803
        return V * T

    with pytest.raises(ConfigError, match="needs T"):
        model_from_functions({"P": (needs_temperature, "V")}, INPUTS)
