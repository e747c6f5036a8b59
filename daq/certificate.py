"""A reference's certificate as the bench file states it: corrections and U at points.

`[instruments.<name>.certificate.<quantity>]` with `k`, optional `dof` and
`points = [{ at, correction, U }]` (correction = true value - indicated value). The
procedures read it to correct the reference and state its uncertainty; the simulators read
the same table to draw the simulated standard's real deviation from it. The format belongs to
the bench file, so it lives in the core with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeGuard

from daq.errors import ConfigError


def _number(value: Any) -> TypeGuard[float]:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True)
class CorrectionTable:
    k: float
    points: tuple[tuple[float, float, float], ...]  # (at, correction, U), strictly increasing `at`
    dof: float = math.inf

    @classmethod
    def parse(cls, table: Any, *, source: str, where: str, example: str = "at = 0.0, correction = 0.0, U = 0.001",
              order: str = "from the lowest value to the highest") -> CorrectionTable:
        """Every field checked; a mistake is a `ConfigError` naming `where` and the fix."""
        fix = f"write k = 2.0 and points = [{{ {example} }}, ...]"
        if not isinstance(table, dict):
            raise ConfigError(source, where, "must be a table", fix)
        k = table.get("k", 2.0)
        if not _number(k) or k <= 0:
            raise ConfigError(source, f"{where}.k", f"expected a coverage factor > 0, got {k!r}", "write k = 2.0")
        dof = table.get("dof", math.inf)
        if isinstance(dof, bool) or not isinstance(dof, int | float) or not dof > 0:
            raise ConfigError(source, f"{where}.dof", f"expected degrees of freedom > 0, got {dof!r}",
                              "leave it out for a certificate stated with k from the normal distribution")
        raw = table.get("points")
        if not isinstance(raw, list) or not raw:
            raise ConfigError(source, f"{where}.points", "missing or empty", fix)
        points = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict):
                raise ConfigError(source, f"{where}.points[{i}]", "must be a table", fix)
            values = []
            for key in ("at", "correction", "U"):
                value = entry.get(key)
                if not _number(value):
                    raise ConfigError(source, f"{where}.points[{i}].{key}", f"expected a number, got {value!r}", fix)
                values.append(float(value))
            if values[2] < 0:
                raise ConfigError(source, f"{where}.points[{i}].U", "must be >= 0", fix)
            points.append((values[0], values[1], values[2]))
        ats = [p[0] for p in points]
        if ats != sorted(ats) or len(set(ats)) != len(ats):
            raise ConfigError(source, f"{where}.points", "points are not in strictly increasing order of at",
                              f"list the certificate points {order}")
        return cls(float(k), tuple(points), float(dof))

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
        """Linear between the bracketing points; along the end segment a little beyond the table."""
        a, b = self._bracket(value)
        if a[0] == b[0]:
            return a[1]
        return a[1] + (b[1] - a[1]) * (value - a[0]) / (b[0] - a[0])

    def standard_uncertainty(self, value: float) -> float:
        """At a certified point its own U; between points the larger U of the two neighbours (a lab does not
        interpolate an uncertainty down); over k."""
        for at, _, expanded in self.points:
            if math.isclose(value, at, rel_tol=1e-9, abs_tol=1e-12):
                return expanded / self.k
        a, b = self._bracket(value)
        return max(a[2], b[2]) / self.k
