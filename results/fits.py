"""Least-squares calibration curves with the uncertainty of their coefficients and predictions.

A calibration curve is only useful on a certificate with the covariance of its coefficients: the
uncertainty of a correction read off the curve depends on the slope–intercept correlation as much
as on their standard uncertainties (JCGM 100:2008 H.3.4). Every fit here therefore returns the
full covariance and can predict a value with its standard uncertainty.

Models
- ``line``, ``poly2``, ``poly3``: y = a0 + a1 v + a2 v² + a3 v³ with v = x − x0, where the offset
  x0 is chosen by the user (GUM H.3 fits b = y1 + y2 (t − t0) with t0 = 20 °C). Coefficients are
  reported for the offset variable v, as in the GUM.
- ``cvd``: the Callendar–Van Dusen equation of IEC 60751 for platinum resistance thermometers,
  R(t) = R0 (1 + A t + B t² + C (t − 100 °C) t³), the C term only below 0 °C.

Statistics (GUM H.3.3, C.2.18; unweighted when no u_y is given)
- unweighted: covariance = s² (AᵀA)⁻¹ with s² = Σ r² / (n − p): the scatter of the data about the
  curve is the only information about the observations' uncertainty.
- weighted (u_y given): weights 1/u_y², covariance = (AᵀWA)⁻¹ not rescaled, because the u_y are
  taken as known; χ² = Σ (r/u_y)² and the Birge ratio √(χ²/(n − p)) tell whether the stated u_y
  explain the scatter (a ratio well above 1 says they do not).

Numerics: the normal equations square the condition number, so they are never formed. The
design matrix is built on a centred and scaled variable, its columns are equilibrated, and it is
solved by QR; the covariance comes from R⁻¹. Coefficients for the user's offset variable are
then obtained by an exact linear change of basis, and so is their covariance.

Bad input (mismatched lengths, too few points, non-positive u_y, an unknown model, non-numbers)
raises `daq.errors.ConfigError` naming the field and the fix, never a NaN in the output.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
from scipy import linalg

from daq.errors import ConfigError
from daq.units import parse_unit

FloatArray = npt.NDArray[np.float64]
Samples = Sequence[float] | npt.NDArray[Any]
"""Measured values: a list or any numeric numpy array (converted and checked element by element)."""
CurveModel = Literal["line", "poly2", "poly3", "cvd"]
POLYNOMIAL_DEGREE: dict[str, int] = {"line": 1, "poly2": 2, "poly3": 3}

IEC_60751_A = 3.9083e-3
"""Nominal A of IEC 60751:2008 (per °C) for industrial platinum resistance thermometers."""
IEC_60751_B = -5.775e-7
"""Nominal B of IEC 60751:2008 (per °C²)."""
IEC_60751_C = -4.183e-12
"""Nominal C of IEC 60751:2008 (per °C⁴), used only below 0 °C."""
IEC_60751_RANGE = (-200.0, 850.0)
"""Temperature range (°C) over which IEC 60751 defines the Callendar–Van Dusen equation."""

_DEFAULT_FIELDS = ("x", "y", "u_y")
_CVD_FIELDS = ("t", "r", "u_r")
_MAX_CONDITION = 1e10
"""Refuse a fit whose equilibrated design matrix is worse conditioned than this: beyond it the
coefficients would keep fewer than about six significant digits in double precision."""


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitCoefficient:
    """One fitted coefficient with its standard uncertainty, as a certificate lists it."""

    name: str
    value: float
    u: float


@dataclass(frozen=True)
class Prediction:
    """The curve's value at x, with two standard uncertainties for two different questions.

    ``u_mean`` is the uncertainty of the curve itself at x (from the coefficient covariance): use
    it for a correction read off the curve. ``u_new`` adds the scatter of one new observation
    about the curve: use it to judge whether a single new reading is consistent with the curve.
    """

    x: float
    y: float
    u_mean: float
    u_new: float


@dataclass(frozen=True)
class InverseEstimate:
    """x such that curve(x) = y, found by Newton's method, with u(x) by the GUM law of propagation.

    u(x)² = (u(y)² + u_curve(x)²) / f'(x)²: the uncertainty of the indication y and of the curve
    at the solution, both turned into x by the local slope.
    """

    y: float
    x: float
    u_x: float


# --------------------------------------------------------------------------------------------
# Input validation, shared by the Python API and the JSON front end
# --------------------------------------------------------------------------------------------


def _number(value: Any, *, source: str, field: str) -> float:
    """A finite float from user input; a bool, string, None or NaN is refused with the field named."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(source, field, f"{value!r} is not a number", "write a plain number, without quotes")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(source, field, f"{value!r} is not a finite number", "give a finite number")
    return number


