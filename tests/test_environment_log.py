"""The environmental conditions of every point (ISO/IEC 17025 7.8.4.1), from the bench's room monitor.

Real runs in virtual time: the drivers speak to the simulators over real transports (the room's
HMT330 on a pseudo-terminal), the results land in a real SQLite file.
"""

from __future__ import annotations

import statistics
import time

import pytest

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError
from daq.events import PointPhaseEvent
from procedures.dc_voltage import parse_procedure
from runner.control import RunControl
from runner.engine import validate_before_start
from runner.session import SessionOptions, packaged, run_session
from simulators.bench_server import RunningBench, start_bench

# Vaisala HMT330 stated accuracy (datasheet): +-0.2 degC at +20 degC; +-(1.0 + 0.008 x reading) %RH
# for 0...90 %RH at +15...+25 degC.
T_ACCURACY = 0.2


def rh_accuracy(reading: float) -> float:
    return 1.0 + 0.008 * reading


DEMO_BENCH = packaged("demo-bench.toml").read_text(encoding="utf-8")


def _short(procedure_toml: str) -> str:
    """Two points are enough to show a per-point log, and keep the tests fast."""
    short = procedure_toml.replace('[[points]]\nrange = "10 V"\nsetpoints = ["0 V", "10 V", "-10 V"]\n', "")
    assert short != procedure_toml
    return short


async def _run(tmp_path, bench_text: str, procedure_text: str, *, prepare=None, **session):
    clock = VirtualClock()
    running = await start_bench(parse_bench(bench_text, source="bench.toml"), clock)
    if prepare is not None:
        prepare(running)
    db = tmp_path / "runs.sqlite"
    try:
        outcome = await run_session(
            running.bench, parse_procedure(procedure_text, source="proc.toml"),
            SessionOptions(db=str(db), live=False, assume_yes=True), clock=clock, **session,
        )
    finally:
        await running.close()
    return outcome, running, db


async def _readings(db, run_id: int) -> list[dict]:
    from results.store import RunStore

    store = await RunStore.open(db)
    try:
        return await store.readings(run_id)
    finally:
        await store.close()


async def test_each_point_states_the_room_it_was_measured_in(tmp_path, procedure_toml):
    outcome, running, db = await _run(tmp_path, DEMO_BENCH, _short(procedure_toml))
    assert outcome.status == "completed"
    assert len(outcome.results) == 2
    readings = await _readings(db, outcome.run_id)
    world = running.world
    for r in outcome.results:
        env = r["environment"]
        assert env["source"] == "VAISALA HMT330 SIMHMT330-0001"
        assert "failures" not in env
        assert set(env) == {"temperature", "humidity", "source"}
        for quantity, unit, accuracy in (("temperature", "°C", lambda _: T_ACCURACY),
                                         ("humidity", "%RH", rh_accuracy)):
            stats = env[quantity]
            assert stats["unit"] == unit
            assert stats["min"] <= stats["mean"] <= stats["max"]
            raw = [x for x in readings if x["point_index"] == r["point_index"] and x["channel"] == f"env.{quantity}"]
            assert len(raw) == 2  # the start and the end of the point, kept as raw readings
            # the stated mean is the mean of the stored readings: nothing from unrecorded data
            assert stats["mean"] == pytest.approx(statistics.fmean(x["value"] for x in raw), abs=1e-12)
            true = statistics.fmean(world.terminal_at(f"room.{quantity}", x["t"]) for x in raw)
            assert abs(stats["mean"] - true) <= accuracy(true), (quantity, stats, true)
        # the simulated room: 23 degC, 45 %RH
        assert env["temperature"]["mean"] == pytest.approx(23.0, abs=0.3)
        assert env["humidity"]["mean"] == pytest.approx(45.0, abs=1.5)
    # the point's readings come between the two room readings
    first = min(x["t"] for x in readings if x["point_index"] == 0 and x["channel"] == "env.temperature")
    last = max(x["t"] for x in readings if x["point_index"] == 0 and x["channel"] == "env.temperature")
    uut = [x["t"] for x in readings if x["point_index"] == 0 and x["channel"] == "uut"]
    assert first <= min(uut) and max(uut) <= last


