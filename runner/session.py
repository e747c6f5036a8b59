"""One invocation of a run: open the store, (optionally) start the simulated bench, execute, close.

Shared by `daq run` and `daq demo`. A run remembers how it was started (bench and procedure
text, seed, time scale, simulated or not) so `daq run --resume RUN_ID` needs nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from daq.bench import Bench, parse_bench
from daq.clock import Clock, RealClock, ScaledClock
from daq.errors import ConfigError
from daq.events import EventSink
from procedures.base import Procedure
from procedures.loader import parse_procedure
from results.store import RunStore
from runner.control import AutoOperator, Operator, RunControl, TerminalOperator, TerminalReadings
from runner.engine import RunEngine, validate_before_start
from runner.simulated_truth import SimulatedTruth
from runner.sinks.mqtt import MqttSink
from runner.sinks.terminal import TerminalSink


@dataclass
class SessionOptions:
    db: str
    simulate: bool = False
    scale: float | None = None
    seed: int | None = None
    mqtt_url: str | None = None
    assume_yes: bool = False
    live: bool = True
    operator_name: str = ""
    certificates: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Instrument -> certificate tables that replace the bench file's (from the equipment register)."""
    serials: dict[str, str] = field(default_factory=dict)
    """Instrument -> the serial it must report (an order item's serial for the UUT)."""
    context: dict[str, Any] = field(default_factory=dict)
    """What the run was for: the order item, the standards used with their certificates."""

    def to_record(self) -> dict[str, Any]:
        return {"simulate": self.simulate, "scale": self.scale, "seed": self.seed, "assume_yes": self.assume_yes,
                "certificates": self.certificates, "serials": self.serials} | self.context

    def apply_to(self, bench: Bench) -> Bench:
        """The bench as this run uses it; applied again on resume, so a resumed run keeps its register values."""
        if not self.certificates and not self.serials:
            return bench
        new = {}
        for name, entry in bench.instruments.items():
            changes: dict[str, Any] = {}
            if name in self.certificates:
                changes["certificate"] = dict(self.certificates[name])
            if name in self.serials:
                changes["serial"] = self.serials[name]
            new[name] = dataclasses.replace(entry, **changes) if changes else entry
        return dataclasses.replace(bench, instruments=new)


@dataclass
class SessionOutcome:
    run_id: int
    status: str
    results: list[dict[str, Any]]
    world: Any = None
    bench: Bench | None = None
    procedure: Procedure | None = None
    clock_note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def make_clock(scale: float | None) -> Clock:
    return ScaledClock(scale) if scale and scale != 1.0 else RealClock()


