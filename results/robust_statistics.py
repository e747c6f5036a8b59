"""Robust mean and standard deviation of a set of participants' results: ISO 13528 Algorithm A.

Why robust: in an inter-laboratory comparison without a reference laboratory the assigned value
is the consensus of the participants (ISO 13528:2022 §7.7). A plain mean would let one blunder
move the value every other laboratory is judged against; Algorithm A (ISO 13528:2022 Annex C.3,
reproduced from ISO 5725-5:1998 §6.2) is Huber's M-estimator of location with iterated scale:
results further than 1.5 s* from x* are pulled in to x* ± 1.5 s* (winsorised), so an outlier
still counts, but only as a result "a bit high" or "a bit low".

The steps, as the standard writes them:
1. x* = median(x_i), s* = 1.483 · median(|x_i − x*|)       (the MAD scaled to a normal SD)
2. δ = 1.5 s*; x_i* = x* − δ if x_i < x* − δ, x* + δ if x_i > x* + δ, else x_i
3. x* = mean(x_i*), s* = 1.134 · SD(x_i*)                   (1.134 undoes the winsorising bias)
4. repeat 2–3 until converged.

Convergence: the standard lets a hand calculation stop when the third significant figure of s*
(and the same decimal place of x*) no longer changes. Software has no reason to stop there: we
iterate to a relative tolerance on s* (default 1e-10), which is the fixed point the standard's
rule approximates, and report the iteration count. The iteration at which the hand rule would
have stopped is reported too (`manual_rule_iteration`), so a reviewer who repeats the
calculation by hand, as the laboratory's software-validation SOP asks, can compare like with like.

The standard uncertainty of a consensus assigned value from Algorithm A is
u(x_pt) = 1.25 · s* / √p (ISO 13528:2022 §7.7.3). 1.25 ≈ √(π/2) is how much larger the standard
error of a median is than that of a mean for normal data: a deliberately conservative factor for
Algorithm A, whose efficiency lies between the two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAD_TO_SD = 1.483
"""Scales the median absolute deviation to a standard deviation for normal data (ISO 13528 C.3.1)."""
WINSOR_FACTOR = 1.5
"""δ = 1.5 s*: results beyond x* ± δ are winsorised (ISO 13528 C.3.1)."""
WINSORISED_SD_CORRECTION = 1.134
"""Corrects the SD of the winsorised data back to a normal SD (ISO 13528 C.3.1)."""
CONSENSUS_UNCERTAINTY_FACTOR = 1.25
"""u(x_pt) = 1.25 s* / sqrt(p) for the Algorithm A consensus (ISO 13528:2022 §7.7.3)."""
MINIMUM_RESULTS = 3
"""Below three results a median and a MAD say nothing robust: the smallest p we accept."""
DEFAULT_TOLERANCE = 1e-10
DEFAULT_MAX_ITERATIONS = 100_000  # slow, linear convergence happens on bimodal data; each step is cheap


@dataclass(frozen=True)
class AlgorithmAResult:
    """The robust mean x* and robust standard deviation s* with how they were reached."""

    robust_mean: float
    robust_sd: float
    p: int
    """Number of results the estimates were computed from."""
    initial_mean: float
    """The median (the starting x*)."""
    initial_sd: float
    """1.483 × MAD (the starting s*)."""
    iterations: int
    """Updates (steps 2–3) performed until converged to `tolerance`."""
    tolerance: float
    """Converged when |Δx*| and |Δs*| were both ≤ tolerance × s*."""
    manual_rule_iteration: int | None
    """First iteration whose x* and s* agree with the previous one to the third significant figure
    of s* (the stop rule ISO 13528 C.3.1 gives for a hand calculation); None if never met."""
    history: tuple[tuple[float, float], ...]
    """(x*, s*) at the start (index 0) and after every iteration."""
    winsorised_low: int
    """Results pulled up to x* − 1.5 s* at convergence."""
    winsorised_high: int
    """Results pulled down to x* + 1.5 s* at convergence."""

    @property
    def u_robust_mean(self) -> float:
        """Standard uncertainty of x* used as the assigned value: 1.25 s*/√p (ISO 13528 §7.7.3)."""
        return consensus_standard_uncertainty(self.robust_sd, self.p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "robust_mean": self.robust_mean,
            "robust_sd": self.robust_sd,
            "p": self.p,
            "u_robust_mean": self.u_robust_mean,
            "initial_mean": self.initial_mean,
            "initial_sd": self.initial_sd,
            "iterations": self.iterations,
            "tolerance": self.tolerance,
            "manual_rule_iteration": self.manual_rule_iteration,
            "winsorised_low": self.winsorised_low,
            "winsorised_high": self.winsorised_high,
            "history": [[x, s] for x, s in self.history],
        }


def _as_finite_array(values: Sequence[float]) -> np.ndarray:
    if isinstance(values, str | bytes):
        raise ValueError("values must be a sequence of numbers, not a string")
    items = list(values)
    for i, v in enumerate(items):
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            raise ValueError(f"value #{i + 1} must be a number, got {v!r}")
        if not math.isfinite(float(v)):
            raise ValueError(f"value #{i + 1} must be finite, got {v!r}")
    return np.asarray(items, dtype=float)


def scaled_mad(values: Sequence[float]) -> float:
    """MADe = 1.483 × median |x_i − median(x)|: the robust SD Algorithm A starts from.

    Kept separate because ISO 13528 also allows MADe on its own as a simple robust SD, and
    because a zero MADe is why Algorithm A cannot start (more than half the results identical).
    """
    x = _as_finite_array(values)
    if x.size == 0:
        raise ValueError("no values")
    median = float(np.median(x))
    return MAD_TO_SD * float(np.median(np.abs(x - median)))


def consensus_standard_uncertainty(robust_sd: float, p: int) -> float:
    """u(x_pt) = 1.25 s* / √p for a consensus from Algorithm A (ISO 13528:2022 §7.7.3).

    The formula assumes the results are roughly normal apart from a few outliers, and it is the
    uncertainty of x* as an estimate of the population mean only: it carries no allowance for
    a bias shared by all participants, which a consensus value cannot reveal.
    """
    if not math.isfinite(robust_sd) or robust_sd < 0:
        raise ValueError(f"robust standard deviation must be finite and >= 0, got {robust_sd!r}")
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise ValueError(f"p must be a positive integer, got {p!r}")
    return CONSENSUS_UNCERTAINTY_FACTOR * robust_sd / math.sqrt(p)


def _third_figure_exponent(s: float) -> int:
    """Decimal exponent of the third significant figure of s (s > 0)."""
    return math.floor(math.log10(s)) - 2


def _same_to_third_figure(previous: tuple[float, float], current: tuple[float, float]) -> bool:
    # The hand rule: s* unchanged in its third significant figure, x* unchanged at the same
    # decimal place. The place is taken from the current s* (the two agree when the rule holds).
    exponent = _third_figure_exponent(current[1])
    scale = 10.0**exponent

    def figure(v: float) -> int:
        return math.floor(v / scale + 0.5)

    return figure(previous[0]) == figure(current[0]) and figure(previous[1]) == figure(current[1])


def _cycle_length(history: list[tuple[float, float]], tolerance: float, longest: int = 4) -> int:
    """Period of a limit cycle the iteration has entered (2..longest), or 0."""
    last_mean, last_sd = history[-1]
    for period in range(2, longest + 1):
        if len(history) > period:
            m, v = history[-1 - period]
            if abs(m - last_mean) <= tolerance * last_sd and abs(v - last_sd) <= tolerance * last_sd:
                return period
    return 0


def algorithm_a(
    values: Sequence[float],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
) -> AlgorithmAResult:
    """Robust mean x* and robust SD s* of `values` by ISO 13528:2022 Annex C.3 (Algorithm A).

    Raises ValueError when the algorithm cannot give a meaningful answer: fewer than
    `MINIMUM_RESULTS` results, non-finite values, or a zero starting scale (more than half the
    results identical, so 1.483·MAD = 0 and every other result would be winsorised onto the
    median). It also raises if the iteration has not converged after `max_iterations`, rather
    than return a value that depends on where the loop happened to stop.
    """
    x = _as_finite_array(values)
    p = int(x.size)
    if p < MINIMUM_RESULTS:
        raise ValueError(f"Algorithm A needs at least {MINIMUM_RESULTS} results, got {p}")
    if not (math.isfinite(tolerance) and 0 < tolerance < 1):
        raise ValueError(f"tolerance must be in (0, 1), got {tolerance!r}")
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
        raise ValueError(f"max_iterations must be a positive integer, got {max_iterations!r}")

    mean = float(np.median(x))
    sd = MAD_TO_SD * float(np.median(np.abs(x - mean)))
    if sd == 0.0:
        raise ValueError(
            "more than half of the results are identical, so the starting robust standard deviation "
            "1.483·MAD is zero and Algorithm A cannot start"
        )
    history: list[tuple[float, float]] = [(mean, sd)]
    manual_rule_iteration: int | None = None

    for iteration in range(1, max_iterations + 1):
        delta = WINSOR_FACTOR * sd
        winsorised = np.clip(x, mean - delta, mean + delta)
        new_mean = float(np.mean(winsorised))
        new_sd = WINSORISED_SD_CORRECTION * float(np.std(winsorised, ddof=1))
        history.append((new_mean, new_sd))
        if manual_rule_iteration is None and new_sd > 0 and _same_to_third_figure(history[-2], history[-1]):
            manual_rule_iteration = iteration
        converged = abs(new_mean - mean) <= tolerance * new_sd and abs(new_sd - sd) <= tolerance * new_sd
        mean, sd = new_mean, new_sd
        cycle = 0 if converged else _cycle_length(history, tolerance)
        if cycle:
            # results sitting exactly on a winsorising boundary can make the iteration alternate
            # between a few states for ever; their average does not depend on where it was cut
            mean = float(np.mean([m for m, _ in history[-cycle:]]))
            sd = float(np.mean([v for _, v in history[-cycle:]]))
            converged = True
        if converged:
            delta = WINSOR_FACTOR * sd
            return AlgorithmAResult(
                robust_mean=mean,
                robust_sd=sd,
                p=p,
                initial_mean=history[0][0],
                initial_sd=history[0][1],
                iterations=iteration,
                tolerance=tolerance,
                manual_rule_iteration=manual_rule_iteration,
                history=tuple(history),
                winsorised_low=int(np.sum(x < mean - delta)),
                winsorised_high=int(np.sum(x > mean + delta)),
            )
    raise ValueError(
        f"Algorithm A did not converge to a relative tolerance of {tolerance:g} in {max_iterations} iterations "
        f"(last x* = {mean!r}, s* = {sd!r})"
    )
