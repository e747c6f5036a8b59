"""Faults injected in the simulators, on TCP and on a pseudo-terminal; the runner must survive them.

Each run is driven by the engine in virtual time against the served simulators; a fault is
armed from a sink at a known phase of a known point, so it fires at one predictable command.
After the run: the run completed, the faulty point was repeated and has exactly one result
(from the new attempt), the failed attempt is kept with status "fault" and its reason, its
readings stay stored under it, nothing is duplicated, and every result still agrees with the
simulator's true error within 2U.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from conftest import BENCH_TOML, PROCEDURE_TOML

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError
from daq.events import PointPhaseEvent
from procedures.dc_voltage import parse_procedure
from results.store import RunStore
from runner.control import AutoOperator
from runner.engine import RunEngine
from simulators.bench_server import RunningBench, start_bench
from simulators.faults import FaultSchedule

# three points keep each run short: 1 V, -1 V on the 1 V range, 10 V on the 10 V range
PROCEDURE = PROCEDURE_TOML.replace('setpoints = ["0 V", "10 V", "-10 V"]', 'setpoints = ["10 V"]')
FAULTY = 1  # the point (-1 V) where the faults are armed


class ArmAt:
    """A sink that runs `action(running)` once, when point `index` enters a phase starting with `phase`
    (for "settling": at the `nth` settling event, i.e. after nth - 1 samples)."""

    def __init__(self, running: RunningBench, index: int, phase: str, action: Any, nth: int = 1) -> None:
        self.running, self.index, self.phase, self.action, self.nth = running, index, phase, action, nth
        self.seen = 0
        self.done = False

    def emit(self, event: Any) -> None:
        if self.done or not isinstance(event, PointPhaseEvent) or event.point_index != self.index:
            return
        if event.phase.startswith(self.phase):
            self.seen += 1
            if self.seen >= self.nth:
                self.done = True
                self.action(self.running)

    async def aclose(self) -> None:
        pass


class WatchingOperator(AutoOperator):
    """Scripted answers; notes the calibrator's state at the moment each question is asked."""

    def __init__(self, running: RunningBench, choices: list[str]) -> None:
        super().__init__(True, choices)
        self.running = running
        self.calibrator_when_asked: list[tuple[bool, float]] = []

    async def choose(self, question: str, options: Any) -> str:
        cal = self.running.world.calibrator("calibrator")
        self.calibrator_when_asked.append((cal.operating, cal.output_at(cal.clock.now())))
        return await super().choose(question, options)


def _bench_text(timeout: float | None = None, extra_dmm: str = "", noise: float | None = None) -> str:
    text = BENCH_TOML
    if noise is not None:
        text = text.replace("noise_ppm_of_range = 0.4", f"noise_ppm_of_range = {noise}")
    if timeout is not None:
        text = text.replace('serial = "SIM34465A-0001"\n', f'serial = "SIM34465A-0001"\ntimeout = {timeout}\n')
    if extra_dmm:
        text = text.replace("[instruments.dmm.simulation]\n", f"[instruments.dmm.simulation]\n{extra_dmm}\n")
    return text


async def _run(tmp_path, bench_text: str, *, arm=None, pty: bool = False, operator=None, store_name="f.sqlite",
               running: RunningBench | None = None, run_id: int | None = None, **engine_kw):
    clock = running.clock if running is not None else VirtualClock()
    own = running is None
    if running is None:
        running = await start_bench(parse_bench(bench_text, source="bench.toml"), clock, seed=7)
    bench = running.bench
    if pty:
        bench = bench.with_resources({"dmm": await running.serve_pty("dmm")})
    store = await RunStore.open(tmp_path / store_name)
    try:
        operator = operator(running) if callable(operator) else (operator or AutoOperator(True))
        sinks = [ArmAt(running, *a) for a in (arm or [])]
        engine = RunEngine(bench, parse_procedure(PROCEDURE, source="p.toml"), store, clock, operator=operator,
                           sinks=sinks, **engine_kw)
        if run_id is None:
            run_id = await engine.create({})
        status = await engine.execute(run_id)
        return {"status": status, "results": await store.results(run_id), "attempts": await store.attempts(run_id),
                "events": await store.events(run_id), "running": running, "operator": operator, "run_id": run_id,
                "procedure": engine.procedure, "db": tmp_path / store_name,
                "servers": {**running.servers, **{f"{k}-pty": v for k, v in running.pty_servers.items()}}}
    finally:
        await store.close()
        if own:
            await running.close()


