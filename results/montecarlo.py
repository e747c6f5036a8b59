"""The Monte Carlo method of GUM Supplement 1 (JCGM 101:2008) for measurement models.

Why a second method next to the GUM law of propagation: the GUM linearises the model and
assumes a t (or normal) distribution for the output. JCGM 101 propagates the input
*distributions* themselves: draw M values of every input (6.4), evaluate the model for each draw
(7.6), and read the estimate, the standard uncertainty and coverage intervals off the M output
values (7.5-7.7). Where the model is non-linear or one non-normal input dominates, that is the
better answer, and clause 8 uses it to check whether the GUM answer may be used at all.

What is here:
- `InputSampler`: draws every `InputQuantity` as its docstring fixes (normal, scaled and shifted
  t, rectangular, triangular, arcsine) and correlated groups jointly (6.4.8 multivariate
  Gaussian; a joint t for type A inputs from one set of observations, JCGM 102 6.5).
- `evaluate_mc`: M trials (10^6 by default) in chunks of 2 x 10^4 so memory stays bounded; per output
  the mean, standard deviation, probabilistically symmetric and shortest coverage intervals
  (7.7, in `results.coverage_intervals`); several outputs: their covariance and correlation
  from the same draws (JCGM 102, the multivariate form of 7.6). `adaptive=True` runs the
  adaptive procedure of 7.9 instead of a fixed M.
- `validate_gum`: the GUM-vs-MC comparison of clause 8 (d_low, d_high against the numerical
  tolerance delta of 7.9.2).
- `mc_json`: the `daq uncertainty evaluate --method mc` contract: the model file's "mc" options
  (trials, seed, adaptive, ...) and the clause-8 verdict on the GUM result of the same file.

Random numbers come from numpy's PCG64 (`numpy.random.default_rng`), which passes the
statistical tests of randomness JCGM 101 C.3 asks a generator to pass (it recommends the
enhanced Wichmann-Hill generator; any generator passing those tests will do). A run is
repeatable from its seed (and the same trials and chunk size, which fix the order numbers are
drawn in); when no seed is given one is drawn from the operating system and reported, so every
result can be reproduced.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from daq.errors import ConfigError
from results.coverage_intervals import CoverageInterval, shortest_interval, symmetric_interval
from results.gum import DEFAULT_COVERAGE_PROBABILITY
from results.measurement_model import (
    MODEL_KEYS,
    GumResult,
    MeasurementModel,
    coverage_from_json,
    evaluate_gum,
    gum_options_from_json,
)
from results.model_inputs import InputQuantity

DEFAULT_TRIALS = 1_000_000
"""JCGM 101 7.2.2: M = 10^6 can often be expected to give a 95 % interval correct to one or two digits."""

DEFAULT_CHUNK = 20_000
"""Trials drawn and evaluated at once: large enough that numpy's per-call cost vanishes, small
enough that an input's draws and the expression's temporaries (160 kB each) stay in the CPU
cache. Measured on the GUM H.1 model, 10^6 trials (2-core VM, tracemalloc peak): 0.045-0.052 s
and 16 MB with chunks of 2 x 10^4; 0.049-0.096 s and 22 MB with 10^5; 0.075 s and 136 MB with all
10^6 at once."""

MIN_TRIALS_JSON = 10_000
MAX_TRIALS = 100_000_000
"""Upper bound on M: every output keeps its M values (8 bytes each) for the coverage intervals."""

DEFAULT_MAX_TRIALS_ADAPTIVE = 10_000_000
"""Where the adaptive procedure stops (and says so) if the results have not stabilised."""

SIGNIFICANT_DIGITS = 2
"""n_dig of JCGM 101 7.9.2: the number of significant digits of u(y) that must be meaningful."""

IntervalKind = Literal["symmetric", "shortest"]


# --------------------------------------------------------------------------------------------
# Numerical tolerance (JCGM 101 7.9.2)


def numerical_tolerance(u: float, significant_digits: int = SIGNIFICANT_DIGITS) -> float:
    """delta of JCGM 101 7.9.2: write u as c x 10^l, c an integer of n_dig digits; delta = 10^l / 2.

    E.g. u = 0.075 mg with n_dig = 2 is 75 x 10^-3 mg, so delta = 0.0005 mg; u = 2.0 gives 0.05.
    A u that rounds up to n_dig + 1 digits (0.0999 -> 0.10) moves l up by one, as writing it does.
    """
    if significant_digits < 1:
        raise ValueError(f"significant digits must be >= 1, got {significant_digits}")
    if not math.isfinite(u) or u < 0:
        raise ValueError(f"a standard uncertainty must be finite and >= 0, got {u!r}")
    if u == 0.0:
        return 0.0
    exponent = math.floor(math.log10(u)) - (significant_digits - 1)
    if round(u / 10.0**exponent) >= 10**significant_digits:
        exponent += 1
    return 0.5 * 10.0**exponent


def adaptive_batch_size(coverage: float) -> int:
    """M of JCGM 101 7.9.4 b): max(J, 10^4), J the smallest integer >= 100 / (1 - p)."""
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage probability must be between 0 and 1, got {coverage!r}")
    j = math.ceil(100.0 / (1.0 - coverage) - 1e-9)
    return max(j, 10_000)


# --------------------------------------------------------------------------------------------
# Sampling the inputs (JCGM 101 6.4)


def draw_input(quantity: InputQuantity, rng: np.random.Generator, n: int) -> np.ndarray:
    """n draws of one uncorrelated input, in its own unit, as `InputQuantity` fixes the shapes.

    - normal (6.4.7): x + u z, z standard normal;
    - t (6.4.9): x + u T_nu, the scaled and shifted t with scale u (for type A: s/sqrt(n), n - 1);
    - rectangular (6.4.2): x - a + 2 a r, r uniform on [0, 1);
    - triangular (6.4.5): x - a + a (r1 + r2), the sum of two uniforms;
    - arcsine (6.4.6): x + a sin(2 pi r), the U-shaped distribution of a sinusoidal influence.
    """
    x = quantity.value
    shape = quantity.distribution
    if shape == "normal":
        out = rng.standard_normal(n)
        out *= quantity.u
    elif shape == "t":
        out = rng.standard_t(quantity.dof, n)
        out *= quantity.u
    else:
        a = quantity.half_width
        assert a is not None  # InputQuantity guarantees a half-width for these shapes
        if shape == "rectangular":
            out = rng.random(n)
            out *= 2.0 * a
            out -= a
        elif shape == "triangular":
            out = rng.random(n)
            out += rng.random(n)
            out -= 1.0
            out *= a
        elif shape == "arcsine":
            out = rng.random(n)
            out *= 2.0 * math.pi
            np.sin(out, out=out)
            out *= a
        else:  # pragma: no cover - InputQuantity validates the distribution
            raise ValueError(f"{quantity.name}: no sampler for distribution {shape!r}")
    out += x
    return out


@dataclass(frozen=True, eq=False)
class CorrelatedGroup:
    """Inputs linked by non-zero correlations, drawn jointly.

    Covariance V = D R D (D = diag u). `factor` is L with L L^T = V: the Cholesky factor JCGM 101
    6.4.8 uses, or, when V is only positive semi-definite (a correlation of +-1, or a u of zero)
    and has no Cholesky factor, Q sqrt(Lambda) from its eigen decomposition, which serves the
    same purpose. `dof` is inf for a multivariate Gaussian (JCGM 101 6.4.8) and the common nu of a
    multivariate t (JCGM 102 6.5).
    """

    names: tuple[str, ...]
    means: np.ndarray
    factor: np.ndarray
    dof: float

    def draw(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """x + L z (Gaussian), or x + L z / sqrt(w / nu), w chi-squared with nu dof (t)."""
        z = rng.standard_normal((len(self.names), n))
        draws = self.factor @ z
        if math.isfinite(self.dof):
            scale = rng.chisquare(self.dof, n)
            scale /= self.dof
            np.sqrt(scale, out=scale)
            draws /= scale
        draws += self.means[:, None]
        return {name: draws[i] for i, name in enumerate(self.names)}


def _cholesky_or_eigen(covariance: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        eigenvalues, vectors = np.linalg.eigh(covariance)
        return vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))[None, :]


class InputSampler:
    """Draws all inputs of a model for a chunk of trials (JCGM 101 6.4), correlations included.

    Correlated inputs (the connected groups of the model's `CorrelationMatrix`) are drawn jointly
    when JCGM 101 or 102 says how:
    - all normal: the multivariate Gaussian of JCGM 101 6.4.8;
    - all t with the same nu (type A inputs from one set of simultaneous observations, as in GUM
      H.2): the multivariate t of JCGM 102 6.5, whose margins are exactly the t of
      JCGM 101 6.4.9 each input has alone, and whose correlation is R.
    Any other correlated input (rectangular, triangular, arcsine, or t mixed with normal or with
    another nu) is refused with a ConfigError: neither supplement defines a joint distribution
    for it, and a copula would quietly change the correlation the file states.
    """

    def __init__(self, model: MeasurementModel) -> None:
        self.model = model
        self.singles: list[InputQuantity] = []
        self.groups: list[CorrelatedGroup] = []
        self._order: list[InputQuantity | CorrelatedGroup] = []
        correlations = model.correlations
        for members in correlations.groups():
            if len(members) == 1:
                quantity = model.inputs[members[0]]
                self.singles.append(quantity)
                self._order.append(quantity)
                continue
            group = self._group(members)
            self.groups.append(group)
            self._order.append(group)

    def _group(self, members: tuple[str, ...]) -> CorrelatedGroup:
        model = self.model
        quantities = [model.inputs[name] for name in members]
        shapes = {q.distribution for q in quantities}
        listed = ", ".join(members)
        if shapes == {"normal"}:
            dof = math.inf
        elif shapes == {"t"} and len({q.dof for q in quantities}) == 1:
            dof = quantities[0].dof
        else:
            odd = next(q for q in quantities if q.distribution != "normal")
            detail = (f"'{odd.name}' is {odd.distribution}" if shapes != {"t"}
                      else "their t distributions have different degrees of freedom "
                      + ", ".join(f"{q.name}: {q.dof:g}" for q in quantities))
            raise ConfigError(
                model.source, "correlations",
                f"Monte Carlo cannot draw the correlated inputs {listed}: {detail}. JCGM 101 6.4.8 draws "
                "correlated inputs from a joint Gaussian, and JCGM 102 6.5 from a joint t when they come "
                "from one set of observations; no joint distribution is defined for other shapes",
                "state the correlated inputs as normal (\"u\", or \"U\" with \"k\"), or as \"samples\" of the same "
                "length; or drop the correlation if it is negligible; or use --method gum",
            )
        index = [model.correlations.names.index(name) for name in members]
        R = np.asarray(model.correlations.matrix)[np.ix_(index, index)]
        u = np.array([q.u for q in quantities])
        covariance = u[:, None] * R * u[None, :]
        return CorrelatedGroup(
            names=tuple(members),
            means=np.array([q.value for q in quantities]),
            factor=_cholesky_or_eigen(covariance),
            dof=dof,
        )

    def draw(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """n draws of every input, name -> array in the input's own unit, in a fixed order."""
        values: dict[str, np.ndarray] = {}
        for item in self._order:
            if isinstance(item, CorrelatedGroup):
                values.update(item.draw(rng, n))
            else:
                values[item.name] = draw_input(item, rng, n)
        return values


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class McOutput:
    """One output: estimate y (mean of the M values), u(y) (their standard deviation, divisor
    M - 1) and the probabilistically symmetric and shortest coverage intervals (JCGM 101 7.6, 7.7)."""

    name: str
    expression: str
    value: float
    u: float
    interval: CoverageInterval
    shortest: CoverageInterval
    unit: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "u": self.u,
            "interval": self.interval.as_list(),
            "shortest_interval": self.shortest.as_list(),
            "unit": self.unit,
            "expression": self.expression,
        }


