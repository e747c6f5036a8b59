"""The simulator that plays the operator reading a gauge with no interface (dial gauge, glass thermometer).

It implements the drivers' `ManualReader` face (`read_indication(prompt, unit, resolution)`)
structurally, without importing `drivers`: asked for an indication, it looks at the true
value at its wired `input` terminal at the clock time, applies the gauge's true error
(`offset + gain * p`, in the gauge's unit) and hysteresis (the indication is
`hysteresis / 2` low while the pressure has been rising, `hysteresis / 2` high while it has
been falling: the needle lags), adds the operator's reading scatter (`scatter`, RMS), rounds
to the reading resolution (e.g. 1/5 of a division) and clamps to the scale (a pinned needle).

Direction: the last movement of the input larger than `reversal` (default: one reading
resolution) decides it, looked for backwards over the last `memory` seconds; a gauge that has
not moved reads as on the way up.

The world's pressure terminals carry bar (gauge); `unit` converts to the gauge's scale.
Nothing is served on the wire (a manual gauge has no interface): the bench entry's resource
is a placeholder until the bench file has a manual kind of resource.

Bench file:
```toml
[instruments.gauge]
driver = "manual_entry"
resource = "TCPIP::127.0.0.1::0::SOCKET"      # placeholder: nothing answers on it
[instruments.gauge.simulation]
unit = "bar"
full_scale = 16.0
resolution = 0.02          # 1/5 of a 0.1 bar division
offset = 0.01
gain = 0.002
hysteresis = 0.04          # descending minus ascending error
scatter = 0.0
[[wiring]]
from = "pace.pressure"
to = "gauge.input"
```
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from daq.bench import InstrumentEntry
from daq.clock import Clock
from daq.errors import ConfigError
from simulators.scpi_instrument import ScpiInstrument
from simulators.seeding import stable_rng
from simulators.simulation_parameters import NumberParameter, read_simulation_parameters

#: Value of 1 bar (the world's pressure terminals) in the gauge's unit; "degC" for thermometers.
GAUGE_UNITS: dict[str, float] = {
    "bar": 1.0, "mbar": 1000.0, "kPa": 100.0, "MPa": 0.1, "Pa": 1e5, "psi": 14.503773773, "degC": 1.0,
}


class ManualGauge(ScpiInstrument):
    """A gauge read by a simulated operator; input terminal `input`."""

    input_terminals = ("input",)

    SIMULATION_PARAMETERS = {
        "full_scale": NumberParameter(16.0, hint="give the top of the scale in the gauge's unit, e.g. 16"),
        "minimum": NumberParameter(0.0, hint="give the bottom of the scale in the gauge's unit, e.g. 0"),
        "resolution": NumberParameter(0.02, 0.0, exclusive_minimum=True,
                                      hint="give the reading resolution, e.g. 0.02 (1/5 of a 0.1 division)"),
        "offset": NumberParameter(0.0, hint="give the gauge's true error at zero, in its unit, e.g. 0.01"),
        "gain": NumberParameter(0.0, hint="give the gauge's error per unit indicated (fraction), e.g. 0.002"),
        "hysteresis": NumberParameter(0.0, hint="give the descending minus ascending error, e.g. 0.04"),
        "scatter": NumberParameter(0.0, 0.0, hint="give the operator's reading scatter (RMS), e.g. 0.005"),
        "reading_time": NumberParameter(0.0, 0.0, hint="give the seconds the operator takes per reading, e.g. 5"),
        "memory": NumberParameter(3600.0, 0.0, exclusive_minimum=True,
                                  hint="give how far back (s) the last movement is looked for, e.g. 3600"),
        "reversal": NumberParameter(math.nan, 0.0, hint="give the movement that decides the direction, e.g. 0.02"),
    }

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        seed: int = 0,
        unit: str = "bar",
        full_scale: float = 16.0,
        minimum: float = 0.0,
        resolution: float = 0.02,
        offset: float = 0.0,
        gain: float = 0.0,
        hysteresis: float = 0.0,
        scatter: float = 0.0,
        reading_time: float = 0.0,
        memory: float = 3600.0,
        reversal: float | None = None,
    ) -> None:
        super().__init__(name, clock)
        if unit not in GAUGE_UNITS:
            raise ValueError(f"unknown gauge unit {unit!r}")
        if resolution <= 0 or not minimum < full_scale:
            raise ValueError("a gauge needs resolution > 0 and minimum < full_scale")
        self.unit = unit
        self.full_scale = full_scale
        self.minimum = minimum
        self.resolution = resolution
        self.offset = offset
        self.gain = gain
        self.hysteresis = hysteresis
        self.scatter = scatter
        self.reading_time = reading_time
        self.memory = memory
        self.reversal = resolution if reversal is None or math.isnan(reversal) else reversal
        self._scatter = stable_rng(seed, name, "operator-scatter")
        self._input: Callable[[float], float] | None = None
        #: Every prompt the "operator" was shown, with the unit and resolution asked for.
        self.prompts: list[tuple[str, str, float]] = []

    @classmethod
    def from_bench_entry(cls, entry: InstrumentEntry, *, source: str, clock: Clock, seed: int) -> ManualGauge:
        where = f"instruments.{entry.name}.simulation"
        params = read_simulation_parameters(
            entry.name, entry.simulation, source=source, numbers=cls.SIMULATION_PARAMETERS,
            structured={"unit": lambda v, f: _unit_name(source, f, v)},
        )
        if params["minimum"] >= params["full_scale"]:
            raise ConfigError(source, f"{where}.full_scale", "must be above minimum",
                              "give minimum < full_scale, e.g. minimum = 0, full_scale = 16")
        reversal = params["reversal"]
        return cls(
            entry.name, clock, seed=seed, unit=params["unit"], full_scale=params["full_scale"],
            minimum=params["minimum"], resolution=params["resolution"], offset=params["offset"],
            gain=params["gain"], hysteresis=params["hysteresis"], scatter=params["scatter"],
            reading_time=params["reading_time"], memory=params["memory"],
            reversal=None if math.isnan(reversal) else reversal,
        )

    # --- the world ------------------------------------------------------------------------

    def connect_input(self, terminal: str, source: Callable[[float], float]) -> None:
        if terminal != "input":
            raise KeyError(terminal)
        self._input = source

    def value_at(self, t: float) -> float:
        """The true input at `t`, in the gauge's unit (0 when nothing is wired)."""
        return 0.0 if self._input is None else float(self._input(t)) * GAUGE_UNITS[self.unit]

    def ascending_at(self, t: float) -> bool:
        """True if the input's last movement larger than `reversal` before `t` was upwards."""
        now = self.value_at(t)
        back = 0.0
        while back < self.memory:
            back += 1.0 if back < 600.0 else 10.0
            then = self.value_at(t - back)
            if abs(now - then) > self.reversal:
                return now > then
        return True

    def true_error(self, value: float, ascending: bool) -> float:
        """Indication minus true value at `value` (gauge unit), without scatter or rounding."""
        half = self.hysteresis / 2.0
        return self.offset + self.gain * value + (-half if ascending else half)

    def indication_at(self, t: float) -> float:
        """What a careful operator reads at `t`: truth + error, plus scatter, rounded, clamped to the scale."""
        value = self.value_at(t)
        reading = value + self.true_error(value, self.ascending_at(t))
        if self.scatter > 0:
            reading += float(self._scatter.normal(0.0, self.scatter))
        reading = round(reading / self.resolution) * self.resolution
        reading = min(max(reading, self.minimum), self.full_scale)
        decimals = max(0, -math.floor(math.log10(self.resolution) + 1e-9)) + 1
        return round(reading, decimals)

    # --- ManualReader ---------------------------------------------------------------------

    async def read_indication(self, prompt: str, unit: str, resolution: float) -> float:
        """Play the operator: look at the gauge now, take `reading_time` to type it in."""
        self.prompts.append((prompt, unit, resolution))
        if unit != self.unit:
            raise ValueError(f"{self.name}: asked for {unit!r} but the gauge's scale is in {self.unit!r}")
        value = self.indication_at(self.clock.now())
        if self.reading_time > 0:
            await self.clock.sleep(self.reading_time)
        return value


def _unit_name(source: str, where: str, value: Any) -> str:
    if value is None:
        return "bar"
    if not isinstance(value, str) or value.strip() not in GAUGE_UNITS:
        raise ConfigError(source, where, f"unknown gauge unit {value!r}",
                          f"use one of {', '.join(GAUGE_UNITS)}, e.g. unit = \"bar\"")
    return value.strip()
