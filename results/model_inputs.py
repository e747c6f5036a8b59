"""Input quantities of a measurement model and their correlations, read from JSON.

One input is stated the way its source states it, and reduced here to what both propagation
methods need: an estimate x, a standard uncertainty u(x), degrees of freedom nu and the
probability distribution JCGM 101 6.4 would assign:

    {"value": 50000623.6, "u": 25, "dof": 18, "unit": "nm"}        u given (normal; "t" with dof)
    {"value": 0.1, "U": 0.2, "k": 2}                               a certificate's U and k: u = U/k
    {"value": 0, "distribution": "rectangular", "half_width": 1e-6}  bounds only (GUM 4.3.7)
    {"samples": [5.007, 4.994, 5.005]}                             type A: mean, s/sqrt(n), n - 1

Every mistake (a negative u, k <= 0, fewer than two samples, u and U both given, an unknown key,
a non-number) is a `ConfigError` naming the file, the field and the fix, never a NaN later on.
"""

from __future__ import annotations

import difflib
import keyword
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

import numpy as np

from daq.errors import ConfigError
from daq.units import parse_unit
from results.gum import type_a

Distribution = Literal["normal", "t", "rectangular", "triangular", "arcsine"]

HALF_WIDTH_DIVISORS: dict[str, float] = {
    "rectangular": math.sqrt(3.0),  # GUM 4.3.7
    "triangular": math.sqrt(6.0),  # GUM 4.3.9
    "arcsine": math.sqrt(2.0),  # U-shaped: a sinusoidal influence between bounds
}

INPUT_KEYS = ("value", "u", "U", "k", "dof", "unit", "distribution", "half_width", "samples", "note", "description")
DIMENSIONLESS = "dimensionless"


@dataclass(frozen=True)
class InputQuantity:
    """One input quantity X_i: what the GUM needs (value, u, dof) and what Monte Carlo draws from.

    All numbers are in `unit`. How a Monte Carlo draw follows from the fields (JCGM 101 6.4):
    - "normal": N(value, u^2);
    - "t": value + u * T_dof, with T_dof a standard Student t variable, i.e. the scaled and
      shifted t distribution of JCGM 101 6.4.9 with scale u. For type A inputs (`samples`) this is
      exactly JCGM 101 6.4.9.2: scale s/sqrt(n), n - 1 dof. Its standard deviation is
      u * sqrt(dof / (dof - 2)), larger than u: JCGM 101 intends that (and needs dof > 2 for it to
      be finite); the GUM uses u itself;
    - "rectangular", "triangular", "arcsine": symmetric about value with the given half_width
      (JCGM 101 6.4.2, 6.4.5, 6.4.6); u = half_width / sqrt(3), / sqrt(6), / sqrt(2).
    """

    name: str
    value: float
    u: float
    dof: float = math.inf
    distribution: Distribution = "normal"
    half_width: float | None = None
    unit: str = DIMENSIONLESS
    samples: tuple[float, ...] | None = None
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.samples is not None:
            object.__setattr__(self, "samples", tuple(float(s) for s in self.samples))
        if not math.isfinite(self.value):
            raise ValueError(f"{self.name}: value must be finite, got {self.value!r}")
        if not math.isfinite(self.u) or self.u < 0:
            raise ValueError(f"{self.name}: standard uncertainty must be finite and >= 0, got {self.u!r}")
        if math.isnan(self.dof) or self.dof <= 0:
            raise ValueError(f"{self.name}: degrees of freedom must be > 0 (inf if exactly known), got {self.dof!r}")
        if self.distribution not in get_args(Distribution):
            raise ValueError(
                f"{self.name}: distribution must be one of {', '.join(get_args(Distribution))}, "
                f"got {self.distribution!r}"
            )
        if self.distribution in HALF_WIDTH_DIVISORS:
            if self.half_width is None or not math.isfinite(self.half_width) or self.half_width < 0:
                raise ValueError(f"{self.name}: a {self.distribution} input needs a finite half_width >= 0")
            expected = self.half_width / HALF_WIDTH_DIVISORS[self.distribution]
            if not math.isclose(self.u, expected, rel_tol=1e-12, abs_tol=0.0):
                raise ValueError(f"{self.name}: u must be half_width / {HALF_WIDTH_DIVISORS[self.distribution]:.6g}")
        elif self.half_width is not None:
            raise ValueError(f"{self.name}: half_width only goes with rectangular, triangular or arcsine")
        if self.distribution == "t" and math.isinf(self.dof):
            raise ValueError(f"{self.name}: a t distribution needs finite degrees of freedom")

    @property
    def kind(self) -> Literal["A", "B"]:
        """GUM type A (evaluated here from repeated observations) or B (any other source)."""
        return "A" if self.samples is not None else "B"

    @classmethod
    def from_half_width(
        cls,
        name: str,
        value: float,
        half_width: float,
        distribution: Literal["rectangular", "triangular", "arcsine"] = "rectangular",
        *,
        unit: str = DIMENSIONLESS,
        dof: float = math.inf,
        note: str = "",
    ) -> InputQuantity:
        """Bounds value +- half_width and a distribution between them (GUM 4.3.7, 4.3.9)."""
        return cls(name, value, half_width / HALF_WIDTH_DIVISORS[distribution], dof, distribution,
                   half_width, unit, note=note or f"a = {half_width:.6g}")

    @classmethod
    def from_expanded(
        cls, name: str, value: float, U: float, k: float, *, unit: str = DIMENSIONLESS, dof: float = math.inf,
        distribution: Literal["normal", "t"] = "normal",
    ) -> InputQuantity:
        """A certificate's expanded uncertainty U and coverage factor k (GUM 4.3.3): u = U / k."""
        if not math.isfinite(k) or k <= 0:
            raise ValueError(f"{name}: coverage factor k must be finite and > 0, got {k!r}")
        return cls(name, value, U / k, dof, distribution, unit=unit, note=f"U = {U:.6g}, k = {k:g}")

    @classmethod
    def from_samples(cls, name: str, samples: Iterable[float], *, unit: str = DIMENSIONLESS) -> InputQuantity:
        """Type A from repeated observations (GUM 4.2): mean, s / sqrt(n), n - 1 dof."""
        data = tuple(float(s) for s in samples)
        component = type_a(name, data, unit="" if unit == DIMENSIONLESS else unit)
        assert component.value is not None  # type_a always sets the mean
        return cls(name, component.value, component.u, component.dof, "t", unit=unit, samples=data,
                   note=component.note)


