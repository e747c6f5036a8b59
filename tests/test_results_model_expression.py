"""The safe model-expression language: parsing, refusals, vectorised evaluation, exact derivatives, units."""

from __future__ import annotations

import math

import numpy as np
import pytest

from daq.errors import ConfigError
from daq.units import Q_
from results.expression import (
    FUNCTIONS,
    BinaryOp,
    Name,
    Number,
    UnitMismatch,
    check_names,
    evaluate_with_units,
    parse_expression,
)

H1 = "ls + d - ls*(da*theta + as_*dtheta)"


def value(text: str, **env: float) -> float:
    return float(parse_expression(text).evaluate(env))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2*3", 7.0),
        ("(1 + 2)*3", 9.0),
        ("2**3**2", 512.0),  # right-associative, as in Python and mathematics
        ("-2**2", -4.0),  # unary minus binds looser than **
        ("(-2)**2", 4.0),
        ("8/4/2", 1.0),
        ("10 - 4 - 3", 3.0),
        ("+5 - -5", 10.0),
        ("2**-1", 0.5),
        ("1e-6 * 1e6", 1.0),
        ("sqrt(16) + exp(0) + log(1) + log10(1000)", 8.0),
        ("sin(0) + cos(0) + tan(0)", 1.0),
        ("asin(1) + acos(1) + atan(0)", math.pi / 2),
        ("abs(-3.5)", 3.5),
    ],
)
def test_numbers_operators_and_functions(text: str, expected: float) -> None:
    assert value(text) == pytest.approx(expected, rel=1e-15)


def test_names_may_end_with_an_underscore_and_free_names_lists_them() -> None:
    expression = parse_expression(H1)
    assert expression.free_names() == {"ls", "d", "da", "theta", "as_", "dtheta"}
    assert value(H1, ls=10.0, d=1.0, da=0.5, theta=2.0, as_=0.25, dtheta=4.0) == 10 + 1 - 10 * (1 + 1)


def test_evaluates_numpy_arrays_elementwise_for_monte_carlo() -> None:
    expression = parse_expression("V/I*cos(phi) + sqrt(abs(V))")
    rng = np.random.default_rng(1)
    V, current, phi = rng.normal(5, 0.1, 1000), rng.normal(0.02, 1e-4, 1000), rng.normal(1.04, 0.01, 1000)
    result = expression.evaluate({"V": V, "I": current, "phi": phi})
    assert isinstance(result, np.ndarray) and result.shape == (1000,)
    expected = [float(expression.evaluate({"V": v, "I": i, "phi": p})) for v, i, p in zip(V, current, phi, strict=True)]
    np.testing.assert_allclose(result, expected, rtol=1e-15)


def test_division_by_zero_gives_inf_not_an_exception() -> None:
    # The GUM evaluation refuses a non-finite value with a clear error; Monte Carlo sees inf per trial.
    with np.errstate(divide="ignore"):
        assert math.isinf(value("1/x", x=0.0))


def test_derivatives_are_exact_and_trivially_simplified() -> None:
    expression = parse_expression(H1)
    assert str(expression.derivative("d")) == "1"
    assert str(expression.derivative("dtheta")) == "-ls * as_"
    assert str(expression.derivative("da")) == "-ls * theta"
    assert str(expression.derivative("ls")) == "1 - (da * theta + as_ * dtheta)"
    assert expression.derivative("not_there") == Number(0.0)
    assert str(parse_expression("x**2").derivative("x")) == "2 * x"
    assert str(parse_expression("3*x + 0*y").derivative("x")) == "3"


FUNCTION_CASES = [
    ("sqrt(x)", 2.3), ("exp(x)", 0.7), ("log(x)", 2.3), ("log10(x)", 2.3), ("sin(x)", 0.7), ("cos(x)", 0.7),
    ("tan(x)", 0.7), ("asin(x)", 0.3), ("acos(x)", 0.3), ("atan(x)", 0.7), ("abs(x)", -0.7), ("x**y", 1.7),
    ("y**x", 1.7), ("x**x", 1.7), ("x/(1 + x**2)", 0.7), ("-x*y/(x - y)", 0.7), ("exp(-x**2/2)/sqrt(2*pi)", 0.4),
]


