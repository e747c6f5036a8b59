"""Balance test: repeatability, eccentricity and error of indication (linearity) with reference weights.

After EURAMET cg-18 (non-automatic weighing instruments), reduced to what a routine check needs:

1. Repeatability: one weight loaded `repeats` times at the centre; each indication taken against
   the zero indication before it; s = experimental standard deviation (n - 1 degrees of freedom).
2. Eccentricity: one weight at the centre, front, back, left and right; dI_ecc = I_pos - I_centre,
   its largest magnitude is the eccentricity result.
3. Error of indication at each test load (one reference weight per load, on the centre), with
   its expanded uncertainty from a measurement model evaluated by `results.measurement_model`:

       E = I + dI_L - dI_0 + dI_ecc - m_ref

   I: the zero-corrected indication (u = s from step 1, its dof), dI_L and dI_0: rounding of the
   loaded and the zero indication (rectangular, half-width d/2), dI_ecc: eccentric loading
   (rectangular, half-width |dI_ecc,max| * m / (2 m_ecc), cg-18 7.1.2.3), m_ref: the reference
   weight's conventional mass from its certificate (normal, U / k).

The operator places the weights: the procedure asks through `ask(question) -> bool` (the
runner's `ctx.confirm`; a simulated operator in tests) and refuses to go on if the answer is no.
Standalone on purpose: it does not depend on the runner's procedure interface, which is being
generalised; a thin adapter will call `run_balance_test`.

Reference weights come from the bench file's `[[reference_weights]]` (id, nominal, conventional
mass, U, k; all in g), read by `read_weight_certificates`.
"""

from __future__ import annotations

import math
import statistics
import tomllib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from daq.bench import Bench
from daq.errors import ConfigError
from drivers.capabilities import Balance
from results.gum import DEFAULT_COVERAGE_PROBABILITY
from results.measurement_model import MeasurementModel, OutputEstimate, evaluate_gum
from results.model_inputs import InputQuantity

ECCENTRIC_POSITIONS = ("centre", "front", "back", "left", "right")
ERROR_MODEL = "I + dI_L - dI_0 + dI_ecc - m_ref"

Ask = Callable[[str], Awaitable[bool]]


class OperatorDeclined(Exception):
    """The operator answered no to a prompt the test cannot continue without."""


@dataclass(frozen=True)
class WeightCertificate:
    """A reference weight as its certificate states it (g)."""

    id: str
    nominal: float
    conventional_mass: float
    U: float
    k: float = 2.0

    @property
    def u(self) -> float:
        return self.U / self.k


_FIELDS = ("id", "nominal", "conventional_mass", "U", "k")
_FIX = ('write [[reference_weights]] id = "R100" nominal = 100.0 conventional_mass = 100.00012 '
        "U = 0.00005 k = 2.0")


def read_weight_certificates(bench: Bench) -> dict[str, WeightCertificate]:
    """The bench's `[[reference_weights]]`, every field checked (ConfigError naming it)."""
    data = tomllib.loads(bench.text).get("reference_weights", [])
    if not isinstance(data, list):
        raise ConfigError(bench.source, "reference_weights", "must be an array of tables", _FIX)
    weights: dict[str, WeightCertificate] = {}
    for i, entry in enumerate(data):
        where = f"reference_weights[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(bench.source, where, "must be a table", _FIX)
        unknown = sorted(set(entry) - set(_FIELDS))
        if unknown:
            raise ConfigError(bench.source, f"{where}.{unknown[0]}", "unknown field", f"use {', '.join(_FIELDS)}")
        weight_id = entry.get("id")
        if not isinstance(weight_id, str) or not weight_id:
            raise ConfigError(bench.source, f"{where}.id", f"expected a name, got {weight_id!r}", _FIX)
        if weight_id in weights:
            raise ConfigError(bench.source, f"{where}.id", f"weight {weight_id!r} given twice", "give each id once")
        numbers: dict[str, float] = {}
        for key in ("nominal", "conventional_mass", "U", "k"):
            value = entry.get(key, 2.0 if key == "k" else None)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or value <= 0:
                raise ConfigError(bench.source, f"{where}.{key}", f"expected a number > 0, got {value!r}", _FIX)
            numbers[key] = float(value)
        weights[weight_id] = WeightCertificate(weight_id, numbers["nominal"], numbers["conventional_mass"],
                                               numbers["U"], numbers["k"])
    return weights


@dataclass(frozen=True)
class BalanceTestPlan:
    """Which weights for which test; ids refer to the bench's reference weights."""

    repeatability_weight: str
    eccentricity_weight: str
    linearity_weights: tuple[str, ...]
    repeats: int = 6
    coverage: float = DEFAULT_COVERAGE_PROBABILITY

    def check(self, weights: dict[str, WeightCertificate], source: str = "<plan>") -> None:
        """Every weight known and enough repeats, before the operator is asked for anything."""
        named = [("repeatability_weight", self.repeatability_weight),
                 ("eccentricity_weight", self.eccentricity_weight),
                 *((f"linearity_weights[{i}]", w) for i, w in enumerate(self.linearity_weights))]
        for where, weight_id in named:
            if weight_id not in weights:
                raise ConfigError(source, where, f"no reference weight {weight_id!r}",
                                  f"use one of {', '.join(sorted(weights)) or '(none: add [[reference_weights]])'}")
        if self.repeats < 2:
            raise ConfigError(source, "repeats", f"need at least 2 loadings, got {self.repeats}", "write repeats = 6")
        if not self.linearity_weights:
            raise ConfigError(source, "linearity_weights", "no test loads", 'write linearity_weights = ["R100"]')


