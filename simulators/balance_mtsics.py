"""A Mettler Toledo analytical balance speaking MT-SICS, with a load pan the operator loads.

Why these physics: a balance calibration (repeatability, eccentricity, linearity) is only
tested if the balance has each of those errors, at a size the bench file states, and if the
reading behaves in time as a real one does: after a weight is placed the indication swings
in (first-order settling), the balance says `S D` (dynamic) until its own stability band is
reached, and `S` holds the line until then, or gives up with `S I`.

What the balance indicates, in g, for a load L = sum of the true (conventional) masses on
the pan, each at its position p:

    raw(t)  = L + sensitivity * L + sum_k linearity[k] * (L / capacity)**k
              + sum_i eccentricity[p_i] * m_i + zero_drift * t
    net(t)  = raw(t) - zero point - tare
    display = round_to_d(net(t) + transient(t) + noise)

`true_indication()` is net(t) without transient, noise or rounding: what a calibration must
find. Overload (`S +`) above capacity + 9 d of gross load; underload (`S -`) with the pan
lifted (`lift_pan()`). The balance's own stable flag is |transient| <= `stable_band` (a band
only: the procedure's own criterion still applies) held for `stability_interval` seconds, so
the first stable reading still carries stable_band * exp(-interval / time_constant) of swing.

MT-SICS dialect (commands upper case, each closed by CR LF; replies closed by CR LF):
`S` -> `S S   100.0000 g` (waits for stability, `S I` after `stability_timeout`), `SI` ->
`S S ...` or `S D ...` at once, `S +` / `S -` over/underload; `Z` -> `Z A` (waits for stability;
`Z +`/`Z -` beyond the zero-setting range, `Z I` on timeout), `T` -> `T S   10.0000 g`
(`T -` for a negative load, `T I` on timeout), `TA` -> `TA A ...`, `TA 5.0 g` presets the
tare (a unit other than g: `EL`), `TAC` -> `TAC A`, `I2` -> `I2 A "<model> <capacity> g"`,
`I4` -> `I4 A "<serial>"`, `@` (cancel: tare cleared) -> `I4 A "<serial>"`. Anything else: `ES`.
`SIR` (repeat) is not simulated: the line servers send one reply per command (it gets `ES`).

The weight value is right-aligned in a 10-character field (MT-SICS response format). The
generic fault `error` (see `simulators.faults`) stands for a corrupted command on the line:
that command is not executed and answered `ET` (transmission error), as the balance does.

Reference weights: `read_reference_weights(bench)` reads the bench's `[[reference_weights]]`
(id, nominal, conventional mass from the certificate, U, k) and `true_mass()` draws each
weight's true conventional mass from its certificate value and u = U/k, seeded, so the
simulated operator places what a real set would hold: close to, but not exactly, its
certificate value. In a run, the simulated operator does the procedure's tasks through
`perform(action, **arguments)` ("place" a weight by its id, "remove", "clear", "lift_pan"): the
balance draws each weight's true mass once from its certificate and its own seed, so the
procedure hands over only what the operator holds (the id and the certificate), never a truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from daq.bench import InstrumentEntry
from daq.clock import Clock
from daq.errors import ConfigError
from daq.reference_weights import ReferenceWeight
from simulators.scpi_instrument import ScpiInstrument
from simulators.seeding import stable_rng
from simulators.simulation_parameters import NumberParameter, read_simulation_parameters

POSITIONS = ("centre", "front", "back", "left", "right")
_ECCENTRIC = POSITIONS[1:]
#: Poll step of a command waiting for stability, seconds of clock time.
STABILITY_POLL = 0.1


@dataclass
class Placed:
    """One weight on the pan."""

    weight_id: str
    true_mass: float
    position: str


def _read_linearity(source: str) -> Any:
    def read(value: Any, where: str) -> tuple[float, ...]:
        fix = "write linearity = [0.0, 0.0, 0.0002, -0.0002] (g per power of load/capacity, from power 0)"
        if value is None:
            return ()
        if not isinstance(value, list) or len(value) > 8:
            raise ConfigError(source, where, f"expected an array of up to 8 numbers, got {value!r}", fix)
        coefficients = []
        for i, c in enumerate(value):
            if isinstance(c, bool) or not isinstance(c, int | float) or not math.isfinite(c):
                raise ConfigError(source, f"{where}[{i}]", f"expected a number, got {c!r}", fix)
            coefficients.append(float(c))
        return tuple(coefficients)

    return read


def _read_eccentricity(source: str) -> Any:
    def read(value: Any, where: str) -> dict[str, float]:
        fix = "write eccentricity = { front = 2e-6, back = -1e-6, left = 1e-6, right = 0.0 } (g per g on that spot)"
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(source, where, f"expected a table, got {value!r}", fix)
        out: dict[str, float] = {}
        for key, number in value.items():
            if key not in _ECCENTRIC:
                raise ConfigError(source, f"{where}.{key}", "unknown position", f"use {', '.join(_ECCENTRIC)}")
            if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
                raise ConfigError(source, f"{where}.{key}", f"expected a number, got {number!r}", fix)
            out[key] = float(number)
        return out

    return read


class MtSicsBalance(ScpiInstrument):
    """MT-SICS balance model (XPR/XS class analytical balance), all masses in g."""

    MODEL = "XPR205"

    SIMULATION_PARAMETERS = {
        "capacity": NumberParameter(220.0, 0.0, True, hint="give the maximum capacity in g, e.g. capacity = 220"),
        "readability": NumberParameter(0.0001, 0.0, True, hint="give the scale interval d in g, e.g. 0.0001"),
        "repeatability": NumberParameter(0.00005, 0.0, hint="give the reading noise (RMS g), e.g. 0.00005"),
        "sensitivity": NumberParameter(0.0, hint="give the relative sensitivity error, e.g. sensitivity = 3e-6"),
        "zero_drift": NumberParameter(0.0, hint="give the zero drift in g per s, e.g. zero_drift = 1e-8"),
        "time_constant": NumberParameter(0.8, 0.0, True, hint="give the settling time constant in s, e.g. 0.8"),
        "stable_band": NumberParameter(0.0001, 0.0, True,
                                       hint="give the band in g inside which the balance says stable, e.g. 0.0001"),
        "stability_interval": NumberParameter(2.0, 0.0, hint="give the seconds the reading must stay inside "
                                              "stable_band before the balance calls it stable, e.g. 2.0"),
        "stability_timeout": NumberParameter(20.0, 0.0, True,
                                             hint="give the seconds S, Z and T wait for stability, e.g. 20"),
        "zero_range": NumberParameter(4.4, 0.0, hint="give the +- zero-setting range in g, e.g. 4.4 (2 % of 220 g)"),
    }

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        seed: int = 0,
        serial: str = "SIMXPR-0001",
        capacity: float = 220.0,
        readability: float = 0.0001,
        repeatability: float = 0.00005,
        sensitivity: float = 0.0,
        linearity: tuple[float, ...] = (),
        eccentricity: dict[str, float] | None = None,
        zero_drift: float = 0.0,
        time_constant: float = 0.8,
        stable_band: float = 0.0001,
        stability_interval: float = 2.0,
        stability_timeout: float = 20.0,
        zero_range: float = 4.4,
        reply_latency: float = 0.0,
    ) -> None:
        super().__init__(name, clock, reply_latency=reply_latency)
        self.seed = seed
        self.serial = serial
        self.capacity = capacity
        self.readability = readability
        self.repeatability = repeatability
        self.sensitivity = sensitivity
        self.linearity = tuple(linearity)
        self.eccentricity = {p: 0.0 for p in POSITIONS} | dict(eccentricity or {})
        self.zero_drift = zero_drift
        self.time_constant = time_constant
        self.stable_band = stable_band
        self.stability_interval = stability_interval
        self.stability_timeout = stability_timeout
        self.zero_range = zero_range
        self.pan: list[Placed] = []
        self.reference_weights: dict[str, ReferenceWeight] = {}
        self.true_masses: dict[str, float] = {}
        """Weight id -> true conventional mass (g) of every weight this balance has met."""
        self.pan_lifted = False
        self.zero_point = 0.0
        self.tare_value = 0.0
        self._t0 = clock.now()
        self._change_at = self._t0
        self._transient0 = 0.0
        self._noise = stable_rng(seed, name, "noise")
        self.decimals = max(0, -math.floor(math.log10(readability) + 1e-9))

    @classmethod
    def from_bench_entry(cls, entry: InstrumentEntry, *, source: str, clock: Clock, seed: int) -> MtSicsBalance:
        """Build from the bench file; every wrong or unknown parameter is a ConfigError naming it."""
        params = read_simulation_parameters(
            entry.name, entry.simulation, source=source, numbers=cls.SIMULATION_PARAMETERS,
            structured={"linearity": _read_linearity(source), "eccentricity": _read_eccentricity(source)},
        )
        where = f"instruments.{entry.name}.simulation"
        if params["stable_band"] < params["readability"] / 2:
            raise ConfigError(source, f"{where}.stable_band",
                              f"{params['stable_band']:g} g is below half the readability {params['readability']:g} g",
                              "a balance cannot see stability finer than its display: use stable_band >= d / 2")
        if params["zero_range"] >= params["capacity"]:
            raise ConfigError(source, f"{where}.zero_range", "must be below the capacity",
                              "write e.g. zero_range = 0.02 * capacity")
        return cls(
            entry.name, clock, seed=seed, serial=entry.serial or "SIMXPR-0001",
            capacity=params["capacity"], readability=params["readability"],
            repeatability=params["repeatability"], sensitivity=params["sensitivity"],
            linearity=params["linearity"], eccentricity=params["eccentricity"],
            zero_drift=params["zero_drift"], time_constant=params["time_constant"],
            stable_band=params["stable_band"], stability_interval=params["stability_interval"],
            stability_timeout=params["stability_timeout"],
            zero_range=params["zero_range"], reply_latency=params["latency"],
        )

    # --- the operator's side: the load pan ------------------------------------------------

    def place(self, weight_id: str, true_mass: float, position: str = "centre") -> None:
        """The operator puts weight `weight_id` (true conventional mass, g) on the pan at `position`."""
        if position not in POSITIONS:
            raise ValueError(f"unknown position {position!r}; use one of {', '.join(POSITIONS)}")
        if any(p.weight_id == weight_id for p in self.pan):
            raise ValueError(f"weight {weight_id!r} is already on the pan")
        if not math.isfinite(true_mass) or true_mass <= 0:
            raise ValueError(f"a weight has a positive mass, got {true_mass!r}")
        self._load_changes(lambda: self.pan.append(Placed(weight_id, float(true_mass), position)))

    def perform(self, action: str, **arguments: Any) -> None:
        """An operator's hands-on task on this balance (what `OperatorTask` names), done at once.

        `place`: weight = id, position = "centre" (front, back, left, right), certificate = the
        weight's certificate as the operator holds it ({nominal, conventional_mass, U, k}, g) for a
        weight this balance has not met yet (`know_weights` may have told it the set already); its
        true mass is the simulator's business: drawn once from that certificate and this balance's
        seed (`true_mass`), the same at every placing. `remove`: weight = id (none: everything).
        `clear`: everything off the pan. `lift_pan`: lifted = True (False puts it back).
        """
        if action == "place":
            weight_id = arguments.get("weight")
            if not isinstance(weight_id, str) or not weight_id:
                raise ValueError(f"place: which weight? got weight={weight_id!r}")
            self.place(weight_id, self.true_mass_of(weight_id, arguments.get("certificate")),
                       str(arguments.get("position", "centre")))
        elif action == "remove":
            self.remove(arguments.get("weight"))
        elif action == "clear":
            self.remove()
        elif action == "lift_pan":
            self.lift_pan(bool(arguments.get("lifted", True)))
        else:
            raise ValueError(f"a balance's operator cannot {action!r}; use place, remove, clear or lift_pan")

    def know_weights(self, weights: dict[str, ReferenceWeight]) -> None:
        """The reference set of the bench (its certificates): what the operator will place."""
        self.reference_weights.update(weights)

    def true_mass_of(self, weight_id: str, certificate: dict[str, Any] | None = None) -> float:
        """Weight `weight_id`'s true conventional mass, g (drawn once per balance from its certificate)."""
        if weight_id not in self.true_masses:
            weight = self.reference_weights.get(weight_id)
            if weight is None:
                if certificate is None:
                    raise ValueError(f"weight {weight_id!r} has no certificate here; pass certificate={{...}} "
                                     "or call know_weights")
                weight = ReferenceWeight(weight_id, float(certificate["nominal"]),
                                         float(certificate["conventional_mass"]), float(certificate["U"]),
                                         float(certificate.get("k", 2.0)))
                self.reference_weights[weight_id] = weight
            self.true_masses[weight_id] = true_mass(weight, self.seed)
        return self.true_masses[weight_id]

    def remove(self, weight_id: str | None = None) -> None:
        """The operator takes weight `weight_id` off the pan (None: everything)."""
        if weight_id is not None and not any(p.weight_id == weight_id for p in self.pan):
            raise ValueError(f"weight {weight_id!r} is not on the pan")

        def take() -> None:
            self.pan[:] = [p for p in self.pan if weight_id is not None and p.weight_id != weight_id]

        self._load_changes(take)

    def lift_pan(self, lifted: bool = True) -> None:
        """Take the pan off (underload, `S -`) or put it back."""
        self._load_changes(lambda: setattr(self, "pan_lifted", lifted))

    def _load_changes(self, change: Any) -> None:
        now = self.clock.now()
        before = self._settled_net(now) + self.transient_at(now)
        change()
        self._change_at = now
        self._transient0 = before - self._settled_net(now)

    # --- ground truth -----------------------------------------------------------------------

    @property
    def load(self) -> float:
        """The true load on the pan, g."""
        return sum(p.true_mass for p in self.pan)

    def error_at(self, load: float, position: str = "centre") -> float:
        """Indication minus load for `load` g at `position`, from zero, without drift, noise or rounding."""
        linear = sum(c * (load / self.capacity) ** k for k, c in enumerate(self.linearity))
        if self.linearity:
            linear -= self.linearity[0]  # the constant term is zeroed away with an empty pan
        return self.sensitivity * load + linear + self.eccentricity[position] * load

    def _raw(self, t: float) -> float:
        """Gross indication relative to the power-on zero, settled, noiseless (g)."""
        drift = self.zero_drift * (t - self._t0)
        if self.pan_lifted:
            return -self.capacity + drift  # the pan's own mass is gone: far below zero
        load = self.load
        eccentric = sum(self.eccentricity[p.position] * p.true_mass for p in self.pan)
        linear = sum(c * (load / self.capacity) ** k for k, c in enumerate(self.linearity))
        if self.linearity:
            linear -= self.linearity[0]
        return load + self.sensitivity * load + linear + eccentric + drift

    def _settled_net(self, t: float) -> float:
        return self._raw(t) - self.zero_point - self.tare_value

    def true_indication(self, t: float | None = None) -> float:
        """What the balance indicates, settled, without noise or rounding (net, g)."""
        return self._settled_net(self.clock.now() if t is None else t)

    def transient_at(self, t: float) -> float:
        return self._transient0 * math.exp(-max(0.0, t - self._change_at) / self.time_constant)

    def is_stable(self, t: float | None = None) -> bool:
        """The balance's own verdict: the swing has stayed inside `stable_band` for `stability_interval`.

        A load change too small to leave the band is stable at once.
        """
        now = self.clock.now() if t is None else t
        if abs(self._transient0) <= self.stable_band:
            return True
        since = now - self.stability_interval
        return since >= self._change_at and abs(self.transient_at(since)) <= self.stable_band

    def range_state(self, t: float) -> str:
        """"+" overload, "-" underload, "" inside the weighing range."""
        if self.pan_lifted:
            return "-"
        gross = self._raw(t) - self.zero_point
        if gross > self.capacity + 9 * self.readability:
            return "+"
        return ""

    def indicate(self, t: float) -> float:
        """One displayed value (net, g): settled + transient + noise, rounded to d."""
        value = self._settled_net(t) + self.transient_at(t)
        if self.repeatability > 0:
            value += float(self._noise.normal(0.0, self.repeatability))
        return round(value / self.readability) * self.readability

    def _format(self, value: float) -> str:
        return f"{value:>10.{self.decimals}f} g"

    # --- MT-SICS --------------------------------------------------------------------------

    async def handle(self, command: str) -> str | None:
        reply = await self._execute(command.strip())
        return None if reply is None else reply + "\r"  # the line server adds LF: CR LF on the wire

    async def _execute(self, text: str) -> str | None:
        if len(self.errors):
            self.errors.clear()  # a corrupted command (the `error` fault): not executed
            return "ET"
        parts = text.split()
        if not parts:
            return None
        name, args = parts[0], parts[1:]
        if name == "TA":
            return self._tare_value(args)
        if args:
            return "ES"
        if name == "S":
            return await self._stable_weight()
        if name == "SI":
            return self._immediate_weight()
        if name == "Z":
            return await self._zero()
        if name == "T":
            return await self._tare()
        if name == "TAC":
            self._set_tare(0.0)
            return "TAC A"
        if name == "I2":
            return f'I2 A "{self.MODEL} {self.capacity:.{self.decimals}f} g"'
        if name in ("I4", "@"):
            if name == "@":
                self._set_tare(0.0)
            return f'I4 A "{self.serial}"'
        return "ES"

    async def _wait_stable(self) -> bool:
        """Hold the line until stable (True) or the stability timeout (False), on the clock."""
        deadline = self.clock.now() + self.stability_timeout
        while not self.is_stable():
            remaining = deadline - self.clock.now()
            if remaining <= 1e-9:
                return False
            await self.clock.sleep(min(STABILITY_POLL, remaining))
        return True

    async def _stable_weight(self) -> str:
        if state := self.range_state(self.clock.now()):
            return f"S {state}"
        if not await self._wait_stable():
            return "S I"
        t = self.clock.now()
        if state := self.range_state(t):
            return f"S {state}"
        return f"S S {self._format(self.indicate(t))}"

    def _immediate_weight(self) -> str:
        t = self.clock.now()
        if state := self.range_state(t):
            return f"S {state}"
        flag = "S" if self.is_stable(t) else "D"
        return f"S {flag} {self._format(self.indicate(t))}"

    async def _zero(self) -> str:
        if not await self._wait_stable():
            return "Z I"
        gross = self._raw(self.clock.now())
        if self.pan_lifted or gross < -self.zero_range:
            return "Z -"
        if gross > self.zero_range:
            return "Z +"
        self.zero_point = gross  # the display jumps to zero; a swing still under way goes on
        self.tare_value = 0.0
        return "Z A"

    async def _tare(self) -> str:
        if not await self._wait_stable():
            return "T I"
        t = self.clock.now()
        if state := self.range_state(t):
            return f"T {state}"
        gross = self._raw(t) - self.zero_point
        if gross < 0:
            return "T -"
        self._set_tare(gross)
        return f"T S {self._format(round(gross / self.readability) * self.readability)}"

    def _set_tare(self, value: float) -> None:
        self.tare_value = value  # the display jumps; a swing still under way goes on

    def _tare_value(self, args: list[str]) -> str:
        if not args:
            return f"TA A {self._format(self.tare_value)}"
        if len(args) != 2:
            return "ES"
        try:
            value = float(args[0])
        except ValueError:
            return "ES"
        if args[1] != "g":
            return "EL"  # understood, but this balance only presets a tare in g
        if not math.isfinite(value) or not 0 <= value <= self.capacity:
            return "TA +" if value > 0 else "TA -"
        self._set_tare(value)
        return f"TA A {self._format(value)}"

    def power_on(self) -> None:
        """Power-cycle: zero at the current load, tare cleared, nothing queued (MT-SICS has no queue)."""
        self.stop()
        gross = self._raw(self.clock.now())
        if abs(gross) <= self.zero_range:
            self.zero_point = gross
        self.tare_value = 0.0
        self.errors.clear()
        self.last_replies.clear()
        self.power_cycles += 1


# --- reference weights ----------------------------------------------------------------------


def true_mass(weight: ReferenceWeight, seed: int) -> float:
    """The simulated true conventional mass: certificate value + a seeded draw of u = U / k."""
    rng = stable_rng(seed, "reference weight", weight.id)
    return weight.conventional_mass + float(rng.normal(0.0, weight.U / weight.k))
