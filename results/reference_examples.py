"""The published examples the software is validated against, with their published answers.

ISO/IEC 17025 7.11.2 and the laboratory's "software validation" SOP ask that the software
agree with the manual calculation. Each example here is a calculation published with its
answer; `results.validation` runs them and compares digit for digit. Sources:

- GUM: JCGM 100:2008, Annex H (H.1 end gauge, H.2 simultaneous R, X, Z, H.3 thermometer).
  The data tables and answers are also reproduced in the GTC documentation (MSLNZ, "GUM H1",
  "GUM H2", "GUM H3" examples), which is where they were checked.
- JCGM 101:2008 clause 9.2 (additive model, Monte Carlo), Tables 2 and 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Expected:
    """A published number, as printed: its digits fix the tolerance (half a unit in the last digit)."""

    quantity: str
    published: str
    unit: str = ""
    tolerance: float | None = None  # overrides the digit rule (Monte Carlo: stochastic)
    note: str = ""

    @property
    def value(self) -> float:
        return float(self.published)

    @property
    def allowed(self) -> float:
        if self.tolerance is not None:
            return self.tolerance
        text = self.published.lstrip("+-")
        decimals = len(text.split(".")[1]) if "." in text else 0
        return 0.5 * 10.0 ** (-decimals) * (1 + 1e-9)


@dataclass(frozen=True)
class ReferenceExample:
    name: str
    source: str
    kind: str  # "gum", "fit", "mc"
    data: dict[str, Any]
    expected: tuple[Expected, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


GUM_H1 = ReferenceExample(
    name="GUM H.1 end-gauge calibration",
    source="JCGM 100:2008 H.1, Table H.1 (first-order; nu_eff truncated as in G.6.4)",
    kind="gum",
    data={
        "outputs": {"l": "ls + d - ls*(da*theta + as_*dtheta)"},
        "inputs": {
            "ls": {"value": 50000623.6, "u": 25, "dof": 18, "unit": "nm"},
            "d": {"value": 215, "u": 9.7, "dof": 25.6, "unit": "nm"},
            "da": {"value": 0, "distribution": "rectangular", "half_width": 1e-6, "dof": 50, "unit": "1/K"},
            "theta": {"value": -0.1, "u": 0.41, "unit": "K"},
            "as_": {"value": 11.5e-6, "distribution": "rectangular", "half_width": 2e-6, "unit": "1/K"},
            "dtheta": {"value": 0, "distribution": "rectangular", "half_width": 0.05, "dof": 2, "unit": "K"},
        },
        "coverage": 0.99,
        "gum": {"truncate_dof": True},
    },
    expected=(
        Expected("l", "50000838", "nm", tolerance=1.0,
                 note="the GUM prints 50.000 838 mm for l_s + d = 50 000 838.6 nm (cut, not rounded)"),
        Expected("u(l)", "32", "nm"),
        Expected("nu_eff(l)", "16", tolerance=1.0, note="16.7 truncated to 16; we compute 16.76"),
        Expected("k99", "2.92"),
        Expected("contribution ls", "25", "nm"),
        Expected("contribution d", "9.7", "nm"),
        Expected("contribution da", "2.9", "nm"),
        Expected("contribution dtheta", "16.6", "nm"),
    ),
    notes=("U99 = 93 nm in the GUM is 2.92 x the rounded 32 nm; from the unrounded u_c it is 92.5 nm.",),
)

GUM_H2 = ReferenceExample(
    name="GUM H.2 simultaneous resistance, reactance and impedance",
    source="JCGM 100:2008 H.2, Tables H.2 and H.3 (approach 1: means, s/sqrt(n), correlations from the data)",
    kind="gum",
    data={
        "outputs": {"R": "V/I*cos(phi)", "X": "V/I*sin(phi)", "Z": "V/I"},
        "inputs": {
            "V": {"samples": [5.007, 4.994, 5.005, 4.990, 4.999], "unit": "V"},
            "I": {"samples": [19.663, 19.639, 19.640, 19.685, 19.678], "unit": "mA"},
            "phi": {"samples": [1.0456, 1.0438, 1.0468, 1.0428, 1.0433], "unit": "rad"},
        },
        "correlations": [["V", "I", "samples"], ["V", "phi", "samples"], ["I", "phi", "samples"]],
        "output_units": {"R": "ohm", "X": "ohm", "Z": "ohm"},
    },
    expected=(
        Expected("R", "127.732", "ohm"),
        Expected("u(R)", "0.071", "ohm"),
        Expected("X", "219.847", "ohm"),
        Expected("u(X)", "0.295", "ohm", tolerance=0.0011,
                 note="0.2956 by propagation; the GUM's 0.295 comes from approach 2 (H.2.4)"),
        Expected("Z", "254.260", "ohm"),
        Expected("u(Z)", "0.236", "ohm"),
        Expected("r(R,X)", "-0.588"),
        Expected("r(R,Z)", "-0.485"),
        Expected("r(X,Z)", "0.993"),
    ),
)

_H3_T = [21.521, 22.012, 22.512, 23.003, 23.507, 23.999, 24.513, 25.002, 25.503, 26.010, 26.511]
_H3_B = [-0.171, -0.169, -0.166, -0.159, -0.164, -0.165, -0.156, -0.157, -0.159, -0.161, -0.160]

GUM_H3 = ReferenceExample(
    name="GUM H.3 calibration of a thermometer (least squares)",
    source="JCGM 100:2008 H.3, Table H.6 and H.3.3-H.3.4",
    kind="fit",
    data={"x": _H3_T, "y": _H3_B, "model": "line", "x_offset": 20, "predict": [30]},
    expected=(
        Expected("y1", "-0.1712", "degC"),
        Expected("u(y1)", "0.0029", "degC"),
        Expected("y2", "0.00218"),
        Expected("u(y2)", "0.00067"),
        Expected("r(y1,y2)", "-0.930"),
        Expected("s", "0.0035", "degC"),
        Expected("b(30 degC)", "-0.1494", "degC"),
        Expected("u(b(30 degC))", "0.0041", "degC"),
    ),
)

GUM_EXAMPLES = (GUM_H1, GUM_H2, GUM_H3)

_ADDITIVE = "X1 + X2 + X3 + X4"

JCGM101_ADDITIVE_NORMAL = ReferenceExample(
    name="JCGM 101 9.2.2 additive model, normal inputs",
    source="JCGM 101:2008 9.2.2, Table 2 (Y = X1+X2+X3+X4, X_i ~ N(0, 1), p = 95 %)",
    kind="mc",
    data={"outputs": {"Y": _ADDITIVE},
          "inputs": {f"X{i}": {"value": 0.0, "u": 1.0} for i in range(1, 5)},
          "coverage": 0.95, "mc": {"trials": 1_000_000, "seed": 101}},
    expected=(
        Expected("Y", "0.00", tolerance=0.01, note="MC mean; 3 standard errors at 10^6 trials is 0.006"),
        Expected("u(Y)", "2.00"),
        Expected("low(Y)", "-3.92", tolerance=0.02, note="MC endpoint: standard error 0.005 at 10^6 trials"),
        Expected("high(Y)", "3.92", tolerance=0.02, note="MC endpoint: standard error 0.005 at 10^6 trials"),
    ),
)

JCGM101_ADDITIVE_RECTANGULAR = ReferenceExample(
    name="JCGM 101 9.2.3 additive model, rectangular inputs",
    source="JCGM 101:2008 9.2.3, Table 3 (X_i rectangular with standard deviation 1, p = 95 %)",
    kind="mc",
    data={"outputs": {"Y": _ADDITIVE},
          "inputs": {f"X{i}": {"value": 0.0, "distribution": "rectangular", "half_width": 3 ** 0.5}
                     for i in range(1, 5)},
          "coverage": 0.95, "mc": {"trials": 1_000_000, "seed": 101}},
    expected=(
        Expected("u(Y)", "2.00"),
        Expected("low(Y)", "-3.88", tolerance=0.02, note="MC endpoint: standard error 0.005 at 10^6 trials"),
        Expected("high(Y)", "3.88", tolerance=0.02, note="MC endpoint: standard error 0.005 at 10^6 trials"),
    ),
)

MC_EXAMPLES = (JCGM101_ADDITIVE_NORMAL, JCGM101_ADDITIVE_RECTANGULAR)