def _numbers(values: Any, *, source: str, field: str) -> FloatArray:
    """A 1-D float array from a list of numbers, naming the first bad element by its index."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise ConfigError(source, field, f"expected a list of numbers, got {type(values).__name__}",
                          f'write e.g. "{field}": [1.0, 2.0, 3.0]')
    items = list(values.tolist() if isinstance(values, np.ndarray) else values)
    return np.array([_number(v, source=source, field=f"{field}[{i}]") for i, v in enumerate(items)], dtype=float)


def _samples(
    x: Any, y: Any, u_y: Any, *, source: str, fields: tuple[str, str, str]
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """Validated x, y and optional u_y arrays of equal length, u_y strictly positive."""
    x_name, y_name, u_name = fields
    xs = _numbers(x, source=source, field=x_name)
    ys = _numbers(y, source=source, field=y_name)
    if len(ys) != len(xs):
        raise ConfigError(source, y_name, f"has {len(ys)} values but {x_name} has {len(xs)}",
                          f"give one {y_name} value per {x_name} value")
    if u_y is None:
        return xs, ys, None
    us = _numbers(u_y, source=source, field=u_name)
    if len(us) != len(xs):
        raise ConfigError(source, u_name, f"has {len(us)} values but {x_name} has {len(xs)}",
                          f"give one standard uncertainty per point, or leave {u_name} out for an unweighted fit")
    for i, u in enumerate(us):
        if u <= 0:
            raise ConfigError(source, f"{u_name}[{i}]", f"standard uncertainty must be > 0, got {u!r}",
                              f"give a positive standard uncertainty, or leave {u_name} out for an unweighted fit")
    return xs, ys, us


def _require_points(n: int, parameters: int, model: str, *, source: str, field: str) -> None:
    """At least one degree of freedom, so that the residual scatter (and χ²) mean something."""
    if n < parameters + 1:
        raise ConfigError(
            source, field,
            f"{n} points for model {model} with {parameters} coefficients: at least {parameters + 1} are "
            "needed so that the residual scatter has a degree of freedom",
            "add calibration points or choose a model with fewer coefficients",
        )


# --------------------------------------------------------------------------------------------
# The linear least-squares core
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _LinearSolution:
    beta: FloatArray
    covariance: FloatArray
    """(AᵀWA)⁻¹: unscaled; the caller scales it by s² for an unweighted fit."""
    residuals: FloatArray


def _solve_linear(
    design: FloatArray, y: FloatArray, u_y: FloatArray | None, *, source: str, field: str, needed: str
) -> _LinearSolution:
    """Weighted linear least squares by QR of the column-equilibrated, row-weighted design matrix.

    Column equilibration makes the solution independent of the units of each basis function
    (t and t³ differ by six orders of magnitude in a CVD fit); QR avoids squaring the condition
    number as the normal equations would. A rank-deficient or hopelessly ill-conditioned design
    is a user error (too few distinct x values), reported as such.
    """
    weights = np.ones_like(y) if u_y is None else 1.0 / u_y
    weighted = design * weights[:, None]
    scale = np.linalg.norm(weighted, axis=0)
    if np.any(scale == 0):
        raise ConfigError(source, field, f"the points do not determine every coefficient ({needed})",
                          "add calibration points that spread over the range")
    equilibrated = weighted / scale
    q, r = np.linalg.qr(equilibrated, mode="reduced")
    singular = np.linalg.svd(r, compute_uv=False)
    if singular[-1] <= singular[0] / _MAX_CONDITION:
        raise ConfigError(source, field, f"the points do not determine every coefficient ({needed})",
                          "add calibration points at more distinct values, or choose a model with fewer coefficients")
    z = linalg.solve_triangular(r, q.T @ (y * weights))
    r_inv = linalg.solve_triangular(r, np.eye(r.shape[0]))
    beta = z / scale
    covariance = (r_inv @ r_inv.T) / np.outer(scale, scale)
    covariance = 0.5 * (covariance + covariance.T)
    return _LinearSolution(beta=beta, covariance=covariance, residuals=y - design @ beta)


def _correlation(covariance: FloatArray) -> FloatArray:
    """Correlation matrix; a coefficient with zero variance (an exact fit) is uncorrelated, not NaN."""
    u = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    p = len(u)
    result = np.eye(p)
    for i in range(p):
        for j in range(p):
            if i != j and u[i] > 0 and u[j] > 0:
                result[i, j] = float(np.clip(covariance[i, j] / (u[i] * u[j]), -1.0, 1.0))
    return result


# --------------------------------------------------------------------------------------------
# Fitted curves
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CurveFit(ABC):
    """What every fitted calibration curve reports, whatever its equation."""

    model: str
    names: tuple[str, ...]
    values: FloatArray
    covariance: FloatArray
    x: FloatArray
    y: FloatArray
    u_y: FloatArray | None
    residuals: FloatArray
    """y − curve(x), in the unit of y."""
    residual_sd: float
    """√(Σ r² / dof), in the unit of y: the observed scatter about the curve (s of GUM H.3.3)."""
    dof: int
    chi2: float | None
    """Σ (r/u_y)²; None for an unweighted fit."""
    birge_ratio: float | None
    """√(χ²/dof); None for an unweighted fit."""

    @property
    def weighted(self) -> bool:
        return self.u_y is not None

    @property
    def uncertainties(self) -> FloatArray:
        return np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))

    @property
    def correlation(self) -> FloatArray:
        return _correlation(self.covariance)

    @property
    def coefficients(self) -> tuple[FitCoefficient, ...]:
        return tuple(
            FitCoefficient(name, float(v), float(u))
            for name, v, u in zip(self.names, self.values, self.uncertainties, strict=True)
        )

    def coefficient(self, name: str) -> FitCoefficient:
        """One coefficient by name (``a0`` ... ``a3``, or ``R0``, ``A``, ``B``, ``C``)."""
        for c in self.coefficients:
            if c.name == name:
                return c
        raise KeyError(f"no coefficient {name!r}; this fit has {', '.join(self.names)}")

    @abstractmethod
    def value(self, x: float) -> float:
        """The curve at x."""

    @abstractmethod
    def derivative(self, x: float) -> float:
        """dy/dx of the curve at x, for Newton's method and for u(x) of an inverse."""

    @abstractmethod
    def _gradient(self, x: float) -> tuple[FloatArray, FloatArray]:
        """(∂y/∂θ, cov θ) for the parameterisation best conditioned for propagation at x."""

    @property
    @abstractmethod
    def equation(self) -> str:
        """The fitted equation in words, so a printed result says what a0, A, ... multiply."""

    def u_curve(self, x: float) -> float:
        """Standard uncertainty of the curve at x: √(g C gᵀ), g the sensitivities to the coefficients."""
        g, cov = self._gradient(x)
        return math.sqrt(max(float(g @ cov @ g), 0.0))

    def predict(self, x: float, *, u_observation: float | None = None) -> Prediction:
        """The curve at x with u_mean (the curve) and u_new (a new observation at x).

        u_new² = u_mean² + u_obs², where u_obs is the residual standard deviation unless the caller
        knows the new observation's own standard uncertainty and passes it: in a weighted fit the
        residual scatter mixes points of different u_y, so the stated u of the new reading is better.
        """
        xv = _number(x, source="<input>", field="x")
        u_mean = self.u_curve(xv)
        u_obs = self.residual_sd if u_observation is None else float(u_observation)
        if not math.isfinite(u_obs) or u_obs < 0:
            raise ValueError(f"u_observation must be finite and >= 0, got {u_observation!r}")
        return Prediction(x=xv, y=self.value(xv), u_mean=u_mean, u_new=math.hypot(u_mean, u_obs))

    def _inverse_start(self, y: float) -> float:
        """Start Newton at the calibration point whose fitted value is nearest to y."""
        fitted = self.y - self.residuals
        return float(self.x[int(np.argmin(np.abs(fitted - y)))])

    def solve_for_x(self, y: float, *, u_y: float = 0.0, x_start: float | None = None) -> InverseEstimate:
        """x with curve(x) = y by Newton's method, and its standard uncertainty.

        Reading a calibrated instrument runs the curve backwards (indication -> quantity), so the
        inverse needs the same care as the forward curve: it converges to the root nearest the
        start (by default the calibration point with the nearest fitted value) and refuses a flat
        spot instead of returning a NaN.
        """
        target = float(y)
        if not math.isfinite(target) or not math.isfinite(u_y) or u_y < 0:
            raise ValueError(f"y must be finite and u_y finite and >= 0, got y={y!r}, u_y={u_y!r}")
        x = self._inverse_start(target) if x_start is None else float(x_start)
        for _ in range(100):
            slope = self.derivative(x)
            if slope == 0 or not math.isfinite(slope):
                raise ValueError(f"the curve is flat near x = {x!r}: cannot invert it for y = {target!r}")
            step = (self.value(x) - target) / slope
            x -= step
            if not math.isfinite(x):
                raise ValueError(f"Newton's method diverged inverting the curve for y = {target!r}")
            if abs(step) <= 1e-12 * max(1.0, abs(x)):
                break
        else:
            raise ValueError(f"Newton's method did not converge inverting the curve for y = {target!r}")
        u_x = math.hypot(u_y, self.u_curve(x)) / abs(self.derivative(x))
        return InverseEstimate(y=target, x=x, u_x=u_x)

    def to_json(self) -> dict[str, Any]:
        """Plain floats and lists, ready for json.dumps (no NaN: absent statistics are left out)."""
        out: dict[str, Any] = {
            "model": self.model,
            "equation": self.equation,
            "n": len(self.x),
            "weighted": self.weighted,
            "coefficients": [{"name": c.name, "value": c.value, "u": c.u} for c in self.coefficients],
            "covariance": self.covariance.tolist(),
            "correlation": self.correlation.tolist(),
            "residual_sd": float(self.residual_sd),
            "dof": int(self.dof),
            "residuals": self.residuals.tolist(),
        }
        if self.chi2 is not None and self.birge_ratio is not None:
            out["chi2"] = float(self.chi2)
            out["birge_ratio"] = float(self.birge_ratio)
        return out


