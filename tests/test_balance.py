"""MT-SICS balance: the simulator on a pseudo-terminal, its driver, on virtual time.

The driver goes through the real serial transport (pyserial-asyncio-fast on a pty); the tests
compare what it reads with the simulator's ground truth (the true load on the pan and the
balance's configured errors), which a real bench never reveals.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator

import pytest

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError, InstrumentError, TransportTimeout
from daq.reference_weights import read_reference_weights
from daq.transports import open_transport
from drivers.capabilities import Balance, BalanceNotStable, BalanceOverload, BalanceUnderload
from drivers.mettler_sics import MettlerSicsBalance
from drivers.registry import DRIVERS, build_driver, check_drivers
from simulators.balance_mtsics import MtSicsBalance, true_mass
from simulators.bench_server import RunningBench, start_bench
from simulators.world import SimulatedWorld

SERIAL = "B123456789"
SIGMA = 0.00004
D = 0.0001

BENCH = f"""
[bench]
name = "balance test bench"
seed = 11

[instruments.balance]
driver = "mettler_sics"
resource = "ASRL/dev/ttyUSB0::INSTR"
serial = "{SERIAL}"

[instruments.balance.simulation]
capacity = 220.0
readability = 0.0001
repeatability = {SIGMA}
sensitivity = 5e-6
linearity = [0.0, 0.0, 0.0008, -0.0008]
eccentricity = {{ front = 3e-6, back = -2e-6, left = 1.5e-6, right = -1e-6 }}
time_constant = 0.8
stability_timeout = 20.0
zero_range = 4.4

[[reference_weights]]
id = "R50"
nominal = 50.0
conventional_mass = 50.00004
U = 0.00003

[[reference_weights]]
id = "R100"
nominal = 100.0
conventional_mass = 100.00012
U = 0.00005
k = 2.0

