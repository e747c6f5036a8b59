"""Explicit measurement models Y = f(X) and their GUM evaluation (JCGM 100:2008, clause 5, annex G).

A `MeasurementModel` holds one or several outputs as expressions of the inputs, the inputs
(`InputQuantity`), their correlations and the units. Its construction is its validation: names,
cycles between outputs and the dimensions of every term are checked there, so an evaluation
never starts on a model that mixes metres and kelvins.

Units: each input has its own unit (a model may mix mm and um). Numbers are evaluated in one
coherent unit system built from the inputs' units (an input is scaled once, only when another
input of the same dimension uses a different unit), and each output is reported in the unit the
model file asks for ("output_units") or else in its natural unit: the unit pint gives the
expression evaluated in the inputs' own units (V/mA becomes ohm).

`evaluate_gum` applies the law of propagation of uncertainty with analytic sensitivity
coefficients; `evaluate_gum_batch` does the same for N calibration points of one model at once
(numpy arrays in, arrays of budgets out); `evaluate_json` is the JSON contract of
`daq uncertainty evaluate`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pint

from daq.errors import ConfigError
from daq.units import Q_, parse_unit, ureg
from results.expression import (
    CONSTANTS,
    Expression,
    Number,
    UnitMismatch,
    Value,
    check_names,
    evaluate_with_units,
    parse_expression,
)
from results.gum import DEFAULT_COVERAGE_PROBABILITY, coverage_factor
from results.model_inputs import (
    DIMENSIONLESS,
    CorrelationMatrix,
    InputQuantity,
    check_name,
    correlation_matrix,
    parse_correlations,
    parse_inputs,
)

PintUnit = Any
"""A `pint.Unit` at run time; pint's stubs type units and their exponents too loosely for mypy."""

MAX_RESOLVED_DEPTH = 400
"""Outputs inlined into other outputs may not nest deeper (evaluation recurses once per level)."""

_NAMED_SI_UNITS = (
    "ohm", "siemens", "volt", "ampere", "watt", "joule", "newton", "pascal", "hertz", "coulomb",
    "farad", "henry", "tesla", "weber", "meter", "second", "kilogram", "kelvin", "mole", "candela",
)


def _unit_text(unit: PintUnit) -> str:
    return f"{unit:~P}" or DIMENSIONLESS


def _as_model_unit(text: str, source: str, field: str) -> PintUnit:
    """The unit used for arithmetic: an offset scale (degC, degF) becomes its difference unit.

    A model input in degC is a temperature *difference* from the scale's zero for arithmetic
    (theta - 20, A*t in Callendar-Van Dusen): its number is kept, and 1 degC of it is 1 K.
    """
    unit = parse_unit(text, source=source, field=field)
    items = list(Q_(1.0, unit).unit_items())
    if len(items) == 1 and items[0][1] == 1:
        try:
            return ureg.Unit("delta_" + items[0][0])
        except pint.errors.UndefinedUnitError:
            pass
    return unit


class _CoherentUnits:
    """A coherent unit system whose base units are the ones the inputs use (nm rather than m).

    Numbers are evaluated in it: an input is scaled by a factor only when another input of the
    same dimension uses a different unit, so a model written all in nm computes in nm and its
    budget shows c = 1, not 0.9999999999999999 from a round trip through metres.
    """

    def __init__(self, units: Iterable[PintUnit]) -> None:
        self.base: dict[str, PintUnit] = {}
        for unit in units:
            items: list[tuple[str, Any]] = list(Q_(1.0, unit).unit_items())
            dimensions: dict[str, Any] = dict(unit.dimensionality)
            if len(items) == 1 and len(dimensions) == 1:
                (name, exponent), ((dimension, power),) = items[0], dimensions.items()
                if abs(exponent) == 1 and abs(power) == 1:
                    self.base.setdefault(dimension, ureg.Unit(name) ** int(exponent * power))

    def unit_for(self, unit: PintUnit) -> PintUnit:
        result = ureg.Unit(DIMENSIONLESS)
        for name, exponent in Q_(1.0, unit).to_base_units().unit_items():
            base = ureg.Unit(name)
            dimensions = dict(base.dimensionality)
            if len(dimensions) == 1:
                ((dimension, power),) = dimensions.items()
                if power == 1 and dimension in self.base:
                    base = self.base[dimension]
            result = result * base**exponent
        return result

    def scale(self, unit: PintUnit, source: str, field: str) -> float:
        """g with x_coherent = g * x; refuses a unit not proportional to it (dB, offset scales)."""
        target = self.unit_for(unit)
        try:
            one = float(Q_(1.0, unit).to(target).magnitude)
            two = float(Q_(2.0, unit).to(target).magnitude)
        except pint.errors.PintError as exc:
            raise ConfigError(source, field, f"unit '{unit}' cannot be used in a model: {exc}",
                              "use a linear unit such as V, mm, K") from exc
        if not (math.isfinite(one) and one > 0 and math.isclose(two, 2.0 * one, rel_tol=1e-12)):
            raise ConfigError(source, field, f"unit '{unit}' is not proportional to its SI unit (e.g. dB)",
                              "give the input in a linear unit (e.g. V/V instead of dB)")
        return one


def _natural_unit(result: Any) -> PintUnit:
    """The unit to report an output in when the model file does not say: readable, not base SI."""
    if not isinstance(result, pint.Quantity):
        return ureg.Unit(DIMENSIONLESS)
    items = list(result.unit_items())
    if not items:
        return ureg.Unit(DIMENSIONLESS)
    if len(items) == 1 and items[0][1] == 1:
        return result.units  # nm + nm: keep nm
    if result.dimensionless:
        return ureg.Unit(DIMENSIONLESS)  # mm/m: a ratio
    for name in _NAMED_SI_UNITS:
        unit = ureg.Unit(name)
        if unit.dimensionality == result.dimensionality:
            return unit  # V/mA: ohm
    return result.to_reduced_units().units