@dataclass(frozen=True)
class AdaptiveSpread:
    """Twice the standard deviation of the average of the h batch results (JCGM 101 7.9.4 f, i)."""

    value: float
    u: float
    low: float
    high: float
    shortest_low: float
    shortest_high: float
    tolerance: float

    @property
    def largest(self) -> float:
        return max(self.value, self.u, self.low, self.high, self.shortest_low, self.shortest_high)

    @property
    def stable(self) -> bool:
        return self.largest <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {
            "tolerance": self.tolerance,
            "value": self.value,
            "u": self.u,
            "interval": [self.low, self.high],
            "shortest_interval": [self.shortest_low, self.shortest_high],
            "stable": self.stable,
        }


@dataclass(frozen=True)
class AdaptiveReport:
    """How the adaptive procedure of JCGM 101 7.9.4 ended: h batches of M trials each."""

    converged: bool
    batches: int
    batch_trials: int
    significant_digits: int
    spreads: dict[str, AdaptiveSpread]
    max_trials: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "converged": self.converged,
            "batches": self.batches,
            "batch_trials": self.batch_trials,
            "significant_digits": self.significant_digits,
            "max_trials": self.max_trials,
            "outputs": {name: spread.to_dict() for name, spread in self.spreads.items()},
        }


@dataclass(frozen=True, eq=False)
class McResult:
    """A Monte Carlo evaluation: per-output summaries, the outputs' covariance, how it was run."""

    outputs: dict[str, McOutput]
    coverage: float
    trials: int
    seed: int
    chunk: int
    covariance: np.ndarray
    """Covariance of the outputs' M values, in their reported units (rows follow `outputs`)."""
    correlation: np.ndarray
    adaptive: AdaptiveReport | None = None
    notes: tuple[str, ...] = field(default=())

    def __getitem__(self, name: str) -> McOutput:
        return self.outputs[name]

    def r(self, a: str, b: str) -> float:
        """Correlation coefficient between two outputs, from the same draws (JCGM 102)."""
        names = list(self.outputs)
        return float(self.correlation[names.index(a), names.index(b)])

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "method": "mc",
            "coverage": self.coverage,
            "trials": self.trials,
            "seed": self.seed,
            "chunk": self.chunk,
            "outputs": {name: output.to_dict() for name, output in self.outputs.items()},
        }
        names = list(self.outputs)
        if len(names) > 1:
            result["correlations"] = [
                [names[i], names[j], float(self.correlation[i, j])]
                for i in range(len(names))
                for j in range(i + 1, len(names))
            ]
            result["covariance"] = self.covariance.tolist()
        if self.adaptive is not None:
            result["adaptive"] = self.adaptive.to_dict()
        if self.notes:
            result["notes"] = list(self.notes)
        return result


