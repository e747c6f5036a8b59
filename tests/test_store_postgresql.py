"""The same run recorded in the shared lab database (real PostgreSQL) instead of SQLite."""

from __future__ import annotations

import math

from daq.bench import parse_bench
from daq.clock import VirtualClock
from procedures.dc_voltage import parse_procedure
from results.store import RunStore
from runner.session import SessionOptions, run_session
from simulators.bench_server import start_bench


async def test_a_run_is_recorded_in_postgresql(postgres_url, bench_toml, procedure_toml):
    clock = VirtualClock()
    running = await start_bench(parse_bench(bench_toml, source="bench.toml"), clock)
    try:
        outcome = await run_session(running.bench, parse_procedure(procedure_toml, source="p.toml"),
                                    SessionOptions(db=postgres_url, live=False, assume_yes=True), clock=clock)
    finally:
        await running.close()
    assert outcome.status == "completed"
    store = await RunStore.open(postgres_url)
    try:
        results = await store.results(outcome.run_id)
        readings = await store.readings(outcome.run_id)
        attempts = await store.attempts(outcome.run_id)
    finally:
        await store.close()
    assert [r["point_index"] for r in results] == [0, 1, 2, 3, 4]
    assert sum(r["channel"] == "uut" for r in readings) == 25
    assert all(a["status"] == "complete" for a in attempts)
    for r, p in zip(results, outcome.procedure.points, strict=True):
        assert abs(r["error"] - running.world.true_error("dmm", p.nominal, p.range_)) <= 2 * r["U"]
        assert math.isfinite(r["u_c"])
