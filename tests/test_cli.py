"""The command line as a user meets it: the demo's JSON, and clear one-line errors for mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _daq(*args: str, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def test_demo_json_summary_agrees_with_the_simulator(tmp_path):
    r = _daq("demo", "--json", "--scale", "400", "--db", str(tmp_path / "demo.sqlite"),
             "--report", str(tmp_path / "report.md"))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["status"] == "completed"
    assert "scaled time, x400" in summary["time"]
    points = summary["points"]
    assert len(points) == 11
    required = {"setpoint", "unit", "ref_mean", "uut_mean", "error", "U", "k", "dof", "decision", "true_error"}
    for p in points:
        assert required <= set(p)
        assert abs(p["error"] - p["true_error"]) <= 2 * p["U"]
        assert p["decision"] in ("pass", "fail", "undecided")
    assert {p["setpoint"] for p in points} >= {0.0, 10.0, -10.0, -0.1, 100.0}
    # the demo's 100 V range is configured far out of tolerance: it must be caught
    assert [p["decision"] for p in points if abs(p["setpoint"]) == 100.0] == ["fail", "fail"]
    report = (tmp_path / "report.md").read_text()
    assert "| component | type |" in report and "Stability: stable after" in report


def test_bad_bench_file_is_one_clear_line_and_exit_2(tmp_path, procedure_toml):
    bench = tmp_path / "bench.toml"
    bench.write_text('[instruments.dmm]\ndriver = "keysight34465a"\nresource = "10.0.0.5:5025"\n')
    proc = tmp_path / "proc.toml"
    proc.write_text(procedure_toml)
    r = _daq("run", "--bench", str(bench), "--procedure", str(proc), "--db", str(tmp_path / "x.sqlite"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert f"{bench}: instruments.dmm.resource:" in r.stderr.replace("\n", "")
    assert "fix:" in r.stderr
    assert not (tmp_path / "x.sqlite").exists()  # nothing written


def test_unknown_unit_in_procedure_names_the_field(tmp_path, bench_toml, procedure_toml):
    bench = tmp_path / "bench.toml"
    bench.write_text(bench_toml)
    proc = tmp_path / "proc.toml"
    proc.write_text(procedure_toml.replace('"10 V", "-10 V"', '"10 V", "-10 furlongs"'))
    r = _daq("run", "--bench", str(bench), "--procedure", str(proc), "--simulate", "--db", str(tmp_path / "x.sqlite"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "points[1].setpoints[2]" in r.stderr.replace("\n", "")


def test_resume_of_an_unknown_run_is_a_clear_error(tmp_path):
    r = _daq("run", "--resume", "42", "--db", str(tmp_path / "x.sqlite"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no such database file" in r.stderr
    assert not (tmp_path / "x.sqlite").exists()  # a mistyped --db creates nothing
    (tmp_path / "x.sqlite").write_bytes(b"")
    r = _daq("run", "--resume", "42", "--db", str(tmp_path / "x.sqlite"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no run 42" in r.stderr


def test_daq_sim_in_its_own_process_serves_a_run(tmp_path, bench_toml, procedure_toml):
    """`daq sim` prints resource strings; `daq run` in another process calibrates against them."""
    bench = tmp_path / "bench.toml"
    bench.write_text(bench_toml)
    sim = subprocess.Popen([sys.executable, "-m", "runner.cli", "sim", "--bench", str(bench), "--scale", "20"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        resources = dict(sim.stdout.readline().split() for _ in range(2))
        assert set(resources) == {"calibrator", "dmm"}
        assert all(r.startswith("TCPIP::127.0.0.1::") and r.endswith("::SOCKET") for r in resources.values())
        real = bench_toml
        for name, res in resources.items():
            real = real.replace('resource = "TCPIP::127.0.0.1::0::SOCKET"', f'resource = "{res}"', 1) \
                if name == "calibrator" else real
        real = real.replace('resource = "TCPIP::127.0.0.1::0::SOCKET"', f'resource = "{resources["dmm"]}"', 1)
        live_bench = tmp_path / "live-bench.toml"
        live_bench.write_text(real)
        proc = tmp_path / "proc.toml"
        proc.write_text(procedure_toml)
        r = _daq("run", "--bench", str(live_bench), "--procedure", str(proc), "--scale", "20", "--yes", "--json",
                 "--db", str(tmp_path / "r.sqlite"), "--no-live")
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout)
        assert summary["status"] == "completed" and len(summary["points"]) == 5
        assert all(p["true_error"] is None for p in summary["points"])  # another process's world: no truth here
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def test_a_simulated_comparison_reports_each_uuts_true_error(tmp_path):
    data = Path(__file__).resolve().parents[1] / "runner" / "data"
    r = _daq("run", "--bench", str(data / "thermometry-bench.toml"), "--procedure",
             str(data / "thermometer-comparison.toml"), "--simulate", "--scale", "2000", "--yes", "--no-live",
             "--json", "--db", str(tmp_path / "t.sqlite"))
    assert r.returncode == 0, r.stderr
    points = json.loads(r.stdout)["points"]
    assert len({p["channel"] for p in points}) == 8
    assert all(p["true_error"] is not None and abs(p["error"] - p["true_error"]) <= 2 * p["U"] for p in points)
