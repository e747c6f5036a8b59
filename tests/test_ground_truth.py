"""The measured errors against the simulator's truth, as a coverage rate.

An honest 95.45 % expanded uncertainty misses about one point in twenty. Over >= 200 seeded
points the true error must lie within ±U of the measured error in 90-99 % of them (neither
understated nor inflated), and never beyond ±2U. Each seed draws the simulated standard's own
deviation from its stated uncertainty, as a real standard would have, and a different UUT.
"""

from __future__ import annotations

import random

from daq.bench import parse_bench
from daq.clock import VirtualClock
from procedures.dc_voltage import parse_procedure
from runner.session import SessionOptions, run_session
from simulators.bench_server import start_bench

POINTS = """
[[points]]
range = "100 mV"
setpoints = ["100 mV", "-50 mV"]
[[uut_spec]]
range = "100 mV"
ppm_of_reading = 40
ppm_of_range = 35
"""

SEEDS = range(1, 22)  # 21 seeds x 10 points = 210 points


async def test_true_error_lies_within_U_at_the_stated_rate(tmp_path, bench_toml, procedure_toml):
    procedure_text = procedure_toml.replace('setpoints = ["1 V", "-1 V"]', 'setpoints = ["1 V", "-1 V", "0.5 V"]')
    procedure_text = procedure_text.replace('setpoints = ["0 V", "10 V", "-10 V"]',
                                            'setpoints = ["0 V", "10 V", "-10 V", "-5 V", "2 V"]') + POINTS
    inside = beyond_2u = total = 0
    misses = []
    for seed in SEEDS:
        rng = random.Random(seed)
        bench_text = bench_toml.replace("gain_ppm = 12.0", f"gain_ppm = {rng.uniform(-30, 30):.3f}").replace(
            "offset_ppm_of_range = 2.0", f"offset_ppm_of_range = {rng.uniform(-5, 5):.3f}")
        clock = VirtualClock()
        running = await start_bench(parse_bench(bench_text, source="bench.toml"), clock, seed=seed)
        try:
            outcome = await run_session(
                running.bench, parse_procedure(procedure_text, source="proc.toml"),
                SessionOptions(db=str(tmp_path / f"seed{seed}.sqlite"), live=False, assume_yes=True), clock=clock,
            )
        finally:
            await running.close()
        assert outcome.status == "completed"
        for r, p in zip(outcome.results, outcome.procedure.points, strict=True):
            true = running.world.true_error("dmm", p.nominal, p.range_)
            deviation = abs(r["error"] - true)
            total += 1
            inside += deviation <= r["U"]
            beyond_2u += deviation > 2 * r["U"]
            if deviation > r["U"]:
                misses.append((seed, p.label, deviation / r["U"]))
    rate = inside / total
    print(f"coverage {inside}/{total} = {rate:.3f}; misses {misses}")
    assert total >= 200
    assert beyond_2u == 0, misses
    assert 0.90 <= rate <= 0.99, (rate, misses)
