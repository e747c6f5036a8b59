"""The balance test as a runner procedure: MT-SICS simulator on a pty, driver, a simulated operator.

The procedure tells the operator what to place (`OperatorTask`: weight id, position, the weight's
certificate); in a simulated run the simulated operator does it to the simulated balance
(`MtSicsBalance.perform`), which draws each weight's true mass from its certificate and its seed.
The measured errors are compared with the simulator's true errors: in one full run, and as a
coverage rate over many seeds (each seed a fresh balance and freshly drawn weights).
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path
from typing import Any

import pytest

from daq.bench import load_bench, parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError
from daq.events import PointResultEvent
from daq.reading import Reading
from daq.reference_weights import read_reference_weights
from daq.transports import open_transport
from drivers.mettler_sics import MettlerSicsBalance
from procedures.balance_test import (
    ECCENTRIC_POSITIONS,
    ERROR_MODEL,
    BalanceTest,
    parse_procedure,
    read_weight_certificates,
)
from procedures.context import OperatorTask
from procedures.loader import load_procedure
from results.store import RunStore
from runner.session import SessionOptions, run_session
from simulators.balance_mtsics import MtSicsBalance, true_mass
from simulators.bench_server import start_bench

DATA = Path(__file__).resolve().parents[1] / "runner" / "data"
BENCH_TEXT = (DATA / "balance-bench.toml").read_text()
PROCEDURE_TEXT = (DATA / "balance-test.toml").read_text()


def _balance(world: Any) -> MtSicsBalance:
    model = world["balance"]
    assert isinstance(model, MtSicsBalance)
    return model


async def test_a_full_balance_test_through_the_runner(tmp_path):
    procedure = load_procedure(DATA / "balance-test.toml")
    assert isinstance(procedure, BalanceTest)
    outcome = await run_session(
        load_bench(DATA / "balance-bench.toml"), procedure,
        SessionOptions(db=str(tmp_path / "b.sqlite"), simulate=True, seed=11, live=False, assume_yes=True),
        clock=VirtualClock())
    assert outcome.status == "completed"
    labels = {p.index: p.label for p in procedure.points}
    assert list(labels.values()) == ["repeatability R100 x6", "eccentricity R100",
                                     *(f"error of indication {w}" for w in ("R20", "R50", "R100", "R150", "R200"))]
    model = _balance(outcome.world)
    assert model.pan == []  # every weight taken off again
    by_point: dict[str, dict[str, dict[str, Any]]] = {}
    for r in outcome.results:
        by_point.setdefault(labels[r["point_index"]], {})[r["channel"]] = r
    # Repeatability: s of the zero-corrected indications (noise of two readings and their rounding).
    rep = by_point["repeatability R100 x6"][""]
    sigma, d = model.repeatability, model.readability
    assert rep["n"] == 6 and rep["error"] == rep["uut_std"] > 0
    assert rep["error"] < 4 * math.sqrt(2 * sigma**2 + 2 * d**2 / 12)
    assert rep["decision"]["outcome"] == "pass"
    # Eccentricity: one result per off-centre position, I_pos - I_centre against the true eccentricity.
    m100 = model.true_masses["R100"]
    ecc = by_point["eccentricity R100"]
    assert set(ecc) == set(ECCENTRIC_POSITIONS[1:])
    for position, r in ecc.items():
        truth = model.error_at(m100, position) - model.error_at(m100, "centre")
        assert abs(r["error"] - truth) <= 2 * r["U"], position
    # Error of indication: against the simulator's truth for the weight it really holds.
    assert outcome.bench is not None
    certificates = read_reference_weights(outcome.bench)
    for w in ("R20", "R50", "R100", "R150", "R200"):
        r = by_point[f"error of indication {w}"][""]
        truth = model.error_at(model.true_masses[w])
        assert abs(r["error"] - truth) <= 2 * r["U"], w
        assert r["ref_mean"] == certificates[w].conventional_mass
        assert {line["name"] for line in r["budget"]["components"]} >= {"repeatability (s)", f"reference weight {w}"}
    # The weights' true masses are drawn from their certificates, not equal to them.
    assert all(model.true_masses[w] == true_mass(certificates[w], 11) != certificates[w].conventional_mass
               for w in model.true_masses)
    # Every hands-on task went through the runner (journalled), the weights placed by id.
    store = await RunStore.open(str(tmp_path / "b.sqlite"))
    try:
        tasks = [e["message"] for e in await store.events(outcome.run_id) if e["kind"] == "task"]
        stored = await store.readings(outcome.run_id)
    finally:
        await store.close()
    readings = [r for r in stored if not r["channel"].startswith("env.")]
    assert len(stored) - len(readings) == 2 * 2 * len(labels)  # the room's T and RH at each point's start and end
    placed = [t for t in tasks if t.startswith("Place weight")]
    assert len(placed) == 6 + 5 + 5
    assert placed[6:11] == [f"Place weight R100 at the {p} of the pan -> done by the simulated operator"
                            for p in ECCENTRIC_POSITIONS]
    assert sum(t.startswith("Clear the pan") for t in tasks) == len(labels)
    assert len(readings) == 2 * len(placed)  # a zero and a loaded reading per loading, all recorded
    assert {r["channel"] for r in readings if r["point_index"] == 1} == {
        f"{kind}:{p}" for kind in ("zero", "load") for p in ECCENTRIC_POSITIONS}


# --- coverage over seeds ----------------------------------------------------------------------

SEEDS = range(1, 23)  # 22 seeds x 10 error-of-indication points = 220 points
EXTRA_WEIGHTS = "".join(
    f'\n[[reference_weights]]\nid = "{w}"\nnominal = {n}\nconventional_mass = {m}\nU = {u}\n'
    for w, n, m, u in (("R5", 5.0, 5.000006, 0.000016), ("R10", 10.0, 9.999992, 0.00002),
                       ("R20b", 20.0, 20.000021, 0.000025), ("R100b", 100.0, 99.99994, 0.00005),
                       ("R200b", 200.0, 200.00008, 0.0001)))
COVERAGE_PROCEDURE = PROCEDURE_TEXT.replace(
    'linearity = ["R20", "R50", "R100", "R150", "R200"]',
    'linearity = ["R5", "R10", "R20", "R20b", "R50", "R100", "R100b", "R150", "R200", "R200b"]')


def _fresh_balance(text: str, rng: random.Random) -> str:
    """The bench file with a new balance for this seed: sensitivity, linearity, eccentricity."""
    text = re.sub(r"(?m)^sensitivity = .*$", f"sensitivity = {rng.uniform(-8e-6, 8e-6):.3e}", text)
    text = re.sub(r"(?m)^linearity = .*$",
                  f"linearity = [0.0, 0.0, {rng.uniform(-1e-3, 1e-3):.6f}, {rng.uniform(-1e-3, 1e-3):.6f}]", text)
    spots = ", ".join(f"{p} = {rng.uniform(-3e-6, 3e-6):.3e}" for p in ECCENTRIC_POSITIONS[1:])
    return re.sub(r"(?m)^eccentricity = .*$", f"eccentricity = {{ {spots} }}", text)


class ErrorTruth:
    """At each error-of-indication result: the balance's true error for the weight it really held."""

    def __init__(self, model: MtSicsBalance, labels: dict[int, str]) -> None:
        self.model = model
        self.labels = labels
        self.truth: dict[int, float] = {}

    def emit(self, event: Any) -> None:
        if isinstance(event, PointResultEvent) and self.labels[event.point_index].startswith("error of"):
            weight = self.labels[event.point_index].rsplit(" ", 1)[1]
            assert self.model.pan == []
            self.truth[event.point_index] = self.model.error_at(self.model.true_masses[weight])

    async def aclose(self) -> None:
        pass


