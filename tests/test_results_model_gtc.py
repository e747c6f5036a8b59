"""Property test: our GUM propagation agrees with GTC (an independent implementation) on random models.

Random explicit models of 2-4 inputs built from + - * / **, sqrt, exp, log, log10, sin, cos, tan,
asin, acos, atan and abs, with random estimates, uncertainties, degrees of freedom and one random
correlation. Values, standard uncertainties and the correlation between two outputs must agree
to ~1e-9 relative; so must nu_eff wherever GTC defines it (GTC allows finite dof with a
correlation only inside an ensemble of equal dof, which is where our rule coincides with Willink's).
"""

from __future__ import annotations

import functools
import math
import warnings

import GTC
import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from results.expression import BinaryOp, Call, Expression, Name, Negate, Number, parse_expression
from results.measurement_model import MeasurementModel, evaluate_gum
from results.model_inputs import InputQuantity

NAMES = ("a", "b", "c", "as_")

GTC_FUNCTIONS = {
    "sqrt": GTC.sqrt, "exp": GTC.exp, "log": GTC.log, "log10": GTC.log10, "sin": GTC.sin, "cos": GTC.cos,
    "tan": GTC.tan, "asin": GTC.asin, "acos": GTC.acos, "atan": GTC.atan, "abs": GTC.magnitude,
}


def to_gtc(expression: Expression, env: dict[str, object]) -> object:
    """Evaluate our tree with GTC's uncertain numbers: the same model, propagated by GTC."""
    if isinstance(expression, Number):
        return expression.value
    if isinstance(expression, Name):
        return env[expression.name]
    if isinstance(expression, Negate):
        return -to_gtc(expression.operand, env)  # type: ignore[operator]
    if isinstance(expression, BinaryOp):
        a, b = to_gtc(expression.left, env), to_gtc(expression.right, env)
        return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,  # type: ignore[operator]
                "**": lambda: a**b}[expression.op]()  # type: ignore[operator]
    assert isinstance(expression, Call)
    argument = to_gtc(expression.argument, env)
    if expression.function == "abs":
        assume(abs(GTC.value(argument)) > 1e-9)  # GTC refuses |x| at 0 (not differentiable there)
    return GTC_FUNCTIONS[expression.function](argument)


@functools.cache
def positive(names: tuple[str, ...], depth: int) -> st.SearchStrategy[str]:
    """Text of an expression that is > 0 for inputs in [0.5, 2.5], so sqrt, log and ** stay defined."""
    name = st.sampled_from(names)
    leaf = st.one_of(name, name, name, st.sampled_from(["0.5", "2", "3.7"]))  # mostly inputs
    if depth == 0:
        return leaf
    p = positive(names, depth - 1)
    r = real(names, depth - 1)
    return st.one_of(
        leaf,
        st.tuples(p, p).map(lambda t: f"({t[0]} + {t[1]})"),
        st.tuples(p, p).map(lambda t: f"({t[0]} * {t[1]})"),
        st.tuples(p, p).map(lambda t: f"({t[0]} / {t[1]})"),
        st.tuples(p, st.sampled_from(["2", "3", "0.5", "-1", "-2", "1.5"])).map(lambda t: f"{t[0]}**{t[1]}"),
        st.tuples(st.sampled_from(names), st.sampled_from(names)).map(lambda t: f"{t[0]}**{t[1]}"),
        p.map(lambda s: f"sqrt({s})"),
        r.map(lambda s: f"exp(sin({s}))"),
        p.map(lambda s: f"exp(-{s})"),
        r.map(lambda s: f"(abs({s}) + 0.1)"),
        p.map(lambda s: f"asin(1/(1 + {s}))"),
        p.map(lambda s: f"acos(1/(1 + {s}))"),
    )


@functools.cache
def real(names: tuple[str, ...], depth: int) -> st.SearchStrategy[str]:
    """Text of an expression with any real value."""
    leaf = st.sampled_from(names)
    if depth == 0:
        return leaf
    p = positive(names, depth - 1)
    r = real(names, depth - 1)
    return st.one_of(
        leaf,
        p,
        st.tuples(r, p).map(lambda t: f"({t[0]} - {t[1]})"),
        st.tuples(r, r).map(lambda t: f"({t[0]} + {t[1]})"),
        st.tuples(r, p).map(lambda t: f"{t[0]} * {t[1]}"),
        st.tuples(r, p).map(lambda t: f"{t[0]} / {t[1]}"),
        p.map(lambda s: f"log({s})"),
        p.map(lambda s: f"log10({s})"),
        r.map(lambda s: f"sin({s})"),
        r.map(lambda s: f"cos({s})"),
        r.map(lambda s: f"atan({s})"),
        p.map(lambda s: f"tan({s}/(1 + {s}))"),
        r.map(lambda s: f"-{s}"),
    )