def _statistics(
    residuals: FloatArray, u_y: FloatArray | None, dof: int
) -> tuple[float, float | None, float | None]:
    """(residual_sd, χ², Birge ratio): the scatter always; χ² and Birge only when u_y are stated."""
    residual_sd = math.sqrt(float(residuals @ residuals) / dof)
    if u_y is None:
        return residual_sd, None, None
    chi2 = float(np.sum((residuals / u_y) ** 2))
    return residual_sd, chi2, math.sqrt(chi2 / dof)


@dataclass(frozen=True, eq=False)
class PolynomialFit(CurveFit):
    """y = a0 + a1 v + ... + a_d v^d with v = x − x_offset.

    The fit itself is done on z = (x − centre)/half_range, where the basis is well conditioned;
    predictions are propagated in that basis (``_b``, ``_cov_b``) and the reported coefficients
    are the exact change of basis to v. Both give the same numbers; the first loses fewer digits
    when the offset is far from the data.
    """

    degree: int = 1
    x_offset: float = 0.0
    _centre: float = field(default=0.0, repr=False)
    _half_range: float = field(default=1.0, repr=False)
    _b: FloatArray = field(default_factory=lambda: np.zeros(0), repr=False)
    _cov_b: FloatArray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)

    def _z(self, x: float) -> float:
        return (x - self._centre) / self._half_range

    def value(self, x: float) -> float:
        return float(np.polynomial.polynomial.polyval(self._z(float(x)), self._b))

    def derivative(self, x: float) -> float:
        db = np.polynomial.polynomial.polyder(self._b)
        return float(np.polynomial.polynomial.polyval(self._z(float(x)), db)) / self._half_range

    def _gradient(self, x: float) -> tuple[FloatArray, FloatArray]:
        return self._z(float(x)) ** np.arange(self.degree + 1, dtype=float), self._cov_b

    @property
    def equation(self) -> str:
        if self.x_offset == 0:
            v = "x"
        else:
            v = f"(x - {self.x_offset:g})" if self.x_offset > 0 else f"(x + {-self.x_offset:g})"
        terms = ["a0"] + [f"a{k}*{v}" + (f"^{k}" if k > 1 else "") for k in range(1, self.degree + 1)]
        return "y = " + " + ".join(terms)

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["x_offset"] = float(self.x_offset)
        return out