@dataclass(frozen=True)
class _OutputUnits:
    unit_text: str
    unit: PintUnit
    scale: float
    """Multiply a value in the model's coherent units by this to get it in the reported unit."""


class MeasurementModel:
    """Outputs as expressions of inputs, with units, checked on construction.

    `outputs` may refer to earlier outputs (intermediate quantities such as d = d0 + d1 + d2);
    they are inlined, so sensitivity coefficients are taken through them to the inputs and
    every output's budget is in terms of the inputs.
    """

    def __init__(
        self,
        outputs: Mapping[str, Expression | str],
        inputs: Mapping[str, InputQuantity],
        correlations: CorrelationMatrix | Iterable[tuple[str, str, float]] | None = None,
        output_units: Mapping[str, str] | None = None,
        *,
        source: str = "<model>",
    ) -> None:
        self.source = source
        if not outputs:
            raise ConfigError(source, "outputs", "the model has no outputs", 'write e.g. {"R": "V/I"}')
        if not inputs:
            raise ConfigError(source, "inputs", "the model has no inputs")
        self.inputs: dict[str, InputQuantity] = dict(inputs)
        for key, quantity in self.inputs.items():
            if key != quantity.name:
                raise ValueError(f"inputs key {key!r} differs from the input's name {quantity.name!r}")
        parsed: dict[str, Expression] = {}
        for raw_name, expression in outputs.items():
            name = check_name(raw_name, source, f"outputs.{raw_name}")
            if name in self.inputs:
                raise ConfigError(source, f"outputs.{name}", f"'{name}' is both an input and an output",
                                  "rename one of them")
            if isinstance(expression, str):
                expression = parse_expression(expression, source=source, field=f"outputs.{name}")
            parsed[name] = expression
        self.outputs: dict[str, Expression] = parsed
        known = set(self.inputs) | set(self.outputs)
        for name, expression in self.outputs.items():
            check_names(expression, known, source=source, field=f"outputs.{name}")
        self.resolved: dict[str, Expression] = self._resolve()
        """Each output with the outputs it uses inlined: a function of the inputs only."""

        self.correlations = self._correlations(correlations)
        self._input_units: dict[str, PintUnit] = {
            name: _as_model_unit(quantity.unit, source, f"inputs.{name}.unit") for name, quantity in self.inputs.items()
        }
        self._coherent = _CoherentUnits(self._input_units.values())
        self._input_scale: dict[str, float] = {
            name: self._coherent.scale(unit, source, f"inputs.{name}.unit") for name, unit in self._input_units.items()
        }
        self._output_units = self._units(dict(output_units or {}))
        self._derivatives: dict[tuple[str, ...], Expression] = {}
        self._unit_texts: dict[tuple[str, ...], str] = {}

    # -- construction -----------------------------------------------------------------------

    def _resolve(self) -> dict[str, Expression]:
        constants = {
            name: Number(value, name)
            for name, value in CONSTANTS.items()
            if name not in self.inputs and name not in self.outputs
        }
        resolved: dict[str, Expression] = {}

        def visit(name: str, path: tuple[str, ...]) -> Expression:
            if name in resolved:
                return resolved[name]
            if name in path:
                cycle = " -> ".join(path[path.index(name):] + (name,))
                raise ConfigError(self.source, f"outputs.{name}", f"outputs refer to each other in a circle: {cycle}",
                                  "an output may use inputs and outputs that do not use it back")
            expression = self.outputs[name]
            mapping: dict[str, Expression] = dict(constants)
            for dependency in sorted(expression.free_names() & set(self.outputs)):
                mapping[dependency] = visit(dependency, path + (name,))
            result = expression.substitute(mapping) if mapping else expression
            try:
                too_deep = result.depth() > MAX_RESOLVED_DEPTH
            except RecursionError:
                too_deep = True
            if too_deep:
                raise ConfigError(self.source, f"outputs.{name}",
                                  f"with the outputs it uses inlined, the expression nests deeper than "
                                  f"{MAX_RESOLVED_DEPTH} levels", "simplify the model")
            resolved[name] = result
            return result

        for name in self.outputs:
            visit(name, ())
        return {name: resolved[name] for name in self.outputs}

    def _correlations(
        self, correlations: CorrelationMatrix | Iterable[tuple[str, str, float]] | None
    ) -> CorrelationMatrix:
        names = list(self.inputs)
        if correlations is None:
            return CorrelationMatrix.identity(names)
        if isinstance(correlations, CorrelationMatrix):
            if list(correlations.names) == names:
                return correlations
            return correlation_matrix(correlations.pairs(), names, source=self.source)
        return correlation_matrix(list(correlations), names, source=self.source)

    def _units(self, requested: dict[str, str]) -> dict[str, _OutputUnits]:
        for name in requested:
            if name not in self.outputs:
                raise ConfigError(self.source, f"output_units.{name}", f"'{name}' is not an output",
                                  f"name one of: {', '.join(self.outputs)}")
        quantities = {
            name: Q_(quantity.value, self._input_units[name]) for name, quantity in self.inputs.items()
        }
        result: dict[str, _OutputUnits] = {}
        for name, expression in self.resolved.items():
            field = f"outputs.{name}"
            try:
                with np.errstate(all="ignore"):
                    value = evaluate_with_units(expression, quantities)
            except UnitMismatch as exc:
                raise ConfigError(self.source, field, f"units do not agree: {exc}",
                                  "check the inputs' units; numbers in an expression are dimensionless, so "
                                  'define a coefficient that has a unit under "inputs"') from None
            except pint.errors.PintError as exc:
                raise ConfigError(self.source, field, f"units do not agree: {exc}",
                                  "check the inputs' units") from None
            natural = _natural_unit(value)
            coherent = self._coherent.unit_for(natural)
            if name in requested:
                text = requested[name]
                if not isinstance(text, str):
                    raise ConfigError(self.source, f"output_units.{name}", f"a unit must be text, got {text!r}")
                unit = _as_model_unit(text, self.source, f"output_units.{name}")
                if unit.dimensionality != natural.dimensionality:
                    raise ConfigError(
                        self.source, f"output_units.{name}",
                        f"'{name}' comes out in {_unit_text(natural)} ({natural.dimensionality}), "
                        f"which cannot be expressed in {text} ({unit.dimensionality})",
                        f"ask for a unit of {natural.dimensionality}, e.g. {_unit_text(natural)}",
                    )
            else:
                unit = natural
                text = next((q.unit for n, q in self.inputs.items() if self._input_units[n] == unit
                             and q.unit != DIMENSIONLESS), _unit_text(unit))
            scale = float(Q_(1.0, coherent).to(unit).magnitude)
            result[name] = _OutputUnits(text, unit, scale)
        return result

    # -- what evaluations use -----------------------------------------------------------------

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str) -> MeasurementModel:
        """The "outputs", "inputs", "correlations" and "output_units" keys of a model file."""
        outputs = data.get("outputs")
        if not isinstance(outputs, dict) or not outputs:
            raise ConfigError(source, "outputs", "outputs must be a non-empty object of name -> expression",
                              'write e.g. {"R": "V/I"}')
        for name, text in outputs.items():
            if not isinstance(text, str):
                raise ConfigError(source, f"outputs.{name}", f"an output must be an expression as text, got {text!r}",
                                  'write e.g. "V/I"')
        inputs = parse_inputs(data.get("inputs"), source=source)
        correlations = parse_correlations(data.get("correlations"), inputs, source=source)
        output_units = data.get("output_units")
        if output_units is not None and not isinstance(output_units, dict):
            raise ConfigError(source, "output_units", "output_units must be an object of output -> unit",
                              'write e.g. {"l": "mm"}')
        return cls(outputs, inputs, correlations, output_units, source=source)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.outputs)

    def input_scale(self, name: str) -> float:
        """g_i: a value in the input's own unit times g_i is the value in the model's coherent units."""
        return self._input_scale[name]

    def output_scale(self, name: str) -> float:
        """f: an output value in the model's coherent units times f is the value in the reported unit."""
        return self._output_units[name].scale

    def output_unit(self, name: str) -> str:
        """The unit an output is reported in (as the model file wrote it, or the natural unit)."""
        return self._output_units[name].unit_text

    def evaluate(self, values: Mapping[str, Value]) -> dict[str, Value]:
        """Outputs for input values in each input's own unit; results in each output's reported unit.

        Values may be numpy arrays (one element per Monte Carlo trial): the evaluation is
        vectorised. Non-finite results (log of a negative draw) are returned, not raised.
        """
        env = {name: np.multiply(values[name], self._input_scale[name]) for name in self.inputs if name in values}
        with np.errstate(all="ignore"):
            return {
                name: np.multiply(expression.evaluate(env), self._output_units[name].scale)
                for name, expression in self.resolved.items()
            }

    def sensitivity_unit(self, output: str, name: str) -> str:
        """The unit of d output / d name as printed in a budget (e.g. "K·nm"), cached."""
        key = ("unit", output, name)
        if key not in self._unit_texts:
            self._unit_texts[key] = f"{self._output_units[output].unit / self._input_units[name]:~P}"
        return self._unit_texts[key]

    def sensitivity(self, output: str, *names: str) -> Expression:
        """d^n output / d names... as an expression in the coherent units, cached (first, second, third order)."""
        key = (output, *names)
        if key not in self._derivatives:
            parent = self.resolved[output] if len(names) == 1 else self.sensitivity(output, *names[:-1])
            self._derivatives[key] = parent.derivative(names[-1])
        return self._derivatives[key]


