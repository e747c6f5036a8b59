"""ILAC-P14:09/2020 §5.3 rounding: U to two significant digits, the value to U's last digit."""

from __future__ import annotations

import math

import pytest

from results.rounding import round_expanded_uncertainty, round_result


@pytest.mark.parametrize(
    ("U", "expected", "exponent", "text"),
    [
        (0.0001234, 0.00012, -5, "0.00012"),  # round to nearest, not up
        (0.000125, 0.00013, -5, "0.00013"),  # exact decimal tie: away from zero
        (0.00012499, 0.00012, -5, "0.00012"),
        (1234.5, 1200.0, 2, "1200"),
        (0.0996, 0.10, -2, "0.10"),  # carry into the next decade keeps two digits
        (0.1, 0.10, -2, "0.10"),  # the trailing zero is significant
        (28.05, 28.0, 0, "28"),  # GUM 7.2.6: 28,05 kHz -> 28 kHz
        (0.285, 0.29, -2, "0.29"),  # binary 0.28499999... must still be the decimal tie
        (7.0, 7.0, -1, "7.0"),
        (2.5e-7, 2.5e-7, -8, "0.00000025"),
    ],
)
def test_round_expanded_uncertainty(U: float, expected: float, exponent: int, text: str) -> None:
    r = round_expanded_uncertainty(U)
    assert r.U == expected
    assert r.exponent == exponent
    assert r.text == text


def test_round_result_gum_example() -> None:
    # GUM 7.2.6: y = 10.057 62 ohm with uncertainty 27 mohm is reported as 10.058 ohm
    r = round_result(10.05762, 0.027)
    assert (r.value, r.U, r.value_text, r.U_text, r.exponent) == (10.058, 0.027, "10.058", "0.027", -3)


def test_round_result_to_tens_and_negative_values() -> None:
    r = round_result(10234.7, 1234.5)
    assert (r.value, r.U, r.value_text) == (10200.0, 1200.0, "10200")
    neg = round_result(-0.000125, 0.0003)
    assert (neg.value, neg.value_text, neg.U_text) == (-0.00013, "-0.00013", "0.00030")


def test_round_result_never_prints_negative_zero() -> None:
    r = round_result(-0.000001, 0.00012)
    assert r.value_text == "0.00000"
    assert math.copysign(1.0, r.value) == 1.0


def test_round_result_keeps_digits_beyond_default_decimal_precision() -> None:
    r = round_result(1.0e6, 1.0e-30)
    assert r.value_text.startswith("1000000.000")
    assert r.U_text.endswith("10")


@pytest.mark.parametrize("bad", [0.0, -0.001, math.inf, math.nan])
def test_bad_uncertainty_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="expanded uncertainty U must be"):
        round_expanded_uncertainty(bad)


def test_bad_value_is_rejected() -> None:
    with pytest.raises(ValueError, match="measured value must be finite"):
        round_result(math.nan, 0.1)
