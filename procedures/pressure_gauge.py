"""Pressure gauge calibration against a pressure controller: ascending and descending, in cycles.

A dial gauge (read by the operator, `MANUAL` in the bench file) or any `Meter` is compared
with a pressure controller whose sensor is the reference. Each cycle goes up through the
points and back down; each point waits until the controller is stable (its in-limits flag
*and* the statistical criteria on its reading), then takes N readings of the reference and the
UUT. The hysteresis of the gauge shows as the difference between a point's ascending and
descending errors, which the report lists.

Model per point: E = x_uut - (x_ref + c_ref) - d_std + d_res, with c_ref the controller's
certificate correction, d_std its certificate U/k and d_res the UUT's reading resolution.

What the budget is for a dial gauge read by an operator (checked against the simulated
operator over many seeded worlds, tests/test_pressure_coverage.py):

- *Resolution.* The operator reads to `resolution` (a fraction of a division) and rounds:
  d_res is rectangular with a = resolution / 2. The mean of the n rounded readings is off
  by at most a as well, whatever the scatter, so one resolution term per point is right.
- *Operator scatter.* Type A from the n readings (x_uut, t with n - 1 degrees of freedom).
  With 3 readings quantised to the resolution, s is 0 at most points (all three alike);
  that is not a claim of no scatter but of scatter below what the resolution shows, and the
  resolution term covers it: while the operator's scatter stays below about 0.4 of the
  resolution, this budget covers the true error at its stated rate. Letting repeatability
  not fall below the resolution contribution (counting it a second time) was tried and not
  taken: it states 100 % coverage there (U 1.4 times the k = 2 one, 1.7 times the propagated
  one). An operator whose scatter reaches the reading resolution is reading to a resolution
  finer than he can: read to a coarser one, or take more repeats (three readings with 2
  degrees of freedom cannot tell).
- *Coverage interval.* With s = 0 the combined distribution is the resolution's rectangle
  (plus a small normal from the reference): GUM G.6.5's Welch-Satterthwaite / t route and
  k = 2 do not apply, and k = 2 on a rectangle states 100 % coverage, not 95 %. U is
  therefore the half-width of the probabilistically symmetric coverage interval from
  propagating the input distributions (JCGM 101, `results.montecarlo.evaluate_mc`, fixed
  seed so a point's result is reproducible); u_c, the budget lines and nu_eff stay the GUM
  ones, k is U / u_c. For a normal-dominated budget this gives the familiar k ~ 2.
- *Hysteresis.* Each point is reported in its own direction (up or down): the error found is
  the gauge's error *in that direction*, hysteresis included, so hysteresis is no uncertainty
  of that point. It is a property of the gauge, reported from the differences between a
  pressure's down and up errors. Note the turning points: the top pressure "down" follows
  the top pressure "up" without the needle reversing, and "0 up" of a later cycle follows
  "0 down" of the one before, so those readings carry the direction of their approach (the
  hysteresis at the end points shows ~0). A certificate that reports one error per pressure
  (mean of up and down) must add the hysteresis to its uncertainty (EURAMET cg-17); this
  procedure does not report such a mean.

```toml
[procedure]
kind = "pressure_gauge"
name = "Dial gauge 0..10 bar"
repeats = 3
cycles = 2
tolerance = 0.16            # +- bar: the gauge's class (1.0 % of 16 bar)
decision_rule = "guarded"
[roles]
controller = "pace"
uut = "gauge"
[stability]                 # bar and bar/s, on the controller's reading
window = 10
max_std = 0.0005
max_slope = 0.0001
interval = "1 s"
timeout = "600 s"
[[points]]
pressures = [0, 2, 4, 6, 8, 10]
```
"""

from __future__ import annotations

import asyncio
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from daq.bench import Bench
from daq.errors import ConfigError
from daq.reading import Reading
from daq.stability import StabilityCriteria, wait_until_stable
from daq.units import magnitude_in, parse_quantity
from procedures.base import DriverClassOf, PlannedPoint, PointOutcome, StabilityTimeout
from procedures.certificate_table import CertificateTable, certificate_of
from procedures.context import PointContext
from procedures.file_fields import probability, whole_number
from results.decision import Rule, decide
from results.gum import DEFAULT_COVERAGE_PROBABILITY, UncertaintyBudget, UncertaintyComponent, type_a
from results.measurement_model import MeasurementModel, evaluate_gum
from results.model_inputs import InputQuantity
from results.montecarlo import evaluate_mc
from results.point import PointResult
from results.rounding import round_result