def _arm(name: str, kind: str, command: str, **kw: Any):
    return lambda running: running.faults(name).arm(kind, command, **kw)


def _check_recovered(out: dict[str, Any], point: int, words: str, *, measured_before: bool = True) -> None:
    assert out["status"] == "completed"
    results = out["results"]
    assert [r["point_index"] for r in results] == [0, 1, 2]  # exactly one result per point
    attempts = [a for a in out["attempts"] if a["point_index"] == point]
    assert [a["status"] for a in attempts] == ["fault", "complete"], attempts
    assert words in attempts[0]["stability"]["reason"], attempts[0]
    assert results[point]["attempt"] == 2
    assert any(e["kind"] == "fault" and words in e["message"] for e in out["events"])
    assert any(e["kind"] == "reconnect" for e in out["events"])
    db = sqlite3.connect(out["db"])
    dup = db.execute("SELECT COUNT(*) FROM (SELECT 1 FROM readings GROUP BY point_index, attempt, channel, seq "
                     "HAVING COUNT(*) > 1)").fetchone()[0]
    assert dup == 0
    # the failed attempt's readings are kept under it; the result uses only the new attempt's repeats
    kept = db.execute("SELECT COUNT(*) FROM readings WHERE point_index = ? AND attempt = 1", (point,)).fetchone()[0]
    assert (kept > 0) == measured_before
    repeats = out["procedure"].repeats
    per_attempt = dict(db.execute("SELECT attempt, COUNT(*) FROM readings WHERE point_index = ? AND channel = 'uut' "
                                  "GROUP BY attempt", (point,)).fetchall())
    assert per_attempt[2] == repeats
    uut_mean = db.execute("SELECT uut_mean FROM point_results WHERE point_index = ?", (point,)).fetchone()[0]
    vals = [v for (v,) in db.execute("SELECT value FROM readings WHERE point_index = ? AND attempt = 2 "
                                     "AND channel = 'uut'", (point,))]
    assert uut_mean == pytest.approx(sum(vals) / len(vals), rel=1e-12, abs=1e-15)
    world = out["running"].world
    for r, p in zip(results, out["procedure"].points, strict=True):
        assert abs(r["error"] - world.true_error("dmm", p.nominal, p.range_)) <= 2 * r["U"], (p.label, r)
    assert world.calibrator("calibrator").operating is False


# (kind, instrument, command, phase, nth, arm options, bench edits, words in the reason)
CASES = {
    "drop": ("dmm", "READ?", "reading 2", 1, {}, {}, "TransportError"),
    "delay": ("dmm", "READ?", "reading 2", 1, {"delay": 1.0}, {"timeout": 0.2}, "TransportTimeout"),
    "garbage": ("dmm", "READ?", "reading 2", 1, {}, {}, "unreadable reply"),
    "truncate": ("dmm", "READ?", "reading 2", 1, {}, {}, "Transport"),
    "stuck": ("dmm", "READ?", "settling", 12, {"count": 10}, {"noise": 1.0},
              "stuck reading"),
    "error": ("dmm", "CONF", "configuring", 1, {"code": -222, "message": "Data out of range"}, {},
              "Data out of range"),
    "power_cycle": ("dmm", "READ?", "reading 2", 1, {}, {}, "TransportError"),
}
PTY_TIMEOUT = 0.2  # a pty has no connection to drop: a lost reply is found by the (short) timeout


