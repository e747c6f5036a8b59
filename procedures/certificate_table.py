"""A reference standard's certificate as a table: corrections and expanded uncertainties at points.

`[instruments.<name>.certificate.<quantity>]` with `k` and `points = [{ at, correction, U }]`,
correction = true value - indicated value. Between points the correction is interpolated
linearly and U is the larger of the two neighbours (a lab does not interpolate an uncertainty
down); a little beyond the table (`margin`) the end segment is extended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from daq.bench import Bench
from daq.errors import ConfigError


@dataclass(frozen=True)
class CertificateTable:
    quantity: str
    k: float
    points: tuple[tuple[float, float, float], ...]  # (at, correction, U), sorted by `at`
    dof: float = math.inf

    def covers(self, value: float, margin: float = 0.0) -> bool:
        return self.points[0][0] - margin <= value <= self.points[-1][0] + margin

    def _bracket(self, value: float) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        pts = self.points
        if len(pts) == 1 or value <= pts[0][0]:
            return pts[0], pts[min(1, len(pts) - 1)]
        for a, b in zip(pts, pts[1:], strict=False):
            if value <= b[0]:
                return a, b
        return pts[-2], pts[-1]

    def correction(self, value: float) -> float:
        a, b = self._bracket(value)
        if a[0] == b[0]:
            return a[1]
        return a[1] + (b[1] - a[1]) * (value - a[0]) / (b[0] - a[0])

    def standard_uncertainty(self, value: float) -> float:
        a, b = self._bracket(value)
        return max(a[2], b[2]) / self.k

    @classmethod
    def from_bench(cls, bench: Bench, instrument: str, quantity: str) -> CertificateTable:
        where = f"instruments.{instrument}.certificate.{quantity}"
        fix = "add k = 2.0 and points = [{ at = 0.0, correction = 0.0, U = 0.001 }, ...] from its certificate"
        cert = bench.instruments[instrument].certificate.get(quantity)
        if not isinstance(cert, dict):
            raise ConfigError(bench.source, where, f"the reference has no {quantity} certificate", fix)
        k = cert.get("k", 2.0)
        if isinstance(k, bool) or not isinstance(k, int | float) or k <= 0:
            raise ConfigError(bench.source, f"{where}.k", f"expected a coverage factor > 0, got {k!r}", fix)
        raw = cert.get("points")
        if not isinstance(raw, list) or not raw:
            raise ConfigError(bench.source, f"{where}.points", "missing or empty", fix)
        points = []
        for i, p in enumerate(raw):
            try:
                at, corr, u = float(p["at"]), float(p["correction"]), float(p["U"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(bench.source, f"{where}.points[{i}]", f"needs at, correction and U: {p!r}",
                                  fix) from exc
            if not u > 0:
                raise ConfigError(bench.source, f"{where}.points[{i}].U", f"expected U > 0, got {u!r}", fix)
            points.append((at, corr, u))
        dof = cert.get("dof", math.inf)
        return cls(quantity, float(k), tuple(sorted(points)), float(dof))
