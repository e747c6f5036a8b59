"""Two processes must never drive one run: a run is claimed, kept alive by a heartbeat, released."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from sqlalchemy import update

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError
from procedures.dc_voltage import parse_procedure
from results.store import RunStore
from results.store.models import RunRow
from runner.session import SessionOptions, run_session
from simulators.bench_server import start_bench


async def _store_with_run(tmp_path):
    store = await RunStore.open(tmp_path / "c.sqlite")
    run_id = await store.create_run(procedure_name="p", bench_name="b", bench_source="b", bench_toml="",
                                    procedure_source="p", procedure_toml="", options={},
                                    points=[{"nominal": 1.0, "unit": "V", "range": 1.0}])
    return store, run_id


async def test_a_live_claim_is_respected_and_a_stale_or_dead_one_is_not(tmp_path):
    store, run_id = await _store_with_run(tmp_path)
    try:
        assert await store.claim(run_id, "benchpc:100") is None
        held = await store.claim(run_id, "laptop:200")
        assert held is not None and held.startswith("benchpc:100")
        # the holder stops beating: after the stale time anybody may take over
        async with store.sessions.begin() as s:
            await s.execute(update(RunRow).where(RunRow.id == run_id).values(heartbeat_at=time.time() - 60))
        assert await store.claim(run_id, "laptop:200") is None
        # a holder on this host whose process is gone (kill -9) is stale at once
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        await store.release(run_id, "laptop:200")
        assert await store.claim(run_id, f"{socket.gethostname()}:{dead.pid}") is None
        assert await store.claim(run_id, "laptop:200") is None
    finally:
        await store.close()


async def test_resuming_a_run_that_another_process_runs_is_refused_before_any_instrument(
        tmp_path, bench_toml, procedure_toml):
    clock = VirtualClock()
    running = await start_bench(parse_bench(bench_toml, source="bench.toml"), clock)
    servers = dict(running.servers)
    db = str(tmp_path / "r.sqlite")
    try:
        proc = parse_procedure(procedure_toml, source="p.toml")
        outcome = await run_session(running.bench, proc, SessionOptions(db=db, live=False, assume_yes=True),
                                    clock=clock)
        store = await RunStore.open(db)
        async with store.sessions.begin() as s:  # pretend another bench PC is running it right now
            await s.execute(update(RunRow).where(RunRow.id == outcome.run_id).values(
                status="running", owner="otherpc:4242", heartbeat_at=time.time()))
        await store.close()
        before = {name: srv.connections_accepted for name, srv in servers.items()}
        with pytest.raises(ConfigError, match="being run by otherpc:4242"):
            await run_session(running.bench, proc, SessionOptions(db=db, live=False, assume_yes=True),
                              clock=clock, resume=outcome.run_id)
        assert {name: srv.connections_accepted for name, srv in servers.items()} == before
    finally:
        await running.close()


async def test_a_database_this_program_did_not_write_is_refused_clearly(tmp_path):
    import sqlite3

    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)  # a runs table as an earlier version wrote it
    con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, created_at TEXT)")
    con.commit()
    con.close()
    with pytest.raises(ConfigError, match="not a database this program wrote"):
        await RunStore.open(db)
    con = sqlite3.connect(db)  # and it is left as it was
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["runs"]
    con.close()
