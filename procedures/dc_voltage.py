"""DC voltage (and, as `kind = "dmm_multifunction"`, AC voltage and resistance) calibration of a
DMM against a multifunction calibrator.

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

Multi-function file (`kind = "dmm_multifunction"`): the same fields, plus a `function` on
points and specs ("dcv" when left out, "acv", "ohms"); a `kind = "dc_voltage"` file refuses
any function but "dcv" (the CLI's simulator truth is the DC one for that kind).
```toml
[procedure]
kind = "dmm_multifunction"
...
[stability]                  # the defaults, in ppm of range, for every function ...
window = 10
max_std_ppm = 1.5
[stability.acv]              # ... overridden per function by any of the same keys
max_std_ppm = 40
band_ppm = 20000
[[uut_spec]]
function = "acv"
range = "1 V"
fmin = "10 Hz"               # acv only: the frequency band the spec holds for (both ends included)
fmax = "20 kHz"
ppm_of_reading = 600
ppm_of_range = 300
[[uut_spec]]
function = "ohms"            # one spec for 2-wire and 4-wire on that range
range = "100 ohm"
ppm_of_reading = 80
ppm_of_range = 40
[[points]]
function = "acv"
range = "1 V"
frequencies = ["1 kHz", "20 kHz"]   # or frequency = "1 kHz"; every setpoint at every frequency
setpoints = ["0.1 V", "1 V"]        # RMS
[[points]]
function = "ohms"
wires = 4                    # 4 (default): CONF:FRES; 2: CONF:RES (the leads are part of the error found)
range = "100 ohm"
setpoints = ["0 ohm", "100 ohm"]
```
The reference's uncertainty per function comes from the bench file's calibrator certificate:
`certificate.dcv` (k, ranges of upto/ppm/floor in V), `certificate.acv` (k, bands =
[{ upto V, fmin Hz, fmax Hz, ppm, floor V }], the first band holding the point) and
`certificate.ohms` (k, ranges of upto/ppm/floor in ohm). `dcv` and `ohms` may instead be in the
point form of a certificate as issued (k, points = [{ at, correction, U }], signed `at`; what the
equipment register hands the run): U from the bracketing points, and the correction added to the
reference's readings. The model is E = x_UUT - x_ref at every point (for ohms, x_ref is the
calibrator's resistance).
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
from daq.certificate import CorrectionTable
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
FUNCTIONS = ("dcv", "acv", "ohms")
FUNCTION_UNITS = {"dcv": "V", "acv": "V", "ohms": "ohm"}
MULTIFUNCTION_KIND = "dmm_multifunction"


@dataclass(frozen=True)
class DcPoint(PlannedPoint):
    """A planned point with its function ("dcv", "acv" at `frequency` Hz, "ohms" with `wires`)."""

    function: str = "dcv"
    frequency: float = 0.0
    wires: int = 4

    def as_plan(self) -> dict[str, Any]:
        plan = super().as_plan()
        if self.function != "dcv":  # a DC point's plan is what it always was (resume compares plans)
            plan["function"] = self.function
            if self.function == "acv":
                plan["frequency"] = self.frequency
            if self.function == "ohms":
                plan["wires"] = self.wires
        return plan

    @property
    def meter_function(self) -> str:
        """What the DMM is configured for: "ohms" 2-wire is CONF:RES, 4-wire CONF:FRES."""
        if self.function == "ohms":
            return "fres" if self.wires == 4 else "ohms"
        return self.function


def _function_of(point: PlannedPoint) -> str:
    return point.function if isinstance(point, DcPoint) else "dcv"


@dataclass(frozen=True)
class AccuracySpec:
    range_: float
    ppm_of_reading: float
    ppm_of_range: float
    function: str = "dcv"
    fmin: float = 0.0  # acv: the frequency band (Hz) this spec holds for
    fmax: float = math.inf

    def holds_at(self, frequency: float) -> bool:
        return self.fmin <= frequency <= self.fmax

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
    points: CorrectionTable | None = None
    """The certificate as issued, per point (the equipment register's form): correction and U at each `at`."""

    def standard_uncertainty(self, volts: float) -> float:
        if self.points is not None:
            return self.points.standard_uncertainty(volts)
        for upto, ppm, floor in self.ranges:
            if abs(volts) <= upto:
                return (ppm * 1e-6 * abs(volts) + floor) / self.k
        raise ValueError(f"{volts} V is beyond the reference certificate")

    @classmethod
    def from_certificate(cls, bench: Bench, role: str, quantity: str = "dcv") -> ReferenceUncertainty:
        cert = bench.instruments[role].certificate.get(quantity)
        where = f"instruments.{role}.certificate.{quantity}"
        what = "DC voltage" if quantity == "dcv" else "resistance" if quantity == "ohms" else quantity
        example = "{ upto = 33, ppm = 10, floor = 20e-6 }" if quantity == "dcv" else \
            "{ upto = 110, ppm = 28, floor = 1.4e-3 }"
        fix = f"add k = 2.0 and ranges = [{example}, ...] from its certificate"
        if not isinstance(cert, dict):
            raise ConfigError(bench.source, where, f"the reference standard has no {what} certificate", fix)
        if "points" in cert:  # per-point values (correction, U) as the register's certificate states them
            table = CorrectionTable.parse(cert, source=bench.source, where=where,
                                          example="at = 1.0, correction = 2e-6, U = 6e-6")
            return cls(table.k, [], table.dof, table)
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
        if self.points is not None:
            return self.points.covers(volts)
        return any(abs(volts) <= upto for upto, _, _ in self.ranges)

    def correction(self, value: float) -> float:
        """True - indicated at `value`: stated per point by a point certificate, none by a ppm-and-floor one."""
        return self.points.correction(value) if self.points is not None else 0.0


@dataclass
class AcReferenceUncertainty:
    """The reference's stated AC voltage uncertainty: ppm of output + floor in the first band
    (amplitude up to `upto`, fmin <= f <= fmax) that holds the point, at k."""

    k: float
    bands: list[tuple[float, float, float, float, float]]  # (upto V, fmin Hz, fmax Hz, ppm, floor V)
    dof: float = math.inf

    def band(self, volts: float, hertz: float) -> tuple[float, float, float, float, float] | None:
        for band in self.bands:
            if abs(volts) <= band[0] and band[1] <= hertz <= band[2]:
                return band
        return None

    def covers(self, volts: float, hertz: float) -> bool:
        return self.band(volts, hertz) is not None

    def standard_uncertainty(self, volts: float, hertz: float) -> float:
        band = self.band(volts, hertz)
        if band is None:
            raise ValueError(f"{volts} V at {hertz} Hz is beyond the reference certificate")
        return (band[3] * 1e-6 * abs(volts) + band[4]) / self.k

    @classmethod
    def from_certificate(cls, bench: Bench, role: str) -> AcReferenceUncertainty:
        cert = bench.instruments[role].certificate.get("acv")
        where = f"instruments.{role}.certificate.acv"
        fix = ("add k = 2.0 and bands = [{ upto = 3.3, fmin = 45, fmax = 10000, ppm = 150, floor = 60e-6 }, ...] "
               "from its certificate")
        if not isinstance(cert, dict):
            raise ConfigError(bench.source, where, "the reference standard has no AC voltage certificate", fix)
        k = cert.get("k")
        if isinstance(k, bool) or not isinstance(k, int | float) or k <= 0:
            raise ConfigError(bench.source, f"{where}.k", f"expected a coverage factor > 0, got {k!r}", fix)
        bands = []
        for i, b in enumerate(cert.get("bands", [])):
            try:
                bands.append((float(b["upto"]), float(b["fmin"]), float(b["fmax"]), float(b["ppm"]),
                              float(b["floor"])))
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(bench.source, f"{where}.bands[{i}]",
                                  f"needs upto, fmin, fmax, ppm and floor: {b!r}", fix) from exc
        if not bands:
            raise ConfigError(bench.source, f"{where}.bands", "missing or empty", fix)
        dof = cert.get("dof", math.inf)
        if isinstance(dof, bool) or not isinstance(dof, int | float) or not dof > 0:
            raise ConfigError(bench.source, f"{where}.dof", f"expected degrees of freedom > 0, got {dof!r}",
                              "leave it out for a certificate stated with k from the normal distribution")
        return cls(float(k), bands, float(dof))


@dataclass
class DcVoltageProcedure:
    name: str
    source_role: str
    uut_role: str
    points: list[PlannedPoint]
    specs: dict[float, AccuracySpec]  # the DC voltage specs by range
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
    kind: str = "dc_voltage"
    function_specs: list[AccuracySpec] = field(default_factory=list)  # AC and ohms specs
    function_stability: dict[str, tuple[StabilityCriteria, float | None]] = field(default_factory=dict)
    ac_reference: AcReferenceUncertainty | None = field(default=None, repr=False)
    ohms_reference: ReferenceUncertainty | None = field(default=None, repr=False)

    # -- what the runner asks of every procedure (procedures.base.Procedure) -------------------
    def instrument_names(self) -> tuple[str, ...]:
        return (self.source_role, self.uut_role)

    def validate(self, bench: Bench, driver_class: DriverClassOf) -> None:
        """Everything that can be known wrong before an instrument is touched."""
        source_cls = driver_class(self.source_role)
        meter_cls = driver_class(self.uut_role)
        self.check(bench, source_max=float(getattr(source_cls, "max_output", 0.0)),
                   meter_ranges=tuple(getattr(meter_cls, "ranges", ())), source_cls=source_cls, meter_cls=meter_cls)

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
    def check(self, bench: Bench, *, source_max: float, meter_ranges: tuple[float, ...],
              source_cls: type | None = None, meter_cls: type | None = None) -> None:
        """Everything that can be known wrong before an instrument is touched."""
        for role_field, role in (("roles.source", self.source_role), ("roles.uut", self.uut_role)):
            if role not in bench.instruments:
                raise ConfigError(self.source, role_field, f"the bench {bench.source} has no instrument {role!r}",
                                  f"use one of {', '.join(sorted(bench.instruments))}")
        used = {_function_of(p) for p in self.points}
        if "dcv" in used:
            self.reference = ReferenceUncertainty.from_certificate(bench, self.source_role)
        if "acv" in used:
            self.ac_reference = AcReferenceUncertainty.from_certificate(bench, self.source_role)
        if "ohms" in used:
            self.ohms_reference = ReferenceUncertainty.from_certificate(bench, self.source_role, "ohms")
        wired = bench.wired_to(f"{self.uut_role}.input")
        if wired is None or wired.split(".")[0] != self.source_role:
            raise ConfigError(bench.source, "wiring", f"{self.uut_role}.input is not wired to {self.source_role}",
                              f'add [[wiring]] from = "{self.source_role}.output" to = "{self.uut_role}.input"')
        for p in self.points:
            if _function_of(p) != "dcv":
                assert isinstance(p, DcPoint)
                self._check_function_point(bench, p, source_cls, meter_cls)
                continue
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
            assert self.reference is not None
            if not self.reference.covers(p.nominal):
                raise ConfigError(bench.source, f"instruments.{self.source_role}.certificate.dcv",
                                  f"certificate does not cover {p.nominal:g} V", "add the range to the certificate")

    def _check_function_point(self, bench: Bench, p: DcPoint, source_cls: type | None,
                              meter_cls: type | None) -> None:
        """An AC or ohms point: the source can source it, the UUT has the range, a spec and the certificate hold."""
        where = f"{p.field or 'points'} ({p.label})"
        unit = FUNCTION_UNITS[p.function]
        functions = getattr(source_cls, "functions", None)
        if source_cls is not None and (not isinstance(functions, dict) or p.function not in functions):
            raise ConfigError(self.source, where, f"the source {self.source_role} cannot source {p.function!r}",
                              "use a multifunction calibrator (driver fluke5522a) or remove the point")
        meter_ranges = dict(getattr(meter_cls, "ranges_by_function", {}) or {})
        if meter_cls is not None and p.meter_function not in meter_ranges:
            raise ConfigError(self.source, where, f"the UUT cannot measure {p.meter_function!r}",
                              "use a multifunction DMM driver (keysight34465a) or remove the point")
        ranges = tuple(meter_ranges.get(p.meter_function, ()))
        if meter_cls is not None and p.range_ not in ranges:
            raise ConfigError(self.source, where, f"the UUT has no {p.range_:g} {unit} {p.function} range",
                              f"use one of {', '.join(f'{r:g} {unit}' for r in ranges)}")
        if p.nominal > 1.2 * p.range_:
            raise ConfigError(self.source, where, f"{p.nominal:g} {unit} overloads the {p.range_:g} {unit} range",
                              "choose a larger range")
        if p.function == "acv":
            low_v = float(getattr(source_cls, "min_ac_output", 0.0))
            high_v = float(getattr(source_cls, "max_ac_output", math.inf))
            low_f, high_f = getattr(source_cls, "frequency_limits", (0.0, math.inf))
            if not low_v <= p.nominal <= high_v:
                raise ConfigError(self.source, where, f"{p.nominal:g} V AC is outside the calibrator's "
                                  f"{low_v:g}..{high_v:g} V", "choose an amplitude the calibrator sources")
            if not low_f <= p.frequency <= high_f:
                raise ConfigError(self.source, where, f"{p.frequency:g} Hz is outside the calibrator's "
                                  f"{low_f:g}..{high_f:g} Hz", "choose a frequency the calibrator sources")
            assert self.ac_reference is not None
            if not self.ac_reference.covers(p.nominal, p.frequency):
                raise ConfigError(bench.source, f"instruments.{self.source_role}.certificate.acv",
                                  f"certificate does not cover {p.nominal:g} V at {p.frequency:g} Hz",
                                  "add the band to the certificate")
        else:
            high = float(getattr(source_cls, "max_ohms", math.inf))
            if not 0.0 <= p.nominal <= high:
                raise ConfigError(self.source, where, f"{p.nominal:g} ohm is outside the calibrator's 0..{high:g} ohm",
                                  "choose a resistance the calibrator sources")
            assert self.ohms_reference is not None
            if not self.ohms_reference.covers(p.nominal):
                raise ConfigError(bench.source, f"instruments.{self.source_role}.certificate.ohms",
                                  f"certificate does not cover {p.nominal:g} ohm", "add the range to the certificate")
        if self._function_spec(p) is None:
            band = f', fmin = "...", fmax = "..." holding {p.frequency:g} Hz' if p.function == "acv" else ""
            raise ConfigError(self.source, "uut_spec", f"no {p.function} accuracy spec for the {p.range_:g} {unit} "
                              f"range{f' at {p.frequency:g} Hz' if p.function == 'acv' else ''}",
                              f'add [[uut_spec]] function = "{p.function}" range = "{p.range_:g} {unit}"{band}')

    def _function_spec(self, point: DcPoint) -> AccuracySpec | None:
        for spec in self.function_specs:
            if spec.function == point.function and spec.range_ == point.range_ and spec.holds_at(point.frequency):
                return spec
        return None

    # -- one point -----------------------------------------------------------------------------
    def tolerance(self, point: PlannedPoint) -> float:
        if _function_of(point) == "dcv":
            return self.specs[point.range_].tolerance(point.nominal)
        assert isinstance(point, DcPoint)
        spec = self._function_spec(point)
        assert spec is not None, "validate() first"
        return spec.tolerance(point.nominal)

    def _stability_of(self, point: PlannedPoint) -> tuple[StabilityCriteria, float | None]:
        return self.function_stability.get(_function_of(point), (self.stability_ppm, self.band_ppm))

    def criteria(self, point: PlannedPoint) -> StabilityCriteria:
        return self._stability_of(point)[0].scaled(point.range_ * 1e-6)

    async def measure(self, ctx: PointContext, point: PlannedPoint) -> PointData:
        meter: Meter = ctx.instruments[self.uut_role]
        src: Source = ctx.instruments[self.source_role]
        clock = ctx.clock
        function = _function_of(point)
        meter_function = point.meter_function if isinstance(point, DcPoint) else "dcv"
        unit = FUNCTION_UNITS[function]
        ctx.show("configuring")
        settle_nplc = self.settle_nplc or self.nplc
        await meter.configure(meter_function, point.range_, settle_nplc)
        hazardous = function != "ohms" and abs(point.nominal) > HAZARDOUS_VOLTS
        if hazardous:
            await src.standby()  # nobody is asked anything with an output live
        if hazardous and not await ctx.confirm(
            f"{point.nominal:g} V is a hazardous voltage. Are the UUT leads connected and guarded?"
        ):
            raise OperatorDeclined(f"operator declined {point.nominal:g} V")
        if function == "acv":
            assert isinstance(point, DcPoint)
            await src.set_output(point.nominal, "V", frequency=point.frequency)  # type: ignore[call-arg]
        else:
            await src.set_output(point.nominal, unit)
        await src.operate()
        criteria = self.criteria(point)
        band_ppm = self._stability_of(point)[1]
        if band_ppm is not None:
            criteria = dataclasses.replace(criteria, band=band_ppm * 1e-6 * point.range_)

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
            await ctx.record(Reading("settle", clock.now(), value, unit, settled))
            return value, settled

        ctx.show("settling")
        record = await wait_until_stable(sample, criteria, clock, target=point.nominal,
                                         on_check=lambda c: ctx.show("settling", c))
        if not record.stable:
            raise StabilityTimeout(point.label, record)
        if settle_nplc != self.nplc and function != "acv":  # AC has no integration time to change
            await meter.configure(meter_function, point.range_, self.nplc)
        uut: list[float] = []
        ref: list[float] = []
        for i in range(self.repeats):
            ctx.show(f"reading {i + 1}/{self.repeats}")
            values, (ref_value, _unit) = await asyncio.gather(meter.read(1), src.output())
            t = clock.now()
            await ctx.record(Reading("uut", t, values[0], unit))
            await ctx.record(Reading("ref", t, ref_value, unit))
            uut.append(values[0])
            ref.append(ref_value)
        return PointData(uut, ref, record)

    def _reference_of(self, point: PlannedPoint) -> tuple[float, float, float, str]:
        """(standard uncertainty, dof, correction, note) of the reference at `point`, from its certificate."""
        function = _function_of(point)
        if function == "acv":
            assert isinstance(point, DcPoint) and self.ac_reference is not None, "validate() first"
            ac = self.ac_reference
            return (ac.standard_uncertainty(point.nominal, point.frequency), ac.dof, 0.0,
                    f"{self.source_role} AC voltage certificate at {point.frequency:g} Hz, k = {ac.k:g}")
        reference = self.ohms_reference if function == "ohms" else self.reference
        assert reference is not None, "validate() first"
        what = "resistance " if function == "ohms" else ""
        correction = reference.correction(point.nominal)
        applied = f", correction {correction:+.3g} {FUNCTION_UNITS[function]} applied" if reference.points else ""
        return (reference.standard_uncertainty(point.nominal), reference.dof, correction,
                f"{self.source_role} {what}certificate, k = {reference.k:g}{applied}")

    def evaluate(self, point: PlannedPoint, uut: list[float], ref: list[float],
                 uut_resolution: float) -> PointResult:
        reference_u, reference_dof, correction, note = self._reference_of(point)
        if correction:  # the reference's true output = what it indicates + its certificate's correction
            ref = [r + correction for r in ref]
        return evaluate_comparison_point(
            point.nominal, FUNCTION_UNITS[_function_of(point)], uut, ref,
            reference_u=reference_u,
            reference_dof=reference_dof,
            uut_resolution=uut_resolution,
            tolerance=self.tolerance(point),
            rule=self.decision_rule,
            p=self.coverage,
            ref_note=note,
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


def _non_negative_seconds(table: dict[str, Any], key: str, source: str, where: str = "stability") -> float:
    seconds = _seconds(table.get(key, "0 s"), source, f"{where}.{key}")
    if seconds < 0:
        raise ConfigError(source, f"{where}.{key}", f"expected a time >= 0, got {seconds!r} s",
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


def _quantity_in(value: Any, unit: str, source: str, field_name: str) -> float:
    return magnitude_in(parse_quantity(value, source=source, field=field_name, unit=unit), unit,
                        source=source, field=field_name)


def _function_field(table: dict[str, Any], kind: str, source: str, where: str) -> str:
    function = table.get("function", "dcv")
    if function not in FUNCTIONS:
        raise ConfigError(source, f"{where}.function", f"unknown function {function!r}",
                          f"use one of {', '.join(FUNCTIONS)}")
    if function != "dcv" and kind != MULTIFUNCTION_KIND:
        raise ConfigError(source, f"{where}.function", f"a {kind!r} procedure measures DC voltage only",
                          f'write kind = "{MULTIFUNCTION_KIND}" in [procedure] for AC voltage and resistance')
    return str(function)


def _parse_spec(spec: Any, kind: str, source: str, where: str) -> AccuracySpec:
    if not isinstance(spec, dict):
        raise ConfigError(source, where, "must be a table", 'write [[uut_spec]] range = "10 V" ...')
    function = _function_field(spec, kind, source, where)
    unit = FUNCTION_UNITS[function]
    rng = _quantity_in(spec.get("range"), unit, source, f"{where}.range")
    fmin, fmax = 0.0, math.inf
    if function == "acv":
        if "fmin" not in spec or "fmax" not in spec:
            raise ConfigError(source, where, "an AC voltage spec needs its frequency band",
                              'add fmin = "10 Hz" and fmax = "20 kHz" (from the UUT specification)')
        fmin = _quantity_in(spec["fmin"], "Hz", source, f"{where}.fmin")
        fmax = _quantity_in(spec["fmax"], "Hz", source, f"{where}.fmax")
        if not 0 <= fmin <= fmax:
            raise ConfigError(source, f"{where}.fmax", f"expected fmin <= fmax, got {fmin:g} Hz and {fmax:g} Hz",
                              "give the band from its lower to its upper frequency")
    elif "fmin" in spec or "fmax" in spec:
        raise ConfigError(source, f"{where}.fmin", f"a {function} spec has no frequency band",
                          "remove fmin and fmax, or write function = \"acv\"")
    try:
        return AccuracySpec(rng, float(spec["ppm_of_reading"]), float(spec["ppm_of_range"]), function, fmin, fmax)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(source, where, "needs ppm_of_reading and ppm_of_range numbers",
                          "copy them from the UUT's accuracy specification") from exc


def _parse_points(group: Any, kind: str, source: str, where: str, first_index: int) -> list[DcPoint]:
    if not isinstance(group, dict):
        raise ConfigError(source, where, "must be a table", 'write [[points]] range = "10 V" setpoints = [...]')
    function = _function_field(group, kind, source, where)
    unit = FUNCTION_UNITS[function]
    rng = _quantity_in(group.get("range"), unit, source, f"{where}.range")
    setpoints = group.get("setpoints")
    if not isinstance(setpoints, list) or not setpoints:
        example = '["0 V", "10 V"]' if unit == "V" else '["100 ohm"]'
        raise ConfigError(source, f"{where}.setpoints", "missing or empty", f"write setpoints = {example}")
    frequencies: list[tuple[Any, float]] = [(None, 0.0)]
    if function == "acv":
        if ("frequency" in group) == ("frequencies" in group):
            raise ConfigError(source, where, "an AC voltage point needs a frequency",
                              'write frequency = "1 kHz" or frequencies = ["1 kHz", "20 kHz"] (one of them)')
        raw = group["frequencies"] if "frequencies" in group else [group["frequency"]]
        key = "frequencies" if "frequencies" in group else "frequency"
        if not isinstance(raw, list) or not raw:
            raise ConfigError(source, f"{where}.{key}", "missing or empty", 'write frequencies = ["1 kHz"]')
        frequencies = []
        for k, f in enumerate(raw):
            field_name = f"{where}.{key}[{k}]" if key == "frequencies" else f"{where}.frequency"
            hertz = _quantity_in(f, "Hz", source, field_name)
            if not hertz > 0:
                raise ConfigError(source, field_name, f"expected a frequency > 0, got {f!r}",
                                  'write e.g. "1 kHz" (DC voltage is function = "dcv")')
            frequencies.append((f, hertz))
    elif "frequency" in group or "frequencies" in group:
        raise ConfigError(source, f"{where}.frequency", f"a {function} point has no frequency",
                          'remove it, or write function = "acv"')
    wires = 4
    if function == "ohms":
        wires = group.get("wires", 4)
        if wires not in (2, 4) or isinstance(wires, bool):
            raise ConfigError(source, f"{where}.wires", f"expected 2 or 4, got {wires!r}",
                              "write wires = 4 (CONF:FRES) or wires = 2 (CONF:RES; the leads count in the error)")
    elif "wires" in group:
        raise ConfigError(source, f"{where}.wires", f"a {function} point has no wiring choice",
                          'remove it, or write function = "ohms"')
    points: list[DcPoint] = []
    for j, sp in enumerate(setpoints):
        value = _quantity_in(sp, unit, source, f"{where}.setpoints[{j}]")
        if function != "dcv" and value < 0:
            raise ConfigError(source, f"{where}.setpoints[{j}]", f"expected a value >= 0 for {function}, got {sp!r}",
                              "AC voltages are RMS and resistances positive")
        for f_text, hertz in frequencies:
            if function == "acv":
                label = f"{sp} at {f_text} on {group.get('range')} AC"
            elif function == "ohms":
                label = f"{sp} {wires}-wire on {group.get('range')}"
            else:
                label = f"{sp} on {group.get('range')}"
            points.append(DcPoint(first_index + len(points), value, unit, rng, label, f"{where}.setpoints[{j}]",
                                  function=function, frequency=hertz, wires=wires))
    return points


def _parse_stability(stab: dict[str, Any], source: str, where: str) -> tuple[StabilityCriteria, float | None]:
    window = stab.get("window", 10)
    if isinstance(window, bool) or not isinstance(window, int) or window < 3:
        raise ConfigError(source, f"{where}.window", f"expected a whole number of readings >= 3, got {window!r}",
                          "write window = 10")
    timeout = _seconds(stab.get("timeout", "300 s"), source, f"{where}.timeout")
    if not timeout > 0:
        raise ConfigError(source, f"{where}.timeout", f"expected a time > 0, got {timeout!r} s",
                          'write timeout = "300 s"')
    criteria = StabilityCriteria(
        window=window,
        max_std=_optional_positive(stab, "max_std_ppm", source, where),
        max_slope=_optional_positive(stab, "max_slope_ppm_per_s", source, where),
        band=None,
        min_soak=_non_negative_seconds(stab, "min_soak", source, where),
        timeout=timeout,
        interval=_non_negative_seconds(stab, "interval", source, where),
        use_instrument_flag=bool(stab.get("use_instrument_flag", True)),
    )
    return criteria, _optional_positive(stab, "band_ppm", source, where)


def parse_procedure(text: str, *, source: str = "<procedure>") -> DcVoltageProcedure:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc), "fix the TOML syntax at the line shown") from exc
    head = data.get("procedure", {})
    roles = data.get("roles", {})
    stab = data.get("stability", {})
    kind = head.get("kind", "dc_voltage")
    if kind not in ("dc_voltage", MULTIFUNCTION_KIND):
        raise ConfigError(source, "procedure.kind", f"unknown procedure kind {kind!r}",
                          f'use kind = "dc_voltage" or "{MULTIFUNCTION_KIND}"')
    repeats = head.get("repeats", 10)
    if not isinstance(repeats, int) or repeats < 2:
        raise ConfigError(source, "procedure.repeats", f"expected an integer >= 2, got {repeats!r}",
                          "type A needs at least 2 repeats; 10 is usual")
    rule_text = head.get("decision_rule", "guarded")
    if rule_text not in ("guarded", "simple"):
        raise ConfigError(source, "procedure.decision_rule", f"unknown rule {rule_text!r}", 'use "guarded" or "simple"')
    rule: Rule = "guarded" if rule_text == "guarded" else "simple"
    specs: dict[float, AccuracySpec] = {}
    function_specs: list[AccuracySpec] = []
    for i, raw_spec in enumerate(data.get("uut_spec", [])):
        spec = _parse_spec(raw_spec, kind, source, f"uut_spec[{i}]")
        if spec.function == "dcv":
            specs[spec.range_] = spec
        else:
            function_specs.append(spec)
    points: list[DcPoint] = []
    for i, group in enumerate(data.get("points", [])):
        points.extend(_parse_points(group, kind, source, f"points[{i}]", len(points)))
    if not points:
        raise ConfigError(source, "points", "no calibration points", 'add [[points]] range = "10 V" setpoints = [...]')
    if not isinstance(stab, dict):
        raise ConfigError(source, "stability", "must be a table", "write [stability] window = 10 ...")
    base = {k: v for k, v in stab.items() if k not in FUNCTIONS}
    criteria, band_ppm = _parse_stability(base, source, "stability")
    function_stability: dict[str, tuple[StabilityCriteria, float | None]] = {}
    for function in FUNCTIONS:
        if function not in stab:
            continue
        override = stab[function]
        if not isinstance(override, dict):
            raise ConfigError(source, f"stability.{function}", "must be a table",
                              f"write [stability.{function}] max_std_ppm = ... (any [stability] key)")
        function_stability[function] = _parse_stability({**base, **override}, source, f"stability.{function}")
    coverage = head.get("coverage", 0.9545)
    if isinstance(coverage, bool) or not isinstance(coverage, int | float) or not 0 < coverage < 1:
        raise ConfigError(source, "procedure.coverage", f"expected a probability between 0 and 1, got {coverage!r}",
                          "write coverage = 0.9545 (not a percentage)")
    default_name = "DC voltage calibration" if kind == "dc_voltage" else "DMM multi-function calibration"
    return DcVoltageProcedure(
        name=str(head.get("name", default_name)),
        source_role=str(roles.get("source", "calibrator")),
        uut_role=str(roles.get("uut", "dmm")),
        points=list(points),
        specs=specs,
        stability_ppm=criteria,
        band_ppm=band_ppm,
        repeats=repeats,
        nplc=_optional_positive(head, "nplc", source, "procedure") or 10.0,
        settle_nplc=_optional_positive(head, "settle_nplc", source, "procedure"),
        decision_rule=rule,
        guard_band_factor=_guard_band_factor(head, rule, source),
        coverage=float(coverage),
        source=source,
        text=text,
        kind=str(kind),
        function_specs=function_specs,
        function_stability=function_stability,
    )
