"""A DMM calibrated in DC volts, AC volts and ohms end to end, and the multi-function file refused early.

The shipped bench and procedure (runner/data/dmm-multifunction-*.toml) run through
`runner.session.run_session` on the simulated bench in virtual time; every point's error is
compared with the simulators' truth, and the stored plan carries each point's function.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError
from procedures.dc_voltage import DcPoint
from procedures.loader import parse_procedure
from runner.engine import validate_before_start
from runner.session import SessionOptions, run_session
from simulators.bench_server import start_bench

DATA = Path(__file__).resolve().parents[1] / "runner" / "data"
BENCH_TEXT = (DATA / "dmm-multifunction-bench.toml").read_text()
PROCEDURE_TEXT = (DATA / "dmm-multifunction-34465a.toml").read_text()


def true_error(world, point: DcPoint) -> float:
    """The DMM's indication minus what the calibrator truly presents (2-wire: with the leads)."""
    presented = world.calibrator("calibrator").true_output(point.nominal, point.function, point.frequency)
    return world.dmm("dmm").function_true_error(point.meter_function, presented, point.range_, point.frequency)


async def test_a_multifunction_run_finds_the_true_errors(tmp_path):
    clock = VirtualClock()
    procedure = parse_procedure(PROCEDURE_TEXT, source="dmm-multifunction-34465a.toml")
    assert procedure.kind == "dmm_multifunction"
    running = await start_bench(parse_bench(BENCH_TEXT, source="bench.toml"), clock, seed=3)
    db = tmp_path / "run.sqlite"
    try:
        outcome = await run_session(running.bench, procedure,
                                    SessionOptions(db=str(db), live=False, assume_yes=True), clock=clock)
    finally:
        await running.close()
    assert outcome.status == "completed"
    points = outcome.procedure.points
    assert [p.function for p in points] == ["dcv"] * 3 + ["acv"] * 5 + ["ohms"] * 2
    assert len(outcome.results) == len(points)
    for result, point in zip(outcome.results, points, strict=True):
        assert result["unit"] == ("ohm" if point.function == "ohms" else "V")
        truth = true_error(running.world, point)
        assert abs(result["error"] - truth) <= 2 * result["U"], (point.label, result["error"], truth, result["U"])
        assert result["decision"]["outcome"] in ("pass", "conditional pass", "fail", "conditional fail")
    by_label = {p.label: r for p, r in zip(points, outcome.results, strict=True)}
    # The reference uncertainty follows the function's certificate: 1 V at 50 kHz (300 ppm + 50 uV) is
    # looser than at 1 kHz (150 ppm + 60 uV); the tolerance follows the UUT's band spec.
    assert by_label["1 V at 50 kHz on 1 V AC"]["U"] > by_label["1 V at 1 kHz on 1 V AC"]["U"]
    assert by_label["1 V at 50 kHz on 1 V AC"]["tolerance"] == pytest.approx(1200e-6 * 1 + 500e-6 * 1)
    assert by_label["100 ohm 4-wire on 100 ohm"]["tolerance"] == pytest.approx(80e-6 * 100 + 40e-6 * 100)
    # The 2-wire point's error carries the 15 mOhm of leads the 4-wire one does not.
    assert by_label["10 kohm 2-wire on 10 kohm"]["error"] == pytest.approx(
        true_error(running.world, points[-1]), abs=2 * by_label["10 kohm 2-wire on 10 kohm"]["U"])
    # What the store holds: the plan with each point's function, and raw readings in their unit.
    with sqlite3.connect(db) as con:
        units = {row[0] for row in con.execute("SELECT DISTINCT unit FROM readings WHERE channel NOT LIKE 'env.%'")}
        room = {row[0] for row in con.execute("SELECT DISTINCT unit FROM readings WHERE channel LIKE 'env.%'")}
    assert units == {"V", "ohm"}
    assert room == {"degC", "%RH"}  # the room monitor's readings, kept in theirs


def test_a_dc_voltage_file_keeps_its_kind_and_plan(procedure_toml):
    from procedures.dc_voltage import parse_procedure as parse_dc

    procedure = parse_dc(procedure_toml, source="proc.toml")
    assert procedure.kind == "dc_voltage"
    assert [p.as_plan() for p in procedure.points][0] == {"nominal": 1.0, "unit": "V", "range": 1.0,
                                                         "label": "1 V on 1 V"}


