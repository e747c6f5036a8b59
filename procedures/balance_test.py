"""Balance test through the runner: repeatability, eccentricity and error of indication (linearity).

After EURAMET cg-18 (non-automatic weighing instruments), reduced to what a routine check needs.
The operator places reference weights; the procedure tells them what to do through
`ctx.instruct(OperatorTask(...))` (action "place", "remove" or "clear" on the balance, the
weight's id and position), and a simulated operator does the same to the simulated balance. The
procedure never knows a weight's true mass: only its certificate from the bench file.

Points (in this order, every one starting from a cleared, zeroed pan):

1. `repeatability <w> xN`: weight w loaded N times at the centre; each indication is taken
   against the zero indication just before it (I = I_L - I_0). Reported ("error") as what a lab
   reports for repeatability: the experimental standard deviation s of the N indications
   (n - 1 degrees of freedom), with U = k u(s), u(s) = s / sqrt(2 (n - 1)) (normal theory),
   decided against `repeatability_limit` (s <= limit).
2. `eccentricity <w>`: the weight at the centre, then front, back, left, right. Reported per
   position (result channels "front", "back", "left", "right") as cg-18 tabulates it: the
   deviation dI_ecc = I_pos - I_centre, with U from the repeatability s (one indication at each
   place) and the rounding of the four readings; decided against +- `eccentricity_limit`. The
   largest |dI_ecc| enters the error-of-indication budget.
3. `error of indication <w>`, one per linearity weight, at the centre: one result, the error of
   indication with its expanded uncertainty from a measurement model evaluated by
   `results.measurement_model`:

       E = I + dI_L - dI_0 + dI_ecc - m_ref

   I: the zero-corrected indication (u = s from point 1, its dof), dI_L and dI_0: rounding of the
   loaded and the zero indication (rectangular, half-width d/2), dI_ecc: eccentric loading
   (rectangular, half-width |dI_ecc,max| * m / (2 m_ecc), cg-18 7.1.2.3), m_ref: the reference
   weight's conventional mass from its certificate (normal, U / k). Decided against +- `tolerance`.

s and |dI_ecc,max| are kept by the procedure object between points. A resumed run (a new
procedure object) that starts after those points measures them again inside the first point that
needs them (readings on channels `rep:*` / `ecc:*`), so its budget never lacks them.

Every point starts by having the pan cleared (task "clear") and zeroing the balance, so a point
repeated after a fault starts from a known pan. A point's nominal is its weight's nominal from
the bench file, known once `validate` has read the certificates (the runner validates first).

Raw readings recorded per loading: `zero` and `load` (g), with the position as a suffix in the
eccentricity point (`zero:front`, `load:front`). Reference weights come from the bench file's
`[[reference_weights]]` (id, nominal, conventional mass, U, k; all in g).

```toml
[procedure]
kind = "balance_test"
name = "Analytical balance 220 g, routine check"
repeats = 6                   # loadings in the repeatability test
tolerance = 0.0010            # +- g: error of indication
repeatability_limit = 0.0002  # g: largest acceptable s (default: tolerance)
eccentricity_limit = 0.0006   # +- g: largest acceptable I_pos - I_centre (default: tolerance)
decision_rule = "guarded"     # or "simple"
[roles]
balance = "balance"
[weights]                     # ids of the bench's [[reference_weights]]
repeatability = "R100"
eccentricity = "R100"
linearity = ["R50", "R100", "R200"]
```
"""

from __future__ import annotations

import math
import statistics
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from daq.bench import Bench
from daq.errors import ConfigError
from daq.reading import Reading
from daq.reference_weights import ReferenceWeight, read_reference_weights
from daq.stability import StabilityRecord
from procedures.base import DriverClassOf, PlannedPoint, PointOutcome
from procedures.context import OperatorTask, PointContext
from results.decision import Rule, decide
from results.gum import DEFAULT_COVERAGE_PROBABILITY, UncertaintyBudget, UncertaintyComponent
from results.measurement_model import MeasurementModel, OutputEstimate, evaluate_gum
from results.model_inputs import InputQuantity
from results.point import PointResult
from results.rounding import round_result

ECCENTRIC_POSITIONS = ("centre", "front", "back", "left", "right")
ERROR_MODEL = "I + dI_L - dI_0 + dI_ecc - m_ref"
ECCENTRICITY_MODEL = "I_pos + dI_Lp - dI_0p - I_c - dI_Lc + dI_0c"
UNIT = "g"
_TYPE_A = frozenset({"I", "I_pos", "I_c"})


