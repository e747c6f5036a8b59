import math
import random

import pytest

from daq.clock import VirtualClock
from daq.stability import StabilityCriteria, StabilityDetector, _t_quantile, wait_until_stable


def test_t_quantile_matches_tables():
    # one-sided 95 % Student t: dof 8 -> 1.860, dof 3 -> 2.353, dof 30 -> 1.697
    assert _t_quantile(0.95, 8) == pytest.approx(1.860, abs=2e-3)
    assert _t_quantile(0.95, 3) == pytest.approx(2.353, abs=1e-2)
    assert _t_quantile(0.95, 30) == pytest.approx(1.697, abs=1e-3)


def test_drift_hidden_in_noise_is_not_declared_stable():
    crit = StabilityCriteria(window=10, max_std=1.0, max_slope=0.05)
    det = StabilityDetector(crit)
    rng = random.Random(1)
    check = None
    for i in range(10):
        check = det.add(float(i), 0.2 * i + rng.gauss(0, 0.1))  # 0.2/s drift
    assert check is not None and not check.stable
    assert any("slope" in f for f in check.failing)


def test_quiet_signal_is_stable_and_reason_lists_criteria():
    crit = StabilityCriteria(window=10, max_std=1.0, max_slope=0.5, band=0.5)
    det = StabilityDetector(crit, target=5.0)
    rng = random.Random(2)
    checks = [det.add(float(i), 5.0 + rng.gauss(0, 0.05)) for i in range(10)]
    assert not checks[5].stable  # window not full yet
    assert checks[-1].stable


def test_band_soak_and_flag_are_each_required():
    base = dict(window=3, max_std=1.0)
    det = StabilityDetector(StabilityCriteria(**base, band=0.1), target=0.0)
    for i in range(3):
        c = det.add(float(i), 1.0)
    assert any("outside" in f for f in c.failing)
    det = StabilityDetector(StabilityCriteria(**base, min_soak=10.0))
    for i in range(3):
        c = det.add(float(i), 1.0)
    assert any("soak" in f for f in c.failing)
    det = StabilityDetector(StabilityCriteria(**base))
    for i in range(3):
        c = det.add(float(i), 1.0, flag=False)
    assert c.failing == ("instrument not settled",)


async def test_wait_until_stable_on_a_settling_signal_records_trace_and_reason():
    clock = VirtualClock()
    tau, target = 2.0, 10.0

    async def sample():
        await clock.sleep(0.5)
        t = clock.now()
        return target * (1 - math.exp(-t / tau)), t > 3 * tau

    crit = StabilityCriteria(window=8, max_std=1e-3, max_slope=1e-3, band=0.01, timeout=600)
    rec = await wait_until_stable(sample, crit, clock, target=target)
    assert rec.stable and not rec.timed_out
    # declared only once the noise-free value is within the band and flat enough
    assert target - rec.trace[-1][1] < 1e-3
    assert rec.samples == len(rec.trace)
    assert "stable after" in rec.reason and "instrument settled" in rec.reason


async def test_timeout_is_reported_not_raised():
    clock = VirtualClock()

    async def sample():
        await clock.sleep(1.0)
        return clock.now(), None  # a ramp: never stable

    rec = await wait_until_stable(sample, StabilityCriteria(window=5, max_slope=0.01, timeout=60), clock)
    assert rec.timed_out and not rec.stable
    assert "timed out" in rec.reason and "slope" in rec.reason
    assert 60 <= rec.elapsed <= 62