# --------------------------------------------------------------------------------------------
# Running the trials


def _simulate(
    model: MeasurementModel, sampler: InputSampler, rng: np.random.Generator, trials: int, chunk: int
) -> np.ndarray:
    """The model values of `trials` draws, shape (outputs, trials), computed `chunk` trials at a time."""
    names = list(model.outputs)
    values = np.empty((len(names), trials))
    start = 0
    while start < trials:
        n = min(chunk, trials - start)
        draws = sampler.draw(rng, n)
        results = model.evaluate(draws)
        for j, name in enumerate(names):
            row = values[j, start:start + n]
            row[...] = results[name]  # broadcasts an output that depends on no input
            if not np.isfinite(row).all():
                _refuse_non_finite(model, name, row, draws)
        start += n
    return values


def _refuse_non_finite(model: MeasurementModel, name: str, row: np.ndarray, draws: Mapping[str, np.ndarray]) -> None:
    bad = ~np.isfinite(row)
    first = int(np.argmax(bad))
    used = [n for n in model.inputs if n in model.resolved[name].free_names()]
    example = ", ".join(f"{n} = {float(draws[n][first]):.6g}" for n in used[:8])
    raise ConfigError(
        model.source, f"outputs.{name}",
        f"the model gives {row[first]} for {int(bad.sum())} of {row.size} Monte Carlo draws (e.g. at {example}): "
        "JCGM 101 needs the model defined wherever the input distributions put probability",
        "check the model and the inputs' distributions (log or sqrt of a negative draw, division by a draw "
        "that can be zero); bound the inputs (rectangular instead of normal) or use --method gum",
    )