WeightCertificate = ReferenceWeight
read_weight_certificates = read_reference_weights


# --- evaluation (no instruments) -------------------------------------------------------------


def _budget(estimate: OutputEstimate, inputs: Mapping[str, InputQuantity], names: Mapping[str, str],
            p: float) -> UncertaintyBudget:
    """The model's budget lines as the budget a PointResult carries (names for the report)."""
    components = []
    for line in estimate.budget:
        q = inputs[line.input]
        kind: Literal["A", "B"] = "A" if line.input in _TYPE_A else "B"  # the indications: s, type A
        components.append(UncertaintyComponent(
            names.get(line.input, line.input), kind, q.distribution, q.u, line.sensitivity, q.dof, note=line.input))
    return UncertaintyBudget(tuple(components), p=p)


def _result(nominal: float, n: int, ref_mean: float, uut_mean: float, uut_std: float, estimate: OutputEstimate,
            budget: UncertaintyBudget, lower: float, upper: float, rule: Rule) -> PointResult:
    reported = round_result(estimate.value, estimate.U)
    return PointResult(
        nominal=nominal, unit=UNIT, n=n, ref_mean=ref_mean, uut_mean=uut_mean, uut_std=uut_std,
        error=estimate.value, correction=-estimate.value, u_c=estimate.u, dof_eff=estimate.dof, k=estimate.k,
        U=reported.U, error_rounded=reported.value, U_unrounded=estimate.U, tolerance=upper,
        decision=decide(estimate.value, estimate.U, lower, upper, rule=rule), budget=budget,
        error_text=reported.value_text, U_text=reported.U_text,
    )


def _repeatability_input(s: float, dof: int, resolution: float) -> tuple[float, float, Literal["t", "normal"]]:
    """u(I), its dof and distribution: s with n - 1 dof; never below the display's rounding."""
    if s > 0:
        return s, float(dof), "t"
    return resolution / math.sqrt(12.0), math.inf, "normal"  # every loading read the same


def evaluate_error_of_indication(
    weight: WeightCertificate, indication: float, repeatability_s: float, repeatability_dof: int,
    resolution: float, eccentricity_max: float, eccentricity_load: float, *, tolerance: float,
    rule: Rule = "guarded", coverage: float = DEFAULT_COVERAGE_PROBABILITY,
) -> tuple[PointResult, OutputEstimate]:
    """E = I + dI_L - dI_0 + dI_ecc - m_ref through the GUM core (see the module docstring)."""
    mass = weight.conventional_mass
    ecc_half_width = eccentricity_max * mass / (2.0 * eccentricity_load)
    u_i, dof_i, dist_i = _repeatability_input(repeatability_s, repeatability_dof, resolution)
    inputs = {
        "I": InputQuantity("I", indication, u_i, dof_i, dist_i, unit=UNIT),
        "dI_L": InputQuantity.from_half_width("dI_L", 0.0, resolution / 2.0, unit=UNIT),
        "dI_0": InputQuantity.from_half_width("dI_0", 0.0, resolution / 2.0, unit=UNIT),
        "dI_ecc": InputQuantity.from_half_width("dI_ecc", 0.0, ecc_half_width, unit=UNIT),
        "m_ref": InputQuantity.from_expanded("m_ref", mass, weight.U, weight.k, unit=UNIT),
    }
    model = MeasurementModel({"E": ERROR_MODEL}, inputs, output_units={"E": UNIT},
                             source=f"balance test {weight.id}")
    estimate = evaluate_gum(model, coverage)["E"]
    budget = _budget(estimate, inputs, {
        "I": "repeatability (s)", "dI_L": "rounding, loaded", "dI_0": "rounding, zero",
        "dI_ecc": "eccentric loading", "m_ref": f"reference weight {weight.id}"}, coverage)
    result = _result(weight.nominal, 1, mass, indication, repeatability_s, estimate, budget,
                     -tolerance, tolerance, rule)
    return result, estimate