async def run_session(
    bench: Bench | None,
    procedure: Procedure | None,
    options: SessionOptions,
    *,
    resume: int | None = None,
    console: Console | None = None,
    operator: Operator | None = None,
    control: RunControl | None = None,
    clock: Clock | None = None,
    sinks: list[EventSink] | None = None,
    on_created: Any = None,
    manual_reader: Any = None,
    simulated_operator: Any = None,
) -> SessionOutcome:
    """`manual_reader(name)`: who reads a MANUAL instrument; by default the simulated operator in a
    simulated run, else the operator at the terminal."""
    console = console or Console(stderr=True)
    if resume is not None and "://" not in options.db and not Path(options.db).exists():
        raise ConfigError(options.db, "--db", "no such database file", "give the --db the run was started with")
    store = await RunStore.open(options.db)
    try:
        if resume is not None:
            record = await store.load_run(resume)
            if record is None:
                raise ConfigError(options.db, "--resume", f"there is no run {resume} in this database",
                                  "check the run number printed when the run started, and --db")
            if record.status == "completed":
                raise ConfigError(options.db, "--resume", f"run {resume} is already complete", "start a new run")
            bench = parse_bench(record.bench_toml, source=record.bench_source)
            procedure = parse_procedure(record.procedure_toml, source=record.procedure_source)
            saved = record.options
            options.simulate = bool(saved.get("simulate", options.simulate))
            options.scale = saved.get("scale", options.scale) if options.scale is None else options.scale
            options.seed = saved.get("seed", options.seed)
            options.certificates = dict(saved.get("certificates") or {})
            options.serials = dict(saved.get("serials") or {})
            options.context = {k: v for k, v in saved.items() if k in ("order_item", "standards")}
            # an unattended simulated run stays unattended when resumed; a run on real instruments
            # asks its safety questions again unless --yes is given again
            if options.simulate and saved.get("assume_yes"):
                options.assume_yes = True
        assert bench is not None and procedure is not None
        if resume is None and not options.certificates:
            await _register_gate(store, bench, options)
        bench = options.apply_to(bench)
        validate_before_start(bench, procedure)
        clock = clock or make_clock(options.scale)
        running = None
        world = None
        if options.simulate:
            from simulators import start_bench

            running = await start_bench(bench, clock, seed=options.seed)
            world = running.world
            bench = bench.with_resources(running.resources)
        control = control or RunControl()
        terminal = TerminalSink(console, len(procedure.points), "") if options.live else None
        operator = operator or (AutoOperator(True) if options.assume_yes else TerminalOperator(terminal))
        all_sinks: list[EventSink] = list(sinks or [])
        mqtt = None
        if options.mqtt_url:
            mqtt = MqttSink(options.mqtt_url)
            mqtt.start()
            all_sinks.append(mqtt)
        describe = getattr(clock, "describe", None)
        clock_note = describe() if callable(describe) else type(clock).__name__
        if manual_reader is None and world is not None:
            def manual_reader(name: str) -> Any:
                return world[name]  # the simulated operator reads the simulated gauge
        elif manual_reader is None:
            readings = TerminalReadings(terminal)

            def manual_reader(name: str) -> Any:
                return readings
        truth = SimulatedTruth(world, procedure) if world is not None else None
        if truth is not None:
            all_sinks.append(truth)
        if simulated_operator is None and world is not None:
            def simulated_operator(task: Any) -> Any:
                model: Any = world[task.instrument]  # a simulator that an operator can act on
                return model.perform(task.action, **task.arguments)
        engine = RunEngine(bench, procedure, store, clock, operator=operator, sinks=all_sinks, control=control,
                           manual_reader=manual_reader, simulated_operator=simulated_operator)
        if resume is None:
            run_id = await engine.create(options.to_record(), options.operator_name)
        else:
            run_id = resume
        if on_created is not None:
            linked = on_created(run_id)
            if inspect.isawaitable(linked):
                await linked
        record = await store.load_run(run_id)
        if terminal is not None:
            terminal.clock_note = clock_note
            engine.sinks.append(terminal)
            terminal.start(len(record.completed_points) if record else 0)
        loop = asyncio.get_running_loop()
        installed = []
        for sig, action in ((signal.SIGINT, lambda: control.abort("interrupted (SIGINT)")),
                            (signal.SIGTERM, lambda: control.abort("terminated (SIGTERM)")),
                            (signal.SIGUSR1, control.pause), (signal.SIGUSR2, control.resume)):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, action)
                installed.append(sig)
        try:
            status = await engine.execute(run_id)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            if terminal is not None:
                await terminal.aclose()
            if mqtt is not None:
                await mqtt.aclose()
            if running is not None:
                await running.close()
        results = await store.results(run_id)
        final = await store.load_run(run_id)
        return SessionOutcome(run_id, status, results, world, bench, procedure, clock_note,
                              extra={"message": final.message if final else "", "truth": truth})
    finally:
        await store.close()


async def _register_gate(store: RunStore, bench: Bench, options: SessionOptions) -> None:
    """A database that keeps an equipment register refuses a run on a standard it would not accept, and gives
    the run the register's certificate values; a database without one leaves the bench file in charge."""
    from datetime import date

    from sqlalchemy import func, select

    from results.records.models import EquipmentRow
    from results.records.register import standards_for_run

    async with store.sessions.begin() as s:
        kept = await s.scalar(select(func.count(EquipmentRow.id)).where(EquipmentRow.category != "customer_item"))
        if not kept:
            return
        checked, standards = await standards_for_run(s, bench, date.today())
    options.certificates = {n: e.certificate for n, e in checked.instruments.items()
                            if e.certificate != bench.instruments[n].certificate}
    options.context.setdefault("standards", [json.loads(json.dumps(dataclasses.asdict(st), default=str))
                                             for st in standards])


def packaged(name: str) -> Path:
    return Path(__file__).parent / "data" / name
