"""Thermometer calibration by comparison in a bath: up to 8 UUT channels against a reference.

At each temperature point: set the bath, wait until the reference reading is stable (the
statistical criteria *and* the bath's own `SOUR:STAB:TEST?` flag), then take N cycles, each
sampling the reference, every UUT channel and the bath's control sensor concurrently
(`asyncio.gather`: a cycle costs about one readout's latency, not one per channel).

Model for each UUT channel (error of indication, degC):

    E = x_uut - (x_ref + c_ref) - d_std + d_res + d_ref_res + d_stab + d_unif

- x_uut, x_ref: means of the UUT and reference readings (type A, n - 1 dof);
- c_ref: the reference's certificate correction (true - indicated) interpolated at x_ref;
  d_std its certificate uncertainty U/k (the larger of the two bracketing points);
- d_res, d_ref_res: display resolutions (rectangular, a = resolution / 2);
- d_stab: bath stability over the measurement (rectangular, a = the stated stability);
- d_unif: bath uniformity between the reference's and the UUT's positions (rectangular,
  a = uniformity + uniformity_per_degree * |T - ambient|), from the bath's characterisation.

Bench file: `[instruments.<reference>.certificate.temperature]` with `channel`, `k` and
`points = [{ at = 0.0, correction = -0.0013, U = 0.003 }, ...]`; the bath's
`[instruments.<bath>.certificate.characterisation]` with `stability`, `uniformity`,
`uniformity_per_degree`, `ambient` (degC, half-widths).

Procedure file (TOML):
```toml
[procedure]
name = "PRT comparison 0..100 C"
repeats = 10
interval = "10 s"            # between sampling cycles
tolerance = 0.1              # +- degC, the UUT class limit used for the decision
decision_rule = "guarded"
[roles]
bath = "bath"
reference = "reference"
reference_channel = 1
uuts = ["uut_a.1", "uut_a.2", "uut_b.1"]   # readout.channel, at most 8
[stability]                  # degC and degC/s, on the reference reading
window = 20
max_std = 0.003
max_slope = 2e-5
interval = "10 s"
timeout = "3 h"
[[points]]
setpoints = [0.0, 50.0, 100.0]
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
from daq.certificate import CorrectionTable
from daq.clock import Clock
from daq.errors import ConfigError
from daq.reading import Reading
from daq.stability import StabilityCriteria, StabilityRecord, wait_until_stable
from daq.units import magnitude_in, parse_quantity
from drivers.capabilities import Controller, Thermometer
from procedures.base import DriverClassOf, PlannedPoint, PointOutcome, StabilityTimeout
from procedures.context import PointContext
from procedures.file_fields import probability, whole_number
from results.decision import Rule, decide
from results.gum import DEFAULT_COVERAGE_PROBABILITY, UncertaintyBudget, UncertaintyComponent, type_a
from results.measurement_model import MeasurementModel, evaluate_gum
from results.model_inputs import InputQuantity
from results.point import PointResult
from results.rounding import round_result

UNIT = "degC"
MAX_UUTS = 8
COMPARISON_MODEL = "x_uut - x_ref - c_ref - d_std + d_res + d_ref_res + d_stab + d_unif"


@dataclass(frozen=True)
class ReferenceCertificate(CorrectionTable):
    """The reference thermometer's certificate: the bench's correction table and the channel it is for."""

    channel: int = 1

    def covers(self, temperature: float, margin: float = 1.0) -> bool:
        return super().covers(temperature, margin)

    @classmethod
    def from_bench(cls, bench: Bench, role: str) -> ReferenceCertificate:
        where = f"instruments.{role}.certificate.temperature"
        fix = "add channel = 1, k = 2.0 and points = [{ at = 0.0, correction = -0.0013, U = 0.003 }, ...]"
        cert = bench.instruments[role].certificate.get("temperature")
        if not isinstance(cert, dict):
            raise ConfigError(bench.source, where, "the reference thermometer has no temperature certificate", fix)
        channel = cert.get("channel", 1)
        if isinstance(channel, bool) or not isinstance(channel, int) or channel < 1:
            raise ConfigError(bench.source, f"{where}.channel", f"expected a channel number, got {channel!r}", fix)
        table = CorrectionTable.parse(cert, source=bench.source, where=where,
                                      example="at = 0.0, correction = -0.0013, U = 0.003",
                                      order="from the coldest to the hottest")
        return cls(table.k, table.points, table.dof, channel)


@dataclass(frozen=True)
class BathCharacterisation:
    """The bath's stated stability and uniformity (half-widths, degC)."""

    stability: float
    uniformity: float
    uniformity_per_degree: float = 0.0
    ambient: float = 23.0

    def uniformity_at(self, temperature: float) -> float:
        return self.uniformity + self.uniformity_per_degree * abs(temperature - self.ambient)

    @classmethod
    def from_bench(cls, bench: Bench, role: str) -> BathCharacterisation:
        where = f"instruments.{role}.certificate.characterisation"
        fix = "add stability = 0.005, uniformity = 0.002, uniformity_per_degree = 1e-4, ambient = 23.0 (degC)"
        table = bench.instruments[role].certificate.get("characterisation")
        if not isinstance(table, dict):
            raise ConfigError(bench.source, where, "the bath has no stability/uniformity characterisation", fix)
        values: dict[str, float] = {}
        for key, default in (("stability", None), ("uniformity", None), ("uniformity_per_degree", 0.0),
                             ("ambient", 23.0)):
            value = table.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or (
                    key != "ambient" and value < 0):
                raise ConfigError(bench.source, f"{where}.{key}", f"expected a number >= 0, got {value!r}", fix)
            values[key] = float(value)
        return cls(**values)