def _change_of_basis(degree: int, shift: float, half_range: float) -> FloatArray:
    """T with a = T b, for Σ b_k z^k = Σ a_j v^j, z = (v − shift)/half_range.

    Expanding ((v − d)/h)^k binomially: a_j = Σ_{k≥j} b_k C(k, j) (−d)^(k−j) h^(−k). Linear and
    exact, so the covariance of a is T cov(b) Tᵀ with no approximation.
    """
    p = degree + 1
    t = np.zeros((p, p))
    for k in range(p):
        for j in range(k + 1):
            t[j, k] = math.comb(k, j) * (-shift) ** (k - j) / half_range**k
    return t


def fit_polynomial(
    x: Samples,
    y: Samples,
    degree: int,
    *,
    u_y: Samples | None = None,
    x_offset: float = 0.0,
    source: str = "<input>",
    fields: tuple[str, str, str] = _DEFAULT_FIELDS,
) -> PolynomialFit:
    """Least-squares polynomial of degree 1–3 in v = x − x_offset, unweighted or weighted.

    ``fields`` names x, y and u_y in error messages, so a file front end can report its own keys.
    """
    if degree not in (1, 2, 3):
        raise ConfigError(source, "model", f"polynomial degree must be 1, 2 or 3, got {degree!r}",
                          "use line, poly2 or poly3")
    model = {1: "line", 2: "poly2", 3: "poly3"}[degree]
    xs, ys, us = _samples(x, y, u_y, source=source, fields=fields)
    offset = _number(x_offset, source=source, field="x_offset")
    p = degree + 1
    _require_points(len(xs), p, model, source=source, field=fields[0])

    centre = float(np.mean(xs))
    half_range = float(np.max(np.abs(xs - centre))) or 1.0
    z = (xs - centre) / half_range
    design = np.vander(z, p, increasing=True)
    solution = _solve_linear(design, ys, us, source=source, field=fields[0],
                             needed=f"{model} needs at least {p} distinct {fields[0]} values")
    dof = len(xs) - p
    residual_sd, chi2, birge = _statistics(solution.residuals, us, dof)
    cov_b = solution.covariance * (residual_sd**2 if us is None else 1.0)

    # z = (x - centre)/h = (v - (centre - offset))/h, so the shift in v is centre - offset.
    transform = _change_of_basis(degree, centre - offset, half_range)
    values = transform @ solution.beta
    covariance = transform @ cov_b @ transform.T
    return PolynomialFit(
        model=model,
        names=tuple(f"a{k}" for k in range(p)),
        values=values,
        covariance=0.5 * (covariance + covariance.T),
        x=xs,
        y=ys,
        u_y=us,
        residuals=solution.residuals,
        residual_sd=residual_sd,
        dof=dof,
        chi2=chi2,
        birge_ratio=birge,
        degree=degree,
        x_offset=offset,
        _centre=centre,
        _half_range=half_range,
        _b=solution.beta,
        _cov_b=cov_b,
    )


