"""Input quantities and correlations from a model file: every form, and every mistake as a clear error."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from daq.errors import ConfigError
from results.model_inputs import (
    CorrelationMatrix,
    InputQuantity,
    correlation_matrix,
    parse_correlations,
    parse_input,
    parse_inputs,
)


def one(spec: object, name: str = "x") -> InputQuantity:
    return parse_input(name, spec, source="model.json")


def test_value_and_standard_uncertainty() -> None:
    q = one({"value": 50000623.6, "u": 25, "dof": 18, "unit": "nm"}, "ls")
    assert (q.name, q.value, q.u, q.dof, q.distribution, q.unit, q.kind) == (
        "ls", 50000623.6, 25.0, 18.0, "normal", "nm", "B")
    assert q.half_width is None and q.samples is None


def test_defaults_are_infinite_dof_and_dimensionless() -> None:
    q = one({"value": 1.0, "u": 0.1})
    assert q.dof == math.inf and q.unit == "dimensionless" and q.distribution == "normal"


def test_t_distribution_needs_dof() -> None:
    assert one({"value": 1.0, "u": 0.1, "dof": 9, "distribution": "t"}).distribution == "t"
    with pytest.raises(ConfigError, match=r"model.json: inputs.x.dof: a t distribution needs finite"):
        one({"value": 1.0, "u": 0.1, "distribution": "t"})


def test_expanded_uncertainty_and_coverage_factor() -> None:
    q = one({"value": 0.1, "U": 0.2, "k": 2})
    assert q.u == pytest.approx(0.1) and q.note == "U = 0.2, k = 2"


@pytest.mark.parametrize(("distribution", "divisor"), [("rectangular", 3), ("triangular", 6), ("arcsine", 2)])
def test_half_width_distributions(distribution: str, divisor: float) -> None:
    q = one({"value": 0, "distribution": distribution, "half_width": 1e-6})
    assert q.u == pytest.approx(1e-6 / math.sqrt(divisor), rel=1e-15)
    assert q.half_width == 1e-6 and q.distribution == distribution and q.dof == math.inf


def test_samples_give_a_type_a_evaluation() -> None:
    samples = [5.007, 4.994, 5.005, 4.990, 4.999]
    q = one({"samples": samples, "unit": "V"}, "V")
    assert q.value == pytest.approx(statistics.fmean(samples), rel=1e-15)
    assert q.u == pytest.approx(statistics.stdev(samples) / math.sqrt(5), rel=1e-12)
    assert (q.dof, q.distribution, q.kind, q.samples) == (4.0, "t", "A", tuple(samples))


def test_dof_may_be_written_as_inf() -> None:
    assert one({"value": 1.0, "u": 0.1, "dof": "inf"}).dof == math.inf


def test_parse_inputs_keeps_file_order() -> None:
    inputs = parse_inputs({"b": {"value": 1, "u": 1}, "a": {"value": 2, "u": 1}}, source="model.json")
    assert list(inputs) == ["b", "a"]


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        ({"value": 1, "u": -0.1}, "inputs.x.u", "the standard uncertainty must be >= 0"),
        ({"value": 1, "U": 0.2, "k": 0}, "inputs.x.k", "the coverage factor must be > 0"),
        ({"value": 1, "U": 0.2, "k": -2}, "inputs.x.k", "the coverage factor must be > 0"),
        ({"value": 1, "U": 0.2}, "inputs.x.k", "needs its coverage factor k"),
        ({"value": 1, "U": -0.2, "k": 2}, "inputs.x.U", "the expanded uncertainty must be >= 0"),
        ({"value": 1, "u": 0.1, "U": 0.2, "k": 2}, "inputs.x.U", "both 'u' and 'U' are given"),
        ({"value": 1, "u": 0.1, "k": 2}, "inputs.x.k", "only goes with an expanded uncertainty U"),
        ({"samples": [1.0]}, "inputs.x.samples", "needs at least 2 samples, got 1"),
        ({"samples": []}, "inputs.x.samples", "needs at least 2 samples, got 0"),
        ({"samples": "1, 2"}, "inputs.x.samples", "samples must be a list of numbers"),
        ({"samples": [1.0, "2"]}, "inputs.x.samples[1]", "a sample must be a number, got '2'"),
        ({"samples": [1.0, 2.0], "value": 1.5}, "inputs.x.value", "cannot be given with samples"),
        ({"samples": [1.0, 2.0], "dof": 3}, "inputs.x.dof", "cannot be given with samples"),
        ({"samples": [1.0, 2.0], "distribution": "normal"}, "inputs.x.distribution", "t distribution"),
        ({"value": 1, "uu": 0.1}, "inputs.x.uu", "unknown key 'uu' (fix: did you mean 'u'?"),
        ({"value": "1.0", "u": 0.1}, "inputs.x.value", "value must be a number, got '1.0'"),
        ({"value": True, "u": 0.1}, "inputs.x.value", "value must be a number, got True"),
        ({"value": math.nan, "u": 0.1}, "inputs.x.value", "must be a finite number"),
        ({"value": 1, "u": math.inf}, "inputs.x.u", "must be a finite number"),
        ({"value": 1, "u": None}, "inputs.x.u", "must be a number, got None"),
        ({"value": 1, "u": 0.1, "dof": 0}, "inputs.x.dof", "degrees of freedom must be > 0"),
        ({"value": 1, "u": 0.1, "dof": "many"}, "inputs.x.dof", "must be a number"),
        ({"u": 0.1}, "inputs.x.value", "the input has no value"),
        ({"value": 1}, "inputs.x", "the input has no uncertainty"),
        ({"value": 1, "half_width": 0.5}, "inputs.x.distribution", "a half_width needs a distribution"),
        ({"value": 1, "half_width": -0.5, "distribution": "rectangular"}, "inputs.x.half_width", ">= 0"),
        ({"value": 1, "u": 0.5, "distribution": "rectangular"}, "inputs.x.distribution", "stated by its half_width"),
        ({"value": 1, "u": 0.5, "distribution": "gauss"}, "inputs.x.distribution", "unknown distribution 'gauss'"),
        ({"value": 1, "u": 0.5, "unit": "bananas"}, "inputs.x.unit", "unknown unit"),
        ({"value": 1, "u": 0.5, "unit": 3}, "inputs.x.unit", "unit must be a unit name"),
        ([1, 0.5], "inputs.x", "an input must be an object"),
    ],
)
def test_each_mistake_names_file_field_and_fix(spec: object, field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        one(spec)
    message = str(caught.value)
    assert message.startswith(f"model.json: {field}: "), message
    assert fragment in message
    assert "(fix: " in message


@pytest.mark.parametrize(("name", "fragment"), [("as", "reserved word"), ("2x", "not a usable name"),
                                                 ("a-b", "not a usable name")])
def test_names_must_be_usable_in_expressions(name: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        one({"value": 1, "u": 1}, name)


def test_inputs_must_be_a_non_empty_object() -> None:
    with pytest.raises(ConfigError, match="inputs must be a non-empty object"):
        parse_inputs({}, source="model.json")
    with pytest.raises(ConfigError, match="inputs must be a non-empty object"):
        parse_inputs([{"value": 1}], source="model.json")


def test_input_quantity_validates_direct_construction() -> None:
    with pytest.raises(ValueError, match="standard uncertainty"):
        InputQuantity("x", 1.0, -1.0)
    with pytest.raises(ValueError, match="half_width"):
        InputQuantity("x", 1.0, 0.5, distribution="rectangular")
    with pytest.raises(ValueError, match="t distribution"):
        InputQuantity("x", 1.0, 0.5, distribution="t")
    assert InputQuantity.from_half_width("x", 0.0, 3.0, "rectangular").u == pytest.approx(math.sqrt(3))
    assert InputQuantity.from_expanded("x", 0.0, 3.0, 2.0).u == 1.5
    assert InputQuantity.from_samples("x", [1.0, 2.0, 3.0]).u == pytest.approx(1 / math.sqrt(3))


# -- correlations -----------------------------------------------------------------------------

THREE = parse_inputs(
    {"V": {"samples": [5.007, 4.994, 5.005, 4.990, 4.999]},
     "I": {"samples": [19.663, 19.639, 19.640, 19.685, 19.678]},
     "phi": {"samples": [1.0456, 1.0438, 1.0468, 1.0428, 1.0433]},
     "T": {"value": 20, "u": 0.1}},
    source="model.json",
)


def test_correlations_build_a_symmetric_matrix_in_input_order() -> None:
    matrix = parse_correlations([["V", "I", -0.36], ["phi", "V", 0.86], ["I", "phi", -0.65]], THREE, source="m")
    assert matrix.names == ("V", "I", "phi", "T")
    assert matrix.r("I", "V") == matrix.r("V", "I") == -0.36
    assert matrix.r("V", "phi") == 0.86 and matrix.r("T", "V") == 0.0
    np.testing.assert_array_equal(matrix.matrix, matrix.matrix.T)
    assert matrix.groups() == [("V", "I", "phi"), ("T",)]
    assert not matrix.is_identity
    assert parse_correlations(None, THREE, source="m").is_identity


def test_correlation_from_simultaneous_samples_is_gum_eq_17() -> None:
    matrix = parse_correlations([["V", "I", "samples"]], THREE, source="m")
    expected = np.corrcoef(THREE["V"].samples, THREE["I"].samples)[0, 1]
    assert matrix.r("V", "I") == pytest.approx(expected, rel=1e-12)
    assert matrix.r("V", "I") == pytest.approx(-0.355, abs=0.001)  # GUM H.2, Table H.2: -0.36


@pytest.mark.parametrize(
    ("entries", "fragment"),
    [
        ([["V", "phy", 0.1]], "unknown input 'phy' (fix: did you mean 'phi'?"),
        ([["V", "V", 0.1]], "'V' is correlated with itself"),
        ([["V", "I", 1.2]], "correlation coefficient 1.2 is outside [-1, 1]"),
        ([["V", "I", -1.0001]], "outside [-1, 1]"),
        ([["V", "I", 0.5], ["I", "V", 0.4]], "given twice with different coefficients"),
        ([["V", "I", "0.5"]], "must be a number"),
        ([["V", "I"]], "expected [name, name, r]"),
        ({"V": "I"}, "correlations must be a list"),
        ([["V", "T", "samples"]], "'T' is not"),
        ([["V", "I", 0.9], ["I", "phi", 0.9], ["V", "phi", -0.9]], "correlation matrix is not positive semi-definite"),
    ],
)
def test_bad_correlations_are_clear_errors(entries: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_correlations(entries, THREE, source="model.json")
    assert str(caught.value).startswith("model.json: correlations")
    assert fragment in str(caught.value)


def test_sample_correlation_needs_equal_numbers_of_samples() -> None:
    inputs = parse_inputs({"a": {"samples": [1, 2, 3]}, "b": {"samples": [1, 2]}}, source="m")
    with pytest.raises(ConfigError, match="'a' has 3 samples but 'b' has 2"):
        parse_correlations([["a", "b", "samples"]], inputs, source="m")


def test_fully_correlated_pairs_are_semi_definite_and_accepted() -> None:
    matrix = correlation_matrix([("a", "b", 1.0), ("b", "c", -1.0), ("a", "c", -1.0)], ["a", "b", "c"])
    assert float(np.linalg.eigvalsh(matrix.matrix).min()) == pytest.approx(0.0, abs=1e-12)
    assert isinstance(matrix, CorrelationMatrix) and not matrix.matrix.flags.writeable
