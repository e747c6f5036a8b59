"""A Keysight 34465A-class digital multimeter (DC V, AC V, 2- and 4-wire ohms) on the real SCPI command set.

Why these physics: the runner must cope with what a real DMM does to a measurement. Each
sample integrates for NPLC power-line cycles on the injected clock (so a settling input is
seen settling, and a 100 NPLC point takes its time), carries a gain and offset error, noise
that falls with the square root of the integration time, quantisation, range selection and
overload. `true_error` is the ground truth (without noise or quantisation) that tests compare
the runner's corrections with; the bench never tells anyone.

AC voltage (`CONF:VOLT:AC`): gain and offset per range plus a frequency response
(-(f/bandwidth)^2/2, a one-pole roll-off to second order), noise that does not depend on NPLC,
AC_READING_SECONDS per reading; DC at the input reads as 0 (AC coupling). Resistance
(`CONF:RES` 2-wire, `CONF:FRES` 4-wire, one ohms converter and one NPLC setting shared with DC
in this model): gain and offset per range, noise, and in 2-wire the lead resistance
(`lead_ohms`) adds to the indication. Ohms read what a wired calibrator presents as a
resistance (`signal_at`); open terminals (standby) or a voltage read as overload. The
`[simulation.acv]` and `[simulation.ohms]` tables set these errors (same fields as the DC ones).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from daq.bench import InstrumentEntry
from daq.clock import Clock
from daq.errors import ConfigError
from simulators.scpi_instrument import (
    DATA_OUT_OF_RANGE,
    DATA_STALE,
    ILLEGAL_PARAMETER_VALUE,
    ScpiError,
    ScpiInstrument,
    expect_params,
    keyword_is,
    parse_number,
    parse_switch,
)
from simulators.seeding import stable_rng
from simulators.simulation_parameters import NumberParameter, read_simulation_parameters

RANGES: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)
ACV_RANGES: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 750.0)
OHMS_RANGES: tuple[float, ...] = (100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9)
#: Function -> its ranges; "ohms" (2-wire) and "fres" (4-wire) share the ohms converter.
FUNCTION_RANGES: dict[str, tuple[float, ...]] = {"dcv": RANGES, "acv": ACV_RANGES, "ohms": OHMS_RANGES,
                                                 "fres": OHMS_RANGES}
FUNCTION_NAMES = {"dcv": "VOLT", "acv": "VOLT:AC", "ohms": "RES", "fres": "FRES"}
FUNCTION_UNITS = {"dcv": "V", "acv": "V", "ohms": "ohm", "fres": "ohm"}
DEFAULT_RANGES = {"dcv": 10.0, "acv": 10.0, "ohms": 1e3, "fres": 1e3}
AC_READING_SECONDS = 0.25
OVERRANGE = 1.2
OVERLOAD = 9.9e37
POWER_LINE_HZ = 50.0
NPLC_CHOICES: tuple[float, ...] = (0.02, 0.06, 0.2, 1.0, 10.0, 100.0)
#: Resolution (ppm of range) reached at each NPLC: how CONF's resolution picks the NPLC.
RESOLUTION_PPM_AT_NPLC = {0.02: 3.0, 0.06: 1.5, 0.2: 0.7, 1.0: 0.3, 10.0: 0.1, 100.0: 0.03}
MAX_SAMPLES = 1_000_000
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class RangeErrorModel:
    """How wrong the DMM is on one range (all in ppm; offset, noise and step of the range)."""

    gain_ppm: float = 12.0
    offset_ppm_of_range: float = 2.0
    noise_ppm_of_range: float = 0.3
    resolution_ppm_of_range: float = 0.1


_MODEL_FIELDS = ("gain_ppm", "offset_ppm_of_range", "noise_ppm_of_range", "resolution_ppm_of_range")


RangeOverrides = dict[float, dict[str, float]]


def _read_range_overrides(source: str, ranges: tuple[float, ...] = RANGES,
                          what: str = "DC voltage") -> Callable[[Any, str], RangeOverrides]:
    """Reader for `ranges = [{ range = 0.1, gain_ppm = .., ... }]` in the simulation table."""

    def read(value: Any, where: str) -> RangeOverrides:
        fix = "write ranges = [{ range = 0.1, gain_ppm = 20, offset_ppm_of_range = 5 }]"
        if value is None:
            return {}
        if not isinstance(value, list):
            raise ConfigError(source, where, f"expected an array of tables, got {value!r}", fix)
        overrides: RangeOverrides = {}
        for i, entry in enumerate(value):
            field = f"{where}[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(source, field, "must be a table", fix)
            unknown = sorted(set(entry) - {"range", *_MODEL_FIELDS})
            if unknown:
                raise ConfigError(source, f"{field}.{unknown[0]}", "unknown field",
                                  f"use range, {', '.join(_MODEL_FIELDS)}")
            rng = entry.get("range")
            if isinstance(rng, bool) or not isinstance(rng, int | float) or float(rng) not in ranges:
                names = ", ".join(f"{r:g}" for r in ranges)
                raise ConfigError(source, f"{field}.range", f"expected one of {names}, got {rng!r}",
                                  f"name a {what} range of the 34465A")
            values = {}
            for key in _MODEL_FIELDS:
                if key in entry:
                    number = entry[key]
                    if isinstance(number, bool) or not isinstance(number, int | float):
                        raise ConfigError(source, f"{field}.{key}", f"expected a number, got {number!r}", fix)
                    if key != "gain_ppm" and key != "offset_ppm_of_range" and number < 0:
                        raise ConfigError(source, f"{field}.{key}", f"must be >= 0, got {number!r}", fix)
                    values[key] = float(number)
            overrides[float(rng)] = values
        return overrides

    return read


@dataclass(frozen=True)
class FunctionErrorModel:
    """The errors of one function (AC volts or ohms): a model per range and the function's extra term
    (`bandwidth_hz` for AC, `lead_ohms` for 2-wire ohms)."""

    ranges: dict[float, RangeErrorModel]
    bandwidth_hz: float = 2e6
    lead_ohms: float = 0.0


_FUNCTION_DEFAULTS = {
    "acv": {"gain_ppm": 150.0, "offset_ppm_of_range": 80.0, "noise_ppm_of_range": 10.0,
            "resolution_ppm_of_range": 1.0, "bandwidth_hz": 2e6},
    "ohms": {"gain_ppm": 25.0, "offset_ppm_of_range": 3.0, "noise_ppm_of_range": 0.5,
             "resolution_ppm_of_range": 0.1, "lead_ohms": 0.02},
}


def _read_function_model(source: str, function: str) -> Callable[[Any, str], FunctionErrorModel]:
    """Reader for `[simulation.acv]` / `[simulation.ohms]`: the DC fields, `ranges`, and the extra term."""
    defaults = _FUNCTION_DEFAULTS[function]
    ranges = ACV_RANGES if function == "acv" else OHMS_RANGES
    what = "AC voltage" if function == "acv" else "resistance"

    def read(value: Any, where: str) -> FunctionErrorModel:
        table = {} if value is None else value
        if not isinstance(table, dict):
            raise ConfigError(source, where, f"expected a table, got {value!r}",
                              f"write [instruments.<name>.simulation.{function}] with {', '.join(defaults)}")
        unknown = sorted(set(table) - set(defaults) - {"ranges"})
        if unknown:
            raise ConfigError(source, f"{where}.{unknown[0]}", "unknown simulation parameter",
                              f"use one of {', '.join([*defaults, 'ranges'])}")
        numbers = {}
        for key, default in defaults.items():
            minimum = None if key in ("gain_ppm", "offset_ppm_of_range") else 0.0
            spec = NumberParameter(default, minimum, exclusive_minimum=key == "bandwidth_hz")
            numbers[key] = spec.read(table[key], source=source, field=f"{where}.{key}") if key in table else default
        base = RangeErrorModel(*(numbers[k] for k in _MODEL_FIELDS))
        overrides = _read_range_overrides(source, ranges, what)(table.get("ranges"), f"{where}.ranges")
        return FunctionErrorModel({r: replace(base, **overrides.get(r, {})) for r in ranges},
                                  bandwidth_hz=numbers.get("bandwidth_hz", 2e6),
                                  lead_ohms=numbers.get("lead_ohms", 0.0))

    return read


class Dmm34465A(ScpiInstrument):
    """Keysight 34465A-class DMM model (DC voltage); one `input` terminal."""

    signed_error_codes = True

    input_terminals = ("input",)

    SIMULATION_PARAMETERS = {
        "gain_ppm": NumberParameter(12.0),
        "offset_ppm_of_range": NumberParameter(2.0),
        "noise_ppm_of_range": NumberParameter(0.3, 0.0),
        "resolution_ppm_of_range": NumberParameter(0.1, 0.0),
    }

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        seed: int = 0,
        serial: str = "SIM34465A-0001",
        gain_ppm: float = 12.0,
        offset_ppm_of_range: float = 2.0,
        noise_ppm_of_range: float = 0.3,
        resolution_ppm_of_range: float = 0.1,
        range_overrides: dict[float, dict[str, float]] | None = None,
        acv_model: FunctionErrorModel | None = None,
        ohms_model: FunctionErrorModel | None = None,
        reply_latency: float = 0.0,
    ) -> None:
        super().__init__(name, clock, reply_latency=reply_latency)
        self.seed = seed
        self.serial = serial
        base = RangeErrorModel(gain_ppm, offset_ppm_of_range, noise_ppm_of_range, resolution_ppm_of_range)
        overrides = range_overrides or {}
        self.error_models: dict[float, RangeErrorModel] = {
            r: replace(base, **overrides.get(r, {})) for r in RANGES
        }
        self.acv_model = acv_model or _read_function_model("<defaults>", "acv")(None, "acv")
        self.ohms_model = ohms_model or _read_function_model("<defaults>", "ohms")(None, "ohms")
        self._noise = stable_rng(seed, name, "noise")
        self.input: Callable[[float], float] = lambda t: 0.0
        self.input_signal: Callable[[float], Any] | None = None
        self.samples_taken = 0
        self._reset_state()
        self.add_commands([
            ("*IDN?", self._idn),
            ("*RST", self._rst),
            ("*CLS", self._cls),
            ("*OPC?", self._opc_query),
            ("*OPC", lambda p: None),
            ("*WAI", self._wait),
            ("SYSTem:ERRor[:NEXT]?", self._err),
            ("CONFigure[:VOLTage][:DC]", self._configure),
            ("CONFigure?", self._configure_query),
            ("[SENSe:]VOLTage[:DC]:RANGe", self._set_range),
            ("[SENSe:]VOLTage[:DC]:RANGe?", lambda p: f"{self.range:+.8E}"),
            ("[SENSe:]VOLTage[:DC]:RANGe:AUTO", self._set_auto),
            ("[SENSe:]VOLTage[:DC]:RANGe:AUTO?", lambda p: "1" if self.auto_range else "0"),
            ("[SENSe:]VOLTage[:DC]:NPLCycles", self._set_nplc),
            ("[SENSe:]VOLTage[:DC]:NPLCycles?", lambda p: f"{self.nplc:+.8E}"),
            ("[SENSe:]VOLTage[:DC]:IMPedance:AUTO", self._set_impedance_auto),
            ("[SENSe:]VOLTage[:DC]:IMPedance:AUTO?", lambda p: "1" if self.impedance_auto else "0"),
            ("[SENSe:]VOLTage[:DC]:ZERO:AUTO", self._set_zero_auto),
            ("[SENSe:]VOLTage[:DC]:ZERO:AUTO?", lambda p: "1" if self.zero_auto else "0"),
            ("SAMPle:COUNt", self._set_sample_count),
            ("SAMPle:COUNt?", lambda p: f"{self.sample_count:+d}"),
            ("TRIGger:SOURce", self._set_trigger_source),
            ("TRIGger:SOURce?", lambda p: "IMM"),
            ("READ?", self._read),
            ("INITiate[:IMMediate]", self._initiate),
            ("FETCh?", self._fetch),
            ("MEASure[:VOLTage][:DC]?", self._measure),
            ("CONFigure:VOLTage:AC", lambda p: self._configure(p, "acv")),
            ("CONFigure:RESistance", lambda p: self._configure(p, "ohms")),
            ("CONFigure:FRESistance", lambda p: self._configure(p, "fres")),
            ("[SENSe:]VOLTage:AC:RANGe", lambda p: self._set_range(p, "acv")),
            ("[SENSe:]VOLTage:AC:RANGe?", lambda p: self._range_query("acv")),
            ("[SENSe:]RESistance:RANGe", lambda p: self._set_range(p, "ohms")),
            ("[SENSe:]RESistance:RANGe?", lambda p: self._range_query("ohms")),
            ("[SENSe:]FRESistance:RANGe", lambda p: self._set_range(p, "fres")),
            ("[SENSe:]FRESistance:RANGe?", lambda p: self._range_query("fres")),
            ("[SENSe:]RESistance:NPLCycles", self._set_nplc),
            ("[SENSe:]RESistance:NPLCycles?", lambda p: f"{self.nplc:+.8E}"),
            ("[SENSe:]FRESistance:NPLCycles", self._set_nplc),
            ("[SENSe:]FRESistance:NPLCycles?", lambda p: f"{self.nplc:+.8E}"),
        ])

    @classmethod
    def from_bench_entry(cls, entry: InstrumentEntry, *, source: str, clock: Clock, seed: int) -> Dmm34465A:
        """Build from the bench file, rejecting unknown or mistyped simulation parameters."""
        params = read_simulation_parameters(
            entry.name, entry.simulation, source=source, numbers=cls.SIMULATION_PARAMETERS,
            structured={"ranges": _read_range_overrides(source), "acv": _read_function_model(source, "acv"),
                        "ohms": _read_function_model(source, "ohms")},
        )
        return cls(
            entry.name, clock, seed=seed, serial=entry.serial or "SIM34465A-0001",
            gain_ppm=params["gain_ppm"], offset_ppm_of_range=params["offset_ppm_of_range"],
            noise_ppm_of_range=params["noise_ppm_of_range"],
            resolution_ppm_of_range=params["resolution_ppm_of_range"],
            range_overrides=params["ranges"], acv_model=params["acv"], ohms_model=params["ohms"],
            reply_latency=params["latency"],
        )

    def _reset_state(self) -> None:
        self.function = "dcv"
        self.auto_range = True
        self.range = 10.0
        self.nplc = 10.0
        self.sample_count = 1
        self.impedance_auto = False
        self.zero_auto = True
        self._pending: asyncio.Task[list[float]] | None = None
        self._readings: list[float] | None = None

    # --- ground truth and the world -----------------------------------------------------

    def connect_input(self, terminal: str, source: Callable[[float], float]) -> None:
        if terminal != "input":
            raise KeyError(terminal)
        self.input = source
        self.input_signal = getattr(source, "signal_at", None)

    def signal_at(self, t: float) -> tuple[str, float, float]:
        """(function, value, frequency) presented at the input: a calibrator's full signal, else DC volts."""
        if self.input_signal is None:
            return ("dcv", self.input_at(t), 0.0)
        signal = self.input_signal(t)
        return (signal.function, float(signal.value), float(signal.frequency))

    def input_at(self, t: float) -> float:
        """The true voltage at the input terminals at clock time `t`."""
        return float(self.input(t))

    def true_error(self, volts: float, range_: float) -> float:
        """Indication minus input, without noise or quantisation, on range `range_`."""
        model = self.error_models[range_]
        return volts * model.gain_ppm * 1e-6 + model.offset_ppm_of_range * 1e-6 * range_

    def models(self, function: str) -> dict[float, RangeErrorModel]:
        if function == "dcv":
            return self.error_models
        return self.acv_model.ranges if function == "acv" else self.ohms_model.ranges

    def frequency_error_ppm(self, hertz: float) -> float:
        """The AC converter's frequency response, in ppm of reading: -(f/bandwidth)^2 / 2."""
        return -0.5 * (hertz / self.acv_model.bandwidth_hz) ** 2 * 1e6

    def function_true_error(self, function: str, value: float, range_: float, frequency: float = 0.0) -> float:
        """Indication minus the true input (volts DC or RMS, or ohms), without noise or quantisation;
        2-wire ohms include the leads."""
        if function == "dcv":
            return self.true_error(value, range_)
        model = self.models(function)[range_]
        error = value * model.gain_ppm * 1e-6 + model.offset_ppm_of_range * 1e-6 * range_
        if function == "acv":
            error += value * self.frequency_error_ppm(frequency) * 1e-6
        elif function == "ohms":
            error += self.ohms_model.lead_ohms
        return error

    def function_range_for(self, function: str, value: float) -> float:
        ranges = FUNCTION_RANGES[function]
        for r in ranges:
            if abs(value) <= OVERRANGE * r:
                return r
        return ranges[-1]

    def function_noise_sigma(self, function: str, range_: float, nplc: float) -> float:
        if function == "acv":
            return self.acv_model.ranges[range_].noise_ppm_of_range * 1e-6 * range_
        model = self.models(function)[range_]
        return model.noise_ppm_of_range * 1e-6 * range_ * math.sqrt(10.0 / nplc)

    def indicate_function(self, function: str, value: float | None, range_: float, nplc: float,
                          frequency: float = 0.0) -> float:
        """One reading in `function` (None: nothing measurable, e.g. open terminals in ohms)."""
        if function == "dcv":
            return self.indicate(0.0 if value is None else value, range_, nplc)
        if value is None or abs(value) > OVERRANGE * range_:
            return OVERLOAD
        reading = value + self.function_true_error(function, value, range_, frequency)
        sigma = self.function_noise_sigma(function, range_, nplc)
        if sigma > 0:
            reading += float(self._noise.normal(0.0, sigma))
        if function == "acv":
            reading = abs(reading)  # an RMS converter never reads negative
        step = self.models(function)[range_].resolution_ppm_of_range * 1e-6 * range_
        if step > 0:
            reading = round(reading / step) * step
        return reading

    def _measurand_at(self, t: float) -> tuple[float | None, float]:
        """The input as the present function sees it: (value or None, frequency)."""
        if self.function == "dcv":
            return self.input_at(t), 0.0
        presented, value, frequency = self.signal_at(t)
        if self.function == "acv":
            return (value, frequency) if presented == "acv" else (0.0, 0.0)
        return (value, 0.0) if presented == "ohms" else (None, 0.0)

    def noise_sigma(self, range_: float, nplc: float) -> float:
        """Standard deviation of one reading's noise on `range_` at `nplc`."""
        return self.error_models[range_].noise_ppm_of_range * 1e-6 * range_ * math.sqrt(10.0 / nplc)

    def quantum(self, range_: float) -> float:
        """The display step on `range_`."""
        return self.error_models[range_].resolution_ppm_of_range * 1e-6 * range_

    def range_for(self, volts: float) -> float:
        """What autorange picks: the smallest range that holds |v| <= 1.2 * range."""
        for r in RANGES:
            if abs(volts) <= OVERRANGE * r:
                return r
        return RANGES[-1]

    def indicate(self, volts: float, range_: float, nplc: float) -> float:
        """One reading of `volts` on `range_`: errors, noise, quantisation, or the overload value."""
        if abs(volts) > OVERRANGE * range_:
            return OVERLOAD
        value = volts + self.true_error(volts, range_)
        sigma = self.noise_sigma(range_, nplc)
        if sigma > 0:
            value += float(self._noise.normal(0.0, sigma))
        step = self.quantum(range_)
        if step > 0:
            value = round(value / step) * step
        return value

    async def acquire(self, count: int) -> list[float]:
        """Take `count` samples, each integrating NPLC/50 s on the clock and read at its end."""
        values = []
        nplc = self.nplc
        function = self.function
        for _ in range(count):
            await self.clock.sleep(AC_READING_SECONDS if function == "acv" else nplc / POWER_LINE_HZ)
            if function == "dcv":
                volts = self.input_at(self.clock.now())
                if self.auto_range:
                    self.range = self.range_for(volts)
                values.append(self.indicate(volts, self.range, nplc))
            else:
                value, frequency = self._measurand_at(self.clock.now())
                if self.auto_range:
                    self.range = self.function_range_for(function, math.inf if value is None else value)
                values.append(self.indicate_function(function, value, self.range, nplc, frequency))
            self.samples_taken += 1
        return values

    # --- parameter parsing --------------------------------------------------------------

    @staticmethod
    def _fixed_range(text: str, function: str = "dcv") -> float:
        ranges = FUNCTION_RANGES[function]
        if keyword_is(text, "MINimum"):
            return ranges[0]
        if keyword_is(text, "MAXimum"):
            return ranges[-1]
        value = abs(parse_number(text))
        for r in ranges:
            if value <= r * (1 + _TOLERANCE):
                return r
        raise ScpiError(DATA_OUT_OF_RANGE, f"no {FUNCTION_NAMES[function]} range holds {text.strip()}")

    def _nplc_for_resolution(self, text: str, range_: float) -> float:
        if keyword_is(text, "MINimum"):
            return NPLC_CHOICES[-1]
        if keyword_is(text, "MAXimum"):
            return NPLC_CHOICES[0]
        if keyword_is(text, "DEFault"):
            return 10.0
        resolution = parse_number(text)
        if resolution <= 0:
            raise ScpiError(DATA_OUT_OF_RANGE, "resolution must be positive")
        wanted_ppm = resolution / range_ * 1e6
        for nplc in NPLC_CHOICES:
            if RESOLUTION_PPM_AT_NPLC[nplc] <= wanted_ppm * (1 + _TOLERANCE):
                return nplc
        return NPLC_CHOICES[-1]

    # --- command handlers ---------------------------------------------------------------

    def _idn(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f"Keysight Technologies,34465A,{self.serial},A.03.01-SIM"

    def _cancel_pending(self) -> None:
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
        self._pending = None

    def stop(self) -> None:
        self._cancel_pending()

    def _rst(self, params: list[str]) -> None:
        expect_params(params, 0)
        self._cancel_pending()
        self._reset_state()

    async def _wait(self, params: list[str]) -> None:
        expect_params(params, 0)
        if self._pending is not None:
            await asyncio.shield(self._pending)

    async def _opc_query(self, params: list[str]) -> str:
        await self._wait(params)
        return "1"

    def _configure(self, params: list[str], function: str = "dcv") -> None:
        expect_params(params, 2)
        range_text = params[0] if params else "AUTO"
        if keyword_is(range_text, "AUTO") or keyword_is(range_text, "DEFault"):
            auto, range_ = True, DEFAULT_RANGES[function] if function != self.function else self.range
        else:
            auto, range_ = False, self._fixed_range(range_text, function)
        if function == "acv":
            nplc = self.nplc  # AC has no integration time; the resolution argument is accepted and ignored
            if len(params) == 2 and not keyword_is(params[1], "DEFault") and not keyword_is(params[1], "MINimum") \
                    and not keyword_is(params[1], "MAXimum") and parse_number(params[1]) <= 0:
                raise ScpiError(DATA_OUT_OF_RANGE, "resolution must be positive")
        else:
            nplc = self._nplc_for_resolution(params[1], range_) if len(params) == 2 else 10.0
        self._cancel_pending()
        self.function = function
        self.auto_range, self.range, self.nplc = auto, range_, nplc
        self.sample_count = 1
        self._readings = None

    def _configure_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        resolution = RESOLUTION_PPM_AT_NPLC.get(self.nplc, 0.1) * 1e-6 * self.range
        return f'"{FUNCTION_NAMES[self.function]} {self.range:+.8E},{resolution:+.8E}"'

    def _range_query(self, function: str) -> str:
        return f"{self.range if self.function == function else DEFAULT_RANGES[function]:+.8E}"

    def _set_range(self, params: list[str], function: str = "dcv") -> None:
        (text,) = expect_params(params, 1, 1)
        if function != self.function:
            raise ScpiError(ILLEGAL_PARAMETER_VALUE,
                            f"{FUNCTION_NAMES[function]} range set while measuring {FUNCTION_NAMES[self.function]}: "
                            f"CONF:{FUNCTION_NAMES[function]} first (one function at a time in this model)")
        self.range = DEFAULT_RANGES[function] if keyword_is(text, "DEFault") else self._fixed_range(text, function)
        self.auto_range = False

    def _set_auto(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        if keyword_is(text, "ONCE"):
            self.range = self.range_for(self.input_at(self.clock.now()))
            self.auto_range = False
            return
        self.auto_range = parse_switch(text)

    def _set_nplc(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        if keyword_is(text, "MINimum"):
            self.nplc = NPLC_CHOICES[0]
        elif keyword_is(text, "MAXimum"):
            self.nplc = NPLC_CHOICES[-1]
        elif keyword_is(text, "DEFault"):
            self.nplc = 10.0
        else:
            value = parse_number(text)
            if value <= 0 or value > NPLC_CHOICES[-1] * (1 + _TOLERANCE):
                raise ScpiError(DATA_OUT_OF_RANGE, f"NPLC {text.strip()} outside 0.02..100")
            # The instrument rounds up to the next integration time it has.
            self.nplc = next(n for n in NPLC_CHOICES if value <= n * (1 + _TOLERANCE))

    def _set_impedance_auto(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        self.impedance_auto = parse_switch(text)

    def _set_zero_auto(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        self.zero_auto = True if keyword_is(text, "ONCE") else parse_switch(text)

    def _set_sample_count(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        if keyword_is(text, "MINimum") or keyword_is(text, "DEFault"):
            self.sample_count = 1
            return
        if keyword_is(text, "MAXimum"):
            self.sample_count = MAX_SAMPLES
            return
        value = parse_number(text)
        if value != int(value) or not 1 <= value <= MAX_SAMPLES:
            raise ScpiError(DATA_OUT_OF_RANGE, f"sample count {text.strip()} outside 1..{MAX_SAMPLES}")
        self.sample_count = int(value)

    def _set_trigger_source(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        if not keyword_is(text, "IMMediate"):
            raise ScpiError(ILLEGAL_PARAMETER_VALUE, "only TRIG:SOUR IMM is simulated")

    @staticmethod
    def _format(values: list[float]) -> str:
        return ",".join(f"{v:+.9E}" for v in values)

    async def _read(self, params: list[str]) -> str:
        expect_params(params, 0)
        self._cancel_pending()
        self._readings = await self.acquire(self.sample_count)
        return self._format(self._readings)

    def _initiate(self, params: list[str]) -> None:
        expect_params(params, 0)
        self._cancel_pending()
        self._readings = None
        self._pending = asyncio.get_running_loop().create_task(self.acquire(self.sample_count))

    async def _fetch(self, params: list[str]) -> str:
        expect_params(params, 0)
        if self._pending is not None:
            self._readings = await asyncio.shield(self._pending)
            self._pending = None
        if self._readings is None:
            raise ScpiError(DATA_STALE, "no readings: send INIT or READ? first")
        return self._format(self._readings)

    async def _measure(self, params: list[str]) -> str:
        self._configure(params)
        return await self._read([])