async def test_error_of_indication_within_U_at_the_honest_rate(tmp_path):
    for pattern in (r"(?m)^sensitivity = ", r"(?m)^linearity = ", r"(?m)^eccentricity = "):
        assert len(re.findall(pattern, BENCH_TEXT)) == 1  # the substitutions still match the bench file
    inside = beyond_2u = total = 0
    misses = []
    drawn = []
    for seed in SEEDS:
        text = _fresh_balance(BENCH_TEXT, random.Random(seed)) + EXTRA_WEIGHTS
        clock = VirtualClock()
        running = await start_bench(parse_bench(text, source="balance-bench.toml"), clock, seed=seed)
        procedure = parse_procedure(COVERAGE_PROCEDURE, source="balance-test.toml")
        model = _balance(running.world)
        truth = ErrorTruth(model, {})

        def operator(task: OperatorTask, model: MtSicsBalance = model) -> None:
            assert task.instrument == "balance"
            model.perform(task.action, **task.arguments)

        try:
            procedure.validate(running.bench, lambda name: None)
            truth.labels = {p.index: p.label for p in procedure.points}
            outcome = await run_session(
                running.bench, procedure,
                SessionOptions(db=str(tmp_path / f"seed{seed}.sqlite"), live=False, assume_yes=True),
                clock=clock, sinks=[truth], simulated_operator=operator)
        finally:
            await running.close()
        assert outcome.status == "completed"
        drawn.append(model.true_masses["R100"])
        for r in outcome.results:
            if r["point_index"] not in truth.truth:
                continue
            deviation = abs(r["error"] - truth.truth[r["point_index"]])
            total += 1
            inside += deviation <= r["U"]
            beyond_2u += deviation > 2 * r["U"]
            if deviation > r["U"]:
                misses.append((seed, truth.labels[r["point_index"]], round(deviation / r["U"], 2)))
    rate = inside / total
    print(f"coverage {inside}/{total} = {rate:.3f}; misses {misses}")
    assert len(set(drawn)) == len(SEEDS)  # each seed its own weights
    assert total >= 200
    assert beyond_2u == 0, misses
    assert 0.90 <= rate <= 0.99, (rate, misses)


