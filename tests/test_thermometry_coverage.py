"""The thermometer comparison's measured errors against the simulator's truth, as a coverage rate.

As for the DC run (tests/test_ground_truth.py): an honest 95 % expanded uncertainty misses
about one point in twenty. Each seed is a fresh world drawn from what the bench file states:
the reference probe's true error is its certificate's correction plus a draw of U/k, every
UUT well sits within the characterised uniformity of the reference well and wanders within
the characterised stability (rectangular, as the budget assumes), and the UUT probes are new.
Over 9 seeds x 3 setpoints x 8 UUTs = 216 UUT-points run through the runner, the UUT's true
error lies within ±U of the measured error in 90-99 % of them, and never beyond ±2U.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError
from procedures.loader import load_procedure
from runner.session import SessionOptions, run_session
from runner.simulated_truth import SimulatedTruth
from simulators.bench_server import start_bench
from simulators.temperature_bath import TemperatureBath
from simulators.thermometer_readout import ThermometerReadout
from simulators.world import SimulatedWorld

DATA = Path(__file__).resolve().parents[1] / "runner" / "data"
SEEDS = range(1, 10)  # 9 seeds x 3 setpoints x 8 UUT channels = 216 UUT-points
_UUT_CHANNEL = re.compile(r"\{ channel = (\d), offset = [-0-9.e]+, gain = [-0-9.e]+ \}")


def _fresh_uuts(text: str, rng: random.Random) -> str:
    """The bench file with new UUT probes (offset +-50 mK, gain +-2e-4 /degC) for this seed."""
    return _UUT_CHANNEL.sub(
        lambda m: f"{{ channel = {m.group(1)}, offset = {rng.uniform(-0.05, 0.05):.5f}, "
                  f"gain = {rng.uniform(-2e-4, 2e-4):.3e} }}", text)


async def test_true_error_lies_within_U_at_the_stated_rate(tmp_path):
    bench_text = (DATA / "thermometry-bench.toml").read_text()
    assert len(_UUT_CHANNEL.findall(bench_text)) == 8  # the substitution still matches the bench file
    inside = beyond_2u = total = 0
    misses = []
    reference_deviations = []
    for seed in SEEDS:
        text = _fresh_uuts(bench_text, random.Random(seed))
        clock = VirtualClock()
        running = await start_bench(parse_bench(text, source="thermometry-bench.toml"), clock, seed=seed)
        procedure = load_procedure(DATA / "thermometer-comparison.toml")
        truth = SimulatedTruth(running.world, procedure)
        try:
            outcome = await run_session(
                running.bench, procedure,
                SessionOptions(db=str(tmp_path / f"seed{seed}.sqlite"), live=False, assume_yes=True),
                clock=clock, sinks=[truth],
            )
        finally:
            await running.close()
        assert outcome.status == "completed"
        assert len(outcome.results) == 3 * 8
        # The world really is drawn per seed: the reference differs from its certificate, the wells differ.
        reference = running.world["reference"]
        bath = running.world["bath"]
        assert isinstance(reference, ThermometerReadout) and isinstance(bath, TemperatureBath)
        reference_deviations.append(reference.true_error(1, 50.0) - 0.0026)
        assert bath.characterisation is not None
        for k in range(2, bath.wells + 1):
            assert abs(bath.well_offset(k, 100.0)) <= bath.characterisation.uniformity_at(100.0)
        for r in outcome.results:
            true = truth.truth[(r["point_index"], r["channel"])]
            deviation = abs(r["error"] - true)
            total += 1
            inside += deviation <= r["U"]
            beyond_2u += deviation > 2 * r["U"]
            if deviation > r["U"]:
                misses.append((seed, r["nominal"], r["channel"], round(deviation / r["U"], 2)))
    rate = inside / total
    print(f"coverage {inside}/{total} = {rate:.3f}; misses {misses}")
    assert len(set(reference_deviations)) == len(SEEDS)
    assert total >= 200
    assert beyond_2u == 0, misses
    assert 0.90 <= rate <= 0.99, (rate, misses)


def test_the_drawn_world_follows_the_bench_files_statements():
    """Per seed: the reference differs from its certificate by ~ U/k; the ring wells sit within the
    characterised uniformity of well1 and wander within its stability; fixed wells when configured."""
    text = (DATA / "thermometry-bench.toml").read_text()
    deviations, shares, wander = [], [], []
    for seed in range(200):
        world = SimulatedWorld(parse_bench(text, source="b.toml"), VirtualClock(), seed)
        reference, bath = world["reference"], world["bath"]
        assert isinstance(reference, ThermometerReadout) and isinstance(bath, TemperatureBath)
        deviations.append(reference.true_error(1, 100.0) - 0.0036)  # certificate: correction -3.6 mK at 100 C
        assert bath.characterisation is not None
        assert bath.well_offset(1, 100.0) == 0.0 and bath.well_wander(1, 1234.0) == 0.0
        for k in range(2, 10):
            shares.append(bath.well_offset(k, 100.0) / bath.characterisation.uniformity_at(100.0))
            wander.append(bath.well_wander(k, 5000.0 + 100 * seed) / bath.characterisation.stability)
    sd = (sum(d * d for d in deviations) / len(deviations)) ** 0.5
    assert 0.8 * 0.002 < sd < 1.2 * 0.002  # U = 4 mK at k = 2
    for drawn in (shares, wander):
        assert all(-1.0 <= s <= 1.0 for s in drawn)
        assert 0.8 / 3 < sum(s * s for s in drawn) / len(drawn) < 1.2 / 3  # rectangular: variance a^2 / 3
    # An offset written for the certified channel would contradict the certificate.
    clashing = text.replace("channels = [{ channel = 1, noise = 0.0001 }]",
                            "channels = [{ channel = 1, noise = 0.0001, offset = 0.0015 }]")
    with pytest.raises(ConfigError) as info:
        SimulatedWorld(parse_bench(clashing, source="b.toml"), VirtualClock(), 1)
    assert info.value.field == "instruments.reference.simulation.channels[0].offset"
    # Wells given explicitly are the truth as written (no draw).
    fixed = text.replace("reference_well = 1",
                         "reference_well = 1\ngradient = 0.0\noffsets = [0.0, 0.001, 0, 0, 0, 0, 0, 0, 0]")
    bath = SimulatedWorld(parse_bench(fixed, source="b.toml"), VirtualClock(), 1)["bath"]
    assert isinstance(bath, TemperatureBath) and bath.characterisation is None
    assert bath.well_offset(2, 100.0) == pytest.approx(0.001)
