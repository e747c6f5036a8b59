"""Batch GUM evaluation (`evaluate_gum_batch`): N calibration points of one model at once.

The reference is `evaluate_gum` itself: each point of a batch must give the `GumResult` that
`evaluate_gum` gives for a model whose inputs are that point's values, uncertainties and degrees
of freedom, to 1e-12 relative, with units (mixed, requested and natural output units) and
correlated inputs (several outputs, groups with different nu).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from daq.errors import ConfigError
from daq.units import Q_
from results.measurement_model import GumBatchResult, MeasurementModel, evaluate_gum, evaluate_gum_batch
from results.model_inputs import HALF_WIDTH_DIVISORS

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
}

H2 = {
    "outputs": {"R": "V/I*cos(phi)", "X": "V/I*sin(phi)", "Z": "V/I"},
    "inputs": {"V": {"value": 4.999, "u": 3.2e-3, "dof": 4, "unit": "V"},
               "I": {"value": 19.661, "u": 9.5e-3, "dof": 4, "unit": "mA"},
               "phi": {"value": 1.04446, "u": 7.5e-4, "dof": 4, "unit": "rad"}},
    "correlations": [["V", "I", -0.36], ["V", "phi", 0.86], ["I", "phi", -0.65]],
    "output_units": {"Z": "kohm"},
}

POINTS = 50


def model_of(data: Mapping[str, Any]) -> MeasurementModel:
    return MeasurementModel.from_json(data, source="batch.json")


def point_model(
    model: MeasurementModel, result: GumBatchResult, i: int, output_units: Mapping[str, str]
) -> MeasurementModel:
    """The same model with point i's inputs, for `evaluate_gum`."""
    inputs = {}
    for name, quantity in model.inputs.items():
        u = float(result.uncertainties[name][i])
        half_width = None if quantity.half_width is None else u * HALF_WIDTH_DIVISORS[quantity.distribution]
        inputs[name] = replace(quantity, value=float(result.values[name][i]), u=u,
                               dof=float(result.dofs[name][i]), half_width=half_width)
    return MeasurementModel(model.outputs, inputs, model.correlations, output_units, source=model.source)


PERCENT_KEYS = {"share", "share_from_correlations"}


def assert_same(batch: Any, single: Any, path: str = "") -> None:
    """Recursive equality of two to_dict() trees, numbers to 1e-12 relative."""
    if isinstance(single, dict):
        assert set(batch) == set(single), path
        for key in single:
            assert_same(batch[key], single[key], f"{path}.{key}")
    elif isinstance(single, list):
        assert len(batch) == len(single), path
        for n, (a, b) in enumerate(zip(batch, single, strict=True)):
            assert_same(a, b, f"{path}[{n}]")
    elif isinstance(single, float) and not isinstance(single, bool):
        # percentages of u_c^2: a difference of sums, compared absolutely (1e-10 of a percent)
        absolute = 1e-10 if path.rsplit(".", 1)[-1] in PERCENT_KEYS else 0.0
        assert batch == pytest.approx(single, rel=1e-12, abs=absolute), path
    else:
        assert batch == single, path


def check_every_point(model: MeasurementModel, result: GumBatchResult, output_units: Mapping[str, str],
                      **options: Any) -> None:
    assert len(result) == POINTS
    for i in range(POINTS):
        single = evaluate_gum(point_model(model, result, i, output_units), result.coverage, **options)
        assert_same(result.point(i).to_dict(), single.to_dict(), f"point {i}")
        np.testing.assert_allclose(result.covariance[i], single.covariance, rtol=1e-12, atol=0)
        for name, estimate in single.outputs.items():
            out = result[name]
            assert out.value[i] == pytest.approx(estimate.value, rel=1e-12)
            assert out.U[i] == pytest.approx(estimate.U, rel=1e-12)
            assert out.unit == estimate.unit


# -- equal to evaluate_gum point by point -----------------------------------------------------


def test_h1_random_points_equal_evaluate_gum_point_by_point() -> None:
    model = model_of(H1)
    rng = np.random.default_rng(20261121)
    values = {
        "ls": rng.normal(50000623.6, 1000.0, POINTS),
        "d": rng.uniform(-500.0, 500.0, POINTS),
        "da": rng.uniform(-2e-6, 2e-6, POINTS),
        "theta": rng.uniform(-5.0, 5.0, POINTS),
        "as_": 11.5e-6,  # a number: the same at every point
        "dtheta": rng.uniform(-0.1, 0.1, POINTS),
    }
    uncertainties = {"ls": rng.uniform(5.0, 50.0, POINTS), "d": rng.uniform(1.0, 20.0, POINTS),
                     "dtheta": rng.uniform(0.01, 0.1, POINTS)}
    dofs = {"ls": rng.uniform(2.0, 60.0, POINTS), "theta": np.where(rng.random(POINTS) < 0.5, math.inf, 7.0)}
    result = evaluate_gum_batch(model, values, uncertainties, dofs=dofs, coverage=0.99)
    check_every_point(model, result, {})
    assert result["l"].unit == "nm" and result["l"].inputs == ("ls", "d", "da", "theta", "as_", "dtheta")
    assert np.isfinite(result["l"].dof).all() and (result["l"].dof > 1).all()