def fit_line(
    x: Samples,
    y: Samples,
    *,
    u_y: Samples | None = None,
    x_offset: float = 0.0,
    source: str = "<input>",
) -> PolynomialFit:
    """Straight line y = a0 + a1 (x − x_offset): GUM H.3 is fit_line(t, b, x_offset=20)."""
    return fit_polynomial(x, y, 1, u_y=u_y, x_offset=x_offset, source=source)


# --------------------------------------------------------------------------------------------
# Callendar–Van Dusen (IEC 60751)
# --------------------------------------------------------------------------------------------


def _cvd_c_term(t: float) -> float:
    """(t − 100) t³ below 0 °C, zero at and above it: where IEC 60751 applies C."""
    return (t - 100.0) * t**3 if t < 0 else 0.0


def resistance_ratio(t: float, a: float = IEC_60751_A, b: float = IEC_60751_B, c: float = IEC_60751_C) -> float:
    """W(t) = R(t)/R0 = 1 + A t + B t² (+ C (t − 100) t³ below 0 °C); nominal IEC 60751 by default."""
    return 1.0 + a * t + b * t * t + c * _cvd_c_term(t)


def cvd_resistance(
    t: float, r0: float = 100.0, a: float = IEC_60751_A, b: float = IEC_60751_B, c: float = IEC_60751_C
) -> float:
    """R(t) = R0 W(t); a Pt100 with nominal coefficients by default."""
    return r0 * resistance_ratio(t, a, b, c)


def _cvd_ratio_slope(t: float, a: float, b: float, c: float) -> float:
    """dW/dt, for Newton's method and the sensitivity of t to R."""
    return a + 2.0 * b * t + (c * (4.0 * t**3 - 300.0 * t**2) if t < 0 else 0.0)


def _cvd_quadratic_start(w: float, a: float, b: float) -> float:
    """The exact root of 1 + A t + B t² = W: the answer above 0 °C, a close start below it."""
    if b == 0:
        return (w - 1.0) / a
    discriminant = a * a - 4.0 * b * (1.0 - w)
    if discriminant < 0:
        raise ValueError(f"W = {w!r} is beyond the maximum of the Callendar–Van Dusen curve")
    return (-a + math.sqrt(discriminant)) / (2.0 * b)


def cvd_temperature(
    r: float, r0: float = 100.0, a: float = IEC_60751_A, b: float = IEC_60751_B, c: float = IEC_60751_C
) -> float:
    """t(R) by Newton's method on W(t) = R/R0 from the quadratic root; nominal Pt100 by default.

    Above 0 °C the quadratic root is exact; below 0 °C the C term makes the equation quartic,
    and Newton converges from the quadratic root in a few steps (|C t⁴| is at most ~0.2 % of W).
    """
    if not (math.isfinite(r) and math.isfinite(r0)) or r0 <= 0:
        raise ValueError(f"R and R0 must be finite and R0 > 0, got R={r!r}, R0={r0!r}")
    w = r / r0
    t = _cvd_quadratic_start(w, a, b)
    for _ in range(100):
        slope = _cvd_ratio_slope(t, a, b, c)
        if slope == 0:
            raise ValueError(f"the Callendar–Van Dusen curve is flat at t = {t!r}")
        step = (resistance_ratio(t, a, b, c) - w) / slope
        t -= step
        if abs(step) <= 1e-12 * max(1.0, abs(t)):
            return t
    raise ValueError(f"Newton's method did not converge for R = {r!r}")


