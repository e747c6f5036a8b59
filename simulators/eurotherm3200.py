"""Eurotherm 3200-class PID temperature controller on a heated block, on the injected clock.

The physics is deliberately simple and deterministic: the working setpoint follows the target
setpoint (a step, or a ramp at `ramp_rate` degC/min), the block temperature (PV) approaches
the working setpoint first-order with `time_constant`, and the output % is what a tuned PID
would show: the holding power for the temperature above ambient plus a proportional term on
the error, clamped to 0..100 %. State is integrated lazily whenever somebody looks, so the
model needs no background task and a virtual clock moves it in jumps.

Register map (holding registers, Modbus protocol addresses as on the 3200):
    1  PV, process value               read-only
    2  target setpoint                 read-write (outside sp_low..sp_high: exception 3)
    3  output %                        read-only
    4  working output % (same value)   read-only (recalled from the 3200 map; not otherwise modelled)
    5  working setpoint                read-only
Scaled int16 with `decimals` places (one by default: 25.3 degC is 253); the same parameters as
IEEE 754 float32 at 0x8000 + 2*addr, high word first. Writing half a float is refused.
"""

from __future__ import annotations

import math
from typing import Any

from daq.clock import Clock
from simulators.faults import FaultSchedule
from simulators.simulation_parameters import NumberParameter, read_simulation_parameters

PV, TARGET_SP, OUTPUT, WORKING_OUTPUT, WORKING_SP = 1, 2, 3, 4, 5
PARAMETERS = (PV, TARGET_SP, OUTPUT, WORKING_OUTPUT, WORKING_SP)
WRITABLE = (TARGET_SP,)
FLOAT_BASE = 0x8000

SIMULATION_PARAMETERS = {
    "ambient": NumberParameter(20.0, hint="ambient temperature in degC, e.g. ambient = 20.0"),
    "time_constant": NumberParameter(60.0, 0.0, exclusive_minimum=True,
                                     hint="first-order time constant of the block in s, e.g. time_constant = 60"),
    "ramp_rate": NumberParameter(0.0, 0.0, hint="setpoint ramp in degC/min, 0 for a step, e.g. ramp_rate = 5"),
    "max_rise": NumberParameter(400.0, 0.0, exclusive_minimum=True,
                                hint="degC above ambient at 100 % output, e.g. max_rise = 400"),
    "proportional_band": NumberParameter(10.0, 0.0, exclusive_minimum=True,
                                         hint="proportional band in degC, e.g. proportional_band = 10"),
    "sp_low": NumberParameter(-50.0, hint="lowest settable setpoint in degC, e.g. sp_low = -50"),
    "sp_high": NumberParameter(500.0, hint="highest settable setpoint in degC, e.g. sp_high = 500"),
    "decimals": NumberParameter(1.0, 0.0, hint="decimal places of the scaled registers, 0..2, e.g. decimals = 1"),
}


class SetpointRejected(ValueError):
    """A write the real controller would refuse (Modbus exception 3, illegal data value)."""


