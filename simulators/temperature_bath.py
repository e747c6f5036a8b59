"""A Fluke/Hart SCPI-class temperature bath or dry-well: control loop, stability, wells.

Why these physics: a thermometer comparison is only tested if the bath behaves as a bath
does. A step of the setpoint is followed as an under-damped second-order system (the
controller overshoots, rings and settles with the envelope time constant `time_constant`);
the fluid never sits still (a short-term fluctuation of RMS `stability`, common to every
well, plus noise on the control display); and the wells are not at one temperature: well k
is offset from the control temperature by `gradients[k]` per degree away from ambient plus a
small fixed `offsets[k]`, so probes in different wells see different temperatures (the
uniformity term of a comparison budget).

When the bench file gives no `gradients`, `gradient` or `offsets` but states the bath's
characterisation (`[instruments.<name>.certificate.characterisation]`: `stability`,
`uniformity`, `uniformity_per_degree`, `ambient`, half-widths in degC), the world *is* a bath
that characterisation honestly describes, drawn afresh for each seed: against the reference
position (`reference_well`, the centre), every other well sits at
`share[k] * (uniformity + uniformity_per_degree * |T - ambient|)` with `share[k]` drawn
uniformly in [-1, 1], and wanders slowly (a triangle wave of a period of hours, random
phase, so its value at any moment is uniform) within +-`stability`: the rectangular
distributions a comparison budget assumes for the bath, realised.

Everything is an analytic function of the injected clock (no background task). The
instrument's own stability flag (`SOUR:STAB:TEST?`) is 1 only when the control temperature
has stayed within `SOUR:STAB:LIM` of the setpoint for the last `dwell` seconds, as the
instrument sees it on its own sampling grid.

Commands (SCPI class: Fluke 6100/7100 baths, 914x/915x dry-wells):
`*IDN?`, `*CLS`, `*RST`, `SYST:ERR?`, `SOUR:SPO <t>`, `SOUR:SPO?`, `SOUR:SENS:DATA? [TEMP]`,
`SOUR:STAB:LIM <x>`, `SOUR:STAB:LIM?`, `SOUR:STAB:TEST?`, `OUTP:STAT 0|1`, `OUTP:STAT?`,
`UNIT:TEMP?`. Output terminals: `well1` .. `wellN` (the true temperature in each well).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daq.bench import InstrumentEntry
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
from simulators.seeding import stable_rng
from simulators.simulation_parameters import NumberParameter, read_simulation_parameters

#: Sinusoids summed for the fluid's short-term fluctuation, and the band of their periods (s).
FLUCTUATION_TERMS = 8
FLUCTUATION_PERIODS = (8.0, 120.0)
#: Samples the controller takes over its dwell when it decides STAB:TEST?.
STABILITY_SAMPLES = 120
#: Band of the periods (s) of each well's slow wander against the reference position.
WANDER_PERIODS = (3600.0, 4 * 3600.0)


@dataclass(frozen=True)
class BathCharacterisation:
    """What the bath's characterisation states (half-widths, degC); the simulation draws within it."""

    stability: float
    uniformity: float
    uniformity_per_degree: float = 0.0
    ambient: float = 23.0

    def uniformity_at(self, temperature: float) -> float:
        return self.uniformity + self.uniformity_per_degree * abs(temperature - self.ambient)

    @classmethod
    def from_bench(cls, certificate: dict[str, Any], *, source: str, instrument: str) -> BathCharacterisation | None:
        table = certificate.get("characterisation")
        if table is None:
            return None
        where = f"instruments.{instrument}.certificate.characterisation"
        fix = "write stability = 0.004, uniformity = 0.001, uniformity_per_degree = 1e-4, ambient = 23.0 (degC)"
        if not isinstance(table, dict):
            raise ConfigError(source, where, "must be a table", fix)
        values: dict[str, float] = {}
        for key, default in (("stability", None), ("uniformity", None), ("uniformity_per_degree", 0.0),
                             ("ambient", 23.0)):
            value = table.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or (
                    key != "ambient" and value < 0):
                raise ConfigError(source, f"{where}.{key}", f"expected a number >= 0, got {value!r}", fix)
            values[key] = float(value)
        return cls(**values)