def _validate(procedure_text: str, bench_text: str = BENCH_TEXT) -> None:
    validate_before_start(parse_bench(bench_text, source="bench.toml"),
                          parse_procedure(procedure_text, source="proc.toml"))


@pytest.mark.parametrize(("old", "new", "field", "message"), [
    ('kind = "dmm_multifunction"', 'kind = "dc_voltage"', "uut_spec[2].function", "DC voltage only"),
    ('frequencies = ["1 kHz", "50 kHz"]', "", "points[2]", "needs a frequency"),
    ('frequencies = ["1 kHz", "50 kHz"]', 'frequencies = ["1 kHz"]\nfrequency = "2 kHz"', "points[2]",
     "needs a frequency"),
    ('frequency = "1 kHz"', 'frequency = "1 V"', "points[3].frequency", "not convertible"),
    ("wires = 4", "wires = 3", "points[4].wires", "expected 2 or 4"),
    ('function = "ohms"\nwires = 2', 'function = "ohm"\nwires = 2', "points[5].function", "unknown function"),
    ('range = "10 kohm"\nsetpoints', 'range = "10 V"\nsetpoints', "points[5].range", "not convertible"),
    ('fmin = "20 kHz"', 'fmin = "60 kHz"', "uut_spec[3].fmax", "fmin <= fmax"),
    ("max_std_ppm = 40", "max_std_ppm = -4", "stability.acv.max_std_ppm", "number > 0"),
])
def test_a_bad_multifunction_file_is_refused_naming_the_field(old, new, field, message):
    assert old in PROCEDURE_TEXT
    with pytest.raises(ConfigError, match=message) as info:
        parse_procedure(PROCEDURE_TEXT.replace(old, new, 1), source="proc.toml")
    assert info.value.field == field


@pytest.mark.parametrize(("procedure_edit", "bench_edit", "field", "message"), [
    (('frequencies = ["1 kHz", "50 kHz"]', 'frequencies = ["1 kHz", "80 kHz"]'), None, "uut_spec",
     "no acv accuracy spec for the 1 V range at 80000 Hz"),
    (('range = "10 kohm"\nsetpoints', 'range = "20 kohm"\nsetpoints'), None, "points[5]", "no 20000 ohm"),
    (('setpoints = ["10 kohm"]', 'setpoints = ["20 Mohm"]'), None, "points[5]", "overloads"),
    (('frequency = "1 kHz"\nsetpoints = ["10 V"]', 'frequency = "1 MHz"\nsetpoints = ["10 V"]'), None, "points[3]",
     "outside the calibrator"),
    (None, ("[instruments.calibrator.certificate.acv]", "[instruments.calibrator.certificate.acx]"),
     "instruments.calibrator.certificate.acv", "no AC voltage certificate"),
    (None, ("[instruments.calibrator.certificate.ohms]", "[instruments.calibrator.certificate.ohmz]"),
     "instruments.calibrator.certificate.ohms", "no resistance certificate"),
    (None, ("bands = [", 'bands = [{ upto = 1.1, fmin = 45, fmax = 10e3, ppm = 150, floor = 60e-6 }]\nold_bands = ['),
     "instruments.calibrator.certificate.acv", "does not cover 1 V at 50000 Hz"),
])
def test_what_the_bench_cannot_do_is_refused_before_any_instrument(procedure_edit, bench_edit, field, message):
    procedure_text, bench_text = PROCEDURE_TEXT, BENCH_TEXT
    if procedure_edit:
        assert procedure_edit[0] in procedure_text
        procedure_text = procedure_text.replace(*procedure_edit, 1)
    if bench_edit:
        assert bench_edit[0] in bench_text
        bench_text = bench_text.replace(*bench_edit, 1)
    with pytest.raises(ConfigError, match=message) as info:
        _validate(procedure_text, bench_text)
    assert info.value.field.startswith(field)


def test_a_dc_only_bench_still_validates_a_dc_only_multifunction_file(bench_toml, procedure_toml):
    text = procedure_toml.replace('name = "test DCV"', 'name = "test DCV"\nkind = "dmm_multifunction"')
    _validate(text, bench_toml)  # no AC or ohms certificate needed when no point uses them