def test_mixed_and_requested_units_equal_evaluate_gum() -> None:
    data = copy.deepcopy(H1)
    data["inputs"]["ls"] = {"value": 50.0006236, "u": 25e-6, "dof": 18, "unit": "mm"}
    data["inputs"]["d"] = {"value": 0.215, "u": 0.0097, "dof": 25.6, "unit": "um"}
    data["inputs"]["theta"] = {"value": 19.9, "u": 0.41, "unit": "degC"}
    data["outputs"]["l"] = "ls + d - ls*(da*(theta - t20) + as_*dtheta)"
    data["inputs"]["t20"] = {"value": 20, "u": 0, "unit": "degC"}
    data["output_units"] = {"l": "um"}
    model = model_of(data)
    rng = np.random.default_rng(7)
    # not in the model's input order, on purpose: d (um) is scaled into mm, ls is not
    values = {"theta": rng.uniform(15.0, 25.0, POINTS), "da": rng.uniform(-1e-6, 1e-6, POINTS),
              "d": rng.uniform(-1.0, 1.0, POINTS), "ls": rng.uniform(1.0, 100.0, POINTS)}
    result = evaluate_gum_batch(model, values, {"d": rng.uniform(0.001, 0.02, POINTS)})
    check_every_point(model, result, {"l": "um"})
    assert result["l"].unit == "um"
    ls = result["l"].column("ls")
    np.testing.assert_allclose(result["l"].sensitivity[:, ls], 1e3 * (1 - values["da"] * (values["theta"] - 20)),
                               rtol=1e-12)


def test_correlated_inputs_and_several_outputs_equal_evaluate_gum() -> None:
    model = model_of(H2)
    rng = np.random.default_rng(3)
    values = {"V": rng.uniform(1.0, 10.0, POINTS), "I": rng.uniform(5.0, 40.0, POINTS),
              "phi": rng.uniform(0.1, 1.4, POINTS)}
    uncertainties = {"V": rng.uniform(1e-4, 1e-2, POINTS), "I": rng.uniform(1e-3, 1e-1, POINTS)}
    dofs = {"V": rng.uniform(3.0, 30.0, POINTS)}  # nu differs inside the correlated group
    result = evaluate_gum_batch(model, values, uncertainties, dofs=dofs)
    check_every_point(model, result, {"Z": "kohm"})
    assert (np.abs(result["R"].share_from_correlations) > 0).any()
    names = list(model.outputs)
    for i in range(0, POINTS, 7):
        single = evaluate_gum(point_model(model, result, i, {"Z": "kohm"}))
        for a in names:
            for b in names:
                assert result.correlation[i, names.index(a), names.index(b)] == pytest.approx(
                    single.r(a, b), rel=1e-12, abs=1e-15)


def test_mixed_dof_group_and_truncated_dof_equal_evaluate_gum() -> None:
    data = {"outputs": {"y": "a + b*c", "w": "a - c"},
            "inputs": {"a": {"value": 1, "u": 0.1, "dof": 4}, "b": {"value": 2, "u": 0.1, "dof": 40},
                       "c": {"value": 2, "u": 0.1, "dof": 10}, "e": {"value": 0, "u": 1}},
            "correlations": [["a", "b", 0.5]]}
    model = model_of(data)
    rng = np.random.default_rng(11)
    result = evaluate_gum_batch(
        model, {"a": rng.normal(1, 1, POINTS), "b": rng.normal(2, 1, POINTS), "c": rng.normal(2, 1, POINTS)},
        {"c": rng.uniform(0.0, 0.3, POINTS)}, dofs={"b": rng.uniform(1.0, 100.0, POINTS)},
        coverage=0.95, truncate_dof=True)
    check_every_point(model, result, {}, truncate_dof=True)
    assert result["y"].inputs == ("a", "b", "c")  # e is not used: no budget column


def test_no_arrays_is_one_point_equal_to_evaluate_gum() -> None:
    model = model_of(H1)
    result = evaluate_gum_batch(model)
    assert len(result) == 1
    assert_same(result.point(0).to_dict(), evaluate_gum(model).to_dict())
    assert result["l"].contribution[0] == pytest.approx([25, 9.7, 2.887, 0, 0, 16.599], abs=1e-3)


def test_numbers_broadcast_and_arrays_set_n() -> None:
    model = model_of(H1)
    result = evaluate_gum_batch(model, {"ls": [50000623.6, 50000600.0, 50000700.0]}, {"d": 5.0}, dofs={"ls": 30})
    assert len(result) == 3 and result["l"].u.shape == (3,) and result["l"].contribution.shape == (3, 6)
    assert (result.uncertainties["d"] == 5.0).all() and (result.dofs["ls"] == 30).all()
    np.testing.assert_allclose(result["l"].value - result.values["ls"], 215.0 * np.ones(3), rtol=1e-9)
    assert result.point(-1).outputs["l"].value == result["l"].value[2]
    with pytest.raises(IndexError):
        result.point(3)


