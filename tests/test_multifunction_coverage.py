"""AC voltage and resistance errors against the simulators' truth, as a coverage rate.

As tests/test_ground_truth.py does for DC: over >= 200 seeded AC and ohms points the true error
must lie within ±U of the measured error in 90-99 % of them, and never beyond ±2U. Each seed
draws the calibrator's own deviations from its AC and resistance certificates (per amplitude and
frequency, per resistance) and a different DMM (gain, offset, bandwidth, leads).
"""

from __future__ import annotations

import random
from pathlib import Path

from daq.bench import parse_bench
from daq.clock import VirtualClock
from procedures.loader import parse_procedure
from runner.session import SessionOptions, run_session
from simulators.bench_server import start_bench

BENCH_TEXT = (Path(__file__).resolve().parents[1] / "runner" / "data" / "dmm-multifunction-bench.toml").read_text()

PROCEDURE = """
[procedure]
name = "AC voltage and ohms coverage"
kind = "dmm_multifunction"
repeats = 8
nplc = 10
decision_rule = "guarded"

[roles]
source = "calibrator"
uut = "dmm"

[stability]
window = 8
max_std_ppm = 3
max_slope_ppm_per_s = 2
band_ppm = 20000
min_soak = "0.5 s"
timeout = "120 s"
[stability.acv]
max_std_ppm = 50
max_slope_ppm_per_s = 40

[[uut_spec]]
function = "acv"
range = "1 V"
fmin = "10 Hz"
fmax = "20 kHz"
ppm_of_reading = 600
ppm_of_range = 300
[[uut_spec]]
function = "acv"
range = "1 V"
fmin = "20 kHz"
fmax = "50 kHz"
ppm_of_reading = 1200
ppm_of_range = 500
[[uut_spec]]
function = "acv"
range = "10 V"
fmin = "10 Hz"
fmax = "20 kHz"
ppm_of_reading = 600
ppm_of_range = 300
[[uut_spec]]
function = "ohms"
range = "100 ohm"
ppm_of_reading = 80
ppm_of_range = 40
[[uut_spec]]
function = "ohms"
range = "1 kohm"
ppm_of_reading = 80
ppm_of_range = 10
[[uut_spec]]
function = "ohms"
range = "10 kohm"
ppm_of_reading = 80
ppm_of_range = 10

[[points]]
function = "acv"
range = "1 V"
frequency = "1 kHz"
setpoints = ["1 V", "0.1 V"]
[[points]]
function = "acv"
range = "1 V"
frequencies = ["20 kHz", "50 kHz"]
setpoints = ["0.5 V"]
[[points]]
function = "acv"
range = "10 V"
frequencies = ["1 kHz", "10 kHz"]
setpoints = ["10 V"]
[[points]]
function = "ohms"
wires = 4
range = "100 ohm"
setpoints = ["100 ohm", "10 ohm"]
[[points]]
function = "ohms"
wires = 2
range = "1 kohm"
setpoints = ["1 kohm"]
[[points]]
function = "ohms"
wires = 2
range = "10 kohm"
setpoints = ["10 kohm"]
"""

SEEDS = range(1, 22)  # 21 seeds x 10 points (6 AC, 4 ohms) = 210 points


def seeded_bench(seed: int) -> str:
    """The shipped bench with this seed's DMM: AC and ohms gain, offset, bandwidth and leads."""
    rng = random.Random(seed)
    text = BENCH_TEXT.replace("gain_ppm = 180.0", f"gain_ppm = {rng.uniform(-300, 300):.2f}")
    text = text.replace("offset_ppm_of_range = 60.0", f"offset_ppm_of_range = {rng.uniform(-100, 100):.2f}")
    text = text.replace("bandwidth_hz = 1.5e6", f"bandwidth_hz = {rng.uniform(0.8e6, 3e6):.0f}")
    text = text.replace("gain_ppm = 30.0", f"gain_ppm = {rng.uniform(-60, 60):.2f}")
    text = text.replace("offset_ppm_of_range = 4.0", f"offset_ppm_of_range = {rng.uniform(-10, 10):.2f}")
    return text.replace("lead_ohms = 0.015", f"lead_ohms = {rng.uniform(0.005, 0.05):.4f}")


async def test_ac_and_ohms_true_errors_lie_within_U_at_the_stated_rate(tmp_path):
    inside = beyond_2u = total = 0
    by_function = {"acv": [0, 0], "ohms": [0, 0]}
    misses = []
    for seed in SEEDS:
        clock = VirtualClock()
        running = await start_bench(parse_bench(seeded_bench(seed), source="bench.toml"), clock, seed=seed)
        try:
            outcome = await run_session(
                running.bench, parse_procedure(PROCEDURE, source="proc.toml"),
                SessionOptions(db=str(tmp_path / f"seed{seed}.sqlite"), live=False, assume_yes=True), clock=clock,
            )
        finally:
            await running.close()
        assert outcome.status == "completed"
        calibrator, dmm = running.world.calibrator("calibrator"), running.world.dmm("dmm")
        for r, p in zip(outcome.results, outcome.procedure.points, strict=True):
            presented = calibrator.true_output(p.nominal, p.function, p.frequency)
            true = dmm.function_true_error(p.meter_function, presented, p.range_, p.frequency)
            deviation = abs(r["error"] - true)
            total += 1
            inside += deviation <= r["U"]
            beyond_2u += deviation > 2 * r["U"]
            by_function[p.function][0] += deviation <= r["U"]
            by_function[p.function][1] += 1
            if deviation > r["U"]:
                misses.append((seed, p.label, round(deviation / r["U"], 2)))
    rate = inside / total
    print(f"coverage {inside}/{total} = {rate:.3f}; by function {by_function}; misses {misses}")
    assert total >= 200
    assert beyond_2u == 0, misses
    assert 0.90 <= rate <= 0.99, (rate, misses)
