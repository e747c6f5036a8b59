"""`daq uncertainty ...`: measurement models, calibration-curve fits and comparisons from JSON files.

JSON in, JSON out (`--json`), or a budget table a metrologist can check against a hand
calculation (EA-4/02 layout). A user mistake prints one line `error: ...` naming the file, the
field and the fix, and exits with status 2, without a traceback.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from daq.errors import ConfigError, DaqError

uncertainty_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Measurement uncertainty: GUM budgets and Monte Carlo for models, calibration-curve fits, comparisons.",
)

EXIT_USER_ERROR = 2


def _stdout() -> Console:
    # Made per call, not at import, so whatever sys.stdout is now (a test's capture) is used.
    return Console(width=None if sys.stdout.isatty() else 140, highlight=False)


def _fail(message: object) -> typer.Exit:
    # escape: a message may quote "[length]" or "[0]", which rich would take for markup.
    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(str(message))}", soft_wrap=True)
    return typer.Exit(EXIT_USER_ERROR)


def load_json(path: Path) -> Any:
    """The file's JSON, or a ConfigError naming the file and what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "file", "no such file", "check the path") from None
    except IsADirectoryError:
        raise ConfigError(str(path), "file", "is a directory, not a JSON file", "name the .json file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "file", f"cannot read it: {exc}", "give a UTF-8 JSON file") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), f"line {exc.lineno} column {exc.colno}", f"not valid JSON: {exc.msg}",
                          "check commas, quotes and brackets") from None


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return _json_safe(obj.tolist())
    return obj


def _print_json(result: Any) -> None:
    typer.echo(json.dumps(_json_safe(result), indent=2, ensure_ascii=False, allow_nan=False))


# --------------------------------------------------------------------------------------------
# Budget table


def _unit(text: str) -> str:
    return "" if text in ("", "dimensionless") else f" {text}"


def _dof(dof: Any) -> str:
    if dof == "inf" or (isinstance(dof, float) and math.isinf(dof)):
        return "∞"
    return f"{float(dof):.3g}"


def _distribution(line: dict[str, Any]) -> str:
    return f"{line['distribution']} (type A)" if line.get("kind") == "A" else line["distribution"]