# --------------------------------------------------------------------------------------------
# GUM evaluation


def _dof_json(dof: float) -> float | str:
    return "inf" if math.isinf(dof) else dof


@dataclass(frozen=True)
class BudgetLine:
    """One row of an output's budget (EA-4/02 style), in the input's and the output's units."""

    input: str
    unit: str
    value: float
    u: float
    distribution: str
    kind: str
    sensitivity: float
    """c_i = dy/dx_i in output unit per input unit."""
    sensitivity_unit: str
    contribution: float
    """|c_i| u(x_i) in the output unit."""
    share: float
    """(c_i u(x_i))^2 / u_c(y)^2 in percent; with correlations the rest is in `share_from_correlations`."""
    dof: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "unit": self.unit,
            "value": self.value,
            "u": self.u,
            "distribution": self.distribution,
            "kind": self.kind,
            "sensitivity": self.sensitivity,
            "sensitivity_unit": self.sensitivity_unit,
            "contribution": self.contribution,
            "share": self.share,
            "dof": _dof_json(self.dof),
        }


@dataclass(frozen=True)
class SecondOrderTerm:
    """A higher-order variance term of GUM 5.1.2 (note) for inputs i, j, in the output unit squared."""

    inputs: tuple[str, str]
    variance: float
    share: float
    dof: float

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": list(self.inputs), "variance": self.variance, "share": self.share,
                "dof": _dof_json(self.dof)}


@dataclass(frozen=True)
class OutputEstimate:
    """y, u_c(y), nu_eff, k, U and the coverage interval of one output, in `unit`."""

    name: str
    expression: str
    value: float
    u: float
    dof: float
    k: float
    U: float
    low: float
    high: float
    unit: str
    budget: tuple[BudgetLine, ...]
    share_from_correlations: float
    second_order: tuple[SecondOrderTerm, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "value": self.value,
            "u": self.u,
            "dof": _dof_json(self.dof),
            "k": self.k,
            "U": self.U,
            "interval": [self.low, self.high],
            "unit": self.unit,
            "expression": self.expression,
            "budget": [line.to_dict() for line in self.budget],
            "share_from_correlations": self.share_from_correlations,
        }
        if self.second_order:
            result["second_order"] = [term.to_dict() for term in self.second_order]
        return result


