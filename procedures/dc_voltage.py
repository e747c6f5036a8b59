"""DC voltage calibration of a DMM against a multifunction calibrator.

For each point: select the UUT range, set the calibrator, wait until the UUT reading is
stable (statistical criteria and the calibrator's SETTLED bit), then take N repeats of UUT
and reference concurrently. The model is E = x_UUT - x_ref; the reference's standard
uncertainty comes from its certificate in the bench file, the UUT tolerance from its stated
accuracy spec (ppm of reading + ppm of range).

Procedure file (TOML):
```toml
[procedure]
name = "DMM DC voltage"
repeats = 10
nplc = 10
settle_nplc = 1               # optional: faster readings while waiting for stability
decision_rule = "guarded"     # ILAC-G8 guarded acceptance (w = U) or "simple"
guard_band = 1.0              # optional, guarded rule only: w = guard_band x U
[roles]
source = "calibrator"
uut = "dmm"
[stability]                  # limits in ppm of range (slope: ppm of range per second)
window = 10
max_std_ppm = 1.0
max_slope_ppm_per_s = 0.5
band_ppm = 10000             # gross check only: UUT mean within 1 % of range of the setpoint
                             # (an out-of-tolerance UUT must still be measured and reported "fail")
min_soak = "1 s"
timeout = "120 s"
[[uut_spec]]
range = "10 V"
ppm_of_reading = 30
ppm_of_range = 5
[[points]]
range = "10 V"
setpoints = ["0 V", "10 V", "-10 V"]
```
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daq.bench import Bench
from daq.errors import ConfigError
from daq.reading import Reading
from daq.stability import StabilityCriteria, StabilityRecord, wait_until_stable
from daq.units import magnitude_in, parse_quantity
from drivers.capabilities import Meter, MeterOverload, Source
from procedures.base import DriverClassOf, PlannedPoint, PointOutcome, StabilityTimeout
from procedures.context import OperatorDeclined, PointContext
from results.decision import Rule, symmetric_tolerance
from results.point import PointResult, evaluate_comparison_point

HAZARDOUS_VOLTS = 33.0


DcPoint = PlannedPoint  # nominal and range in volts


@dataclass(frozen=True)
class AccuracySpec:
    range_: float
    ppm_of_reading: float
    ppm_of_range: float

    def tolerance(self, reading: float) -> float:
        return symmetric_tolerance(self.ppm_of_reading, self.ppm_of_range, reading, self.range_)


@dataclass
class PointData:
    uut: list[float]
    ref: list[float]
    stability: StabilityRecord


@dataclass
class ReferenceUncertainty:
    """The reference standard's stated expanded uncertainty: ppm of output + floor, at k."""

    k: float
    ranges: list[tuple[float, float, float]]  # (upto V, ppm, floor V)
    dof: float = math.inf

    def standard_uncertainty(self, volts: float) -> float:
        for upto, ppm, floor in self.ranges:
            if abs(volts) <= upto:
                return (ppm * 1e-6 * abs(volts) + floor) / self.k
        raise ValueError(f"{volts} V is beyond the reference certificate")

    @classmethod
    def from_certificate(cls, bench: Bench, role: str) -> ReferenceUncertainty:
        cert = bench.instruments[role].certificate.get("dcv")
        where = f"instruments.{role}.certificate.dcv"
        fix = "add k = 2.0 and ranges = [{ upto = 33, ppm = 10, floor = 20e-6 }, ...] from its certificate"
        if not isinstance(cert, dict):
            raise ConfigError(bench.source, where, "the reference standard has no DC voltage certificate", fix)
        k = cert.get("k")
        if not isinstance(k, int | float) or k <= 0:
            raise ConfigError(bench.source, f"{where}.k", f"expected a coverage factor > 0, got {k!r}", fix)
        ranges = []
        for i, r in enumerate(cert.get("ranges", [])):
            try:
                ranges.append((float(r["upto"]), float(r["ppm"]), float(r["floor"])))
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(bench.source, f"{where}.ranges[{i}]", f"needs upto, ppm and floor: {r!r}",
                                  fix) from exc
        if not ranges:
            raise ConfigError(bench.source, f"{where}.ranges", "empty", fix)
        dof = cert.get("dof", math.inf)
        if isinstance(dof, bool) or not isinstance(dof, int | float) or not dof > 0:
            raise ConfigError(bench.source, f"{where}.dof", f"expected degrees of freedom > 0, got {dof!r}",
                              "leave it out for a certificate stated with k from the normal distribution")
        return cls(float(k), sorted(ranges), float(dof))

    def covers(self, volts: float) -> bool:
        return any(abs(volts) <= upto for upto, _, _ in self.ranges)