@dataclass(frozen=True)
class WellDraw:
    """One well's seeded place in a characterised bath: its share of the uniformity half-width
    and its slow wander (triangle wave of amplitude `stability`)."""

    share: float
    period: float
    phase: float

    def wander(self, amplitude: float, t: float) -> float:
        if amplitude == 0.0:
            return 0.0
        x = (t / self.period + self.phase) % 1.0  # triangle: uniform in [-amplitude, amplitude] over a period
        return amplitude * (4.0 * x - 1.0 if x < 0.5 else 3.0 - 4.0 * x)


class SecondOrderStep:
    """x(t) after a setpoint change: under-damped (or critically damped) approach to `target`.

    Started from position `x0` and velocity `v0` at `t0`, so a new setpoint mid-swing
    continues smoothly from where the fluid is and how fast it moves.
    `time_constant` is the envelope's 1/e time; `overshoot` the first-peak overshoot
    fraction of a step from rest (0 gives the critically damped response).
    """

    def __init__(self, target: float, x0: float, v0: float, t0: float, time_constant: float, overshoot: float) -> None:
        self.target = target
        self.t0 = t0
        self.sigma = 1.0 / time_constant
        self.a = x0 - target
        if overshoot > 0:
            log_os = math.log(overshoot)
            zeta = -log_os / math.sqrt(math.pi**2 + log_os**2)
            self.omega = self.sigma / zeta * math.sqrt(1.0 - zeta**2)
            self.b = (v0 + self.sigma * self.a) / self.omega
        else:
            self.omega = 0.0
            self.b = v0 + self.sigma * self.a

    def position(self, t: float) -> float:
        dt = max(0.0, t - self.t0)
        decay = math.exp(-self.sigma * dt)
        if self.omega == 0.0:
            return self.target + (self.a + self.b * dt) * decay
        w = self.omega * dt
        return self.target + decay * (self.a * math.cos(w) + self.b * math.sin(w))

    def velocity(self, t: float) -> float:
        dt = max(0.0, t - self.t0)
        decay = math.exp(-self.sigma * dt)
        if self.omega == 0.0:
            return (self.b - self.sigma * (self.a + self.b * dt)) * decay
        w = self.omega * dt
        s, o, a, b = self.sigma, self.omega, self.a, self.b
        return decay * ((-s * a + b * o) * math.cos(w) + (-s * b - a * o) * math.sin(w))

    def envelope(self, t: float) -> float:
        """An upper bound of |x(t) - target| from t on (what is left of the transient)."""
        dt = max(0.0, t - self.t0)
        if self.omega == 0.0:
            return (abs(self.a) + abs(self.b) * dt) * math.exp(-self.sigma * dt)
        return math.hypot(self.a, self.b) * math.exp(-self.sigma * dt)


def _number_list(source: str, where: str, value: Any, length: int, what: str) -> list[float] | None:
    if value is None:
        return None
    fix = f"give {length} numbers ({what}), one per well, e.g. [{', '.join(['0.0'] * min(length, 3))}, ...]"
    if not isinstance(value, list):
        raise ConfigError(source, where, f"expected an array of {length} numbers, got {value!r}", fix)
    if len(value) != length:
        raise ConfigError(source, where, f"expected {length} values (one per well), got {len(value)}", fix)
    numbers = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            raise ConfigError(source, f"{where}[{i}]", f"expected a number, got {item!r}", fix)
        numbers.append(float(item))
    return numbers