# --- resume, operator tasks, files ------------------------------------------------------------


class BenchContext:
    """A PointContext on a started simulated bench, the simulated operator doing every task."""

    def __init__(self, running: Any, balance: MettlerSicsBalance, clock: VirtualClock) -> None:
        self.running = running
        self.clock = clock
        self.instruments = {"balance": balance}
        self.readings: list[Reading] = []
        self.tasks: list[OperatorTask] = []

    async def record(self, reading: Reading) -> None:
        self.readings.append(reading)

    def show(self, phase: str, check: Any = None) -> None:
        pass

    async def confirm(self, question: str) -> bool:
        return True

    async def instruct(self, task: OperatorTask) -> None:
        self.tasks.append(task)
        self.running.world[task.instrument].perform(task.action, **task.arguments)


async def test_a_resumed_run_measures_repeatability_and_eccentricity_again():
    """A fresh procedure object (a resumed run) at an error-of-indication point lacks s and the
    eccentricity: it measures both inside that point before the load, so the budget is whole."""
    clock = VirtualClock()
    running = await start_bench(parse_bench(BENCH_TEXT, source="balance-bench.toml"), clock, seed=5)
    balance = MettlerSicsBalance("balance", open_transport(running.resources["balance"]), "B123456789")
    try:
        await balance.connect()
        procedure = parse_procedure(PROCEDURE_TEXT, source="balance-test.toml")
        procedure.validate(running.bench, lambda name: None)
        ctx = BenchContext(running, balance, clock)
        point = procedure.points[4]
        assert point.label == "error of indication R100"
        outcome = await procedure.run_point(ctx, point)  # type: ignore[arg-type]
    finally:
        await balance.close()
        await running.close()
    channels = [r.channel for r in ctx.readings]
    assert channels.count("rep:zero") == channels.count("rep:load") == 6
    assert {c for c in channels if c.startswith("ecc:")} == {
        f"ecc:{kind}:{p}" for kind in ("zero", "load") for p in ECCENTRIC_POSITIONS}
    assert channels[-2:] == ["zero", "load"]
    assert [t.action for t in ctx.tasks].count("place") == 6 + 5 + 1
    place = next(t for t in ctx.tasks if t.action == "place")
    assert set(place.arguments) == {"weight", "position", "certificate"}  # an id and a certificate: no truth
    model = _balance(running.world)
    r = outcome.results[""]
    assert abs(r.error - model.error_at(model.true_masses["R100"])) <= 2 * r.U
    assert procedure.repeatability_s is not None and procedure.eccentricity_max is not None


def test_the_simulated_operator_acts_on_the_balance():
    model = MtSicsBalance("balance", VirtualClock(), seed=3)
    certificate = {"nominal": 100.0, "conventional_mass": 100.00012, "U": 0.00005, "k": 2.0}
    model.perform("place", weight="R100", position="front", certificate=certificate)
    m = model.true_masses["R100"]
    assert model.load == m and model.pan[0].position == "front" and m != 100.00012
    model.perform("remove", weight="R100")
    model.perform("place", weight="R100")  # known now: the same weight, the same true mass
    assert model.load == m and model.pan[0].position == "centre"
    model.perform("clear")
    assert model.pan == []
    model.perform("lift_pan")
    assert model.range_state(model.clock.now()) == "-"
    model.perform("lift_pan", lifted=False)
    with pytest.raises(ValueError, match="no certificate"):
        model.perform("place", weight="R7")
    with pytest.raises(ValueError, match="cannot 'juggle'"):
        model.perform("juggle")


