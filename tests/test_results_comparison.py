"""Comparison statistics: ISO 13528 Algorithm A against a published worked example and hand
calculations, En / zeta / z / z' scores and their evaluations, and the `compare` JSON contract."""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daq.errors import ConfigError
from results.comparison import (
    compare_json,
    en_number,
    evaluate_en,
    evaluate_z,
    z_prime_score,
    z_score,
    zeta_score,
)
from results.robust_statistics import algorithm_a, consensus_standard_uncertainty, scaled_mad

# ISO 13528:2015 Annex E.3, the worked example of Algorithm A (12 participants), as reproduced
# step by step in S. Subramanian, "The Algorithm A in Detail" (2025), slides 3-7,
# https://slideorbit.com/slide/the-algorithm-a-in-detail-powerpoint-ppt-presentation/291515
ISO_13528_E3 = {
    1: 1.69, 2: 0.74, 6: 2.05, 8: 1.14, 9: 2.19, 12: 1.39,
    13: 1.52, 14: 1.50, 19: 1.58, 20: 0.80, 22: 1.21, 25: 1.63,
}  # fmt: skip
# Published (x*, s*) to the digits printed: start, iteration 1, iteration 2.
ISO_13528_E3_PUBLISHED = [(1.510, 0.3559), (1.475, 0.4072), (1.460, 0.4486)]

# ISO 5725-5:1998 creosote example, laboratory cell means (as quoted in the metRology R package's
# algA documentation): one high result (24.140) and one low (17.570) get winsorised.
CREOSOTE = [24.140, 20.155, 19.500, 20.300, 20.705, 17.570, 20.100, 20.940, 21.185]


def decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text else 0


# -- Algorithm A ---------------------------------------------------------------------------------


def test_algorithm_a_reproduces_the_published_iterations_of_iso_13528_e3() -> None:
    result = algorithm_a(list(ISO_13528_E3.values()))
    for (x_pub, s_pub), (x, s) in zip(ISO_13528_E3_PUBLISHED, result.history, strict=False):
        assert round(x, decimals(x_pub)) == x_pub
        assert round(s, 4) == s_pub
    assert result.p == 12


def test_iso_13528_e3_converges_where_no_result_is_winsorised_checked_by_hand() -> None:
    # At the fixed point every result lies inside x* +- 1.5 s*, so Algorithm A's answer is the
    # plain mean and 1.134 x the plain SD: a calculation anyone can repeat with a calculator.
    data = list(ISO_13528_E3.values())
    result = algorithm_a(data)
    mean = statistics.mean(data)  # 17.44 / 12
    sd = 1.134 * statistics.stdev(data)
    assert result.robust_mean == pytest.approx(mean, abs=1e-12)
    assert result.robust_sd == pytest.approx(sd, abs=1e-12)
    assert (round(result.robust_mean, 3), round(result.robust_sd, 3)) == (1.453, 0.496)
    assert min(data) > mean - 1.5 * sd and max(data) < mean + 1.5 * sd
    assert (result.winsorised_low, result.winsorised_high) == (0, 0)
    assert result.iterations == 6
    assert result.manual_rule_iteration == 6  # s* 0.493 -> 0.496 -> 0.496
    assert result.u_robust_mean == pytest.approx(1.25 * sd / math.sqrt(12), rel=1e-12)


def test_creosote_first_step_by_hand() -> None:
    result = algorithm_a(CREOSOTE)
    # sorted: 17.570 19.500 20.100 20.155 20.300 20.705 20.940 21.185 24.140 -> median 20.300
    # |x - 20.3| sorted: 0 .145 .2 .405 .64 .8 .885 2.73 3.84 -> MAD 0.64, s* = 1.483 * 0.64
    assert result.initial_mean == pytest.approx(20.300, abs=1e-12)
    assert result.initial_sd == pytest.approx(0.94912, abs=1e-12)
    # delta = 1.5 * 0.94912 = 1.42368: 24.140 -> 21.72368, 17.570 -> 18.87632, the rest unchanged
    winsorised = [21.72368, 20.155, 19.500, 20.300, 20.705, 18.87632, 20.100, 20.940, 21.185]
    x1, s1 = result.history[1]
    assert x1 == pytest.approx(183.485 / 9, abs=1e-12)
    assert s1 == pytest.approx(1.134 * statistics.stdev(winsorised), abs=1e-12)