@pytest.mark.parametrize("kind", list(CASES))
async def test_each_fault_over_tcp_is_recovered_by_repeating_the_point(tmp_path, kind):
    name, command, phase, nth, options, edits, words = CASES[kind]
    out = await _run(tmp_path, _bench_text(**edits), arm=[(FAULTY, phase, _arm(name, kind, command, **options), nth)])
    assert out["running"].faults(name).fired(kind) >= 1
    _check_recovered(out, FAULTY, words, measured_before=kind != "error")
    if kind == "power_cycle":
        assert out["running"].instrument("dmm").power_cycles == 1
        assert any(e["kind"] == "instrument_errors" and "Power on" in e["message"] for e in out["events"])


@pytest.mark.parametrize("kind", list(CASES))
async def test_each_fault_over_a_pty_is_recovered_by_repeating_the_point(tmp_path, kind):
    name, command, phase, nth, options, edits, words = CASES[kind]
    if kind in ("drop", "truncate", "power_cycle"):
        words = "TransportTimeout"  # on a serial line these show as silence
    out = await _run(tmp_path, _bench_text(timeout=PTY_TIMEOUT, noise=edits.get("noise")), pty=True,
                     arm=[(FAULTY, phase, _arm(name, kind, command, **options), nth)])
    assert out["servers"]["dmm-pty"].replies_sent > 0
    assert out["servers"]["dmm"].connections_accepted == 0  # the dmm really was on the pty
    _check_recovered(out, FAULTY, words, measured_before=kind != "error")
    if kind == "delay":  # the late reply was discarded (IEEE 488.2), and that was journalled
        assert any(e["kind"] == "instrument_errors" and "INTERRUPTED" in e["message"] for e in out["events"])


def test_power_on_state_of_the_models():
    from simulators.calibrator5522a import Calibrator5522A
    from simulators.dmm34465a import Dmm34465A

    clock = VirtualClock()
    cal = Calibrator5522A("cal", clock)
    cal.set_output(10.0)
    cal.operate()
    cal.errors.push(-222, "Data out of range")
    cal.power_on()
    assert (cal.operating, cal.nominal, cal.output_at(clock.now())) == (False, 0.0, 0.0)
    assert cal.errors.snapshot() == [(-500, "Power on")]
    dmm = Dmm34465A("dmm", clock)
    dmm.auto_range, dmm.range, dmm.nplc, dmm.sample_count = False, 1.0, 100.0, 5
    dmm.last_replies["READ?"] = "+1.0E+00"
    dmm.power_on()
    assert (dmm.auto_range, dmm.range, dmm.nplc, dmm.sample_count) == (True, 10.0, 10.0, 1)
    assert dmm.errors.snapshot() == [(-500, "Power on")] and dmm.last_replies == {}


async def test_a_power_cycled_calibrator_is_set_up_again(tmp_path):
    out = await _run(tmp_path, _bench_text(),
                     arm=[(FAULTY, "reading 2", _arm("calibrator", "power_cycle", "OUT?"))])
    _check_recovered(out, FAULTY, "TransportError")
    assert out["running"].instrument("calibrator").power_cycles == 1


async def _three_drops(tmp_path, choices: list[str], **kw: Any) -> dict[str, Any]:
    return await _run(tmp_path, _bench_text(), arm=[(FAULTY, "reading 2", _arm("dmm", "drop", "READ?", count=3))],
                      operator=lambda running: WatchingOperator(running, choices), **kw)


