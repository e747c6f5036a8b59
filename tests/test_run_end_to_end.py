"""A whole run in virtual time: real TCP between drivers and simulators, a real SQLite file."""

from __future__ import annotations

import sqlite3

import pytest

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError
from daq.events import PointPhaseEvent
from procedures.dc_voltage import parse_procedure
from runner.control import AutoOperator, RunControl
from runner.session import SessionOptions, run_session
from simulators.bench_server import start_bench


async def _run(tmp_path, bench_toml, procedure_toml, *, seed=7, sinks=None, control=None, operator=None,
               prepare=None):
    clock = VirtualClock()
    bench = parse_bench(bench_toml, source="bench.toml")
    running = await start_bench(bench, clock, seed=seed)
    if prepare is not None:
        prepare(running)
    running.kept_servers = dict(running.servers)  # close() forgets them; tests read their logs after
    try:
        outcome = await run_session(
            running.bench, parse_procedure(procedure_toml, source="proc.toml"),
            SessionOptions(db=str(tmp_path / "runs.sqlite"), live=False, assume_yes=True),
            clock=clock, sinks=sinks, control=control, operator=operator,
        )
    finally:
        await running.close()
    return outcome, running


async def test_full_run_finds_the_true_errors_and_stores_everything(tmp_path, bench_toml, procedure_toml):
    outcome, running = await _run(tmp_path, bench_toml, procedure_toml)
    assert outcome.status == "completed"
    assert len(outcome.results) == 5
    world = running.world
    for r, p in zip(outcome.results, outcome.procedure.points, strict=True):
        true = world.true_error("dmm", p.nominal, p.range_)
        # a single point may honestly miss ±U (1 in 20) but never ±2U
        assert abs(r["error"] - true) <= 2 * r["U"], (p.label, r["error"], true, r["U"])
        assert r["U"] > 0 and r["k"] >= 2.0
        assert r["decision"]["rule"].startswith("ILAC-G8:2019")
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    per_point = dict(db.execute("SELECT point_index, COUNT(*) FROM readings WHERE channel IN ('uut', 'ref') "
                                "GROUP BY point_index").fetchall())
    assert per_point == {i: 10 for i in range(5)}  # 5 repeats x (uut, ref)
    # the settling readings are raw readings too: kept, with the calibrator's settled flag, and they
    # are exactly the trace the stability decision saw
    for idx, samples in db.execute("SELECT point_index, json_extract(stability_json, '$.samples') FROM point_attempts"):
        settle = db.execute("SELECT COUNT(*), SUM(flag) FROM readings WHERE point_index = ? AND channel = 'settle'",
                            (idx,)).fetchone()
        assert settle[0] == samples and settle[1] >= 1
    lines = db.execute("SELECT COUNT(*) FROM budget_lines").fetchone()[0]
    assert lines == 5 * 4
    reasons = [row[0] for row in db.execute("SELECT json_extract(stability_json, '$.reason') FROM point_attempts")]
    assert len(reasons) == 5 and all(r.startswith("stable after") for r in reasons)
    # the stored mean is the mean of the stored readings: nothing computed from unrecorded data
    for idx, uut_mean in db.execute("SELECT point_index, uut_mean FROM point_results"):
        vals = [v for (v,) in db.execute(
            "SELECT value FROM readings WHERE point_index = ? AND channel = 'uut'", (idx,))]
        assert uut_mean == pytest.approx(sum(vals) / len(vals), rel=1e-12, abs=1e-15)
    assert world.calibrator("calibrator").operating is False  # left in standby at the end


class _AbortWhen:
    def __init__(self, control: RunControl, point_index: int, phase: str) -> None:
        self.control, self.point_index, self.phase = control, point_index, phase

    def emit(self, event):
        if isinstance(event, PointPhaseEvent) and event.point_index == self.point_index and event.phase == self.phase:
            self.control.abort("test abort")

    async def aclose(self):
        pass