def test_creosote_converges_to_a_fixed_point_and_reports_its_iterations() -> None:
    result = algorithm_a(CREOSOTE)
    x, s = result.robust_mean, result.robust_sd
    clipped = np.clip(CREOSOTE, x - 1.5 * s, x + 1.5 * s)
    assert float(np.mean(clipped)) == pytest.approx(x, abs=1e-9)
    assert 1.134 * float(np.std(clipped, ddof=1)) == pytest.approx(s, abs=1e-9)
    assert (result.winsorised_low, result.winsorised_high) == (1, 1)
    assert round(x, 2) == 20.41
    # s* creeps up slowly: the hand rule stops early, the tolerance goes on to the limit.
    assert result.manual_rule_iteration is not None
    assert result.manual_rule_iteration < result.iterations
    assert result.iterations == len(result.history) - 1


def test_a_blunder_barely_moves_the_robust_mean() -> None:
    data = list(ISO_13528_E3.values())
    clean = algorithm_a(data)
    with_blunder = algorithm_a([*data, 150.0])
    assert abs(with_blunder.robust_mean - clean.robust_mean) < 0.2 * clean.robust_sd
    assert statistics.mean([*data, 150.0]) > 10  # the plain mean is ruined


def test_scaled_mad_and_consensus_uncertainty() -> None:
    assert scaled_mad(CREOSOTE) == pytest.approx(1.483 * 0.64)
    assert consensus_standard_uncertainty(0.4, 16) == pytest.approx(0.125)
    with pytest.raises(ValueError):
        consensus_standard_uncertainty(-1.0, 4)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0, 2.0], "at least 3"),
        ([5.0, 5.0, 5.0, 6.0, 7.0], "identical"),
        ([1.0, float("nan"), 2.0], "finite"),
        ([1.0, "2", 3.0], "number"),
        ([1.0, True, 3.0], "number"),
    ],
)
def test_algorithm_a_refuses_what_it_cannot_estimate(values: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        algorithm_a(values)


def test_algorithm_a_raises_rather_than_return_an_unconverged_value() -> None:
    with pytest.raises(ValueError, match="did not converge"):
        algorithm_a(CREOSOTE, max_iterations=3)


@settings(max_examples=60, deadline=None)
@given(
    millis=st.lists(st.integers(-(10**6), 10**6), min_size=3, max_size=30, unique=True),
    shift=st.floats(-1e3, 1e3),
    scale=st.floats(0.01, 100),
)
def test_algorithm_a_is_equivariant_and_stays_within_the_data(millis: list[int], shift: float, scale: float) -> None:
    # Distinct results in steps of 0.001: the MAD is never zero, and shifting and scaling them
    # cannot merge two of them in floating point.
    data = [m / 1000 for m in millis]
    base = algorithm_a(data)
    moved = algorithm_a([shift + scale * v for v in data])
    assert moved.robust_mean == pytest.approx(shift + scale * base.robust_mean, rel=1e-6, abs=1e-6 * scale)
    assert moved.robust_sd == pytest.approx(scale * base.robust_sd, rel=1e-6)
    assert min(data) <= base.robust_mean <= max(data)


# -- scores and evaluations ----------------------------------------------------------------------


def test_scores_by_hand() -> None:
    # lab 10.02 +- 0.04 (k=2) against reference 10.00 +- 0.02 (k=2)
    assert en_number(10.02, 0.04, 10.00, 0.02) == pytest.approx(0.02 / math.sqrt(0.0016 + 0.0004))
    assert en_number(10.02, 0.04, 10.00, 0.02) == pytest.approx(0.4472135955, abs=1e-9)
    assert zeta_score(10.02, 0.02, 10.00, 0.01) == pytest.approx(0.8944271910, abs=1e-9)
    assert z_score(10.02, 10.00, 0.05) == pytest.approx(0.4)
    assert z_prime_score(10.02, 10.00, 0.03, 0.04) == pytest.approx(0.4)  # sqrt(0.03^2 + 0.04^2) = 0.05


@pytest.mark.parametrize(
    ("en", "evaluation"),
    [(0.0, "satisfactory"), (1.0, "satisfactory"), (-1.0, "satisfactory"), (1.001, "unsatisfactory"),
     (-3.0, "unsatisfactory")],
)  # fmt: skip
def test_en_evaluation(en: float, evaluation: str) -> None:
    assert evaluate_en(en) == evaluation


@pytest.mark.parametrize(
    ("score", "evaluation"),
    [(0.0, "satisfactory"), (2.0, "satisfactory"), (-2.0, "satisfactory"), (2.01, "questionable"),
     (-2.99, "questionable"), (3.0, "unsatisfactory"), (-3.0, "unsatisfactory"), (7.5, "unsatisfactory")],
)  # fmt: skip
def test_z_and_zeta_evaluation(score: float, evaluation: str) -> None:
    assert evaluate_z(score) == evaluation


def test_a_result_exactly_on_a_limit_is_not_pushed_over_by_binary_rounding() -> None:
    at_two = z_score(1.1, 1.0, 0.05)
    assert at_two > 2.0  # 2.0000000000000018 in floating point
    assert evaluate_z(at_two) == "satisfactory"
    at_three = z_score(0.3, 0.15, 0.05)
    assert at_three < 3.0  # 2.9999999999999996
    assert evaluate_z(at_three) == "unsatisfactory"
    at_one = en_number(10.05, 0.04, 10.0, 0.03)  # 0.05 / 0.05
    assert at_one > 1.0  # 1.0000000000000142
    assert evaluate_en(at_one) == "satisfactory"


def test_scores_refuse_zero_uncertainty_and_sigma() -> None:
    with pytest.raises(ValueError):
        en_number(1.0, 0.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        zeta_score(1.0, 0.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        z_score(1.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        en_number(1.0, -0.1, 1.0, 0.1)


# -- the JSON contract ---------------------------------------------------------------------------

REFERENCE_CASE: dict[str, Any] = {
    "title": "gauge block 10 mm",
    "unit": "mm",
    "participants": [
        {"id": "lab A", "value": 10.02, "U": 0.04, "k": 2},
        {"id": "lab B", "value": 10012, "U": 30, "unit": "um"},
        {"id": "lab C", "value": 10.13, "U": 0.05, "k": 2.5},
        {"id": 7, "value": 9.97},
    ],
    "reference": {"value": 10.00, "U": 0.02, "k": 2, "description": "NMI certificate 123"},
    "sigma_pt": 0.05,
}


def by_id(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in out["participants"]}


def test_compare_json_with_a_reference_value() -> None:
    out = compare_json(REFERENCE_CASE, source="ilc.json")
    json.dumps(out, allow_nan=False)
    assert out["title"] == "gauge block 10 mm"
    assert out["unit"] == "mm"
    assigned = out["assigned_value"]
    assert (assigned["value"], assigned["u"], assigned["U"], assigned["method"]) == (10.0, 0.01, 0.02, "reference")
    assert assigned["description"] == "NMI certificate 123"
    assert out["sigma_pt"] == {"value": 0.05, "method": "given in the input"}
    assert out["u_x_pt_negligible"] is True  # 0.01 <= 0.3 * 0.05

    labs = by_id(out)
    a = labs["lab A"]
    assert a["in_consensus"] is False
    assert a["En"] == pytest.approx(0.4472135955, abs=1e-9)
    assert a["zeta"] == pytest.approx(0.8944271910, abs=1e-9)
    assert a["z"] == pytest.approx(0.4)
    assert (a["En_evaluation"], a["zeta_evaluation"], a["z_evaluation"]) == ("satisfactory",) * 3

    b = labs["lab B"]  # reported in micrometres
    assert b["value"] == pytest.approx(10.012)
    assert b["U"] == pytest.approx(0.030)
    assert b["En"] == pytest.approx(0.012 / math.hypot(0.03, 0.02))

    c = labs["lab C"]  # U = 0.05 at k = 2.5: u = 0.02, U at k = 2 is 0.04
    assert c["U_k2"] == pytest.approx(0.04)
    assert c["En"] == pytest.approx(0.13 / math.hypot(0.04, 0.02))
    assert c["En_evaluation"] == "unsatisfactory"
    assert c["z"] == pytest.approx(2.6)
    assert c["z_evaluation"] == "questionable"
    assert any("k = 2.5" in note for note in c["notes"])

    seven = labs["7"]  # a PT participant without an uncertainty
    assert seven["En"] is None and seven["zeta"] is None
    assert seven["z"] == pytest.approx(-0.6)
    assert any("no U" in note for note in seven["notes"])


def test_compare_json_with_a_reference_and_no_sigma_pt_gives_no_z() -> None:
    data = {k: v for k, v in REFERENCE_CASE.items() if k != "sigma_pt"}
    out = compare_json(data, source="ilc.json")
    assert out["sigma_pt"] is None
    assert all(p["z"] is None for p in out["participants"])
    assert any("sigma_pt" in note for note in out["notes"])
    assert out["participant_statistics"]["p"] == 4


def consensus_case() -> dict[str, Any]:
    return {"participants": [{"id": f"lab {lab}", "value": value, "U": 0.30} for lab, value in ISO_13528_E3.items()]}


def test_compare_json_without_reference_uses_the_algorithm_a_consensus() -> None:
    out = compare_json(consensus_case(), source="pt.json")
    json.dumps(out, allow_nan=False)
    data = list(ISO_13528_E3.values())
    robust = algorithm_a(data)
    assigned = out["assigned_value"]
    assert assigned["method"] == "consensus"
    assert assigned["value"] == pytest.approx(robust.robust_mean)
    assert assigned["u"] == pytest.approx(1.25 * robust.robust_sd / math.sqrt(12))
    assert assigned["U"] == pytest.approx(2 * assigned["u"])
    assert assigned["algorithm_a"]["iterations"] == 6
    assert "Algorithm A" in assigned["description"]
    # sigma_pt defaults to s* of the round and says so
    assert out["sigma_pt"]["value"] == pytest.approx(robust.robust_sd)
    assert "8.6" in out["sigma_pt"]["method"]
    # 1.25 / sqrt(12) = 0.36 > 0.3: u(x_pt) is not negligible, z' is the score to use
    assert out["u_x_pt_negligible"] is False
    assert any("z'" in w for w in out["warnings"])
    assert any("in_consensus" in n for n in out["notes"])

    labs = by_id(out)
    assert all(p["in_consensus"] for p in out["participants"])
    low = labs["lab 2"]  # 0.74
    x_pt, u_pt = assigned["value"], assigned["u"]
    assert low["En"] == pytest.approx((0.74 - x_pt) / math.hypot(0.30, 2 * u_pt))
    assert low["zeta"] == pytest.approx((0.74 - x_pt) / math.hypot(0.15, u_pt))
    assert low["z"] == pytest.approx((0.74 - x_pt) / robust.robust_sd)
    assert low["z_prime"] == pytest.approx((0.74 - x_pt) / math.hypot(robust.robust_sd, u_pt))

    # the same lab against the consensus of the other eleven
    others = algorithm_a([v for lab, v in ISO_13528_E3.items() if lab != 2])
    u_others = 1.25 * others.robust_sd / math.sqrt(11)
    assert low["assigned_excluding_self"] == pytest.approx(others.robust_mean)
    assert low["En_excluding_self"] == pytest.approx((0.74 - others.robust_mean) / math.hypot(0.30, 2 * u_others))
    assert low["zeta_excluding_self"] == pytest.approx((0.74 - others.robust_mean) / math.hypot(0.15, u_others))
    # its own result pulled the consensus towards it: excluded, it looks further out
    assert abs(low["En_excluding_self"]) > abs(low["En"])


def test_small_consensus_is_flagged_and_leave_one_out_needs_three_others() -> None:
    data = {"participants": [{"id": "a", "value": 1.0, "U": 0.2}, {"id": "b", "value": 1.1, "U": 0.2},
                             {"id": "c", "value": 1.3, "U": 0.2}]}  # fmt: skip
    out = compare_json(data, source="pt.json")
    assert any("only 3 results" in w for w in out["warnings"])
    assert all(p["En_excluding_self"] is None for p in out["participants"])
    assert all(any("excluding self" in n for n in p["notes"]) for p in out["participants"])


def test_sigma_pt_robust_with_a_reference_value() -> None:
    data = dict(REFERENCE_CASE, sigma_pt="robust")
    out = compare_json(data, source="ilc.json")
    expected = algorithm_a([10.02, 10.012, 10.13, 9.97]).robust_sd
    assert out["sigma_pt"]["value"] == pytest.approx(expected)
    assert "8.6" in out["sigma_pt"]["method"]


def test_temperature_uncertainty_is_converted_as_a_difference() -> None:
    data = {
        "unit": "K",
        "participants": [{"id": "a", "value": 20.5, "U": 0.5, "unit": "degC"}],
        "reference": {"value": 293.65, "U": 0.2},
    }
    lab = compare_json(data, source="t.json")["participants"][0]
    assert lab["value"] == pytest.approx(293.65)
    assert lab["U"] == pytest.approx(0.5)
    assert lab["En"] == pytest.approx(0.0, abs=1e-9)


def mutate(base: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(base))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        (mutate(REFERENCE_CASE, ("participants", 1, "U"), -30), "participants[1].U", "negative"),
        (mutate(REFERENCE_CASE, ("participants", 0, "U"), 0), "participants[0].U", "> 0"),
        (mutate(REFERENCE_CASE, ("participants", 2, "id"), "lab A"), "participants[2].id", "duplicate"),
        (mutate(REFERENCE_CASE, ("participants", 0, "id"), "7"), "participants[3].id", "duplicate"),
        (mutate(REFERENCE_CASE, ("participants", 0, "value"), "10.02"), "participants[0].value", "number"),
        (mutate(REFERENCE_CASE, ("participants", 0, "value"), float("nan")), "participants[0].value", "finite"),
        (mutate(REFERENCE_CASE, ("participants", 0, "k"), 0), "participants[0].k", "> 0"),
        (mutate(REFERENCE_CASE, ("participants", 0, "Value"), 1.0), "participants[0].Value", "unknown key"),
        (mutate(REFERENCE_CASE, ("participants", 0, "id"), ""), "participants[0].id", "missing"),
        (mutate(REFERENCE_CASE, ("participants", 1, "unit"), "kg"), "participants[1].unit", "not convertible"),
        (mutate(REFERENCE_CASE, ("participants", 1, "unit"), "furlongz"), "participants[1].unit", "unknown unit"),
        (mutate(REFERENCE_CASE, ("reference", "U"), -0.02), "reference.U", "negative"),
        (mutate(REFERENCE_CASE, ("reference", "value"), None), "reference.value", "missing"),
        (mutate(REFERENCE_CASE, ("reference",), [10.0]), "reference", "object"),
        (mutate(REFERENCE_CASE, ("sigma_pt",), 0), "sigma_pt", "positive"),
        (mutate(REFERENCE_CASE, ("sigma_pt",), "big"), "sigma_pt", "number"),
        (mutate(REFERENCE_CASE, ("unit",), "bogons"), "unit", "unknown unit"),
        (mutate(REFERENCE_CASE, ("participants",), []), "participants", "empty"),
        (mutate(REFERENCE_CASE, ("participant",), []), "participant", "unknown key"),
        ({"participants": [{"id": "a", "value": 1.0, "unit": "mm"}], "reference": {"value": 1.0, "U": 0.1}},
         "unit", "has a unit"),
        ({"participants": [{"id": "a", "value": 1.0}, {"id": "b", "value": 1.2}]}, "participants", "at least 3"),
        ({"participants": [{"id": i, "value": v} for i, v in enumerate([5.0, 5.0, 5.0, 5.1, 6.0])]},
         "participants", "identical"),
        ({"participants": [{"id": "a", "value": 1.0}], "reference": {"value": 1.0, "U": 0.1}, "sigma_pt": "robust"},
         "sigma_pt", "at least 3"),
    ],
)  # fmt: skip
def test_bad_input_is_a_config_error_naming_the_field_and_a_fix(data: Any, field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        compare_json(data, source="bad.json")
    error = caught.value
    assert error.source == "bad.json"
    assert error.field == field
    assert problem in error.problem
    assert error.fix


def test_top_level_must_be_an_object() -> None:
    with pytest.raises(ConfigError) as caught:
        compare_json([1, 2, 3], source="bad.json")  # type: ignore[arg-type]
    assert caught.value.field == "<top level>"


def test_a_single_participant_against_a_reference_is_a_personnel_test() -> None:
    data = {"participants": [{"id": "technician", "value": 100.3, "U": 0.4}], "reference": {"value": 100.0, "U": 0.3}}
    out = compare_json(data, source="personnel.json")
    lab = out["participants"][0]
    assert lab["En"] == pytest.approx(0.6)
    assert lab["En_evaluation"] == "satisfactory"
    assert out["participant_statistics"] is None