@pytest.mark.parametrize(("text", "x"), FUNCTION_CASES)
def test_derivatives_agree_with_central_differences(text: str, x: float) -> None:
    expression = parse_expression(text)
    env = {"x": x, "y": 1.3, "pi": math.pi}
    h = 1e-6
    up, down = float(expression.evaluate({**env, "x": x + h})), float(expression.evaluate({**env, "x": x - h}))
    numeric = (up - down) / (2 * h)
    assert float(expression.derivative("x").evaluate(env)) == pytest.approx(numeric, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize(("text", "x"), FUNCTION_CASES)
def test_printed_text_parses_back_to_the_same_function(text: str, x: float) -> None:
    # The printed derivative is what a budget report shows: it must mean what it says.
    env = {"x": x, "y": 1.3, "pi": math.pi}
    for expression in (parse_expression(text), parse_expression(text).derivative("x")):
        again = parse_expression(str(expression))
        assert float(again.evaluate(env)) == pytest.approx(float(expression.evaluate(env)), rel=1e-14)


def test_tree_nodes_are_plain_immutable_values() -> None:
    assert parse_expression("a*b") == BinaryOp("*", Name("a"), Name("b"))
    assert hash(parse_expression("a*b")) == hash(BinaryOp("*", Name("a"), Name("b")))
    with pytest.raises(AttributeError):
        parse_expression("a").name = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("os.system('rm')", "'os.system' is not a function a model may call"),
        ("x.real", "'x.real' is not allowed in a model expression (attribute access)"),
        ("x[0]", "'x[0]' is not allowed in a model expression (indexing)"),
        ("(lambda: 1)()", "is not a function a model may call"),
        ("lambda x: x", "(a lambda)"),
        ("x < 2", "(a comparison)"),
        ("x and y", "(and/or)"),
        ("x if y else 2", "(a conditional expression)"),
        ("sqrt(x=2)", "passes a keyword argument"),
        ("sqrt(x, y)", "must pass exactly one argument to sqrt()"),
        ("sqrt(*x)", "must pass exactly one argument"),
        ("sqroot(x)", "'sqroot' is not a known function (did you mean sqrt()?)"),
        ("__import__('os')", "'__import__' is not a known function"),
        ("x ^ 2", "use ** (x**2)"),
        ("x // 2", "use /"),
        ("'abc'", "is not a number"),
        ("True + 1", "'True' is not a number"),
        ("1j", "is not a number"),
        ("[1, 2]", "(a list)"),
        ("(x := 2)", "(an assignment)"),
        ("not x", "not, ~"),
        ("f'{x}'", "(a string)"),
    ],
)
def test_anything_outside_the_language_is_a_config_error_naming_text_and_field(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_expression(text, source="model.json", field="outputs.l")
    message = str(caught.value)
    assert message.startswith("model.json: outputs.l: ")
    assert fragment in message
    assert "fix:" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("ls +", "cannot parse 'ls +'"),
        ("x = 2", "cannot parse"),
        ("import os", "cannot parse"),
        ("", "empty"),
        ("   ", "empty"),
        ("1" + "0" * 400, "too large a number"),
        ("(" * 300 + "x" + ")" * 300, "nested"),
        ("-" * 300 + "x", "nested deeper than"),
        ("x" + "+x" * 6000, "characters long"),
    ],
)
def test_unparsable_text_is_a_config_error(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match="model.json: outputs.l: ") as caught:
        parse_expression(text, source="model.json", field="outputs.l")
    assert fragment in str(caught.value)


def test_non_text_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="must be text"):
        parse_expression(12, source="model.json", field="outputs.l")  # type: ignore[arg-type]


def test_unknown_name_is_named_with_a_suggestion() -> None:
    expression = parse_expression("ls*(1 + alpha*thetta)")
    with pytest.raises(ConfigError) as caught:
        check_names(expression, ["ls", "alpha", "theta"], source="model.json", field="outputs.l")
    assert str(caught.value) == (
        "model.json: outputs.l: unknown name 'thetta' "
        "(fix: define it under \"inputs\" or correct the spelling; did you mean 'theta'?)"
    )
    check_names(parse_expression("2*pi*f"), ["f"])  # pi is a known constant


def test_every_listed_function_is_parsed_differentiated_and_vectorised() -> None:
    for name in FUNCTIONS:
        expression = parse_expression(f"{name}(x/4)")
        values = np.array([0.3, 0.6])
        result = expression.evaluate({"x": values})
        assert result.shape == (2,)
        assert np.all(np.isfinite(expression.derivative("x").evaluate({"x": values})))


def test_units_agree_gives_the_result_unit() -> None:
    result = evaluate_with_units(parse_expression(H1), {
        "ls": Q_(50.0, "mm"), "d": Q_(215.0, "nm"), "da": Q_(0.0, "1/K"), "theta": Q_(-0.1, "K"),
        "as_": Q_(11.5e-6, "1/K"), "dtheta": Q_(0.0, "K"),
    })
    assert result.to("nm").magnitude == pytest.approx(50e6 + 215.0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("ls + theta", "cannot add 'ls' (nm) and 'theta' (K)"),
        ("ls - theta*2", "cannot subtract 'ls' (nm) and 'theta * 2' (K)"),
        ("exp(ls)", "exp() needs a dimensionless argument (radians for angles), but 'ls' is in nm"),
        ("sin(theta)", "sin() needs a dimensionless argument"),
        ("2**ls", "the exponent 'ls' (nm) must be dimensionless"),
        ("ls*(1 + theta)", "cannot add '1' (dimensionless) and 'theta' (K)"),
    ],
)
def test_unit_mismatch_names_the_terms(text: str, fragment: str) -> None:
    with pytest.raises(UnitMismatch) as caught:
        evaluate_with_units(parse_expression(text), {"ls": Q_(50.0, "nm"), "theta": Q_(0.1, "K")})
    assert fragment in str(caught.value)


def test_substitute_inlines_an_intermediate_quantity() -> None:
    inner = parse_expression("d0 + d1")
    outer = parse_expression("ls + d").substitute({"d": inner})
    assert outer.free_names() == {"ls", "d0", "d1"}
    assert str(outer.derivative("d1")) == "1"