def _budget_table(name: str, output: dict[str, Any]) -> Table:
    unit = output["unit"]
    table = Table(title=f"Uncertainty budget of {name} = {output['expression']}", header_style="bold",
                  box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("quantity", "estimate", "standard uncertainty", "distribution", "sensitivity coefficient",
                   "contribution", "share", "dof"):
        table.add_column(column, justify="left" if column in ("quantity", "distribution") else "right",
                         no_wrap=column == "quantity")
    for line in output["budget"]:
        table.add_row(
            line["input"],
            f"{line['value']:.10g}{_unit(line['unit'])}",
            f"{line['u']:.3g}{_unit(line['unit'])}",
            _distribution(line),
            f"{line['sensitivity']:.4g}{_unit(line['sensitivity_unit'])}",
            f"{line['contribution']:.3g}{_unit(unit)}",
            f"{line['share']:.1f} %",
            _dof(line["dof"]),
        )
    terms = output.get("second_order", [])
    shown = [term for term in terms if abs(term["share"]) >= 0.01]  # the rest stays in the JSON
    for term in shown:
        a, b = term["inputs"]
        table.add_row(f"{a} × {b} (2nd order)", "", "", "", "", f"{math.sqrt(abs(term['variance'])):.3g}{_unit(unit)}",
                      f"{term['share']:.1f} %", _dof(term["dof"]))
    if len(terms) > len(shown):
        table.add_row(f"{len(terms) - len(shown)} more 2nd-order terms", "", "", "", "", "", "< 0.01 %", "")
    if output.get("share_from_correlations"):
        table.add_row("correlations", "", "", "", "", "", f"{output['share_from_correlations']:.1f} %", "")
    return table


def _summary(name: str, output: dict[str, Any], coverage: float) -> list[str]:
    from results.rounding import round_result

    unit = _unit(output["unit"])
    p = f"{coverage * 100:g} %"
    lines = [
        f"{name} = {output['value']:.10g}{unit}   u_c = {output['u']:.3g}{unit}   ν_eff = {_dof(output['dof'])}   "
        f"k = {output['k']:.3f} (p = {p})   U = {output['U']:.3g}{unit}"
    ]
    if output["U"] > 0:
        rounded = round_result(output["value"], output["U"])
        lines.append(
            f"Result: {name} = ({rounded.value_text} ± {rounded.U_text}){unit}, k = {output['k']:.2f}, "
            f"coverage probability about {p} (ILAC-P14: U to two significant digits)"
        )
    else:
        lines.append(f"Result: {name} = {output['value']:.10g}{unit} with no uncertainty (every u is zero)")
    return lines


def print_monte_carlo(result: dict[str, Any], console: Console) -> None:
    """The GUM budget for orientation, then what the Monte Carlo draws say and the clause-8 verdict."""
    coverage = float(result.get("coverage", 0.9545))
    p = f"{coverage * 100:g} %"
    if "outputs" in result.get("gum", {}):
        for name, output in result["gum"]["outputs"].items():
            console.print(_budget_table(name, output))
    console.print(f"Monte Carlo (JCGM 101): {result['trials']:,} trials, seed {result['seed']}", style="bold")
    for name, output in result["outputs"].items():
        unit = _unit(output["unit"])
        low, high = output["interval"]
        s_low, s_high = output["shortest_interval"]
        console.print(f"{name} = {output['value']:.10g}{unit}   u = {output['u']:.3g}{unit}   "
                      f"{p} probabilistically symmetric [{low:.10g}, {high:.10g}]{unit}   "
                      f"shortest [{s_low:.10g}, {s_high:.10g}]{unit}", soft_wrap=True)
    validation = result.get("validation", {})
    if validation:
        console.print(f"GUM against Monte Carlo ({validation.get('clause', 'JCGM 101 8')}): "
                      f"{validation.get('verdict')}", style="italic")
        for name, v in validation.get("outputs", {}).items():
            console.print(f"  {name}: d_low = {v['d_low']:.3g}, d_high = {v['d_high']:.3g}, "
                          f"tolerance δ = {v['tolerance']:.3g}: {v['verdict']}")
    for note in result.get("notes", []):
        console.print(f"note: {note}", style="yellow", soft_wrap=True)


def print_budget(result: dict[str, Any], console: Console) -> None:
    """One EA-4/02-style table per output, its result line, and the outputs' correlations."""
    if result.get("method") == "mc":
        print_monte_carlo(result, console)
        return
    coverage = float(result.get("coverage", 0.9545))
    for name, output in result["outputs"].items():
        console.print(_budget_table(name, output))
        for line in _summary(name, output, coverage):
            console.print(line, soft_wrap=True)
        console.print()
    correlations = result.get("correlations")
    if correlations:
        console.print("Correlation coefficients between outputs", style="italic")
        table = Table(box=box.SIMPLE_HEAD)
        for column in ("output", "output", "r"):
            table.add_column(column, justify="right" if column == "r" else "left")
        for a, b, r in correlations:
            table.add_row(a, b, f"{r:+.3f}")
        console.print(table)


# --------------------------------------------------------------------------------------------
# Commands


@uncertainty_app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="Model file (JSON): outputs, inputs, correlations, coverage.")],
    method: Annotated[str, typer.Option(help="gum (JCGM 100 law of propagation) or mc (JCGM 101 Monte Carlo).")]
    = "gum",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of the table.")] = False,
) -> None:
    """Evaluate a measurement model: value, u, ν_eff, k, U, interval and budget of each output."""
    from results.measurement_model import evaluate_json

    try:
        data = load_json(model)
        result = evaluate_json(data, source=str(model), method=method)
    except DaqError as exc:
        raise _fail(exc) from None
    except NotImplementedError as exc:
        raise _fail(f"{model}: method {method}: {exc}") from None
    if as_json:
        _print_json(result)
    else:
        print_budget(result, _stdout())


