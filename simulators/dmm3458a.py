"""An HP/Agilent/Keysight 3458A-class reference DMM, DC voltage, on its own (non-SCPI) command set.

The 3458A predates SCPI: flat mnemonics (`DCV 10`, `NPLC 100`, `NDIG 8`, `TRIG SGL`, `ID?`,
`ERRSTR?`), no command tree. It is usually on GPIB; here it is served by the same TCP line
server as the other models, as a GPIB-to-LAN gateway presents it
(`TCPIP::127.0.0.1::PORT::SOCKET`), so pyvisa-py reaches it the way a lab reaches the real one.

Physics, as for the 34465A model but a reference-grade meter: each reading integrates NPLC
power-line cycles on the injected clock, carries a small gain and offset error (`true_error`,
the ground truth tests compare with), noise that falls with the square root of NPLC, and is
quantised to the NDIG resolution (NDIG n: a step of range x 10^-(n+1), so NDIG 8 on the 10 V
range is 10 nV). Beyond 120 % of range the reading is the overload value +1E+38.

Termination, as this model states it (the `END` command, power-on `END OFF`):
- every output ends in CR LF;
- a *reading* (`TRIG SGL`) is only delivered when EOI is asserted with it: `END ON` or
  `END ALWAYS` (identical here, where one trigger gives one reading). Under `END OFF` the
  gateway, which forwards a message when EOI ends it (as VISA does on GPIB with the
  termination character disabled), never completes the message: the reading is held back,
  the controller times out and `readings_without_eoi` counts it. That is why a driver sends
  `END ALWAYS` first.
- query replies (`ID?`, `ERRSTR?`, `END?`, ...) are always delivered.
`PRESET` leaves `END` alone; `RESET` and power-on set `END OFF`.

Errors: an unknown command or a bad parameter is not answered; it goes on the error queue,
read one at a time by `ERRSTR?` as `code,"TEXT"` (`0,"NO ERROR"` when empty). The codes are
recalled, not checked against the manual; drivers must only rely on `0` meaning no error.
Triggering other than `TRIG SGL` (AUTO, SYN, HOLD, EXT) is accepted as state but produces no
readings in this model.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from daq.bench import InstrumentEntry
from daq.clock import Clock
from simulators.scpi_instrument import (
    DATA_OUT_OF_RANGE,
    ILLEGAL_PARAMETER_VALUE,
    ErrorQueue,
    ScpiError,
    ScpiInstrument,
    expect_params,
    keyword_is,
    parse_number,
)
from simulators.seeding import stable_rng
from simulators.simulation_parameters import NumberParameter, read_simulation_parameters

RANGES: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)
OVERRANGE = 1.2
OVERLOAD = 1.0e38
POWER_LINE_HZ = 50.0
NPLC_MIN, NPLC_MAX = 0.0001, 1000.0
NDIG_MIN, NDIG_MAX = 3, 8
#: NPLC at which `noise_ppm_of_range` is stated.
NOISE_REFERENCE_NPLC = 100.0
END_MODES = ("OFF", "ON", "ALWAYS")
_TOLERANCE = 1e-9

# 3458A-style error numbers (recalled; see the module docstring).
UNDEFINED_COMMAND = (103, "UNDEFINED COMMAND")
SYNTAX_ERROR = (102, "SYNTAX ERROR")
PARAMETER_OUT_OF_RANGE = (105, "PARAMETER OUT OF RANGE")
TOO_MANY_ERRORS = (106, "TOO MANY ERRORS")

#: SCPI codes the shared machinery (header lookup, parameter checks, faults) pushes, in 3458A words.
_FROM_SCPI = {
    -113: UNDEFINED_COMMAND,
    -104: SYNTAX_ERROR,
    -108: SYNTAX_ERROR,
    -109: SYNTAX_ERROR,
    -224: SYNTAX_ERROR,
    -222: PARAMETER_OUT_OF_RANGE,
    -350: TOO_MANY_ERRORS,
}


class Hp3458AErrorQueue(ErrorQueue):
    """The error queue, holding 3458A codes: SCPI codes from the shared parser are translated."""

    def push(self, code: int, text: str) -> None:
        if code in _FROM_SCPI:
            hp_code, hp_text = _FROM_SCPI[code]
            detail = text.split(";", 1)[1] if ";" in text else ""
            code, text = hp_code, f"{hp_text};{detail}" if detail else hp_text
        super().push(code, text)


class Dmm3458A(ScpiInstrument):
    """HP 3458A-class reference DMM model (DC voltage); one `input` terminal."""

    input_terminals = ("input",)

    SIMULATION_PARAMETERS = {
        "gain_ppm": NumberParameter(0.8),
        "offset_ppm_of_range": NumberParameter(0.05),
        "noise_ppm_of_range": NumberParameter(0.02, 0.0, hint="noise at 100 NPLC, e.g. noise_ppm_of_range = 0.02"),
    }

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        seed: int = 0,
        gain_ppm: float = 0.8,
        offset_ppm_of_range: float = 0.05,
        noise_ppm_of_range: float = 0.02,
        reply_latency: float = 0.0,
    ) -> None:
        super().__init__(name, clock, reply_latency=reply_latency)
        self.errors = Hp3458AErrorQueue()
        self.seed = seed
        self.gain_ppm = gain_ppm
        self.offset_ppm_of_range = offset_ppm_of_range
        self.noise_ppm_of_range = noise_ppm_of_range
        self._noise = stable_rng(seed, name, "noise")
        self.input: Callable[[float], float] = lambda t: 0.0
        self.samples_taken = 0
        self.readings_without_eoi = 0
        self.end_mode = "OFF"
        self._preset()
        self.add_commands([
            ("ID?", lambda p: self._no_params(p, "HP3458A")),
            ("END", self._end),
            ("END?", lambda p: self._no_params(p, str(END_MODES.index(self.end_mode)))),
            ("PRESET", self._preset_command),
            ("RESET", self._reset_command),
            ("DCV", self._dcv),
            ("FUNC?", lambda p: self._no_params(p, f"1,{self.range:.6E}")),
            ("RANGE", self._range),
            ("RANGE?", lambda p: self._no_params(p, f"{self.range:.6E}")),
            ("NPLC", self._nplc),
            ("NPLC?", lambda p: self._no_params(p, f"{self.nplc:.6E}")),
            ("NDIG", self._ndig),
            ("NDIG?", lambda p: self._no_params(p, str(self.ndig))),
            ("AZERO", self._azero),
            ("TRIG", self._trig),
            ("TRIG?", lambda p: self._no_params(p, self.trigger)),
            ("ERRSTR?", self._errstr),
        ])

    @classmethod
    def from_bench_entry(cls, entry: InstrumentEntry, *, source: str, clock: Clock, seed: int) -> Dmm3458A:
        """Build from the bench file, rejecting unknown or mistyped simulation parameters."""
        params = read_simulation_parameters(
            entry.name, entry.simulation, source=source, numbers=cls.SIMULATION_PARAMETERS,
        )
        return cls(
            entry.name, clock, seed=seed, gain_ppm=params["gain_ppm"],
            offset_ppm_of_range=params["offset_ppm_of_range"],
            noise_ppm_of_range=params["noise_ppm_of_range"], reply_latency=params["latency"],
        )

    def _preset(self) -> None:
        """PRESET NORM: DCV autorange, NPLC 1, NDIG 6, TRIG SYN, autozero on (END untouched)."""
        self.function = "DCV"
        self.auto_range = True
        self.range = 10.0
        self.nplc = 1.0
        self.ndig = 6
        self.trigger = "SYN"
        self.auto_zero = True

    def power_on(self) -> None:
        super().power_on()
        self._preset()
        self.end_mode = "OFF"

    # --- ground truth and the world -----------------------------------------------------

    def connect_input(self, terminal: str, source: Callable[[float], float]) -> None:
        if terminal != "input":
            raise KeyError(terminal)
        self.input = source

    def input_at(self, t: float) -> float:
        return float(self.input(t))

    def true_error(self, volts: float, range_: float) -> float:
        """Indication minus input, without noise or quantisation, on `range_`."""
        return volts * self.gain_ppm * 1e-6 + self.offset_ppm_of_range * 1e-6 * range_

    def noise_sigma(self, range_: float, nplc: float) -> float:
        """Standard deviation of one reading's noise on `range_` at `nplc`."""
        return self.noise_ppm_of_range * 1e-6 * range_ * math.sqrt(NOISE_REFERENCE_NPLC / max(nplc, NPLC_MIN))

    def quantum(self, range_: float, ndig: int) -> float:
        """The step of a reading at NDIG `ndig` on `range_`."""
        return range_ * 10.0 ** -(ndig + 1)

    @staticmethod
    def range_for(volts: float) -> float:
        for r in RANGES:
            if abs(volts) <= OVERRANGE * r:
                return r
        return RANGES[-1]

    def indicate(self, volts: float, range_: float, nplc: float, ndig: int) -> float:
        if abs(volts) > OVERRANGE * range_:
            return OVERLOAD
        value = volts + self.true_error(volts, range_)
        sigma = self.noise_sigma(range_, nplc)
        if sigma > 0:
            value += float(self._noise.normal(0.0, sigma))
        step = self.quantum(range_, ndig)
        return round(value / step) * step

    async def acquire(self) -> float:
        """One reading: integrate NPLC/50 s on the clock, read the input at its end."""
        nplc, ndig = self.nplc, self.ndig
        await self.clock.sleep(nplc / POWER_LINE_HZ)
        volts = self.input_at(self.clock.now())
        if self.auto_range:
            self.range = self.range_for(volts)
        self.samples_taken += 1
        return self.indicate(volts, self.range, nplc, ndig)

    def format_reading(self, value: float) -> str:
        """ASCII output: NDIG+1 decimals of mantissa, e.g. `1.000000123E+01` at NDIG 8."""
        return f"{value:.{self.ndig + 1}E}"

    # --- command handlers ---------------------------------------------------------------

    @staticmethod
    def _no_params(params: list[str], reply: str) -> str:
        expect_params(params, 0)
        return reply + "\r"

    def _end(self, params: list[str]) -> None:
        expect_params(params, 1)
        word = params[0].upper() if params else "ALWAYS"  # the default parameter is ALWAYS
        if word in ("0", "1", "2"):
            word = END_MODES[int(word)]
        if word not in END_MODES:
            raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"END {params[0]}: use OFF, ON or ALWAYS")
        self.end_mode = word

    def _preset_command(self, params: list[str]) -> None:
        expect_params(params, 1)
        kind = params[0].upper() if params else "NORM"
        if kind not in ("NORM", "FAST", "DIG"):
            raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"PRESET {params[0]}: use NORM, FAST or DIG")
        if kind != "NORM":
            raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"PRESET {kind} is not simulated (only NORM)")
        self._preset()

    def _reset_command(self, params: list[str]) -> None:
        expect_params(params, 0)
        self._preset()
        self.end_mode = "OFF"

    @staticmethod
    def _fixed_range(text: str) -> float:
        value = abs(parse_number(text))
        for r in RANGES:
            if value <= r * (1 + _TOLERANCE):
                return r
        raise ScpiError(DATA_OUT_OF_RANGE, f"no DCV range holds {text.strip()} V")

    def _dcv(self, params: list[str]) -> None:
        """`DCV [range][,resolution]`: the function and its range (the resolution is ignored here)."""
        expect_params(params, 2)
        text = params[0] if params else "AUTO"
        if keyword_is(text, "AUTO"):
            self.auto_range = True
        else:
            self.range, self.auto_range = self._fixed_range(text), False
        self.function = "DCV"

    def _range(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        if keyword_is(text, "AUTO"):
            self.auto_range = True
        else:
            self.range, self.auto_range = self._fixed_range(text), False

    def _nplc(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        value = parse_number(text)
        if not NPLC_MIN * (1 - _TOLERANCE) <= value <= NPLC_MAX * (1 + _TOLERANCE):
            raise ScpiError(DATA_OUT_OF_RANGE, f"NPLC {text.strip()} outside {NPLC_MIN:g}..{NPLC_MAX:g}")
        self.nplc = value

    def _ndig(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        value = parse_number(text)
        if value != int(value) or not NDIG_MIN <= value <= NDIG_MAX:
            raise ScpiError(DATA_OUT_OF_RANGE, f"NDIG {text.strip()} outside {NDIG_MIN}..{NDIG_MAX}")
        self.ndig = int(value)

    def _azero(self, params: list[str]) -> None:
        (text,) = expect_params(params, 1, 1)
        word = text.upper()
        if word not in ("ON", "OFF", "ONCE", "0", "1", "2"):
            raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"AZERO {text}: use ON, OFF or ONCE")
        self.auto_zero = word in ("ON", "1")

    async def _trig(self, params: list[str]) -> str | None:
        (text,) = expect_params(params, 1, 1)
        word = text.upper()
        if word not in ("AUTO", "EXT", "SGL", "HOLD", "SYN", "LEVEL", "LINE"):
            raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"TRIG {text}: use AUTO, EXT, SGL, HOLD, SYN, LEVEL or LINE")
        if word != "SGL":
            self.trigger = word
            return None
        value = await self.acquire()
        if self.end_mode == "OFF":
            self.readings_without_eoi += 1  # no EOI: the gateway never completes the message
            return None
        return self.format_reading(value) + "\r"

    def _errstr(self, params: list[str]) -> str:
        expect_params(params, 0)
        entry = self.errors.pop()
        if entry is None:
            return '0,"NO ERROR"\r'
        return f'{entry[0]},"{entry[1]}"\r'
