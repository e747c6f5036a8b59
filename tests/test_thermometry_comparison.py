"""Thermometer comparison procedure on the simulated thermometry bench, in virtual time.

Eight UUT probes on two readouts against the reference SPRT, all in one bath; the measured
errors must agree with the simulators' true probe errors within 2U.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from daq.bench import load_bench, parse_bench
from daq.clock import VirtualClock
from daq.errors import ConfigError
from daq.transports import open_transport
from drivers.bath import TemperatureBath as BathDriver
from drivers.capabilities import Thermometer
from drivers.fluke1529 import Readout1529
from procedures.thermometer_comparison import (
    ComparisonData,
    ReferenceCertificate,
    ThermometerComparison,
    parse_procedure,
)
from simulators.bench_server import RunningBench, start_bench
from simulators.temperature_bath import TemperatureBath
from simulators.thermometer_readout import ThermometerReadout

DATA = Path(__file__).resolve().parents[1] / "runner" / "data"
LATENCY = 0.01


async def _open(running: RunningBench) -> tuple[BathDriver, dict[str, Thermometer]]:
    bath = BathDriver("bath", open_transport(running.resources["bath"]), "B7341-0001")
    await bath.connect()
    readouts: dict[str, Thermometer] = {}
    for name, serial in (("reference", "R1529-0007"), ("uut_a", "U1529-0101"), ("uut_b", "U1529-0102")):
        readout = Readout1529(name, open_transport(running.resources[name]), serial)
        await readout.connect()
        readouts[name] = readout
    return bath, readouts


def _true_error(running: RunningBench, procedure: ThermometerComparison, data: ComparisonData,
                label: str) -> float:
    """The probe's own error at the temperatures its well had when it was read."""
    name, ch = label.rsplit(".", 1)
    model = running.world[name]
    assert isinstance(model, ThermometerReadout)
    errors = [model.true_error(int(ch), model.temperature_at(int(ch), t)) for t in data.times]
    return math.fsum(errors) / len(errors)


async def test_eight_uuts_errors_agree_with_truth_within_2u() -> None:
    bench = load_bench(DATA / "thermometry-bench.toml")
    procedure = parse_procedure((DATA / "thermometer-comparison.toml").read_text(), source="comparison.toml")
    procedure.validate(bench)
    assert len(procedure.uuts) == 8
    clock = VirtualClock()
    running = await start_bench(bench, clock, latency=LATENCY)
    bath, readouts = await _open(running)
    try:
        within_u = 0
        total = 0
        for setpoint in procedure.setpoints:
            data = await procedure.measure_point(setpoint, bath, readouts["reference"], readouts, clock)
            assert data.stability.stable
            assert data.stability.trace[-1][2] is True  # the bath's own flag agreed
            # One cycle over 10 channels costs one readout's four serial queries, not ten. (The
            # virtual clock may jump one latency early while a pty write is still in flight.)
            gaps = sorted(b - a - procedure.interval for a, b in zip(data.times, data.times[1:], strict=False))
            assert 4 * LATENCY - 1e-9 <= gaps[len(gaps) // 2] <= 5 * LATENCY + 1e-9
            assert gaps[-1] < 10 * LATENCY  # read one by one, a cycle would cost 10 latencies
            results = procedure.evaluate(data, uut_resolution=0.0001, reference_resolution=0.0001)
            for label, result in results.items():
                truth = _true_error(running, procedure, data, label)
                assert abs(result.error - truth) <= 2 * result.U_unrounded, (setpoint, label, result.error, truth)
                within_u += abs(result.error - truth) <= result.U_unrounded
                total += 1
                names = [row.name for row in result.budget.as_rows()]
                assert names == ["UUT repeatability", "reference repeatability", "reference standard",
                                 "UUT resolution", "reference resolution", "bath stability", "bath uniformity"]
                assert result.unit == "degC" and result.n == procedure.repeats
            # The errors are real (tens of mK) and measured to a few mK.
            assert max(abs(r.error) for r in results.values()) > 0.02
            assert max(r.U for r in results.values()) < 0.02
        assert within_u >= 0.8 * total
    finally:
        await bath.safe_state()
        model = running.world["bath"]
        assert isinstance(model, TemperatureBath)
        assert not model.heating and model.setpoint == 23.0
        await bath.close()
        for readout in readouts.values():
            await readout.close()
        await running.close()


def test_reference_certificate_interpolates_and_names_bad_fields() -> None:
    bench = load_bench(DATA / "thermometry-bench.toml")
    cert = ReferenceCertificate.from_bench(bench, "reference")
    assert cert.correction(25.0) == pytest.approx((-0.0013 - 0.0026) / 2)
    assert cert.correction(100.0) == pytest.approx(-0.0036)
    assert cert.standard_uncertainty(75.0) == pytest.approx(0.002)
    text = bench.text.replace("{ at = 50.0, correction = -0.0026, U = 0.003 }",
                              '{ at = 50.0, correction = "small", U = 0.003 }')
    with pytest.raises(ConfigError) as info:
        ReferenceCertificate.from_bench(parse_bench(text, source="b.toml"), "reference")
    assert info.value.field == "instruments.reference.certificate.temperature.points[1].correction"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("repeats = 10", "repeats = 1"), "procedure.repeats"),
        (("tolerance = 0.1 ", "tolerance = -0.1 "), "procedure.tolerance"),
        (('"uut_b.4"]', '"uut_b.4", "uut_c.1"]'), "roles.uuts"),
        (('"uut_a.1",', '"uut_a",'), "roles.uuts[0]"),
        (("setpoints = [0.0, 50.0, 100.0]", "setpoints = [0.0, 50.0, 200.0]"), "points.setpoints[2]"),
        (('reference = "reference"', 'reference = "sprt"'), "roles.reference"),
    ],
)
def test_bad_procedure_names_the_field(change: tuple[str, str], field: str) -> None:
    text = (DATA / "thermometer-comparison.toml").read_text()
    changed = text.replace(*change)
    assert changed != text
    with pytest.raises(ConfigError) as info:
        parse_procedure(changed, source="p.toml").validate(load_bench(DATA / "thermometry-bench.toml"))
    assert info.value.field == field


def test_a_channel_the_readout_does_not_have_is_refused_before_the_bath_is_switched_on():
    from drivers.registry import DRIVERS

    bench = load_bench(DATA / "thermometry-bench.toml")
    text = (DATA / "thermometer-comparison.toml").read_text().replace('"uut_a.4"', '"uut_a.9"')
    procedure = parse_procedure(text, source="c.toml")
    with pytest.raises(ConfigError, match=r"roles.uuts\[3\]: uut_a has no channel 9"):
        procedure.validate(bench, lambda name: DRIVERS.get(bench.instruments[name].driver))
    with pytest.raises(ConfigError, match="stability.window"):
        parse_procedure(text.replace("window = 20", 'window = "ten"'), source="c.toml")