MODEL = "x_uut - x_ref - c_ref - d_std + d_res"
#: Monte Carlo trials for a point's coverage interval (JCGM 101), and the seed that makes it reproducible.
MC_TRIALS = 100_000
MC_SEED = 20240607


@dataclass(frozen=True)
class PropagatedBudget(UncertaintyBudget):
    """A GUM budget (components, u_c, nu_eff) whose U is the half-width of the coverage interval
    from propagating the distributions (JCGM 101): k = U / u_c."""

    expanded: float = math.nan

    @property
    def k(self) -> float:
        return self.expanded / self.u_c if self.u_c > 0 else math.nan

    @property
    def U(self) -> float:
        return self.expanded


def evaluate_pressure_point(
    nominal: float, unit: str, uut_values: list[float], ref_values: list[float], certificate: CertificateTable,
    *, uut_resolution: float, tolerance: float, rule: Rule, p: float = DEFAULT_COVERAGE_PROBABILITY,
    ref_note: str = "",
) -> PointResult:
    uut = type_a("UUT repeatability", uut_values, sensitivity=1.0, unit=unit)
    ref = type_a("reference repeatability", ref_values, sensitivity=-1.0, unit=unit)
    assert uut.value is not None and ref.value is not None
    correction = certificate.correction(ref.value)
    inputs = {
        "x_uut": InputQuantity("x_uut", uut.value, uut.u, uut.dof, "t", unit=unit),
        "x_ref": InputQuantity("x_ref", ref.value, ref.u, ref.dof, "t", unit=unit),
        "c_ref": InputQuantity("c_ref", correction, 0.0, unit=unit),
        "d_std": InputQuantity("d_std", 0.0, certificate.standard_uncertainty(ref.value), certificate.dof,
                               "normal" if math.isinf(certificate.dof) else "t", unit=unit),
        "d_res": InputQuantity.from_half_width("d_res", 0.0, uut_resolution / 2, "rectangular", unit=unit),
    }
    model = MeasurementModel({"E": MODEL}, inputs, output_units={"E": unit}, source="point")
    estimate = evaluate_gum(model, p)["E"]
    interval = evaluate_mc(model, trials=MC_TRIALS, seed=MC_SEED, coverage=p)["E"].interval
    expanded = max(estimate.value - interval.low, interval.high - estimate.value)
    c = {line.input: line.sensitivity for line in estimate.budget}
    budget = PropagatedBudget((
        uut, ref,
        UncertaintyComponent("reference standard", "B", inputs["d_std"].distribution, inputs["d_std"].u,
                             c["d_std"], inputs["d_std"].dof,
                             note=f"{ref_note}; correction {correction:+.5g} {unit} applied"),
        UncertaintyComponent("UUT resolution", "B", "rectangular", inputs["d_res"].u, c["d_res"], math.inf,
                             note=f"a = {uut_resolution / 2:g} {unit}; U from the propagated distributions "
                                  "(JCGM 101), not k = 2: a dominant rectangle is not normal (GUM G.6.5)"),
    ), p=p, expanded=expanded)
    reported = round_result(estimate.value, budget.U)
    return PointResult(
        nominal=nominal, unit=unit, n=len(uut_values), ref_mean=ref.value + correction, uut_mean=uut.value,
        uut_std=uut.u * math.sqrt(len(uut_values)), error=estimate.value, correction=-estimate.value,
        u_c=estimate.u, dof_eff=estimate.dof, k=budget.k, U=reported.U, error_rounded=reported.value,
        U_unrounded=budget.U, tolerance=tolerance,
        decision=decide(estimate.value, budget.U, -tolerance, tolerance, rule=rule), budget=budget,
        error_text=reported.value_text, U_text=reported.U_text,
    )


