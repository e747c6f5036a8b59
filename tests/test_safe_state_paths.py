"""Every way a run can end badly leaves the calibrator in standby, checked on the simulator itself."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from daq.bench import parse_bench
from daq.clock import VirtualClock
from daq.events import PointPhaseEvent
from procedures.dc_voltage import StabilityTimeout, parse_procedure
from results.store import RunStore
from runner.session import SessionOptions, run_session
from simulators.bench_server import start_bench


async def _run(tmp_path, bench_text, procedure_text, sinks_for=None):
    clock = VirtualClock()
    running = await start_bench(parse_bench(bench_text, source="bench.toml"), clock)
    running.kept = dict(running.servers)
    sinks = sinks_for(running) if sinks_for else None
    try:
        return running, await run_session(
            running.bench, parse_procedure(procedure_text, source="p.toml"),
            SessionOptions(db=str(tmp_path / "s.sqlite"), live=False, assume_yes=True), clock=clock, sinks=sinks)
    finally:
        await running.close()


def _run_row(tmp_path):
    return sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT status, message FROM runs").fetchone()


async def test_a_point_that_never_settles_times_out_retries_once_then_fails_safe(tmp_path, bench_toml,
                                                                                procedure_toml):
    noisy = bench_toml.replace("noise_ppm_of_range = 0.4", "noise_ppm_of_range = 50")
    holder = {}
    with pytest.raises(StabilityTimeout, match="timed out after"):
        await _run(tmp_path, noisy, procedure_toml, sinks_for=lambda r: holder.setdefault("r", r) and [])
    assert holder["r"].world.calibrator("calibrator").operating is False
    con = sqlite3.connect(tmp_path / "s.sqlite")
    attempts = con.execute("SELECT status, json_extract(stability_json, '$.reason') FROM point_attempts").fetchall()
    assert [a[0] for a in attempts] == ["unstable", "unstable"]  # one retry, as the operator agreed
    assert all("std" in reason for _, reason in attempts)  # the evidence says which criterion failed
    assert _run_row(tmp_path)[0] == "failed"


async def test_a_dropped_connection_mid_point_is_recovered_and_ends_safe(tmp_path, bench_toml, procedure_toml):
    class DropDmm:
        def __init__(self, running):
            self.running, self.done = running, False

        def emit(self, event):
            if not self.done and isinstance(event, PointPhaseEvent) and event.point_index == 2 \
                    and event.phase == "settling":
                self.done = True
                asyncio.get_running_loop().create_task(self.running.servers["dmm"].drop_connections())

        async def aclose(self):
            pass

    holder = {}

    def sinks(running):
        holder["r"] = running
        return [DropDmm(running)]

    # the runner reconnects and repeats the point (tests/test_faults*.py cover every fault kind)
    _, outcome = await _run(tmp_path, bench_toml, procedure_toml, sinks_for=sinks)
    assert outcome.status == "completed"
    assert holder["r"].world.calibrator("calibrator").operating is False
    con = sqlite3.connect(tmp_path / "s.sqlite")
    statuses = con.execute("SELECT status, json_extract(stability_json, '$.reason') FROM point_attempts "
                           "WHERE point_index = 2 ORDER BY attempt").fetchall()
    assert [s for s, _ in statuses] == ["fault", "complete"] and "TransportError" in statuses[0][1]


async def test_a_database_failure_still_puts_the_source_in_standby_first(tmp_path, bench_toml, procedure_toml,
                                                                       monkeypatch):
    async def disk_full(self, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RunStore, "complete_point", disk_full)
    holder = {}
    with pytest.raises(OSError, match="No space"):
        await _run(tmp_path, bench_toml, procedure_toml, sinks_for=lambda r: holder.setdefault("r", r) and [])
    running = holder["r"]
    assert running.world.calibrator("calibrator").operating is False
    assert [c for _, c in running.kept["calibrator"].commands][-3:] == ["STBY", "OUT 0 V", "OPER?"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupting_the_cli_puts_the_calibrator_in_standby(tmp_path, bench_toml, procedure_toml, sig):
    bench = tmp_path / "bench.toml"
    bench.write_text(bench_toml)
    sim = subprocess.Popen([sys.executable, "-m", "runner.cli", "sim", "--bench", str(bench), "--scale", "5"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        resources = dict(sim.stdout.readline().split() for _ in range(2))
        text = bench_toml.replace('resource = "TCPIP::127.0.0.1::0::SOCKET"', f'resource = "{resources["calibrator"]}"',
                                  1).replace('resource = "TCPIP::127.0.0.1::0::SOCKET"',
                                             f'resource = "{resources["dmm"]}"', 1)
        live = tmp_path / "live.toml"
        live.write_text(text)
        proc = tmp_path / "p.toml"
        proc.write_text(procedure_toml)
        run = subprocess.Popen([sys.executable, "-m", "runner.cli", "run", "--bench", str(live), "--procedure",
                                str(proc), "--scale", "5", "--yes", "--no-live", "--json", "--db",
                                str(tmp_path / "r.sqlite")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        host, port = resources["calibrator"].split("::")[1:3]

        def ask(cmd: str) -> str:
            import socket

            with socket.create_connection((host, int(port)), timeout=5) as s:
                s.sendall(cmd.encode() + b"\n")
                return s.makefile().readline().strip()

        deadline = time.monotonic() + 30
        while ask("OPER?") != "1":  # wait until the run has the calibrator in operate
            assert time.monotonic() < deadline and run.poll() is None, run.stderr.read() if run.poll() else ""
            time.sleep(0.05)
        run.send_signal(sig)
        out, err = run.communicate(timeout=30)
        assert run.returncode == 1, err
        assert ask("OPER?") == "0"
        assert float(ask("OUT?").split(",")[0]) == 0.0
        assert json.loads(out)["status"] == "aborted"
        assert "Continue with: daq run --resume 1" in err.replace("\n", "")
        assert "interrupted" in err or "terminated" in err  # the reason is said, not only the status
    finally:
        sim.terminate()
        sim.wait(timeout=10)


class _SpyOperator:
    """Records, at the moment each question is asked, whether the calibrator is live."""

    def __init__(self, running, answers):
        self.running, self.answers, self.seen = running, list(answers), []

    async def confirm(self, question):
        cal = self.running.world.calibrator("calibrator")
        self.seen.append((question, cal.operating))
        return self.answers.pop(0) if self.answers else False


async def test_nobody_is_asked_anything_with_an_output_live(tmp_path, bench_toml, procedure_toml):
    """The hazardous-voltage question and the retry-after-timeout question find the calibrator in standby."""
    from procedures.dc_voltage import StabilityTimeout as Timeout

    proc = procedure_toml + '\n[[points]]\nrange = "100 V"\nsetpoints = ["100 V"]\n'
    noisy_at_100 = bench_toml.replace("resolution_ppm_of_range = 0.1", "resolution_ppm_of_range = 0.1\n"
                                      "ranges = [{ range = 100, noise_ppm_of_range = 80 }]")
    clock = VirtualClock()
    running = await start_bench(parse_bench(noisy_at_100, source="bench.toml"), clock)
    spy = _SpyOperator(running, [True, True, True])  # yes to 100 V, to one retry, to 100 V again
    try:
        with pytest.raises(Timeout):
            await run_session(running.bench, parse_procedure(proc, source="p.toml"),
                              SessionOptions(db=str(tmp_path / "s.sqlite"), live=False), clock=clock, operator=spy)
    finally:
        await running.close()
    questions = [q for q, _ in spy.seen]
    assert any("hazardous" in q for q in questions) and any("Retry" in q for q in questions)
    assert [live for _, live in spy.seen] == [False] * len(spy.seen)


async def test_a_grossly_out_of_tolerance_uut_is_measured_and_fails(tmp_path, bench_toml, procedure_toml):
    """A UUT 500 ppm off on its 10 V range still gets a result: "fail", not a stability timeout."""
    bad = bench_toml.replace("resolution_ppm_of_range = 0.1", "resolution_ppm_of_range = 0.1\n"
                             "ranges = [{ range = 10, gain_ppm = -500 }]")
    running, outcome = await _run(tmp_path, bad, procedure_toml)
    assert outcome.status == "completed"
    ten_volts = [r for r in outcome.results if abs(r["nominal"]) == 10.0]
    assert len(ten_volts) == 2 and all(r["decision"]["outcome"] == "fail" for r in ten_volts)
    for r in ten_volts:
        assert abs(r["error"] - running.world.true_error("dmm", r["nominal"], 10.0)) <= 2 * r["U"]