@dataclass(frozen=True, eq=False)
class GumResult:
    """The GUM evaluation of a model: per-output estimates and the outputs' covariance."""

    outputs: dict[str, OutputEstimate]
    coverage: float
    covariance: np.ndarray
    """Covariance of the outputs in their reported units (rows and columns follow `outputs`)."""
    correlation: np.ndarray
    second_order: bool = False
    truncate_dof: bool = False

    def __getitem__(self, name: str) -> OutputEstimate:
        return self.outputs[name]

    def r(self, a: str, b: str) -> float:
        """Correlation coefficient r(y_a, y_b) between two outputs (GUM eq. F.2 / H.2)."""
        names = list(self.outputs)
        return float(self.correlation[names.index(a), names.index(b)])

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "method": "gum",
            "coverage": self.coverage,
            "outputs": {name: estimate.to_dict() for name, estimate in self.outputs.items()},
        }
        names = list(self.outputs)
        if len(names) > 1:
            result["correlations"] = [
                [names[i], names[j], float(self.correlation[i, j])]
                for i in range(len(names))
                for j in range(i + 1, len(names))
            ]
        notes = []
        if self.second_order:
            notes.append("second-order terms of GUM 5.1.2 (note) included")
        if self.truncate_dof:
            notes.append("k from nu_eff truncated to an integer (GUM G.6.4)")
        if notes:
            result["notes"] = notes
        return result


def _effective_dof(variance: float, components: Iterable[tuple[float, float]]) -> float:
    """Welch-Satterthwaite (GUM G.4.1, eq. G.2b) over (variance, dof) components."""
    if variance <= 0.0:
        return math.inf
    denominator = 0.0
    for v, dof in components:
        if v != 0.0 and not math.isinf(dof):
            share = v / variance
            denominator += share * share / dof
    return math.inf if denominator == 0.0 else 1.0 / denominator


