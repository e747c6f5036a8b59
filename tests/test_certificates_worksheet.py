"""The internal calibration report: built from a real (simulated, virtual-time) DC run in a SQLite store,
rendered to PDF, and read back with poppler, so what the reviewer sees is checked, not just the HTML."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import xml.etree.ElementTree as ET

import pytest

from daq.bench import parse_bench
from daq.clock import VirtualClock
from procedures.dc_voltage import parse_procedure
from results.certificates import plots
from results.certificates.pdf import html_to_pdf
from results.certificates.worksheet import fmt_num, load_worksheet, stability_words, worksheet_html
from results.store.run_store import RunStore
from runner.session import SessionOptions, run_session
from simulators.bench_server import start_bench

SVG = "{http://www.w3.org/2000/svg}"


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path:
        return path
    message = f"{tool} (poppler-utils) is not installed"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; CI must provide it")
    pytest.skip(f"{message}; apt-get install poppler-utils to run this test")


@pytest.fixture
async def worksheet(tmp_path, bench_toml, procedure_toml):
    db = tmp_path / "runs.sqlite"
    clock = VirtualClock()
    running = await start_bench(parse_bench(bench_toml, source="bench.toml"), clock, seed=7)
    try:
        outcome = await run_session(running.bench, parse_procedure(procedure_toml, source="proc.toml"),
                                    SessionOptions(db=str(db), live=False, assume_yes=True), clock=clock)
    finally:
        await running.close()
    assert outcome.status == "completed"
    store = await RunStore.open(db)
    try:
        async with store.sessions() as session:
            data = await load_worksheet(session, outcome.run_id)
    finally:
        await store.close()
    return data, db, outcome.run_id


def _text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "worksheet.pdf"
    path.write_bytes(pdf)
    out = subprocess.run([_poppler("pdftotext"), "-layout", str(path), "-"], capture_output=True, text=True,
                         check=True).stdout
    return out


async def test_worksheet_pdf_shows_the_stored_results_budgets_and_evidence(worksheet, tmp_path):
    data, db, run_id = worksheet
    json.dumps(data)  # JSON-able as promised
    html = worksheet_html(data, certificate_number="C-0042")
    pdf = html_to_pdf(html)
    text = _text(pdf, tmp_path)
    flat = re.sub(r"\s+", " ", text)
    assert "Internal calibration report — not a certificate" in text
    assert "C-0042" in text and re.search(r"page 1 of \d+", text)
    con = sqlite3.connect(db)
    stored = con.execute("SELECT point_index, result_json FROM point_results WHERE run_id = ? ORDER BY point_index",
                         (run_id,)).fetchall()
    assert len(stored) == 5 == len(data["points"])
    for index, result_json in stored:
        result = json.loads(result_json)
        shown = data["points"][index]["results"][0]
        assert shown["error"] == result["error"] and shown["U"] == result["U"]
        assert fmt_num(result["error"]) in text, (index, fmt_num(result["error"]))
        assert fmt_num(result["U"]) in text
    names = {n for (n,) in con.execute("SELECT DISTINCT name FROM budget_lines")}
    assert len(names) == 4
    for name in names:
        assert name in text
    for (stability_json,) in con.execute("SELECT stability_json FROM point_attempts WHERE run_id = ?", (run_id,)):
        reason = json.loads(stability_json)["reason"]
        assert reason in flat
    for point in data["points"]:
        assert re.sub(r"\s+", " ", stability_words(point["stability"]))[:60] in flat
    png = _page_png(pdf, tmp_path)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def _page_png(pdf: bytes, tmp_path) -> bytes:
    path = tmp_path / "w.pdf"
    path.write_bytes(pdf)
    subprocess.run([_poppler("pdftoppm"), "-png", "-r", "50", "-f", "1", "-l", "1", str(path), str(tmp_path / "p")],
                   check=True)
    pages = sorted(tmp_path.glob("p*.png"))
    assert len(pages) == 1
    return pages[0].read_bytes()


async def test_load_worksheet_keeps_attempts_readings_and_trace(worksheet):
    data, db, run_id = worksheet
    assert data["run"]["id"] == run_id and data["run"]["status"] == "completed"
    assert len(data["run"]["procedure_toml_sha256"]) == 64
    con = sqlite3.connect(db)
    for point in data["points"]:
        assert point["attempt_count"] == 1 and point["attempts"][0]["status"] == "complete"
        assert point["stability"]["stable"] is True
        channels = {s["channel"]: s for s in point["readings"]}
        assert set(channels) == {"settle", "uut", "ref"} and channels["uut"]["n"] == 5
        uut = [v for (v,) in con.execute("SELECT value FROM readings WHERE point_index = ? AND channel = 'uut'",
                                         (point["index"],))]
        assert channels["uut"]["mean"] == pytest.approx(sum(uut) / len(uut), rel=1e-12)
        trace = point["trace"]
        assert len(trace["readings"]) == point["stability"]["samples"]
        assert trace["stable_at"] == point["stability"]["ended_at"]
        assert trace["window"][0] > trace["stable_at"]
        result = point["results"][0]
        assert [b["name"] for b in result["budget"]][0] == "UUT repeatability"
        assert {b["kind"] for b in result["budget"]} == {"A", "B"}


# -- plots ---------------------------------------------------------------------------------------------

POINTS = [
    {"nominal": 1.0, "label": "1 V", "error": 12e-6, "U": 5e-6, "tolerance": 30e-6, "decision": "pass"},
    {"nominal": 2.0, "label": "2 V", "error": -20e-6, "U": 8e-6, "tolerance": 30e-6, "decision": "conditional pass"},
    {"nominal": 3.0, "label": "3 V <&>", "error": 45e-6, "U": 6e-6, "tolerance": 30e-6, "decision": "fail"},
]


def _y_map(root):
    ticks = [(float(g.get("data-value")), float(g.get("data-y"))) for g in root.iter(f"{SVG}g")
             if g.get("class") == "ytick"]
    (v0, y0), (v1, y1) = ticks[0], ticks[-1]
    return lambda v: y0 + (v - v0) * (y1 - y0) / (v1 - v0)


def test_error_plot_is_svg_with_one_marker_and_an_exact_error_bar_per_point():
    svg = plots.error_plot(POINTS, "V", title="errors & <limits>")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("viewBox") == "0 0 600 300" and root.get("width") == "160mm"
    markers = [e for e in root.iter() if "marker" in (e.get("class") or "").split()]
    assert len(markers) == 3
    assert [m.get("class") for m in markers] == ["marker pass", "marker conditional", "marker fail"]
    to_y = _y_map(root)
    bars = [e for e in root.iter(f"{SVG}line") if e.get("class") == "ebar"]
    assert len(bars) == 3
    for bar, p in zip(bars, POINTS, strict=True):
        assert float(bar.get("y1")) == pytest.approx(to_y(p["error"] - p["U"]), abs=0.011)
        assert float(bar.get("y2")) == pytest.approx(to_y(p["error"] + p["U"]), abs=0.011)
    texts = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "Error / µV" in texts and "errors & <limits>" in texts
    assert len([e for e in root.iter() if e.get("class") == "tol"]) == 2
    assert svg == plots.error_plot(POINTS, "V", title="errors & <limits>")  # deterministic


def test_error_plot_tolerance_only_where_given_and_labels_escaped():
    points = [p | {"tolerance": None} for p in POINTS]
    root = ET.fromstring(plots.error_plot(points, "V"))
    assert not [e for e in root.iter() if e.get("class") in ("tol", "tol-band")]
    # repeated setpoints: a category axis, labelled by point (the label with <&> survives)
    repeated = [p | {"nominal": 1.0} for p in POINTS]
    svg = plots.error_plot(repeated, "V")
    root = ET.fromstring(svg)
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "xlabel"]
    assert labels == ["1 V", "2 V", "3 V <&>"]
    assert "3 V &lt;&amp;&gt;" in svg


def test_nice_ticks_and_prefix():
    assert plots.nice_ticks(-37e-6, 52e-6) == pytest.approx([-4e-5, -2e-5, 0.0, 2e-5, 4e-5, 6e-5])
    assert plots.si_scale(4e-5, "V") == (1e-6, "µV")
    assert plots.si_scale(4e-5, "°C")[1] == "10⁻⁶ °C"


def test_stability_trace_marks_the_decision_and_shades_the_window():
    readings = [(0.2 * i, 1.0 - 0.5 ** i + (1e-6 if i % 2 else 0.0)) for i in range(40)]
    svg = plots.stability_trace(readings, unit="V", stable_at=6.0, window=(6.2, 7.0), title="a <b>")
    root = ET.fromstring(svg)
    classes = [e.get("class") for e in root.iter()]
    assert classes.count("stable-at") == 2  # the full trace and the zoom on the tail
    assert classes.count("window") == 2
    assert any((t.text or "") == "a <b>" for t in root.iter(f"{SVG}text"))
    none = ET.fromstring(plots.stability_trace(readings, unit="V", stable_at=None, window=None))
    assert "window" not in [e.get("class") for e in none.iter()]
