"""Pause at a point boundary (sources to standby while paused), and readings committed as they arrive."""

from __future__ import annotations

import asyncio
import sqlite3

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.events import PointResultEvent, RunStatusEvent
from procedures.dc_voltage import parse_procedure
from results.store import RunStore
from runner.control import RunControl
from runner.engine import ReadingBuffer
from runner.session import SessionOptions, run_session
from simulators.bench_server import start_bench


async def test_pause_puts_sources_in_standby_and_resume_finishes(tmp_path, bench_toml, procedure_toml):
    clock = VirtualClock()
    running = await start_bench(parse_bench(bench_toml, source="bench.toml"), clock)
    control = RunControl()
    seen: dict[str, object] = {}
    cal = running.world.calibrator("calibrator")

    class PauseAfterSecondPoint:
        def emit(self, event):
            if isinstance(event, PointResultEvent) and event.point_index == 1:
                control.pause()
            if isinstance(event, RunStatusEvent) and event.status == "paused":
                seen["operating_while_paused"] = cal.operating
                seen["done_when_paused"] = event.message
                asyncio.get_running_loop().call_soon(control.resume)

        async def aclose(self):
            pass

    try:
        outcome = await run_session(running.bench, parse_procedure(procedure_toml, source="p.toml"),
                                    SessionOptions(db=str(tmp_path / "p.sqlite"), live=False, assume_yes=True),
                                    clock=clock, control=control, sinks=[PauseAfterSecondPoint()])
    finally:
        await running.close()
    assert outcome.status == "completed" and len(outcome.results) == 5
    assert seen["operating_while_paused"] is False
    assert "0 V on 10 V" in str(seen["done_when_paused"])  # paused before the third point
    kinds = [k for (k,) in sqlite3.connect(tmp_path / "p.sqlite").execute("SELECT kind FROM run_events")]
    assert kinds.index("pause") < kinds.index("resume")


async def test_reading_buffer_commits_by_age_and_by_size(tmp_path):
    store = await RunStore.open(tmp_path / "b.sqlite")
    run_id = await store.create_run(procedure_name="p", bench_name="b", bench_source="b", bench_toml="",
                                    procedure_source="p", procedure_toml="", options={},
                                    points=[{"nominal": 1.0, "unit": "V", "range": 1.0}])
    attempt = await store.begin_attempt(run_id, 0)

    def row(seq):
        return {"run_id": run_id, "point_index": 0, "attempt": attempt, "channel": "uut", "seq": seq,
                "t": float(seq), "value": 1.0, "unit": "V"}

    def committed():
        return sqlite3.connect(tmp_path / "b.sqlite").execute("SELECT COUNT(*) FROM readings").fetchone()[0]

    by_age = ReadingBuffer(store, batch_size=1000, max_age=0.0)
    await by_age.add(row(0))
    await by_age.add(row(1))
    assert committed() == 2  # each visible to another connection at once

    by_size = ReadingBuffer(store, batch_size=3, max_age=3600.0)
    for seq in range(2, 7):
        await by_size.add(row(seq))
    assert committed() == 5  # one batch of 3 committed, 2 still pending
    assert len(by_size.rows) == 2
    await store.close()


async def test_with_nobody_at_the_terminal_the_safe_answer_is_taken(monkeypatch):
    """stdin closed (a resumed run started from a script): a hazardous-voltage question is answered no."""
    import io
    import sys

    from runner.control import TerminalOperator

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    operator = TerminalOperator()
    assert await operator.confirm("apply 100 V?") is False
    assert await operator.choose("retry, skip or abort?", ("retry", "skip", "abort")) == "abort"


async def test_a_lone_reading_is_committed_by_the_timer_not_by_the_next_reading(tmp_path):
    """At NPLC 100 the next reading is 2 s away: the last one must not wait for it in memory."""
    store = await RunStore.open(tmp_path / "t.sqlite")
    run_id = await store.create_run(procedure_name="p", bench_name="b", bench_source="b", bench_toml="",
                                    procedure_source="p", procedure_toml="", options={},
                                    points=[{"nominal": 1.0, "unit": "V", "range": 1.0}])
    attempt = await store.begin_attempt(run_id, 0)
    buffer = ReadingBuffer(store, batch_size=64, max_age=0.05)
    await buffer.add({"run_id": run_id, "point_index": 0, "attempt": attempt, "channel": "uut", "seq": 0,
                      "t": 0.0, "value": 1.0, "unit": "V"})
    count = 0
    for _ in range(100):  # real time: this is about durability on the disk, not the bench's clock
        await asyncio.sleep(0.01)
        count = sqlite3.connect(tmp_path / "t.sqlite").execute("SELECT COUNT(*) FROM readings").fetchone()[0]
        if count:
            break
    assert count == 1
    assert await buffer.take() == []
    await store.close()