class Eurotherm3200:
    """The controller and the block it heats; a thermometer wired to `temperature` sits in the block."""

    output_terminals: tuple[str, ...] = ("temperature",)
    input_terminals: tuple[str, ...] = ()

    def __init__(
        self,
        clock: Clock,
        *,
        name: str = "controller",
        ambient: float = 20.0,
        time_constant: float = 60.0,
        ramp_rate: float = 0.0,
        max_rise: float = 400.0,
        proportional_band: float = 10.0,
        sp_low: float = -50.0,
        sp_high: float = 500.0,
        decimals: int = 1,
        latency: float = 0.0,
        power_on_setpoint: float | None = None,
    ) -> None:
        self.clock = clock
        self.name = name
        self.ambient = ambient
        self.time_constant = time_constant
        self.ramp_rate = ramp_rate
        self.max_rise = max_rise
        self.proportional_band = proportional_band
        self.sp_low = sp_low
        self.sp_high = sp_high
        self.decimals = int(decimals)
        self.reply_latency = latency
        self._t = clock.now()
        self._pv = ambient
        self._target = ambient
        self._working = ambient
        #: The target setpoint after a power cycle (None: ambient).
        self.power_on_setpoint = power_on_setpoint
        #: (clock time, parameter address, value) of every accepted write, for tests.
        self.writes: list[tuple[float, int, float]] = []
        #: Faults to inject (see `simulators.faults`); applied by `simulators.modbus_server`.
        self.faults = FaultSchedule()
        #: How many times the controller was power-cycled (a `power_cycle` fault).
        self.power_cycles = 0

    @classmethod
    def from_bench_entry(cls, entry: Any, *, source: str, clock: Clock, seed: int = 0) -> Eurotherm3200:
        values = read_simulation_parameters(entry.name, entry.simulation, source=source,
                                            numbers=SIMULATION_PARAMETERS)
        return cls(clock, name=entry.name, ambient=values["ambient"], time_constant=values["time_constant"],
                   ramp_rate=values["ramp_rate"], max_rise=values["max_rise"],
                   proportional_band=values["proportional_band"], sp_low=values["sp_low"],
                   sp_high=values["sp_high"], decimals=int(values["decimals"]), latency=values["latency"])

    # -- physics -------------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        """Integrate from the last look to `now`; steps of at most tau/20 keep a ramp honest."""
        remaining = now - self._t
        if remaining <= 0:
            return
        step_max = self.time_constant / 20.0
        while remaining > 1e-12:
            dt = min(remaining, step_max)
            if self.ramp_rate > 0 and self._working != self._target:
                delta = self.ramp_rate / 60.0 * dt
                gap = self._target - self._working
                self._working = self._target if abs(gap) <= delta else self._working + math.copysign(delta, gap)
            else:
                self._working = self._target
            self._pv += (self._working - self._pv) * (1.0 - math.exp(-dt / self.time_constant))
            remaining -= dt
        self._t = now

    def _state(self) -> None:
        self._advance(self.clock.now())

    @property
    def pv(self) -> float:
        self._state()
        return self._pv

    @property
    def target_setpoint(self) -> float:
        return self._target

    @property
    def working_setpoint(self) -> float:
        self._state()
        return self._working

    @property
    def output_percent(self) -> float:
        self._state()
        hold = 100.0 * (self._pv - self.ambient) / self.max_rise
        proportional = 100.0 * (self._working - self._pv) / self.proportional_band
        return min(100.0, max(0.0, hold + proportional))

    def set_target(self, value: float) -> None:
        if not math.isfinite(value) or not self.sp_low <= value <= self.sp_high:
            raise SetpointRejected(f"setpoint {value:g} outside {self.sp_low:g}..{self.sp_high:g}")
        self._state()
        self._target = float(value)
        if self.ramp_rate <= 0:
            self._working = self._target
        self.writes.append((self.clock.now(), TARGET_SP, float(value)))

    def power_on(self) -> None:
        """Power-cycle: the target (and working) setpoint back to its power-on default, the block
        at ambient. (A real block would cool over minutes; a fault test wants the cold start.)"""
        self._t = self.clock.now()
        self._target = self.ambient if self.power_on_setpoint is None else self.power_on_setpoint
        self._working = self._target
        self._pv = self.ambient
        self.power_cycles += 1

    def output_source(self, terminal: str) -> Any:
        """The block temperature as a function of clock time (for a thermometer wired into the block)."""
        if terminal != "temperature":
            raise KeyError(terminal)

        def temperature(t: float) -> float:
            self._advance(max(t, self._t))
            return self._pv

        return temperature

    def connect_input(self, terminal: str, source: Any) -> None:
        raise KeyError(terminal)

    def stop(self) -> None:
        """Nothing runs in the background."""

    # -- parameters by Modbus address ---------------------------------------------------------

    def value(self, parameter: int) -> float:
        if parameter == PV:
            return self.pv
        if parameter == TARGET_SP:
            return self.target_setpoint
        if parameter in (OUTPUT, WORKING_OUTPUT):
            return self.output_percent
        if parameter == WORKING_SP:
            return self.working_setpoint
        raise KeyError(parameter)

    def set_value(self, parameter: int, value: float) -> None:
        if parameter != TARGET_SP:
            raise KeyError(parameter)
        self.set_target(value)

    def scaled(self, parameter: int) -> int:
        """The int16 register (two's complement) for a parameter at `decimals` places."""
        raw = round(self.value(parameter) * 10**self.decimals)
        return max(-32768, min(32767, raw)) & 0xFFFF

    def unscale(self, raw: int) -> float:
        if raw >= 0x8000:
            raw -= 0x10000
        return raw / 10**self.decimals
