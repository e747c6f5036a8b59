"""One simulated physical world: the instruments of a bench file, wired as the file says.

Why a world and not independent fakes: a calibration is only tested if the DMM really
measures what the calibrator really sources, with both instruments' errors, on one time
line. The world builds each instrument model from its `driver` name, checks its simulation
parameters, and connects every `[[wiring]]` pair so an input sees, at time t, the function
of time its source presents (0 V when nothing is wired).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from daq.bench import Bench, InstrumentEntry
from daq.clock import Clock
from daq.errors import ConfigError
from simulators.balance_mtsics import MtSicsBalance
from simulators.calibrator5522a import Calibrator5522A
from simulators.dmm3458a import Dmm3458A
from simulators.dmm34465a import Dmm34465A
from simulators.eurotherm3200 import Eurotherm3200
from simulators.hmt330 import Hmt330Probe
from simulators.manual_gauge import ManualGauge
from simulators.pace_controller import PaceController
from simulators.scpi_instrument import ScpiInstrument
from simulators.temperature_bath import TemperatureBath
from simulators.thermometer_readout import Readout1502A, ThermometerReadout

#: Driver name in the bench file -> the model that stands in for that instrument.
MODELS: dict[str, Any] = {
    "druck_pace": PaceController,
    "vaisala_hmt330": Hmt330Probe,
    "manual_entry": ManualGauge,  # plays the operator (drivers.manual_entry.ManualReader); nothing served
    "mettler_sics": MtSicsBalance,
    "fluke5522a": Calibrator5522A,
    "keysight34465a": Dmm34465A,
    "fluke_bath": TemperatureBath,
    "fluke1529": ThermometerReadout,
    "hart1502a": Readout1502A,
    "eurotherm3200": Eurotherm3200,  # served by simulators.modbus_server, not the SCPI servers
    "hp3458a": Dmm3458A,
}


class SimulatedWorld:
    """The instrument models of `bench`, wired together, on `clock`, from one seed.

    Seed: the explicit argument, else the bench file's `[bench] seed`, else 0. Every random
    quantity (the calibrator's deviations, the DMM's noise) derives from it, so one seed
    reproduces one world.
    """

    def __init__(self, bench: Bench, clock: Clock, seed: int | None = None) -> None:
        self.bench = bench
        self.clock = clock
        self.seed = seed if seed is not None else (bench.seed if bench.seed is not None else 0)
        self.instruments: dict[str, ScpiInstrument] = {
            name: self._build(entry) for name, entry in bench.instruments.items()
        }
        self._wire()
        self._hand_out_reference_weights()

    def _build(self, entry: InstrumentEntry) -> ScpiInstrument:
        # an instrument reached through a lab's own map file (scpi:..., modbus-map:...) names the
        # simulator that stands in for it: `[instruments.X.simulation] simulator = "keysight34465a"`
        stand_in = entry.simulation.get("simulator")
        if stand_in is not None:
            if not isinstance(stand_in, str) or stand_in not in MODELS:
                raise ConfigError(self.bench.source, f"instruments.{entry.name}.simulation.simulator",
                                  f"no simulator {stand_in!r}", f"use one of {', '.join(sorted(MODELS))}")
            entry = dataclasses.replace(entry, simulation={k: v for k, v in entry.simulation.items()
                                                           if k != "simulator"})
        name = stand_in or entry.driver
        model = MODELS.get(name)
        if model is None:
            fix = f"use one of {', '.join(sorted(MODELS))}"
            if ":" in entry.driver:
                fix = f'name the simulator that stands in for it: simulator = "..." in its [simulation]; {fix}'
            raise ConfigError(
                self.bench.source, f"instruments.{entry.name}.driver",
                f"no simulator for driver {entry.driver!r}", fix,
            )
        instrument: ScpiInstrument = model.from_bench_entry(entry, source=self.bench.source, clock=self.clock,
                                                            seed=self.seed)
        return instrument

    def _hand_out_reference_weights(self) -> None:
        """Balances learn the bench's weight set up front: an operator task then names only a weight id."""
        if not any(hasattr(m, "know_weights") for m in self.instruments.values()):
            return
        from daq.reference_weights import read_reference_weights

        weights = read_reference_weights(self.bench)
        for model in self.instruments.values():
            if hasattr(model, "know_weights"):
                model.know_weights(weights)

    def _wire(self) -> None:
        for i, wire in enumerate(self.bench.wiring):
            source_name, source_terminal = wire.source.split(".", 1)
            sink_name, sink_terminal = wire.sink.split(".", 1)
            source = self.instruments[source_name]
            sink = self.instruments[sink_name]
            if source_terminal not in source.output_terminals:
                raise ConfigError(
                    self.bench.source, f"wiring[{i}].from",
                    f"{source_name} ({type(source).__name__}) has no output {source_terminal!r}",
                    _terminal_fix(source_name, source.output_terminals, "output"),
                )
            if sink_terminal not in sink.input_terminals:
                raise ConfigError(
                    self.bench.source, f"wiring[{i}].to",
                    f"{sink_name} ({type(sink).__name__}) has no input {sink_terminal!r}",
                    _terminal_fix(sink_name, sink.input_terminals, "input"),
                )
            sink.connect_input(sink_terminal, source.output_source(source_terminal))

    def stop(self) -> None:
        """Cancel any background work of the instruments (the models stay readable)."""
        for instrument in self.instruments.values():
            instrument.stop()

    def __getitem__(self, name: str) -> ScpiInstrument:
        return self.instruments[name]

    def __contains__(self, name: object) -> bool:
        return name in self.instruments

    def calibrator(self, name: str) -> Calibrator5522A:
        """The calibrator model called `name` (typed accessor for tests)."""
        return _typed(self.instruments[name], Calibrator5522A, name)

    def dmm(self, name: str) -> Dmm34465A:
        """The DMM model called `name` (typed accessor for tests)."""
        return _typed(self.instruments[name], Dmm34465A, name)

    def true_error(self, instrument: str, nominal: float, range_: float | None = None) -> float:
        """The ground truth a calibration of `instrument` at `nominal` should find.

        For a meter: its indication minus the true input (no noise, no quantisation) when
        the source wired to its input is programmed to `nominal`, on `range_` (autorange
        when None). For a calibrator: its true output minus `nominal`.
        """
        model = self.instruments[instrument]
        if isinstance(model, Calibrator5522A):
            return model.deviation(nominal)
        if isinstance(model, Dmm34465A):
            volts = self.settled_input(f"{instrument}.input", nominal)
            return model.true_error(volts, range_ if range_ is not None else model.range_for(volts))
        raise TypeError(f"{instrument} is a {type(model).__name__}, which has no calibration truth")

    def settled_input(self, terminal: str, nominal: float) -> float:
        """What an input sees once its wired source, programmed to `nominal`, has settled."""
        wired = self.bench.wired_to(terminal)
        if wired is None:
            return float(nominal)
        source = self.instruments[wired.split(".", 1)[0]]
        if isinstance(source, Calibrator5522A):
            return source.true_output(nominal)
        return float(nominal)

    def terminal_at(self, terminal: str, t: float) -> float:
        """The true value of `"instrument.terminal"` at clock time t (outputs and inputs)."""
        name, term = terminal.split(".", 1)
        instrument = self.instruments[name]
        if term in instrument.output_terminals:
            return float(instrument.output_source(term)(t))
        if term in instrument.input_terminals:
            wired = self.bench.wired_to(terminal)
            return self.terminal_at(wired, t) if wired else 0.0
        raise KeyError(terminal)


def _terminal_fix(name: str, terminals: tuple[str, ...], kind: str) -> str:
    if not terminals:
        return f"{name} has no {kind} terminals; wire another instrument"
    return "use " + " or ".join(f'"{name}.{t}"' for t in terminals)


def _typed(instrument: ScpiInstrument, kind: type[Any], name: str) -> Any:
    if not isinstance(instrument, kind):
        raise TypeError(f"{name} is a {type(instrument).__name__}, not a {kind.__name__}")
    return instrument