@dataclass
class PressureGaugeCalibration:
    name: str
    controller_role: str
    uut_role: str
    pressures: list[float]
    criteria: StabilityCriteria
    tolerance: float
    unit: str = "bar"
    repeats: int = 3
    cycles: int = 1
    decision_rule: Rule = "guarded"
    coverage: float = DEFAULT_COVERAGE_PROBABILITY
    source: str = "<procedure>"
    text: str = ""
    certificate: CertificateTable | None = field(default=None, repr=False)

    kind = "pressure_gauge"

    @property
    def points(self) -> list[PlannedPoint]:
        """Each cycle: up through the pressures, then back down (the top point once each way)."""
        plan: list[PlannedPoint] = []
        for cycle in range(1, self.cycles + 1):
            for direction, values in (("up", self.pressures), ("down", list(reversed(self.pressures)))):
                for p in values:
                    plan.append(PlannedPoint(len(plan), p, self.unit, 0.0, f"{p:g} {self.unit} {direction} c{cycle}",
                                             "points.pressures"))
        return plan

    def instrument_names(self) -> tuple[str, ...]:
        return (self.controller_role, self.uut_role)

    def summary(self, results: list[dict[str, Any]]) -> list[str]:
        """Hysteresis (down - up, per cycle) and repeatability over cycles (spread of the errors in
        one direction), per pressure, as a pressure-gauge certificate tabulates them (EURAMET cg-17)."""
        labels = {p.index: p.label for p in self.points}
        errors: dict[tuple[float, str, int], float] = {}
        for r in results:
            nominal, direction, cycle = self._parse_label(labels.get(r["point_index"], ""))
            if direction:
                errors[(nominal, direction, cycle)] = r["error"]
        lines = ["## Hysteresis and repeatability", "",
                 "| pressure | mean error up | mean error down | hysteresis (down - up) | repeatability up | "
                 "repeatability down |", "|---|---|---|---|---|---|"]
        for p in self.pressures:
            up = [e for (n, d, _), e in errors.items() if n == p and d == "up"]
            down = [e for (n, d, _), e in errors.items() if n == p and d == "down"]
            if not up or not down:
                continue
            hyst = [errors[(p, "down", c)] - errors[(p, "up", c)] for c in range(1, self.cycles + 1)
                    if (p, "down", c) in errors and (p, "up", c) in errors]
            lines.append(f"| {p:g} {self.unit} | {sum(up) / len(up):+.4g} | {sum(down) / len(down):+.4g} | "
                         f"{max(hyst, key=abs):+.4g} | {max(up) - min(up):.3g} | {max(down) - min(down):.3g} |")
        lines += ["", "Hysteresis is the largest down - up difference over the cycles; repeatability is the spread "
                  "of the errors at one pressure in one direction over the cycles. At the top and bottom points the "
                  "gauge is approached from one side only, so their hysteresis reads near zero."]
        return lines

    def _parse_label(self, label: str) -> tuple[float, str, int]:
        parts = label.split()
        try:
            return float(parts[0]), parts[2], int(parts[3].lstrip("c"))
        except (IndexError, ValueError):
            return math.nan, "", 0

    def validate(self, bench: Bench, driver_class: DriverClassOf | None = None) -> None:
        for where, role in (("roles.controller", self.controller_role), ("roles.uut", self.uut_role)):
            if role not in bench.instruments:
                raise ConfigError(self.source, where, f"the bench {bench.source} has no instrument {role!r}",
                                  f"use one of {', '.join(sorted(bench.instruments))}")
        gauge_unit = bench.instruments[self.uut_role].settings.get("unit")
        if gauge_unit is not None and str(gauge_unit).lower() != self.unit.lower():
            raise ConfigError(self.source, "procedure.unit",
                              f"the procedure works in {self.unit} but {self.uut_role}'s scale is in {gauge_unit}",
                              f'write unit = "{gauge_unit}" (the controller is set to the same unit)')
        self.certificate = certificate_of(bench, self.controller_role, "pressure")
        for i, p in enumerate(self.pressures):
            if not self.certificate.covers(p, margin=1e-9):
                raise ConfigError(self.source, f"points.pressures[{i}]",
                                  f"{p:g} {self.unit} is outside the controller's certificate "
                                  f"({self.certificate.points[0][0]:g}..{self.certificate.points[-1][0]:g})",
                                  "choose points the certificate covers")
        wired = bench.wired_to(f"{self.uut_role}.input")
        if wired is not None and wired.split(".")[0] != self.controller_role:
            raise ConfigError(bench.source, "wiring", f"{self.uut_role}.input is wired to {wired}",
                              f'wire it from "{self.controller_role}.pressure"')

    def noisy_channels(self, instruments: Mapping[str, Any], point: PlannedPoint) -> dict[str, tuple[str, float]]:
        return {}  # a controller's settled reading and an operator's reading may repeat honestly

    async def run_point(self, ctx: PointContext, point: PlannedPoint) -> PointOutcome:
        assert self.certificate is not None, "validate() first"
        controller = ctx.instruments[self.controller_role]
        uut = ctx.instruments[self.uut_role]
        clock = ctx.clock
        ctx.show("setting pressure")
        if hasattr(controller, "set_unit"):
            await controller.set_unit(self.unit.upper())  # the controller reads in the procedure's unit
        await controller.set_setpoint(point.nominal)

        async def sample() -> tuple[float, bool | None]:
            value, flag = await asyncio.gather(controller.read_value(), controller.is_stable())
            await ctx.record(Reading("settle", clock.now(), value, self.unit, flag))
            return value, flag

        record = await wait_until_stable(sample, self.criteria, clock, on_check=lambda c: ctx.show("settling", c))
        if not record.stable:
            raise StabilityTimeout(point.label, record)
        ref: list[float] = []
        values: list[float] = []
        for i in range(self.repeats):
            ctx.show(f"reading {i + 1}/{self.repeats}")
            before = await controller.read_value()
            indication = (await uut.read(1))[0]
            after = await controller.read_value()
            reference = (before + after) / 2  # bracket the (slower) reading of the UUT
            t = clock.now()
            await ctx.record(Reading("ref", t, reference, self.unit))
            await ctx.record(Reading("uut", t, indication, self.unit))
            ref.append(reference)
            values.append(indication)
        result = evaluate_pressure_point(
            point.nominal, self.unit, values, ref, self.certificate, uut_resolution=float(uut.resolution()),
            tolerance=self.tolerance, rule=self.decision_rule, p=self.coverage,
            ref_note=f"{self.controller_role} certificate, k = {self.certificate.k:g}")
        return PointOutcome(record, {"": result})


