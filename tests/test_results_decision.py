"""ILAC-G8:2019 decision rules at and around their boundaries (tolerance +-10, U = 2, TUR 5)."""

from __future__ import annotations

import pytest

from results.decision import decide, symmetric_tolerance


@pytest.mark.parametrize(
    ("error", "outcome", "statement"),
    [
        (0.0, "pass", "pass"),
        (8.0, "pass", "pass"),  # on the acceptance limit TL - U
        (-8.0, "pass", "pass"),
        (8.5, "undecided", "conditional pass"),
        (-9.0, "undecided", "conditional pass"),
        (10.0, "undecided", "conditional pass"),  # on the tolerance limit
        (11.0, "undecided", "conditional fail"),
        (-11.999, "undecided", "conditional fail"),
        (12.0, "fail", "fail"),  # on the rejection limit TL + U
        (-12.0, "fail", "fail"),
        (30.0, "fail", "fail"),
    ],
)
def test_guarded_acceptance(error: float, outcome: str, statement: str) -> None:
    d = decide(error, 2.0, -10.0, 10.0)
    assert (d.outcome, d.statement) == (outcome, statement)
    assert d.rule == "ILAC-G8:2019 guarded acceptance, w = U"
    assert (d.acceptance_lower, d.acceptance_upper) == (-8.0, 8.0)
    assert (d.rejection_lower, d.rejection_upper) == (-12.0, 12.0)
    assert d.guard_band == 2.0
    assert d.tur == 5.0


@pytest.mark.parametrize(
    ("error", "outcome"),
    [(0.0, "pass"), (10.0, "pass"), (-10.0, "pass"), (10.001, "fail"), (-10.001, "fail"), (11.0, "fail")],
)
def test_simple_acceptance(error: float, outcome: str) -> None:
    d = decide(error, 2.0, -10.0, 10.0, rule="simple")
    assert d.outcome == outcome
    assert d.rule == "ILAC-G8:2019 simple acceptance, w = 0"
    assert (d.acceptance_lower, d.acceptance_upper) == (-10.0, 10.0)
    assert d.guard_band == 0.0
    assert "TUR = 5.00" in d.note


def test_explicit_guard_band() -> None:
    d = decide(9.0, 2.0, -10.0, 10.0, guard_band=1.0)
    assert d.outcome == "pass"
    assert d.rule == "ILAC-G8:2019 guarded acceptance, w = 1"
    assert decide(10.5, 2.0, -10.0, 10.0, guard_band=1.0).outcome == "undecided"
    assert decide(11.0, 2.0, -10.0, 10.0, guard_band=1.0).outcome == "fail"


def test_asymmetric_limits_and_tur() -> None:
    d = decide(0.5, 0.25, 0.0, 2.0)
    assert (d.acceptance_lower, d.acceptance_upper) == (0.25, 1.75)
    assert d.outcome == "pass"
    assert d.tur == 4.0
    assert decide(0.1, 0.25, 0.0, 2.0).statement == "conditional pass"


def test_guard_band_wider_than_tolerance_cannot_pass() -> None:
    d = decide(0.0, 2.0, -1.0, 1.0)
    assert d.outcome == "undecided"
    assert "no acceptance zone" in d.note
    assert d.tur == 0.5


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="simple acceptance has no guard band"):
        decide(0.0, 1.0, -1.0, 1.0, rule="simple", guard_band=0.5)
    with pytest.raises(ValueError, match="'guarded' or 'simple'"):
        decide(0.0, 1.0, -1.0, 1.0, rule="shared")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be below upper limit"):
        decide(0.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="U must be finite and > 0"):
        decide(0.0, 0.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="guard band must be"):
        decide(0.0, 1.0, -1.0, 1.0, guard_band=-0.1)


def test_symmetric_tolerance_ppm_of_reading_plus_range() -> None:
    # 10 V on the 10 V range, spec 20 ppm of reading + 5 ppm of range: +-(200 + 50) uV
    assert symmetric_tolerance(20, 5, 10.0, 10.0) == pytest.approx(250e-6, rel=1e-12)
    assert symmetric_tolerance(20, 5, -10.0, 10.0) == pytest.approx(250e-6, rel=1e-12)
    # 1 V on the 10 V range: the range term dominates
    assert symmetric_tolerance(20, 5, 1.0, 10.0) == pytest.approx(70e-6, rel=1e-12)
    with pytest.raises(ValueError, match=">= 0"):
        symmetric_tolerance(-1, 5, 1.0, 10.0)