def evaluate_eccentricity(
    weight: WeightCertificate, at_position: float, at_centre: float, repeatability_s: float,
    repeatability_dof: int, resolution: float, *, limit: float, rule: Rule = "guarded",
    coverage: float = DEFAULT_COVERAGE_PROBABILITY,
) -> PointResult:
    """dI_ecc = I_pos - I_centre, each a zero-corrected indication (u = s) with two roundings."""
    u_i, dof_i, dist_i = _repeatability_input(repeatability_s, repeatability_dof, resolution)
    inputs = {
        "I_pos": InputQuantity("I_pos", at_position, u_i, dof_i, dist_i, unit=UNIT),
        "I_c": InputQuantity("I_c", at_centre, u_i, dof_i, dist_i, unit=UNIT),
        **{name: InputQuantity.from_half_width(name, 0.0, resolution / 2.0, unit=UNIT)
           for name in ("dI_Lp", "dI_0p", "dI_Lc", "dI_0c")},
    }
    model = MeasurementModel({"dI_ecc": ECCENTRICITY_MODEL}, inputs, output_units={"dI_ecc": UNIT},
                             source=f"eccentricity {weight.id}")
    estimate = evaluate_gum(model, coverage)["dI_ecc"]
    budget = _budget(estimate, inputs, {
        "I_pos": "repeatability (s), off centre", "I_c": "repeatability (s), centre",
        "dI_Lp": "rounding, loaded off centre", "dI_0p": "rounding, zero off centre",
        "dI_Lc": "rounding, loaded at centre", "dI_0c": "rounding, zero at centre"}, coverage)
    return _result(weight.nominal, 1, at_centre, at_position, repeatability_s, estimate, budget,
                   -limit, limit, rule)


def evaluate_repeatability(
    weight: WeightCertificate, indications: list[float], resolution: float, *, limit: float,
    rule: Rule = "guarded", coverage: float = DEFAULT_COVERAGE_PROBABILITY,
) -> PointResult:
    """s of the indications, U = k s / sqrt(2 (n - 1)) (normal theory; never below the rounding's)."""
    n = len(indications)
    s = statistics.stdev(indications)
    u_s = max(s, resolution / math.sqrt(12.0)) / math.sqrt(2.0 * (n - 1))
    component = UncertaintyComponent("standard deviation of s", "A", "t", u_s, 1.0, float(n - 1),
                                     note=f"u(s) = s / sqrt(2 (n - 1)), n = {n}")
    budget = UncertaintyBudget((component,), p=coverage)
    reported = round_result(s, budget.U)
    return PointResult(
        nominal=weight.nominal, unit=UNIT, n=n, ref_mean=weight.conventional_mass,
        uut_mean=statistics.fmean(indications), uut_std=s, error=s, correction=0.0, u_c=budget.u_c,
        dof_eff=budget.dof_eff, k=budget.k, U=reported.U, error_rounded=reported.value, U_unrounded=budget.U,
        tolerance=limit, decision=decide(s, budget.U, -limit, limit, rule=rule), budget=budget,
        error_text=reported.value_text, U_text=reported.U_text,
    )


# --- the procedure ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    kind: str  # "repeatability", "eccentricity", "error"
    weight: str