@dataclass
class DcVoltageProcedure:
    name: str
    source_role: str
    uut_role: str
    points: list[DcPoint]
    specs: dict[float, AccuracySpec]
    stability_ppm: StabilityCriteria
    band_ppm: float | None
    repeats: int = 10
    nplc: float = 10.0
    settle_nplc: float | None = None  # faster integration while watching for stability; None: same as nplc
    decision_rule: Rule = "guarded"
    guard_band_factor: float | None = None  # w = factor x U for the guarded rule (None: w = U)
    coverage: float = 0.9545
    source: str = "<procedure>"
    text: str = ""
    reference: ReferenceUncertainty | None = field(default=None, repr=False)

    kind = "dc_voltage"

    # -- what the runner asks of every procedure (procedures.base.Procedure) -------------------
    def instrument_names(self) -> tuple[str, ...]:
        return (self.source_role, self.uut_role)

    def validate(self, bench: Bench, driver_class: DriverClassOf) -> None:
        """Everything that can be known wrong before an instrument is touched."""
        source_cls = driver_class(self.source_role)
        meter_cls = driver_class(self.uut_role)
        self.check(bench, source_max=float(getattr(source_cls, "max_output", 0.0)),
                   meter_ranges=tuple(getattr(meter_cls, "ranges", ())))

    def noisy_channels(self, instruments: Mapping[str, Any], point: PlannedPoint) -> dict[str, tuple[str, float]]:
        try:
            resolution = float(instruments[self.uut_role].resolution(point.range_))
        except Exception:  # noqa: BLE001 - no resolution known: the stuck check stays silent
            resolution = 0.0
        return {"settle": (self.uut_role, resolution), "uut": (self.uut_role, resolution)}

    async def run_point(self, ctx: PointContext, point: PlannedPoint) -> PointOutcome:
        data = await self.measure(ctx, point)
        resolution = ctx.instruments[self.uut_role].resolution(point.range_)
        return PointOutcome(data.stability, {"": self.evaluate(point, data.uut, data.ref, resolution)})

    # -- checks before anything is energised -------------------------------------------------
    def check(self, bench: Bench, *, source_max: float, meter_ranges: tuple[float, ...]) -> None:
        """Everything that can be known wrong before an instrument is touched."""
        for role_field, role in (("roles.source", self.source_role), ("roles.uut", self.uut_role)):
            if role not in bench.instruments:
                raise ConfigError(self.source, role_field, f"the bench {bench.source} has no instrument {role!r}",
                                  f"use one of {', '.join(sorted(bench.instruments))}")
        self.reference = ReferenceUncertainty.from_certificate(bench, self.source_role)
        wired = bench.wired_to(f"{self.uut_role}.input")
        if wired is None or wired.split(".")[0] != self.source_role:
            raise ConfigError(bench.source, "wiring", f"{self.uut_role}.input is not wired to {self.source_role}",
                              f'add [[wiring]] from = "{self.source_role}.output" to = "{self.uut_role}.input"')
        for p in self.points:
            where = f"{p.field or 'points'} ({p.label})"
            if abs(p.nominal) > source_max:
                raise ConfigError(self.source, where, f"{p.nominal:g} V is beyond the calibrator's {source_max:g} V",
                                  f"keep setpoints within +/-{source_max:g} V")
            if p.range_ not in meter_ranges:
                raise ConfigError(self.source, where, f"the UUT has no {p.range_:g} V range",
                                  f"use one of {', '.join(f'{r:g} V' for r in meter_ranges)}")
            if abs(p.nominal) > 1.2 * p.range_:
                raise ConfigError(self.source, where, f"{p.nominal:g} V overloads the {p.range_:g} V range",
                                  "choose a larger range")
            if p.range_ not in self.specs:
                raise ConfigError(self.source, "uut_spec", f"no accuracy spec for the {p.range_:g} V range",
                                  f'add [[uut_spec]] range = "{p.range_:g} V"')
            if not self.reference.covers(p.nominal):
                raise ConfigError(bench.source, f"instruments.{self.source_role}.certificate.dcv",
                                  f"certificate does not cover {p.nominal:g} V", "add the range to the certificate")

    # -- one point -----------------------------------------------------------------------------
    def tolerance(self, point: DcPoint) -> float:
        return self.specs[point.range_].tolerance(point.nominal)

    def criteria(self, point: DcPoint) -> StabilityCriteria:
        return self.stability_ppm.scaled(point.range_ * 1e-6)

    async def measure(self, ctx: PointContext, point: DcPoint) -> PointData:
        meter: Meter = ctx.instruments[self.uut_role]
        src: Source = ctx.instruments[self.source_role]
        clock = ctx.clock
        ctx.show("configuring")
        settle_nplc = self.settle_nplc or self.nplc
        await meter.configure("dcv", point.range_, settle_nplc)
        hazardous = abs(point.nominal) > HAZARDOUS_VOLTS
        if hazardous:
            await src.standby()  # nobody is asked anything with an output live
        if hazardous and not await ctx.confirm(
            f"{point.nominal:g} V is a hazardous voltage. Are the UUT leads connected and guarded?"
        ):
            raise OperatorDeclined(f"operator declined {point.nominal:g} V")
        await src.set_output(point.nominal, "V")
        await src.operate()
        criteria = self.criteria(point)
        if self.band_ppm is not None:
            criteria = dataclasses.replace(criteria, band=self.band_ppm * 1e-6 * point.range_)

        async def sample() -> tuple[float, bool | None]:
            reading, settled = await asyncio.gather(meter.read(1), src.is_settled(), return_exceptions=True)
            if isinstance(settled, BaseException):
                raise settled
            if isinstance(reading, MeterOverload):
                value = math.inf  # still coming down from the previous point: not stable yet
            elif isinstance(reading, BaseException):
                raise reading
            else:
                value = reading[0]
            await ctx.record(Reading("settle", clock.now(), value, "V", settled))
            return value, settled

        ctx.show("settling")
        record = await wait_until_stable(sample, criteria, clock, target=point.nominal,
                                         on_check=lambda c: ctx.show("settling", c))
        if not record.stable:
            raise StabilityTimeout(point.label, record)
        if settle_nplc != self.nplc:
            await meter.configure("dcv", point.range_, self.nplc)
        uut: list[float] = []
        ref: list[float] = []
        for i in range(self.repeats):
            ctx.show(f"reading {i + 1}/{self.repeats}")
            values, (ref_value, _unit) = await asyncio.gather(meter.read(1), src.output())
            t = clock.now()
            await ctx.record(Reading("uut", t, values[0], "V"))
            await ctx.record(Reading("ref", t, ref_value, "V"))
            uut.append(values[0])
            ref.append(ref_value)
        return PointData(uut, ref, record)

    def evaluate(self, point: DcPoint, uut: list[float], ref: list[float], uut_resolution: float) -> PointResult:
        assert self.reference is not None, "validate() first"
        return evaluate_comparison_point(
            point.nominal, "V", uut, ref,
            reference_u=self.reference.standard_uncertainty(point.nominal),
            reference_dof=self.reference.dof,
            uut_resolution=uut_resolution,
            tolerance=self.tolerance(point),
            rule=self.decision_rule,
            p=self.coverage,
            ref_note=f"{self.source_role} certificate, k = {self.reference.k:g}",
            guard_band_factor=self.guard_band_factor,
        )


