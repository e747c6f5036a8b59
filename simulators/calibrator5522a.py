"""A Fluke 5522A-class multifunction calibrator, DC voltage function, on the real command set.

Why these physics: a calibration procedure must wait for the source to settle and must
correct for the standard's own error. The simulated output therefore moves to its target
as a first-order lag (computed analytically from the clock, no background task), reports
the SETTLED bit of `ISR?` only inside its own band, and is off by a deviation drawn once per
nominal value from the uncertainty its certificate states. Tests read the ground truth
(`true_output`, `output_at`) that a real bench never reveals.

Safety behaviour kept from the real instrument: programming more than 33 V while operating
drops the output to standby until `OPER` is sent again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daq.bench import InstrumentEntry
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

_VOLTS = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)$")
_VOLT_UNITS = {"": 1.0, "V": 1.0, "MV": 1e-3, "UV": 1e-6}


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
    def from_certificate(cls, certificate: dict[str, Any], *, source: str, instrument: str) -> DcvUncertainty:
        """Read `[instruments.<name>.certificate.dcv]`; the default table if it is absent."""
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


def parse_volts(text: str) -> float:
    """`10 V`, `-100 MV`, `1.5UV`, `0` -> volts; any other unit is not simulated."""
    m = _VOLTS.match(text.strip())
    if not m:
        raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"cannot read {text.strip()!r} as a DC voltage")
    unit = m.group(2).upper()
    if unit not in _VOLT_UNITS:
        raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"unit {m.group(2)} not simulated (DC voltage only)")
    return float(m.group(1)) * _VOLT_UNITS[unit]


class Calibrator5522A(ScpiInstrument):
    """Fluke 5522A-class calibrator model (DC voltage); one `output` terminal."""

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
        uncertainty: DcvUncertainty | None = None,
        reply_latency: float = 0.0,
    ) -> None:
        super().__init__(name, clock, reply_latency=reply_latency)
        self.seed = seed
        self.serial = serial
        self.time_constant = time_constant
        self.settle_band_ppm = settle_band_ppm
        self.range_floor = range_floor
        self.uncertainty = uncertainty or DcvUncertainty.default()
        self._deviations: dict[str, float] = {}
        self.operating = False
        self.nominal = 0.0
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
        return cls(
            entry.name, clock, seed=seed, serial=entry.serial or "SIM5522A-0001",
            time_constant=params["time_constant"], settle_band_ppm=params["settle_band_ppm"],
            range_floor=params["range_floor"], uncertainty=uncertainty, reply_latency=params["latency"],
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
            self._deviations[key] = float(rng.normal(0.0, self.uncertainty.standard(float(key))))
        return self._deviations[key]

    def true_output(self, nominal: float) -> float:
        """What the terminals really carry, once settled, when programmed to `nominal`."""
        return float(nominal) + self.deviation(nominal)

    def output_at(self, t: float) -> float:
        """The true terminal voltage at clock time `t` (0 V in standby)."""
        if not self.operating:
            return 0.0
        dt = max(0.0, t - self._t0)
        return self._target + (self._start - self._target) * math.exp(-dt / self.time_constant)

    def settle_band(self) -> float:
        return self.settle_band_ppm * 1e-6 * max(abs(self.nominal), self.range_floor)

    def settled_at(self, t: float) -> bool:
        return self.operating and abs(self.output_at(t) - self._target) <= self.settle_band()

    def isr(self) -> int:
        """The instrument status register now: bit 0 operate, bit 12 settled."""
        now = self.clock.now()
        return (ISR_OPERATE if self.operating else 0) | (ISR_SETTLED if self.settled_at(now) else 0)

    def output_source(self, terminal: str) -> Callable[[float], float]:
        if terminal != "output":
            raise KeyError(terminal)
        return self.output_at

    # --- state changes ------------------------------------------------------------------

    def _move_to(self, target: float) -> None:
        now = self.clock.now()
        self._start = self.output_at(now)
        self._t0 = now
        self._target = target

    def _standby(self) -> None:
        self.operating = False
        self._start = self._target = 0.0
        self._t0 = self.clock.now()

    def set_output(self, volts: float) -> None:
        """Program a DC voltage (what `OUT` does), with the limit and the 33 V safety rule."""
        if abs(volts) > MAX_VOLTS:
            raise ScpiError(OUTSIDE_LIMITS, f"{volts:g} V exceeds {MAX_VOLTS:g} V")
        self.nominal = float(volts)
        if not self.operating:
            return
        if abs(volts) > SAFETY_VOLTS:
            self._standby()
            return
        self._move_to(self.true_output(self.nominal))

    def operate(self) -> None:
        if self.operating:
            return
        self._t0 = self.clock.now()
        self._start = 0.0
        self._target = self.true_output(self.nominal)
        self.operating = True

    # --- command handlers ---------------------------------------------------------------

    def _idn(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f"FLUKE,5522A,{self.serial},SIM1.0"

    def _rst(self, params: list[str]) -> None:
        expect_params(params, 0)
        self._standby()
        self.nominal = 0.0

    def _cls(self, params: list[str]) -> None:
        expect_params(params, 0)
        self.errors.clear()

    def _out(self, params: list[str]) -> None:
        expect_params(params, 2, 1)
        if len(params) == 2:
            raise ScpiError(ILLEGAL_PARAMETER_VALUE, "AC output not simulated (DC voltage only)")
        self.set_output(parse_volts(params[0]))

    def _out_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f"{self.nominal:.7E},V,0.0000000E+00,0,0.00E+00"

    def _oper(self, params: list[str]) -> None:
        expect_params(params, 0)
        self.operate()

    def _stby(self, params: list[str]) -> None:
        expect_params(params, 0)
        self._standby()

    def _err(self, params: list[str]) -> str:
        expect_params(params, 0)
        entry = self.errors.pop()
        if entry is None:
            return '0,"No Error"'
        return f'{entry[0]},"{entry[1]}"'
