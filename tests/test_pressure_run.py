"""A dial gauge read by the operator against a pressure controller, through the runner.

The bench names the gauge `resource = "MANUAL"`; in a simulated run a simulated operator reads
the simulated gauge (its true error and hysteresis unknown to the procedure). Up and down in
two cycles: each point's measured error agrees with the gauge's true error within 2U, and the
hysteresis the gauge really has shows between the up and down points.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daq.bench import load_bench, parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError
from drivers.registry import check_drivers
from procedures.loader import load_procedure
from runner.session import SessionOptions, run_session
from runner.simulated_truth import SimulatedTruth
from simulators.bench_server import start_bench
from simulators.manual_gauge import ManualGauge
from simulators.pace_controller import PaceController

DATA = Path(__file__).resolve().parents[1] / "runner" / "data"


async def test_dial_gauge_up_and_down_through_the_runner(tmp_path):
    bench = load_bench(DATA / "pressure-bench.toml")
    procedure = load_procedure(DATA / "pressure-gauge.toml")
    clock = VirtualClock()
    running = await start_bench(bench, clock)
    gauge = running.world["gauge"]
    assert isinstance(gauge, ManualGauge)
    truth = SimulatedTruth(running.world, procedure)
    try:
        outcome = await run_session(running.bench, procedure, SessionOptions(
            db=str(tmp_path / "p.sqlite"), live=False, assume_yes=True), clock=clock, sinks=[truth],
            manual_reader=lambda name: running.world[name])
    finally:
        await running.close()
    assert outcome.status == "completed"
    assert len(outcome.results) == 2 * 2 * 6
    assert len(gauge.prompts) == len(outcome.results) * procedure.repeats  # every UUT reading asked of a person
    for r in outcome.results:
        assert abs(r["error"] - truth.truth[(r["point_index"], "")]) <= 2 * r["U"], (r["point_index"], r["error"])
    labels = {p.index: p.label for p in procedure.points}
    by_label = {labels[r["point_index"]]: r["error"] for r in outcome.results}
    hysteresis = by_label["9 bar down c1"] - by_label["9 bar up c1"]
    assert hysteresis == pytest.approx(gauge.hysteresis, abs=0.06)  # 0.04 bar, read to 0.05 bar
    # the report's summary tabulates it per pressure, with the spread over the cycles
    row = next(line for line in procedure.summary(outcome.results) if line.startswith("| 9 bar"))
    assert float(row.split("|")[4]) == pytest.approx(gauge.hysteresis, abs=0.06)
    pace = running.world["pace"]
    assert isinstance(pace, PaceController)
    assert pace.vents  # safe state at the end vents the controller


def test_a_manual_gauge_must_say_manual():
    text = (DATA / "pressure-bench.toml").read_text().replace('resource = "MANUAL"',
                                                               'resource = "TCPIP::127.0.0.1::0::SOCKET"')
    with pytest.raises(ConfigError, match='write resource = "MANUAL"'):
        check_drivers(parse_bench(text, source="p.toml"))
    bad = (DATA / "pressure-bench.toml").read_text().replace("resolution = 0.05         #", "resolutoin = 0.05 #")
    with pytest.raises(ConfigError, match="instruments.gauge.settings.resolutoin"):
        check_drivers(parse_bench(bad, source="p.toml"))


def test_the_procedure_unit_must_match_the_gauge_scale():
    from procedures.pressure_gauge import parse_procedure

    bench = load_bench(DATA / "pressure-bench.toml")
    text = (DATA / "pressure-gauge.toml").read_text()
    proc = parse_procedure(text.replace('[procedure]\n', '[procedure]\nunit = "psi"\n'), source="p.toml")
    with pytest.raises(ConfigError, match="procedure.unit.*scale is in bar"):
        proc.validate(bench)
    with pytest.raises(ConfigError, match="unknown pressure unit"):
        parse_procedure(text.replace('[procedure]\n', '[procedure]\nunit = "atm"\n'), source="p.toml")