def _seconds(value: Any, source: str, where: str) -> float:
    return magnitude_in(parse_quantity(value, source=source, field=where, unit="s"), "s", source=source, field=where)


def _positive(table: dict[str, Any], key: str, source: str, where: str, default: float | None = None) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(source, f"{where}.{key}", f"expected a number > 0, got {value!r}", f"write {key} = ...")
    return float(value)


PRESSURE_UNITS = ("bar", "mbar", "hPa", "kPa", "MPa", "Pa", "psi")


def _pressure_unit(head: dict[str, Any], source: str) -> str:
    unit = head.get("unit", "bar")
    for known in PRESSURE_UNITS:
        if isinstance(unit, str) and unit.strip().lower() == known.lower():
            return known
    raise ConfigError(source, "procedure.unit", f"unknown pressure unit {unit!r}",
                      f"use one of {', '.join(PRESSURE_UNITS)}")


def parse_procedure(text: str, *, source: str = "<procedure>") -> PressureGaugeCalibration:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc), "fix the TOML syntax at the line shown") from exc
    head, roles, stab = data.get("procedure", {}), data.get("roles", {}), data.get("stability", {})
    repeats = head.get("repeats", 3)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 2:
        raise ConfigError(source, "procedure.repeats", f"expected an integer >= 2, got {repeats!r}",
                          "type A needs at least 2 readings per point")
    cycles = head.get("cycles", 1)
    if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1:
        raise ConfigError(source, "procedure.cycles", f"expected an integer >= 1, got {cycles!r}", "write cycles = 2")
    rule_text = head.get("decision_rule", "guarded")
    if rule_text not in ("guarded", "simple"):
        raise ConfigError(source, "procedure.decision_rule", f"unknown rule {rule_text!r}", 'use "guarded" or "simple"')
    pressures: list[float] = []
    for i, group in enumerate(data.get("points", [])):
        for j, v in enumerate(group.get("pressures", [])):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ConfigError(source, f"points[{i}].pressures[{j}]", f"expected a number, got {v!r}",
                                  "write pressures = [0, 2, 4]")
            pressures.append(float(v))
    if not pressures:
        raise ConfigError(source, "points", "no pressure points", "add [[points]] pressures = [0, 2, 4]")
    criteria = StabilityCriteria(
        window=whole_number(stab, "window", 10, minimum=3, source=source, where="stability"),
        max_std=_positive(stab, "max_std", source, "stability", 0.001),
        max_slope=_positive(stab, "max_slope", source, "stability", 0.0005),
        interval=_seconds(stab.get("interval", "1 s"), source, "stability.interval"),
        timeout=_seconds(stab.get("timeout", "600 s"), source, "stability.timeout"),
        use_instrument_flag=bool(stab.get("use_instrument_flag", True)),
    )
    return PressureGaugeCalibration(
        name=str(head.get("name", "pressure gauge calibration")),
        controller_role=str(roles.get("controller", "pace")), uut_role=str(roles.get("uut", "gauge")),
        pressures=pressures, criteria=criteria, tolerance=_positive(head, "tolerance", source, "procedure"),
        unit=_pressure_unit(head, source), repeats=repeats, cycles=cycles,
        decision_rule="guarded" if rule_text == "guarded" else "simple",
        coverage=probability(head, "coverage", DEFAULT_COVERAGE_PROBABILITY, source=source, where="procedure"),
        source=source, text=text,
    )