@dataclass(frozen=True)
class UutChannel:
    instrument: str
    channel: int

    @property
    def label(self) -> str:
        return f"{self.instrument}.{self.channel}"


@dataclass
class ComparisonData:
    """The raw readings of one point: per cycle, the reference and every UUT channel."""

    setpoint: float
    reference: list[float]
    uuts: dict[str, list[float]]
    bath: list[float]
    times: list[float]
    stability: StabilityRecord


@dataclass
class ThermometerComparison:
    name: str
    bath_role: str
    reference_role: str
    reference_channel: int
    uuts: list[UutChannel]
    setpoints: list[float]
    criteria: StabilityCriteria
    tolerance: float
    repeats: int = 10
    interval: float = 10.0
    decision_rule: Rule = "guarded"
    coverage: float = DEFAULT_COVERAGE_PROBABILITY
    source: str = "<procedure>"
    text: str = ""
    certificate: ReferenceCertificate | None = field(default=None, repr=False)
    bath_spec: BathCharacterisation | None = field(default=None, repr=False)

    kind = "thermometer_comparison"

    # -- what the runner asks of every procedure (procedures.base.Procedure) -------------------
    @property
    def points(self) -> list[PlannedPoint]:
        return [PlannedPoint(i, sp, UNIT, 0.0, f"{sp:g} C", f"points.setpoints[{i}]")
                for i, sp in enumerate(self.setpoints)]

    def instrument_names(self) -> tuple[str, ...]:
        names = [self.bath_role, self.reference_role] + [u.instrument for u in self.uuts]
        return tuple(dict.fromkeys(names))

    def noisy_channels(self, instruments: Mapping[str, Any], point: PlannedPoint) -> dict[str, tuple[str, float]]:
        def resolution(name: str) -> float:
            try:
                return float(instruments[name].resolution())
            except Exception:  # noqa: BLE001 - no resolution known: the stuck check stays silent
                return 0.0

        channels = {"ref": (f"{self.reference_role}.{self.reference_channel}", resolution(self.reference_role))}
        for u in self.uuts:
            channels[f"uut:{u.label}"] = (u.label, resolution(u.instrument))
        return channels

    async def run_point(self, ctx: PointContext, point: PlannedPoint) -> PointOutcome:
        instruments = ctx.instruments
        readouts = {u.instrument: instruments[u.instrument] for u in self.uuts}
        data = await self.measure_point(point.nominal, instruments[self.bath_role], instruments[self.reference_role],
                                        readouts, ctx.clock, ctx=ctx)
        reference_resolution = float(instruments[self.reference_role].resolution())
        results = {
            u.label: evaluate_thermometer_point(
                data.setpoint, data.uuts[u.label], data.reference, self._certificate, self._bath,
                uut_resolution=float(readouts[u.instrument].resolution()),
                reference_resolution=reference_resolution, tolerance=self.tolerance, rule=self.decision_rule,
                p=self.coverage, ref_note=f"{self.reference_role} certificate, k = {self._certificate.k:g}",
            )
            for u in self.uuts
        }
        return PointOutcome(data.stability, results)

    @property
    def _certificate(self) -> ReferenceCertificate:
        assert self.certificate is not None, "validate() first"
        return self.certificate

    @property
    def _bath(self) -> BathCharacterisation:
        assert self.bath_spec is not None, "validate() first"
        return self.bath_spec

    def validate(self, bench: Bench, driver_class: DriverClassOf | None = None) -> None:
        """Everything that can be known wrong before the bath is switched on."""
        roles = [("roles.bath", self.bath_role), ("roles.reference", self.reference_role)]
        roles += [(f"roles.uuts[{i}]", u.instrument) for i, u in enumerate(self.uuts)]
        for where, role in roles:
            if role not in bench.instruments:
                raise ConfigError(self.source, where, f"the bench {bench.source} has no instrument {role!r}",
                                  f"use one of {', '.join(sorted(bench.instruments))}")
        if driver_class is not None:  # a channel the readout does not have is found now, not at 100 C
            for i, u in enumerate(self.uuts):
                channels = getattr(driver_class(u.instrument), "channels", None)
                if channels is not None and u.channel not in channels:
                    has = ", ".join(map(str, channels))
                    raise ConfigError(self.source, f"roles.uuts[{i}]",
                                      f"{u.instrument} has no channel {u.channel} (it has {has})",
                                      "name a channel the readout has")
        self.certificate = ReferenceCertificate.from_bench(bench, self.reference_role)
        if self.certificate.channel != self.reference_channel:
            raise ConfigError(bench.source, f"instruments.{self.reference_role}.certificate.temperature.channel",
                              f"certificate is for channel {self.certificate.channel}, the procedure reads "
                              f"channel {self.reference_channel}", "make roles.reference_channel match the probe")
        self.bath_spec = BathCharacterisation.from_bench(bench, self.bath_role)
        for i, sp in enumerate(self.setpoints):
            if not self.certificate.covers(sp):
                raise ConfigError(self.source, f"points.setpoints[{i}]",
                                  f"{sp:g} C is outside the reference certificate "
                                  f"({self.certificate.points[0][0]:g}..{self.certificate.points[-1][0]:g} C)",
                                  "choose points the certificate covers")
        wired = {bench.wired_to(f"{u.instrument}.ch{u.channel}") for u in self.uuts}
        wired.add(bench.wired_to(f"{self.reference_role}.ch{self.reference_channel}"))
        for terminal in wired:
            if terminal is not None and terminal.split(".", 1)[0] != self.bath_role:
                raise ConfigError(bench.source, "wiring", f"a probe is wired to {terminal}, not to the bath",
                                  f'wire every probe from "{self.bath_role}.wellN"')

    async def measure_point(
        self,
        setpoint: float,
        bath: Controller,
        reference: Thermometer,
        readouts: dict[str, Thermometer],
        clock: Clock,
        *,
        ctx: PointContext | None = None,
    ) -> ComparisonData:
        """Set the bath, wait for stability, then `repeats` concurrent cycles over every channel.

        With a runner's `ctx`, every raw reading is recorded as it is taken (channels "settle",
        "ref", "uut:<readout>.<channel>", "bath") and progress is shown."""

        async def record(channel: str, t: float, value: float, flag: bool | None = None) -> None:
            if ctx is not None:
                await ctx.record(Reading(channel, t, value, UNIT, flag))

        if ctx is not None:
            ctx.show("setting the bath")
        await bath.set_setpoint(setpoint)

        async def sample() -> tuple[float, bool | None]:
            value, flag = await asyncio.gather(reference.read(self.reference_channel), bath.is_stable())
            await record("settle", clock.now(), value, flag)
            return value, flag

        on_check = (lambda c: ctx.show("settling", c)) if ctx is not None else None
        record_ = await wait_until_stable(sample, self.criteria, clock, on_check=on_check)
        if not record_.stable:
            raise StabilityTimeout(f"{setpoint:g} C", record_)
        record_stability = record_
        ref: list[float] = []
        uut: dict[str, list[float]] = {u.label: [] for u in self.uuts}
        control: list[float] = []
        times: list[float] = []
        for i in range(self.repeats):
            if i:
                await clock.sleep(self.interval)
            if ctx is not None:
                ctx.show(f"cycle {i + 1}/{self.repeats}")
            values = await asyncio.gather(
                reference.read(self.reference_channel),
                *(readouts[u.instrument].read(u.channel) for u in self.uuts),
                bath.read_value(),
            )
            now = clock.now()
            times.append(now)
            await record("ref", now, values[0])
            for u, value in zip(self.uuts, values[1:-1], strict=True):
                await record(f"uut:{u.label}", now, value)
            await record("bath", now, values[-1])
            ref.append(values[0])
            for u, value in zip(self.uuts, values[1:-1], strict=True):
                uut[u.label].append(value)
            control.append(values[-1])
        return ComparisonData(setpoint, ref, uut, control, times, record_stability)

    def evaluate(
        self, data: ComparisonData, *, uut_resolution: float, reference_resolution: float
    ) -> dict[str, PointResult]:
        """One point result per UUT channel (error of indication, budget, decision)."""
        assert self.certificate is not None and self.bath_spec is not None, "validate() first"
        return {
            label: evaluate_thermometer_point(
                data.setpoint, values, data.reference, self.certificate, self.bath_spec,
                uut_resolution=uut_resolution, reference_resolution=reference_resolution,
                tolerance=self.tolerance, rule=self.decision_rule, p=self.coverage,
                ref_note=f"{self.reference_role} certificate, k = {self.certificate.k:g}",
            )
            for label, values in data.uuts.items()
        }