async def test_a_bench_without_a_monitor_logs_no_environment(tmp_path, bench_toml, procedure_toml):
    outcome, _, db = await _run(tmp_path, bench_toml, _short(procedure_toml))
    assert outcome.status == "completed"
    assert outcome.results and all("environment" not in r for r in outcome.results)
    assert not [x for x in await _readings(db, outcome.run_id) if x["channel"].startswith("env.")]


async def test_a_failing_monitor_is_recorded_and_the_run_goes_on(tmp_path, procedure_toml):
    bench = DEMO_BENCH.replace('serial = "SIMHMT330-0001"', 'serial = "SIMHMT330-0001"\ntimeout = 0.3')

    def lose_one_reading(running: RunningBench) -> None:
        running.faults("room").arm("drop", "SEND", after=1)  # the second room reading is lost

    outcome, _, db = await _run(tmp_path, bench, _short(procedure_toml), prepare=lose_one_reading)
    assert outcome.status == "completed"
    first, second = outcome.results
    failures = first["environment"]["failures"]
    assert len(failures) == 1 and failures[0].startswith("end: TransportTimeout"), failures
    assert "no reply to 'SEND'" in failures[0]
    assert first["environment"]["temperature"]["min"] == first["environment"]["temperature"]["max"]  # one reading
    # the monitor is re-established before its next reading
    assert "failures" not in second["environment"]
    assert second["environment"]["source"] == "VAISALA HMT330 SIMHMT330-0001"


async def test_a_monitor_that_never_answers_is_recorded_on_every_point(tmp_path, procedure_toml):
    def unplug(running: RunningBench) -> None:
        running.faults("room").arm("garbage", None, count=10_000)

    outcome, _, _ = await _run(tmp_path, DEMO_BENCH, _short(procedure_toml), prepare=unplug)
    assert outcome.status == "completed"
    for r in outcome.results:
        env = r["environment"]
        assert set(env) == {"source", "failures"}
        assert env["source"].startswith("room (not identified; vaisala_hmt330, serial SIMHMT330-0001)")
        assert [f.split(":", 1)[0] for f in env["failures"]] == ["start", "end"]


class _AbortWhileSettling:
    def __init__(self, control: RunControl) -> None:
        self.control = control

    def emit(self, event) -> None:
        if isinstance(event, PointPhaseEvent) and event.phase == "settling":
            self.control.abort("test abort")


async def test_a_slow_monitor_never_delays_the_safe_state(tmp_path, procedure_toml):
    def slow_room(running: RunningBench) -> None:
        running.faults("room").arm("delay", "SEND", delay=3.0, count=10)  # the start reading hangs

    control = RunControl()
    started = time.monotonic()
    outcome, running, _ = await _run(tmp_path, DEMO_BENCH, _short(procedure_toml), prepare=slow_room,
                                     control=control, sinks=[_AbortWhileSettling(control)])
    assert outcome.status == "aborted"
    assert time.monotonic() - started < 2.5  # nobody waited for the room's reply
    assert running.world.calibrator("calibrator").operating is False


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (('monitor = "room"', 'monitor = "lab"'), "environment.monitor", "no instrument named 'lab'"),
        (('monitor = "room"', "monitor = 3"), "environment.monitor", "expected str"),
        (('monitor = "room"', 'monitor = "room"\nlog = true'), "environment.log", "unknown field"),
    ],
)
def test_a_bad_environment_table_names_file_field_and_fix(change, field, words):
    text = DEMO_BENCH.replace(*change)
    assert text != DEMO_BENCH
    with pytest.raises(ConfigError) as info:
        parse_bench(text, source="demo-bench.toml")
    assert str(info.value).startswith("demo-bench.toml: ")
    assert info.value.field == field
    assert words in info.value.problem
    assert info.value.fix


def test_a_monitor_that_cannot_read_the_room_is_refused_before_the_run(procedure_toml):
    bench = parse_bench(DEMO_BENCH.replace('monitor = "room"', 'monitor = "dmm"'), source="demo-bench.toml")
    with pytest.raises(ConfigError) as info:
        validate_before_start(bench, parse_procedure(procedure_toml, source="proc.toml"))
    assert info.value.field == "environment.monitor"
    assert "cannot read the room's temperature" in info.value.problem
    assert "vaisala_hmt330" in info.value.fix
