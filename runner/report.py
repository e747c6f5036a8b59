"""The readable record of a run: a results table, each point's budget and why it was declared stable."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from results.rounding import round_result
from runner.sinks.terminal import format_si


def _dof(x: Any) -> str:
    if isinstance(x, str) or (isinstance(x, float) and math.isinf(x)):
        return "∞"
    if float(x) >= 1000:
        return ">1000"
    return f"{float(x):.1f}"


_PREFIXES = ((1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def _scale(r: dict[str, Any]) -> tuple[float, str, int]:
    """Prefix and decimals that show U with two significant digits (ILAC P14)."""
    rounded = round_result(r["error"], r["U"])
    factor, prefix = next(((f, p) for f, p in _PREFIXES if rounded.U >= f), _PREFIXES[-1])
    return factor, prefix, max(0, -rounded.exponent + int(round(math.log10(factor))))


def error_and_u(r: dict[str, Any]) -> tuple[str, str]:
    """Error and U as reported (ILAC P14: U to two significant digits, error to the same place)."""
    unit = r.get("unit", "V")
    rounded = round_result(r["error"], r["U"])
    factor, prefix, decimals = _scale(r)
    return (f"{rounded.value / factor:+.{decimals}f} {prefix}{unit}",
            f"{rounded.U / factor:.{decimals}f} {prefix}{unit}")


def like_error(r: dict[str, Any], value: float) -> str:
    """Another value (the simulator's true error) shown on the same scale as the point's error."""
    factor, prefix, decimals = _scale(r)
    return f"{value / factor:+.{decimals}f} {prefix}{r.get('unit', 'V')}"


def results_table(results: list[dict[str, Any]], true_errors: dict[tuple[int, str], float] | None = None) -> Table:
    table = Table(title="Calibration results (E = UUT - reference)", header_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True)
    channels = any(r.get("channel") for r in results)
    # points that share a setpoint (up and down, several cycles) are told apart by their labels
    by_label = len({(r["point_index"]) for r in results}) > len({r["nominal"] for r in results}) and \
        all(r.get("label") for r in results)
    columns = ("#", "setpoint", "UUT", "error", "U", "k", "ν_eff", "±tol", "decision") if channels else \
        ("#", "setpoint", "error", "U", "k", "ν_eff", "±tol", "decision")
    for col in columns:
        table.add_column(col, justify="right" if col not in ("decision", "UUT") else "left", no_wrap=True)
    if true_errors is not None:
        table.add_column("sim true", justify="right", no_wrap=True)
    for r in results:
        err, u = error_and_u(r)
        unit = r.get("unit", "V")
        setpoint = format_si(r["nominal"], unit) if unit == "V" else f"{r['nominal']:g} {unit}"
        if by_label:
            setpoint = r["label"]
        row = [
            str(r["point_index"] + 1), setpoint, *([r.get("channel", "")] if channels else []), err, u,
            f"{r['k']:.2f}", _dof(r["dof_eff"]), format_si(r["tolerance"], unit) if unit == "V"
            else f"{r['tolerance']:g} {unit}", r["decision"]["outcome"],
        ]
        if true_errors is not None:
            te = true_errors.get((r["point_index"], r.get("channel", "")))
            row.append(like_error(r, te) if te is not None else "-")
        table.add_row(*row)
    return table


def write_report(path: Path, run: dict[str, Any], results: list[dict[str, Any]], attempts: list[dict[str, Any]],
                 events: list[dict[str, Any]], true_errors: dict[tuple[int, str], float] | None = None,
                 summary: list[str] | None = None) -> None:
    """Markdown, written to a temporary name then renamed, so a half-written report never exists."""
    lines = [f"# Calibration run {run['id']}: {run['procedure']}", ""]
    lines += [f"- Bench: {run['bench']}", f"- Status: {run['status']}", f"- Time: {run['clock']}",
              f"- Decision rule: {results[0]['decision']['rule'] if results else '-'}",
              "- Coverage probability: 95.45 % (k from Student's t at ν_eff)", ""]
    lines += ["## Results", "", "| # | setpoint | ref mean | UUT mean | error | U | k | ν_eff | tolerance | decision |"
              + (" true error (sim) |" if true_errors is not None else ""),
              "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if true_errors is not None else "")]
    for r in results:
        err, u = error_and_u(r)
        unit = r.get("unit", "V")
        row = (f"| {r['point_index'] + 1}{' ' + r['channel'] if r.get('channel') else ''} | "
               f"{format_si(r['nominal'], unit)} | {format_si(r['ref_mean'], unit)} | "
               f"{format_si(r['uut_mean'], unit)} | {err} | {u} | {r['k']:.2f} | {_dof(r['dof_eff'])} | "
               f"±{format_si(r['tolerance'], unit)} | {r['decision']['outcome']} |")
        if true_errors is not None:
            te = true_errors.get((r["point_index"], r.get("channel", "")))
            row += f" {like_error(r, te) if te is not None else '-'} |"
        lines.append(row)
    lines.append("")
    stab = {(a["point_index"]): a for a in attempts if a["status"] == "complete"}
    for r in results:
        unit = r.get("unit", "V")
        channel = f", {r['channel']}" if r.get("channel") else ""
        lines += [f"## Point {r['point_index'] + 1}: {r['nominal']:g} {r.get('unit', 'V')}{channel}", ""]
        a = stab.get(r["point_index"])
        if a and a["stability"]:
            s = a["stability"]
            lines += [f"Stability: {s['reason']} ({s['samples']} samples).", ""]
        tries = [x for x in attempts if x["point_index"] == r["point_index"]]
        if len(tries) > 1:
            lines += ["Attempts: " + ", ".join(f"#{x['attempt']} {x['status']}" for x in tries), ""]
        lines += ["| component | type | distribution | u | c | contribution | ν |", "|---|---|---|---|---|---|---|"]
        for c in r["budget"]["components"]:
            lines.append(f"| {c['name']} | {c['kind']} | {c['distribution']} | {format_si(c['u'], unit)} | "
                         f"{c['sensitivity']:g} | {format_si(c['contribution'], unit)} | {_dof(c['dof'])} |")
        err, u = error_and_u(r)
        lines += ["", f"u_c = {format_si(r['u_c'], unit)}, ν_eff = {_dof(r['dof_eff'])}, k = {r['k']:.3f}, "
                  f"error = {err}, U = {u}; decision: **{r['decision']['outcome']}** "
                  f"({r['decision']['rule']})", ""]
    if summary:
        lines += summary + [""]
    if events:
        lines += ["## Journal", ""] + [f"- {e['at']} {e['kind']}: {e['message']}" for e in events] + [""]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.replace(path)
