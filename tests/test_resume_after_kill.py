"""SIGKILL at random moments, then `daq run --resume`: every point completed once, no reading lost or doubled."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def _daq(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "runner.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _run_exists(db) -> bool:
    if not db.exists():
        return False
    try:
        return sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0] > 0
    except sqlite3.OperationalError:
        return False


def test_sigkill_at_random_moments_then_resume(tmp_path, bench_toml, procedure_toml):
    bench = tmp_path / "bench.toml"
    bench.write_text(bench_toml)
    proc = tmp_path / "proc.toml"
    proc.write_text(procedure_toml.replace('setpoints = ["1 V", "-1 V"]', 'setpoints = ["1 V", "-1 V", "0.5 V"]'))
    db = tmp_path / "runs.sqlite"
    rng = random.Random(20261121)
    kills = 0
    for _ in range(6):
        if _run_exists(db):
            p = _daq("run", "--resume", "1", "--db", str(db), "--no-live")
        else:
            p = _daq("run", "--bench", str(bench), "--procedure", str(proc), "--simulate", "--scale", "8",
                     "--db", str(db), "--yes", "--no-live")
        time.sleep(rng.uniform(1.2, 3.0))
        if p.poll() is not None:
            break
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills += 1
    # finish whatever is left
    if not _run_exists(db):
        pytest.fail("the run was never created: the kills came too early to test anything")
    status = sqlite3.connect(db).execute("SELECT status FROM runs WHERE id = 1").fetchone()[0]
    if status != "completed":
        p = _daq("run", "--resume", "1", "--db", str(db), "--no-live")
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert kills >= 2, "the run finished before it could be killed twice; lower the scale"

    con = sqlite3.connect(db)
    assert con.execute("SELECT status FROM runs").fetchone()[0] == "completed"
    planned = con.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    results = con.execute("SELECT point_index, attempt, uut_mean, ref_mean FROM point_results").fetchall()
    assert sorted(r[0] for r in results) == list(range(planned))  # every point exactly once
    # no reading written twice (the unique constraint makes it impossible; check the data anyway)
    total = con.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
    distinct = con.execute(
        "SELECT COUNT(*) FROM (SELECT DISTINCT point_index, attempt, channel, seq FROM readings)").fetchone()[0]
    assert total == distinct
    # every attempt's readings are contiguous from 0: nothing lost in the middle of what was committed
    for idx, attempt, channel, n, lo, hi in con.execute(
        "SELECT point_index, attempt, channel, COUNT(*), MIN(seq), MAX(seq) FROM readings "
        "GROUP BY point_index, attempt, channel"
    ):
        assert (lo, hi) == (0, n - 1), (idx, attempt, channel, n, lo, hi)
    # the completing attempt holds exactly the repeats, and the result was computed from them
    for idx, attempt, uut_mean, ref_mean in results:
        for channel, mean in (("uut", uut_mean), ("ref", ref_mean)):
            vals = [v for (v,) in con.execute(
                "SELECT value FROM readings WHERE point_index=? AND attempt=? AND channel=?", (idx, attempt, channel))]
            assert len(vals) == 5
            assert mean == pytest.approx(sum(vals) / 5, rel=1e-12, abs=1e-15)
    # attempts cut short by a kill are closed as interrupted, never left running, never completed twice
    statuses = dict(((i, a), s) for i, a, s in con.execute("SELECT point_index, attempt, status FROM point_attempts"))
    assert "running" not in statuses.values()
    for idx, attempt, *_ in results:
        assert statuses[(idx, attempt)] == "complete"
        assert sum(1 for (i, _), s in statuses.items() if i == idx and s == "complete") == 1
    assert kills == 0 or any(s == "interrupted" for s in statuses.values()) or len(statuses) == planned


def test_a_resumed_unattended_simulated_run_stays_unattended(tmp_path, bench_toml, procedure_toml):
    """The demo answers its prompts itself; after a kill, `daq run --resume` must not stop to ask."""
    bench = tmp_path / "bench.toml"
    bench.write_text(bench_toml)
    proc = tmp_path / "proc.toml"
    proc.write_text(procedure_toml + '\n[[points]]\nrange = "100 V"\nsetpoints = ["50 V"]\n')
    db = tmp_path / "runs.sqlite"
    p = _daq("run", "--bench", str(bench), "--procedure", str(proc), "--simulate", "--scale", "8",
             "--db", str(db), "--yes", "--no-live")
    deadline = time.monotonic() + 60
    while not (_run_exists(db) and sqlite3.connect(db).execute("SELECT COUNT(*) FROM point_results").fetchone()[0]):
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.1)
    p.send_signal(signal.SIGKILL)
    p.wait()
    resumed = subprocess.run([sys.executable, "-m", "runner.cli", "run", "--resume", "1", "--db", str(db),
                              "--no-live"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert sqlite3.connect(db).execute("SELECT status FROM runs").fetchone()[0] == "completed"
