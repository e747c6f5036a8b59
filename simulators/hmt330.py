"""A Vaisala HMT330-class humidity and temperature transmitter in a climatic chamber, on RS-232.

Why these physics: a humidity calibration waits for the chamber, and the chamber is slow.
The model holds the chamber too: relative humidity and air temperature approach their
setpoints first-order (`time_constant_rh`, `time_constant_t`), with a small fluctuation
(`stability_rh`, `stability_t`, RMS, deterministic in time so every probe in the chamber sees
the same air). The probe reads that air with its true error (`offset_rh + gain_rh * RH`,
`offset_t`), its noise (`noise_rh`, `noise_t`), at display resolution 0.1.
`set_chamber(rh=..., temperature=...)` changes the chamber's setpoints (tests, demos; the
chamber's own controller is not simulated on a wire).

Vaisala's line protocol (not SCPI), CR LF terminated:
- `SMODE` -> `Output mode   : STOP`; `SMODE POLL` (or RUN/STOP) sets it and echoes it;
- `SEND` (or `SEND <address>`) -> `RH= 45.3 %RH  T= 23.1 'C`;
- `?` -> several lines of device information (model, serial, modes);
- `VERS` -> `HMT330 / 5.16`; `SNUM` -> `Serial number : K1234567`;
- anything else -> `Unknown command` (recalled; the real wording may differ).
Output terminals: `humidity` (%RH) and `temperature` (degC) of the chamber air.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from daq.bench import InstrumentEntry
from daq.clock import Clock
from simulators.scpi_instrument import ScpiInstrument
from simulators.seeding import stable_rng
from simulators.simulation_parameters import NumberParameter, read_simulation_parameters

MODES = ("POLL", "RUN", "STOP")
FLUCTUATION_TERMS = 5
FLUCTUATION_PERIODS = (5.0, 90.0)


class FirstOrder:
    """x(t) approaching `target` from `x0` (at `t0`) with time constant `tau`."""

    def __init__(self, target: float, x0: float, t0: float, tau: float) -> None:
        self.target, self.x0, self.t0, self.tau = target, x0, t0, tau

    def at(self, t: float) -> float:
        return self.target + (self.x0 - self.target) * math.exp(-max(0.0, t - self.t0) / self.tau)


class Hmt330Probe(ScpiInstrument):
    """HMT330-class probe and the chamber it sits in; output terminals `humidity`, `temperature`."""

    output_terminals = ("humidity", "temperature")

    SIMULATION_PARAMETERS = {
        "initial_rh": NumberParameter(45.0, 0.0, hint="give the chamber's starting RH in %RH, e.g. 45"),
        "initial_temperature": NumberParameter(23.0, -273.15, hint="give the chamber's starting temperature, degC"),
        "time_constant_rh": NumberParameter(600.0, 0.0, exclusive_minimum=True,
                                            hint="give the chamber's RH time constant in seconds, e.g. 600"),
        "time_constant_t": NumberParameter(900.0, 0.0, exclusive_minimum=True,
                                           hint="give the chamber's temperature time constant in seconds, e.g. 900"),
        "stability_rh": NumberParameter(0.1, 0.0, hint="give the chamber's RH fluctuation (RMS %RH), e.g. 0.1"),
        "stability_t": NumberParameter(0.02, 0.0, hint="give the chamber's temperature fluctuation (RMS degC)"),
        "noise_rh": NumberParameter(0.05, 0.0, hint="give the probe's RH noise (RMS %RH), e.g. 0.05"),
        "noise_t": NumberParameter(0.01, 0.0, hint="give the probe's temperature noise (RMS degC), e.g. 0.01"),
        "offset_rh": NumberParameter(0.0, hint="give the probe's RH error at 0 %RH, e.g. 0.8"),
        "gain_rh": NumberParameter(0.0, hint="give the probe's RH error per %RH (fraction), e.g. 0.01"),
        "offset_t": NumberParameter(0.0, hint="give the probe's temperature error in degC, e.g. 0.1"),
    }

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        seed: int = 0,
        serial: str = "K0000001",
        initial_rh: float = 45.0,
        initial_temperature: float = 23.0,
        time_constant_rh: float = 600.0,
        time_constant_t: float = 900.0,
        stability_rh: float = 0.1,
        stability_t: float = 0.02,
        noise_rh: float = 0.05,
        noise_t: float = 0.01,
        offset_rh: float = 0.0,
        gain_rh: float = 0.0,
        offset_t: float = 0.0,
        reply_latency: float = 0.0,
    ) -> None:
        super().__init__(name, clock, reply_latency=reply_latency)
        self.serial = serial
        self.time_constant_rh = time_constant_rh
        self.time_constant_t = time_constant_t
        self.stability_rh = stability_rh
        self.stability_t = stability_t
        self.noise_rh = noise_rh
        self.noise_t = noise_t
        self.offset_rh = offset_rh
        self.gain_rh = gain_rh
        self.offset_t = offset_t
        self.mode = "STOP"
        self.address = 0
        self._rh = FirstOrder(initial_rh, initial_rh, clock.now(), time_constant_rh)
        self._t = FirstOrder(initial_temperature, initial_temperature, clock.now(), time_constant_t)
        self._noise = stable_rng(seed, name, "probe-noise")
        phases = stable_rng(seed, name, "chamber-fluctuation")
        lo, hi = FLUCTUATION_PERIODS
        periods = [lo * (hi / lo) ** (k / (FLUCTUATION_TERMS - 1)) for k in range(FLUCTUATION_TERMS)]
        self._waves = [(2 * math.pi / p, float(phases.uniform(0, 2 * math.pi)), float(phases.uniform(0, 2 * math.pi)))
                       for p in periods]
        self.sends = 0

    @classmethod
    def from_bench_entry(cls, entry: InstrumentEntry, *, source: str, clock: Clock, seed: int) -> Hmt330Probe:
        params = read_simulation_parameters(entry.name, entry.simulation, source=source,
                                            numbers=cls.SIMULATION_PARAMETERS)
        latency = params.pop("latency")
        return cls(entry.name, clock, seed=seed, serial=entry.serial or "K0000001", reply_latency=latency, **params)

    # --- the chamber and the probe --------------------------------------------------------

    def _wave(self, t: float, amplitude: float, which: int) -> float:
        if amplitude == 0:
            return 0.0
        scale = amplitude * math.sqrt(2.0 / len(self._waves))
        return scale * math.fsum(math.sin(w * t + (a if which == 0 else b)) for w, a, b in self._waves)

    def set_chamber(self, rh: float | None = None, temperature: float | None = None) -> None:
        """New chamber setpoints; the air starts from where it is now."""
        now = self.clock.now()
        if rh is not None:
            self._rh = FirstOrder(rh, self._rh.at(now), now, self.time_constant_rh)
        if temperature is not None:
            self._t = FirstOrder(temperature, self._t.at(now), now, self.time_constant_t)

    def humidity_at(self, t: float) -> float:
        """The chamber's true relative humidity at `t` (%RH), within 0..100."""
        return min(100.0, max(0.0, self._rh.at(t) + self._wave(t, self.stability_rh, 0)))

    def temperature_at(self, t: float) -> float:
        """The chamber's true air temperature at `t` (degC)."""
        return self._t.at(t) + self._wave(t, self.stability_t, 1)

    def true_error_rh(self, rh: float) -> float:
        return self.offset_rh + self.gain_rh * rh

    def true_error_t(self, temperature: float) -> float:
        return self.offset_t

    def output_source(self, terminal: str) -> Callable[[float], float]:
        if terminal == "humidity":
            return self.humidity_at
        if terminal == "temperature":
            return self.temperature_at
        raise KeyError(terminal)

    def reading_at(self, t: float) -> tuple[float, float]:
        rh = self.humidity_at(t)
        temperature = self.temperature_at(t)
        rh += self.true_error_rh(rh)
        temperature += self.true_error_t(temperature)
        if self.noise_rh > 0:
            rh += float(self._noise.normal(0.0, self.noise_rh))
        if self.noise_t > 0:
            temperature += float(self._noise.normal(0.0, self.noise_t))
        return round(min(100.0, max(0.0, rh)), 1), round(temperature, 1)

    # --- the line protocol ----------------------------------------------------------------

    def info_lines(self) -> list[str]:
        return [
            "HMT330 / 5.16",
            f"Serial number : {self.serial}",
            "Batch number  : SIM",
            f"Output mode   : {self.mode}",
            f"Address       : {self.address}",
            "Baud P D S    : 4800 E 7 1",
        ]

    async def handle(self, command: str) -> str | None:
        words = command.strip().split()
        if not words:
            return None
        keyword, args = words[0].upper(), words[1:]
        if keyword == "?" and not args:
            return "\r\n".join(self.info_lines())
        if keyword == "VERS" and not args:
            return "HMT330 / 5.16"
        if keyword == "SNUM" and not args:
            return f"Serial number : {self.serial}"
        if keyword == "SMODE":
            if args:
                mode = args[0].upper()
                if mode not in MODES or len(args) > 1:
                    return "Unknown command"
                self.mode = mode
            return f"Output mode   : {self.mode}"
        if keyword == "SEND":
            if args and args != [str(self.address)]:
                return None  # another device's address: this one stays silent
            rh, temperature = self.reading_at(self.clock.now())
            self.sends += 1
            return f"RH={rh:5.1f} %RH  T={temperature:5.1f} 'C"
        return "Unknown command"
