"""The balance test procedure end to end: MT-SICS simulator on a pty, driver, a simulated operator.

The operator is played by a function that reads each prompt and puts the named weight (with its
simulated true mass) on the simulator's pan; the measured errors of indication are compared with
the simulator's true errors at the honest rate: within U, and never beyond 2U.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from test_balance import BENCH, SERIAL, SIGMA

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError
from daq.transports import open_transport
from drivers.mettler_sics import MettlerSicsBalance
from procedures.balance_test import (
    ECCENTRIC_POSITIONS,
    ERROR_MODEL,
    BalanceTestPlan,
    BalanceTestResult,
    OperatorDeclined,
    as_rows,
    read_weight_certificates,
    run_balance_test,
)
from simulators.balance_mtsics import MtSicsBalance, ReferenceWeight, read_reference_weights, true_mass
from simulators.bench_server import RunningBench, start_bench

PLAN = BalanceTestPlan(repeatability_weight="R100", eccentricity_weight="R100",
                       linearity_weights=("R50", "R100", "R200"), repeats=6)
_PLACE = re.compile(r"^Place weight (\S+) at the (\w+) of the pan")
_REMOVE = re.compile(r"^Remove weight (\S+) from the pan")


def simulated_operator(
    model: MtSicsBalance, weights: dict[str, ReferenceWeight], seed: int, prompts: list[str]
) -> Callable[[str], Awaitable[bool]]:
    """Plays the operator: does what each prompt says on the simulator's pan and answers yes."""

    async def ask(question: str) -> bool:
        prompts.append(question)
        if m := _PLACE.match(question):
            model.place(m.group(1), true_mass(weights[m.group(1)], seed), m.group(2))
        elif m := _REMOVE.match(question):
            model.remove(m.group(1))
        elif question.startswith("Clear the pan"):
            model.remove()
        else:
            raise AssertionError(f"unexpected prompt {question!r}")
        return True

    return ask


async def _run(seed: int) -> tuple[RunningBench, MtSicsBalance, list[str], BalanceTestResult]:
    bench = parse_bench(BENCH.replace("seed = 11", f"seed = {seed}"), source="balance.toml")
    running = await start_bench(bench, VirtualClock())
    model = running.world["balance"]
    assert isinstance(model, MtSicsBalance)
    prompts: list[str] = []
    balance = MettlerSicsBalance("balance", open_transport(running.resources["balance"]), SERIAL)
    await balance.connect()
    try:
        result = await run_balance_test(balance, read_weight_certificates(bench), PLAN,
                                        simulated_operator(model, read_reference_weights(bench), seed, prompts))
    finally:
        await balance.close()
    return running, model, prompts, result


async def test_balance_test_finds_the_simulated_errors() -> None:
    running, model, prompts, result = await _run(11)
    try:
        assert prompts[0] == "Clear the pan, then confirm."
        assert prompts[1] == "Place weight R100 at the centre of the pan, then confirm."
        assert sum(1 for p in prompts if p.startswith("Place")) == 6 + 5 + 3
        # Repeatability: each loading minus the zero before it, so about sqrt(2) sigma with rounding.
        assert len(result.repeatability_loads) == 6
        assert 0 < result.repeatability_s < 4 * (2 * SIGMA**2 + 2 * 0.0001**2 / 12) ** 0.5
        # Eccentricity: front 3e-6 * 100 g = 0.3 mg above the centre, back -0.2 mg, left 0.15, right -0.1.
        assert set(result.eccentricity) == set(ECCENTRIC_POSITIONS) - {"centre"}
        for position, expected in (("front", 3e-4), ("back", -2e-4), ("left", 1.5e-4), ("right", -1e-4)):
            assert result.eccentricity[position] == pytest.approx(expected, abs=8 * SIGMA + 2e-4), position
        # Linearity: the error of indication against the simulator's truth, within U.
        weights = read_reference_weights(running.bench)
        for point in result.linearity:
            truth = model.error_at(true_mass(weights[point.weight_id], 11))
            assert abs(point.error - truth) <= point.U, point.weight_id
            assert point.estimate.expression == ERROR_MODEL
            assert {line.input for line in point.estimate.budget} == {"I", "dI_L", "dI_0", "dI_ecc", "m_ref"}
            assert 1.9 < point.estimate.k < 3.0
        rows = as_rows(result)
        assert [r["weight"] for r in rows] == ["R50", "R100", "R200"]
    finally:
        await running.close()


async def test_errors_within_u_at_the_honest_rate_over_seeds() -> None:
    inside = total = 0
    for seed in range(1, 9):
        running, model, _, result = await _run(seed)
        try:
            weights = read_reference_weights(running.bench)
            for point in result.linearity:
                truth = model.error_at(true_mass(weights[point.weight_id], seed))
                total += 1
                inside += abs(point.error - truth) <= point.U
                assert abs(point.error - truth) <= 2 * point.U, (seed, point.weight_id)
        finally:
            await running.close()
    assert inside / total >= 0.9  # about 95 % expected (98 % over 60 seeds)


async def test_operator_saying_no_stops_the_test() -> None:
    bench = parse_bench(BENCH, source="balance.toml")
    running = await start_bench(bench, VirtualClock())
    balance = MettlerSicsBalance("balance", open_transport(running.resources["balance"]), SERIAL)
    try:
        await balance.connect()

        async def no(question: str) -> bool:
            return False

        with pytest.raises(OperatorDeclined, match="Clear the pan"):
            await run_balance_test(balance, read_weight_certificates(bench), PLAN, no)
    finally:
        await balance.close()
        await running.close()


def test_plan_is_checked_against_the_weights_before_anything_is_asked() -> None:
    weights = read_weight_certificates(parse_bench(BENCH, source="balance.toml"))
    bad = BalanceTestPlan("R100", "R100", ("R50", "R500"))
    with pytest.raises(ConfigError) as info:
        bad.check(weights)
    assert info.value.field == "linearity_weights[1]" and "R200" in info.value.fix
    with pytest.raises(ConfigError, match="repeats"):
        BalanceTestPlan("R100", "R100", ("R50",), repeats=1).check(weights)
    broken = BENCH.replace("U = 0.00005", 'U = "50 ug"', 1)
    with pytest.raises(ConfigError) as info:
        read_weight_certificates(parse_bench(broken, source="balance.toml"))
    assert info.value.field == "reference_weights[1].U"
