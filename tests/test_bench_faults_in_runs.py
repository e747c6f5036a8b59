"""The thermometry and pressure runs survive an instrument that drops its connection halfway."""

from __future__ import annotations

from pathlib import Path

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.events import PointPhaseEvent
from procedures.loader import load_procedure
from runner.session import SessionOptions, run_session
from simulators.bench_server import start_bench

DATA = Path(__file__).resolve().parents[1] / "runner" / "data"


class DropOnce:
    """Arms one fault on `instrument` when point `index` enters `phase`."""

    def __init__(self, running, index: int, phase: str, instrument: str, command: str) -> None:
        self.running, self.index, self.phase, self.instrument, self.command = running, index, phase, instrument, command
        self.done = False

    def emit(self, event) -> None:
        if not self.done and isinstance(event, PointPhaseEvent) and event.point_index == self.index \
                and event.phase.startswith(self.phase):
            self.done = True
            self.running.faults(self.instrument).arm("drop", self.command)

    async def aclose(self) -> None:
        pass


async def _run_with_drop(tmp_path, bench_file: str, procedure_file: str, edit, index, phase, instrument, command):
    text = edit((DATA / bench_file).read_text())
    clock = VirtualClock()
    running = await start_bench(parse_bench(text, source=str(DATA / bench_file)), clock)
    drop = DropOnce(running, index, phase, instrument, command)
    try:
        outcome = await run_session(running.bench, load_procedure(DATA / procedure_file),
                                    SessionOptions(db=str(tmp_path / "d.sqlite"), live=False, assume_yes=True),
                                    clock=clock, sinks=[drop], manual_reader=lambda name: running.world[name])
    finally:
        await running.close()
    assert drop.done and running.faults(instrument).fired("drop") == 1
    return outcome


async def _attempts(tmp_path, run_id):
    from results.store import RunStore

    store = await RunStore.open(tmp_path / "d.sqlite")
    try:
        return await store.attempts(run_id)
    finally:
        await store.close()


async def test_a_readout_dropping_mid_comparison_is_recovered(tmp_path):
    # the UUT readout is on a pty: a lost reply shows as silence, found by a short timeout
    def edit(text: str) -> str:
        return text.replace('serial = "U1529-0102"', 'serial = "U1529-0102"\ntimeout = 0.2')

    outcome = await _run_with_drop(tmp_path, "thermometry-bench.toml", "thermometer-comparison.toml", edit,
                                   1, "cycle 3", "uut_b", "FETC?")
    assert outcome.status == "completed" and len(outcome.results) == 24
    statuses = [a["status"] for a in await _attempts(tmp_path, outcome.run_id) if a["point_index"] == 1]
    assert statuses == ["fault", "complete"]
    assert {r["attempt"] for r in outcome.results if r["point_index"] == 1} == {2}


async def test_the_pressure_controller_dropping_mid_point_is_recovered(tmp_path):
    outcome = await _run_with_drop(tmp_path, "pressure-bench.toml", "pressure-gauge.toml", lambda t: t,
                                   2, "reading 2", "pace", ":SENS:PRES?")
    assert outcome.status == "completed" and len(outcome.results) == 24
    statuses = [a["status"] for a in await _attempts(tmp_path, outcome.run_id) if a["point_index"] == 2]
    assert statuses == ["fault", "complete"]