[[reference_weights]]
id = "R200"
nominal = 200.0
conventional_mass = 199.99985
U = 0.0001
"""


@pytest.fixture
async def sim() -> AsyncIterator[RunningBench]:
    running = await start_bench(parse_bench(BENCH, source="balance.toml"), VirtualClock())
    yield running
    await running.close()


def model_of(sim: RunningBench) -> MtSicsBalance:
    model = sim.world["balance"]
    assert isinstance(model, MtSicsBalance)
    return model


async def _balance(sim: RunningBench) -> MettlerSicsBalance:
    balance = MettlerSicsBalance("balance", open_transport(sim.resources["balance"]), SERIAL)
    await balance.connect()
    return balance


def _within_noise(value: float, truth: float, k: float = 5.0) -> bool:
    return abs(value - truth) <= k * SIGMA + D


# --- protocol -------------------------------------------------------------------------------------


async def test_exact_replies_on_the_wire_are_closed_by_crlf(sim: RunningBench) -> None:
    assert re.fullmatch(r"ASRL/dev/pts/\d+::INSTR", sim.resources["balance"])
    # Reading up to CR LF proves the terminator: a reply closed by LF alone would time out.
    wire = open_transport(sim.resources["balance"], read_termination="\r\n", write_termination="\r\n", timeout=2.0)
    try:
        assert await wire.query("I4") == f'I4 A "{SERIAL}"'
        assert re.fullmatch(r"S S {4,5}-?0\.\d{4} g", await wire.query("S"))  # 10-character value field
        assert re.fullmatch(r"S S {4,5}-?0\.\d{4} g", await wire.query("SI"))
        assert await wire.query("Z") == "Z A"
        assert await wire.query("TAC") == "TAC A"
        assert re.fullmatch(r'I2 A "XPR205 220\.0000 g"', await wire.query("I2"))
        assert await wire.query("XYZ") == "ES"
        assert await wire.query("s") == "ES"  # MT-SICS commands are upper case
        assert await wire.query("S 1") == "ES"
        assert await wire.query("SIR") == "ES"  # repeat mode is not simulated
        assert await wire.query("TA 5 kg") == "EL"
        assert await wire.query("TA 5 g") == "TA A     5.0000 g"
        assert await wire.query("TA") == "TA A     5.0000 g"
        assert await wire.query("@") == f'I4 A "{SERIAL}"'  # cancel: the tare goes
        assert await wire.query("TA") == "TA A     0.0000 g"
    finally:
        await wire.close()


async def test_driver_commands_and_capability(sim: RunningBench) -> None:
    balance = await _balance(sim)
    assert isinstance(balance, Balance)
    assert balance.idn == f"METTLER TOLEDO,{SERIAL}"
    assert balance.transport.write_termination == b"\r\n"  # type: ignore[attr-defined]
    await balance.read_stable()
    await balance.read_immediate()
    await balance.zero()
    await balance.tare()
    await balance.clear_tare()
    assert [c for _, c in sim.servers["balance"].commands] == ["I4", "S", "SI", "Z", "T", "TAC"]
    assert balance.resolution() == pytest.approx(D)
    assert await balance.errors() == []
    await balance.close()


async def test_wrong_serial_is_refused(sim: RunningBench) -> None:
    balance = MettlerSicsBalance("balance", open_transport(sim.resources["balance"]), "OTHER")
    with pytest.raises(InstrumentError, match=r"serial number 'B123456789' from I4 does not match.*'OTHER'"):
        await balance.connect()
    await balance.close()


async def test_general_errors_are_named(sim: RunningBench) -> None:
    balance = await _balance(sim)
    with pytest.raises(InstrumentError, match=r"ES syntax error .* to 'XYZ'"):
        await balance._query("XYZ")
    with pytest.raises(InstrumentError, match=r"EL logical error"):
        await balance._query("TA 1 lb")
    sim.faults("balance").arm("error", command="S")  # a corrupted command on the line
    with pytest.raises(InstrumentError, match=r"ET transmission error .* to 'S'"):
        await balance.read_stable()
    assert _within_noise(await balance.read_stable(), 0.0)  # the next one is fine
    await balance.close()


async def test_garbage_reply_is_a_clear_error_and_the_next_reading_is_good(sim: RunningBench) -> None:
    balance = await _balance(sim)
    sim.faults("balance").arm("garbage", command="S")
    with pytest.raises(InstrumentError, match=r"unreadable reply .* to 'S'"):
        await balance.read_stable()
    assert sim.faults("balance").fired("garbage") == 1
    assert _within_noise(await balance.read_stable(), 0.0)
    await balance.close()


async def test_power_cycle_loses_the_command_then_the_balance_wakes_zeroed(sim: RunningBench) -> None:
    model = model_of(sim)
    balance = MettlerSicsBalance("balance", open_transport(sim.resources["balance"], timeout=0.3), SERIAL)
    await balance.connect()
    model.place("beaker", 1.0)
    await balance.tare()
    sim.faults("balance").arm("power_cycle", command="S")
    with pytest.raises(TransportTimeout):
        await balance.read_stable()
    assert model.power_cycles == 1 and model.tare_value == 0.0
    assert _within_noise(await balance.read_stable(), 0.0)  # zeroed at power-on with the beaker on
    await balance.close()


# --- dynamics -------------------------------------------------------------------------------------


async def test_dynamic_after_a_placement_then_stable(sim: RunningBench) -> None:
    clock = sim.clock
    model = model_of(sim)
    balance = await _balance(sim)
    model.place("R100", 100.0)
    value, stable = await balance.read_immediate()
    assert not stable and value < 1.0  # the pan has only begun to move
    await clock.sleep(2.0)
    value, stable = await balance.read_immediate()
    assert not stable
    assert value == pytest.approx(100.0 * (1 - math.exp(-2.0 / 0.8)), abs=0.01)  # first order, tau 0.8 s
    await clock.sleep(20.0)
    value, stable = await balance.read_immediate()
    assert stable and _within_noise(value, model.true_indication())
    await balance.close()


async def test_s_holds_the_line_until_stable(sim: RunningBench) -> None:
    clock = sim.clock
    model = model_of(sim)
    balance = await _balance(sim)
    model.place("R100", 100.0)
    t0 = clock.now()
    value = await balance.read_stable()
    waited = clock.now() - t0
    # the swing shrinks into the band, then stays there for the stability interval
    expected = 0.8 * math.log(100.0 / model.stable_band) + model.stability_interval
    assert expected - 0.01 <= waited <= expected + 0.11
    assert _within_noise(value, model.true_indication())
    # Stable now: the next S answers at once.
    t1 = clock.now()
    await balance.read_stable()
    assert clock.now() - t1 < 1e-9
    await balance.close()


async def test_s_gives_up_with_s_i_after_the_stability_timeout(sim: RunningBench) -> None:
    clock = sim.clock
    model = model_of(sim)
    model.stability_timeout = 3.0
    balance = await _balance(sim)
    model.place("R200", 200.0)
    t0 = clock.now()
    with pytest.raises(BalanceNotStable, match=r"S I"):
        await balance.read_stable()
    assert clock.now() - t0 == pytest.approx(3.0, abs=1e-6)
    await balance.close()


# --- zero, tare, range ----------------------------------------------------------------------------


async def test_zero_and_tare(sim: RunningBench) -> None:
    model = model_of(sim)
    balance = await _balance(sim)
    model.place("pan-brush", 2.0)
    await balance.zero()  # 2 g is inside the +-4.4 g zero-setting range
    assert _within_noise(await balance.read_stable(), 0.0)
    model.place("beaker", 30.0, "front")
    with pytest.raises(InstrumentError, match=r"Z \+.*zero-setting range"):
        await balance.zero()
    tare = await balance.tare()
    assert tare == pytest.approx(30.0 + model.error_at(32.0) - model.error_at(2.0) + 3e-6 * 30.0, abs=D)
    assert _within_noise(await balance.read_stable(), 0.0)
    model.place("R50", 50.0)
    value = await balance.read_stable()
    assert _within_noise(value, model.true_indication())
    assert value == pytest.approx(50.0, abs=0.001)  # net of the beaker
    await balance.clear_tare()
    assert _within_noise(await balance.read_stable(), model.true_indication())
    assert model.tare_value == 0.0
    model.remove()
    assert _within_noise(await balance.read_stable(), -model.error_at(2.0) - 2.0)  # zeroed with 2 g on
    await balance.close()


async def test_overload_and_underload_are_their_own_errors(sim: RunningBench) -> None:
    model = model_of(sim)
    balance = await _balance(sim)
    model.place("heavy", 230.0)
    with pytest.raises(BalanceOverload, match=r"overload \(S \+\)"):
        await balance.read_stable()
    with pytest.raises(BalanceOverload):
        await balance.read_immediate()
    model.remove("heavy")
    model.lift_pan()
    with pytest.raises(BalanceUnderload, match=r"underload \(S -\)"):
        await balance.read_immediate()
    model.lift_pan(False)
    assert _within_noise(await balance.read_stable(), 0.0)
    await balance.close()


# --- the balance's errors, as configured ----------------------------------------------------------


async def test_eccentricity_per_position(sim: RunningBench) -> None:
    model = model_of(sim)
    balance = await _balance(sim)
    readings: dict[str, float] = {}
    for position in ("centre", "front", "back", "left", "right"):
        model.place("R100", 100.0, position)
        readings[position] = await balance.read_stable()
        assert _within_noise(readings[position], model.true_indication()), position
        assert _within_noise(readings[position] - 100.0, model.error_at(100.0, position)), position
        model.remove("R100")
        await balance.read_stable()
    # front reads 3e-6 * 100 g = 0.3 mg above the centre, back 0.2 mg below
    assert readings["front"] - readings["centre"] == pytest.approx(0.0003, abs=10 * SIGMA + 2 * D)
    assert readings["back"] - readings["centre"] == pytest.approx(-0.0002, abs=10 * SIGMA + 2 * D)


async def test_linearity_and_sensitivity(sim: RunningBench) -> None:
    model = model_of(sim)
    balance = await _balance(sim)
    weights = read_reference_weights(sim.bench)
    for weight_id in ("R50", "R100", "R200"):
        mass = true_mass(weights[weight_id], 11)
        model.place(weight_id, mass)
        value = await balance.read_stable()
        x = mass / 220.0
        expected_error = 5e-6 * mass + 0.0008 * x**2 - 0.0008 * x**3
        assert model.error_at(mass) == pytest.approx(expected_error, rel=1e-12)
        assert _within_noise(value - mass, expected_error), weight_id
        model.remove(weight_id)
        await balance.read_stable()


async def test_zero_drift(sim: RunningBench) -> None:
    model = model_of(sim)
    model.zero_drift = 2e-6  # g per s
    balance = await _balance(sim)
    await sim.clock.sleep(100.0)
    assert _within_noise(await balance.read_stable(), 0.0002)
    await balance.zero()
    assert _within_noise(await balance.read_stable(), 0.0)
    await balance.close()


def test_reference_weights_and_their_true_masses() -> None:
    bench = parse_bench(BENCH, source="balance.toml")
    weights = read_reference_weights(bench)
    assert set(weights) == {"R50", "R100", "R200"}
    assert weights["R50"].k == 2.0 and weights["R100"].conventional_mass == 100.00012
    drawn = [true_mass(w, 11) - w.conventional_mass for w in weights.values()]
    assert all(abs(d) < 4 * w.U / w.k for d, w in zip(drawn, weights.values(), strict=True))
    assert true_mass(weights["R100"], 11) == true_mass(weights["R100"], 11) != true_mass(weights["R100"], 12)


# --- configuration --------------------------------------------------------------------------------


def test_registry_and_world_know_the_balance() -> None:
    bench = parse_bench(BENCH, source="balance.toml")
    check_drivers(bench)
    assert DRIVERS["mettler_sics"] is MettlerSicsBalance
    assert isinstance(build_driver(bench.instruments["balance"]), MettlerSicsBalance)
    assert isinstance(SimulatedWorld(bench, VirtualClock())["balance"], MtSicsBalance)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("readability = 0.0001", "readability = -0.0001", "instruments.balance.simulation.readability"),
        ("readability = 0.0001", "readability = 0.0001\nstable_band = 1e-6",
         "instruments.balance.simulation.stable_band"),
        ("capacity = 220.0", 'capacity = "220 g"', "instruments.balance.simulation.capacity"),
        ("time_constant = 0.8", "time_constant = 0.0", "instruments.balance.simulation.time_constant"),
        ("time_constant = 0.8", "settle = 0.8", "instruments.balance.simulation.settle"),
        ("eccentricity = {", "eccentricity = { top = 1e-6, ", "instruments.balance.simulation.eccentricity.top"),
        ("linearity = [0.0, 0.0, 0.0008, -0.0008]", 'linearity = [0.0, "x"]',
         "instruments.balance.simulation.linearity[1]"),
        ("zero_range = 4.4", "zero_range = 400.0", "instruments.balance.simulation.zero_range"),
    ],
)
def test_bad_simulation_parameters_name_the_field(old: str, new: str, field: str) -> None:
    assert old in BENCH
    with pytest.raises(ConfigError) as info:
        SimulatedWorld(parse_bench(BENCH.replace(old, new, 1), source="balance.toml"), VirtualClock())
    assert info.value.field == field
    assert info.value.source == "balance.toml"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("U = 0.00005", "U = 0.0", "reference_weights[1].U"),
        ('id = "R200"', 'id = "R100"', "reference_weights[2].id"),
        ("conventional_mass = 50.00004", "mass = 50.00004", "reference_weights[0].mass"),
    ],
)
def test_bad_reference_weights_name_the_field(old: str, new: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        read_reference_weights(parse_bench(BENCH.replace(old, new, 1), source="balance.toml"))
    assert info.value.field == field