def evaluate_gum(
    model: MeasurementModel,
    coverage: float = DEFAULT_COVERAGE_PROBABILITY,
    *,
    second_order: bool = False,
    truncate_dof: bool = False,
) -> GumResult:
    """The GUM law of propagation of uncertainty (JCGM 100 5.1, 5.2; several outputs as in H.2).

    - Sensitivity coefficients c_ji = d y_j / d x_i are the analytic derivatives of the model,
      evaluated at the input estimates; input covariance V_x = D R D (D = diag u, R from the
      correlations); output covariance V_y = J V_x J^T, u_c(y_j) = sqrt((V_y)_jj), and
      r(y_a, y_b) from V_y.
    - Effective degrees of freedom per output by Welch-Satterthwaite (GUM G.4.1) over the
      contributions c_i u_i. Correlated inputs: the GUM gives no rule (H.2 stops before ν_eff).
      Inputs linked by non-zero correlations are taken as one component whose variance is their
      joint contribution c_g^T V_g c_g, covariance terms included — Willink's generalisation
      (Metrologia 44 (2007) 340-349, sec. 4.1), exact when the correlated estimates come from one
      set of simultaneous observations and so share ν (H.2: V, I, phi from five readings, ν = 4).
      GTC treats its "ensembles" the same way, and a correlated pair with infinite ν adds
      nothing to the denominator there as here. If ν differs within a group (Willink's result
      does not cover it; GTC refuses), the group takes the smallest ν: ν_eff only falls when a ν
      falls, so this gives the smallest ν_eff and the largest k of any ν the group could have.
    - k = t_p(ν_eff) for the coverage probability (the unrounded ν_eff; `truncate_dof` truncates it
      to an integer first, as GUM G.6.4 allows, to match hand calculations from table G.2),
      U = k u_c, interval [y - U, y + U].
    - `second_order` adds the higher-order terms of the note to GUM 5.1.2
      (sum_ij [1/2 (d2f/dxi dxj)^2 + df/dxi d3f/dxi dxj^2] u_i^2 u_j^2), valid for uncorrelated,
      normally distributed inputs (GUM H.1.7 gets 34 nm instead of 32 nm with them); each term
      enters Welch-Satterthwaite with ν = min(ν_i, ν_j), which the GUM does not specify.
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage probability must be between 0 and 1, got {coverage!r}")
    source = model.source
    names = list(model.inputs)
    n = len(names)
    scale = np.array([model.input_scale(name) for name in names])
    x = np.array([model.inputs[name].value for name in names]) * scale
    u = np.array([model.inputs[name].u for name in names]) * scale
    dofs = [model.inputs[name].dof for name in names]
    R = np.asarray(model.correlations.matrix)
    if second_order and not model.correlations.is_identity:
        raise ConfigError(source, "gum.second_order", "second-order terms (GUM 5.1.2 note) need uncorrelated inputs",
                          "remove the correlations or the second-order option")
    V_x = u[:, None] * R * u[None, :]
    env = {name: np.float64(value) for name, value in zip(names, x, strict=True)}
    outputs = list(model.outputs)
    m = len(outputs)
    y = np.zeros(m)
    J = np.zeros((m, n))
    extra = np.zeros(m)
    terms: list[list[tuple[str, str, float, float]]] = [[] for _ in outputs]
    with np.errstate(all="ignore"):
        for j, output in enumerate(outputs):
            expression = model.resolved[output]
            y[j] = float(expression.evaluate(env))
            if not math.isfinite(y[j]):
                raise ConfigError(source, f"outputs.{output}", f"the model gives {y[j]} at the input values",
                                  "check the input values (log or sqrt of a negative number, division by zero)")
            free = expression.free_names()
            for i, name in enumerate(names):
                if name not in free:
                    continue
                c = float(model.sensitivity(output, name).evaluate(env))
                if not math.isfinite(c):
                    raise ConfigError(source, f"outputs.{output}",
                                      f"the sensitivity coefficient d{output}/d{name} is {c} at the input values: "
                                      "the model is not differentiable there",
                                      "use the Monte Carlo method (--method mc) for this model")
                J[j, i] = c
            if second_order:
                terms[j] = _second_order_terms(model, output, names, free, env, u, dofs)
                extra[j] = math.fsum(t[2] for t in terms[j])
    V_y = J @ V_x @ J.T
    V_y[np.diag_indices(m)] += extra
    variance = np.clip(np.diag(V_y), 0.0, None)
    u_y = np.sqrt(variance)
    with np.errstate(all="ignore"):
        correlation = np.where(np.outer(u_y, u_y) > 0, V_y / np.outer(u_y, u_y), 0.0)
    correlation = np.clip(correlation, -1.0, 1.0)
    np.fill_diagonal(correlation, 1.0)

    groups = [[names.index(name) for name in group] for group in model.correlations.groups()]
    estimates: dict[str, OutputEstimate] = {}
    for j, output in enumerate(outputs):
        f = model.output_scale(output)
        components: list[tuple[float, float]] = []
        for group in groups:
            c_g = J[j, group]
            v_g = float(c_g @ V_x[np.ix_(group, group)] @ c_g)
            components.append((max(v_g, 0.0), min(dofs[i] for i in group)))
        components.extend((t[2], t[3]) for t in terms[j])
        dof = _effective_dof(float(variance[j]), components)
        dof_for_k = math.floor(dof) if truncate_dof and math.isfinite(dof) and dof >= 1 else dof
        k = coverage_factor(dof_for_k, coverage)
        value, u_c = float(y[j] * f), float(u_y[j] * f)
        U = k * u_c
        budget = _budget(model, output, names, J[j], u, f, float(variance[j]))
        first_order = math.fsum((J[j, i] * u[i]) ** 2 for i in range(n))
        correlated = float(variance[j]) - first_order - float(extra[j])
        share_corr = 100.0 * correlated / float(variance[j]) if variance[j] > 0 else 0.0
        estimates[output] = OutputEstimate(
            name=output,
            expression=model.outputs[output].text(),
            value=value,
            u=u_c,
            dof=dof,
            k=k,
            U=U,
            low=value - U,
            high=value + U,
            unit=model.output_unit(output),
            budget=budget,
            share_from_correlations=share_corr if abs(share_corr) > 1e-9 else 0.0,
            second_order=tuple(
                SecondOrderTerm((a, b), float(v * f * f), float(100.0 * v / variance[j]) if variance[j] > 0 else 0.0, d)
                for a, b, v, d in terms[j]
            ),
        )
    scales = np.array([model.output_scale(output) for output in outputs])
    return GumResult(
        outputs=estimates,
        coverage=coverage,
        covariance=V_y * np.outer(scales, scales),
        correlation=correlation,
        second_order=second_order,
        truncate_dof=truncate_dof,
    )


def _second_order_terms(
    model: MeasurementModel,
    output: str,
    names: list[str],
    free: frozenset[str],
    env: Mapping[str, Value],
    u: np.ndarray,
    dofs: list[float],
) -> list[tuple[str, str, float, float]]:
    """GUM 5.1.2 note, grouped per unordered pair {i, j}: (i, j, variance in base units, dof)."""
    used = [i for i, name in enumerate(names) if name in free]

    def value(*path: str) -> float:
        return float(model.sensitivity(output, *path).evaluate(env))

    def ordered(a: int, b: int) -> float:
        # 1/2 (d2f/dxa dxb)^2 + df/dxa d3f/dxa dxb^2, times u_a^2 u_b^2
        na, nb = names[a], names[b]
        d2 = value(na, nb)
        d3 = value(na, nb, nb)
        return (0.5 * d2 * d2 + value(na) * d3) * u[a] ** 2 * u[b] ** 2

    terms = []
    for position, a in enumerate(used):
        for b in used[position:]:
            v = ordered(a, b) if a == b else ordered(a, b) + ordered(b, a)
            if not math.isfinite(v):
                raise ConfigError(model.source, f"outputs.{output}",
                                  f"a second-order term for {names[a]}, {names[b]} is not finite at the input values",
                                  "evaluate without second-order terms, or use Monte Carlo")
            if v != 0.0:
                terms.append((names[a], names[b], v, min(dofs[a], dofs[b])))
    return terms


def _budget(
    model: MeasurementModel, output: str, names: list[str], c_base: np.ndarray, u_base: np.ndarray,
    f: float, variance: float,
) -> tuple[BudgetLine, ...]:
    free = model.resolved[output].free_names()
    lines = []
    for i, name in enumerate(names):
        if name not in free:
            continue
        quantity = model.inputs[name]
        c = float(c_base[i] * f * model.input_scale(name)) + 0.0  # no -0.0 in a budget
        contribution_base = float(c_base[i] * u_base[i])
        lines.append(BudgetLine(
            input=name,
            unit=quantity.unit,
            value=quantity.value,
            u=quantity.u,
            distribution=quantity.distribution,
            kind=quantity.kind,
            sensitivity=c,
            sensitivity_unit=model.sensitivity_unit(output, name),
            contribution=abs(c) * quantity.u,
            share=100.0 * contribution_base**2 / variance if variance > 0 else 0.0,
            dof=quantity.dof,
        ))
    return tuple(lines)


# --------------------------------------------------------------------------------------------
# Batch GUM evaluation: one model, many calibration points


@dataclass(frozen=True, eq=False)
class BatchOutput:
    """One output of `evaluate_gum_batch`: one element (or budget row) per calibration point, in `unit`.

    The budget arrays have one column per input the output depends on (`inputs`, in the model's
    input order, as the rows of `OutputEstimate.budget`); `column(name)` gives its index.
    """

    name: str
    expression: str
    unit: str
    inputs: tuple[str, ...]
    value: np.ndarray
    """y per point, shape (N,)."""
    u: np.ndarray
    """u_c(y) per point."""
    dof: np.ndarray
    """nu_eff per point (Welch-Satterthwaite as in `evaluate_gum`; inf where every nu is)."""
    k: np.ndarray
    U: np.ndarray
    low: np.ndarray
    high: np.ndarray
    sensitivity: np.ndarray
    """c_i per point and input, shape (N, len(inputs)), in output unit per input unit."""
    contribution: np.ndarray
    """|c_i| u(x_i) per point and input, in the output unit."""
    share: np.ndarray
    """(c_i u(x_i))^2 / u_c(y)^2 in percent, per point and input."""
    share_from_correlations: np.ndarray
    """Percent of u_c(y)^2 from the covariance terms, per point."""

    def __len__(self) -> int:
        return len(self.value)

    def column(self, name: str) -> int:
        """Index of input `name` in the budget arrays (a KeyError naming the columns if absent)."""
        try:
            return self.inputs.index(name)
        except ValueError:
            raise KeyError(f"{self.name} does not depend on {name!r}; its budget columns are "
                           f"{', '.join(self.inputs)}") from None


@dataclass(frozen=True, eq=False)
class GumBatchResult:
    """`evaluate_gum` of one model at N calibration points, as arrays; `point(i)` is one point's `GumResult`."""

    model: MeasurementModel
    outputs: dict[str, BatchOutput]
    coverage: float
    values: dict[str, np.ndarray]
    """The input estimates used, per input and point (broadcast), in each input's own unit."""
    uncertainties: dict[str, np.ndarray]
    dofs: dict[str, np.ndarray]
    covariance: np.ndarray
    """Covariance of the outputs per point in their reported units, shape (N, m, m)."""
    correlation: np.ndarray
    truncate_dof: bool = False

    def __len__(self) -> int:
        return len(self.covariance)

    def __getitem__(self, name: str) -> BatchOutput:
        return self.outputs[name]

    def point(self, i: int) -> GumResult:
        """Point i as the `GumResult` that `evaluate_gum` gives for it (budget lines, units, to_dict)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"point {i} of a batch of {n}")
        model = self.model
        estimates: dict[str, OutputEstimate] = {}
        for name, out in self.outputs.items():
            lines = []
            for column, input_name in enumerate(out.inputs):
                quantity = model.inputs[input_name]
                lines.append(BudgetLine(
                    input=input_name,
                    unit=quantity.unit,
                    value=float(self.values[input_name][i]),
                    u=float(self.uncertainties[input_name][i]),
                    distribution=quantity.distribution,
                    kind=quantity.kind,
                    sensitivity=float(out.sensitivity[i, column]),
                    sensitivity_unit=model.sensitivity_unit(name, input_name),
                    contribution=float(out.contribution[i, column]),
                    share=float(out.share[i, column]),
                    dof=float(self.dofs[input_name][i]),
                ))
            estimates[name] = OutputEstimate(
                name=name, expression=out.expression, value=float(out.value[i]), u=float(out.u[i]),
                dof=float(out.dof[i]), k=float(out.k[i]), U=float(out.U[i]), low=float(out.low[i]),
                high=float(out.high[i]), unit=out.unit, budget=tuple(lines),
                share_from_correlations=float(out.share_from_correlations[i]),
            )
        return GumResult(outputs=estimates, coverage=self.coverage, covariance=np.array(self.covariance[i]),
                         correlation=np.array(self.correlation[i]), truncate_dof=self.truncate_dof)


def _batch_array(model: MeasurementModel, raw: Any, name: str, field: str, unit: PintUnit) -> np.ndarray:
    """One input's numbers for the batch: a number or a 1-D sequence (a pint quantity is converted)."""
    source = model.source
    if isinstance(raw, pint.Quantity):
        try:
            raw = raw.to(unit).magnitude
        except pint.errors.PintError as exc:
            raise ConfigError(source, field, f"cannot be expressed in {_unit_text(unit)}: {exc}",
                              f"give '{name}' in a unit of {unit.dimensionality}") from None
    try:
        array = np.array(raw, dtype=float)  # a copy: the result must not change with the caller's arrays
    except (TypeError, ValueError):
        raise ConfigError(source, field, f"'{name}' must be a number or an array of numbers, got {raw!r:.80}",
                          "give one number per calibration point, or one number for all") from None
    if array.ndim > 1:
        raise ConfigError(source, field, f"'{name}' must be a number or a 1-D array, got shape {array.shape}",
                          "give one number per calibration point, or one number for all")
    return array