def _summarise(
    model: MeasurementModel, values: np.ndarray, coverage: float
) -> tuple[dict[str, McOutput], np.ndarray, np.ndarray]:
    """Estimates, uncertainties, intervals and covariance from the (outputs, M) values.

    Sorts `values` in place (after the covariance, which needs the trials paired), so no copy of
    the M values is made beyond numpy's temporaries.
    """
    names = list(model.outputs)
    m = len(names)
    mean = values.mean(axis=1)
    covariance = np.atleast_2d(np.cov(values, ddof=1)) if values.shape[1] > 1 else np.zeros((m, m))
    u = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    with np.errstate(all="ignore"):
        correlation = np.where(np.outer(u, u) > 0, covariance / np.outer(u, u), 0.0)
    correlation = np.clip(correlation, -1.0, 1.0)
    np.fill_diagonal(correlation, 1.0)
    values.sort(axis=1)
    outputs = {
        name: McOutput(
            name=name,
            expression=model.outputs[name].text(),
            value=float(mean[j]),
            u=float(u[j]),
            interval=symmetric_interval(values[j], coverage),
            shortest=shortest_interval(values[j], coverage),
            unit=model.output_unit(name),
        )
        for j, name in enumerate(names)
    }
    return outputs, covariance, correlation


def _input_notes(model: MeasurementModel, trials: int, coverage: float, adaptive: bool) -> list[str]:
    notes = []
    for quantity in model.inputs.values():
        if quantity.distribution == "t" and quantity.dof <= 2:
            notes.append(
                f"input {quantity.name}: a t distribution with nu = {quantity.dof:g} has no finite variance "
                "(JCGM 101 6.4.9 needs nu > 2): u(y) from the draws does not settle as M grows"
            )
        elif quantity.distribution == "t":
            notes.append(
                f"input {quantity.name}: drawn from the t distribution of JCGM 101 6.4.9 (scale u, nu = "
                f"{quantity.dof:g}), whose standard deviation u*sqrt(nu/(nu-2)) exceeds the u the GUM uses"
            )
    recommended = 1e4 / (1.0 - coverage)
    if not adaptive and trials < recommended:
        notes.append(
            f"M = {trials} is below the 10^4/(1 - p) = {recommended:.3g} trials JCGM 101 7.2.2 suggests; "
            "the adaptive procedure (7.9) tells how many digits of the results are meaningful"
        )
    return notes


