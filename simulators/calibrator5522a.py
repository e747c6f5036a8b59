"""A Fluke 5522A-class multifunction calibrator (DC voltage, AC voltage, resistance) on the real command set.

Why these physics: a calibration procedure must wait for the source to settle and must
correct for the standard's own error. The simulated output therefore moves to its target
as a first-order lag (computed analytically from the clock, no background task), reports
the SETTLED bit of `ISR?` only inside its own band, and is off by a deviation drawn once per
nominal value from the uncertainty its certificate states. Tests read the ground truth
(`true_output`, `output_at`) that a real bench never reveals.

Safety behaviour kept from the real instrument: programming more than 33 V while operating
drops the output to standby until `OPER` is sent again.

Functions: `OUT 10 V` (DC), `OUT 1 V, 1 KHZ` (AC, RMS amplitude and frequency; `0 HZ` is DC)
and `OUT 100 OHM` (synthesised resistance, `KOHM`/`MOHM` too). Changing the function while
operating drops to standby until `OPER` (the model's rule, as the real instrument does for
most function changes). Each function's deviation is drawn from its own certificate table:
`certificate.dcv` per nominal, `certificate.acv` per (nominal, frequency) from bands of
amplitude x frequency (ppm of output + floor), `certificate.ohms` per nominal. Unsupported
units, amplitudes or frequencies outside the envelope go to the error queue (`ERR?`).
Wired to a meter, the `output` terminal presents `signal_at(t)` -> (function, value,
frequency); calling it gives the DC volts only (0 V while sourcing AC or ohms).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daq.bench import InstrumentEntry
from daq.certificate import CorrectionTable
from daq.clock import Clock
from daq.errors import ConfigError
from simulators.scpi_instrument import (
    ILLEGAL_PARAMETER_VALUE,
    ScpiError,
    ScpiInstrument,
    expect_params,
)
from simulators.seeding import stable_rng
from simulators.simulation_parameters import NumberParameter, read_simulation_parameters

OUTSIDE_LIMITS = (200, "Outside limits")
MAX_VOLTS = 1020.0
SAFETY_VOLTS = 33.0
ISR_OPERATE = 1 << 0
ISR_SETTLED = 1 << 12

#: (upto V, ppm of output, floor V) at k = 2: the 5522A-class DC voltage table used when the
#: bench gives no certificate for the calibrator.
DEFAULT_DCV_RANGES: tuple[tuple[float, float, float], ...] = (
    (0.33, 15.0, 1e-6),
    (3.3, 9.0, 2e-6),
    (33.0, 10.0, 20e-6),
    (330.0, 15.0, 150e-6),
    (1020.0, 15.0, 1500e-6),
)

#: (upto V, fmin Hz, fmax Hz, ppm of output, floor V) at k = 2: a 5522A-class AC voltage table
#: (recalled from the 1-year specifications, rounded) used when the bench gives no `certificate.acv`.
DEFAULT_ACV_BANDS: tuple[tuple[float, float, float, float, float], ...] = tuple(
    (upto, fmin, fmax, ppm, floor)
    for upto, rows in (
        (0.033, ((10, 45, 800, 6e-6), (45, 10e3, 150, 6e-6), (10e3, 20e3, 200, 6e-6), (20e3, 50e3, 1000, 6e-6),
                 (50e3, 100e3, 3500, 12e-6), (100e3, 500e3, 8000, 50e-6))),
        (0.33, ((10, 45, 300, 8e-6), (45, 10e3, 145, 8e-6), (10e3, 20e3, 160, 8e-6), (20e3, 50e3, 350, 8e-6),
                (50e3, 100e3, 800, 32e-6), (100e3, 500e3, 2000, 70e-6))),
        (3.3, ((10, 45, 300, 50e-6), (45, 10e3, 150, 60e-6), (10e3, 20e3, 190, 60e-6), (20e3, 50e3, 300, 50e-6),
               (50e3, 100e3, 750, 125e-6), (100e3, 500e3, 2200, 600e-6))),
        (33.0, ((10, 45, 300, 650e-6), (45, 10e3, 150, 600e-6), (10e3, 20e3, 240, 600e-6),
                (20e3, 50e3, 350, 600e-6), (50e3, 100e3, 900, 1.6e-3))),
        (330.0, ((45, 1e3, 150, 2e-3), (1e3, 10e3, 160, 6e-3), (10e3, 20e3, 220, 6e-3), (20e3, 50e3, 240, 6e-3),
                 (50e3, 100e3, 1600, 50e-3))),
        (1020.0, ((45, 1e3, 300, 10e-3), (1e3, 5e3, 250, 10e-3), (5e3, 10e3, 300, 10e-3))),
    )
    for fmin, fmax, ppm, floor in rows
)

#: (upto ohm, ppm of output, floor ohm) at k = 2: a 5522A-class resistance table (recalled, rounded).
DEFAULT_OHMS_RANGES: tuple[tuple[float, float, float], ...] = (
    (11.0, 40.0, 1e-3), (110.0, 28.0, 1.4e-3), (1.1e3, 28.0, 2e-3), (11e3, 28.0, 20e-3), (110e3, 28.0, 0.2),
    (1.1e6, 32.0, 2.0), (11e6, 130.0, 50.0), (110e6, 500.0, 3e3), (1100e6, 15000.0, 500e3),
)

MAX_AC_VOLTS = 1020.0
MIN_AC_VOLTS = 1e-3
MAX_OHMS = 1100e6
FUNCTION_UNITS = {"dcv": "V", "acv": "V", "ohms": "OHM"}

_VOLTS = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)$")
_VOLT_UNITS = {"": 1.0, "V": 1.0, "MV": 1e-3, "UV": 1e-6}
_OHM_UNITS = {"OHM": 1.0, "KOHM": 1e3, "MOHM": 1e6}
_HZ_UNITS = {"HZ": 1.0, "KHZ": 1e3, "MHZ": 1e6}


@dataclass(frozen=True)
class Signal:
    """What the output terminals present: function ("dcv", "acv", "ohms" or "off"), value, frequency."""

    function: str
    value: float
    frequency: float = 0.0


def ac_envelope_error(volts: float, hertz: float) -> str | None:
    """Why (`volts` RMS, `hertz`) is outside the AC envelope, or None (recalled limits, rounded)."""
    if not MIN_AC_VOLTS <= volts <= MAX_AC_VOLTS:
        return f"{volts:g} V is outside the AC range {MIN_AC_VOLTS:g}..{MAX_AC_VOLTS:g} V"
    fmin, fmax = (45.0, 10e3) if volts > 330.0 else (45.0, 100e3) if volts > 33.0 else (10.0, 500e3)
    if not fmin <= hertz <= fmax:
        return f"{hertz:g} Hz is outside {fmin:g}..{fmax:g} Hz at {volts:g} V"
    return None


def _read_k(table: dict[str, Any], source: str, where: str) -> float:
    k = table.get("k", 2.0)
    if isinstance(k, bool) or not isinstance(k, int | float) or k <= 0:
        raise ConfigError(source, f"{where}.k", f"expected a coverage factor > 0, got {k!r}", "write k = 2.0")
    return float(k)


def _read_rows(raw: Any, keys: tuple[str, ...], source: str, where: str, fix: str) -> list[tuple[float, ...]]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(source, where, "missing or empty", fix)
    rows = []
    for i, entry in enumerate(raw):
        field = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(source, field, "must be a table", fix)
        unknown = sorted(set(entry) - set(keys))
        if unknown:
            raise ConfigError(source, f"{field}.{unknown[0]}", "unknown field", f"use {', '.join(keys)}")
        values = []
        for key in keys:
            value = entry.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(source, f"{field}.{key}", f"expected a number >= 0, got {value!r}", fix)
            values.append(float(value))
        rows.append(tuple(values))
    return rows


@dataclass(frozen=True)
class AcvUncertainty:
    """The calibrator's stated AC voltage uncertainty: U = ppm*1e-6*|V| + floor in the first band
    (amplitude `upto`, `fmin` <= f <= `fmax`) that holds the point, at factor k."""

    k: float
    bands: tuple[tuple[float, float, float, float, float], ...]

    def band(self, volts: float, hertz: float) -> tuple[float, float, float, float, float] | None:
        for band in self.bands:
            if abs(volts) <= band[0] and band[1] <= hertz <= band[2]:
                return band
        return None

    def expanded(self, volts: float, hertz: float) -> float:
        band = self.band(volts, hertz)
        if band is None:
            raise ValueError(f"{volts:g} V at {hertz:g} Hz is beyond the AC certificate")
        return band[3] * 1e-6 * abs(volts) + band[4]

    def standard(self, volts: float, hertz: float) -> float:
        return self.expanded(volts, hertz) / self.k

    @classmethod
    def default(cls) -> AcvUncertainty:
        return cls(2.0, DEFAULT_ACV_BANDS)

    @classmethod
    def from_certificate(cls, certificate: dict[str, Any], *, source: str, instrument: str) -> AcvUncertainty:
        """Read `[instruments.<name>.certificate.acv]`; the default table if it is absent."""
        where = f"instruments.{instrument}.certificate.acv"
        fix = "write k = 2.0 and bands = [{ upto = 3.3, fmin = 45, fmax = 10000, ppm = 150, floor = 60e-6 }, ...]"
        table = certificate.get("acv")
        if table is None:
            return cls.default()
        if not isinstance(table, dict):
            raise ConfigError(source, where, "must be a table", fix)
        rows = _read_rows(table.get("bands"), ("upto", "fmin", "fmax", "ppm", "floor"), source, f"{where}.bands", fix)
        return cls(_read_k(table, source, where), tuple((r[0], r[1], r[2], r[3], r[4]) for r in rows))


class CertifiedPoints:
    """A certificate stated point by point (an equipment register's form): the standard really is off by
    its certified correction, give or take its stated uncertainty."""

    def __init__(self, table: CorrectionTable) -> None:
        self.table = table

    def standard(self, value: float) -> float:
        return self.table.standard_uncertainty(value)

    def correction(self, value: float) -> float:
        return self.table.correction(value)

    @classmethod
    def parse(cls, table: Any, *, source: str, where: str) -> CertifiedPoints:
        return cls(CorrectionTable.parse(table, source=source, where=where))


@dataclass(frozen=True)
class OhmsUncertainty:
    """The calibrator's stated resistance uncertainty: U = ppm*1e-6*R + floor (first `upto` >= R), at k."""

    k: float
    ranges: tuple[tuple[float, float, float], ...]

    def expanded(self, ohms: float) -> float:
        for upto, ppm, floor in self.ranges:
            if abs(ohms) <= upto:
                return ppm * 1e-6 * abs(ohms) + floor
        upto, ppm, floor = self.ranges[-1]
        return ppm * 1e-6 * abs(ohms) + floor

    def standard(self, ohms: float) -> float:
        return self.expanded(ohms) / self.k

    @classmethod
    def default(cls) -> OhmsUncertainty:
        return cls(2.0, DEFAULT_OHMS_RANGES)

    @classmethod
    def from_certificate(cls, certificate: dict[str, Any], *, source: str,
                         instrument: str) -> OhmsUncertainty | CertifiedPoints:
        """Read `[instruments.<name>.certificate.ohms]`; the default table if it is absent."""
        if isinstance(certificate.get("ohms"), dict) and "points" in certificate["ohms"]:
            return CertifiedPoints.parse(certificate["ohms"], source=source,
                                         where=f"instruments.{instrument}.certificate.ohms")
        where = f"instruments.{instrument}.certificate.ohms"
        fix = "write k = 2.0 and ranges = [{ upto = 110, ppm = 28, floor = 1.4e-3 }, ...]"
        table = certificate.get("ohms")
        if table is None:
            return cls.default()
        if not isinstance(table, dict):
            raise ConfigError(source, where, "must be a table", fix)
        rows = _read_rows(table.get("ranges"), ("upto", "ppm", "floor"), source, f"{where}.ranges", fix)
        if [r[0] for r in rows] != sorted(r[0] for r in rows):
            raise ConfigError(source, f"{where}.ranges", "ranges are not in increasing order of upto",
                              "list the ranges from the smallest upto to the largest")
        return cls(_read_k(table, source, where), tuple((r[0], r[1], r[2]) for r in rows))


@dataclass(frozen=True)
class DcvUncertainty:
    """The calibrator's stated DC voltage uncertainty: U(V) = ppm*1e-6*|V| + floor at factor k."""

    k: float
    ranges: tuple[tuple[float, float, float], ...]

    def expanded(self, volts: float) -> float:
        """Expanded uncertainty at `volts` from the first range whose `upto` covers it."""
        magnitude = abs(volts)
        for upto, ppm, floor in self.ranges:
            if magnitude <= upto:
                return ppm * 1e-6 * magnitude + floor
        upto, ppm, floor = self.ranges[-1]
        return ppm * 1e-6 * magnitude + floor

    def standard(self, volts: float) -> float:
        return self.expanded(volts) / self.k

    @classmethod
    def default(cls) -> DcvUncertainty:
        return cls(2.0, DEFAULT_DCV_RANGES)

    @classmethod
    def from_certificate(cls, certificate: dict[str, Any], *, source: str,
                         instrument: str) -> DcvUncertainty | CertifiedPoints:
        """Read `[instruments.<name>.certificate.dcv]`; the default table if it is absent."""
        if isinstance(certificate.get("dcv"), dict) and "points" in certificate["dcv"]:
            return CertifiedPoints.parse(certificate["dcv"], source=source,
                                         where=f"instruments.{instrument}.certificate.dcv")
        where = f"instruments.{instrument}.certificate.dcv"
        fix = "write k = 2.0 and ranges = [{ upto = 0.33, ppm = 15, floor = 1e-6 }, ...]"
        table = certificate.get("dcv")
        if table is None:
            return cls.default()
        if not isinstance(table, dict):
            raise ConfigError(source, where, "must be a table", fix)
        k = table.get("k", 2.0)
        if isinstance(k, bool) or not isinstance(k, int | float) or k <= 0:
            raise ConfigError(source, f"{where}.k", f"expected a coverage factor > 0, got {k!r}",
                              "write k = 2.0")
        raw_ranges = table.get("ranges")
        if not isinstance(raw_ranges, list) or not raw_ranges:
            raise ConfigError(source, f"{where}.ranges", "missing or empty", fix)
        ranges = []
        for i, entry in enumerate(raw_ranges):
            field = f"{where}.ranges[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(source, field, "must be a table", fix)
            unknown = sorted(set(entry) - {"upto", "ppm", "floor"})
            if unknown:
                raise ConfigError(source, f"{field}.{unknown[0]}", "unknown field", "use upto, ppm and floor")
            values = []
            for key in ("upto", "ppm", "floor"):
                value = entry.get(key)
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ConfigError(source, f"{field}.{key}", f"expected a number >= 0, got {value!r}", fix)
                values.append(float(value))
            ranges.append((values[0], values[1], values[2]))
        uptos = [r[0] for r in ranges]
        if uptos != sorted(uptos):
            raise ConfigError(source, f"{where}.ranges", "ranges are not in increasing order of upto",
                              "list the ranges from the smallest upto to the largest")
        return cls(float(k), tuple(ranges))


def _nominal_key(nominal: float) -> str:
    """The nominal rounded to 12 significant digits, with -0 folded into 0."""
    value = float(nominal)
    if value == 0:
        value = 0.0
    return f"{value:.11e}"


def _parse_with_units(text: str, units: dict[str, float], what: str) -> float:
    m = _VOLTS.match(text.strip())
    if not m or m.group(2).upper() not in units:
        raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"cannot read {text.strip()!r} as {what}")
    return float(m.group(1)) * units[m.group(2).upper()]