@dataclass(frozen=True, eq=False)
class CallendarVanDusenFit(CurveFit):
    """A fitted R(t) = R0 (1 + A t + B t² + C (t − 100) t³): coefficients R0, A, B and C if fitted.

    R0 is a coefficient either way: fitted, or known (then its u is the stated u(R0) and its
    covariance with A, B, C comes from propagating u(R0) through the fit), so predictions and
    inverses always carry the whole uncertainty.
    """

    r0_fitted: bool = True

    @property
    def has_c(self) -> bool:
        return "C" in self.names

    def _coefficients(self) -> tuple[float, float, float, float]:
        v = dict(zip(self.names, (float(x) for x in self.values), strict=True))
        return v["R0"], v["A"], v["B"], v.get("C", 0.0)

    def _check_range(self, t: float) -> None:
        if t < 0 and not self.has_c:
            raise ValueError(
                f"t = {t!r} °C is below 0 °C but C was not fitted (no calibration point below 0 °C)"
            )

    def value(self, x: float) -> float:
        t = float(x)
        self._check_range(t)
        r0, a, b, c = self._coefficients()
        return cvd_resistance(t, r0, a, b, c)

    def derivative(self, x: float) -> float:
        t = float(x)
        r0, a, b, c = self._coefficients()
        return r0 * _cvd_ratio_slope(t, a, b, c)

    def _gradient(self, x: float) -> tuple[FloatArray, FloatArray]:
        t = float(x)
        self._check_range(t)
        r0, a, b, c = self._coefficients()
        g = [resistance_ratio(t, a, b, c), r0 * t, r0 * t * t]
        if self.has_c:
            g.append(r0 * _cvd_c_term(t))
        return np.array(g), self.covariance

    def resistance_ratio(self, t: float) -> float:
        """W(t) = R(t)/R0 with the fitted A, B, C."""
        self._check_range(float(t))
        _, a, b, c = self._coefficients()
        return resistance_ratio(float(t), a, b, c)

    def _inverse_start(self, y: float) -> float:
        r0, a, b, _ = self._coefficients()
        return _cvd_quadratic_start(y / r0, a, b)

    def temperature(self, r: float, *, u_r: float = 0.0) -> InverseEstimate:
        """t(R) with u(t) from u(R) and the covariance of R0, A, B, C (Newton from the quadratic root)."""
        estimate = self.solve_for_x(r, u_y=u_r)
        self._check_range(estimate.x)
        return estimate

    @property
    def equation(self) -> str:
        tail = " + C*(t - 100)*t^3 [t < 0 °C]" if self.has_c else ""
        return f"R = R0*(1 + A*t + B*t^2{tail})"

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["r0_fitted"] = self.r0_fitted
        return out


