"""Deciding that readings are stable, statistically, instead of waiting a fixed time.

A moving window of readings is tested against the criteria a procedure states: standard
deviation, drift (the upper confidence bound of the regression slope, so noise cannot hide a
drift), a band around the target, a minimum soak and a timeout, combined with the
instrument's own settled flag where it has one. Hardware flags only mean "inside the
instrument's own band", so the flag is required *and* the software criteria.

Every decision keeps its evidence: the trace of samples and the reason it was declared
stable (or timed out), so a reviewer can see why a point was measured when it was.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

from daq.clock import Clock


@dataclass(frozen=True)
class StabilityCriteria:
    """What "stable" means for one point; values are in the channel's unit (and per second)."""

    window: int = 10
    max_std: float | None = None
    max_slope: float | None = None
    band: float | None = None
    min_soak: float = 0.0
    timeout: float = 600.0
    interval: float = 0.0
    use_instrument_flag: bool = True
    slope_confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.window < 3:
            raise ValueError("stability window needs at least 3 readings")
        if self.timeout <= 0:
            raise ValueError("stability timeout must be positive")

    def scaled(self, factor: float) -> StabilityCriteria:
        """The same criteria with every limit in units of the channel multiplied by `factor`."""
        return StabilityCriteria(
            window=self.window,
            max_std=None if self.max_std is None else self.max_std * factor,
            max_slope=None if self.max_slope is None else self.max_slope * factor,
            band=None if self.band is None else self.band * factor,
            min_soak=self.min_soak,
            timeout=self.timeout,
            interval=self.interval,
            use_instrument_flag=self.use_instrument_flag,
            slope_confidence=self.slope_confidence,
        )


def _t_quantile(p: float, dof: int) -> float:
    """Student-t quantile by the Cornish-Fisher expansion; good to ~1e-3 for dof >= 3.

    The core does not import scipy; this is used only for the slope's confidence bound.
    """
    z = NormalDist().inv_cdf(p)
    v = float(dof)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
    )


@dataclass(frozen=True)
class StabilityCheck:
    """One evaluation of the window: the statistics and which criteria failed."""

    t: float
    n: int
    mean: float
    std: float
    slope: float
    slope_bound: float
    flag: bool | None
    failing: tuple[str, ...]

    @property
    def stable(self) -> bool:
        return not self.failing


class StabilityDetector:
    """Feed samples; each call says whether the window is stable now, and why not."""

    def __init__(self, criteria: StabilityCriteria, target: float | None = None, started_at: float = 0.0) -> None:
        self.criteria = criteria
        self.target = target
        self.started_at = started_at
        self._t: deque[float] = deque(maxlen=criteria.window)
        self._v: deque[float] = deque(maxlen=criteria.window)
        self._tq = _t_quantile(criteria.slope_confidence, max(1, criteria.window - 2))

    def add(self, t: float, value: float, flag: bool | None = None) -> StabilityCheck:
        c = self.criteria
        if not math.isfinite(value):
            # an overload (e.g. a lower range while the source is still coming down) restarts the window
            self._t.clear()
            self._v.clear()
            return StabilityCheck(t, 0, math.nan, math.inf, math.nan, math.inf, flag, ("reading overloaded",))
        self._t.append(t)
        self._v.append(value)
        n = len(self._v)
        failing: list[str] = []
        if n < c.window:
            failing.append(f"window {n}/{c.window}")
        mean = math.fsum(self._v) / n
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in self._v) / (n - 1)) if n > 1 else math.inf
        slope, bound = self._slope(mean)
        if c.max_std is not None and not std <= c.max_std:
            failing.append(f"std {std:.3g} > {c.max_std:.3g}")
        if c.max_slope is not None and not bound <= c.max_slope:
            failing.append(f"|slope| bound {bound:.3g}/s > {c.max_slope:.3g}/s")
        if c.band is not None and self.target is not None and not abs(mean - self.target) <= c.band:
            failing.append(f"mean {mean:.9g} outside {self.target:.9g} +/- {c.band:.3g}")
        if t - self.started_at < c.min_soak:
            failing.append(f"soak {t - self.started_at:.3g} s < {c.min_soak:.3g} s")
        if c.use_instrument_flag and flag is False:
            failing.append("instrument not settled")
        return StabilityCheck(t, n, mean, std, slope, bound, flag, tuple(failing))

    def _slope(self, mean_v: float) -> tuple[float, float]:
        """Least-squares slope and the upper confidence bound of its magnitude."""
        n = len(self._t)
        if n < 3:
            return math.nan, math.inf
        mean_t = math.fsum(self._t) / n
        sxx = math.fsum((t - mean_t) ** 2 for t in self._t)
        if sxx <= 0:
            return math.nan, math.inf
        sxy = math.fsum((t - mean_t) * (v - mean_v) for t, v in zip(self._t, self._v, strict=True))
        slope = sxy / sxx
        resid = math.fsum((v - mean_v - slope * (t - mean_t)) ** 2 for t, v in zip(self._t, self._v, strict=True))
        se = math.sqrt(resid / (n - 2) / sxx)
        return slope, abs(slope) + self._tq * se