def _fresh_seed() -> int:
    entropy = np.random.SeedSequence().entropy
    assert isinstance(entropy, int)
    return entropy


def evaluate_mc(
    model: MeasurementModel,
    *,
    trials: int = DEFAULT_TRIALS,
    seed: int | None = None,
    coverage: float = DEFAULT_COVERAGE_PROBABILITY,
    adaptive: bool = False,
    chunk: int = DEFAULT_CHUNK,
    significant_digits: int = SIGNIFICANT_DIGITS,
    max_trials: int = DEFAULT_MAX_TRIALS_ADAPTIVE,
) -> McResult:
    """Propagate the input distributions through the model (JCGM 101 clause 7).

    - `trials` M (ignored when `adaptive`), drawn and evaluated `chunk` at a time; each output
      keeps its M values (8 bytes each) for the coverage intervals, everything else is per chunk.
    - `seed`: the same seed, trials and chunk give the same numbers; None draws a seed from the
      operating system and reports it in the result.
    - `adaptive`: JCGM 101 7.9.4 — batches of M = max(100/(1 - p), 10^4) trials until twice the
      standard deviation of the average of the batch values of y, u(y) and the endpoints of
      both coverage intervals is at most delta (7.9.2, from u(y) with `significant_digits`) for
      every output; then all h M values give the results (7.9.4 j). Stops at `max_trials` and
      reports `converged: false` if that comes first.
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage probability must be between 0 and 1, got {coverage!r}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1 trial, got {chunk}")
    if seed is not None and seed < 0:
        raise ValueError(f"a seed must be >= 0, got {seed}")
    minimum = adaptive_batch_size(coverage) if adaptive else math.ceil(100.0 / (1.0 - coverage) - 1e-9)
    if adaptive:
        if max_trials < 2 * minimum:
            raise ValueError(f"max_trials must allow two batches of {minimum} trials, got {max_trials}")
    elif trials < minimum:
        raise ValueError(f"trials must be >= 100/(1 - p) = {minimum} for a {100 * coverage:g} % interval, got {trials}")
    if (max_trials if adaptive else trials) > MAX_TRIALS:
        raise ValueError(f"at most {MAX_TRIALS} trials (each output keeps 8 bytes per trial)")
    used_seed = _fresh_seed() if seed is None else int(seed)
    rng = np.random.default_rng(used_seed)
    sampler = InputSampler(model)
    notes = _input_notes(model, trials, coverage, adaptive)

    report: AdaptiveReport | None = None
    if adaptive:
        values, report = _adaptive(model, sampler, rng, coverage, chunk, significant_digits, max_trials)
        if not report.converged:
            notes.append(
                f"the adaptive procedure stopped at max_trials = {max_trials} before y, u(y) and the interval "
                f"endpoints were stable to {significant_digits} significant digits of u(y) (JCGM 101 7.9.4)"
            )
    else:
        values = _simulate(model, sampler, rng, trials, min(chunk, trials))
    outputs, covariance, correlation = _summarise(model, values, coverage)
    return McResult(
        outputs=outputs,
        coverage=coverage,
        trials=int(values.shape[1]),
        seed=used_seed,
        chunk=chunk,
        covariance=covariance,
        correlation=correlation,
        adaptive=report,
        notes=tuple(notes),
    )


class _RunningMoments:
    """Mean and sum of squared deviations over batches (Chan et al.), for u(y) of all h M values."""

    def __init__(self, m: int) -> None:
        self.count = 0
        self.mean = np.zeros(m)
        self.m2 = np.zeros(m)

    def add(self, values: np.ndarray) -> None:
        n = values.shape[1]
        mean = values.mean(axis=1)
        m2 = ((values - mean[:, None]) ** 2).sum(axis=1)
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else np.zeros_like(self.m2)


def _adaptive(
    model: MeasurementModel,
    sampler: InputSampler,
    rng: np.random.Generator,
    coverage: float,
    chunk: int,
    significant_digits: int,
    max_trials: int,
) -> tuple[np.ndarray, AdaptiveReport]:
    """JCGM 101 7.9.4 a)-j) for every output at once (as JCGM 102 7.8 does for several outputs)."""
    batch = adaptive_batch_size(coverage)
    names = list(model.outputs)
    m = len(names)
    stored: list[np.ndarray] = []
    per_batch: list[np.ndarray] = []  # each (6, m): y, u, low, high, shortest low, shortest high
    moments = _RunningMoments(m)
    spreads: dict[str, AdaptiveSpread] = {}
    converged = False
    while True:
        values = _simulate(model, sampler, rng, batch, min(chunk, batch))
        moments.add(values)
        stored.append(values)
        ordered = np.sort(values, axis=1)
        stats = np.empty((6, m))
        stats[0] = values.mean(axis=1)
        stats[1] = values.std(axis=1, ddof=1)
        for j in range(m):
            symmetric = symmetric_interval(ordered[j], coverage)
            shortest = shortest_interval(ordered[j], coverage)
            stats[2:, j] = (symmetric.low, symmetric.high, shortest.low, shortest.high)
        per_batch.append(stats)
        h = len(per_batch)
        if h < 2:
            continue
        table = np.stack(per_batch)  # (h, 6, m)
        twice_sd = 2.0 * table.std(axis=0, ddof=1) / math.sqrt(h)
        u_all = moments.std
        spreads = {
            name: AdaptiveSpread(
                value=float(twice_sd[0, j]),
                u=float(twice_sd[1, j]),
                low=float(twice_sd[2, j]),
                high=float(twice_sd[3, j]),
                shortest_low=float(twice_sd[4, j]),
                shortest_high=float(twice_sd[5, j]),
                tolerance=numerical_tolerance(float(u_all[j]), significant_digits),
            )
            for j, name in enumerate(names)
        }
        if all(spread.stable for spread in spreads.values()):
            converged = True
            break
        if (h + 1) * batch > max_trials:
            break
    report = AdaptiveReport(
        converged=converged,
        batches=len(stored),
        batch_trials=batch,
        significant_digits=significant_digits,
        spreads=spreads,
        max_trials=max_trials,
    )
    return np.concatenate(stored, axis=1), report


# --------------------------------------------------------------------------------------------
# Validation of the GUM uncertainty framework (JCGM 101 clause 8)


@dataclass(frozen=True)
class GumValidation:
    """JCGM 101 8.1 for one output: d_low = |y - U_p - y_low|, d_high = |y + U_p - y_high|.

    The GUM interval y +- U_p is validated when both are <= delta, the numerical tolerance of
    u(y) from the GUM (7.9.2 with n_dig significant digits): the GUM then gives the interval to
    the digits it states.
    """

    output: str
    unit: str
    tolerance: float
    d_low: float
    d_high: float
    gum_interval: tuple[float, float]
    mc_interval: tuple[float, float]
    interval: IntervalKind
    significant_digits: int

    @property
    def validated(self) -> bool:
        return self.d_low <= self.tolerance and self.d_high <= self.tolerance

    @property
    def verdict(self) -> str:
        return "validated" if self.validated else "not validated"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "tolerance": self.tolerance,
            "d_low": self.d_low,
            "d_high": self.d_high,
            "gum_interval": list(self.gum_interval),
            "mc_interval": list(self.mc_interval),
            "mc_interval_kind": self.interval,
            "significant_digits": self.significant_digits,
            "unit": self.unit,
        }


def validate_gum(
    gum: GumResult,
    mc: McResult,
    *,
    interval: IntervalKind = "symmetric",
    significant_digits: int = SIGNIFICANT_DIGITS,
) -> dict[str, GumValidation]:
    """Compare the GUM and Monte Carlo coverage intervals of each output (JCGM 101 8.1).

    8.2 asks for enough trials that the Monte Carlo interval's own numerical error is small
    against delta (the adaptive procedure tells); with a verdict on a knife's edge, run more.

    `interval` chooses the Monte Carlo interval compared with y +- U_p: the probabilistically
    symmetric one (the default: like y +- U_p it leaves (1 - p)/2 in each tail, as in the
    additive examples of JCGM 101 9.2) or the shortest (as in the mass example of 9.3).
    Both evaluations must be for the same coverage probability and outputs.
    """
    if not math.isclose(gum.coverage, mc.coverage, rel_tol=0.0, abs_tol=1e-12):
        raise ValueError(f"the GUM result is for p = {gum.coverage:g}, the Monte Carlo one for p = {mc.coverage:g}")
    if list(gum.outputs) != list(mc.outputs):
        raise ValueError("the GUM and Monte Carlo results are for different outputs")
    validations = {}
    for name, estimate in gum.outputs.items():
        mc_output = mc.outputs[name]
        chosen = mc_output.interval if interval == "symmetric" else mc_output.shortest
        validations[name] = GumValidation(
            output=name,
            unit=estimate.unit,
            tolerance=numerical_tolerance(estimate.u, significant_digits),
            d_low=abs(estimate.value - estimate.U - chosen.low),
            d_high=abs(estimate.value + estimate.U - chosen.high),
            gum_interval=(estimate.low, estimate.high),
            mc_interval=(chosen.low, chosen.high),
            interval=interval,
            significant_digits=significant_digits,
        )
    return validations


def validation_to_dict(validations: Mapping[str, GumValidation]) -> dict[str, Any]:
    """The "validation" block of the JSON: the overall verdict and each output's numbers."""
    verdict = "validated" if all(v.validated for v in validations.values()) else "not validated"
    return {
        "clause": "JCGM 101:2008 8.1",
        "verdict": verdict,
        "outputs": {name: v.to_dict() for name, v in validations.items()},
    }