def evaluate_thermometer_point(
    setpoint: float,
    uut_values: list[float],
    ref_values: list[float],
    certificate: ReferenceCertificate,
    bath: BathCharacterisation,
    *,
    uut_resolution: float,
    reference_resolution: float,
    tolerance: float,
    rule: Rule = "guarded",
    p: float = DEFAULT_COVERAGE_PROBABILITY,
    ref_note: str = "",
) -> PointResult:
    """E = x_uut - (x_ref + c_ref) with the reference, resolution and bath terms (module docstring)."""
    if tolerance <= 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance!r}")
    uut = type_a("UUT repeatability", uut_values, sensitivity=1.0, unit=UNIT)
    ref = type_a("reference repeatability", ref_values, sensitivity=-1.0, unit=UNIT)
    assert uut.value is not None and ref.value is not None
    correction = certificate.correction(ref.value)
    u_std = certificate.standard_uncertainty(ref.value)
    uniformity = bath.uniformity_at(ref.value)
    inputs = {
        "x_uut": InputQuantity("x_uut", uut.value, uut.u, uut.dof, "t", unit=UNIT),
        "x_ref": InputQuantity("x_ref", ref.value, ref.u, ref.dof, "t", unit=UNIT),
        "c_ref": InputQuantity("c_ref", correction, 0.0, unit=UNIT),
        "d_std": InputQuantity("d_std", 0.0, u_std, certificate.dof,
                               "normal" if math.isinf(certificate.dof) else "t", unit=UNIT),
        "d_res": InputQuantity.from_half_width("d_res", 0.0, uut_resolution / 2, "rectangular", unit=UNIT),
        "d_ref_res": InputQuantity.from_half_width("d_ref_res", 0.0, reference_resolution / 2, "rectangular",
                                                   unit=UNIT),
        "d_stab": InputQuantity.from_half_width("d_stab", 0.0, bath.stability, "rectangular", unit=UNIT),
        "d_unif": InputQuantity.from_half_width("d_unif", 0.0, uniformity, "rectangular", unit=UNIT),
    }
    model = MeasurementModel({"E": COMPARISON_MODEL}, inputs, output_units={"E": UNIT}, source="point")
    estimate = evaluate_gum(model, p)["E"]
    c = {line.input: line.sensitivity for line in estimate.budget}

    def b(name: str, key: str, note: str) -> UncertaintyComponent:
        q = inputs[key]
        return UncertaintyComponent(name, "B", q.distribution, q.u, c[key], q.dof, note=note)

    budget = UncertaintyBudget((
        uut, ref,
        b("reference standard", "d_std", f"{ref_note}; correction {correction:+.4f} C applied"),
        b("UUT resolution", "d_res", f"a = {uut_resolution / 2:.3g} C"),
        b("reference resolution", "d_ref_res", f"a = {reference_resolution / 2:.3g} C"),
        b("bath stability", "d_stab", f"a = {bath.stability:.3g} C"),
        b("bath uniformity", "d_unif", f"a = {uniformity:.3g} C"),
    ), p=p)
    reported = round_result(estimate.value, estimate.U)
    decision = decide(estimate.value, estimate.U, -tolerance, tolerance, rule=rule)
    return PointResult(
        nominal=setpoint, unit=UNIT, n=len(uut_values), ref_mean=ref.value + correction, uut_mean=uut.value,
        uut_std=uut.u * math.sqrt(len(uut_values)), error=estimate.value, correction=-estimate.value,
        u_c=estimate.u, dof_eff=estimate.dof, k=estimate.k, U=reported.U, error_rounded=reported.value,
        U_unrounded=estimate.U, tolerance=tolerance, decision=decision, budget=budget,
        error_text=reported.value_text, U_text=reported.U_text,
    )