async def test_after_repeated_faults_the_source_is_safe_then_retry_measures_the_point(tmp_path):
    out = await _three_drops(tmp_path, ["retry"])
    assert out["operator"].calibrator_when_asked == [(False, 0.0)]  # standby, 0 V, before the question
    assert "failed 3 times" in out["operator"].chosen[0][0]
    assert out["status"] == "completed"
    statuses = [a["status"] for a in out["attempts"] if a["point_index"] == FAULTY]
    assert statuses == ["fault", "fault", "fault", "complete"]
    assert [r["point_index"] for r in out["results"]] == [0, 1, 2]
    assert any(e["kind"] == "prompt" and e["message"].endswith("-> retry") for e in out["events"])


async def test_skip_records_the_point_as_skipped_and_the_run_completes(tmp_path):
    out = await _three_drops(tmp_path, ["skip"])
    assert out["operator"].calibrator_when_asked == [(False, 0.0)]
    assert out["status"] == "completed"
    assert [r["point_index"] for r in out["results"]] == [0, 2]
    statuses = [a["status"] for a in out["attempts"] if a["point_index"] == FAULTY]
    assert statuses == ["fault", "fault", "fault", "skipped"]
    db = sqlite3.connect(out["db"])
    assert "skipped point" in db.execute("SELECT message FROM runs").fetchone()[0]


async def test_abort_ends_the_run_aborted_and_resume_measures_the_point(tmp_path):
    clock = VirtualClock()
    running = await start_bench(parse_bench(_bench_text(), source="bench.toml"), clock, seed=7)
    try:
        out = await _three_drops(tmp_path, ["abort"], running=running)
        assert out["operator"].calibrator_when_asked == [(False, 0.0)]
        assert out["status"] == "aborted"
        assert [r["point_index"] for r in out["results"]] == [0]
        assert running.world.calibrator("calibrator").operating is False
        again = await _run(tmp_path, "", running=running, run_id=out["run_id"])
        assert again["status"] == "completed"
        assert [r["point_index"] for r in again["results"]] == [0, 1, 2]
        statuses = [a["status"] for a in again["attempts"] if a["point_index"] == FAULTY]
        assert statuses == ["fault", "fault", "fault", "complete"]
    finally:
        await running.close()


async def test_resume_passes_over_skipped_points_unless_asked(tmp_path):
    clock = VirtualClock()
    running = await start_bench(parse_bench(_bench_text(), source="bench.toml"), clock, seed=7)
    try:
        arm = [(FAULTY, "reading 2", _arm("dmm", "drop", "READ?", count=3)),
               (2, "reading 2", _arm("dmm", "drop", "READ?", count=3))]
        out = await _run(tmp_path, "", running=running, arm=arm, operator=AutoOperator(True, ["skip", "abort"]))
        assert out["status"] == "aborted" and [r["point_index"] for r in out["results"]] == [0]
        again = await _run(tmp_path, "", running=running, run_id=out["run_id"])
        assert again["status"] == "completed"
        assert [r["point_index"] for r in again["results"]] == [0, 2]  # the skipped point stays skipped
        redo = await _run(tmp_path, "", running=running, run_id=out["run_id"], redo_skipped=True)
        assert [r["point_index"] for r in redo["results"]] == [0, 1, 2]
    finally:
        await running.close()


def test_fault_schedule_fires_after_and_for_count():
    s = FaultSchedule()
    s.arm("garbage", "READ?", after=2, count=2)
    fired = [s.take(c) is not None for c in ["READ?", "CONF:VOLT:DC 10", "READ?", "READ?", "READ?", "READ?"]]
    assert fired == [False, False, False, True, True, False]
    s.arm("error", "CONF")
    assert s.take("CONF? ") is None and s.take(":conf:volt:dc 10") is not None
    assert s.log == [("garbage", "READ?"), ("garbage", "READ?"), ("error", ":conf:volt:dc 10")]


async def test_faults_scheduled_from_the_bench_file(tmp_path):
    # the 30th READ? of the run is dropped: somewhere in the run a point is repeated, nothing else changes
    out = await _run(tmp_path, _bench_text(extra_dmm='faults = [{ kind = "drop", command = "READ?", after = 29 }]'))
    assert out["running"].faults("dmm").fired("drop") == 1
    point = next(a["point_index"] for a in out["attempts"] if a["status"] == "fault")
    _check_recovered(out, point, "TransportError")