# --------------------------------------------------------------------------------------------
# JSON contract (daq uncertainty evaluate --method mc)

MC_OPTIONS = ("trials", "seed", "adaptive", "max_trials", "chunk", "significant_digits", "validate_with")


@dataclass(frozen=True)
class McOptions:
    """The "mc" object of a model file, checked."""

    trials: int = DEFAULT_TRIALS
    seed: int | None = None
    adaptive: bool = False
    max_trials: int = DEFAULT_MAX_TRIALS_ADAPTIVE
    chunk: int = DEFAULT_CHUNK
    significant_digits: int = SIGNIFICANT_DIGITS
    validate_with: IntervalKind = "symmetric"


def _whole_number(raw: Any, source: str, field: str, what: str, fix: str) -> int:
    """An integer, or a float with an integral value (JSON readers turn 1e6 into 1000000.0)."""
    if isinstance(raw, bool):
        raise ConfigError(source, field, f"{what} must be a whole number, got {raw!r}", fix)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer() and abs(raw) < 2**53:
        return int(raw)
    raise ConfigError(source, field, f"{what} must be a whole number, got {raw!r}", fix)


def parse_mc_options(raw: Any, coverage: float, *, source: str) -> McOptions:
    """Check the "mc" options; every mistake names the field and the fix."""
    if raw is None:
        return McOptions()
    if not isinstance(raw, dict):
        raise ConfigError(source, "mc", f"mc options must be an object, got {raw!r}",
                          'write e.g. {"trials": 1000000, "seed": 1}')
    for key in raw:
        if key not in MC_OPTIONS:
            close = difflib.get_close_matches(str(key), MC_OPTIONS, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(source, f"mc.{key}", f"unknown option '{key}'",
                              f"{hint}allowed options: {', '.join(MC_OPTIONS)}")
    least = max(MIN_TRIALS_JSON, math.ceil(100.0 / (1.0 - coverage) - 1e-9))
    options: dict[str, Any] = {}
    adaptive = raw.get("adaptive", False)
    if not isinstance(adaptive, bool):
        raise ConfigError(source, "mc.adaptive", f"must be true or false, got {adaptive!r}",
                          "write true for the adaptive procedure of JCGM 101 7.9")
    options["adaptive"] = adaptive
    if "trials" in raw:
        if adaptive:
            raise ConfigError(source, "mc.trials", "trials cannot be given with \"adaptive\": true",
                              "the adaptive procedure (JCGM 101 7.9) chooses the number of trials; remove "
                              "\"trials\", or bound the run with \"max_trials\"")
        trials = _whole_number(raw["trials"], source, "mc.trials", "trials",
                               f"write a whole number of trials >= {least}, e.g. 1000000")
        if trials < least:
            raise ConfigError(source, "mc.trials", f"{trials} trials are too few (at least {least})",
                              "use 1000000 (JCGM 101 7.2.2), or \"adaptive\": true")
        if trials > MAX_TRIALS:
            raise ConfigError(source, "mc.trials", f"{trials} trials would need {8 * trials / 1e9:.1f} GB per output",
                              f"use at most {MAX_TRIALS}")
        options["trials"] = trials
    if "max_trials" in raw:
        if not adaptive:
            raise ConfigError(source, "mc.max_trials", "max_trials only bounds the adaptive procedure",
                              "give \"trials\" for a fixed number, or add \"adaptive\": true")
        max_trials = _whole_number(raw["max_trials"], source, "mc.max_trials", "max_trials",
                                   "write a whole number, e.g. 10000000")
        least_adaptive = 2 * adaptive_batch_size(coverage)
        if not least_adaptive <= max_trials <= MAX_TRIALS:
            raise ConfigError(source, "mc.max_trials", f"max_trials must be between {least_adaptive} and {MAX_TRIALS}, "
                              f"got {max_trials}", "write e.g. 10000000")
        options["max_trials"] = max_trials
    if "seed" in raw and raw["seed"] is not None:
        seed = _whole_number(raw["seed"], source, "mc.seed", "the seed", "write a whole number >= 0, e.g. 1")
        if seed < 0:
            raise ConfigError(source, "mc.seed", f"the seed must be >= 0, got {seed}",
                              "write a whole number >= 0, e.g. 1 (or leave it out for a fresh seed)")
        options["seed"] = seed
    if "chunk" in raw:
        chunk = _whole_number(raw["chunk"], source, "mc.chunk", "chunk", f"write e.g. {DEFAULT_CHUNK}")
        if not 1_000 <= chunk <= 10_000_000:
            raise ConfigError(source, "mc.chunk", f"chunk must be between 1000 and 10000000 trials, got {chunk}",
                              f"leave it out ({DEFAULT_CHUNK})")
        options["chunk"] = chunk
    if "significant_digits" in raw:
        digits = _whole_number(raw["significant_digits"], source, "mc.significant_digits", "significant_digits",
                               "write 1 or 2 (JCGM 101 7.9.2)")
        if not 1 <= digits <= 4:
            raise ConfigError(source, "mc.significant_digits", f"must be between 1 and 4, got {digits}",
                              "write 1 or 2 (JCGM 101 7.9.2)")
        options["significant_digits"] = digits
    if "validate_with" in raw:
        kind = raw["validate_with"]
        if kind not in ("symmetric", "shortest"):
            raise ConfigError(source, "mc.validate_with", f"unknown interval {kind!r}",
                              'write "symmetric" (probabilistically symmetric) or "shortest"')
        options["validate_with"] = kind
    return McOptions(**options)


def mc_json(data: Any, *, source: str) -> dict[str, Any]:
    """Evaluate a model file by Monte Carlo (the `daq uncertainty evaluate --method mc` contract).

    The model part is read as for the GUM (`MeasurementModel.from_json`, "coverage", "gum"); the
    "mc" object gives trials (default 10^6), seed, adaptive, max_trials, chunk,
    significant_digits and validate_with. The answer holds the Monte Carlo result, the GUM
    result of the same file ("gum", with its budget) and the clause-8 comparison of the two
    ("validation": "validated" or "not validated" with d_low, d_high and delta per output). A
    model the GUM cannot evaluate (a derivative that does not exist at the estimates) still gets
    its Monte Carlo result, with the validation "not available" and the reason.
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
    gum_options = gum_options_from_json(data, source)
    options = parse_mc_options(data.get("mc"), coverage, source=source)
    model = MeasurementModel.from_json(data, source=source)
    mc = evaluate_mc(
        model,
        trials=options.trials,
        seed=options.seed,
        coverage=coverage,
        adaptive=options.adaptive,
        chunk=options.chunk,
        significant_digits=options.significant_digits,
        max_trials=options.max_trials,
    )
    result = mc.to_dict()
    for output in result["outputs"].values():
        # the contract's per-output keys: U is the half-width of the probabilistically symmetric
        # interval and k = U / u; degrees of freedom belong to the GUM's t approximation, which
        # Monte Carlo does not make (JCGM 101 5.11): reported as "inf" with that note
        low, high = output["interval"]
        output["U"] = (high - low) / 2.0
        output["k"] = output["U"] / output["u"] if output["u"] > 0 else None
        output["dof"] = "inf"
    result["note"] = ("Monte Carlo: U is the half-width of the probabilistically symmetric coverage interval, "
                      "k = U/u; dof is not used by JCGM 101 (shown as inf); the budget is the GUM's")
    try:
        gum = evaluate_gum(model, coverage, **gum_options)
    except ConfigError as exc:
        result["validation"] = {"clause": "JCGM 101:2008 8.1", "verdict": "not available",
                                "reason": f"the GUM cannot evaluate this model: {exc.problem}"}
        return result
    validations = validate_gum(gum, mc, interval=options.validate_with, significant_digits=options.significant_digits)
    result["validation"] = validation_to_dict(validations)
    result["gum"] = gum.to_dict()
    for name, output in result["outputs"].items():
        output["budget"] = result["gum"]["outputs"][name]["budget"]
    return result