def parse_output(params: list[str]) -> tuple[str, float, float]:
    """`OUT` parameters -> (function, value, frequency): `10 V`, `1 V, 1 KHZ`, `100 OHM`."""
    text = params[0].strip()
    m = _VOLTS.match(text)
    unit = m.group(2).upper() if m else ""
    if unit in _OHM_UNITS:
        if len(params) == 2:
            raise ScpiError(ILLEGAL_PARAMETER_VALUE, "a resistance output takes no frequency")
        return "ohms", _parse_with_units(text, _OHM_UNITS, "a resistance"), 0.0
    volts = parse_volts(text)
    if len(params) == 1:
        return "dcv", volts, 0.0
    hertz = _parse_with_units(params[1], _HZ_UNITS, "a frequency (HZ, KHZ or MHZ)")
    if hertz == 0:
        return "dcv", volts, 0.0
    return "acv", volts, hertz


def parse_volts(text: str) -> float:
    """`10 V`, `-100 MV`, `1.5UV`, `0` -> volts; any other unit is not simulated."""
    m = _VOLTS.match(text.strip())
    if not m:
        raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"cannot read {text.strip()!r} as a DC voltage")
    unit = m.group(2).upper()
    if unit not in _VOLT_UNITS:
        raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"unit {m.group(2)} not simulated (V, MV, UV, OHM, KOHM, MOHM)")
    return float(m.group(1)) * _VOLT_UNITS[unit]