def _seconds(value: Any, source: str, field_name: str) -> float:
    return magnitude_in(parse_quantity(value, source=source, field=field_name, unit="s"), "s",
                        source=source, field=field_name)


def _volts(value: Any, source: str, field_name: str) -> float:
    return magnitude_in(parse_quantity(value, source=source, field=field_name, unit="V"), "V",
                        source=source, field=field_name)


def _guard_band_factor(head: dict[str, Any], rule: Rule, source: str) -> float | None:
    if "guard_band" not in head:
        return None
    value = head["guard_band"]
    if rule != "guarded":
        raise ConfigError(source, "procedure.guard_band", "a guard band needs the guarded decision rule",
                          'write decision_rule = "guarded", or remove guard_band')
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3:
        raise ConfigError(source, "procedure.guard_band", f"expected a multiple of U between 0 and 3, got {value!r}",
                          "write e.g. guard_band = 0.5 (w = 0.5 U; ILAC-G8:2019 4.2.3)")
    return float(value)


def _optional_positive(table: dict[str, Any], key: str, source: str, where: str) -> float | None:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(source, f"{where}.{key}", f"expected a number > 0, got {value!r}", f"write e.g. {key} = 1.0")
    return float(value)


def _non_negative_seconds(table: dict[str, Any], key: str, source: str) -> float:
    seconds = _seconds(table.get(key, "0 s"), source, f"stability.{key}")
    if seconds < 0:
        raise ConfigError(source, f"stability.{key}", f"expected a time >= 0, got {seconds!r} s",
                          f'write {key} = "1 s"')
    return seconds


