"""`daq uncertainty evaluate|fit|compare`: JSON in, JSON or a budget table out, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runner.uncertainty_cli import uncertainty_app

H2 = {
    "outputs": {"R": "V/I*cos(phi)", "X": "V/I*sin(phi)", "Z": "V/I"},
    "inputs": {
        "V": {"samples": [5.007, 4.994, 5.005, 4.990, 4.999], "unit": "V"},
        "I": {"samples": [19.663, 19.639, 19.640, 19.685, 19.678], "unit": "mA"},
        "phi": {"samples": [1.0456, 1.0438, 1.0468, 1.0428, 1.0433], "unit": "rad"},
    },
    "correlations": [["V", "I", "samples"], ["V", "phi", "samples"], ["I", "phi", "samples"]],
}

H1 = {
    "outputs": {"l": "ls + d - ls*(da*theta + as_*dtheta)"},
    "inputs": {
        "ls": {"value": 50000623.6, "u": 25, "dof": 18, "unit": "nm"},
        "d": {"value": 215, "u": 9.7, "dof": 25.6, "unit": "nm"},
        "da": {"value": 0, "distribution": "rectangular", "half_width": 1e-6, "dof": 50, "unit": "1/K"},
        "theta": {"value": -0.1, "u": 0.41, "unit": "K"},
        "as_": {"value": 11.5e-6, "distribution": "rectangular", "half_width": 2e-6, "unit": "1/K"},
        "dtheta": {"value": 0, "distribution": "rectangular", "half_width": 0.05, "dof": 2, "unit": "K"},
    },
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_evaluate_json_output(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(uncertainty_app, ["evaluate", str(write(tmp_path, "h2.json", H2)), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert round(data["outputs"]["R"]["u"], 3) == 0.071
    assert data["outputs"]["Z"]["dof"] == pytest.approx(4.0)
    assert [pair[:2] for pair in data["correlations"]] == [["R", "X"], ["R", "Z"], ["X", "Z"]]


def test_evaluate_prints_a_budget_table_and_the_rounded_result(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(uncertainty_app, ["evaluate", str(write(tmp_path, "h1.json", H1))])
    assert result.exit_code == 0, result.output
    text = result.stdout
    for heading in ("quantity", "estimate", "standard uncertainty", "distribution", "sensitivity coefficient",
                    "contribution", "dof"):
        assert heading in text
    assert "Uncertainty budget of l = ls + d - ls * (da * theta + as_ * dtheta)" in text
    assert "rectangular" in text and "dtheta" in text
    assert "u_c = 31.7 nm" in text and "ν_eff = 16.8" in text
    assert "Result: l = (50000839 ± 68) nm, k = 2.16" in text  # ILAC-P14: U to two digits, value to match


def test_evaluate_table_shows_output_correlations(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(uncertainty_app, ["evaluate", str(write(tmp_path, "h2.json", H2))])
    assert result.exit_code == 0, result.output
    assert "Correlation coefficients between outputs" in result.stdout
    assert "-0.588" in result.stdout and "+0.993" in result.stdout
    assert "t (type A)" in result.stdout


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ({"outputs": {"l": "ls + thetta"}, "inputs": {"ls": {"value": 1, "u": 1}, "theta": {"value": 1, "u": 1}}},
         "outputs.l: unknown name 'thetta'"),
        ({"outputs": {"l": "x"}, "inputs": {"x": {"value": 1, "u": -1}}}, "inputs.x.u: the standard uncertainty"),
        ({"outputs": {"l": "x + t"}, "inputs": {"x": {"value": 1, "u": 1, "unit": "m"},
                                                 "t": {"value": 1, "u": 1, "unit": "K"}}},
         "units do not agree: cannot add 'x' (m) and 't' (K)"),
        ('{"outputs": {"l": "x"},', "not valid JSON"),
    ],
)
def test_a_bad_file_is_one_error_line_and_exit_2(runner: CliRunner, tmp_path: Path, content: object,
                                                 fragment: str) -> None:
    path = write(tmp_path, "model.json", content)
    result = runner.invoke(uncertainty_app, ["evaluate", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}: ")
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_missing_file_is_an_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(uncertainty_app, ["evaluate", str(tmp_path / "nope.json")])
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_monte_carlo_prints_intervals_and_the_clause_8_verdict(runner: CliRunner, tmp_path: Path) -> None:
    data = {**H1, "mc": {"trials": 100_000, "seed": 7}}
    result = runner.invoke(uncertainty_app, ["evaluate", str(write(tmp_path, "h1.json", data)), "--method", "mc"])
    assert result.exit_code == 0, result.stderr
    assert "100,000 trials, seed 7" in result.stdout
    assert "probabilistically symmetric" in result.stdout and "shortest" in result.stdout
    assert "GUM against Monte Carlo" in result.stdout
    bad = runner.invoke(uncertainty_app, ["evaluate", str(write(tmp_path, "b.json", {**H1, "mc": {"trials": 5}})),
                                          "--method", "mc"])
    assert bad.exit_code == 2 and "mc.trials" in bad.stderr and "Traceback" not in bad.stderr


def test_an_error_quoting_brackets_is_printed_verbatim(runner: CliRunner, tmp_path: Path) -> None:
    data = {"outputs": {"l": "x"}, "inputs": {"x": {"value": 1, "u": 1, "unit": "m"}}, "output_units": {"l": "K"}}
    result = runner.invoke(uncertainty_app, ["evaluate", str(write(tmp_path, "m.json", data))])
    assert result.exit_code == 2 and "([length])" in result.stderr and "([temperature])" in result.stderr


@pytest.mark.parametrize("command", ["fit", "compare"])
def test_fit_and_compare_delegate_and_report_bad_files(runner: CliRunner, tmp_path: Path, command: str) -> None:
    result = runner.invoke(uncertainty_app, [command, str(write(tmp_path, "data.json", "[1, "))])
    assert result.exit_code == 2 and "not valid JSON" in result.stderr


def test_fit_prints_coefficients_correlation_and_predictions(runner: CliRunner, tmp_path: Path) -> None:
    data = {"x": [21.521, 22.012, 22.512, 23.003, 23.507, 23.999, 24.513, 25.002, 25.503, 26.010, 26.511],
            "y": [-0.171, -0.169, -0.166, -0.159, -0.164, -0.165, -0.156, -0.157, -0.159, -0.161, -0.160],
            "model": "line", "x_offset": 20, "predict": [30]}
    result = runner.invoke(uncertainty_app, ["fit", str(write(tmp_path, "h3.json", data))])
    assert result.exit_code == 0, result.stderr
    assert "y = a0 + a1*(x - 20)" in result.stdout
    assert "-0.1712037901" in result.stdout and "r(a0, a1) = -0.9304" in result.stdout
    assert "-0.1493768127" in result.stdout  # b(30 degC), GUM H.3


def test_compare_prints_scores_with_their_verdicts(runner: CliRunner, tmp_path: Path) -> None:
    data = {"unit": "mm", "reference": {"value": 10.00, "U": 0.02},
            "participants": [{"id": "lab A", "value": 10.02, "U": 0.04}, {"id": "lab C", "value": 10.11, "U": 0.05}]}
    result = runner.invoke(uncertainty_app, ["compare", str(write(tmp_path, "c.json", data))])
    assert result.exit_code == 0, result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.strip().startswith("lab")}
    assert "+0.45 satisfactory" in lines["A"]  # En = 0.02 / sqrt(0.04^2 + 0.02^2)
    assert "+2.04 unsatisfactory" in lines["C"]


def test_monte_carlo_json_keeps_the_contract(runner: CliRunner, tmp_path: Path) -> None:
    data = {**H1, "mc": {"trials": 100_000, "seed": 3}}
    result = runner.invoke(uncertainty_app, ["evaluate", str(write(tmp_path, "h1.json", data)), "--method", "mc",
                                             "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)["outputs"]["l"]
    assert {"value", "u", "dof", "k", "U", "interval", "unit", "budget"} <= set(out)
    low, high = out["interval"]
    assert out["U"] == pytest.approx((high - low) / 2) and out["k"] == pytest.approx(out["U"] / out["u"])
    assert [row["input"] for row in out["budget"]][0] == "ls"