@dataclass(frozen=True)
class LinearityPoint:
    weight_id: str
    nominal: float
    reference_mass: float
    indication: float
    estimate: OutputEstimate
    """E = indication - reference mass with its uncertainty (value, u, dof, k, U, budget), g."""

    @property
    def error(self) -> float:
        return self.estimate.value

    @property
    def U(self) -> float:
        return self.estimate.U


@dataclass
class BalanceTestResult:
    repeatability_loads: list[float] = field(default_factory=list)
    repeatability_s: float = 0.0
    eccentricity: dict[str, float] = field(default_factory=dict)
    """I_pos - I_centre for each position, g."""
    linearity: list[LinearityPoint] = field(default_factory=list)
    resolution: float = 0.0

    @property
    def eccentricity_max(self) -> float:
        return max((abs(v) for v in self.eccentricity.values()), default=0.0)


async def _ask(ask: Ask, question: str) -> None:
    if not await ask(question):
        raise OperatorDeclined(question)


async def _loaded_indication(balance: Balance, ask: Ask, weight_id: str, position: str = "centre") -> float:
    """Zero indication, weight on, loaded indication, weight off: the zero-corrected indication."""
    zero = await balance.read_stable()
    await _ask(ask, f"Place weight {weight_id} at the {position} of the pan, then confirm.")
    loaded = await balance.read_stable()
    await _ask(ask, f"Remove weight {weight_id} from the pan, then confirm.")
    return loaded - zero


async def run_balance_test(
    balance: Balance, weights: dict[str, WeightCertificate], plan: BalanceTestPlan, ask: Ask
) -> BalanceTestResult:
    """Run the three tests with the operator; readings in g."""
    plan.check(weights)
    result = BalanceTestResult()
    await _ask(ask, "Clear the pan, then confirm.")
    await balance.zero()
    for _ in range(plan.repeats):
        result.repeatability_loads.append(await _loaded_indication(balance, ask, plan.repeatability_weight))
    result.repeatability_s = statistics.stdev(result.repeatability_loads)
    for position in ECCENTRIC_POSITIONS:
        indication = await _loaded_indication(balance, ask, plan.eccentricity_weight, position)
        result.eccentricity[position] = indication
    centre = result.eccentricity["centre"]
    result.eccentricity = {p: v - centre for p, v in result.eccentricity.items() if p != "centre"}
    result.resolution = balance.resolution()
    for weight_id in plan.linearity_weights:
        indication = await _loaded_indication(balance, ask, weight_id)
        result.linearity.append(evaluate_error_of_indication(
            weights[weight_id], indication, result.repeatability_s, plan.repeats - 1, result.resolution,
            result.eccentricity_max, weights[plan.eccentricity_weight].conventional_mass, plan.coverage))
    return result


def evaluate_error_of_indication(
    weight: WeightCertificate,
    indication: float,
    repeatability_s: float,
    repeatability_dof: int,
    resolution: float,
    eccentricity_max: float,
    eccentricity_load: float,
    coverage: float = DEFAULT_COVERAGE_PROBABILITY,
) -> LinearityPoint:
    """E = I + dI_L - dI_0 + dI_ecc - m_ref through the GUM core (see the module docstring)."""
    mass = weight.conventional_mass
    ecc_half_width = eccentricity_max * mass / (2.0 * eccentricity_load)
    inputs = {
        "I": InputQuantity("I", indication, repeatability_s, float(repeatability_dof),
                           "t" if repeatability_s > 0 else "normal", unit="g"),
        "dI_L": InputQuantity.from_half_width("dI_L", 0.0, resolution / 2.0, unit="g"),
        "dI_0": InputQuantity.from_half_width("dI_0", 0.0, resolution / 2.0, unit="g"),
        "dI_ecc": InputQuantity.from_half_width("dI_ecc", 0.0, ecc_half_width, unit="g"),
        "m_ref": InputQuantity.from_expanded("m_ref", mass, weight.U, weight.k, unit="g"),
    }
    model = MeasurementModel({"E": ERROR_MODEL}, inputs, output_units={"E": "g"}, source=f"balance test {weight.id}")
    estimate = evaluate_gum(model, coverage)["E"]
    return LinearityPoint(weight.id, weight.nominal, mass, indication, estimate)


def as_rows(result: BalanceTestResult) -> Sequence[dict[str, float | str]]:
    """The linearity table as plain rows (for a report or the store)."""
    return [
        {"weight": p.weight_id, "nominal_g": p.nominal, "reference_g": p.reference_mass,
         "indication_g": p.indication, "error_g": p.error, "U_g": p.U, "k": p.estimate.k}
        for p in result.linearity
    ]