@dataclass
class StabilityRecord:
    """The evidence kept with a point: the verdict, its reason and the trace."""

    stable: bool
    timed_out: bool
    reason: str
    started_at: float
    ended_at: float
    samples: int
    final: dict[str, Any]
    criteria: dict[str, Any]
    trace: list[tuple[float, float, bool | None]] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return self.ended_at - self.started_at

    def to_dict(self, *, with_trace: bool = True) -> dict[str, Any]:
        """JSON-ready; without the trace when the samples are stored as readings already."""
        d = asdict(self)
        d["elapsed"] = self.elapsed
        if not with_trace:
            del d["trace"]
        return d


Sample = Callable[[], Awaitable[tuple[float, bool | None]]]
"""Takes one reading and returns (value, instrument flag or None); the clock stamps it."""


def _describe(check: StabilityCheck, c: StabilityCriteria, elapsed: float) -> str:
    parts = [f"stable after {elapsed:.3g} s over {check.n} readings"]
    if c.max_std is not None:
        parts.append(f"std {check.std:.3g} <= {c.max_std:.3g}")
    if c.max_slope is not None:
        parts.append(f"|slope| bound {check.slope_bound:.3g}/s <= {c.max_slope:.3g}/s")
    if c.band is not None:
        parts.append(f"mean within +/- {c.band:.3g} of target")
    if c.min_soak:
        parts.append(f"soak {c.min_soak:.3g} s done")
    if c.use_instrument_flag and check.flag is not None:
        parts.append("instrument settled")
    return "; ".join(parts)


async def wait_until_stable(
    sample: Sample,
    criteria: StabilityCriteria,
    clock: Clock,
    *,
    target: float | None = None,
    on_check: Callable[[StabilityCheck], None] | None = None,
) -> StabilityRecord:
    """Sample until the criteria hold or the timeout passes; never raises on timeout.

    The caller decides what a timeout means (retry, ask the operator, abort) with the
    record in hand.
    """
    started = clock.now()
    detector = StabilityDetector(criteria, target, started)
    trace: list[tuple[float, float, bool | None]] = []
    check: StabilityCheck | None = None
    while True:
        value, flag = await sample()
        now = clock.now()
        trace.append((now, value, flag))
        check = detector.add(now, value, flag)
        if on_check is not None:
            on_check(check)
        if check.stable:
            return StabilityRecord(
                True, False, _describe(check, criteria, now - started), started, now, len(trace),
                asdict(check), asdict(criteria), trace,
            )
        if now - started >= criteria.timeout:
            reason = f"timed out after {now - started:.3g} s; failing: " + ", ".join(check.failing)
            return StabilityRecord(
                False, True, reason, started, now, len(trace), asdict(check), asdict(criteria), trace
            )
        if criteria.interval > 0:
            await clock.sleep(criteria.interval)