@dataclass
class BalanceTest:
    name: str
    balance_role: str
    repeatability_weight: str
    eccentricity_weight: str
    linearity_weights: tuple[str, ...]
    tolerance: float
    repeatability_limit: float
    eccentricity_limit: float
    repeats: int = 6
    decision_rule: Rule = "guarded"
    coverage: float = DEFAULT_COVERAGE_PROBABILITY
    source: str = "<procedure>"
    text: str = ""
    weights: dict[str, WeightCertificate] = field(default_factory=dict, repr=False)
    # measured in earlier points, needed by later ones (re-measured after a resume)
    repeatability_s: float | None = field(default=None, repr=False)
    eccentricity_max: float | None = field(default=None, repr=False)

    kind = "balance_test"

    @property
    def _steps(self) -> list[_Step]:
        return [_Step("repeatability", self.repeatability_weight), _Step("eccentricity", self.eccentricity_weight),
                *(_Step("error", w) for w in self.linearity_weights)]

    @property
    def points(self) -> list[PlannedPoint]:
        plan: list[PlannedPoint] = []
        nominal = {w.id: w.nominal for w in self.weights.values()}
        for step in self._steps:
            if step.kind == "repeatability":
                label, where = f"repeatability {step.weight} x{self.repeats}", "weights.repeatability"
            elif step.kind == "eccentricity":
                label, where = f"eccentricity {step.weight}", "weights.eccentricity"
            else:
                label, where = f"error of indication {step.weight}", "weights.linearity"
            plan.append(PlannedPoint(len(plan), nominal.get(step.weight, 0.0), UNIT, 0.0, label, where))
        return plan

    def instrument_names(self) -> tuple[str, ...]:
        return (self.balance_role,)

    def validate(self, bench: Bench, driver_class: DriverClassOf | None = None) -> None:
        if self.balance_role not in bench.instruments:
            raise ConfigError(self.source, "roles.balance", f"the bench {bench.source} has no instrument "
                              f"{self.balance_role!r}", f"use one of {', '.join(sorted(bench.instruments))}")
        if driver_class is not None:
            cls = driver_class(self.balance_role)
            if cls is not None and not hasattr(cls, "read_stable"):
                raise ConfigError(bench.source, f"instruments.{self.balance_role}.driver",
                                  f"{cls.__name__} is not a balance (no read_stable)",
                                  'use a balance driver, e.g. driver = "mettler_sics"')
        weights = read_weight_certificates(bench)
        named = [("weights.repeatability", self.repeatability_weight),
                 ("weights.eccentricity", self.eccentricity_weight),
                 *((f"weights.linearity[{i}]", w) for i, w in enumerate(self.linearity_weights))]
        for where, weight_id in named:
            if weight_id not in weights:
                raise ConfigError(self.source, where, f"no reference weight {weight_id!r} in {bench.source}",
                                  f"use one of {', '.join(sorted(weights)) or '(none: add [[reference_weights]])'}")
        self.weights = weights

    def noisy_channels(self, instruments: Mapping[str, Any], point: PlannedPoint) -> dict[str, tuple[str, float]]:
        return {}  # a settled balance on a d of 0.1 mg repeats its reading honestly

    # --- at the bench -----------------------------------------------------------------------

    async def _task(self, ctx: PointContext, text: str, action: str, **arguments: Any) -> None:
        await ctx.instruct(OperatorTask(text=text, instrument=self.balance_role, action=action, arguments=arguments))

    async def _read(self, ctx: PointContext, channel: str) -> float:
        value = float(await ctx.instruments[self.balance_role].read_stable())
        await ctx.record(Reading(channel, ctx.clock.now(), value, UNIT, True))
        return value

    async def _start_cleared(self, ctx: PointContext) -> None:
        await self._task(ctx, "Clear the pan (take every weight off)", "clear")
        await ctx.instruments[self.balance_role].zero()

    async def _loading(self, ctx: PointContext, weight_id: str, position: str = "centre", prefix: str = "",
                       suffix: str = "") -> float:
        """Zero indication, weight on, loaded indication, weight off: the zero-corrected indication."""
        zero = await self._read(ctx, f"{prefix}zero{suffix}")
        await self._task(ctx, f"Place weight {weight_id} at the {position} of the pan", "place",
                         weight=weight_id, position=position, certificate=self.weights[weight_id].as_arguments())
        loaded = await self._read(ctx, f"{prefix}load{suffix}")
        await self._task(ctx, f"Remove weight {weight_id} from the pan", "remove", weight=weight_id)
        return loaded - zero

    async def _repeatability(self, ctx: PointContext, prefix: str = "") -> list[float]:
        loads = []
        for i in range(self.repeats):
            ctx.show(f"{prefix}repeatability loading {i + 1}/{self.repeats}")
            loads.append(await self._loading(ctx, self.repeatability_weight, prefix=prefix))
        self.repeatability_s = statistics.stdev(loads)
        return loads

    async def _eccentricity(self, ctx: PointContext, prefix: str = "") -> dict[str, float]:
        indications = {}
        for position in ECCENTRIC_POSITIONS:
            ctx.show(f"{prefix}eccentricity: {position}")
            indications[position] = await self._loading(ctx, self.eccentricity_weight, position, prefix,
                                                        f":{position}")
        centre = indications["centre"]
        self.eccentricity_max = max(abs(v - centre) for p, v in indications.items() if p != "centre")
        return indications

    async def run_point(self, ctx: PointContext, point: PlannedPoint) -> PointOutcome:
        assert self.weights, "validate() first"
        step = self._steps[point.index]
        balance = ctx.instruments[self.balance_role]
        started = ctx.clock.now()
        await self._start_cleared(ctx)
        results: dict[str, PointResult] = {}
        if step.kind == "repeatability":
            loads = await self._repeatability(ctx)
            results[""] = evaluate_repeatability(
                self.weights[step.weight], loads, float(balance.resolution()), limit=self.repeatability_limit,
                rule=self.decision_rule, coverage=self.coverage)
            readings = 2 * len(loads)
        else:
            readings = 0
            if self.repeatability_s is None:  # resumed after the repeatability point: measure s again
                readings += 2 * len(await self._repeatability(ctx, prefix="rep:"))
            assert self.repeatability_s is not None
            d = float(balance.resolution())
            if step.kind == "eccentricity":
                indications = await self._eccentricity(ctx)
                readings += 2 * len(indications)
                for position in ECCENTRIC_POSITIONS[1:]:
                    results[position] = evaluate_eccentricity(
                        self.weights[step.weight], indications[position], indications["centre"],
                        self.repeatability_s, self.repeats - 1, d, limit=self.eccentricity_limit,
                        rule=self.decision_rule, coverage=self.coverage)
            else:
                if self.eccentricity_max is None:  # resumed after the eccentricity point
                    readings += 2 * len(await self._eccentricity(ctx, prefix="ecc:"))
                assert self.eccentricity_max is not None
                ctx.show(f"loading {step.weight}")
                indication = await self._loading(ctx, step.weight)
                readings += 2
                results[""], _ = evaluate_error_of_indication(
                    self.weights[step.weight], indication, self.repeatability_s, self.repeats - 1, d,
                    self.eccentricity_max, self.weights[self.eccentricity_weight].conventional_mass,
                    tolerance=self.tolerance, rule=self.decision_rule, coverage=self.coverage)
        ended = ctx.clock.now()
        record = StabilityRecord(
            stable=True, timed_out=False, reason="every reading stable by the balance's own criterion (MT-SICS S)",
            started_at=started, ended_at=ended, samples=readings, final={}, criteria={"instrument_flag": True})
        return PointOutcome(record, results)