@st.composite
def models(draw: st.DrawFn) -> tuple[dict[str, str], list[InputQuantity], tuple[str, str, float] | None]:
    count = draw(st.integers(2, 4))
    names = NAMES[:count]
    # One random function of each input, joined by random operators, so every input matters;
    # then terms that mix the inputs freely.
    y1 = draw(real(names[:1], 2))
    for name in names[1:]:
        op = draw(st.sampled_from(["+", "-", "*", "/"]))
        term = draw(positive((name,), 2) if op == "/" else real((name,), 2))
        y1 = f"({y1} {op} {term})"
    y1 = f"({y1} + {draw(real(names, 2))}) * {draw(positive(names, 1))}"
    outputs = {"y1": y1, "y2": f"{draw(real(names, 2))} - {draw(positive(names, 2))}"}
    dofs = draw(st.lists(st.one_of(st.just(math.inf), st.integers(3, 40).map(float)), min_size=count,
                         max_size=count))
    correlation = None
    if draw(st.booleans()):
        i, j = sorted(draw(st.lists(st.integers(0, count - 1), min_size=2, max_size=2, unique=True)))
        r = draw(st.floats(0.05, 0.9)) * draw(st.sampled_from([-1.0, 1.0]))
        dofs[j] = dofs[i]  # GTC: correlated finite-dof inputs must form an ensemble of equal dof
        correlation = (names[i], names[j], r)
    inputs = []
    for name, dof in zip(names, dofs, strict=True):
        value = draw(st.floats(0.5, 2.5))
        u = value * draw(st.floats(1e-3, 0.1))
        inputs.append(InputQuantity(name, value, u, dof))
    return outputs, inputs, correlation


def close(ours: float, theirs: float, rel: float = 1e-9, scale: float = 0.0) -> bool:
    return math.isclose(ours, theirs, rel_tol=rel, abs_tol=rel * scale)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_gum_propagation_agrees_with_gtc(case: tuple[dict[str, str], list[InputQuantity], tuple | None]) -> None:
    outputs, inputs, correlation = case
    correlations = [correlation] if correlation else None
    model = MeasurementModel({k: parse_expression(v) for k, v in outputs.items()},
                             {q.name: q for q in inputs}, correlations)
    env = {q.name: q.value for q in inputs}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = {name: float(e.evaluate(env)) for name, e in model.resolved.items()}
        assume(all(math.isfinite(v) and abs(v) < 1e8 for v in values.values()))
        for name, expression in model.resolved.items():
            for x in expression.free_names():
                c = float(model.sensitivity(name, x).evaluate(env))
                assume(math.isfinite(c) and abs(c) < 1e8)

    uncertain: dict[str, object] = {}
    paired = {correlation[0], correlation[1]} if correlation else set()
    for q in inputs:
        if q.name not in paired:
            uncertain[q.name] = GTC.ureal(q.value, q.u, q.dof, label=q.name)
    if correlation:
        a, b, r = correlation
        qa, qb = (next(q for q in inputs if q.name == n) for n in (a, b))
        if math.isinf(qa.dof):
            ua = GTC.ureal(qa.value, qa.u, label=a, independent=False)
            ub = GTC.ureal(qb.value, qb.u, label=b, independent=False)
        else:
            ua, ub = GTC.multiple_ureal([qa.value, qb.value], [qa.u, qb.u], qa.dof, label_seq=[a, b])
        GTC.set_correlation(r, ua, ub)
        uncertain[a], uncertain[b] = ua, ub
    theirs = {name: to_gtc(expression, uncertain) for name, expression in model.resolved.items()}

    ours = evaluate_gum(model)
    for name in outputs:
        estimate, reference = ours[name], theirs[name]
        assert close(estimate.value, GTC.value(reference), scale=1e-12)
        # Scale for an absolute floor: the size of the terms that cancel in J V J^T, or in a
        # derivative that is zero only symbolically (a/a: 1/a - a/a^2 is 1e-17 here, 0 in GTC).
        terms = sum(abs(row.sensitivity) * row.u for row in estimate.budget)
        terms += max(abs(estimate.value), 1.0) * sum(q.u / abs(q.value) for q in inputs)
        assert close(estimate.u, GTC.uncertainty(reference), scale=terms), (estimate.u, GTC.uncertainty(reference))
        gtc_dof = GTC.dof(reference)
        if not math.isnan(gtc_dof) and estimate.u > 1e-6 * terms:
            if gtc_dof > 1e10 or estimate.dof > 1e10:
                # A rounding-level sensitivity (x/x) with finite dof: 1e66 here, inf there; same k.
                assert gtc_dof > 1e10 and estimate.dof > 1e10, (estimate.dof, gtc_dof)
            else:
                assert close(estimate.dof, gtc_dof, rel=1e-6), (estimate.dof, gtc_dof)
    u1, u2 = ours["y1"].u, ours["y2"].u
    if u1 > 1e-9 and u2 > 1e-9:
        assert math.isclose(ours.r("y1", "y2"), GTC.get_correlation(theirs["y1"], theirs["y2"]), abs_tol=1e-8)