# --------------------------------------------------------------------------------------------
# JSON


def _fail(source: str, field: str, problem: str, fix: str = "") -> ConfigError:
    return ConfigError(source, field, problem, fix)


def _number(raw: Any, source: str, field: str, what: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _fail(source, field, f"{what} must be a number, got {raw!r}", "write a plain number, e.g. 0.25")
    number = float(raw)
    if not math.isfinite(number):
        raise _fail(source, field, f"{what} must be a finite number, got {raw!r}", "write a plain number")
    return number


def _dof(raw: Any, source: str, field: str) -> float:
    if isinstance(raw, str) and raw.strip().lower() in ("inf", "infinity"):
        return math.inf
    if isinstance(raw, float) and math.isinf(raw) and raw > 0:
        return math.inf
    dof = _number(raw, source, field, "degrees of freedom")
    if dof <= 0:
        raise _fail(source, field, f"degrees of freedom must be > 0, got {raw!r}",
                    'leave "dof" out (or write "inf") for an exactly known uncertainty')
    return dof


def check_name(name: Any, source: str, field: str) -> str:
    """A name a model expression can refer to: an identifier that is not a Python keyword."""
    if not isinstance(name, str) or not name.isidentifier():
        raise _fail(source, field, f"{name!r} is not a usable name",
                    "use letters, digits and _ (not starting with a digit), e.g. l_s or theta")
    if keyword.iskeyword(name):
        raise _fail(source, field, f"'{name}' is a reserved word of the expression syntax",
                    f"rename it, e.g. '{name}_'")
    # Python reads identifiers in NFKC form (micro sign -> Greek mu): match the parser.
    return unicodedata.normalize("NFKC", name)


def _check_keys(spec: Mapping[str, Any], allowed: Sequence[str], source: str, field: str) -> None:
    for key in spec:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise _fail(source, f"{field}.{key}", f"unknown key '{key}'",
                        f"{hint}allowed keys: {', '.join(allowed)}")


def parse_input(name: str, spec: Any, *, source: str = "<model>", field: str = "inputs") -> InputQuantity:
    """One entry of "inputs"; `field` is the path of the inputs object, e.g. "inputs"."""
    where = f"{field}.{name}"
    name = check_name(name, source, where)
    if not isinstance(spec, dict):
        raise _fail(source, where, f"an input must be an object, got {spec!r}",
                    'write e.g. {"value": 10.0, "u": 0.01, "unit": "V"}')
    _check_keys(spec, INPUT_KEYS, source, where)
    unit = spec.get("unit", DIMENSIONLESS)
    if not isinstance(unit, str) or not unit.strip():
        raise _fail(source, f"{where}.unit", f"unit must be a unit name, got {unit!r}",
                    'write e.g. "nm", "V" or "dimensionless"')
    unit = unit.strip()
    parse_unit(unit, source=source, field=f"{where}.unit")
    note = spec.get("note", spec.get("description", ""))
    if not isinstance(note, str):
        raise _fail(source, f"{where}.note", "a note must be text")
    distribution = spec.get("distribution")
    if distribution is not None and distribution not in get_args(Distribution):
        close = difflib.get_close_matches(str(distribution), get_args(Distribution), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise _fail(source, f"{where}.distribution", f"unknown distribution {distribution!r}",
                    f"{hint}use one of {', '.join(get_args(Distribution))}")

    if "samples" in spec:
        return _from_samples(name, spec, unit, distribution, note, source, where)

    if "value" not in spec:
        raise _fail(source, f"{where}.value", "the input has no value",
                    'give "value" (or "samples" for repeated observations)')
    value = _number(spec["value"], source, f"{where}.value", "value")
    dof = _dof(spec["dof"], source, f"{where}.dof") if "dof" in spec else math.inf
    given = [key for key in ("u", "U", "half_width") if key in spec]
    if not given:
        raise _fail(source, where, "the input has no uncertainty",
                    'give "u", or "U" with "k", or "half_width" with a distribution, or "samples"')
    if len(given) > 1:
        raise _fail(source, f"{where}.{given[1]}", f"both '{given[0]}' and '{given[1]}' are given",
                    "state the uncertainty one way only")
    if "k" in spec and given[0] != "U":
        raise _fail(source, f"{where}.k", "a coverage factor k only goes with an expanded uncertainty U",
                    'remove "k", or give "U" instead of "u"')

    if given[0] == "half_width":
        half_width = _number(spec["half_width"], source, f"{where}.half_width", "half_width")
        if half_width < 0:
            raise _fail(source, f"{where}.half_width", f"half_width must be >= 0, got {half_width:g}",
                        "give the half-width a of the interval value +- a")
        if distribution not in HALF_WIDTH_DIVISORS:
            raise _fail(source, f"{where}.distribution",
                        f"a half_width needs a distribution: rectangular, triangular or arcsine, got {distribution!r}",
                        'add "distribution": "rectangular" (only the bounds are known)')
        return InputQuantity(name, value, half_width / HALF_WIDTH_DIVISORS[distribution], dof, distribution,
                             half_width, unit, note=note or f"a = {half_width:.6g}")

    if distribution in HALF_WIDTH_DIVISORS:
        raise _fail(source, f"{where}.distribution", f"a {distribution} input is stated by its half_width",
                    f'give "half_width" instead of "{given[0]}", or use "normal" or "t"')
    shape: Distribution = "t" if distribution == "t" else "normal"
    if shape == "t" and math.isinf(dof):
        raise _fail(source, f"{where}.dof", "a t distribution needs finite degrees of freedom",
                    'add "dof", e.g. the n - 1 of the evaluation')
    if given[0] == "u":
        u = _number(spec["u"], source, f"{where}.u", "the standard uncertainty u")
        if u < 0:
            raise _fail(source, f"{where}.u", f"the standard uncertainty must be >= 0, got {u:g}",
                        "give the standard uncertainty as a positive number")
        return InputQuantity(name, value, u, dof, shape, unit=unit, note=note)

    U = _number(spec["U"], source, f"{where}.U", "the expanded uncertainty U")
    if U < 0:
        raise _fail(source, f"{where}.U", f"the expanded uncertainty must be >= 0, got {U:g}",
                    "give U as a positive number")
    if "k" not in spec:
        raise _fail(source, f"{where}.k", "an expanded uncertainty U needs its coverage factor k",
                    'add "k" as stated on the certificate, e.g. "k": 2')
    k = _number(spec["k"], source, f"{where}.k", "the coverage factor k")
    if k <= 0:
        raise _fail(source, f"{where}.k", f"the coverage factor must be > 0, got {k:g}",
                    "copy k from the certificate (typically 2)")
    return InputQuantity(name, value, U / k, dof, shape, unit=unit,
                         note=note or f"U = {U:.6g}, k = {k:g}")


def _from_samples(
    name: str, spec: Mapping[str, Any], unit: str, distribution: Any, note: str, source: str, where: str
) -> InputQuantity:
    clash = [key for key in ("value", "u", "U", "k", "half_width", "dof") if key in spec]
    if clash:
        raise _fail(source, f"{where}.{clash[0]}", f"'{clash[0]}' cannot be given with samples",
                    "samples give the value (mean), u (s/sqrt(n)) and dof (n - 1); remove it")
    if distribution not in (None, "t"):
        raise _fail(source, f"{where}.distribution",
                    f"repeated observations give a t distribution (JCGM 101 6.4.9), not {distribution!r}",
                    'remove "distribution"')
    raw = spec["samples"]
    if not isinstance(raw, list):
        raise _fail(source, f"{where}.samples", f"samples must be a list of numbers, got {raw!r}",
                    "write e.g. [5.007, 4.994, 5.005]")
    data = [_number(s, source, f"{where}.samples[{i}]", "a sample") for i, s in enumerate(raw)]
    if len(data) < 2:
        raise _fail(source, f"{where}.samples", f"a type A evaluation needs at least 2 samples, got {len(data)}",
                    "add repeated observations, or state u as a type B evaluation")
    quantity = InputQuantity.from_samples(name, data, unit=unit)
    return replace(quantity, note=note) if note else quantity


def parse_inputs(data: Any, *, source: str = "<model>", field: str = "inputs") -> dict[str, InputQuantity]:
    """The "inputs" object: name -> input, in file order (the budget keeps that order)."""
    if not isinstance(data, dict) or not data:
        raise _fail(source, field, "inputs must be a non-empty object of name -> input",
                    'write e.g. {"V": {"value": 10.0, "u": 0.001, "unit": "V"}}')
    inputs: dict[str, InputQuantity] = {}
    for raw_name, spec in data.items():
        quantity = parse_input(raw_name, spec, source=source, field=field)
        if quantity.name in inputs:
            raise _fail(source, f"{field}.{raw_name}", f"input '{quantity.name}' is defined twice")
        inputs[quantity.name] = quantity
    return inputs


# --------------------------------------------------------------------------------------------
# Correlations


@dataclass(frozen=True, eq=False)
class CorrelationMatrix:
    """Correlation coefficients r(x_i, x_j) of the inputs, validated (GUM 5.2.2, 5.2.3).

    Symmetric, unit diagonal, |r| <= 1 and positive semi-definite (a covariance matrix must be;
    JCGM 101 needs it to draw correlated samples). `matrix` rows follow `names`.
    """

    names: tuple[str, ...]
    matrix: np.ndarray

    def __post_init__(self) -> None:
        matrix = np.array(self.matrix, dtype=float)
        matrix.setflags(write=False)
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "matrix", matrix)

    @classmethod
    def identity(cls, names: Sequence[str]) -> CorrelationMatrix:
        return cls(tuple(names), np.eye(len(names)))

    def r(self, a: str, b: str) -> float:
        return float(self.matrix[self.names.index(a), self.names.index(b)])

    def pairs(self) -> list[tuple[str, str, float]]:
        """The non-zero coefficients above the diagonal, as [name, name, r] triples."""
        n = len(self.names)
        return [
            (self.names[i], self.names[j], float(self.matrix[i, j]))
            for i in range(n)
            for j in range(i + 1, n)
            if self.matrix[i, j] != 0.0
        ]

    @property
    def is_identity(self) -> bool:
        return not self.pairs()

    def groups(self) -> list[tuple[str, ...]]:
        """Sets of inputs linked by non-zero correlations (connected components), in input order."""
        n = len(self.names)
        seen: set[int] = set()
        groups: list[tuple[str, ...]] = []
        for start in range(n):
            if start in seen:
                continue
            stack, members = [start], []
            seen.add(start)
            while stack:
                i = stack.pop()
                members.append(i)
                for j in range(n):
                    if j not in seen and self.matrix[i, j] != 0.0:
                        seen.add(j)
                        stack.append(j)
            groups.append(tuple(self.names[i] for i in sorted(members)))
        return groups


PSD_TOLERANCE = 1e-10
"""Smallest eigenvalue still accepted: rounding of a valid matrix of coefficients <= 1 is far smaller."""


def correlation_matrix(
    pairs: Iterable[tuple[str, str, float]],
    names: Sequence[str],
    *,
    source: str = "<model>",
    field: str = "correlations",
) -> CorrelationMatrix:
    """Build and validate the matrix from (a, b, r) triples; a pair not given is uncorrelated."""
    index = {name: i for i, name in enumerate(names)}
    matrix = np.eye(len(names))
    given: dict[frozenset[str], float] = {}
    for position, (a, b, r) in enumerate(pairs):
        where = f"{field}[{position}]"
        for name in (a, b):
            if name not in index:
                close = difflib.get_close_matches(str(name), list(names), n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise _fail(source, where, f"unknown input '{name}'", f"{hint}name two inputs defined under \"inputs\"")
        if a == b:
            raise _fail(source, where, f"'{a}' is correlated with itself",
                        "an input is always fully correlated with itself; name two different inputs")
        if not math.isfinite(r) or abs(r) > 1.0:
            raise _fail(source, where, f"correlation coefficient {r!r} is outside [-1, 1]",
                        "a correlation coefficient lies between -1 and 1")
        key = frozenset((a, b))
        if key in given and given[key] != r:
            raise _fail(source, where, f"the pair {a}, {b} is given twice with different coefficients "
                        f"({given[key]:g} and {r:g})", "give each pair once")
        given[key] = r
        matrix[index[a], index[b]] = matrix[index[b], index[a]] = r
    if len(names):
        smallest = float(np.linalg.eigvalsh(matrix).min())
        if smallest < -PSD_TOLERANCE:
            raise _fail(source, field,
                        f"correlation matrix is not positive semi-definite (smallest eigenvalue {smallest:.3g})",
                        "the coefficients contradict each other (e.g. a~b and b~c strongly positive but a~c "
                        "strongly negative); derive them from the same data")
    return CorrelationMatrix(tuple(names), matrix)


def _sample_correlation(a: InputQuantity, b: InputQuantity, source: str, where: str) -> float:
    """r(q, w) from simultaneous observations (GUM 5.2.3, eq. 17, with C.3.6)."""
    if a.samples is None or b.samples is None:
        missing = a.name if a.samples is None else b.name
        raise _fail(source, where, f"'samples' needs both inputs given as samples; '{missing}' is not",
                    "give the coefficient as a number")
    if len(a.samples) != len(b.samples):
        raise _fail(source, where, f"'{a.name}' has {len(a.samples)} samples but '{b.name}' has {len(b.samples)}",
                    "a correlation from observations needs simultaneous pairs of samples")
    q = np.asarray(a.samples) - np.mean(a.samples)
    w = np.asarray(b.samples) - np.mean(b.samples)
    denominator = math.sqrt(float(np.dot(q, q)) * float(np.dot(w, w)))
    if denominator == 0.0:
        return 0.0
    return float(np.clip(np.dot(q, w) / denominator, -1.0, 1.0))


def parse_correlations(
    data: Any, inputs: Mapping[str, InputQuantity], *, source: str = "<model>", field: str = "correlations"
) -> CorrelationMatrix:
    """The "correlations" list: [["V", "I", -0.36], ...]; "samples" instead of a number computes r
    from the two inputs' simultaneous observations (GUM 5.2.3)."""
    names = list(inputs)
    if data is None:
        return CorrelationMatrix.identity(names)
    if not isinstance(data, list):
        raise _fail(source, field, f"correlations must be a list of [name, name, r], got {data!r}",
                    'write e.g. [["V", "I", -0.36]]')
    triples: list[tuple[str, str, float]] = []
    for position, entry in enumerate(data):
        where = f"{field}[{position}]"
        if not isinstance(entry, list) or len(entry) != 3:
            raise _fail(source, where, f"expected [name, name, r], got {entry!r}", 'write e.g. ["V", "I", -0.36]')
        a, b, raw = entry
        if not isinstance(a, str) or not isinstance(b, str):
            raise _fail(source, where, f"the first two items must be input names, got {a!r}, {b!r}")
        a, b = unicodedata.normalize("NFKC", a), unicodedata.normalize("NFKC", b)
        if raw == "samples":
            for name in (a, b):
                if name not in inputs:
                    raise _fail(source, where, f"unknown input '{name}'", 'name two inputs defined under "inputs"')
            r = _sample_correlation(inputs[a], inputs[b], source, where)
        else:
            r = _number(raw, source, where, "the correlation coefficient")
        triples.append((a, b, r))
    return correlation_matrix(triples, names, source=source, field=field)
