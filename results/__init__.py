"""The uncertainty core: GUM budgets, ILAC-P14 rounding, ILAC-G8 decisions and point results.

Depends only on `daq` (units) and numpy/scipy, so procedures can build results and the runner
can store them without either side knowing about instruments.
"""

from results.decision import Decision, decide, symmetric_tolerance
from results.gum import (
    DEFAULT_COVERAGE_PROBABILITY,
    BudgetRow,
    UncertaintyBudget,
    UncertaintyComponent,
    arcsine,
    coverage_factor,
    from_expanded,
    rectangular,
    resolution,
    triangular,
    type_a,
    welch_satterthwaite,
)
from results.point import PointResult, evaluate_comparison_point
from results.rounding import RoundedResult, RoundedUncertainty, round_expanded_uncertainty, round_result

__all__ = [
    "DEFAULT_COVERAGE_PROBABILITY",
    "BudgetRow",
    "Decision",
    "PointResult",
    "RoundedResult",
    "RoundedUncertainty",
    "UncertaintyBudget",
    "UncertaintyComponent",
    "arcsine",
    "coverage_factor",
    "decide",
    "evaluate_comparison_point",
    "from_expanded",
    "rectangular",
    "resolution",
    "round_expanded_uncertainty",
    "round_result",
    "symmetric_tolerance",
    "triangular",
    "type_a",
    "welch_satterthwaite",
]