def fit_callendar_van_dusen(
    t: Samples,
    r: Samples,
    *,
    u_r: Samples | None = None,
    r0: float | None = None,
    u_r0: float = 0.0,
    source: str = "<input>",
    fields: tuple[str, str, str] = _CVD_FIELDS,
) -> CallendarVanDusenFit:
    """Fit A, B (and C when there are points below 0 °C), and R0 unless it is given.

    R0 fitted: R = R0 + (R0 A) t + (R0 B) t² + (R0 C)(t − 100) t³ is linear in β = R0·(1, A, B, C),
    solved by least squares, then A = β1/β0 ... with the covariance by the Jacobian (first order,
    as the GUM does; the relative uncertainty of R0 is tiny).
    R0 known: W − 1 = A t + B t² + C (t − 100) t³ with W = R/R0 is linear in A, B, C; u(R0) enters
    through the sensitivity of the estimates to R0 (every W shares it, so it correlates them).
    """
    ts, rs, us = _samples(t, r, u_r, source=source, fields=fields)
    t_name, r_name, _ = fields
    low, high = IEC_60751_RANGE
    for i, value in enumerate(ts):
        if not low <= value <= high:
            raise ConfigError(source, f"{t_name}[{i}]",
                              f"{value!r} °C is outside the IEC 60751 range {low:g}..{high:g} °C",
                              "the Callendar–Van Dusen equation is defined only from -200 °C to 850 °C")
    for i, value in enumerate(rs):
        if value <= 0:
            raise ConfigError(source, f"{r_name}[{i}]", f"a resistance must be > 0 ohm, got {value!r}",
                              "give the measured resistances in ohm")
    u_r0_value = _number(u_r0, source=source, field="u_r0")
    if u_r0_value < 0:
        raise ConfigError(source, "u_r0", f"standard uncertainty must be >= 0, got {u_r0!r}", "give u(R0) in ohm")
    if r0 is None and u_r0_value > 0:
        raise ConfigError(source, "u_r0", "u_r0 is given but r0 is not",
                          "give r0 with u_r0, or leave both out to fit R0")

    has_c = bool(np.any(ts < 0))
    c_column = np.array([_cvd_c_term(v) for v in ts])
    columns = [ts, ts**2] + ([c_column] if has_c else [])
    shape_names = ["A", "B"] + (["C"] if has_c else [])
    fitted = len(shape_names) + (1 if r0 is None else 0)
    _require_points(len(ts), fitted, "cvd", source=source, field=t_name)
    needed = "cvd needs points at enough distinct temperatures" + (", R0 included" if r0 is None else "")

    if r0 is None:
        design = np.column_stack([np.ones_like(ts), *columns])
        solution = _solve_linear(design, rs, us, source=source, field=t_name, needed=needed)
        dof = len(ts) - fitted
        residual_sd, chi2, birge = _statistics(solution.residuals, us, dof)
        cov_beta = solution.covariance * (residual_sd**2 if us is None else 1.0)
        beta = solution.beta
        r0_hat = float(beta[0])
        if r0_hat <= 0:
            raise ConfigError(source, r_name, f"the fitted R0 is {r0_hat!r} ohm, not positive",
                              "check that t is in °C and R in ohm")
        values = np.concatenate([[r0_hat], beta[1:] / r0_hat])
        jacobian = np.zeros((len(beta), len(beta)))
        jacobian[0, 0] = 1.0
        for i in range(1, len(beta)):
            jacobian[i, 0] = -beta[i] / r0_hat**2
            jacobian[i, i] = 1.0 / r0_hat
        covariance = jacobian @ cov_beta @ jacobian.T
        residuals = solution.residuals
    else:
        r0_value = _number(r0, source=source, field="r0")
        if r0_value <= 0:
            raise ConfigError(source, "r0", f"R0 must be > 0 ohm, got {r0!r}", "give R0 in ohm, e.g. 100")
        design = np.column_stack(columns)
        w = rs / r0_value
        u_w = None if us is None else us / r0_value
        solution = _solve_linear(design, w - 1.0, u_w, source=source, field=t_name, needed=needed)
        dof = len(ts) - fitted
        residuals = solution.residuals * r0_value
        residual_sd, chi2, birge = _statistics(residuals, us, dof)
        cov_shape = solution.covariance * ((residual_sd / r0_value) ** 2 if us is None else 1.0)
        # Sensitivity of the estimates to R0: θ = L (R/R0 − 1) with L the linear estimator, so
        # ∂θ/∂R0 = L (−R/R0²). L = (AᵀWA)⁻¹ AᵀW, W = diag(1/u_W²) or the identity.
        weights = np.ones_like(w) if u_w is None else 1.0 / u_w**2
        estimator = solution.covariance @ (design.T * weights)
        sensitivity = estimator @ (-rs / r0_value**2)
        p = len(shape_names) + 1
        covariance = np.zeros((p, p))
        covariance[0, 0] = u_r0_value**2
        covariance[0, 1:] = covariance[1:, 0] = sensitivity * u_r0_value**2
        covariance[1:, 1:] = cov_shape + np.outer(sensitivity, sensitivity) * u_r0_value**2
        values = np.concatenate([[r0_value], solution.beta])

    return CallendarVanDusenFit(
        model="cvd",
        names=("R0", *shape_names),
        values=values,
        covariance=0.5 * (covariance + covariance.T),
        x=ts,
        y=rs,
        u_y=us,
        residuals=residuals,
        residual_sd=residual_sd,
        dof=dof,
        chi2=chi2,
        birge_ratio=birge,
        r0_fitted=r0 is None,
    )


# --------------------------------------------------------------------------------------------
# The `daq uncertainty fit DATA.json` contract
# --------------------------------------------------------------------------------------------

_COMMON_KEYS = {"x", "y", "u_y", "model", "x_offset", "predict", "x_unit", "y_unit"}
_CVD_KEYS = {"r0", "u_r0"}