def _batch_inputs(
    model: MeasurementModel, given: Mapping[str, Any] | None, what: str, defaults: Mapping[str, float],
    unit_of: Mapping[str, PintUnit], arrays: dict[str, dict[str, np.ndarray]],
) -> None:
    table: dict[str, np.ndarray] = {}
    for name, raw in (given or {}).items():
        if name not in model.inputs:
            close = [known for known in model.inputs if known.lower() == str(name).lower()]
            close = close or difflib.get_close_matches(str(name), list(model.inputs), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(model.source, f"{what}.{name}", f"'{name}' is not an input of the model",
                              f"{hint}inputs: {', '.join(model.inputs)}")
        table[name] = _batch_array(model, raw, name, f"{what}.{name}", unit_of[name])
    arrays[what] = {name: table[name] if name in table else np.asarray(defaults[name], dtype=float)
                    for name in model.inputs}  # in the model's input order


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _batch_coverage_factors(dof: np.ndarray, coverage: float) -> np.ndarray:
    """`coverage_factor` element-wise: Student's t quantile (normal for inf), once per distinct nu."""
    from scipy import stats

    quantile = (1.0 + coverage) / 2.0
    distinct, inverse = np.unique(dof, return_inverse=True)
    k = np.empty_like(distinct)
    infinite = np.isinf(distinct)
    k[infinite] = float(stats.norm.ppf(quantile))
    if (~infinite).any():
        k[~infinite] = stats.t.ppf(quantile, distinct[~infinite])
    return k[inverse].reshape(dof.shape)


def evaluate_gum_batch(
    model: MeasurementModel,
    values: Mapping[str, Any] | None = None,
    uncertainties: Mapping[str, Any] | None = None,
    *,
    dofs: Mapping[str, Any] | None = None,
    coverage: float = DEFAULT_COVERAGE_PROBABILITY,
    truncate_dof: bool = False,
) -> GumBatchResult:
    """`evaluate_gum` for N calibration points of one model at once, vectorised with numpy.

    `values`, `uncertainties` (standard u) and `dofs` map input names to a number or a 1-D array of
    N numbers, in the input's own unit (a pint quantity is converted to it); an input not named
    keeps the model's value, u or nu, and a number applies to every point. N is the common length
    of the arrays (1 if every entry is a number); a different length is a ConfigError naming the input.

    Per point the result equals `evaluate_gum` on the model with that point's inputs (same
    units, analytic sensitivities, correlations, Welch-Satterthwaite rule for correlated groups,
    k from Student's t, `truncate_dof`), to rounding: one symbolic derivative per output and
    input is evaluated on the arrays, so a point costs microseconds instead of a model walk.
    The correlation matrix is the model's for every point. Second-order terms are not offered
    here: use `evaluate_gum(second_order=True)` point by point.
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage probability must be between 0 and 1, got {coverage!r}")
    source = model.source
    names = list(model.inputs)
    quantities = [model.inputs[name] for name in names]
    value_units = {name: parse_unit(q.unit, source=source, field=f"inputs.{name}.unit")
                   for name, q in model.inputs.items()}
    tables: dict[str, dict[str, np.ndarray]] = {}
    _batch_inputs(model, values, "values", {q.name: q.value for q in quantities}, value_units, tables)
    _batch_inputs(model, uncertainties, "uncertainties", {q.name: q.u for q in quantities},
                  model._input_units, tables)
    _batch_inputs(model, dofs, "dofs", {q.name: q.dof for q in quantities}, {n: ureg.Unit(DIMENSIONLESS)
                                                                             for n in names}, tables)

    n_points, set_by = None, ""
    for what in ("values", "uncertainties", "dofs"):
        for name, array in tables[what].items():
            if array.ndim == 1:
                if n_points is None:
                    n_points, set_by = len(array), f"{what}.{name}"
                elif len(array) != n_points:
                    raise ConfigError(source, f"{what}.{name}",
                                      f"'{name}' has {len(array)} points but {set_by} has {n_points}",
                                      "give every array one element per calibration point (or one number for all)")
    N = 1 if n_points is None else n_points
    for table in tables.values():
        for name, array in table.items():
            table[name] = np.broadcast_to(array, (N,))
    for name in names:
        x, u, nu = tables["values"][name], tables["uncertainties"][name], tables["dofs"][name]
        if not np.isfinite(x).all():
            i = _first_bad(~np.isfinite(x))
            raise ConfigError(source, f"values.{name}", f"'{name}' is {x[i]} at point {i}", "give finite values")
        bad = ~np.isfinite(u) | (u < 0)
        if bad.any():
            i = _first_bad(bad)
            raise ConfigError(source, f"uncertainties.{name}",
                              f"the standard uncertainty of '{name}' is {u[i]} at point {i}",
                              "give finite standard uncertainties >= 0")
        bad = np.isnan(nu) | (nu <= 0)
        if bad.any():
            i = _first_bad(bad)
            raise ConfigError(source, f"dofs.{name}", f"the degrees of freedom of '{name}' are {nu[i]} at point {i}",
                              "give degrees of freedom > 0 (inf if exactly known)")

    scale = np.array([model.input_scale(name) for name in names])
    # Inputs that are the same at every point stay scalars while the model is evaluated.
    env = {}
    for i, name in enumerate(names):
        x = tables["values"][name]
        env[name] = (x[0] if x.strides == (0,) and N else x) * scale[i]
    u_base = np.stack([tables["uncertainties"][name] for name in names], axis=1) * scale  # (N, n)
    nu = np.stack([tables["dofs"][name] for name in names], axis=1)
    outputs = list(model.outputs)
    m, n = len(outputs), len(names)
    y = np.zeros((N, m))
    J = np.zeros((N, m, n))

    def refuse(output: str, what: str, bad: np.ndarray) -> ConfigError:
        i = _first_bad(bad)
        at = ", ".join(f"{name}={float(tables['values'][name][i]):.10g}" for name in names)
        return ConfigError(source, f"outputs.{output}", f"{what} at point {i} ({at})",
                           "check the input values (log or sqrt of a negative number, division by zero), "
                           "or use the Monte Carlo method there")

    with np.errstate(all="ignore"):
        for j, output in enumerate(outputs):
            expression = model.resolved[output]
            y[:, j] = expression.evaluate(env)
            if not np.isfinite(y[:, j]).all():
                raise refuse(output, "the model is not finite", ~np.isfinite(y[:, j]))
            free = expression.free_names()
            for i, name in enumerate(names):
                if name in free:
                    J[:, j, i] = model.sensitivity(output, name).evaluate(env)
                    if not np.isfinite(J[:, j, i]).all():
                        raise refuse(output, f"the sensitivity coefficient d{output}/d{name} is not finite",
                                     ~np.isfinite(J[:, j, i]))
        R = np.asarray(model.correlations.matrix)
        A = J * u_base[:, None, :]  # c_i u_i per point, output and input
        if model.correlations.is_identity:
            V_y = np.einsum("pji,pki->pjk", A, A)
        else:
            V_y = np.einsum("pji,il,pkl->pjk", A, R, A, optimize=True)
        variance = np.clip(np.diagonal(V_y, axis1=1, axis2=2), 0.0, None)  # (N, m)
        u_y = np.sqrt(variance)
        outer = u_y[:, :, None] * u_y[:, None, :]
        correlation = np.clip(np.where(outer > 0, V_y / outer, 0.0), -1.0, 1.0)
        correlation[:, np.arange(m), np.arange(m)] = 1.0

        # Welch-Satterthwaite over the correlated groups, as in evaluate_gum.
        denominator = np.zeros((N, m))
        for group in model.correlations.groups():
            index = [names.index(name) for name in group]
            if len(index) == 1:
                v_g = A[:, :, index[0]] ** 2
                nu_g = nu[:, index[0]]
            else:
                v_g = np.maximum(np.einsum("pji,il,pjl->pj", A[:, :, index], R[np.ix_(index, index)],
                                           A[:, :, index]), 0.0)
                nu_g = nu[:, index].min(axis=1)
            share = v_g / variance
            use = (v_g != 0.0) & np.isfinite(nu_g)[:, None]
            denominator += np.where(use, share * share / nu_g[:, None], 0.0)
        dof = np.where((variance <= 0.0) | (denominator == 0.0), math.inf, 1.0 / denominator)
        dof_for_k = dof
        if truncate_dof:
            dof_for_k = np.where(np.isfinite(dof) & (dof >= 1), np.floor(dof), dof)
        k = _batch_coverage_factors(dof_for_k, coverage)
        first_order = np.sum(A * A, axis=2)
        share_corr = np.where(variance > 0, 100.0 * (variance - first_order) / variance, 0.0)
        share_corr[np.abs(share_corr) <= 1e-9] = 0.0

    results: dict[str, BatchOutput] = {}
    for j, output in enumerate(outputs):
        f = model.output_scale(output)
        free = model.resolved[output].free_names()
        columns = [i for i, name in enumerate(names) if name in free]
        u_own = (np.stack([tables["uncertainties"][names[i]] for i in columns], axis=1) if columns
                 else np.zeros((N, 0)))  # in the inputs' own units
        c = J[:, j, columns] * f * scale[columns] + 0.0  # no -0.0 in a budget
        with np.errstate(all="ignore"):
            shares = np.where(variance[:, j, None] > 0, 100.0 * A[:, j, columns] ** 2 / variance[:, j, None], 0.0)
        value, u_c = y[:, j] * f, u_y[:, j] * f
        U = k[:, j] * u_c
        results[output] = BatchOutput(
            name=output, expression=model.outputs[output].text(), unit=model.output_unit(output),
            inputs=tuple(names[i] for i in columns), value=value, u=u_c, dof=dof[:, j], k=k[:, j], U=U,
            low=value - U, high=value + U, sensitivity=c, contribution=np.abs(c) * u_own, share=shares,
            share_from_correlations=share_corr[:, j],
        )
    scales = np.array([model.output_scale(output) for output in outputs])
    return GumBatchResult(
        model=model, outputs=results, coverage=coverage, values=tables["values"],
        uncertainties=tables["uncertainties"], dofs=tables["dofs"],
        covariance=V_y * (scales[:, None] * scales[None, :]), correlation=correlation, truncate_dof=truncate_dof,
    )


# --------------------------------------------------------------------------------------------
# JSON contract

MODEL_KEYS = ("outputs", "inputs", "correlations", "coverage", "output_units", "gum", "mc", "title", "description")
GUM_OPTIONS = ("second_order", "truncate_dof")


def coverage_from_json(data: Mapping[str, Any], source: str) -> float:
    raw = data.get("coverage", DEFAULT_COVERAGE_PROBABILITY)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0.0 < float(raw) < 1.0:
        hint = f" (did you mean {raw / 100:g}?)" if isinstance(raw, int | float) and 1 < raw < 100 else ""
        raise ConfigError(source, "coverage", f"coverage must be a probability between 0 and 1, got {raw!r}{hint}",
                          "write e.g. 0.9545 (k = 2 for a normal distribution) or 0.95")
    return float(raw)


def gum_options_from_json(data: Mapping[str, Any], source: str) -> dict[str, bool]:
    raw = data.get("gum", {})
    if not isinstance(raw, dict):
        raise ConfigError(source, "gum", f"gum options must be an object, got {raw!r}",
                          'write e.g. {"second_order": true}')
    options = {}
    for key, value in raw.items():
        if key not in GUM_OPTIONS:
            raise ConfigError(source, f"gum.{key}", f"unknown option '{key}'", f"use {', '.join(GUM_OPTIONS)}")
        if not isinstance(value, bool):
            raise ConfigError(source, f"gum.{key}", f"must be true or false, got {value!r}")
        options[key] = value
    return options


def evaluate_json(data: Any, *, source: str, method: str = "gum") -> dict[str, Any]:
    """Evaluate a model file's contents (the `daq uncertainty evaluate` contract) into a JSON-ready dict.

    Keys: "outputs" (name -> expression), "inputs", optional "correlations", "coverage"
    (default 0.9545), "output_units", "gum" ({"second_order", "truncate_dof"}), "mc" (Monte Carlo).
    """
    if not isinstance(data, dict):
        raise ConfigError(source, "(top level)", "a model file must hold a JSON object",
                          'start from {"outputs": {...}, "inputs": {...}}')
    for key in data:
        if key not in MODEL_KEYS:
            close = difflib.get_close_matches(str(key), MODEL_KEYS, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(source, str(key), f"unknown key '{key}'", f"{hint}allowed keys: {', '.join(MODEL_KEYS)}")
    coverage = coverage_from_json(data, source)
    if method not in ("gum", "mc"):
        raise ConfigError(source, "method", f"unknown method {method!r}", "use gum or mc")
    if method == "mc":
        from results.montecarlo import mc_json  # imported here: montecarlo builds on this module

        return mc_json(data, source=source)
    options = gum_options_from_json(data, source)
    model = MeasurementModel.from_json(data, source=source)
    return evaluate_gum(model, coverage, **options).to_dict()
