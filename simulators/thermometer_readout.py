"""Reference thermometer readouts: a Fluke/Hart 1529-class 4-channel readout and a Hart 1502A.

Why these physics: in a comparison the reference and the units under test are all
thermometers read the same way; what differs is each probe's own error. Every channel
therefore reads the temperature at whatever its input is wired to (a bath well), plus its
probe's true error `offset + gain * T` (offset in degC at 0 degC, gain in degC per degC),
plus noise, quantised to the display resolution. A channel the bench file certifies
(`[instruments.<name>.certificate.temperature]`, a reference probe) has no configured error:
its true error at each certificate point is what the certificate says (-correction) plus a
seeded draw ~ Normal(0, U/k), interpolated between the points, as a real reference differs
from its certificate by an amount its uncertainty covers at the stated rate. Tests read `true_error` (what a
calibration of that channel must find); the bench never tells anyone.

A channel with nothing wired reads `ambient` (a probe lying on the bench).

1529 dialect (SCPI): `*IDN?`, `*CLS`, `*RST`, `SYST:ERR?`, `FETC? <ch>` (the latest reading of
the channel, now), `MEAS? <ch>` (a fresh reading after `measurement_time`), `UNIT:TEMP C|F|K`,
`UNIT:TEMP?`. Replies are bare numbers: `25.0312`.
1502A dialect (single channel, Hart's own commands): `t` -> `t:  25.0012 C`, `u` -> `u: C`,
`u=c|f|k`, `sa` / `sa=0` (sample period), `du=h` (duplex, accepted), `*IDN?`.
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
)
from simulators.seeding import draw_certified_errors, stable_rng
from simulators.simulation_parameters import NumberParameter, read_simulation_parameters

_UNITS = ("C", "F", "K")


@dataclass(frozen=True)
class ProbeError:
    """One channel's probe: true error offset + gain * T (degC), noise RMS (degC).

    A certified probe instead carries `table`, its true error at each certificate point
    ((at degC, error degC), increasing `at`), interpolated linearly between the points and
    extrapolated along the end segments."""

    offset: float = 0.0
    gain: float = 0.0
    noise: float = 0.0002
    table: tuple[tuple[float, float], ...] = ()

    def error_at(self, temperature: float) -> float:
        if not self.table:
            return self.offset + self.gain * temperature
        pts = self.table
        if len(pts) == 1:
            return pts[0][1]
        i = next((i for i in range(1, len(pts) - 1) if temperature <= pts[i][0]), len(pts) - 1)
        a, b = pts[i - 1], pts[i]
        return a[1] + (b[1] - a[1]) * (temperature - a[0]) / (b[0] - a[0])


@dataclass(frozen=True)
class TemperatureCertificate:
    """`[instruments.<name>.certificate.temperature]`: the certified channel's corrections (true -
    indicated) and expanded uncertainties U at coverage factor k, as the bench file states them."""

    channel: int
    k: float
    points: tuple[tuple[float, float, float], ...]  # (at degC, correction degC, U degC)

    @classmethod
    def from_bench(cls, certificate: dict[str, Any], *, source: str, instrument: str,
                   channels: int) -> TemperatureCertificate | None:
        table = certificate.get("temperature")
        if table is None:
            return None
        where = f"instruments.{instrument}.certificate.temperature"
        fix = "write channel = 1, k = 2.0 and points = [{ at = 0.0, correction = -0.0013, U = 0.003 }, ...]"
        if not isinstance(table, dict):
            raise ConfigError(source, where, "must be a table", fix)
        channel = table.get("channel", 1)
        if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= channels:
            raise ConfigError(source, f"{where}.channel", f"expected a channel 1..{channels}, got {channel!r}", fix)
        parsed = CorrectionTable.parse(table, source=source, where=where,
                                       example="at = 0.0, correction = -0.0013, U = 0.003",
                                       order="from the coldest to the hottest")
        return cls(channel, parsed.k, parsed.points)

    def true_errors(self, seed: int, instrument: str) -> tuple[tuple[float, float], ...]:
        """The probe's true error at each certificate point: what the certificate says it is
        (-correction) plus the deviation the certificate allows, drawn ~ Normal(0, U/k).

        Seeded by (world seed, instrument, channel, point), so one world always has the same
        probe, and a fresh seed is a fresh probe whose certificate is honest at its stated rate."""
        return draw_certified_errors(self.points, self.k, seed, instrument, "certificate", self.channel)


_PROBE_FIELDS = ("offset", "gain", "noise")


def _read_channel_overrides(source: str, count: int) -> Callable[[Any, str], dict[int, dict[str, float]]]:
    """Reader for `channels = [{ channel = 1, offset = 0.012, gain = 1e-5, noise = 3e-4 }, ...]`."""

    def read(value: Any, where: str) -> dict[int, dict[str, float]]:
        fix = "write channels = [{ channel = 1, offset = 0.012, gain = 1e-5, noise = 0.0003 }]"
        if value is None:
            return {}
        if not isinstance(value, list):
            raise ConfigError(source, where, f"expected an array of tables, got {value!r}", fix)
        overrides: dict[int, dict[str, float]] = {}
        for i, entry in enumerate(value):
            field = f"{where}[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(source, field, "must be a table", fix)
            unknown = sorted(set(entry) - {"channel", *_PROBE_FIELDS})
            if unknown:
                raise ConfigError(source, f"{field}.{unknown[0]}", "unknown field",
                                  f"use channel, {', '.join(_PROBE_FIELDS)}")
            channel = entry.get("channel")
            if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= count:
                raise ConfigError(source, f"{field}.channel", f"expected a channel 1..{count}, got {channel!r}",
                                  f"this readout has channels 1..{count}")
            if channel in overrides:
                raise ConfigError(source, f"{field}.channel", f"channel {channel} given twice",
                                  "give each channel once")
            values: dict[str, float] = {}
            for key in _PROBE_FIELDS:
                if key in entry:
                    number = entry[key]
                    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
                        raise ConfigError(source, f"{field}.{key}", f"expected a number, got {number!r}", fix)
                    if key == "noise" and number < 0:
                        raise ConfigError(source, f"{field}.{key}", f"must be >= 0, got {number!r}", fix)
                    values[key] = float(number)
            overrides[channel] = values
        return overrides

    return read


class ThermometerReadout(ScpiInstrument):
    """Fluke/Hart 1529-class readout model: input terminals `ch1` .. `ch4`."""

    CHANNELS = 4
    MODEL = "1529"

    SIMULATION_PARAMETERS = {
        "offset": NumberParameter(0.0, hint="give every probe's error at 0 degC, e.g. offset = 0.01"),
        "gain": NumberParameter(0.0, hint="give every probe's error per degC, e.g. gain = 1e-5"),
        "noise": NumberParameter(0.0002, 0.0, hint="give the reading noise (RMS degC), e.g. noise = 0.0002"),
        "resolution": NumberParameter(0.0001, 0.0, hint="give the display resolution in degC, e.g. 0.0001"),
        "measurement_time": NumberParameter(1.0, 0.0, hint="give the seconds one MEAS? takes, e.g. 1.0"),
        "ambient": NumberParameter(23.0, -273.15, hint="give what an unwired channel reads, in degC, e.g. 23"),
    }

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        seed: int = 0,
        serial: str = "SIM1529-0001",
        probes: dict[int, ProbeError] | None = None,
        resolution: float = 0.0001,
        measurement_time: float = 1.0,
        ambient: float = 23.0,
        reply_latency: float = 0.0,
    ) -> None:
        super().__init__(name, clock, reply_latency=reply_latency)
        self.seed = seed
        self.serial = serial
        self.resolution = resolution
        self.measurement_time = measurement_time
        self.ambient = ambient
        self.probes = {ch: (probes or {}).get(ch, ProbeError()) for ch in range(1, self.CHANNELS + 1)}
        self.input_terminals = tuple(f"ch{ch}" for ch in self.probes)
        self.inputs: dict[int, Callable[[float], float]] = {}
        self.unit = "C"
        self.readings_taken = 0
        self._noise = {ch: stable_rng(seed, name, "noise", ch) for ch in self.probes}
        self.add_commands(self._command_table())

    def _command_table(self) -> list[tuple[str, Any]]:
        return [
            ("*IDN?", self._idn),
            ("*RST", self._rst),
            ("*CLS", self._cls),
            ("*OPC?", lambda p: "1"),
            ("SYSTem:ERRor[:NEXT]?", self._err),
            ("FETCh[:TEMPerature]?", self._fetch),
            ("MEASure[:TEMPerature]?", self._measure),
            ("UNIT:TEMPerature", self._set_unit),
            ("UNIT:TEMPerature?", self._unit_query),
        ]

    @classmethod
    def from_bench_entry(cls, entry: InstrumentEntry, *, source: str, clock: Clock, seed: int) -> ThermometerReadout:
        """Build from the bench file; every wrong or unknown parameter is a ConfigError naming it."""
        params = read_simulation_parameters(
            entry.name, entry.simulation, source=source, numbers=cls.SIMULATION_PARAMETERS,
            structured={"channels": _read_channel_overrides(source, cls.CHANNELS)},
        )
        base = {key: params[key] for key in _PROBE_FIELDS}
        probes = {ch: ProbeError(**{**base, **params["channels"].get(ch, {})}) for ch in range(1, cls.CHANNELS + 1)}
        certificate = TemperatureCertificate.from_bench(entry.certificate, source=source, instrument=entry.name,
                                                        channels=cls.CHANNELS)
        if certificate is not None:
            # The certified probe's truth is its certificate, honest at the stated rate; an offset
            # or gain written for that channel would be a second, contradicting truth.
            override = params["channels"].get(certificate.channel, {})
            clash = sorted(set(override) & {"offset", "gain"})
            if clash:
                overrides = entry.simulation.get("channels", [])
                i = next(i for i, c in enumerate(overrides) if c.get("channel") == certificate.channel)
                raise ConfigError(
                    source, f"instruments.{entry.name}.simulation.channels[{i}].{clash[0]}",
                    f"channel {certificate.channel} carries the certificate, which states its error",
                    f"remove {' and '.join(clash)} from that channel (the simulation draws the probe's true "
                    "error from the certificate's corrections and U/k)")
            probes[certificate.channel] = ProbeError(
                noise=probes[certificate.channel].noise, table=certificate.true_errors(seed, entry.name))
        return cls(
            entry.name, clock, seed=seed, serial=entry.serial or f"SIM{cls.MODEL}-0001", probes=probes,
            resolution=params["resolution"], measurement_time=params["measurement_time"],
            ambient=params["ambient"], reply_latency=params["latency"],
        )

    # --- ground truth and the world -------------------------------------------------------

    def connect_input(self, terminal: str, source: Callable[[float], float]) -> None:
        if terminal not in self.input_terminals:
            raise KeyError(terminal)
        self.inputs[int(terminal[2:])] = source

    def temperature_at(self, channel: int, t: float) -> float:
        """The true temperature at channel `channel`'s probe at clock time `t` (degC)."""
        source = self.inputs.get(channel)
        return self.ambient if source is None else float(source(t))

    def true_error(self, channel: int, temperature: float) -> float:
        """Indication minus true temperature for the probe on `channel`, without noise or rounding."""
        return self.probes[channel].error_at(temperature)

    def indicate(self, channel: int, t: float) -> float:
        """One reading of `channel` at time `t`, in degC: truth + probe error + noise, quantised."""
        temperature = self.temperature_at(channel, t)
        probe = self.probes[channel]
        value = temperature + probe.error_at(temperature)
        if probe.noise > 0:
            value += float(self._noise[channel].normal(0.0, probe.noise))
        if self.resolution > 0:
            value = round(value / self.resolution) * self.resolution
        self.readings_taken += 1
        return value

    def _in_unit(self, celsius: float) -> float:
        if self.unit == "F":
            return celsius * 9.0 / 5.0 + 32.0
        if self.unit == "K":
            return celsius + 273.15
        return celsius

    def _format(self, celsius: float) -> str:
        decimals = max(0, -math.floor(math.log10(self.resolution) + 1e-9)) if self.resolution > 0 else 4
        return f"{self._in_unit(celsius):.{decimals}f}"

    def _channel(self, params: list[str]) -> int:
        (text,) = expect_params(params, 1, 1)
        value = parse_number(text)
        if value != int(value) or int(value) not in self.probes:
            raise ScpiError(DATA_OUT_OF_RANGE, f"no channel {text.strip()} (1..{self.CHANNELS})")
        return int(value)

    # --- command handlers -----------------------------------------------------------------

    def _idn(self, params: list[str]) -> str:
        expect_params(params, 0)
        return f"HART,{self.MODEL},{self.serial},SIM1.0"

    def _rst(self, params: list[str]) -> None:
        expect_params(params, 0)
        self.unit = "C"

    def _fetch(self, params: list[str]) -> str:
        channel = self._channel(params)
        return self._format(self.indicate(channel, self.clock.now()))

    async def _measure(self, params: list[str]) -> str:
        channel = self._channel(params)
        if self.measurement_time > 0:
            await self.clock.sleep(self.measurement_time)
        return self._format(self.indicate(channel, self.clock.now()))

    def _set_unit(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        unit = text.strip().upper()
        if unit not in _UNITS:
            raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"unit {text.strip()!r}: use C, F or K")
        self.unit = unit

    def _unit_query(self, params: list[str]) -> str:
        expect_params(params, 0)
        return self.unit