def print_fit(result: dict[str, Any], console: Console) -> None:
    """Coefficients with u, their correlation, the residual scatter and the predictions."""
    console.print(f"{result['equation']}   ({result['n']} points, "
                  f"{'weighted' if result.get('weighted') else 'unweighted'}, {result['dof']} dof)", style="bold")
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("coefficient", "value", "standard uncertainty"):
        table.add_column(column, justify="left" if column == "coefficient" else "right")
    for c in result["coefficients"]:
        table.add_row(c["name"], f"{c['value']:.10g}", f"{c['u']:.3g}")
    console.print(table)
    names = [c["name"] for c in result["coefficients"]]
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            console.print(f"r({a}, {names[j]}) = {result['correlation'][i][j]:+.4f}")
    line = f"residual standard deviation s = {result['residual_sd']:.4g}"
    if result.get("chi2") is not None:
        line += f"   chi2 = {result['chi2']:.4g}   Birge ratio = {result['birge_ratio']:.4g}"
    console.print(line)
    predictions = result.get("predictions") or []
    if predictions:
        table = Table(box=box.SIMPLE_HEAD, title="predictions")
        for column in ("x", "y", "u (curve)", "u (new observation)"):
            table.add_column(column, justify="right")
        for pr in predictions:
            table.add_row(f"{pr['x']:.10g}", f"{pr['y']:.10g}", f"{pr['u_mean']:.3g}", f"{pr['u_new']:.3g}")
        console.print(table)


def print_comparison(result: dict[str, Any], console: Console) -> None:
    """The assigned value and how it was obtained, then each participant's scores and verdicts."""
    unit = _unit(result.get("unit") or "")
    av = result["assigned_value"]
    console.print(f"assigned value {av['value']:.10g}{unit}, u = {av['u']:.3g}{unit} ({av['method']}: "
                  f"{av.get('description', '')})", soft_wrap=True)
    if result.get("sigma_pt") is not None:
        console.print(f"sigma_pt = {result['sigma_pt']['value']:.4g}{unit} ({result['sigma_pt'].get('method', '')})")
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("participant", "value", "U (k=2)", "En", "zeta", "z"):
        table.add_column(column, justify="left" if column == "participant" else "right")

    def score(p: dict[str, Any], key: str) -> str:
        value = p.get(key)
        return "-" if value is None else f"{value:+.2f} {p.get(key + '_evaluation') or ''}"

    for p in result["participants"]:
        u_k2 = p.get("U_k2")
        table.add_row(str(p["id"]), f"{p['value']:.10g}", "-" if u_k2 is None else f"{u_k2:.3g}",
                      score(p, "En"), score(p, "zeta"), score(p, "z"))
    console.print(table)
    for line in result.get("warnings", []):
        console.print(f"warning: {line}", style="yellow", soft_wrap=True)
    for line in result.get("notes", []):
        console.print(f"note: {line}", style="italic", soft_wrap=True)


def _delegate(path: Path, as_json: bool, module: str, function: str) -> None:
    import importlib

    try:
        data = load_json(path)
        try:
            handler = getattr(importlib.import_module(module), function)
        except (ImportError, AttributeError):
            raise _fail(f"{module}.{function} is not available in this installation") from None
        result = handler(data, source=str(path))
    except (DaqError, ValueError) as exc:
        raise _fail(exc) from None
    if as_json:
        _print_json(result)
    elif function == "fit_json":
        print_fit(result, _stdout())
    else:
        print_comparison(result, _stdout())


@uncertainty_app.command()
def fit(
    data: Annotated[Path, typer.Argument(help='Data file (JSON): x, y, optional u_y, model "line" | "poly2" | ...')],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Least-squares calibration curve: coefficients, their uncertainties and covariance, predictions."""
    _delegate(data, as_json, "results.fits", "fit_json")


@uncertainty_app.command()
def compare(
    data: Annotated[Path, typer.Argument(help="Comparison file (JSON): participants' values and U, reference.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Inter-laboratory comparison: En, zeta and z scores; ISO 13528 robust consensus."""
    _delegate(data, as_json, "results.comparison", "compare_json")
