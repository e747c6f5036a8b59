"""The validation examples the lab signs off: the suite runs exactly what `daq validate` runs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from results.reference_examples import Expected
from results.validation import all_examples, run_example, run_validation, validation_report
from runner.cli import app


@pytest.mark.parametrize("example", all_examples(), ids=lambda e: e.name)
def test_every_reference_example_agrees_with_its_published_answer(example):
    checks = run_example(example)
    assert len(checks) == len(example.expected)
    failed = [(c.quantity, c.published, c.computed) for c in checks if not c.passed]
    assert not failed


def test_the_digit_rule_is_half_a_unit_in_the_last_published_digit():
    assert Expected("u", "0.071").allowed == pytest.approx(0.0005)
    assert Expected("u", "32").allowed == pytest.approx(0.5)
    assert Expected("u", "-0.1712").allowed == pytest.approx(0.00005)
    assert Expected("u", "16", tolerance=1.0).allowed == 1.0


def test_a_wrong_calculation_fails_validation(monkeypatch):
    """If the propagation were wrong (here: every standard uncertainty 5 % high), validation must say so."""
    import results.validation as validation

    real = validation._gum_quantities

    def broken(out):
        found = real(out)
        return {k: (v * 1.05 if k.startswith("u(") else v) for k, v in found.items()}

    monkeypatch.setattr(validation, "_gum_quantities", broken)
    checks = run_validation()
    assert any(not c.passed and c.quantity == "u(l)" for c in checks)


def test_report_names_the_software_and_leaves_room_to_sign(tmp_path):
    text, record = validation_report(run_validation())
    assert record["passed"] is True
    assert "daq-calibration-runner" in text and "Sign-off" in text and record["sha256"] in text
    result = CliRunner().invoke(app, ["validate", "--report", str(tmp_path / "v.md")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "v.json").read_text())
    assert saved["count"] == record["count"] and saved["passed"]
    assert "GUM H.2" in (tmp_path / "v.md").read_text()