class _OutputTerminal:
    """The `output` terminal as the world sees it: DC volts when called, the full signal by `signal_at`."""

    def __init__(self, calibrator: Calibrator5522A) -> None:
        self._calibrator = calibrator

    def __call__(self, t: float) -> float:
        return self._calibrator.output_at(t)

    def signal_at(self, t: float) -> Signal:
        return self._calibrator.signal_at(t)


class Calibrator5522A(ScpiInstrument):
    """Fluke 5522A-class calibrator model (DC V, AC V, ohms); one `output` terminal."""

    no_error_text = "No Error"

    output_terminals = ("output",)

    SIMULATION_PARAMETERS = {
        "time_constant": NumberParameter(0.4, 0.0, exclusive_minimum=True,
                                         hint="give the settling time constant in seconds, e.g. 0.4"),
        "settle_band_ppm": NumberParameter(5.0, 0.0, exclusive_minimum=True,
                                           hint="give the SETTLED band in ppm, e.g. 5"),
        "range_floor": NumberParameter(0.33, 0.0, exclusive_minimum=True,
                                       hint="give the smallest voltage the band scales with, e.g. 0.33"),
    }

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        seed: int = 0,
        serial: str = "SIM5522A-0001",
        time_constant: float = 0.4,
        settle_band_ppm: float = 5.0,
        range_floor: float = 0.33,
        uncertainty: DcvUncertainty | CertifiedPoints | None = None,
        acv_uncertainty: AcvUncertainty | None = None,
        ohms_uncertainty: OhmsUncertainty | CertifiedPoints | None = None,
        reply_latency: float = 0.0,
    ) -> None:
        super().__init__(name, clock, reply_latency=reply_latency)
        self.seed = seed
        self.serial = serial
        self.time_constant = time_constant
        self.settle_band_ppm = settle_band_ppm
        self.range_floor = range_floor
        self.uncertainty = uncertainty or DcvUncertainty.default()
        self.acv_uncertainty = acv_uncertainty or AcvUncertainty.default()
        self.ohms_uncertainty = ohms_uncertainty or OhmsUncertainty.default()
        self._deviations: dict[str, float] = {}
        self._function_deviations: dict[tuple[str, str, str], float] = {}
        self.operating = False
        self.nominal = 0.0
        self.function = "dcv"
        self.frequency = 0.0
        # Lag state: output_at(t) = target + (start - target) * exp(-(t - t0) / tau).
        self._start = 0.0
        self._target = 0.0
        self._t0 = clock.now()
        self.add_commands([
            ("*IDN?", self._idn),
            ("*RST", self._rst),
            ("*CLS", self._cls),
            ("*OPC?", lambda p: "1"),
            ("*OPC", lambda p: None),
            ("*WAI", lambda p: None),
            ("REMOTE", lambda p: None),
            ("LOCAL", lambda p: None),
            ("OUT", self._out),
            ("OUT?", self._out_query),
            ("OPER", self._oper),
            ("OPER?", lambda p: "1" if self.operating else "0"),
            ("STBY", self._stby),
            ("ISR?", lambda p: str(self.isr())),
            ("ERR?", self._err),
        ])

    @classmethod
    def from_bench_entry(
        cls, entry: InstrumentEntry, *, source: str, clock: Clock, seed: int
    ) -> Calibrator5522A:
        """Build from the bench file, rejecting unknown or mistyped simulation parameters."""
        params = read_simulation_parameters(entry.name, entry.simulation, source=source,
                                            numbers=cls.SIMULATION_PARAMETERS)
        uncertainty = DcvUncertainty.from_certificate(entry.certificate, source=source, instrument=entry.name)
        acv = AcvUncertainty.from_certificate(entry.certificate, source=source, instrument=entry.name)
        ohms = OhmsUncertainty.from_certificate(entry.certificate, source=source, instrument=entry.name)
        return cls(
            entry.name, clock, seed=seed, serial=entry.serial or "SIM5522A-0001",
            time_constant=params["time_constant"], settle_band_ppm=params["settle_band_ppm"],
            range_floor=params["range_floor"], uncertainty=uncertainty, acv_uncertainty=acv,
            ohms_uncertainty=ohms, reply_latency=params["latency"],
        )

    # --- ground truth -------------------------------------------------------------------

    def deviation(self, nominal: float) -> float:
        """The standard's true error at `nominal`, ~ Normal(0, U/k), the same for every run.

        Seeded by (world seed, instrument name, nominal to 12 digits), so it does not depend
        on the order in which points are visited nor on the process.
        """
        key = _nominal_key(nominal)
        if key not in self._deviations:
            rng = stable_rng(self.seed, self.name, "dcv", key)
            offset = self.uncertainty.correction(float(key)) if isinstance(self.uncertainty, CertifiedPoints) else 0.0
            self._deviations[key] = offset + float(rng.normal(0.0, self.uncertainty.standard(float(key))))
        return self._deviations[key]

    def function_deviation(self, function: str, nominal: float, frequency: float = 0.0) -> float:
        """The true error of `function` ("dcv", "acv", "ohms") at `nominal` (and `frequency` for AC),
        ~ Normal(0, U/k) of that function's certificate; seeded like `deviation`."""
        if function == "dcv":
            return self.deviation(nominal)
        key = (function, _nominal_key(nominal), _nominal_key(frequency))
        offset = 0.0
        if key not in self._function_deviations:
            if function == "acv":
                sigma = self.acv_uncertainty.standard(float(key[1]), float(key[2]))
            elif function == "ohms":
                sigma = self.ohms_uncertainty.standard(float(key[1]))
                if isinstance(self.ohms_uncertainty, CertifiedPoints):
                    offset = self.ohms_uncertainty.correction(float(key[1]))
            else:
                raise ValueError(f"no function {function!r}")
            rng = stable_rng(self.seed, self.name, *key)
            self._function_deviations[key] = offset + float(rng.normal(0.0, sigma))
        return self._function_deviations[key]

    def true_output(self, nominal: float, function: str = "dcv", frequency: float = 0.0) -> float:
        """What the terminals really carry, once settled, when programmed to `nominal`
        (volts DC, volts RMS at `frequency`, or ohms)."""
        return float(nominal) + self.function_deviation(function, nominal, frequency)

    def _value_at(self, t: float) -> float:
        if not self.operating:
            return 0.0
        dt = max(0.0, t - self._t0)
        return self._target + (self._start - self._target) * math.exp(-dt / self.time_constant)

    def output_at(self, t: float) -> float:
        """The true DC terminal voltage at clock time `t` (0 V in standby, and while sourcing AC or ohms)."""
        return self._value_at(t) if self.function == "dcv" else 0.0

    def signal_at(self, t: float) -> Signal:
        """What the terminals present at `t`: ("off", 0) in standby, else the function and its true value."""
        if not self.operating:
            return Signal("off", 0.0)
        return Signal(self.function, self._value_at(t), self.frequency)

    def settle_band(self) -> float:
        floor = 1.0 if self.function == "ohms" else self.range_floor
        return self.settle_band_ppm * 1e-6 * max(abs(self.nominal), floor)

    def settled_at(self, t: float) -> bool:
        return self.operating and abs(self._value_at(t) - self._target) <= self.settle_band()

    def isr(self) -> int:
        """The instrument status register now: bit 0 operate, bit 12 settled."""
        now = self.clock.now()
        return (ISR_OPERATE if self.operating else 0) | (ISR_SETTLED if self.settled_at(now) else 0)

    def output_source(self, terminal: str) -> Callable[[float], float]:
        if terminal != "output":
            raise KeyError(terminal)
        return _OutputTerminal(self)

    # --- state changes ------------------------------------------------------------------

    def _move_to(self, target: float) -> None:
        now = self.clock.now()
        self._start = self._value_at(now)
        self._t0 = now
        self._target = target

    def _standby(self) -> None:
        self.operating = False
        self._start = self._target = 0.0
        self._t0 = self.clock.now()

    def set_output(self, volts: float, function: str = "dcv", frequency: float = 0.0) -> None:
        """Program an output (what `OUT` does): DC volts, AC volts RMS at `frequency`, or ohms,
        with the limits, the 33 V safety rule and standby on a change of function."""
        if function == "dcv":
            if abs(volts) > MAX_VOLTS:
                raise ScpiError(OUTSIDE_LIMITS, f"{volts:g} V exceeds {MAX_VOLTS:g} V")
            frequency = 0.0
        elif function == "acv":
            why = ac_envelope_error(volts, frequency)
            if why is not None:
                raise ScpiError(OUTSIDE_LIMITS, why)
        elif function == "ohms":
            if not 0.0 <= volts <= MAX_OHMS:
                raise ScpiError(OUTSIDE_LIMITS, f"{volts:g} ohm is outside 0..{MAX_OHMS:g} ohm")
            frequency = 0.0
        else:
            raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"function {function!r} not simulated")
        changed = function != self.function
        self.nominal = float(volts)
        self.function = function
        self.frequency = float(frequency)
        if not self.operating:
            return
        if changed or (function != "ohms" and abs(volts) > SAFETY_VOLTS):
            self._standby()
            return
        self._move_to(self._true_target())

    def _true_target(self) -> float:
        return self.true_output(self.nominal, self.function, self.frequency)

    def operate(self) -> None:
        if self.operating:
            return
        self._t0 = self.clock.now()
        self._start = 0.0
        self._target = self._true_target()
        self.operating = True

    # --- command handlers ---------------------------------------------------------------

    def _idn(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f"FLUKE,5522A,{self.serial},SIM1.0"

    def _rst(self, params: list[str]) -> None:
        expect_params(params, 0)
        self._standby()
        self.nominal = 0.0
        self.function = "dcv"
        self.frequency = 0.0

    def _out(self, params: list[str]) -> None:
        expect_params(params, 2, 1)
        function, value, frequency = parse_output(params)
        self.set_output(value, function, frequency)

    def _out_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f"{self.nominal:.7E},{FUNCTION_UNITS[self.function]},0.0000000E+00,0,{self.frequency:.2E}"

    def _oper(self, params: list[str]) -> None:
        expect_params(params, 0)
        self.operate()

    def _stby(self, params: list[str]) -> None:
        expect_params(params, 0)
        self._standby()

