"""The measurement model the [uncertainty] benchmarks share: GUM Annex H.1, the end gauge.

    l = ls + d - ls*(da*theta + as_*dtheta)

Inputs as GUM H.1 states them (JCGM 100:2008, H.1.3, table H.1), in nm and K:

| input | estimate | standard uncertainty | nu |
|---|---|---|---|
| ls, length of the standard | 50 000 623.6 nm | 25 nm, normal | 18 |
| d, comparator difference (d1, d2, d3 combined) | 215 nm | 9.7 nm, normal | 25.6 |
| da, difference of the expansion coefficients | 0 /K | rectangular, a = 1e-6 /K: a/sqrt(3) | 50 |
| theta, deviation from 20 degC | -0.1 K | 0.2 K, normal | 2 |
| as_, expansion coefficient of the standard | 11.5e-6 /K | rectangular, a = 2e-6 /K | inf |
| dtheta, temperature difference | 0 K | rectangular, a = 0.05 K | 2 |

At da = dtheta = 0 the sensitivities to theta and as_ are zero, so their u and nu do not move
any result (the GUM's u(theta) is 0.41 K, of which 0.2 K is the mean's; either gives the same l).
Every contender computes the same thing from the same numbers; `GTC` and `uncertainties` get
the standard uncertainties (a / sqrt(3) for the rectangular ones).
"""

from __future__ import annotations

import math
from typing import Any

H1_MODEL: dict[str, Any] = {
    "outputs": {"l": "ls + d - ls*(da*theta + as_*dtheta)"},
    "inputs": {
        "ls": {"value": 50000623.6, "u": 25, "dof": 18, "unit": "nm"},
        "d": {"value": 215, "u": 9.7, "dof": 25.6, "unit": "nm"},
        "da": {"value": 0, "distribution": "rectangular", "half_width": 1e-6, "dof": 50, "unit": "1/K"},
        "theta": {"value": -0.1, "u": 0.2, "dof": 2, "unit": "K"},
        "as_": {"value": 11.5e-6, "distribution": "rectangular", "half_width": 2e-6, "unit": "1/K"},
        "dtheta": {"value": 0, "distribution": "rectangular", "half_width": 0.05, "dof": 2, "unit": "K"},
    },
}

COVERAGE = 0.9545

#: (value, standard uncertainty, dof) of each input, for the alternatives.
H1_INPUTS: dict[str, tuple[float, float, float]] = {
    "ls": (50000623.6, 25.0, 18.0),
    "d": (215.0, 9.7, 25.6),
    "da": (0.0, 1e-6 / math.sqrt(3.0), 50.0),
    "theta": (-0.1, 0.2, 2.0),
    "as_": (11.5e-6, 2e-6 / math.sqrt(3.0), math.inf),
    "dtheta": (0.0, 0.05 / math.sqrt(3.0), 2.0),
}


def h1_length(ls: Any, d: Any, da: Any, theta: Any, as_: Any, dtheta: Any) -> Any:
    """The model written once in Python: works on floats, numpy arrays, GTC ureals and ufloats."""
    return ls + d - ls * (da * theta + as_ * dtheta)


def versions(*names: str) -> dict[str, str | None]:
    import importlib.metadata

    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found