async def test_abort_mid_settle_puts_the_calibrator_in_standby(tmp_path, bench_toml, procedure_toml):
    control = RunControl()
    outcome, running = await _run(tmp_path, bench_toml, procedure_toml, control=control,
                                  sinks=[_AbortWhen(control, 3, "settling")])
    assert outcome.status == "aborted"
    cal = running.world.calibrator("calibrator")
    assert cal.operating is False
    commands = [c for _, c in running.kept_servers["calibrator"].commands]
    assert commands[-3:] == ["STBY", "OUT 0 V", "OPER?"]
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    assert db.execute("SELECT status FROM runs").fetchone()[0] == "aborted"
    assert db.execute("SELECT COUNT(*) FROM point_results").fetchone()[0] == 3
    assert db.execute("SELECT status FROM point_attempts WHERE point_index = 3").fetchone()[0] == "aborted"


async def test_an_instrument_failure_mid_run_leaves_the_calibrator_in_standby(tmp_path, bench_toml, procedure_toml):
    holder = {}

    class BreakDmm:
        def emit(self, event):
            if isinstance(event, PointPhaseEvent) and event.point_index == 1 and event.phase.startswith("reading 2"):
                # the DMM's input suddenly sees 1 kV: the driver reports an overload mid-point
                holder["running"].world.dmm("dmm").connect_input("input", lambda t: 1000.0)

        async def aclose(self):
            pass

    with pytest.raises(Exception, match="overload"):
        await _run(tmp_path, bench_toml, procedure_toml, sinks=[BreakDmm()],
                   prepare=lambda r: holder.setdefault("running", r))
    running = holder["running"]
    assert running.world.calibrator("calibrator").operating is False
    db = sqlite3.connect(tmp_path / "runs.sqlite")
    status, message = db.execute("SELECT status, message FROM runs").fetchone()
    assert status == "failed" and "overload" in message


async def test_operator_declining_a_hazardous_voltage_never_applies_it(tmp_path, bench_toml, procedure_toml):
    proc = procedure_toml + '\n[[points]]\nrange = "100 V"\nsetpoints = ["100 V"]\n'
    operator = AutoOperator(answer=False)
    outcome, running = await _run(tmp_path, bench_toml, proc, operator=operator)
    assert outcome.status == "aborted"
    assert operator.asked and "hazardous" in operator.asked[0]
    commands = [c for _, c in running.kept_servers["calibrator"].commands]
    assert not any(c.startswith("OUT 100") for c in commands)
    assert running.world.calibrator("calibrator").operating is False
    assert len(outcome.results) == 5  # the safe points were done


@pytest.mark.parametrize(
    ("bench_edit", "proc_edit", "field", "words"),
    [
        (None, ('setpoints = ["1 V", "-1 V"]', 'setpoints = ["1 V", "-1 Vx"]'), "points[0].setpoints[1]",
         "unknown unit"),
        (None, ('setpoints = ["0 V", "10 V", "-10 V"]', 'setpoints = ["0 V", "1100 V"]'), "points[1].setpoints[1]",
         "beyond the calibrator"),
        (('driver = "keysight34465a"', 'driver = "keysight9999"'), None, "instruments.dmm.driver", "unknown driver"),
        (None, ('setpoints = ["1 V", "-1 V"]', 'setpoints = ["1 V", "3 A"]'), "points[0].setpoints[1]",
         "not convertible"),
    ],
)
async def test_bad_input_is_refused_before_any_instrument_is_touched(
    tmp_path, bench_toml, procedure_toml, bench_edit, proc_edit, field, words
):
    clock = VirtualClock()
    running = await start_bench(parse_bench(bench_toml, source="bench.toml"), clock)
    try:
        b_text = running.bench.text if bench_edit is None else bench_toml.replace(*bench_edit)
        bench = parse_bench(b_text, source="bench.toml").with_resources(running.resources)
        with pytest.raises(ConfigError) as info:
            proc = parse_procedure(procedure_toml if proc_edit is None else procedure_toml.replace(*proc_edit),
                                   source="proc.toml")
            await run_session(bench, proc, SessionOptions(db=str(tmp_path / "x.sqlite"), live=False), clock=clock)
        assert field in str(info.value) and words in str(info.value)
        assert "fix:" in str(info.value)
        for server in running.servers.values():
            assert server.connections_accepted == 0
    finally:
        await running.close()
    # nothing was written either: no run row
    db_path = tmp_path / "x.sqlite"
    if db_path.exists():
        assert sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
