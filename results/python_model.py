"""Measurement models given as Python code, with numerical sensitivity coefficients.

Some models are not an expression: a vendor's formula with branches, an interpolation in a
table, an implicit equation solved numerically. JCGM 100 5.1.3 (note 2) allows the sensitivity
coefficients of such a model to be found numerically. A function becomes one node of the
expression tree, so everything else (GUM propagation, Monte Carlo, batches, budgets, units at
the edges) treats it like any other model:

    model = model_from_functions({"T": (temperature_from_resistance, "degC")}, inputs)
    evaluate_gum(model)

The function takes the inputs it needs as keyword arguments (named as the inputs, in each
input's own unit) and returns the output in the stated unit. For Monte Carlo it is called
with numpy arrays; a function that only takes floats is vectorised automatically (slower).
Derivatives are central differences with a step of 1/1000 of each input's standard
uncertainty: the model's behaviour over the range the uncertainty spans is what matters.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from daq.errors import ConfigError
from daq.units import Q_
from results.expression import ZERO, Expression, Name, Value, add, multiply
from results.measurement_model import MeasurementModel
from results.model_inputs import CorrelationMatrix, InputQuantity

STEP_FRACTION_OF_U = 1e-3


def _call(function: Callable[..., Value], names: tuple[str, ...], args: list[Value]) -> Value:
    kwargs = dict(zip(names, args, strict=True))
    if any(isinstance(a, np.ndarray) and a.ndim > 0 for a in args):
        try:
            result = function(**kwargs)
            if np.shape(result) == np.shape(np.broadcast(*args)):
                return result
        except (TypeError, ValueError):
            pass
        return np.vectorize(lambda *xs: float(function(**dict(zip(names, xs, strict=True)))))(*args)
    return np.float64(function(**kwargs))


@dataclass(frozen=True, eq=False)
class PythonFunction(Expression):
    """f(arg_1, ..., arg_n) for a Python callable; the arguments are expressions (usually names)."""

    function: Callable[..., Value]
    parameters: tuple[str, ...]
    arguments: tuple[Expression, ...]
    unit: str
    steps: tuple[float, ...]

    @property
    def precedence(self) -> int:  # type: ignore[override]
        return 5

    def evaluate(self, env: Mapping[str, Value]) -> Value:
        return _call(self.function, self.parameters, [a.evaluate(env) for a in self.arguments])

    def derivative(self, name: str) -> Expression:
        total: Expression = ZERO
        for k, argument in enumerate(self.arguments):
            inner = argument.derivative(name)
            if inner != ZERO:
                total = add(total, multiply(NumericalPartial(self, k), inner))
        return total

    def free_names(self) -> frozenset[str]:
        return frozenset().union(*(a.free_names() for a in self.arguments))

    def substitute(self, mapping: Mapping[str, Expression]) -> Expression:
        return PythonFunction(self.function, self.parameters, tuple(a.substitute(mapping) for a in self.arguments),
                              self.unit, self.steps)

    def depth(self) -> int:
        return 1 + max((a.depth() for a in self.arguments), default=0)

    def _evaluate_units(self, env: Mapping[str, Value]) -> Value:
        # code cannot be checked dimensionally: the stated unit is taken at its word
        magnitudes = []
        for a in self.arguments:
            v = a._evaluate_units(env)
            magnitudes.append(v.magnitude if hasattr(v, "magnitude") else v)
        return Q_(float(_call(self.function, self.parameters, magnitudes)), self.unit)

    def text(self) -> str:
        name = getattr(self.function, "__name__", "f")
        return f"{name}({', '.join(a.text() for a in self.arguments)})"


@dataclass(frozen=True, eq=False)
class NumericalPartial(Expression):
    """df/d(argument k) of a PythonFunction by a central difference (JCGM 100 5.1.3, note 2)."""

    of: PythonFunction
    index: int

    def evaluate(self, env: Mapping[str, Value]) -> Value:
        args = [a.evaluate(env) for a in self.of.arguments]
        h = self.of.steps[self.index]
        up = list(args)
        down = list(args)
        up[self.index] = np.add(args[self.index], h)
        down[self.index] = np.subtract(args[self.index], h)
        f = self.of.function
        return (_call(f, self.of.parameters, up) - _call(f, self.of.parameters, down)) / (2.0 * h)

    def derivative(self, name: str) -> Expression:
        raise ConfigError("<python model>", self.text(), "second-order terms of a Python model are not available",
                          "write the model as an expression, or leave second_order off")

    def free_names(self) -> frozenset[str]:
        return self.of.free_names()

    def substitute(self, mapping: Mapping[str, Expression]) -> Expression:
        substituted = self.of.substitute(mapping)
        assert isinstance(substituted, PythonFunction)
        return NumericalPartial(substituted, self.index)

    def depth(self) -> int:
        return 1 + self.of.depth()

    def _evaluate_units(self, env: Mapping[str, Value]) -> Value:
        raise NotImplementedError("sensitivities are not evaluated with units")

    def text(self) -> str:
        return f"d{self.of.text()}/d{self.of.parameters[self.index]}"


def _step(quantity: InputQuantity) -> float:
    if quantity.u > 0:
        return quantity.u * STEP_FRACTION_OF_U
    return 1e-6 * max(abs(quantity.value), 1.0)  # no uncertainty: the coefficient multiplies zero anyway


def model_from_functions(
    outputs: Mapping[str, tuple[Callable[..., Value], str]],
    inputs: Mapping[str, InputQuantity],
    correlations: CorrelationMatrix | Iterable[tuple[str, str, float]] | None = None,
    *,
    source: str = "<python model>",
) -> MeasurementModel:
    """A MeasurementModel whose outputs are Python functions of (some of) the inputs.

    `outputs` maps each output name to (function, unit of its result). All inputs of one
    dimension must share one unit, so that each function sees its arguments in their own units.
    """
    nodes: dict[str, Expression] = {}
    for name, (function, unit) in outputs.items():
        try:
            parameters = tuple(inspect.signature(function).parameters)
        except (TypeError, ValueError) as exc:
            raise ConfigError(source, f"outputs.{name}", f"cannot read the parameters of {function!r}",
                              "pass a function with named parameters") from exc
        missing = [p for p in parameters if p not in inputs]
        if missing:
            raise ConfigError(source, f"outputs.{name}", f"the function needs {', '.join(missing)}, which are not "
                              "inputs", f"define {', '.join(missing)} as inputs or rename the parameters")
        nodes[name] = PythonFunction(function, parameters, tuple(Name(p) for p in parameters), unit,
                                     tuple(_step(inputs[p]) for p in parameters))
    model = MeasurementModel(nodes, inputs, correlations, {n: u for n, (_, u) in outputs.items()}, source=source)
    for name in inputs:
        if not math.isclose(model.input_scale(name), 1.0, rel_tol=1e-12):
            raise ConfigError(source, f"inputs.{name}.unit", f"'{inputs[name].unit}' differs from another input "
                              "of the same dimension", "give every input of one dimension the same unit")
    for name in outputs:
        if not math.isclose(model.output_scale(name), 1.0, rel_tol=1e-12):
            raise ConfigError(source, f"outputs.{name}", "the stated unit is not the model's working unit",
                              "state the output in the unit the function returns")
    return model
