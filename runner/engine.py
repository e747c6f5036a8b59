"""The run engine: sequencing, checkpoints and resume, pause, abort, safe state.

A run is planned once (its points are stored with it), then executed point by point. A
point is complete when its result row exists; resume starts at the first point without one,
opening a new attempt, so a point is never completed twice and the readings of an
interrupted attempt stay on record, marked as such.

Safety ordering: on every exit path (success, abort, error, cancellation) the sources go
to their safe state first; bookkeeping comes after.

Faults during a point (a transport error or timeout, an unreadable reply, an instrument
error, a stuck reading) put the sources in their safe state, close the attempt as "fault"
with its reason (attempt row and journal), re-establish every instrument (drain and journal
its error queue, re-identify with the serial check, *CLS; transports reconnect lazily) and
repeat the point from the start as a new attempt; readings of the failed attempt stay stored under it. After
`fault_attempts` failed attempts in a row at one point (default 3), every source goes to its
safe state FIRST, then the operator chooses:
- retry: another `fault_attempts` attempts;
- skip: the point is recorded as skipped (an attempt row with status "skipped", its reason,
  no readings, no result) and the run goes on; it ends "completed" with a message listing
  the skipped points. Resuming an interrupted run passes over skipped points unless the
  engine is built with `redo_skipped=True`;
- abort: the run ends "aborted" (resumable: the point has no result, so resume redoes it).
An overload (`MeterOverload`) is a measurement condition, not a fault: it fails the run safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from daq.bench import Bench
from daq.clock import Clock
from daq.errors import ConfigError, InstrumentError, TransportError
from daq.events import EventSink, PointPhaseEvent, PointResultEvent, ReadingEvent, RunStatusEvent
from daq.reading import Reading
from daq.stability import StabilityCheck
from drivers.capabilities import MeterOverload
from drivers.registry import build_driver, check_drivers, driver_class_of
from procedures.base import PlannedPoint, Procedure, StabilityTimeout
from procedures.context import OperatorDeclined, OperatorTask
from results.store import RunStore, this_process
from runner.control import Operator, RunAborted, RunControl
from runner.environment import AmbientMonitor, EnvironmentMonitor, PointWatch, check_environment_monitor

SAFE_STATE_TIMEOUT = 10.0
HEARTBEAT_SECONDS = 5.0
RECONNECT_TIMEOUT = 30.0
FAULT_CHOICES = ("retry", "skip", "abort")


class StuckReading(InstrumentError):
    """A noisy meter repeated one raw value more often than its noise allows: it is not measuring."""


def fault_reason(exc: BaseException) -> str | None:
    """Why `exc` is an instrument fault the point can be repeated after, or None if it is not one.

    Faults: the wire failed or timed out, the instrument reported an error, a reply could not be
    read (a parse error raised inside a driver or transport), a reading was stuck. Not faults:
    an overload (the input really is beyond range), anything raised outside the drivers.
    """
    if isinstance(exc, MeterOverload):
        return None
    if isinstance(exc, TransportError | InstrumentError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ValueError | IndexError | OSError) and _raised_in(exc, ("drivers.", "daq.transports.")):
        return f"unreadable reply ({type(exc).__name__}: {exc})"
    return None


def _raised_in(exc: BaseException, prefixes: tuple[str, ...]) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(prefixes):
            return True
        tb = tb.tb_next
    return False


@dataclass
class StuckReadingCheck:
    """A run of identical raw readings that the meter's own noise makes (nearly) impossible.

    With noise sigma well above the resolution q, two successive readings are equal with
    probability p ~ q / (2 sqrt(pi) sigma); a run of n equal values has p**(n-1). Sigma is
    estimated from the attempt's own readings before the run (median successive difference);
    a meter whose noise is not well above its resolution (sigma < `min_noise` q, where equal
    readings are normal) is never flagged; p is the larger of the model's and the fraction of
    equal pairs seen; a run is called stuck only when p**(n-1) < `improbable`.
    """

    resolution: float
    improbable: float = 1e-9
    min_run: int = 5
    min_history: int = 8
    min_noise: float = 2.0  # noise sigma, in resolutions, below which the check stays silent
    values: list[float] = field(default_factory=list)
    run: int = 0

    def add(self, value: float) -> str | None:
        if not math.isfinite(value):
            self.run = 0
            self.values.append(value)
            del self.values[:-64]
            return None
        self.run = self.run + 1 if self.values and value == self.values[-1] else 1
        self.values.append(value)
        keep = 32 + self.run  # enough history before the current run; a long soak stays O(1) per reading
        if len(self.values) > 2 * keep:
            del self.values[:-keep]
        if self.run < self.min_run or self.resolution <= 0:
            return None
        before = self.values[: len(self.values) - self.run + 1]
        diffs = [abs(b - a) for a, b in zip(before, before[1:], strict=False)
                 if math.isfinite(a) and math.isfinite(b)][-16:]
        if len(diffs) < self.min_history:
            return None
        sigma = statistics.median(diffs) / (0.6745 * math.sqrt(2.0))
        if sigma < self.min_noise * self.resolution:
            return None  # not a noisy meter at this resolution: equal readings are normal
        # the model's chance of two equal readings, or what the history shows if that is higher
        seen_equal = sum(1 for d in diffs if d == 0) / len(diffs)
        p_equal = min(1.0, max(self.resolution / (2.0 * math.sqrt(math.pi) * sigma), seen_equal))
        if p_equal ** (self.run - 1) >= self.improbable:
            return None
        return (f"stuck reading: {self.run} identical readings {value!r} in a row while the noise seen "
                f"(sigma ~ {sigma:.3g}) is {sigma / self.resolution:.3g} x the resolution")


def validate_before_start(bench: Bench, procedure: Procedure) -> None:
    """Every check that needs no instrument: driver names, roles, wiring, ranges, certificates."""
    check_drivers(bench)

    def driver_class(name: str) -> type | None:
        entry = bench.instruments.get(name)
        return driver_class_of(entry, bench.source) if entry is not None else None

    procedure.validate(bench, driver_class)
    check_environment_monitor(bench, driver_class)


@dataclass
class ReadingBuffer:
    """Readings waiting for their commit: flushed by size or age, so they are written as they arrive."""

    store: RunStore
    batch_size: int = 64
    max_age: float = 0.5
    rows: list[dict[str, Any]] = field(default_factory=list)
    oldest: float = 0.0

    _timer: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def add(self, row: dict[str, Any]) -> None:
        if not self.rows:
            self.oldest = time.monotonic()
        self.rows.append(row)
        if len(self.rows) >= self.batch_size or time.monotonic() - self.oldest >= self.max_age:
            await self.flush()
        elif self._timer is None or self._timer.done():
            # a slow instrument (NPLC 100: one reading per 2 s) must not leave its last reading in
            # memory until the next one arrives: a timer commits it after max_age
            self._timer = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.max_age)
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:  # one commit at a time, in order
            rows, self.rows = self.rows, []
            if rows:
                await self.store.add_readings(rows)

    async def take(self) -> list[dict[str, Any]]:
        """The rows not yet committed, for the point's final transaction: waits for a commit in
        flight (so the point never completes before its earlier readings), then stops the timer."""
        async with self._lock:
            self.stop()
            rows, self.rows = self.rows, []
            return rows

    def stop(self) -> None:
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()


class _PointContext:
    """The context a procedure sees for one attempt of one point."""

    def __init__(self, engine: RunEngine, point: PlannedPoint, attempt: int, buffer: ReadingBuffer) -> None:
        self.clock = engine.clock
        self.instruments: Mapping[str, Any] = engine.instruments
        self._engine = engine
        self._point = point
        self._attempt = attempt
        self._buffer = buffer
        self._seq: dict[str, int] = {}
        # one stuck-reading check per meter, spanning every channel it feeds (settling, repeats)
        self._meter_of: dict[str, str] = {}
        self._stuck: dict[str, StuckReadingCheck] = {}
        for channel, (meter, resolution) in engine.procedure.noisy_channels(self.instruments, point).items():
            self._meter_of[channel] = meter
            if meter not in self._stuck:
                self._stuck[meter] = StuckReadingCheck(resolution, **engine.stuck_check)

    async def record(self, reading: Reading) -> None:
        meter = self._meter_of.get(reading.channel)
        stuck = self._stuck[meter].add(reading.value) if meter is not None else None
        seq = self._seq.get(reading.channel, 0)
        self._seq[reading.channel] = seq + 1
        e = self._engine
        await self._buffer.add({
            "run_id": e.run_id, "point_index": self._point.index, "attempt": self._attempt,
            "channel": reading.channel, "seq": seq, "t": reading.t, "value": reading.value, "unit": reading.unit,
            "flag": reading.flag,
        })
        e.emit(ReadingEvent(e.run_id, self._point.index, reading.channel, reading.t, reading.value, reading.unit))
        if stuck is not None:
            raise StuckReading(f"{meter}: {stuck}")

    def show(self, phase: str, check: StabilityCheck | None = None) -> None:
        e = self._engine
        stab = None
        if check is not None:
            stab = {"n": check.n, "std": check.std, "slope_bound": check.slope_bound, "mean": check.mean,
                    "flag": check.flag, "failing": list(check.failing), "t": check.t}
        e.emit(PointPhaseEvent(e.run_id, self._point.index, self._point.label, phase, stab))

    async def confirm(self, question: str) -> bool:
        return await self._engine.confirm(question)

    async def instruct(self, task: OperatorTask) -> None:
        await self._engine.instruct(task)


class RunEngine:
    def __init__(
        self,
        bench: Bench,
        procedure: Procedure,
        store: RunStore,
        clock: Clock,
        *,
        operator: Operator,
        sinks: Sequence[EventSink] = (),
        control: RunControl | None = None,
        stability_retries: int = 1,
        fault_attempts: int = 3,
        redo_skipped: bool = False,
        stuck_check: dict[str, Any] | None = None,
        manual_reader: Callable[[str], Any] | None = None,
        simulated_operator: Callable[[OperatorTask], Any] | None = None,
    ) -> None:
        """`fault_attempts`: failed attempts in a row at one point before the operator is asked;
        `redo_skipped`: on resume, measure points an operator skipped before; `stuck_check`:
        overrides of `StuckReadingCheck` (improbable, min_run, min_history)."""
        if fault_attempts < 1:
            raise ValueError("fault_attempts must be >= 1")
        self.bench = bench
        self.procedure = procedure
        self.store = store
        self.clock = clock
        self.operator = operator
        self.sinks = list(sinks)
        self.control = control or RunControl()
        self.stability_retries = stability_retries
        self.fault_attempts = fault_attempts
        self.redo_skipped = redo_skipped
        self.stuck_check = dict(stuck_check or {})
        self.manual_reader = manual_reader
        self.simulated_operator = simulated_operator
        """Who does an operator's hands-on tasks in a simulated run (on the simulated instruments)."""
        """Instrument name -> who reads it, for MANUAL instruments (the operator, or a simulated one)."""
        self.skipped: list[str] = []
        self.run_id = 0
        self.instruments: dict[str, Any] = {}
        self.environment: EnvironmentMonitor | None = None
        """The bench's room monitor (`[environment] monitor`), read around every point; None: no log."""
        self.status = "created"

    # -- plumbing ------------------------------------------------------------------------------
    def emit(self, event: Any) -> None:
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception:  # noqa: BLE001 - a broken view must never stop a calibration
                pass

    async def confirm(self, question: str) -> bool:
        answer = await self.operator.confirm(question)
        await self.store.log_event(self.run_id, "prompt", f"{question} -> {'yes' if answer else 'no'}")
        return answer

    async def instruct(self, task: OperatorTask) -> None:
        """A hands-on task: sources safe first (a person is at the bench), then done and journalled."""
        problems = await asyncio.shield(self._safe_state_all())
        if problems:
            raise RuntimeError("; ".join(problems))
        if self.simulated_operator is not None:
            done = self.simulated_operator(task)
            if asyncio.iscoroutine(done):
                await done
            await self.store.log_event(self.run_id, "task", f"{task.text} -> done by the simulated operator")
            return
        if not await self.confirm(f"{task.text}. Done?"):
            raise OperatorDeclined(f"operator did not do: {task.text}")

    async def choose(self, question: str, options: Sequence[str]) -> str:
        ask = getattr(self.operator, "choose", None)
        answer = await ask(question, options) if ask is not None else "abort"
        if answer not in options:
            answer = "abort"
        await self.store.log_event(self.run_id, "prompt", f"{question} -> {answer}")
        return answer

    async def create(self, options: dict[str, Any], operator_name: str = "") -> int:
        """Plan the run in the store (points included) after every static check has passed."""
        validate_before_start(self.bench, self.procedure)
        self.run_id = await self.store.create_run(
            procedure_name=self.procedure.name, bench_name=self.bench.name, bench_source=self.bench.source,
            bench_toml=self.bench.text, procedure_source=self.procedure.source, procedure_toml=self.procedure.text,
            options=options, points=[p.as_plan() for p in self.procedure.points], operator=operator_name,
        )
        return self.run_id

    async def _safe_state_all(self) -> list[str]:
        """Every source to its safe state, each bounded in time, none allowed to stop the others."""
        problems: list[str] = []
        for name, inst in self.instruments.items():
            if hasattr(inst, "safe_state"):
                try:
                    await asyncio.wait_for(inst.safe_state(), SAFE_STATE_TIMEOUT)
                except BaseException as exc:  # noqa: BLE001 - report, then continue with the others
                    problems.append(f"{name}: safe state failed: {exc!r}")
        return problems

    # -- the run -------------------------------------------------------------------------------
    async def execute(self, run_id: int) -> str:
        """Run (or resume) `run_id` to its end; returns the final status."""
        self.run_id = run_id
        record = await self.store.load_run(run_id)
        if record is None:
            raise ValueError(f"no run {run_id} in the store")
        validate_before_start(self.bench, self.procedure)
        owner = this_process()
        holder = await self.store.claim(run_id, owner)
        if holder is not None:
            raise ConfigError(f"run {run_id}", "--resume", f"the run is being run by {holder}",
                              "let that process finish or stop it (Ctrl+C), then resume")
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(owner))
        task = asyncio.current_task()
        if task is not None:
            self.control.bind(task)
        try:
            return await self._execute_claimed(run_id, record)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(BaseException):
                await heartbeat
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.release(run_id, owner))

    async def _heartbeat(self, owner: str) -> None:
        """Tell other processes this run is alive (real time: it is about processes, not the bench)."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            with contextlib.suppress(Exception):
                await self.store.heartbeat(self.run_id, owner)

    async def _execute_claimed(self, run_id: int, record: Any) -> str:
        message = ""
        status = "failed"
        needed = self.procedure.instrument_names()
        self.instruments = {
            n: build_driver(e, self.bench.source, manual_reader=self.manual_reader(n) if self.manual_reader else None)
            for n, e in self.bench.instruments.items() if n in needed}
        try:
            try:
                for inst in self.instruments.values():
                    await inst.connect()
                # a resumed run may find the source still live from the killed process
                for problem in await self._safe_state_all():
                    raise RuntimeError(problem)
                self.environment = await self._open_environment()
                await self.store.set_status(run_id, "running")
                await self.store.log_event(
                    run_id, "resume" if record.status != "created" else "start",
                    f"{len(record.completed_points)} of {record.planned_points} points complete; "
                    f"instruments: " + ", ".join(f"{n} {i.idn!r}" for n, i in self.instruments.items()))
                self.emit(RunStatusEvent(run_id, "running", f"{len(record.completed_points)} of "
                                         f"{record.planned_points} points already complete"))
                skipped_before = set() if self.redo_skipped else {
                    a["point_index"] for a in await self.store.attempts(run_id) if a["status"] == "skipped"}
                for point in self.procedure.points:
                    if point.index in record.completed_points:
                        continue
                    if point.index in skipped_before:
                        self.skipped.append(point.label)
                        continue
                    await self._checkpoint(point)
                    await self._run_point(point)
                status, message = "completed", "all points complete"
                if self.skipped:
                    message = f"completed with {len(self.skipped)} skipped point(s): " + ", ".join(self.skipped)
            except asyncio.CancelledError:
                if self.control.abort_reason is None:
                    raise
                status, message = "aborted", self.control.abort_reason
            except (RunAborted, OperatorDeclined) as exc:
                status, message = "aborted", str(exc)
            except BaseException as exc:
                status, message = "failed", f"{type(exc).__name__}: {exc}"
                raise
        finally:
            problems = await asyncio.shield(self._safe_state_all())
            if problems:
                message = (message + "; " if message else "") + "; ".join(problems)
            self.status = status
            with contextlib.suppress(Exception):
                await self.store.log_event(run_id, "safe_state", "sources in safe state" if not problems
                                           else "; ".join(problems))
                await self.store.set_status(run_id, status, message)
            self.emit(RunStatusEvent(run_id, status, message))
            for inst in self.instruments.values():
                with contextlib.suppress(Exception):
                    await inst.close()
            if self.environment is not None:
                await self.environment.close()
        return status

    async def _open_environment(self) -> EnvironmentMonitor | None:
        """The bench's room monitor, connected if it answers; one that does not is journalled, not fatal
        (each point records it, and the monitor is tried again before each reading)."""
        name = self.bench.environment_monitor
        if name is None:
            return None
        entry = self.bench.instruments[name]
        shared = name in self.instruments  # also an instrument of the procedure: connected above
        # validate_before_start checked that its driver reads the room
        driver = cast(AmbientMonitor, self.instruments[name] if shared else build_driver(entry, self.bench.source))
        monitor = EnvironmentMonitor(
            driver, self.clock, fallback_source=f"{name} (not identified; {entry.driver}, serial {entry.serial})",
            connected=shared, owned=not shared, timeout=2 * entry.timeout)
        problem = None if shared else await monitor.open()
        await self.store.log_event(self.run_id, "environment", f"room monitor {name}: " + (
            monitor.source if problem is None else f"not answering ({problem}); points record it, the run goes on"))
        return monitor

    async def _checkpoint(self, point: PlannedPoint) -> None:
        if self.control.paused:
            await self._safe_state_all()
            await self.store.log_event(self.run_id, "pause", f"paused before {point.label}; sources in standby")
            self.emit(RunStatusEvent(self.run_id, "paused", f"before {point.label}"))
            await self.control.wait_if_paused()
            await self.store.log_event(self.run_id, "resume", f"resumed at {point.label}")
            self.emit(RunStatusEvent(self.run_id, "running", f"resumed at {point.label}"))
        if self.control.abort_reason is not None:
            raise RunAborted(self.control.abort_reason)

    async def _run_point(self, point: PlannedPoint) -> None:
        proc = self.procedure
        tries = 0
        faults = 0
        while True:
            attempt = await self.store.begin_attempt(self.run_id, point.index)
            buffer = ReadingBuffer(self.store)
            ctx = _PointContext(self, point, attempt, buffer)
            watch = self.environment.watch() if self.environment is not None else None
            try:
                outcome = await proc.run_point(ctx, point)
                environment = await watch.finish(ctx.record) if watch is not None else None
            except StabilityTimeout as exc:
                _stop_watching(watch)
                # safe state before the bookkeeping, and before anybody is asked to retry
                problems = await asyncio.shield(self._safe_state_all())
                if problems:
                    await self.store.log_event(self.run_id, "safe_state", "; ".join(problems))
                await _keep_environment(watch, ctx)
                await buffer.flush()
                await self.store.end_attempt(self.run_id, point.index, attempt, "unstable",
                                             exc.record.to_dict(with_trace=False))
                await self.store.log_event(self.run_id, "unstable", str(exc))
                tries += 1
                if tries <= self.stability_retries and await self.confirm(
                    f"{exc}. Retry the point?"
                ):
                    continue
                raise
            except BaseException as exc:
                _stop_watching(watch)
                reason = fault_reason(exc) if isinstance(exc, Exception) else None
                if reason is None:
                    # abort, cancellation, a non-fault error: the sources first, the records after
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self._safe_state_all())
                    with contextlib.suppress(Exception):  # a room reading lost must not lose the others
                        await asyncio.shield(_keep_environment(watch, ctx))
                    with contextlib.suppress(Exception):
                        await asyncio.shield(buffer.flush())
                        await asyncio.shield(self.store.end_attempt(self.run_id, point.index, attempt, "aborted"))
                    raise
                faults += 1
                # an error path like any other: sources safe before anything else (the next
                # attempt sets them up again from the start)
                problems = await asyncio.shield(self._safe_state_all())
                await _keep_environment(watch, ctx)
                await self._close_faulty_attempt(point, attempt, buffer, reason, faults)
                if problems:
                    await self.store.log_event(self.run_id, "safe_state", "; ".join(problems))
                if faults >= self.fault_attempts:
                    answer = await self._ask_after_faults(point, faults, reason)
                    if answer == "skip":
                        await self._skip(point, faults, reason)
                        await self._reconnect()  # the next point starts from known instruments
                        return
                    if answer != "retry":
                        raise RunAborted(f"aborted by the operator at {point.label} after {faults} failed "
                                         f"attempts; last: {reason}") from exc
                    faults = 0
                await self._reconnect()
                continue
            results = {channel: result.to_dict() for channel, result in outcome.results.items()}
            if environment is not None:
                for result_dict in results.values():
                    result_dict["environment"] = environment
            await self.store.complete_point(
                run_id=self.run_id, point_index=point.index, attempt=attempt, pending_readings=await buffer.take(),
                stability=outcome.stability.to_dict(with_trace=False), results=results,
            )
            for channel, result_dict in results.items():
                label = f"{point.label} {channel}".strip()
                self.emit(PointResultEvent(self.run_id, point.index, result_dict | {"label": label,
                                                                                     "channel": channel}))
            return

    # -- faults ----------------------------------------------------------------------------------
    async def _close_faulty_attempt(self, point: PlannedPoint, attempt: int, buffer: ReadingBuffer, reason: str,
                                    faults: int) -> None:
        """Keep what the attempt measured, mark it "fault" with its reason, journal it."""
        await asyncio.shield(buffer.flush())
        await self.store.end_attempt(self.run_id, point.index, attempt, "fault",
                                     {"reason": reason, "fault": faults})
        await self.store.log_event(self.run_id, "fault", f"{point.label}, attempt {attempt}: {reason}")
        self.emit(PointPhaseEvent(self.run_id, point.index, point.label, f"fault: {reason}"))

    async def _reconnect(self) -> None:
        """Re-establish every instrument: journal what its error queue holds, re-identify (serial
        check), clear. The transports reopen by themselves; a failure here is journalled and
        left for the next attempt to meet (and count), except a wrong serial number, which ends
        the run."""
        for name, inst in self.instruments.items():
            try:
                async with asyncio.timeout(RECONNECT_TIMEOUT):
                    found = await inst.errors() if hasattr(inst, "errors") else []
                    if found:
                        await self.store.log_event(self.run_id, "instrument_errors", f"{name}: {'; '.join(found)}")
                    await inst.connect()
                await self.store.log_event(self.run_id, "reconnect", f"{name}: {inst.idn!r}")
            except InstrumentError as exc:
                if "serial number" in str(exc):
                    raise
                await self.store.log_event(self.run_id, "reconnect", f"{name}: failed: {exc}")
            except (TransportError, TimeoutError, ValueError, OSError) as exc:
                await self.store.log_event(self.run_id, "reconnect", f"{name}: failed: {type(exc).__name__}: {exc}")

    async def _ask_after_faults(self, point: PlannedPoint, faults: int, reason: str) -> str:
        """Sources to their safe state FIRST, then the operator decides."""
        problems = await asyncio.shield(self._safe_state_all())
        await self.store.log_event(self.run_id, "safe_state", "sources in safe state before asking the operator"
                                   if not problems else "; ".join(problems))
        self.emit(RunStatusEvent(self.run_id, "waiting", f"{point.label}: {faults} failed attempts"))
        note = "Sources are in standby." if not problems else "Safe state FAILED: " + "; ".join(problems) + "."
        answer = await self.choose(
            f"{point.label} failed {faults} times (last: {reason}). {note} Retry, skip the point, or abort the run?",
            FAULT_CHOICES)
        self.emit(RunStatusEvent(self.run_id, "running", f"{point.label}: operator chose {answer}"))
        return answer

    async def _skip(self, point: PlannedPoint, faults: int, reason: str) -> None:
        attempt = await self.store.begin_attempt(self.run_id, point.index)
        why = f"skipped by the operator after {faults} failed attempts; last: {reason}"
        await self.store.end_attempt(self.run_id, point.index, attempt, "skipped", {"reason": why})
        await self.store.log_event(self.run_id, "skip", f"{point.label}: {why}")
        self.emit(PointPhaseEvent(self.run_id, point.index, point.label, "skipped"))
        self.skipped.append(point.label)


def _stop_watching(watch: PointWatch | None) -> None:
    """Synchronous: an error path must not wait for the room monitor before the safe state."""
    if watch is not None:
        watch.stop()


async def _keep_environment(watch: PointWatch | None, ctx: _PointContext) -> None:
    """After the safe state: an attempt without a result keeps the room reading it took, like its other readings."""
    if watch is not None:
        await watch.keep(ctx.record)
