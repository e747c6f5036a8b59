"""The thermometer comparison run by the runner: eight UUTs per point, stored, resumable, safe."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from daq.bench import load_bench
from daq.clock import VirtualClock
from procedures.loader import load_procedure
from runner.session import SessionOptions, run_session
from runner.simulated_truth import SimulatedTruth
from simulators.bench_server import start_bench
from simulators.temperature_bath import TemperatureBath

DATA = Path(__file__).resolve().parents[1] / "runner" / "data"


async def test_eight_thermometers_in_one_bath_through_the_runner(tmp_path):
    bench = load_bench(DATA / "thermometry-bench.toml")
    procedure = load_procedure(DATA / "thermometer-comparison.toml")
    assert procedure.kind == "thermometer_comparison"
    clock = VirtualClock()
    running = await start_bench(bench, clock)
    truth = SimulatedTruth(running.world, procedure)
    try:
        outcome = await run_session(running.bench, procedure,
                                    SessionOptions(db=str(tmp_path / "t.sqlite"), live=False, assume_yes=True),
                                    clock=clock, sinks=[truth])
    finally:
        await running.close()
    assert outcome.status == "completed"
    assert len(outcome.results) == 3 * 8
    for r in outcome.results:
        true = truth.truth[(r["point_index"], r["channel"])]
        assert abs(r["error"] - true) <= 2 * r["U"], (r["channel"], r["nominal"], r["error"], true, r["U"])
        assert [c["name"] for c in r["budget"]["components"]][-2:] == ["bath stability", "bath uniformity"]
    db = sqlite3.connect(tmp_path / "t.sqlite")
    # one result row per UUT channel and point; every cycle and the settling trace stored
    assert db.execute("SELECT COUNT(*) FROM point_results").fetchone()[0] == 24
    per_channel = db.execute("SELECT COUNT(*) FROM readings WHERE channel = 'uut:uut_b.4'").fetchone()[0]
    assert per_channel == 3 * procedure.repeats
    assert db.execute("SELECT COUNT(*) FROM readings WHERE channel = 'settle'").fetchone()[0] > 0
    bath = running.world["bath"]
    assert isinstance(bath, TemperatureBath)
    assert bath.heating is False  # safe state at the end: heating off
