"""GUM propagation through measurement models against the published GUM Annex H examples.

Published values (JCGM 100:2008):
- H.1 end gauge: l = 50.000 838 mm, u_c(l) = 32 nm, nu_eff = 16 (16.7 truncated, G.6.4),
  k = t_99(16) = 2.92, U_99 = 93 nm; with the second-order terms of H.1.7, u_c(l) = 34 nm.
- H.2 resistance, reactance, impedance (Tables H.3/H.4): R = 127.732 ohm, u = 0.071 ohm;
  X = 219.847 ohm, u = 0.295 ohm; Z = 254.260 ohm, u = 0.236 ohm; r(R, X) = -0.588,
  r(R, Z) = -0.485, r(X, Z) = 0.993.
Cross-checked against GTC's worked examples of the same annex (GTC.core.multiple_ureal and
GTC.type_a.multi_estimate_real docstrings), which print more digits.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from daq.errors import ConfigError
from results.measurement_model import MeasurementModel, evaluate_gum, evaluate_json
from results.model_inputs import InputQuantity

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

H2_SAMPLES = {
    "outputs": {"R": "V/I*cos(phi)", "X": "V/I*sin(phi)", "Z": "V/I"},
    "inputs": {
        "V": {"samples": [5.007, 4.994, 5.005, 4.990, 4.999], "unit": "V"},
        "I": {"samples": [19.663, 19.639, 19.640, 19.685, 19.678], "unit": "mA"},
        "phi": {"samples": [1.0456, 1.0438, 1.0468, 1.0428, 1.0433], "unit": "rad"},
    },
    "correlations": [["V", "I", "samples"], ["V", "phi", "samples"], ["I", "phi", "samples"]],
}


def h1(**changes: object) -> dict:
    data = copy.deepcopy(H1)
    data.update(changes)
    return data


# -- GUM H.1 ----------------------------------------------------------------------------------


def test_h1_end_gauge_reproduces_published_first_order_numbers() -> None:
    out = evaluate_json(h1(gum={"truncate_dof": True}), source="h1.json")["outputs"]["l"]
    assert out["unit"] == "nm"
    assert out["value"] == pytest.approx(50000838.6, abs=1e-6)  # 50.000 838 mm
    assert round(out["u"]) == 32  # published u_c(l) = 32 nm
    assert out["u"] == pytest.approx(31.67, abs=0.005)
    assert int(out["dof"]) == 16  # published nu_eff = 16 (from 16.7)
    assert out["dof"] == pytest.approx(16.76, abs=0.01)
    assert round(out["k"], 2) == 2.92  # t_99(16)
    # Published U_99 = 93 nm is 2.92 x the rounded 32 nm; from the unrounded u_c it is 92.5 nm.
    assert out["U"] == pytest.approx(2.92 * 31.67, abs=0.1)
    assert abs(out["U"] - 93) < 1.0
    contributions = {row["input"]: row["contribution"] for row in out["budget"]}
    assert contributions == pytest.approx(  # GUM Table H.1, |c_i| u(x_i) in nm
        {"ls": 25, "d": 9.7, "da": 2.9, "theta": 0, "as_": 0, "dtheta": 16.6}, abs=0.05)


def test_h1_uses_the_real_nu_eff_by_default() -> None:
    out = evaluate_json(H1, source="h1.json")["outputs"]["l"]
    assert out["k"] == pytest.approx(2.903, abs=0.001)  # t_99(16.76), not truncated
    assert out["U"] == pytest.approx(91.9, abs=0.1)


def test_h1_second_order_terms_give_34_nm() -> None:
    # GUM H.1.7: with the non-linear terms l_s^2 u^2(da) u^2(theta) + l_s^2 u^2(as) u^2(dtheta): 34 nm.
    out = evaluate_json(h1(gum={"second_order": True}), source="h1.json")["outputs"]["l"]
    assert round(out["u"]) == 34
    biggest = max(out["second_order"], key=lambda term: term["variance"])
    assert biggest["inputs"] == ["da", "theta"]
    assert math.sqrt(biggest["variance"]) == pytest.approx(50000623.6 * 1e-6 / math.sqrt(3) * 0.41, rel=1e-12)


def test_h1_budget_rows_carry_units_and_sensitivity_units() -> None:
    out = evaluate_json(H1, source="h1.json")["outputs"]["l"]
    da = next(row for row in out["budget"] if row["input"] == "da")
    assert da["sensitivity"] == pytest.approx(5.0000624e6)  # -l_s theta, nm per (1/K)
    assert da["sensitivity_unit"] == "K·nm" and da["unit"] == "1/K" and da["distribution"] == "rectangular"
    ls = out["budget"][0]
    assert (ls["input"], ls["sensitivity"], ls["sensitivity_unit"], ls["dof"]) == ("ls", 1.0, "", 18.0)
    theta = next(row for row in out["budget"] if row["input"] == "theta")
    assert theta["dof"] == "inf" and theta["sensitivity"] == 0.0
    assert sum(row["share"] for row in out["budget"]) == pytest.approx(100.0)


def test_h1_with_intermediate_outputs_differentiates_through_them() -> None:
    model = MeasurementModel(
        {"d": "d0 + d1 + d2", "theta": "theta_bar + Delta", "l": "ls + d - ls*(da*theta + as_*dtheta)"},
        {
            "ls": InputQuantity("ls", 50000623.6, 25, 18, unit="nm"),
            "d0": InputQuantity("d0", 215, 5.8, 24, unit="nm"),
            "d1": InputQuantity("d1", 0, 3.9, 5, unit="nm"),
            "d2": InputQuantity("d2", 0, 6.7, 8, unit="nm"),
            "theta_bar": InputQuantity("theta_bar", -0.1, 0.2, unit="K"),
            "Delta": InputQuantity.from_half_width("Delta", 0, 0.5, "arcsine", unit="K"),
            "da": InputQuantity.from_half_width("da", 0, 1e-6, unit="1/K", dof=50),
            "as_": InputQuantity.from_half_width("as_", 11.5e-6, 2e-6, unit="1/K"),
            "dtheta": InputQuantity.from_half_width("dtheta", 0, 0.05, unit="K", dof=2),
        },
        output_units={"l": "mm"},
    )
    result = evaluate_gum(model, 0.99)
    assert result["d"].u == pytest.approx(9.7, abs=0.05)  # GUM H.1.3.2: u(d) = 9.7 nm
    assert result["d"].dof == pytest.approx(25.4, abs=0.1)  # GUM: 25.6 from the rounded parts
    assert result["theta"].u == pytest.approx(0.41, abs=0.005)  # GUM H.1.3.4
    assert result["l"].unit == "mm"
    assert result["l"].value == pytest.approx(50.0008386, abs=1e-9)
    assert result["l"].u * 1e6 == pytest.approx(31.66, abs=0.01)
    assert [row.input for row in result["l"].budget] == [
        "ls", "d0", "d1", "d2", "theta_bar", "Delta", "da", "as_", "dtheta"]
    assert int(result["l"].dof) == 16


def test_mixed_units_give_the_same_numbers() -> None:
    data = h1()
    data["inputs"]["ls"] = {"value": 50.0006236, "u": 25e-6, "dof": 18, "unit": "mm"}
    data["inputs"]["d"] = {"value": 0.215, "u": 0.0097, "dof": 25.6, "unit": "um"}
    data["inputs"]["theta"] = {"value": -0.1, "u": 0.41, "unit": "delta_degC"}
    data["output_units"] = {"l": "nm"}
    out = evaluate_json(data, source="h1.json")["outputs"]["l"]
    reference = evaluate_json(H1, source="h1.json")["outputs"]["l"]
    assert out["unit"] == "nm"
    for key in ("value", "u", "dof", "k", "U"):
        assert out[key] == pytest.approx(reference[key], rel=1e-9)
    ls = out["budget"][0]
    assert ls["sensitivity"] == pytest.approx(1e6) and ls["sensitivity_unit"] == "nm/mm"
    natural = evaluate_json({**data, "output_units": {}}, source="h1.json")["outputs"]["l"]
    assert natural["unit"] == "mm" and natural["value"] == pytest.approx(50.0008386, rel=1e-12)


# -- GUM H.2 ----------------------------------------------------------------------------------


def test_h2_from_the_observations_reproduces_the_published_table() -> None:
    result = evaluate_json(H2_SAMPLES, source="h2.json")
    R, X, Z = (result["outputs"][name] for name in "RXZ")
    assert R["unit"] == X["unit"] == Z["unit"] == "Ω"  # V/mA is reported in ohm
    assert (round(R["value"], 3), round(X["value"], 3), round(Z["value"], 3)) == (127.732, 219.847, 254.260)
    assert (round(R["u"], 3), round(Z["u"], 3)) == (0.071, 0.236)
    assert X["u"] == pytest.approx(0.295, abs=0.001)  # 0.2956 by propagation; 0.2955 from the 5 X_k
    r = {(a, b): value for a, b, value in result["correlations"]}
    assert (round(r["R", "X"], 3), round(r["R", "Z"], 3), round(r["X", "Z"], 3)) == (-0.588, -0.485, 0.993)
    # GTC, type_a.multi_estimate_real docstring (same data, same propagation): more digits.
    assert R["value"] == pytest.approx(127.732169928102, rel=1e-12)
    assert R["u"] == pytest.approx(0.071071407396995, rel=1e-12)
    assert r["R", "X"] == pytest.approx(-0.588429784423515, rel=1e-12)
    # Willink's treatment of the correlated ensemble: all three from the same 5 readings, nu = 4.
    assert R["dof"] == pytest.approx(4.0) and X["dof"] == pytest.approx(4.0) and Z["dof"] == pytest.approx(4.0)


def test_h2_second_approach_from_the_individual_results_matches_every_published_digit() -> None:
    # GUM H.2.4: compute R_k, X_k, Z_k of each set of readings, then their means and s/sqrt(5).
    model = MeasurementModel.from_json(H2_SAMPLES, source="h2.json")
    samples = {name: np.array(q.samples) for name, q in model.inputs.items()}
    values = model.evaluate(samples)
    u = {name: float(np.std(values[name], ddof=1) / math.sqrt(5)) for name in "RXZ"}
    assert {name: round(float(np.mean(values[name])), 3) for name in "RXZ"} == {
        "R": 127.732, "X": 219.847, "Z": 254.260}
    assert {name: round(value, 3) for name, value in u.items()} == {"R": 0.071, "X": 0.295, "Z": 0.236}


def test_h2_from_the_rounded_summary_matches_gtc() -> None:
    data = {
        "outputs": H2_SAMPLES["outputs"],
        "inputs": {"V": {"value": 4.999, "u": 3.2e-3, "dof": 4, "unit": "V"},
                   "I": {"value": 19.661e-3, "u": 9.5e-6, "dof": 4, "unit": "A"},
                   "phi": {"value": 1.04446, "u": 7.5e-4, "dof": 4}},
        "correlations": [["V", "I", -0.36], ["V", "phi", 0.86], ["I", "phi", -0.65]],
        "output_units": {"R": "ohm", "X": "ohm", "Z": "kohm"},
    }
    outputs = evaluate_json(data, source="h2.json")["outputs"]
    # GTC.core.multiple_ureal docstring: ureal(127.732169928102..., 0.0699787279883717..., 4.0)
    assert outputs["R"]["value"] == pytest.approx(127.732169928102, rel=1e-12)
    assert outputs["R"]["u"] == pytest.approx(0.0699787279883717, rel=1e-12)
    assert outputs["R"]["dof"] == pytest.approx(4.0)
    assert outputs["Z"]["unit"] == "kohm" and outputs["Z"]["value"] == pytest.approx(0.25426, abs=1e-5)


# -- JSON contract ----------------------------------------------------------------------------


def test_json_result_has_the_contract_keys_and_is_strict_json() -> None:
    result = evaluate_json(H2_SAMPLES, source="h2.json")
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text) == result
    assert result["method"] == "gum" and result["coverage"] == 0.9545
    for output in result["outputs"].values():
        assert {"value", "u", "dof", "k", "U", "interval", "unit", "budget"} <= set(output)
        low, high = output["interval"]
        assert low == pytest.approx(output["value"] - output["U"])
        assert high == pytest.approx(output["value"] + output["U"])
        assert {"input", "sensitivity", "contribution", "share"} <= set(output["budget"][0])
    assert len(result["correlations"]) == 3
    assert "correlations" not in evaluate_json(H1, source="h1.json")


def test_infinite_dof_is_the_string_inf() -> None:
    data = {"outputs": {"y": "a + b"}, "inputs": {"a": {"value": 1, "u": 0.1}, "b": {"value": 2, "u": 0.2}}}
    out = evaluate_json(data, source="m.json")["outputs"]["y"]
    assert out["dof"] == "inf" and out["k"] == pytest.approx(2.0, abs=1e-4)
    assert out["u"] == pytest.approx(math.hypot(0.1, 0.2))


def test_correlated_inputs_enter_the_covariance() -> None:
    data = {"outputs": {"y": "a - b"},
            "inputs": {"a": {"value": 1, "u": 0.1}, "b": {"value": 2, "u": 0.1}},
            "correlations": [["a", "b", 1.0]]}
    out = evaluate_json(data, source="m.json")["outputs"]["y"]
    assert out["u"] == pytest.approx(0.0, abs=1e-12)  # fully correlated: the difference is exact
    assert out["share_from_correlations"] == 0.0  # no variance to share


def test_mixed_dof_in_a_correlated_group_takes_the_smallest() -> None:
    data = {"outputs": {"y": "a + b + c"},
            "inputs": {"a": {"value": 1, "u": 0.1, "dof": 4}, "b": {"value": 2, "u": 0.1, "dof": 40},
                       "c": {"value": 2, "u": 0.1, "dof": 10}},
            "correlations": [["a", "b", 0.5]]}
    out = evaluate_json(data, source="m.json")["outputs"]["y"]
    group, single = (0.01 + 0.01 + 2 * 0.5 * 0.01), 0.01
    assert out["dof"] == pytest.approx((group + single) ** 2 / (group**2 / 4 + single**2 / 10))


def test_coverage_sets_k() -> None:
    data = {"outputs": {"y": "a"}, "inputs": {"a": {"value": 1, "u": 0.1, "dof": 10}}, "coverage": 0.95}
    assert evaluate_json(data, source="m.json")["outputs"]["y"]["k"] == pytest.approx(2.228, abs=0.001)


def test_offset_temperature_inputs_are_differences() -> None:
    data = {"outputs": {"dt": "t_uut - t_ref"},
            "inputs": {"t_uut": {"value": 20.5, "u": 0.01, "unit": "degC"},
                       "t_ref": {"value": 20.1, "u": 0.02, "unit": "degC"}}}
    out = evaluate_json(data, source="m.json")["outputs"]["dt"]
    assert out["value"] == pytest.approx(0.4) and out["unit"] == "degC"


def test_model_evaluate_is_vectorised_and_in_reported_units() -> None:
    model = MeasurementModel.from_json({**H2_SAMPLES, "output_units": {"Z": "kohm"}}, source="h2.json")
    draws = {"V": np.array([5.0, 5.0]), "I": np.array([20.0, 10.0]), "phi": np.array([0.0, 0.0])}
    values = model.evaluate(draws)
    np.testing.assert_allclose(values["R"], [250.0, 500.0])
    np.testing.assert_allclose(values["Z"], [0.25, 0.5])
    assert model.output_unit("Z") == "kohm" and model.input_scale("I") == 1.0  # mA: unscaled


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"outputs": {"l": "ls + thetta"}, "inputs": {"ls": {"value": 1, "u": 1}, "theta": {"value": 1, "u": 1}}},
         "m.json: outputs.l: unknown name 'thetta' (fix: define it under \"inputs\" or correct the spelling; "
         "did you mean 'theta'?)"),
        ({"outputs": {"l": "ls + t"}, "inputs": {"ls": {"value": 1, "u": 1, "unit": "nm"},
                                                  "t": {"value": 1, "u": 1, "unit": "K"}}},
         "m.json: outputs.l: units do not agree: cannot add 'ls' (nm) and 't' (K)"),
        ({"outputs": {"l": "ls"}, "inputs": {"ls": {"value": 1, "u": 1, "unit": "nm"}}, "output_units": {"l": "V"}},
         "m.json: output_units.l: 'l' comes out in nm ([length]), which cannot be expressed in V"),
        ({"outputs": {"l": "ls"}, "inputs": {"ls": {"value": 1, "u": 1}}, "output_units": {"m": "V"}},
         "m.json: output_units.m: 'm' is not an output"),
        ({"outputs": {"a": "b + 1", "b": "a*2"}, "inputs": {"x": {"value": 1, "u": 1}}},
         "m.json: outputs.a: outputs refer to each other in a circle: a -> b -> a"),
        ({"outputs": {"a": "a + x"}, "inputs": {"x": {"value": 1, "u": 1}}},
         "outputs refer to each other in a circle: a -> a"),
        ({"outputs": {"x": "x*2"}, "inputs": {"x": {"value": 1, "u": 1}}},
         "m.json: outputs.x: 'x' is both an input and an output"),
        ({"outputs": {"y": "sqrt(x)"}, "inputs": {"x": {"value": 0, "u": 1}}},
         "m.json: outputs.y: the sensitivity coefficient dy/dx is inf at the input values"),
        ({"outputs": {"y": "log(x)"}, "inputs": {"x": {"value": -1, "u": 1}}},
         "m.json: outputs.y: the model gives nan at the input values"),
        ({"outputs": {"y": "x"}, "inputs": {"x": {"value": 1, "u": 1}}, "coverage": 95},
         "m.json: coverage: coverage must be a probability between 0 and 1, got 95 (did you mean 0.95?)"),
        ({"outputs": {"y": "x"}, "inputs": {"x": {"value": 1, "u": 1}}, "output_unit": {}},
         "m.json: output_unit: unknown key 'output_unit' (fix: did you mean 'output_units'?"),
        ({"outputs": {}, "inputs": {"x": {"value": 1, "u": 1}}}, "m.json: outputs: outputs must be a non-empty"),
        ({"outputs": {"y": 3}, "inputs": {"x": {"value": 1, "u": 1}}}, "m.json: outputs.y: an output must be"),
        ({"outputs": {"y": "x"}, "inputs": {"x": {"value": 1, "u": 1}}, "gum": {"order": 2}},
         "m.json: gum.order: unknown option"),
        ({"outputs": {"y": "x*z"}, "inputs": {"x": {"value": 1, "u": 1}, "z": {"value": 1, "u": 1}},
          "correlations": [["x", "z", 0.5]], "gum": {"second_order": True}},
         "second-order terms (GUM 5.1.2 note) need uncorrelated inputs"),
        ({"outputs": {"y": "x"}, "inputs": {"x": {"value": 1, "u": 1, "unit": "dB"}}},
         "m.json: inputs.x.unit: unit 'decibel' is not proportional"),
        ([1, 2], "m.json: (top level): a model file must hold a JSON object"),
    ],
)
def test_model_mistakes_are_config_errors(data: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        evaluate_json(data, source="m.json")
    assert fragment in str(caught.value)


def test_monte_carlo_goes_through_the_same_file_and_unknown_methods_are_refused() -> None:
    out = evaluate_json({**H1, "mc": {"trials": 100_000, "seed": 1}}, source="h1.json", method="mc")
    gum = evaluate_json(H1, source="h1.json")["outputs"]["l"]
    assert out["outputs"]["l"]["u"] == pytest.approx(gum["u"], rel=0.1)  # near-linear: MC agrees with GUM
    assert out["validation"]["verdict"] in ("validated", "not validated")
    with pytest.raises(ConfigError, match="h1.json: method: unknown method 'bayes'"):
        evaluate_json(H1, source="h1.json", method="bayes")


def test_evaluate_gum_rejects_a_bad_coverage() -> None:
    model = MeasurementModel.from_json(H1, source="h1.json")
    with pytest.raises(ValueError, match="coverage probability"):
        evaluate_gum(model, 1.5)