# --- the file ---------------------------------------------------------------------------------


def _number(table: dict[str, Any], key: str, source: str, where: str, default: float | None = None) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(source, f"{where}.{key}", f"expected a number > 0 (g), got {value!r}",
                          f"write {key} = 0.0005")
    return float(value)


def _weight_id(table: dict[str, Any], key: str, source: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(source, f"weights.{key}", f"expected a weight id, got {value!r}",
                          f'write {key} = "R100" (an id of the bench\'s [[reference_weights]])')
    return value


def parse_procedure(text: str, *, source: str = "<procedure>") -> BalanceTest:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc), "fix the TOML syntax at the line shown") from exc
    head, roles, weights = data.get("procedure", {}), data.get("roles", {}), data.get("weights")
    if not isinstance(weights, dict):
        raise ConfigError(source, "weights", "no [weights] table",
                          '[weights] repeatability = "R100" eccentricity = "R100" linearity = ["R50", "R200"]')
    repeats = head.get("repeats", 6)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 2:
        raise ConfigError(source, "procedure.repeats", f"expected an integer >= 2, got {repeats!r}",
                          "the repeatability test needs at least 2 loadings: write repeats = 6")
    rule_text = head.get("decision_rule", "guarded")
    if rule_text not in ("guarded", "simple"):
        raise ConfigError(source, "procedure.decision_rule", f"unknown rule {rule_text!r}", 'use "guarded" or "simple"')
    linearity = weights.get("linearity")
    if not isinstance(linearity, list) or not linearity:
        raise ConfigError(source, "weights.linearity", f"expected a list of weight ids, got {linearity!r}",
                          'write linearity = ["R50", "R100", "R200"]')
    for i, w in enumerate(linearity):
        if not isinstance(w, str) or not w:
            raise ConfigError(source, f"weights.linearity[{i}]", f"expected a weight id, got {w!r}",
                              'write linearity = ["R50", "R100", "R200"]')
    coverage = head.get("coverage", DEFAULT_COVERAGE_PROBABILITY)
    if isinstance(coverage, bool) or not isinstance(coverage, int | float) or not 0 < coverage < 1:
        raise ConfigError(source, "procedure.coverage", f"expected a probability, got {coverage!r}",
                          "write coverage = 0.9545")
    tolerance = _number(head, "tolerance", source, "procedure")
    return BalanceTest(
        name=str(head.get("name", "balance test")), balance_role=str(roles.get("balance", "balance")),
        repeatability_weight=_weight_id(weights, "repeatability", source),
        eccentricity_weight=_weight_id(weights, "eccentricity", source),
        linearity_weights=tuple(linearity), tolerance=tolerance,
        repeatability_limit=_number(head, "repeatability_limit", source, "procedure", tolerance),
        eccentricity_limit=_number(head, "eccentricity_limit", source, "procedure", tolerance),
        repeats=repeats, decision_rule="guarded" if rule_text == "guarded" else "simple",
        coverage=float(coverage), source=source, text=text,
    )
