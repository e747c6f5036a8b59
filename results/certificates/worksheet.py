"""The internal calibration report (worksheet): everything a reviewer needs to accept a run's results.

Not a certificate. It shows the evidence behind each result, read back from the run store as it was
written: every attempt (failed ones too), the stability decision and its trace, a summary of the raw
readings per channel, the full uncertainty budget and the decision. Numbers come from the stored
result_json and budget lines unchanged; only their display is formatted.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections import defaultdict
from html import escape
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from results.certificates import plots
from results.store.models import AttemptRow, BudgetLineRow, PlannedPointRow, PointResultRow, ReadingRow, RunRow

TRACE_CHANNEL = "settle"
"""The channel procedures record their settling samples on (dc_voltage, pressure, thermometry)."""


# -- numbers -------------------------------------------------------------------------------------------

def fmt_num(x: Any, digits: int = 6) -> str:
    """Engineering form with `digits` significant digits (17.5400e-6): enough to review, exponents that
    line up with SI prefixes. Non-numbers are shown as they are (dof "inf", a missing tolerance)."""
    if x is None:
        return "—"
    if isinstance(x, str):
        try:
            x = float(x)
        except ValueError:
            return x
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    exp3 = 3 * math.floor(math.log10(abs(x)) / 3)
    mantissa = x / 10**exp3
    int_digits = len(str(int(abs(mantissa))))
    text = f"{mantissa:.{max(0, digits - int_digits)}f}"
    if abs(float(text)) >= 1000:  # rounding carried into the next group: 999.9996e-6 -> 1.00000e-3
        exp3 += 3
        text = f"{x / 10**exp3:.{digits - 1}f}"
    return text if exp3 == 0 else f"{text}e{exp3}"


def fmt_dof(x: Any) -> str:
    """Degrees of freedom: whole numbers when large, ∞ for infinite."""
    if isinstance(x, str) or x is None:
        return fmt_num(x)
    x = float(x)
    if math.isinf(x):
        return "∞"
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def _json_num(x: float) -> float | str:
    """JSON has no infinity; the store writes "inf" in result_json, so the worksheet does too."""
    return x if math.isfinite(x) else str(x)


# -- loading -------------------------------------------------------------------------------------------

async def load_worksheet(session: AsyncSession, run_id: int) -> dict[str, Any]:
    """Everything the worksheet shows, read from the run store, as a JSON-able dict.

    Shape: {"run": {...}, "points": [{index, nominal, unit, range, label, attempts: [...], attempt_count,
    completing_attempt, stability, readings: [per attempt and channel summary], trace, results: [...]}]}.
    """
    run = await session.get(RunRow, run_id)
    if run is None:
        raise LookupError(f"run {run_id} is not in the store")
    planned = (await session.scalars(select(PlannedPointRow).where(PlannedPointRow.run_id == run_id)
                                     .order_by(PlannedPointRow.point_index))).all()
    attempts = (await session.scalars(select(AttemptRow).where(AttemptRow.run_id == run_id)
                                      .order_by(AttemptRow.point_index, AttemptRow.attempt))).all()
    results = (await session.scalars(select(PointResultRow).where(PointResultRow.run_id == run_id)
                                     .order_by(PointResultRow.point_index, PointResultRow.id))).all()
    lines = (await session.scalars(select(BudgetLineRow).where(BudgetLineRow.result_id.in_([r.id for r in results]))
                                   .order_by(BudgetLineRow.result_id, BudgetLineRow.position))).all()
    readings = (await session.execute(
        select(ReadingRow.point_index, ReadingRow.attempt, ReadingRow.channel, ReadingRow.t, ReadingRow.value,
               ReadingRow.unit).where(ReadingRow.run_id == run_id).order_by(ReadingRow.id))).all()
    by_result: dict[int, list[BudgetLineRow]] = defaultdict(list)
    for line in lines:
        by_result[line.result_id].append(line)
    samples: dict[tuple[int, int, str], list[tuple[float, float, str]]] = defaultdict(list)
    for point_index, attempt, channel, t, value, unit in readings:
        samples[(point_index, attempt, channel)].append((t, value, unit))
    points = [_point(p, [a for a in attempts if a.point_index == p.point_index],
                     [r for r in results if r.point_index == p.point_index], by_result, samples) for p in planned]
    return {"run": _run(run), "points": points}


def _run(run: RunRow) -> dict[str, Any]:
    return {
        "id": run.id, "procedure": run.procedure_name, "bench": run.bench_name, "operator": run.operator,
        "started": run.created_at, "finished": run.finished_at, "status": run.status, "message": run.message,
        "procedure_source": run.procedure_source, "bench_source": run.bench_source,
        "procedure_toml_sha256": hashlib.sha256(run.procedure_toml.encode()).hexdigest(),
        "bench_toml_sha256": hashlib.sha256(run.bench_toml.encode()).hexdigest(),
    }


def _point(p: PlannedPointRow, attempts: list[AttemptRow], results: list[PointResultRow],
           lines: dict[int, list[BudgetLineRow]],
           samples: dict[tuple[int, int, str], list[tuple[float, float, str]]]) -> dict[str, Any]:
    listed = [{"attempt": a.attempt, "started": a.started_at, "status": a.status,
               "stability": json.loads(a.stability_json) if a.stability_json else None} for a in attempts]
    owner = results[0].attempt if results else None
    shown = owner if owner is not None else (attempts[-1].attempt if attempts else None)
    stability = next((a["stability"] for a in listed if a["attempt"] == shown), None)
    summaries = [_summary(attempt, channel, rows) for (idx, attempt, channel), rows in sorted(samples.items())
                 if idx == p.point_index]
    return {
        "index": p.point_index, "nominal": p.nominal, "unit": p.unit, "range": p.range_, "label": p.label,
        "attempt_count": len(listed), "attempts": listed, "completing_attempt": owner,
        "stability": stability, "readings": summaries,
        "trace": _trace(samples, p.point_index, shown, stability, p.unit),
        "results": [_result(r, lines.get(r.id, [])) for r in results],
    }


def _summary(attempt: int, channel: str, rows: list[tuple[float, float, str]]) -> dict[str, Any]:
    values = [v for _, v, _ in rows]
    finite = [v for v in values if math.isfinite(v)]
    return {
        "attempt": attempt, "channel": channel, "unit": rows[0][2], "n": len(values),
        "mean": math.fsum(finite) / len(finite) if finite else None,
        "std": statistics.stdev(finite) if len(finite) > 1 else None,
        "min": min(finite) if finite else None, "max": max(finite) if finite else None,
        "t_first": rows[0][0], "t_last": rows[-1][0], "non_finite": len(values) - len(finite),
    }


def _trace(samples: dict[tuple[int, int, str], list[tuple[float, float, str]]], point_index: int,
           attempt: int | None, stability: Any, unit: str) -> dict[str, Any] | None:
    """The settling samples of the shown attempt, the instant of the stability decision and the span of the
    readings taken after it (every other channel of that attempt)."""
    if attempt is None:
        return None
    settle = samples.get((point_index, attempt, TRACE_CHANNEL), [])
    if not settle:
        return None
    after = [t for (idx, att, ch), rows in samples.items() if idx == point_index and att == attempt
             and ch != TRACE_CHANNEL for t, _, _ in rows]
    stable_at = stability.get("ended_at") if stability and stability.get("stable") else None
    window = int((stability or {}).get("criteria", {}).get("window") or 8)
    before = [t for t, _, _ in settle if stable_at is None or t <= stable_at]
    return {
        "channel": TRACE_CHANNEL, "attempt": attempt, "unit": settle[0][2] or unit,
        "readings": [[t, v] for t, v, _ in settle if math.isfinite(v)],
        "stable_at": stable_at, "window": [min(after), max(after)] if after else None,
        "zoom_from": before[-min(len(before), window)] if before else None,
    }


def _result(row: PointResultRow, lines: list[BudgetLineRow]) -> dict[str, Any]:
    stored = json.loads(row.result_json)
    decision = stored.get("decision", {})
    return {
        "channel": row.channel, "attempt": row.attempt, "nominal": stored["nominal"], "unit": stored["unit"],
        "ref_mean": stored["ref_mean"], "uut_mean": stored["uut_mean"], "error": stored["error"],
        "correction": stored["correction"], "u_c": stored["u_c"], "U": stored["U"], "k": stored["k"],
        "dof_eff": stored["dof_eff"], "tolerance": stored.get("tolerance"), "error_text": stored.get("error_text"),
        "U_text": stored.get("U_text"), "decision": decision.get("outcome", row.decision),
        "statement": decision.get("statement", ""), "rule": decision.get("rule", row.rule),
        "p": stored.get("budget", {}).get("p"),
        "budget": [{"name": ln.name, "kind": ln.kind, "distribution": ln.distribution, "u": ln.u,
                    "sensitivity": ln.sensitivity, "contribution": ln.contribution, "dof": _json_num(ln.dof),
                    "note": ln.note} for ln in lines],
    }


# -- HTML ------------------------------------------------------------------------------------------------

def _css_string(text: str) -> str:
    """A CSS string literal: anything but plain characters as a hex escape, so no text can end the rule."""
    return '"' + "".join(c if c.isalnum() or c in " .-_:/" else f"\\{ord(c):x} " for c in text) + '"'


_CSS = """
@page { size: A4; margin: 22mm 18mm 20mm 18mm;
  @top-left { content: "Internal calibration report — not a certificate"; font: bold 8.5pt DejaVu Sans; }
  @top-right { content: RUN_LABEL; font: 8.5pt DejaVu Sans; }
  @bottom-left { content: RUN_FOOT; font: 7.5pt DejaVu Sans; color: #555; }
  @bottom-right { content: "page " counter(page) " of " counter(pages); font: 8pt DejaVu Sans; } }
body { font: 9pt/1.3 "DejaVu Sans", sans-serif; color: #111; }
h1 { font-size: 15pt; margin: 0 0 4mm; } h2 { font-size: 12pt; margin: 6mm 0 2mm; border-bottom: 1px solid #999; }
h3 { font-size: 10pt; margin: 4mm 0 1.5mm; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 3mm; font-size: 8pt; }
th, td { border: 0.5pt solid #aaa; padding: 0.6mm 1.2mm; vertical-align: top; }
th { background: #eee; text-align: left; }
td.num { text-align: right; white-space: nowrap; font-family: "DejaVu Sans Mono", monospace; }
td.name, td.label { white-space: nowrap; }
table.ident td:first-child { width: 32%; color: #333; }
tr.total td { font-weight: bold; background: #f6f6f6; }
.fail { color: #c0262d; font-weight: bold; } .warn { color: #a65e00; }
section.point { break-before: page; }
.plot { margin: 2mm 0; } p.evidence { margin: 1mm 0 2mm; } .trace svg { width: 136mm; height: 68mm; }
"""


def worksheet_html(data: dict[str, Any], *, certificate_number: str | None = None) -> str:
    """The whole worksheet as one HTML document (inline CSS and SVG) for html_to_pdf."""
    run = data["run"]
    label = f"Run {run['id']}" + (f" · certificate {certificate_number}" if certificate_number else "")
    css = _CSS.replace("RUN_LABEL", _css_string(label)).replace(
        "RUN_FOOT", _css_string(f"{run['procedure']} · procedure sha256 {run['procedure_toml_sha256'][:16]}"))
    body = [f"<h1>Internal calibration report — run {escape(str(run['id']))}</h1>",
            _identification(run, certificate_number, data["points"]), _summary_table(data["points"]),
            _error_plot(data["points"])]
    body += [_point_section(p) for p in data["points"]]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(label)}</title><style>{css}</style></head>\n<body>\n" + "\n".join(body)
            + "\n</body></html>\n")


def _row(cells: list[str], *, header: bool = False, classes: list[str] | None = None, row_class: str = "") -> str:
    tag = "th" if header else "td"
    classes = classes or [""] * len(cells)
    tds = "".join(f'<{tag}{f" class={chr(34)}{c}{chr(34)}" if c else ""}>{cell}</{tag}>'
                  for cell, c in zip(cells, classes, strict=True))
    return f'<tr{f" class={chr(34)}{row_class}{chr(34)}" if row_class else ""}>{tds}</tr>'


def _identification(run: dict[str, Any], certificate_number: str | None, points: list[dict[str, Any]]) -> str:
    attempts = sum(p["attempt_count"] for p in points)
    not_complete = sum(1 for p in points for a in p["attempts"] if a["status"] != "complete")
    fields = [
        ("Run", run["id"]), ("Certificate number", certificate_number or "not yet assigned"),
        ("Procedure", run["procedure"]), ("Procedure file", run["procedure_source"]),
        ("Procedure TOML sha256", run["procedure_toml_sha256"]), ("Bench", run["bench"]),
        ("Bench TOML sha256", run["bench_toml_sha256"]), ("Operator", run["operator"] or "—"),
        ("Started", run["started"]), ("Finished", run["finished"] or "—"),
        ("Status", run["status"] + (f": {run['message']}" if run["message"] else "")),
        ("Points / attempts", f"{len(points)} planned, {attempts} attempts, {not_complete} not completed"),
    ]
    rows = "".join(_row([escape(k), escape(str(v))]) for k, v in fields)
    return f'<h2>Run identification</h2><table class="ident">{rows}</table>'


def _decision_cell(decision: str) -> str:
    css = "fail" if "fail" in decision.lower() and "conditional" not in decision.lower() else (
        "warn" if "conditional" in decision.lower() else "")
    return f'<span class="{css}">{escape(decision)}</span>' if css else escape(decision)


def _summary_table(points: list[dict[str, Any]]) -> str:
    head = _row(["Point", "Channel", "Nominal", "Error", "U", "k", "ν<sub>eff</sub>", "Tolerance ±", "Decision",
                 "Attempts"], header=True)
    num = ["label", "", "num", "num", "num", "num", "num", "num", "", "num"]
    rows = []
    for p in points:
        if not p["results"]:
            rows.append(_row([escape(p["label"]), "", escape(f"{p['nominal']:.9g} {p['unit']}"), "—", "—", "—", "—",
                              "—", "no result", str(p["attempt_count"])], classes=num))
        for r in p["results"]:
            rows.append(_row([escape(p["label"]), escape(r["channel"] or "—"),
                              escape(f"{r['nominal']:.9g} {r['unit']}"), fmt_num(r["error"]), fmt_num(r["U"]),
                              fmt_num(r["k"], 4), fmt_dof(r["dof_eff"]), fmt_num(r["tolerance"]),
                              _decision_cell(r["decision"]), str(p["attempt_count"])], classes=num))
    rules = sorted({r["rule"] for p in points for r in p["results"]})
    rule_text = "".join(f"<p>Decision rule: {escape(rule)}</p>" for rule in rules)
    return (f"<h2>Results summary</h2><table>{head}{''.join(rows)}</table>"
            f"<p>Errors, U and tolerances in the point's unit, engineering form (e-6 = µ).</p>{rule_text}")


def plot_points(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The error plot's input: one entry per stored result, labelled by point (and channel)."""
    return [{"nominal": r["nominal"], "label": f"{p['label']} {r['channel']}".strip(), "error": r["error"],
             "U": r["U"], "tolerance": r["tolerance"], "decision": r["decision"]}
            for p in points for r in p["results"]]


def _error_plot(points: list[dict[str, Any]]) -> str:
    entries = plot_points(points)
    if not entries:
        return "<h2>Errors</h2><p>No results stored.</p>"
    units = {p["unit"] for p in points if p["results"]}
    unit = units.pop() if len(units) == 1 else ""
    svg = plots.error_plot(entries, unit, title="Error ± U against the tolerance")
    return f'<h2>Errors</h2><div class="plot">{svg}</div>'


def _point_section(p: dict[str, Any]) -> str:
    nominal = escape(f"{p['nominal']:.9g} {p['unit']}")
    range_ = escape(f"{p['range']:g} {p['unit']}")
    parts = [f'<section class="point"><h2>Point {p["index"] + 1}: {escape(p["label"])}</h2>',
             f"<p>Nominal {nominal} on the {range_} range.</p>", _attempts(p), _stability(p), _trace_plot(p),
             _readings_table(p)]
    parts += [_budget(p, r) for r in p["results"]]
    parts.append("</section>")
    return "\n".join(parts)


def _attempts(p: dict[str, Any]) -> str:
    items = []
    for a in p["attempts"]:
        reason = (a["stability"] or {}).get("reason", "")
        owner = " — owns the result" if a["attempt"] == p["completing_attempt"] else ""
        items.append(f"<li>attempt {a['attempt']} ({escape(a['started'])}): <b>{escape(a['status'])}</b>{owner}"
                     + (f"; {escape(reason)}" if reason and not owner else "") + "</li>")
    return f"<h3>Attempts ({p['attempt_count']})</h3><ul>{''.join(items) or '<li>none</li>'}</ul>"


def stability_words(stability: dict[str, Any] | None) -> str:
    """The stability decision in a sentence: the detector's own reason, when, and the final window."""
    if not stability:
        return "No stability record was stored for this attempt."
    if "stable" not in stability:
        return f"No stability decision: {stability.get('reason', 'no reason recorded')}."
    verdict = "Declared stable" if stability["stable"] else ("Timed out" if stability.get("timed_out") else "Unstable")
    text = (f"{verdict}: {stability.get('reason', '')}. {stability.get('samples', '?')} settling samples from "
            f"t = {fmt_num(stability.get('started_at'))} s to t = {fmt_num(stability.get('ended_at'))} s.")
    final = stability.get("final") or {}
    if final:
        flag = {True: "settled", False: "not settled", None: "no flag"}.get(final.get("flag"), "no flag")
        text += (f" Final window: n = {final.get('n')}, mean = {fmt_num(final.get('mean'), 9)}, "
                 f"s = {fmt_num(final.get('std'))}, slope = {fmt_num(final.get('slope'))}/s "
                 f"(bound {fmt_num(final.get('slope_bound'))}/s), instrument {flag}.")
    return text


def _stability(p: dict[str, Any]) -> str:
    return f'<h3>Stabilisation</h3><p class="evidence">{escape(stability_words(p["stability"]))}</p>'


def _trace_plot(p: dict[str, Any]) -> str:
    trace = p["trace"]
    if not trace or not trace["readings"]:
        return "<p>No settling readings stored.</p>"
    window = (trace["window"][0], trace["window"][1]) if trace["window"] else None
    svg = plots.stability_trace([(t, v) for t, v in trace["readings"]], unit=trace["unit"],
                                stable_at=trace["stable_at"], window=window, zoom_from=trace["zoom_from"],
                                title=f"Settling, attempt {trace['attempt']} (channel {trace['channel']})")
    return f'<div class="plot trace">{svg}</div>'


def _readings_table(p: dict[str, Any]) -> str:
    head = _row(["Attempt", "Channel", "n", "Mean", "s", "Min", "Max", "t first / s", "t last / s"], header=True)
    num = ["num", "", "num", "num", "num", "num", "num", "num", "num"]
    rows = [_row([str(s["attempt"]), escape(s["channel"]), str(s["n"]) + (f" ({s['non_finite']} overload)"
                  if s["non_finite"] else ""), fmt_num(s["mean"], 9), fmt_num(s["std"]), fmt_num(s["min"], 9),
                  fmt_num(s["max"], 9), fmt_num(s["t_first"]), fmt_num(s["t_last"])], classes=num)
            for s in p["readings"]]
    return f"<h3>Raw readings</h3><table>{head}{''.join(rows)}</table>"


def _budget(p: dict[str, Any], r: dict[str, Any]) -> str:
    head = _row(["Quantity X<sub>i</sub>", "Type", "Distribution", "u(x<sub>i</sub>)", "c<sub>i</sub>",
                 "u<sub>i</sub>(y)", "ν<sub>i</sub>", "Note"], header=True)
    num = ["name", "", "", "num", "num", "num", "num", ""]
    rows = [_row([escape(b["name"]), escape(b["kind"]), escape(b["distribution"]), fmt_num(b["u"]),
                  fmt_num(b["sensitivity"]), fmt_num(b["contribution"]), fmt_dof(b["dof"]), escape(b["note"])],
                 classes=num) for b in r["budget"]]
    p_text = f", p = {r['p']:.4g}" if isinstance(r["p"], int | float) else ""
    totals = [
        ("Combined standard uncertainty u<sub>c</sub>(E)", fmt_num(r["u_c"]), fmt_dof(r["dof_eff"])),
        (f"Expanded uncertainty U (k = {escape(fmt_num(r['k'], 4))}{p_text})", fmt_num(r["U"]), ""),
        ("Error E = x<sub>UUT</sub> − x<sub>ref</sub>", fmt_num(r["error"]), ""),
    ]
    rows += [f'<tr class="total"><td colspan="5">{name}</td><td class="num">{value}</td><td class="num">{dof}</td>'
             "<td></td></tr>" for name, value, dof in totals]
    channel = f", channel {escape(r['channel'])}" if r["channel"] else ""
    decision = (f"<p>Decision: {_decision_cell(r['decision'])} — {escape(r['statement'])}; rule "
                f"{escape(r['rule'])}; tolerance ± {fmt_num(r['tolerance'])} {escape(r['unit'])}; reported "
                f"{escape(str(r['error_text']))} ± {escape(str(r['U_text']))} {escape(r['unit'])}.</p>")
    return (f"<h3>Uncertainty budget{channel} (in {escape(r['unit'])}; attempt {r['attempt']})</h3>"
            f"<table>{head}{''.join(rows)}</table>{decision}")