def test_procedure_file_errors_name_the_field():
    bench = parse_bench(BENCH_TEXT, source="balance-bench.toml")
    procedure = parse_procedure(PROCEDURE_TEXT.replace('"R150"', '"R500"'), source="p.toml")
    with pytest.raises(ConfigError) as info:
        procedure.validate(bench, lambda name: None)
    assert info.value.field == "weights.linearity[3]" and "R500" in info.value.problem and "R150" in info.value.fix
    for old, new, field in (("repeats = 6 ", "repeats = 1 ", "procedure.repeats"),
                            ("tolerance = 0.0020", "tolerance = -1", "procedure.tolerance"),
                            ('repeatability = "R100"', "repeatability = 100", "weights.repeatability"),
                            ('decision_rule = "guarded"', 'decision_rule = "lenient"', "procedure.decision_rule"),
                            ("[weights]", "[weight]", "weights")):
        assert old in PROCEDURE_TEXT
        with pytest.raises(ConfigError) as info:
            parse_procedure(PROCEDURE_TEXT.replace(old, new), source="p.toml")
        assert info.value.field == field
    wrong_role = parse_procedure(PROCEDURE_TEXT.replace('balance = "balance"', 'balance = "scale"'), source="p.toml")
    with pytest.raises(ConfigError, match="no instrument 'scale'"):
        wrong_role.validate(bench, lambda name: None)
    broken = BENCH_TEXT.replace("U = 0.00005", 'U = "50 ug"', 1)
    with pytest.raises(ConfigError) as info:
        read_weight_certificates(parse_bench(broken, source="b.toml"))
    assert info.value.field == "reference_weights[2].U"


def test_the_error_model_is_the_documented_one():
    from procedures.balance_test import WeightCertificate, evaluate_error_of_indication

    result, estimate = evaluate_error_of_indication(
        WeightCertificate("R100", 100.0, 100.00012, 0.00005), 100.0005, 0.00005, 5, 0.0001, 0.0003, 100.00012,
        tolerance=0.002)
    assert estimate.expression == ERROR_MODEL
    assert {line.input for line in estimate.budget} == {"I", "dI_L", "dI_0", "dI_ecc", "m_ref"}
    assert result.error == pytest.approx(0.00038) and 1.9 < result.k < 3.0


async def test_a_garbled_reply_mid_point_repeats_the_point_from_a_cleared_pan(tmp_path):
    """A fault while a weight is on the pan: the runner repeats the point, which starts by having
    the pan cleared and the balance zeroed; nothing measured is lost, the results stay honest."""
    text = BENCH_TEXT.replace("zero_range = 4.4", 'zero_range = 4.4\nfaults = [{ kind = "garbage", command = "S", '
                              "after = 15 }]")
    procedure = parse_procedure(PROCEDURE_TEXT, source="balance-test.toml")
    db = str(tmp_path / "f.sqlite")
    outcome = await run_session(
        parse_bench(text, source="balance-bench.toml"), procedure,
        SessionOptions(db=db, simulate=True, seed=2, live=False, assume_yes=True), clock=VirtualClock())
    assert outcome.status == "completed"
    store = await RunStore.open(db)
    try:
        attempts = await store.attempts(outcome.run_id)
        readings = await store.readings(outcome.run_id)
    finally:
        await store.close()
    faulty = [a for a in attempts if a["status"] == "fault"]
    assert len(faulty) == 1 and faulty[0]["point_index"] == 1  # S number 16: in the eccentricity point
    assert any(r["point_index"] == 1 and r["attempt"] == faulty[0]["attempt"] for r in readings)  # kept
    model = _balance(outcome.world)
    assert model.pan == []
    labels = {p.index: p.label for p in procedure.points}
    for r in outcome.results:
        if labels[r["point_index"]].startswith("error of"):
            w = labels[r["point_index"]].rsplit(" ", 1)[1]
            assert abs(r["error"] - model.error_at(model.true_masses[w])) <= 2 * r["U"], w