class TemperatureBath(ScpiInstrument):
    """Fluke/Hart SCPI-class bath or dry-well model; output terminals `well1` .. `wellN`."""

    SIMULATION_PARAMETERS = {
        "time_constant": NumberParameter(300.0, 0.0, exclusive_minimum=True,
                                         hint="give the settling envelope's time constant in seconds, e.g. 300"),
        "overshoot": NumberParameter(0.1, 0.0, hint="give the first-peak overshoot as a fraction in [0, 1), e.g. 0.1"),
        "stability": NumberParameter(0.002, 0.0, hint="give the RMS short-term fluctuation in degC, e.g. 0.002"),
        "control_noise": NumberParameter(0.0005, 0.0, hint="give the control display noise (RMS degC), e.g. 0.0005"),
        "resolution": NumberParameter(0.001, 0.0, hint="give the display resolution in degC, e.g. 0.001"),
        "ambient": NumberParameter(23.0, -273.15, hint="give the room temperature in degC, e.g. 23"),
        "initial": NumberParameter(math.nan, -273.15, hint="give the starting temperature in degC (default ambient)"),
        "dwell": NumberParameter(120.0, 0.0, hint="give the stability test's dwell in seconds, e.g. 120"),
        "stability_limit": NumberParameter(0.05, 0.0, exclusive_minimum=True,
                                           hint="give the default SOUR:STAB:LIM in degC, e.g. 0.05"),
        "wells": NumberParameter(8.0, 1.0, hint="give the number of wells/positions, e.g. wells = 8"),
        "gradient": NumberParameter(1e-4, hint="give the farthest well's gradient in degC per degC from ambient"),
        "reference_well": NumberParameter(1.0, 1.0, hint="give the well the characterisation is stated against "
                                                         "(the reference position), e.g. reference_well = 1"),
        "min_setpoint": NumberParameter(-30.0, -273.15, hint="give the lowest setpoint in degC, e.g. -30"),
        "max_setpoint": NumberParameter(150.0, -273.15, hint="give the highest setpoint in degC, e.g. 150"),
    }

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        seed: int = 0,
        serial: str = "SIM7341-0001",
        model: str = "7341",
        time_constant: float = 300.0,
        overshoot: float = 0.1,
        stability: float = 0.002,
        control_noise: float = 0.0005,
        resolution: float = 0.001,
        ambient: float = 23.0,
        initial: float | None = None,
        dwell: float = 120.0,
        stability_limit: float = 0.05,
        gradients: list[float] | None = None,
        offsets: list[float] | None = None,
        wells: int = 8,
        min_setpoint: float = -30.0,
        max_setpoint: float = 150.0,
        characterisation: BathCharacterisation | None = None,
        reference_well: int = 1,
        reply_latency: float = 0.0,
    ) -> None:
        super().__init__(name, clock, reply_latency=reply_latency)
        if not 0.0 <= overshoot < 1.0:
            raise ValueError("overshoot must be in [0, 1)")
        self.seed = seed
        self.serial = serial
        self.model = model
        self.time_constant = time_constant
        self.overshoot = overshoot
        self.stability = stability
        self.control_noise = control_noise
        self.resolution = resolution
        self.ambient = ambient
        self.dwell = dwell
        self.default_stability_limit = stability_limit
        self.min_setpoint = min_setpoint
        self.max_setpoint = max_setpoint
        self.gradients = list(gradients) if gradients is not None else [
            1e-4 * k / max(1, wells - 1) for k in range(wells)]
        self.offsets = list(offsets) if offsets is not None else [0.0] * wells
        if len(self.gradients) != wells or len(self.offsets) != wells:
            raise ValueError("one gradient and one offset per well")
        self.output_terminals = tuple(f"well{k + 1}" for k in range(wells))
        if not 1 <= reference_well <= wells:
            raise ValueError(f"reference_well must be 1..{wells}")
        self.characterisation = characterisation
        self.reference_well = reference_well
        self.well_draws: list[WellDraw] = []
        if characterisation is not None:
            lo_p, hi_p = WANDER_PERIODS
            for k in range(1, wells + 1):
                rng = stable_rng(seed, name, "well", k)
                share, period, phase = (float(rng.uniform(-1.0, 1.0)), float(rng.uniform(lo_p, hi_p)),
                                        float(rng.uniform(0.0, 1.0)))
                self.well_draws.append(WellDraw(0.0, 1.0, 0.0) if k == reference_well else
                                       WellDraw(share, period, phase))
        self._noise = stable_rng(seed, name, "control-noise")
        phases = stable_rng(seed, name, "fluctuation")
        lo, hi = FLUCTUATION_PERIODS
        periods = [lo * (hi / lo) ** (k / (FLUCTUATION_TERMS - 1)) for k in range(FLUCTUATION_TERMS)]
        self._fluctuation = [(2 * math.pi / p, float(phases.uniform(0, 2 * math.pi))) for p in periods]
        start = ambient if initial is None or math.isnan(initial) else initial
        self.heating = True
        self.setpoint = start
        self.stability_limit = stability_limit
        self._step = SecondOrderStep(start, start, 0.0, clock.now(), time_constant, overshoot)
        self.add_commands([
            ("*IDN?", self._idn),
            ("*RST", self._rst),
            ("*CLS", self._cls),
            ("*OPC?", lambda p: "1"),
            ("SYSTem:ERRor[:NEXT]?", self._err),
            ("[SOURce:]SPOint", self._set_setpoint),
            ("[SOURce:]SPOint?", self._setpoint_query),
            ("[SOURce:]SENSe:DATA?", self._sense),
            ("[SOURce:]STABility:LIMit", self._set_limit),
            ("[SOURce:]STABility:LIMit?", self._limit_query),
            ("[SOURce:]STABility:TEST?", self._stability_test),
            ("OUTPut[:STATe]", self._set_output),
            ("OUTPut[:STATe]?", self._output_query),
            ("UNIT:TEMPerature?", self._unit_query),
        ])

    @classmethod
    def from_bench_entry(cls, entry: InstrumentEntry, *, source: str, clock: Clock, seed: int) -> TemperatureBath:
        """Build from the bench file; every wrong or unknown parameter is a ConfigError naming it."""
        where = f"instruments.{entry.name}.simulation"
        wells_value = entry.simulation.get("wells", 8)
        if isinstance(wells_value, bool) or not isinstance(wells_value, int) or not 1 <= wells_value <= 64:
            raise ConfigError(source, f"{where}.wells", f"expected a whole number of wells 1..64, got {wells_value!r}",
                              "write e.g. wells = 8")
        wells = wells_value
        params = read_simulation_parameters(
            entry.name, entry.simulation, source=source, numbers=cls.SIMULATION_PARAMETERS,
            structured={
                "gradients": lambda v, f: _number_list(source, f, v, wells, "degC per degC from ambient"),
                "offsets": lambda v, f: _number_list(source, f, v, wells, "degC"),
                "model": lambda v, f: _model_name(source, f, v),
            },
        )
        if params["overshoot"] >= 1.0:
            raise ConfigError(source, f"{where}.overshoot", f"must be < 1, got {params['overshoot']!r}",
                              "give the first-peak overshoot as a fraction in [0, 1), e.g. 0.1")
        if params["min_setpoint"] >= params["max_setpoint"]:
            raise ConfigError(source, f"{where}.max_setpoint", "must be above min_setpoint",
                              "give min_setpoint < max_setpoint")
        characterisation = BathCharacterisation.from_bench(entry.certificate, source=source, instrument=entry.name)
        reference_well = params["reference_well"]
        if reference_well != int(reference_well) or reference_well > wells:
            raise ConfigError(source, f"{where}.reference_well", f"expected a well 1..{wells}, got {reference_well!r}",
                              "give the well the reference probe sits in, e.g. reference_well = 1")
        gradients = params["gradients"]
        configured = any(key in entry.simulation for key in ("gradients", "gradient", "offsets"))
        if configured or characterisation is None:
            characterisation = None  # wells as configured (or the default linear gradient)
            if gradients is None:
                gradients = [params["gradient"] * k / max(1, wells - 1) for k in range(wells)]
            elif "gradient" in entry.simulation:
                raise ConfigError(source, f"{where}.gradient", "given together with gradients",
                                  "give either gradient (linear across the wells) or gradients (one per well)")
        else:
            gradients = [0.0] * wells  # drawn from the characterisation instead
        initial = params["initial"]
        return cls(
            entry.name, clock, seed=seed, serial=entry.serial or "SIM7341-0001", model=params["model"],
            time_constant=params["time_constant"], overshoot=params["overshoot"], stability=params["stability"],
            control_noise=params["control_noise"], resolution=params["resolution"], ambient=params["ambient"],
            initial=None if math.isnan(initial) else initial, dwell=params["dwell"],
            stability_limit=params["stability_limit"], gradients=gradients, offsets=params["offsets"],
            wells=wells, min_setpoint=params["min_setpoint"], max_setpoint=params["max_setpoint"],
            characterisation=characterisation, reference_well=int(reference_well), reply_latency=params["latency"],
        )

    # --- ground truth ---------------------------------------------------------------------

    @property
    def wells(self) -> int:
        return len(self.gradients)

    def fluctuation_at(self, t: float) -> float:
        """The fluid's short-term fluctuation (common to every well), RMS `stability`."""
        if self.stability == 0:
            return 0.0
        amplitude = self.stability * math.sqrt(2.0 / len(self._fluctuation))
        return amplitude * math.fsum(math.sin(w * t + phi) for w, phi in self._fluctuation)

    def control_mean_at(self, t: float) -> float:
        """The controlled temperature without the fluctuation: the loop's own trajectory."""
        return self._step.position(t)

    def control_at(self, t: float) -> float:
        """The true temperature at the control sensor at clock time `t`."""
        return self._step.position(t) + self.fluctuation_at(t)

    def well_offset(self, well: int, control: float) -> float:
        """Well `well` (1-based) minus the control temperature, when the control is at `control`
        (the steady part: gradient and offset, or the drawn share of the characterised uniformity)."""
        k = well - 1
        offset = self.gradients[k] * (control - self.ambient) + self.offsets[k]
        if self.characterisation is not None:
            offset += self.well_draws[k].share * self.characterisation.uniformity_at(control)
        return offset

    def well_wander(self, well: int, t: float) -> float:
        """Well `well`'s slow wander against the reference position at `t` (0 unless characterised)."""
        if self.characterisation is None or well == self.reference_well:
            return 0.0
        return self.well_draws[well - 1].wander(self.characterisation.stability, t)

    def well_at(self, well: int, t: float) -> float:
        """The true temperature in well `well` (1-based) at clock time `t`."""
        control = self.control_at(t)
        return control + self.well_offset(well, control) + self.well_wander(well, t)

    def transient_at(self, t: float) -> float:
        """What is left of the step response: a bound of |control mean - target| from t on."""
        return self._step.envelope(t)

    def stable_at(self, t: float) -> bool:
        """The instrument's own flag: within the limit of the setpoint for the whole dwell."""
        start = t - self.dwell
        if start < self._step.t0 or not self.heating:
            return False
        for i in range(STABILITY_SAMPLES + 1):
            ti = start + self.dwell * i / STABILITY_SAMPLES
            if abs(self.control_at(ti) - self.setpoint) > self.stability_limit:
                return False
        return True

    def output_source(self, terminal: str) -> Callable[[float], float]:
        if terminal not in self.output_terminals:
            raise KeyError(terminal)
        well = int(terminal[len("well"):])
        return lambda t: self.well_at(well, t)

    # --- state changes --------------------------------------------------------------------

    def _move_to(self, target: float) -> None:
        now = self.clock.now()
        self._step = SecondOrderStep(target, self._step.position(now), self._step.velocity(now), now,
                                     self.time_constant, self.overshoot)

    def set_setpoint(self, value: float) -> None:
        if not self.min_setpoint <= value <= self.max_setpoint:
            raise ScpiError(DATA_OUT_OF_RANGE,
                            f"setpoint {value:g} outside {self.min_setpoint:g}..{self.max_setpoint:g} C")
        self.setpoint = float(value)
        if self.heating:
            self._move_to(self.setpoint)

    def set_heating(self, on: bool) -> None:
        if on == self.heating:
            return
        self.heating = on
        self._move_to(self.setpoint if on else self.ambient)

    # --- command handlers -----------------------------------------------------------------

    def _format(self, value: float) -> str:
        decimals = max(0, -math.floor(math.log10(self.resolution))) if self.resolution > 0 else 4
        return f"{value:.{decimals}f}"

    def _idn(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f"FLUKE,{self.model},{self.serial},SIM1.0"

    def _rst(self, params: list[str]) -> None:
        expect_params(params, 0)
        self.stability_limit = self.default_stability_limit
        self.set_heating(True)

    def _set_setpoint(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        self.set_setpoint(parse_number(text))

    def _sense(self, params: list[str]) -> str:
        expect_params(params, 1)
        if params and params[0].strip().upper() not in ("TEMP", "TEMPERATURE"):
            raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"no sensor data {params[0].strip()!r}")
        value = self.control_at(self.clock.now())
        if self.control_noise > 0:
            value += float(self._noise.normal(0.0, self.control_noise))
        if self.resolution > 0:
            value = round(value / self.resolution) * self.resolution
        return self._format(value)

    def _setpoint_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        return self._format(self.setpoint)

    def _limit_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f"{self.stability_limit:g}"

    def _stability_test(self, params: list[str]) -> str:
        expect_params(params, 0)
        return "1" if self.stable_at(self.clock.now()) else "0"

    def _output_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        return "1" if self.heating else "0"

    def _unit_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        return "C"

    def _set_limit(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        value = parse_number(text)
        if value <= 0:
            raise ScpiError(DATA_OUT_OF_RANGE, "stability limit must be positive")
        self.stability_limit = value

    def _set_output(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        self.set_heating(parse_switch(text))


def _model_name(source: str, where: str, value: Any) -> str:
    if value is None:
        return "7341"
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(source, where, f"expected a model name, got {value!r}", 'write e.g. model = "9142"')
    return value.strip()
