"""Coverage intervals from the Monte Carlo draws of one output (JCGM 101:2008, 7.7).

The M model values y_1..y_M of an output, sorted, are the discrete representation G of its
distribution function (JCGM 101 7.5). A 100p % coverage interval is [y_(r), y_(r+q)] for any
r = 1..M-q, with q = pM if that is an integer, else the integer part of pM + 1/2 (7.7.1):

- the *probabilistically symmetric* interval takes r = (M - q)/2, or the integer part of
  (M - q + 1)/2 when that is not an integer (7.7.2): equal probability (1 - p)/2 in each tail,
  the interval the GUM's y +- U_p corresponds to;
- the *shortest* interval takes the r* whose interval y_(r*+q) - y_(r*) is the smallest (7.7.3).
  For an asymmetric distribution (exp of a normal input, log of a rectangular one) it is the
  better summary: the same probability in a shorter interval, placed where the density is high.

Indices here are JCGM 101's one-based r; `sorted_values[r - 1]` is y_(r).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CoverageInterval:
    """[low, high] in the output's unit, with the coverage probability it was built for."""

    low: float
    high: float
    coverage: float

    @property
    def length(self) -> float:
        return self.high - self.low

    def as_list(self) -> list[float]:
        return [self.low, self.high]


def coverage_count(trials: int, coverage: float) -> int:
    """q of JCGM 101 7.7.1: pM if an integer, else the integer part of pM + 1/2.

    pM is formed with a relative tolerance so 0.95 * 100000 (94999.99999999999 in binary
    floating point) counts as the integer 95000 it is meant to be. Refuses M too small for p:
    at least one value must lie outside the interval (JCGM 101 7.2.2 asks for M much larger
    than 1/(1 - p)).
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage probability must be between 0 and 1, got {coverage!r}")
    pm = coverage * trials
    nearest = round(pm)
    q = int(nearest) if math.isclose(pm, nearest, rel_tol=1e-12, abs_tol=0.0) else int(math.floor(pm + 0.5))
    if q < 1 or q >= trials:
        raise ValueError(f"{trials} values are too few for a {100 * coverage:g} % coverage interval: "
                         f"JCGM 101 7.2.2 asks for M much larger than 1/(1 - p) = {1 / (1 - coverage):.4g}")
    return q


def symmetric_interval(sorted_values: np.ndarray, coverage: float) -> CoverageInterval:
    """The probabilistically symmetric 100p % coverage interval (JCGM 101 7.7.2)."""
    m = int(sorted_values.shape[0])
    q = coverage_count(m, coverage)
    twice = m - q
    r = twice // 2 if twice % 2 == 0 else (twice + 1) // 2
    return CoverageInterval(float(sorted_values[r - 1]), float(sorted_values[r - 1 + q]), coverage)


def shortest_interval(sorted_values: np.ndarray, coverage: float) -> CoverageInterval:
    """The shortest 100p % coverage interval (JCGM 101 7.7.3): min over r of y_(r+q) - y_(r).

    Vectorised over all M - q candidate intervals (one subtraction and one argmin on M values);
    ties go to the first, lowest, candidate, as `numpy.argmin` returns it.
    """
    m = int(sorted_values.shape[0])
    q = coverage_count(m, coverage)
    widths = sorted_values[q:] - sorted_values[: m - q]
    r = int(np.argmin(widths)) + 1
    return CoverageInterval(float(sorted_values[r - 1]), float(sorted_values[r - 1 + q]), coverage)
