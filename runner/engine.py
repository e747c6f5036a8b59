"""The run engine: sequencing, checkpoints and resume, pause, abort, safe state.

A run is planned once (its points are stored with it), then executed point by point. A
point is complete when its result row exists; resume starts at the first point without one,
opening a new attempt, so a point is never completed twice and the readings of an
interrupted attempt stay on record, marked as such.

Safety ordering: on every exit path (success, abort, error, cancellation) the sources go
to their safe state first; bookkeeping comes after.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from daq.bench import Bench
from daq.clock import Clock
from daq.events import EventSink, PointPhaseEvent, PointResultEvent, ReadingEvent, RunStatusEvent
from daq.reading import Reading
from daq.stability import StabilityCheck
from drivers.registry import DRIVERS, build_driver, check_drivers
from procedures.context import OperatorDeclined
from procedures.dc_voltage import DcPoint, DcVoltageProcedure, StabilityTimeout
from results.store import RunStore
from runner.control import Operator, RunAborted, RunControl

SAFE_STATE_TIMEOUT = 10.0


def validate_before_start(bench: Bench, procedure: DcVoltageProcedure) -> None:
    """Every check that needs no instrument: driver names, roles, wiring, ranges, certificate."""
    check_drivers(bench)
    source_cls = DRIVERS[bench.instruments[procedure.source_role].driver] if procedure.source_role in \
        bench.instruments else None
    meter_cls = DRIVERS[bench.instruments[procedure.uut_role].driver] if procedure.uut_role in \
        bench.instruments else None
    procedure.validate(
        bench,
        source_max=float(getattr(source_cls, "max_output", 0.0)),
        meter_ranges=tuple(getattr(meter_cls, "ranges", ())),
    )


@dataclass
class ReadingBuffer:
    """Readings waiting for their commit: flushed by size or age, so they are written as they arrive."""

    store: RunStore
    batch_size: int = 64
    max_age: float = 0.5
    rows: list[dict[str, Any]] = field(default_factory=list)
    oldest: float = 0.0

    async def add(self, row: dict[str, Any]) -> None:
        if not self.rows:
            self.oldest = time.monotonic()
        self.rows.append(row)
        if len(self.rows) >= self.batch_size or time.monotonic() - self.oldest >= self.max_age:
            await self.flush()

    async def flush(self) -> None:
        rows, self.rows = self.rows, []
        await self.store.add_readings(rows)

    def take(self) -> list[dict[str, Any]]:
        rows, self.rows = self.rows, []
        return rows


class _PointContext:
    """The context a procedure sees for one attempt of one point."""

    def __init__(self, engine: RunEngine, point: DcPoint, attempt: int, buffer: ReadingBuffer) -> None:
        self.clock = engine.clock
        self.source = engine.instruments[engine.procedure.source_role]
        self.meter = engine.instruments[engine.procedure.uut_role]
        self._engine = engine
        self._point = point
        self._attempt = attempt
        self._buffer = buffer
        self._seq: dict[str, int] = {}

    async def record(self, reading: Reading) -> None:
        seq = self._seq.get(reading.channel, 0)
        self._seq[reading.channel] = seq + 1
        e = self._engine
        await self._buffer.add({
            "run_id": e.run_id, "point_index": self._point.index, "attempt": self._attempt,
            "channel": reading.channel, "seq": seq, "t": reading.t, "value": reading.value, "unit": reading.unit,
            "flag": reading.flag,
        })
        e.emit(ReadingEvent(e.run_id, self._point.index, reading.channel, reading.t, reading.value, reading.unit))

    def show(self, phase: str, check: StabilityCheck | None = None) -> None:
        e = self._engine
        stab = None
        if check is not None:
            stab = {"n": check.n, "std": check.std, "slope_bound": check.slope_bound, "mean": check.mean,
                    "flag": check.flag, "failing": list(check.failing), "t": check.t}
        e.emit(PointPhaseEvent(e.run_id, self._point.index, self._point.label, phase, stab))

    async def confirm(self, question: str) -> bool:
        return await self._engine.confirm(question)


class RunEngine:
    def __init__(
        self,
        bench: Bench,
        procedure: DcVoltageProcedure,
        store: RunStore,
        clock: Clock,
        *,
        operator: Operator,
        sinks: Sequence[EventSink] = (),
        control: RunControl | None = None,
        stability_retries: int = 1,
    ) -> None:
        self.bench = bench
        self.procedure = procedure
        self.store = store
        self.clock = clock
        self.operator = operator
        self.sinks = list(sinks)
        self.control = control or RunControl()
        self.stability_retries = stability_retries
        self.run_id = 0
        self.instruments: dict[str, Any] = {}
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
        task = asyncio.current_task()
        if task is not None:
            self.control.bind(task)
        message = ""
        status = "failed"
        self.instruments = {n: build_driver(e) for n, e in self.bench.instruments.items()
                            if n in (self.procedure.source_role, self.procedure.uut_role)}
        try:
            try:
                for inst in self.instruments.values():
                    await inst.connect()
                # a resumed run may find the source still live from the killed process
                for problem in await self._safe_state_all():
                    raise RuntimeError(problem)
                await self.store.set_status(run_id, "running")
                await self.store.log_event(
                    run_id, "resume" if record.status != "created" else "start",
                    f"{len(record.completed_points)} of {record.planned_points} points complete; "
                    f"instruments: " + ", ".join(f"{n} {i.idn!r}" for n, i in self.instruments.items()))
                self.emit(RunStatusEvent(run_id, "running", f"{len(record.completed_points)} of "
                                         f"{record.planned_points} points already complete"))
                for point in self.procedure.points:
                    if point.index in record.completed_points:
                        continue
                    await self._checkpoint(point)
                    await self._run_point(point)
                status, message = "completed", "all points complete"
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
        return status

    async def _checkpoint(self, point: DcPoint) -> None:
        if self.control.paused:
            await self._safe_state_all()
            await self.store.log_event(self.run_id, "pause", f"paused before {point.label}; sources in standby")
            self.emit(RunStatusEvent(self.run_id, "paused", f"before {point.label}"))
            await self.control.wait_if_paused()
            await self.store.log_event(self.run_id, "resume", f"resumed at {point.label}")
            self.emit(RunStatusEvent(self.run_id, "running", f"resumed at {point.label}"))
        if self.control.abort_reason is not None:
            raise RunAborted(self.control.abort_reason)

    async def _run_point(self, point: DcPoint) -> None:
        proc = self.procedure
        tries = 0
        while True:
            attempt = await self.store.begin_attempt(self.run_id, point.index)
            buffer = ReadingBuffer(self.store)
            ctx = _PointContext(self, point, attempt, buffer)
            try:
                data = await proc.measure(ctx, point)
            except StabilityTimeout as exc:
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
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.shield(buffer.flush())
                    await asyncio.shield(self.store.end_attempt(self.run_id, point.index, attempt, "aborted"))
                raise
            meter = ctx.meter
            result = proc.evaluate(point, data.uut, data.ref, meter.resolution(point.range_))
            result_dict = result.to_dict()
            await self.store.complete_point(
                run_id=self.run_id, point_index=point.index, attempt=attempt, pending_readings=buffer.take(),
                stability=data.stability.to_dict(with_trace=False), result=result_dict,
                budget=[line for line in result_dict["budget"]["components"]],
            )
            self.emit(PointResultEvent(self.run_id, point.index, result_dict | {"label": point.label}))
            return