def _seconds(value: Any, source: str, field_name: str) -> float:
    return magnitude_in(parse_quantity(value, source=source, field=field_name, unit="s"), "s",
                        source=source, field=field_name)


def _number(table: dict[str, Any], key: str, default: float | None, source: str, where: str) -> float | None:
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(source, f"{where}.{key}", f"expected a number, got {value!r}", f"write e.g. {key} = 0.01")
    return float(value)


def parse_procedure(text: str, *, source: str = "<procedure>") -> ThermometerComparison:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc), "fix the TOML syntax at the line shown") from exc
    head = data.get("procedure", {})
    roles = data.get("roles", {})
    stab = data.get("stability", {})
    repeats = head.get("repeats", 10)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 2:
        raise ConfigError(source, "procedure.repeats", f"expected an integer >= 2, got {repeats!r}",
                          "type A needs at least 2 repeats; 10 is usual")
    tolerance = _number(head, "tolerance", None, source, "procedure")
    if tolerance is None or tolerance <= 0:
        raise ConfigError(source, "procedure.tolerance", f"expected the UUT limit in degC > 0, got {tolerance!r}",
                          "write tolerance = 0.1")
    rule_text = head.get("decision_rule", "guarded")
    if rule_text not in ("guarded", "simple"):
        raise ConfigError(source, "procedure.decision_rule", f"unknown rule {rule_text!r}", 'use "guarded" or "simple"')
    rule: Rule = "guarded" if rule_text == "guarded" else "simple"
    raw_uuts = roles.get("uuts")
    if not isinstance(raw_uuts, list) or not raw_uuts:
        raise ConfigError(source, "roles.uuts", "no UUT channels", 'write uuts = ["uut_a.1", "uut_a.2"]')
    if len(raw_uuts) > MAX_UUTS:
        raise ConfigError(source, "roles.uuts", f"{len(raw_uuts)} UUT channels, at most {MAX_UUTS}",
                          "split the UUTs over two runs")
    uuts = []
    for i, item in enumerate(raw_uuts):
        name, _, ch = str(item).rpartition(".")
        if not name or not ch.isdigit():
            raise ConfigError(source, f"roles.uuts[{i}]", f"{item!r} is not readout.channel",
                              'write e.g. "uut_a.1"')
        uuts.append(UutChannel(name, int(ch)))
    if len({u.label for u in uuts}) != len(uuts):
        raise ConfigError(source, "roles.uuts", "a channel is listed twice", "list each UUT channel once")
    setpoints: list[float] = []
    for i, group in enumerate(data.get("points", [])):
        values = group.get("setpoints")
        if not isinstance(values, list) or not values:
            raise ConfigError(source, f"points[{i}].setpoints", "missing or empty", "write setpoints = [0.0, 50.0]")
        for j, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ConfigError(source, f"points[{i}].setpoints[{j}]", f"expected degC as a number, got {v!r}",
                                  "write setpoints = [0.0, 50.0]")
            setpoints.append(float(v))
    if not setpoints:
        raise ConfigError(source, "points", "no temperature points", "add [[points]] setpoints = [0.0, 50.0]")
    criteria = StabilityCriteria(
        window=whole_number(stab, "window", 20, minimum=3, source=source, where="stability"),
        max_std=_number(stab, "max_std", None, source, "stability"),
        max_slope=_number(stab, "max_slope", None, source, "stability"),
        min_soak=_seconds(stab.get("min_soak", "0 s"), source, "stability.min_soak"),
        timeout=_seconds(stab.get("timeout", "3 h"), source, "stability.timeout"),
        interval=_seconds(stab.get("interval", "10 s"), source, "stability.interval"),
        use_instrument_flag=bool(stab.get("use_instrument_flag", True)),
    )
    reference_channel = roles.get("reference_channel", 1)
    if isinstance(reference_channel, bool) or not isinstance(reference_channel, int):
        raise ConfigError(source, "roles.reference_channel", f"expected a channel number, got {reference_channel!r}",
                          "write reference_channel = 1")
    return ThermometerComparison(
        name=str(head.get("name", "thermometer comparison")),
        bath_role=str(roles.get("bath", "bath")),
        reference_role=str(roles.get("reference", "reference")),
        reference_channel=reference_channel,
        uuts=uuts,
        setpoints=setpoints,
        criteria=criteria,
        tolerance=tolerance,
        repeats=repeats,
        interval=_seconds(head.get("interval", "10 s"), source, "procedure.interval"),
        decision_rule=rule,
        coverage=probability(head, "coverage", DEFAULT_COVERAGE_PROBABILITY, source=source, where="procedure"),
        source=source,
        text=text,
    )