def _require_list_or_absent(data: Mapping[str, Any], key: str, *, source: str) -> Any:
    value = data.get(key)
    if value is not None and not isinstance(value, list):
        raise ConfigError(source, key, f"expected a list of numbers, got {type(value).__name__}",
                          f'write e.g. "{key}": [1.0, 2.0, 3.0]')
    return value


def _all_finite(node: Any) -> bool:
    if isinstance(node, float):
        return math.isfinite(node)
    if isinstance(node, dict):
        return all(_all_finite(v) for v in node.values())
    if isinstance(node, list):
        return all(_all_finite(v) for v in node)
    return True


def fit_json(data: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Fit a calibration curve described by a JSON object and return a JSON-ready result.

    Input: ``{"x": [...], "y": [...], "u_y": [...] (optional), "model": "line" | "poly2" |
    "poly3" | "cvd", "x_offset": 20 (optional, polynomials), "predict": [30] (optional),
    "r0", "u_r0" (optional, cvd: a known R0 and its standard uncertainty), "x_unit", "y_unit"
    (optional, echoed)}``. For cvd, x is t in °C and y is R in ohm.

    Output: model, equation, coefficients [{name, value, u}], covariance, correlation,
    residual_sd, dof, residuals, chi2 and birge_ratio when u_y is given, and predictions
    [{x, y, u_mean, u_new}]. Unknown keys are refused, so a misspelt "u_y" cannot silently turn a
    weighted fit into an unweighted one.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(source, "(top level)", f"expected a JSON object, got {type(data).__name__}",
                          'write {"x": [...], "y": [...], "model": "line"}')
    model = data.get("model")
    if model is None:
        raise ConfigError(source, "model", "missing", f"add \"model\": one of {', '.join(get_args(CurveModel))}")
    if model not in get_args(CurveModel):
        raise ConfigError(source, "model", f"unknown model {model!r}",
                          f"use one of {', '.join(get_args(CurveModel))}")
    allowed = _COMMON_KEYS | (_CVD_KEYS if model == "cvd" else set())
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        extra = " (r0 and u_r0 apply to model cvd only)" if set(unknown) & _CVD_KEYS else ""
        raise ConfigError(source, unknown[0], f"unknown key{extra}", f"use only {', '.join(sorted(allowed))}")
    for key in ("x", "y"):
        if key not in data:
            raise ConfigError(source, key, "missing", f'add "{key}": a list of numbers')
    x = _require_list_or_absent(data, "x", source=source)
    y = _require_list_or_absent(data, "y", source=source)
    u_y = _require_list_or_absent(data, "u_y", source=source)
    predict = _require_list_or_absent(data, "predict", source=source)
    xs, ys, us = _samples(x, y, u_y, source=source, fields=_DEFAULT_FIELDS)
    predictions_x = [] if predict is None else list(_numbers(predict, source=source, field="predict"))
    units = {}
    for key in ("x_unit", "y_unit"):
        if key in data:
            text = data[key]
            if not isinstance(text, str):
                raise ConfigError(source, key, f"expected a unit name, got {text!r}", 'write e.g. "degC" or "ohm"')
            parse_unit(text, source=source, field=key)
            units[key] = text

    fit: CurveFit
    if model == "cvd":
        if "x_offset" in data and _number(data["x_offset"], source=source, field="x_offset") != 0:
            raise ConfigError(source, "x_offset", "the Callendar–Van Dusen equation has no x offset",
                              "remove x_offset for model cvd (t is in °C from 0 °C)")
        cvd_fit = fit_callendar_van_dusen(xs, ys, u_r=us, r0=data.get("r0"), u_r0=data.get("u_r0", 0.0),
                                          source=source, fields=_DEFAULT_FIELDS)
        for i, t in enumerate(predictions_x):
            if t < 0 and not cvd_fit.has_c:
                raise ConfigError(source, f"predict[{i}]",
                                  f"{t:g} °C is below 0 °C but C was not fitted (no calibration point below 0 °C)",
                                  "add calibration points below 0 °C or predict only at and above 0 °C")
        fit = cvd_fit
    else:
        fit = fit_polynomial(xs, ys, POLYNOMIAL_DEGREE[model], u_y=us, x_offset=data.get("x_offset", 0.0),
                             source=source, fields=_DEFAULT_FIELDS)

    out = fit.to_json()
    out.update(units)
    out["predictions"] = [
        {"x": p.x, "y": p.y, "u_mean": p.u_mean, "u_new": p.u_new} for p in (fit.predict(v) for v in predictions_x)
    ]
    if not _all_finite(out):
        raise ConfigError(source, "x", "the fit produced non-finite numbers (the problem is too ill-conditioned)",
                          "rescale x, set x_offset near the middle of the data, or choose a lower-degree model")
    return out
