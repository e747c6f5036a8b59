"""A Druck PACE 5000/6000-class pressure controller: slew, fine control, in-limits, vent.

Why these physics: a pressure calibration waits for the controller to reach each point and
then reads a gauge; the waiting is only tested if the pressure really travels. After a new
setpoint the controlled pressure slews linearly at `slew_rate` until it is within
`fine_band` of the target, then approaches it exponentially (`time_constant`) and holds it
with a small fluctuation (`stability`, RMS, a deterministic sum of sinusoids so every
observer sees the same pressure at the same clock time).

The controller controls its *own sensor's* reading to the setpoint, and that sensor has a
true error. When the bench file certifies the sensor (`[instruments.<name>.certificate.pressure]`,
`k` and `points = [{ at, correction, U }]`, correction = true - indicated, bar gauge) the
true error at each certificate point is what the certificate says (-correction) plus a
seeded draw ~ Normal(0, U/k), interpolated linearly between the points and extrapolated
along the end segments: a real reference differs from its certificate by an amount its
uncertainty covers at the stated rate, and a fresh seed is a fresh sensor. `offset` and
`gain` are then refused (a second, contradicting truth). Without a certificate the true
error is `offset + gain * p` (bar). The true pressure settles where the sensor reads the
setpoint, i.e. at the setpoint minus that error: that is what the wired gauge sees and what
a calibration must find.

In-limits: `:SENS:PRES:INL?` -> `:SENS:PRES:INL 1000.50, 1`; the flag is 1 only while the
output is on and the reading has stayed within `:SOUR:PRES:INL` (in the current unit) of the
setpoint for the last `:SOUR:PRES:INL:TIME` seconds.

Output: `:OUTP:STAT 1` controls; `:OUTP:STAT 0` isolates (the pressure is held where it is).
Vent: `:SOUR:PRES:LEV:IMM:AMPL:VENT 1` opens the system to atmosphere (control stops, the
pressure falls to 0 bar gauge at `vent_rate`); `...:VENT?` -> 0 (not venting), 1 (venting),
2 (vent complete: within `vent_done` of atmosphere). `:OUTP:STAT 1` closes the vent.

The simulated instrument works in gauge mode (pressure relative to the atmosphere, which is
what a dial gauge shows); absolute mode is not simulated. Every reply echoes its header in
the short form: `:SENS:PRES?` -> `:SENS:PRES 10.00012`, `:SYST:ERR?` -> `:SYST:ERR 0,"No error"`.

Commands: `*IDN?`, `*RST`, `*CLS`, `*OPC?`, `:SYST:ERR?`, `:SENS:PRES?`, `:SENS:PRES:INL?`,
`:SOUR:PRES <v>` / `?` (also `:SOUR:PRES:LEV:IMM:AMPL`), `:SOUR:PRES:INL <band>` / `?`,
`:SOUR:PRES:INL:TIME <s>` / `?`, `:SOUR:PRES:SLEW <rate/s>` / `?`, `:SOUR:PRES:LEV:IMM:AMPL:VENT 0|1` / `?`,
`:OUTP:STAT 0|1` / `?`, `:UNIT:PRES <unit>` / `?` (BAR, MBAR, PA, HPA, KPA, MPA, PSI).
Output terminal: `pressure` (the true gauge pressure in bar).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daq.bench import InstrumentEntry
from daq.certificate import CorrectionTable
from daq.clock import Clock
from daq.errors import ConfigError
from simulators.scpi_instrument import (
    DATA_OUT_OF_RANGE,
    ILLEGAL_PARAMETER_VALUE,
    ScpiError,
    ScpiInstrument,
    expect_params,
    parse_number,
    parse_switch,
)
from simulators.seeding import draw_certified_errors, stable_rng
from simulators.simulation_parameters import NumberParameter, read_simulation_parameters

#: Pressure units: (value of 1 bar in the unit, decimals the display shows).
PRESSURE_UNITS: dict[str, tuple[float, int]] = {
    "BAR": (1.0, 5),
    "MBAR": (1000.0, 2),
    "HPA": (1000.0, 2),
    "KPA": (100.0, 3),
    "MPA": (0.1, 6),
    "PA": (1e5, 0),
    "PSI": (14.503773773, 4),
}
FLUCTUATION_TERMS = 6
FLUCTUATION_PERIODS = (2.0, 40.0)
#: Samples of the reading over the in-limits time when the flag is decided.
IN_LIMITS_SAMPLES = 60

VENT_IDLE, VENT_VENTING, VENT_DONE = 0, 1, 2


@dataclass(frozen=True)
class PressureCertificate:
    """`[instruments.<name>.certificate.pressure]` as the simulation reads it: the sensor's
    corrections (true - indicated, bar) and expanded uncertainties U at coverage factor k."""

    k: float
    points: tuple[tuple[float, float, float], ...]  # (at bar, correction bar, U bar), increasing `at`

    @classmethod
    def from_bench(cls, certificate: dict[str, Any], *, source: str, instrument: str) -> PressureCertificate | None:
        table = certificate.get("pressure")
        if table is None:
            return None
        parsed = CorrectionTable.parse(table, source=source, where=f"instruments.{instrument}.certificate.pressure",
                                       example="at = 0.0, correction = -0.0004, U = 0.001",
                                       order="from the lowest pressure to the highest")
        return cls(parsed.k, parsed.points)

    def true_errors(self, seed: int, instrument: str) -> tuple[tuple[float, float], ...]:
        """The sensor's true error (indicated - true) at each certificate point: -correction plus
        a draw ~ Normal(0, U/k), seeded by (world seed, instrument, point)."""
        return draw_certified_errors(self.points, self.k, seed, instrument, "certificate", "pressure")


def interpolate(table: tuple[tuple[float, float], ...], x: float) -> float:
    """Linear interpolation in ((x, y), ...) sorted by x, extrapolated along the end segments."""
    if len(table) == 1:
        return table[0][1]
    i = next((i for i in range(1, len(table) - 1) if x <= table[i][0]), len(table) - 1)
    (x0, y0), (x1, y1) = table[i - 1], table[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


class PressureRamp:
    """p(t) after a change of target: linear slew, then an exponential approach within `fine_band`."""

    def __init__(self, target: float, p0: float, t0: float, rate: float, fine_band: float,
                 time_constant: float) -> None:
        self.target = target
        self.p0 = p0
        self.t0 = t0
        self.rate = rate
        self.fine_band = fine_band
        self.time_constant = time_constant
        distance = abs(target - p0)
        self.sign = 1.0 if target >= p0 else -1.0
        self.slew_time = max(0.0, distance - fine_band) / rate if rate > 0 else 0.0
        self.fine_start = target - self.sign * min(distance, fine_band)

    def position(self, t: float) -> float:
        dt = max(0.0, t - self.t0)
        if dt < self.slew_time:
            return self.p0 + self.sign * self.rate * dt
        rest = dt - self.slew_time
        return self.target + (self.fine_start - self.target) * math.exp(-rest / self.time_constant)


class PaceController(ScpiInstrument):
    """Druck PACE-class pressure controller model (gauge mode, bar inside); output terminal `pressure`."""

    error_reply_prefix = ":SYST:ERR "

    output_terminals = ("pressure",)

    SIMULATION_PARAMETERS = {
        "full_scale": NumberParameter(20.0, 0.0, exclusive_minimum=True,
                                      hint="give the controller's full scale in bar (gauge), e.g. 20"),
        "minimum": NumberParameter(-1.0, -1.01325, hint="give the lowest setpoint in bar gauge, e.g. -1"),
        "slew_rate": NumberParameter(0.5, 0.0, exclusive_minimum=True,
                                     hint="give the slew rate in bar per second, e.g. 0.5"),
        "fine_band": NumberParameter(0.05, 0.0, hint="give the band (bar) where fine control takes over, e.g. 0.05"),
        "time_constant": NumberParameter(3.0, 0.0, exclusive_minimum=True,
                                         hint="give the fine-control time constant in seconds, e.g. 3"),
        "stability": NumberParameter(0.0002, 0.0, hint="give the controlled pressure's RMS fluctuation in bar"),
        "noise": NumberParameter(0.00005, 0.0, hint="give the sensor reading noise (RMS bar), e.g. 0.00005"),
        "offset": NumberParameter(0.0, hint="give the uncertified sensor's true error at 0 bar, in bar, e.g. 0.0004"),
        "gain": NumberParameter(0.0, hint="give the uncertified sensor's true error per bar (fraction), e.g. 5e-5"),
        "in_limits": NumberParameter(0.002, 0.0, exclusive_minimum=True,
                                     hint="give the default in-limits band in bar, e.g. 0.002"),
        "in_limits_time": NumberParameter(10.0, 0.0, hint="give the default in-limits time in seconds, e.g. 10"),
        "vent_rate": NumberParameter(1.0, 0.0, exclusive_minimum=True,
                                     hint="give the vent rate in bar per second, e.g. 1.0"),
        "vent_done": NumberParameter(0.005, 0.0, exclusive_minimum=True,
                                     hint="give the band (bar) around atmosphere where a vent is complete"),
    }

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        seed: int = 0,
        serial: str = "SIMPACE-0001",
        unit: str = "BAR",
        full_scale: float = 20.0,
        minimum: float = -1.0,
        slew_rate: float = 0.5,
        fine_band: float = 0.05,
        time_constant: float = 3.0,
        stability: float = 0.0002,
        noise: float = 0.00005,
        offset: float = 0.0,
        gain: float = 0.0,
        error_table: tuple[tuple[float, float], ...] = (),
        in_limits: float = 0.002,
        in_limits_time: float = 10.0,
        vent_rate: float = 1.0,
        vent_done: float = 0.005,
        reply_latency: float = 0.0,
    ) -> None:
        super().__init__(name, clock, reply_latency=reply_latency)
        if unit not in PRESSURE_UNITS:
            raise ValueError(f"unknown pressure unit {unit!r}")
        self.seed = seed
        self.serial = serial
        self.default_unit = unit
        self.unit = unit
        self.full_scale = full_scale
        self.minimum = minimum
        self.default_slew_rate = slew_rate
        self.slew_rate = slew_rate
        self.fine_band = fine_band
        self.time_constant = time_constant
        self.stability = stability
        self.noise = noise
        self.offset = offset
        self.gain = gain
        #: The certified sensor's true error at its certificate points ((bar, bar), increasing);
        #: empty: the error is offset + gain * p.
        self.error_table = tuple(error_table)
        if self.error_table and (offset or gain):
            raise ValueError("a sensor whose error comes from its certificate takes no offset or gain")
        self.default_in_limits = in_limits
        self.default_in_limits_time = in_limits_time
        self.in_limits = in_limits
        self.in_limits_time = in_limits_time
        self.vent_rate = vent_rate
        self.vent_done = vent_done
        self._noise = stable_rng(seed, name, "reading-noise")
        phases = stable_rng(seed, name, "fluctuation")
        lo, hi = FLUCTUATION_PERIODS
        periods = [lo * (hi / lo) ** (k / (FLUCTUATION_TERMS - 1)) for k in range(FLUCTUATION_TERMS)]
        self._fluctuation = [(2 * math.pi / p, float(phases.uniform(0, 2 * math.pi))) for p in periods]
        self.setpoint = 0.0
        self.mode = "vent"  # "control" (output on), "hold" (output off, isolated), "vent"
        self.vents = 0
        self._ramp = PressureRamp(0.0, 0.0, clock.now(), vent_rate, vent_done, time_constant)
        self.add_commands([
            ("*IDN?", self._idn),
            ("*RST", self._rst),
            ("*CLS", self._cls),
            ("*OPC?", lambda p: "1"),
            ("SYSTem:ERRor[:NEXT]?", self._err),
            ("SENSe[:PRESsure]?", self._sense),
            ("SENSe[:PRESsure]:INLimits?", self._in_limits_query),
            ("SOURce[:PRESsure][:LEVel][:IMMediate][:AMPLitude]", self._set_setpoint),
            ("SOURce[:PRESsure][:LEVel][:IMMediate][:AMPLitude]?", self._setpoint_query),
            ("SOURce[:PRESsure][:LEVel][:IMMediate][:AMPLitude]:VENT", self._set_vent),
            ("SOURce[:PRESsure][:LEVel][:IMMediate][:AMPLitude]:VENT?", self._vent_query),
            ("SOURce[:PRESsure]:INLimits", self._set_in_limits),
            ("SOURce[:PRESsure]:INLimits?", self._band_query),
            ("SOURce[:PRESsure]:INLimits:TIME", self._set_in_limits_time),
            ("SOURce[:PRESsure]:INLimits:TIME?", self._time_query),
            ("SOURce[:PRESsure]:SLEW", self._set_slew),
            ("SOURce[:PRESsure]:SLEW?", self._slew_query),
            ("OUTPut[:STATe]", self._set_output),
            ("OUTPut[:STATe]?", self._output_query),
            ("UNIT[:PRESsure]", self._set_unit),
            ("UNIT[:PRESsure]?", self._unit_query),
        ])

    @classmethod
    def from_bench_entry(cls, entry: InstrumentEntry, *, source: str, clock: Clock, seed: int) -> PaceController:
        """Build from the bench file; every wrong or unknown parameter is a ConfigError naming it."""
        where = f"instruments.{entry.name}.simulation"
        params = read_simulation_parameters(
            entry.name, entry.simulation, source=source, numbers=cls.SIMULATION_PARAMETERS,
            structured={"unit": lambda v, f: _unit_name(source, f, v)},
        )
        if params["minimum"] >= params["full_scale"]:
            raise ConfigError(source, f"{where}.minimum", "must be below full_scale",
                              "give minimum < full_scale, e.g. minimum = -1, full_scale = 20")
        if params["gain"] <= -1.0:
            raise ConfigError(source, f"{where}.gain", f"must be > -1, got {params['gain']!r}",
                              "give the error per bar as a small fraction, e.g. gain = 5e-5")
        certificate = PressureCertificate.from_bench(entry.certificate, source=source, instrument=entry.name)
        table: tuple[tuple[float, float], ...] = ()
        if certificate is not None:
            # The certified sensor's truth is its certificate, honest at the stated rate; an offset
            # or gain written as well would be a second, contradicting truth.
            clash = [key for key in ("offset", "gain") if key in entry.simulation]
            if clash:
                raise ConfigError(
                    source, f"{where}.{clash[0]}",
                    f"the sensor of {entry.name} carries a pressure certificate, which states its error",
                    f"remove {' and '.join(clash)} (the simulation draws the sensor's true error from the "
                    "certificate's corrections and U/k)")
            table = certificate.true_errors(seed, entry.name)
        return cls(
            entry.name, clock, seed=seed, serial=entry.serial or "SIMPACE-0001", unit=params["unit"],
            full_scale=params["full_scale"], minimum=params["minimum"], slew_rate=params["slew_rate"],
            fine_band=params["fine_band"], time_constant=params["time_constant"], stability=params["stability"],
            noise=params["noise"], offset=params["offset"], gain=params["gain"], error_table=table,
            in_limits=params["in_limits"],
            in_limits_time=params["in_limits_time"], vent_rate=params["vent_rate"], vent_done=params["vent_done"],
            reply_latency=params["latency"],
        )

    # --- ground truth ---------------------------------------------------------------------

    def true_error(self, pressure: float) -> float:
        """The controller's sensor reading minus the true pressure at `pressure` (bar), no noise."""
        if self.error_table:
            return interpolate(self.error_table, pressure)
        return self.offset + self.gain * pressure

    def controlled_pressure(self, setpoint: float) -> float:
        """The true pressure the loop settles at for `setpoint`: where the sensor reads the setpoint."""
        if not self.error_table:
            return (setpoint - self.offset) / (1.0 + self.gain)
        p = setpoint
        for _ in range(50):  # p + error(p) = setpoint; the error's slope is tiny, so this contracts fast
            nxt = setpoint - self.true_error(p)
            if abs(nxt - p) <= 1e-13:
                return nxt
            p = nxt
        return p

    def fluctuation_at(self, t: float) -> float:
        if self.stability == 0 or self.mode != "control":
            return 0.0
        amplitude = self.stability * math.sqrt(2.0 / len(self._fluctuation))
        return amplitude * math.fsum(math.sin(w * t + phi) for w, phi in self._fluctuation)

    def mean_pressure_at(self, t: float) -> float:
        """The true pressure without the control fluctuation (bar gauge)."""
        return self._ramp.position(t)

    def pressure_at(self, t: float) -> float:
        """The true pressure at the output port at clock time `t` (bar gauge)."""
        return self._ramp.position(t) + self.fluctuation_at(t)

    def sensor_at(self, t: float) -> float:
        """What the controller's sensor sees at `t` (bar), without reading noise or display rounding."""
        p = self.pressure_at(t)
        return p + self.true_error(p)

    def in_limits_at(self, t: float) -> bool:
        """The instrument's flag: output on and within the band of the setpoint for the in-limits time."""
        if self.mode != "control":
            return False
        start = t - self.in_limits_time
        if start < self._ramp.t0:
            return False
        samples = max(1, IN_LIMITS_SAMPLES if self.in_limits_time > 0 else 1)
        for i in range(samples + 1):
            ti = start + self.in_limits_time * i / samples
            if abs(self.sensor_at(ti) - self.setpoint) > self.in_limits:
                return False
        return True

    def vent_status(self, t: float) -> int:
        if self.mode != "vent":
            return VENT_IDLE
        return VENT_DONE if abs(self.pressure_at(t)) <= self.vent_done else VENT_VENTING

    def output_source(self, terminal: str) -> Callable[[float], float]:
        if terminal != "pressure":
            raise KeyError(terminal)
        return self.pressure_at

    # --- state changes --------------------------------------------------------------------

    def _move(self, target: float, rate: float, band: float) -> None:
        now = self.clock.now()
        self._ramp = PressureRamp(target, self.pressure_at(now), now, rate, band, self.time_constant)

    def set_setpoint(self, bar: float) -> None:
        if not self.minimum <= bar <= self.full_scale:
            raise ScpiError(DATA_OUT_OF_RANGE,
                            f"setpoint {bar:g} bar outside {self.minimum:g}..{self.full_scale:g} bar")
        self.setpoint = float(bar)
        if self.mode == "control":
            self._move(self.controlled_pressure(self.setpoint), self.slew_rate, self.fine_band)

    def set_output(self, on: bool) -> None:
        if on:
            if self.mode != "control":
                self.mode = "control"
                self._move(self.controlled_pressure(self.setpoint), self.slew_rate, self.fine_band)
        elif self.mode == "control":
            now = self.clock.now()
            held = self.pressure_at(now)
            self.mode = "hold"
            self._ramp = PressureRamp(held, held, now, self.slew_rate, 0.0, self.time_constant)

    def vent(self) -> None:
        if self.mode == "vent":
            return
        now = self.clock.now()
        start = self.pressure_at(now)
        self.mode = "vent"
        self.vents += 1
        self._ramp = PressureRamp(0.0, start, now, self.vent_rate, self.vent_done / 5.0, self.time_constant)

    # --- command handlers -----------------------------------------------------------------

    def _to_unit(self, bar: float) -> float:
        return bar * PRESSURE_UNITS[self.unit][0]

    def _from_unit(self, value: float) -> float:
        return value / PRESSURE_UNITS[self.unit][0]

    def _format(self, bar: float) -> str:
        decimals = PRESSURE_UNITS[self.unit][1]
        return f"{self._to_unit(bar):.{decimals}f}"

    def _reading(self) -> float:
        value = self.sensor_at(self.clock.now())
        if self.noise > 0:
            value += float(self._noise.normal(0.0, self.noise))
        return value

    def _idn(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f"GE Druck,PACE5000,{self.serial},SIM1.0"

    def _rst(self, params: list[str]) -> None:
        expect_params(params, 0)
        self.unit = self.default_unit
        self.in_limits = self.default_in_limits
        self.in_limits_time = self.default_in_limits_time
        self.slew_rate = self.default_slew_rate
        self.set_output(False)

    def _sense(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f":SENS:PRES {self._format(self._reading())}"

    def _in_limits_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        flag = 1 if self.in_limits_at(self.clock.now()) else 0
        return f":SENS:PRES:INL {self._format(self._reading())}, {flag}"

    def _set_setpoint(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        self.set_setpoint(self._from_unit(parse_number(text)))

    def _setpoint_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f":SOUR:PRES {self._format(self.setpoint)}"

    def _set_vent(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        if parse_switch(text):
            self.vent()
        elif self.mode == "vent":
            now = self.clock.now()
            held = self.pressure_at(now)
            self.mode = "hold"
            self._ramp = PressureRamp(held, held, now, self.slew_rate, 0.0, self.time_constant)

    def _vent_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f":SOUR:PRES:LEV:IMM:AMPL:VENT {self.vent_status(self.clock.now())}"

    def _positive(self, text: str, what: str, allow_zero: bool = False) -> float:
        value = parse_number(text)
        if value < 0 or (value == 0 and not allow_zero):
            raise ScpiError(DATA_OUT_OF_RANGE, f"{what} must be {'>= 0' if allow_zero else 'positive'}")
        return value

    def _set_in_limits(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        self.in_limits = self._from_unit(self._positive(text, "in-limits band"))

    def _band_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f":SOUR:PRES:INL {self._to_unit(self.in_limits):g}"

    def _set_in_limits_time(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        self.in_limits_time = self._positive(text, "in-limits time", allow_zero=True)

    def _time_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f":SOUR:PRES:INL:TIME {self.in_limits_time:g}"

    def _set_slew(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        self.slew_rate = self._from_unit(self._positive(text, "slew rate"))

    def _slew_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f":SOUR:PRES:SLEW {self._to_unit(self.slew_rate):g}"

    def _set_output(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        self.set_output(parse_switch(text))

    def _output_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f":OUTP:STAT {1 if self.mode == 'control' else 0}"

    def _set_unit(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        unit = text.strip().upper()
        if unit not in PRESSURE_UNITS:
            raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"unit {text.strip()!r}: use {', '.join(PRESSURE_UNITS)}")
        self.unit = unit

    def _unit_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f":UNIT:PRES {self.unit}"


def _unit_name(source: str, where: str, value: Any) -> str:
    if value is None:
        return "BAR"
    if not isinstance(value, str) or value.strip().upper() not in PRESSURE_UNITS:
        raise ConfigError(source, where, f"unknown pressure unit {value!r}",
                          f"use one of {', '.join(PRESSURE_UNITS)}, e.g. unit = \"BAR\"")
    return value.strip().upper()