class Readout1502A(ThermometerReadout):
    """Hart 1502A-class single-channel readout on its own command set (`t` -> `t:  25.0012 C`)."""

    CHANNELS = 1
    MODEL = "1502A"

    def __init__(self, name: str, clock: Clock, **kwargs: Any) -> None:
        kwargs.setdefault("serial", "SIM1502A-0001")
        super().__init__(name, clock, **kwargs)
        self.sample_period = 1

    def _command_table(self) -> list[tuple[str, Any]]:
        return [("*IDN?", self._idn), ("*CLS", self._cls)]

    async def handle(self, command: str) -> str | None:
        """Hart's terse commands (`t`, `u=c`, `sa=0`); anything else falls to the SCPI table."""
        text = command.strip().lower()
        if text.startswith("*"):
            return await super().handle(command)
        key, _, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if key in ("t", "temperature") and not value:
            reading = self._in_unit(self.indicate(1, self.clock.now()))
            return f"t: {reading:8.4f} {self.unit}"
        if key in ("u", "units"):
            if value:
                if value.upper() not in _UNITS:
                    return None
                self.unit = value.upper()
                return None
            return f"u: {self.unit}"
        if key in ("sa", "sample"):
            if value:
                if value.isdigit():
                    self.sample_period = int(value)
                return None
            return f"sa: {self.sample_period}"
        if key in ("du", "duplex"):
            return None if value else "du: h"
        return None