@pytest.mark.parametrize(("entry", "field", "words"), [
    ('{ kind = "melt" }', "faults[0].kind", "unknown fault kind"),
    ('{ kind = "drop", count = 0 }', "faults[0].count", "integer >= 1"),
    ('{ kind = "drop" }, { kind = "delay", delay = -1 }', "faults[1].delay", "seconds > 0"),
    ('{ kind = "drop", when = 3 }', "faults[0].when", "unknown field"),
    ('{ kind = "error", code = "x" }', "faults[0].code", "integer error code"),
])
async def test_bad_fault_entries_in_the_bench_file_are_refused(entry, field, words):
    text = _bench_text(extra_dmm=f"faults = [{entry}]")
    with pytest.raises(ConfigError) as info:
        await start_bench(parse_bench(text, source="bench.toml"), VirtualClock())
    assert f"instruments.dmm.simulation.{field}" in str(info.value) and words in str(info.value)
    assert "fix:" in str(info.value)


async def test_operators_choose(monkeypatch):
    auto = AutoOperator(True, ["skip", "bogus"])
    assert await auto.choose("q1", ("retry", "skip", "abort")) == "skip"
    assert await auto.choose("q2", ("retry", "skip", "abort")) == "abort"  # not an option: the safe way out
    assert await auto.choose("q3", ("retry", "skip", "abort")) == "abort"  # script used up: unattended abort
    import rich.prompt

    from runner.control import TerminalOperator

    calls = []

    class Display:
        def suspend(self):
            calls.append("suspend")

        def restore(self):
            calls.append("restore")

    monkeypatch.setattr(rich.prompt.Prompt, "ask", classmethod(lambda cls, q, choices: (calls.append(choices),
                                                                                        "retry")[1]))
    assert await TerminalOperator(Display()).choose("again?", ("retry", "skip", "abort")) == "retry"
    assert calls == ["suspend", ["retry", "skip", "abort"], "restore"]


def test_stuck_reading_check_flags_only_what_the_noise_makes_impossible():
    import numpy as np

    from runner.engine import StuckReadingCheck

    rng = np.random.default_rng(5)
    for ratio in (0.3, 1.0, 4.0):  # noise / resolution: honest readings, equal values or not, never flagged
        check = StuckReadingCheck(1.0)
        assert not any(check.add(float(v)) for v in np.round(rng.normal(0.0, ratio, 3000)))
    check = StuckReadingCheck(1.0)
    for v in np.round(rng.normal(0.0, 10.0, 20)):
        assert check.add(float(v)) is None
    flagged = [i for i in range(10) if check.add(3.0)]
    assert flagged and flagged[0] <= 8 and "stuck reading" in str(check.add(3.0))


@pytest.mark.parametrize("kind", list(CASES))
async def test_each_fault_over_visa_is_recovered_by_repeating_the_point(tmp_path, kind):
    """The same faults with the DMM reached through pyvisa-py (`visa = true`), as a GPIB or USB
    instrument would be: the VISA transport's timeout, reconnect and error mapping carry the recovery."""
    name, command, phase, nth, options, edits, words = CASES[kind]
    if kind in ("drop", "truncate", "power_cycle"):
        words = "Transport"  # pyvisa-py reports a closed socket as an I/O error or a timeout
    text = _bench_text(timeout=0.5, noise=edits.get("noise")).replace(
        'serial = "SIM34465A-0001"\n', 'serial = "SIM34465A-0001"\nvisa = true\n')
    out = await _run(tmp_path, text, arm=[(FAULTY, phase, _arm(name, kind, command, **options), nth)])
    assert out["running"].faults(name).fired(kind) >= 1
    _check_recovered(out, FAULTY, words, measured_before=kind != "error")
