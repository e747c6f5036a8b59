"""The runner's own reading-recording path, reached from a benchmark.

What a calibration run does with each raw reading is: the procedure hands a `Reading` to
its point context, which numbers it, turns it into a row, emits a `ReadingEvent` and adds
the row to a `ReadingBuffer` (64 rows or 0.5 s), which commits it with
`RunStore.add_readings`. `RunRecorder` builds that chain from the real parts (a `RunEngine`
planned with `runner/data/demo-bench.toml` and `runner/data/dcv-34465a.toml`, one attempt
of its first point, the engine's point context) so the benchmarks time what a run really
does rather than a copy that could drift from it. The point context is a private class of
the engine; if it changes shape, the benchmarks fail loudly instead of measuring a stale path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH_FILE = REPO / "runner" / "data" / "demo-bench.toml"
PROCEDURE_FILE = REPO / "runner" / "data" / "dcv-34465a.toml"


async def open_store(path: Path, *, pooled: bool = True) -> Any:
    """`RunStore.open(path)` as shipped (pooled), or over `NullPool` (a connection per batch, as it once was)."""
    from results.store import RunStore

    return await RunStore.open(path, pooled=pooled)


class RunRecorder:
    """One planned run, one open attempt of its first point, recording as the engine does."""

    def __init__(self, store: Any, engine: Any, context: Any, buffer: Any) -> None:
        self.store = store
        self.engine = engine
        self.context = context
        self.buffer = buffer
        self.run_id: int = engine.run_id

    @classmethod
    async def open(cls, db_path: Path, clock: Any, *, pooled: bool = True) -> RunRecorder:
        from daq.bench import load_bench
        from procedures.dc_voltage import load_procedure
        from runner.control import AutoOperator
        from runner.engine import ReadingBuffer, RunEngine, _PointContext

        store = await open_store(db_path, pooled=pooled)
        procedure = load_procedure(PROCEDURE_FILE)
        engine = RunEngine(load_bench(BENCH_FILE), procedure, store, clock, operator=AutoOperator())
        await engine.create({"benchmark": True})
        point = procedure.points[0]
        attempt = await store.begin_attempt(engine.run_id, point.index)
        # the point context looks its instruments up by role; recording never touches them
        engine.instruments = {procedure.source_role: None, procedure.uut_role: None}
        buffer = ReadingBuffer(store)
        return cls(store, engine, _PointContext(engine, point, attempt, buffer), buffer)

    async def record(self, reading: Any) -> None:
        await self.context.record(reading)

    async def flush(self) -> None:
        await self.buffer.flush()

    async def stored_readings(self) -> int:
        from sqlalchemy import func, select

        from results.store.models import ReadingRow

        async with self.store.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(ReadingRow)
                                      .where(ReadingRow.run_id == self.run_id)) or 0)

    async def close(self) -> None:
        await self.store.close()
