"""GUM budgets against published numbers: JCGM 100:2008 G.4.1 and the t table (GUM G.2 / EA-4/02 E.1)."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from results.gum import (
    UncertaintyBudget,
    UncertaintyComponent,
    arcsine,
    coverage_factor,
    from_expanded,
    rectangular,
    resolution,
    triangular,
    type_a,
    welch_satterthwaite,
)

# t_p(nu) for p = 95.45 %, as printed (two decimals) in JCGM 100:2008 Table G.2 and EA-4/02 Table E.1.
PUBLISHED_K_9545 = {1: 13.97, 2: 4.53, 3: 3.31, 4: 2.87, 5: 2.65, 10: 2.28, 16: 2.17, 20: 2.13, 50: 2.05}


@pytest.mark.parametrize(("dof", "k_table"), sorted(PUBLISHED_K_9545.items()))
def test_coverage_factor_matches_published_t_table(dof: int, k_table: float) -> None:
    assert coverage_factor(dof) == pytest.approx(k_table, abs=0.005)


def test_coverage_factor_infinite_dof_is_normal_two() -> None:
    assert coverage_factor(math.inf) == pytest.approx(2.000, abs=1e-5)
    assert coverage_factor(math.inf, p=0.95) == pytest.approx(1.960, abs=1e-3)


def test_coverage_factor_uses_real_not_truncated_dof() -> None:
    k = coverage_factor(16.5)
    assert coverage_factor(17) < k < coverage_factor(16)
    assert k == pytest.approx(stats.t.ppf((1 + 0.9545) / 2, 16.5), rel=1e-12)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan])
def test_coverage_factor_rejects_bad_dof(bad: float) -> None:
    with pytest.raises(ValueError, match="degrees of freedom"):
        coverage_factor(bad)


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5])
def test_coverage_factor_rejects_bad_probability(bad: float) -> None:
    with pytest.raises(ValueError, match="coverage probability"):
        coverage_factor(10, p=bad)


def test_welch_satterthwaite_gum_g41_example() -> None:
    # JCGM 100:2008 G.4.1 example: relative uncertainties 0.25 %, 0.57 %, 0.82 % from n = 10, 5, 15
    # readings; the GUM obtains nu_eff = 19.0, t_95(19) = 2.09 and U_95 = 2.2 % of y.
    contributions, dofs = [0.25, 0.57, 0.82], [9, 4, 14]
    nu = welch_satterthwaite(contributions, dofs)
    assert nu == pytest.approx(19.0, abs=0.05)
    budget = UncertaintyBudget(
        tuple(
            UncertaintyComponent(f"x{i}", "A", "t", u, dof=dof)
            for i, (u, dof) in enumerate(zip(contributions, dofs, strict=True), start=1)
        ),
        p=0.95,
    )
    assert budget.u_c == pytest.approx(1.03, abs=0.005)
    assert budget.k == pytest.approx(2.09, abs=0.005)
    assert round(budget.U, 1) == 2.2


def test_welch_satterthwaite_by_hand() -> None:
    # u_c = 5, only the first input has finite dof: nu = 5^4 / (3^4 / 4) = 625 / 20.25
    assert welch_satterthwaite([3.0, 4.0], [4, math.inf]) == pytest.approx(625 / 20.25, rel=1e-12)
    # sensitivities carry a sign; only the magnitude counts
    assert welch_satterthwaite([-3.0, 4.0], [4, math.inf]) == pytest.approx(625 / 20.25, rel=1e-12)
    # two finite: (1 + 4)^2 / (1/2 + 16/8) = 25 / 2.5
    assert welch_satterthwaite([1.0, 2.0], [2, 8]) == pytest.approx(10.0, rel=1e-12)


def test_welch_satterthwaite_infinite_and_zero_cases() -> None:
    assert welch_satterthwaite([1.0, 2.0], [math.inf, math.inf]) == math.inf
    # a zero contribution with a tiny dof must not pull nu_eff down (or divide 0 by 0)
    assert welch_satterthwaite([0.0, 2.0], [1, math.inf]) == math.inf
    assert welch_satterthwaite([0.0, 2.0], [1, 10]) == pytest.approx(10.0)


def test_welch_satterthwaite_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="2 contributions but 1"):
        welch_satterthwaite([1.0, 2.0], [3])


def test_type_a_mean_std_of_mean_and_dof() -> None:
    c = type_a("rep", [1.0, 2.0, 3.0, 4.0, 5.0], unit="uV")
    assert c.value == pytest.approx(3.0)
    assert c.u == pytest.approx(math.sqrt(2.5) / math.sqrt(5), rel=1e-12)
    assert c.dof == 4
    assert c.kind == "A"
    assert c.note == "5 readings, s = 1.58 uV"


def test_type_a_identical_readings_give_exact_zero() -> None:
    c = type_a("ref", [0.1, 0.1, 0.1], sensitivity=-1.0)
    assert c.u == 0.0
    assert c.value == 0.1
    assert c.dof == 2
    assert "identical" in c.note


@pytest.mark.parametrize("values", [[], [1.0]])
def test_type_a_needs_two_readings(values: list[float]) -> None:
    with pytest.raises(ValueError, match="rep: a type A evaluation needs at least 2 readings"):
        type_a("rep", values)


def test_type_a_rejects_nan() -> None:
    with pytest.raises(ValueError, match="finite"):
        type_a("rep", [1.0, math.nan])


def test_type_b_constructors() -> None:
    assert from_expanded("cal", 2.0, 2.0).u == 1.0
    assert from_expanded("cal", 2.0, 2.0).distribution == "normal"
    assert from_expanded("cal", 2.2, 2.2, dof=10).distribution == "t"
    assert from_expanded("cal", 2.2, 2.2, dof=10).dof == 10
    assert rectangular("r", 1.0).u == pytest.approx(0.577350, rel=1e-6)
    assert triangular("t", 1.0).u == pytest.approx(0.408248, rel=1e-6)
    assert arcsine("a", 1.0).u == pytest.approx(0.707107, rel=1e-6)
    # GUM F.2.2.1: resolution 1 uV -> half-width 0.5 uV -> u = 0.5 / sqrt(3) = 0.289 uV
    res = resolution("res", 1e-6)
    assert res.u == pytest.approx(0.5e-6 / math.sqrt(3), rel=1e-12)
    assert res.distribution == "rectangular"
    assert res.dof == math.inf
    with pytest.raises(ValueError, match="resolution must be"):
        resolution("res", 0.0)


def test_component_validation_and_contribution() -> None:
    c = UncertaintyComponent("x", "B", "normal", 2.0, sensitivity=-3.0)
    assert c.contribution == 6.0
    with pytest.raises(ValueError, match="kind"):
        UncertaintyComponent("x", "C", "normal", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="distribution"):
        UncertaintyComponent("x", "B", "uniform", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="standard uncertainty"):
        UncertaintyComponent("x", "B", "normal", -1.0)
    with pytest.raises(ValueError, match="degrees of freedom"):
        UncertaintyComponent("x", "A", "t", 1.0, dof=0)


def test_budget_combines_rows_and_serialises() -> None:
    budget = UncertaintyBudget(
        (
            UncertaintyComponent("a", "A", "t", 3.0, dof=4),
            UncertaintyComponent("b", "B", "normal", 2.0, sensitivity=-2.0),
            UncertaintyComponent("zero", "A", "t", 0.0, dof=1),
        )
    )
    assert budget.u_c == pytest.approx(5.0)
    assert budget.dof_eff == pytest.approx(625 / 20.25)
    assert budget.k == pytest.approx(stats.t.ppf(0.97725, 625 / 20.25))
    assert budget.U == pytest.approx(budget.k * 5.0)
    rows = budget.as_rows()
    assert [r.name for r in rows] == ["a", "b", "zero"]
    assert [r.percent for r in rows] == pytest.approx([36.0, 64.0, 0.0])
    assert rows[1].contribution == 4.0
    assert budget["b"].sensitivity == -2.0
    data = json.loads(json.dumps(budget.to_dict()))
    assert data["components"][1]["dof"] == "inf"
    assert data["components"][0]["percent"] == pytest.approx(36.0)
    assert data["dof_eff"] == pytest.approx(625 / 20.25)
    assert data["U"] == pytest.approx(budget.U)


def test_budget_all_infinite_dof_gives_k_two() -> None:
    budget = UncertaintyBudget((rectangular("r", 1.0), from_expanded("cal", 1.0, 2.0)))
    assert budget.dof_eff == math.inf
    assert budget.to_dict()["dof_eff"] == "inf"
    assert budget.k == pytest.approx(2.0, abs=1e-5)


def test_budget_rejects_duplicates_and_empty() -> None:
    with pytest.raises(ValueError, match="repeated: a"):
        UncertaintyBudget((rectangular("a", 1.0), rectangular("a", 2.0)))
    with pytest.raises(ValueError, match="at least one component"):
        UncertaintyBudget(())