def load_procedure(path: str | Path) -> DcVoltageProcedure:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), "(file)", f"cannot read: {exc.strerror}",
                          "give the path of a procedure TOML file") from exc
    return parse_procedure(text, source=str(p))


def parse_procedure(text: str, *, source: str = "<procedure>") -> DcVoltageProcedure:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc), "fix the TOML syntax at the line shown") from exc
    head = data.get("procedure", {})
    roles = data.get("roles", {})
    stab = data.get("stability", {})
    kind = head.get("kind", "dc_voltage")
    if kind != "dc_voltage":
        raise ConfigError(source, "procedure.kind", f"unknown procedure kind {kind!r}", 'use kind = "dc_voltage"')
    repeats = head.get("repeats", 10)
    if not isinstance(repeats, int) or repeats < 2:
        raise ConfigError(source, "procedure.repeats", f"expected an integer >= 2, got {repeats!r}",
                          "type A needs at least 2 repeats; 10 is usual")
    rule_text = head.get("decision_rule", "guarded")
    if rule_text not in ("guarded", "simple"):
        raise ConfigError(source, "procedure.decision_rule", f"unknown rule {rule_text!r}", 'use "guarded" or "simple"')
    rule: Rule = "guarded" if rule_text == "guarded" else "simple"
    specs: dict[float, AccuracySpec] = {}
    for i, spec in enumerate(data.get("uut_spec", [])):
        where = f"uut_spec[{i}]"
        rng = _volts(spec.get("range"), source, f"{where}.range")
        try:
            specs[rng] = AccuracySpec(rng, float(spec["ppm_of_reading"]), float(spec["ppm_of_range"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(source, where, "needs ppm_of_reading and ppm_of_range numbers",
                              "copy them from the UUT's accuracy specification") from exc
    points: list[DcPoint] = []
    for i, group in enumerate(data.get("points", [])):
        where = f"points[{i}]"
        rng = _volts(group.get("range"), source, f"{where}.range")
        setpoints = group.get("setpoints")
        if not isinstance(setpoints, list) or not setpoints:
            raise ConfigError(source, f"{where}.setpoints", "missing or empty", 'write setpoints = ["0 V", "10 V"]')
        for j, sp in enumerate(setpoints):
            v = _volts(sp, source, f"{where}.setpoints[{j}]")
            points.append(PlannedPoint(len(points), v, "V", rng, f"{sp} on {group.get('range')}",
                                       f"{where}.setpoints[{j}]"))
    if not points:
        raise ConfigError(source, "points", "no calibration points", 'add [[points]] range = "10 V" setpoints = [...]')
    window = stab.get("window", 10)
    if isinstance(window, bool) or not isinstance(window, int) or window < 3:
        raise ConfigError(source, "stability.window", f"expected a whole number of readings >= 3, got {window!r}",
                          "write window = 10")
    timeout = _seconds(stab.get("timeout", "300 s"), source, "stability.timeout")
    if not timeout > 0:
        raise ConfigError(source, "stability.timeout", f"expected a time > 0, got {timeout!r} s",
                          'write timeout = "300 s"')
    criteria = StabilityCriteria(
        window=window,
        max_std=_optional_positive(stab, "max_std_ppm", source, "stability"),
        max_slope=_optional_positive(stab, "max_slope_ppm_per_s", source, "stability"),
        band=None,
        min_soak=_non_negative_seconds(stab, "min_soak", source),
        timeout=timeout,
        interval=_non_negative_seconds(stab, "interval", source),
        use_instrument_flag=bool(stab.get("use_instrument_flag", True)),
    )
    coverage = head.get("coverage", 0.9545)
    if isinstance(coverage, bool) or not isinstance(coverage, int | float) or not 0 < coverage < 1:
        raise ConfigError(source, "procedure.coverage", f"expected a probability between 0 and 1, got {coverage!r}",
                          "write coverage = 0.9545 (not a percentage)")
    return DcVoltageProcedure(
        name=str(head.get("name", "DC voltage calibration")),
        source_role=str(roles.get("source", "calibrator")),
        uut_role=str(roles.get("uut", "dmm")),
        points=points,
        specs=specs,
        stability_ppm=criteria,
        band_ppm=_optional_positive(stab, "band_ppm", source, "stability"),
        repeats=repeats,
        nplc=_optional_positive(head, "nplc", source, "procedure") or 10.0,
        settle_nplc=_optional_positive(head, "settle_nplc", source, "procedure"),
        decision_rule=rule,
        guard_band_factor=_guard_band_factor(head, rule, source),
        coverage=float(coverage),
        source=source,
        text=text,
    )