def test_pint_quantities_are_converted_to_the_input_units() -> None:
    model = model_of(H1)
    plain = evaluate_gum_batch(model, {"ls": [50000623.6, 50000700.0]}, {"ls": [25.0, 30.0]})
    quantity = evaluate_gum_batch(model, {"ls": Q_(np.array([50.0006236, 50.0007]), "mm")},
                                  {"ls": Q_(np.array([0.025, 0.030]), "um")})
    np.testing.assert_allclose(quantity["l"].value, plain["l"].value, rtol=1e-14)
    np.testing.assert_allclose(quantity["l"].u, plain["l"].u, rtol=1e-12)


def test_offset_temperature_quantities_are_absolute_values_and_difference_uncertainties() -> None:
    data = {"outputs": {"dt": "t_uut - t_ref"},
            "inputs": {"t_uut": {"value": 20.5, "u": 0.01, "unit": "degC"},
                       "t_ref": {"value": 20.1, "u": 0.02, "unit": "degC"}}}
    result = evaluate_gum_batch(model_of(data), {"t_uut": Q_(np.array([293.65, 300.15]), "K")},
                                {"t_uut": Q_(0.03, "K")})
    np.testing.assert_allclose(result["dt"].value, [0.4, 6.9], atol=1e-9)
    np.testing.assert_allclose(result["dt"].u, math.hypot(0.03, 0.02), rtol=1e-12)


def test_an_empty_batch_is_empty() -> None:
    result = evaluate_gum_batch(model_of(H2), {"V": np.array([])})
    assert len(result) == 0 and result["R"].u.shape == (0,) and result.covariance.shape == (0, 3, 3)


# -- clear errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "uncertainties", "dofs", "field", "fragment"),
    [
        ({"ls": np.zeros(5) + 5e7, "d": np.zeros(4)}, None, None, "values.d", "'d' has 4 points but values.ls has 5"),
        ({"ls": np.zeros(5) + 5e7}, {"d": [1.0, 2.0]}, None, "uncertainties.d", "'d' has 2 points"),
        ({"ls": np.zeros(5) + 5e7}, None, {"ls": np.ones(6)}, "dofs.ls", "'ls' has 6 points"),
        ({"Ls": 5e7}, None, None, "values.Ls", "did you mean 'ls'?"),
        (None, {"nope": 1.0}, None, "uncertainties.nope", "not an input of the model"),
        ({"ls": np.zeros((2, 2))}, None, None, "values.ls", "1-D array, got shape (2, 2)"),
        ({"ls": ["a", "b"]}, None, None, "values.ls", "must be a number or an array of numbers"),
        ({"d": [1.0, math.nan]}, None, None, "values.d", "is nan at point 1"),
        (None, {"d": [1.0, -1.0, 2.0]}, None, "uncertainties.d", "is -1.0 at point 1"),
        (None, None, {"d": [0.0, 3.0]}, "dofs.d", "are 0.0 at point 0"),
        ({"ls": Q_(1.0, "K")}, None, None, "values.ls", "cannot be expressed in nm"),
    ],
)
def test_bad_batches_are_config_errors_naming_the_input(
    values: Any, uncertainties: Any, dofs: Any, field: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        evaluate_gum_batch(model_of(H1), values, uncertainties, dofs=dofs)
    assert info.value.field == field
    assert fragment in str(info.value)


def test_a_point_where_the_model_is_not_finite_is_named() -> None:
    data = {"outputs": {"y": "log(x)"}, "inputs": {"x": {"value": 1, "u": 0.1}}}
    with pytest.raises(ConfigError, match=r"not finite at point 2 \(x=-1\)") as info:
        evaluate_gum_batch(model_of(data), {"x": [1.0, 2.0, -1.0]})
    assert info.value.field == "outputs.y"
    data = {"outputs": {"y": "sqrt(x)"}, "inputs": {"x": {"value": 1, "u": 0.1}}}
    with pytest.raises(ConfigError, match=r"dy/dx is not finite at point 1"):
        evaluate_gum_batch(model_of(data), {"x": [1.0, 0.0]})


def test_a_bad_coverage_is_refused() -> None:
    with pytest.raises(ValueError, match="coverage"):
        evaluate_gum_batch(model_of(H1), coverage=95.0)


def test_column_names_the_budget_columns() -> None:
    result = evaluate_gum_batch(model_of({"outputs": {"y": "a"}, "inputs": {"a": {"value": 1, "u": 1},
                                                                            "b": {"value": 1, "u": 1}}}))
    assert result["y"].column("a") == 0
    with pytest.raises(KeyError, match="budget columns are a"):
        result["y"].column("b")
