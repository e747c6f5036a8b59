"""Software validation: run every shipped reference example and compare with the published answer.

This is the record ISO/IEC 17025 7.11.2 asks for and the lab's SOP "Validasi software"
describes: the software's calculation must equal the manual (published) calculation; the
differences are listed and the report is signed and kept. A published number is matched to
its printed digits (half a unit in the last digit) unless the example states a tolerance
(Monte Carlo results are stochastic; JCGM 101 states them to a numerical tolerance).
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from results.reference_examples import GUM_EXAMPLES, MC_EXAMPLES, ReferenceExample


@dataclass(frozen=True)
class ValidationCheck:
    example: str
    source: str
    quantity: str
    unit: str
    published: str
    computed: float
    difference: float
    allowed: float
    passed: bool
    note: str = ""


def _gum_quantities(out: dict[str, Any]) -> dict[str, float]:
    found: dict[str, float] = {}
    for name, o in out["outputs"].items():
        found[name] = o["value"]
        found[f"u({name})"] = o["u"]
        found[f"nu_eff({name})"] = float(o["dof"])
        found[f"k{round(out['coverage'] * 100)}"] = o["k"]
        for row in o["budget"]:
            found[f"contribution {row['input']}"] = row["contribution"]
    for a, b, r in out.get("correlations", []):
        found[f"r({a},{b})"] = r
    return found


def _fit_quantities(out: dict[str, Any]) -> dict[str, float]:
    coeffs = out["coefficients"]
    found = {"y1": coeffs[0]["value"], "u(y1)": coeffs[0]["u"], "y2": coeffs[1]["value"], "u(y2)": coeffs[1]["u"],
             "r(y1,y2)": out["correlation"][0][1], "s": out["residual_sd"]}
    for p in out["predictions"]:
        found[f"b({p['x']:g} degC)"] = p["y"]
        found[f"u(b({p['x']:g} degC))"] = p["u_mean"]
    return found


def _run_gum(example: ReferenceExample) -> dict[str, float]:
    from results.measurement_model import evaluate_json

    return _gum_quantities(evaluate_json(example.data, source=example.name))


def _run_fit(example: ReferenceExample) -> dict[str, float]:
    from results.fits import fit_json

    return _fit_quantities(fit_json(example.data, source=example.name))


def _run_mc(example: ReferenceExample) -> dict[str, float]:
    from results.montecarlo import mc_json

    out = mc_json(example.data, source=example.name)
    found: dict[str, float] = {}
    for name, o in out["outputs"].items():
        found[name] = o["value"]
        found[f"u({name})"] = o["u"]
        found[f"low({name})"], found[f"high({name})"] = o["interval"]
    return found


RUNNERS: dict[str, Callable[[ReferenceExample], dict[str, float]]] = {
    "gum": _run_gum, "fit": _run_fit, "mc": _run_mc}


def all_examples() -> tuple[ReferenceExample, ...]:
    return GUM_EXAMPLES + MC_EXAMPLES


def run_example(example: ReferenceExample) -> list[ValidationCheck]:
    computed = RUNNERS[example.kind](example)
    checks = []
    for exp in example.expected:
        if exp.quantity not in computed:
            raise KeyError(f"{example.name}: the software did not produce {exp.quantity!r}")
        value = computed[exp.quantity]
        diff = value - exp.value
        checks.append(ValidationCheck(example.name, example.source, exp.quantity, exp.unit, exp.published, value,
                                      diff, exp.allowed, abs(diff) <= exp.allowed, exp.note))
    return checks


def run_validation() -> list[ValidationCheck]:
    checks: list[ValidationCheck] = []
    for example in all_examples():
        checks.extend(run_example(example))
    return checks


def software_identity() -> dict[str, str]:
    """What was validated: the distribution version, the source commit if known, the platform."""
    try:
        version = metadata.version("daq-calibration-runner")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        version = "unknown"
    commit = "unknown"
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        pass
    libs = {}
    for lib in ("numpy", "scipy", "pint"):
        try:
            libs[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:  # pragma: no cover
            libs[lib] = "absent"
    return {"software": "daq-calibration-runner", "version": version, "commit": commit,
            "python": platform.python_version(), "platform": platform.platform(),
            **{f"{k} version": v for k, v in libs.items()}}


def validation_report(checks: list[ValidationCheck], *, when: datetime | None = None) -> tuple[str, dict[str, Any]]:
    """The report as Markdown and as JSON; the digest covers identity and every row."""
    when = when or datetime.now(UTC)
    identity = software_identity()
    rows = [asdict(c) for c in checks]
    body = {"identity": identity, "date": when.isoformat(timespec="seconds"), "checks": rows,
            "passed": all(c.passed for c in checks), "count": len(checks)}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    body["sha256"] = digest
    verdict = "PASSED" if body["passed"] else "FAILED"
    lines = ["# Software validation report", "",
             "Calculation software validated against published reference calculations "
             "(ISO/IEC 17025:2017 7.11.2; SOP \"Validasi software\").", ""]
    lines += [f"- {k}: {v}" for k, v in identity.items()]
    lines += [f"- date: {body['date']}", f"- result: **{verdict}** ({sum(c.passed for c in checks)} of "
              f"{len(checks)} checks agree with the published values)", ""]
    current = None
    for c in checks:
        if c.example != current:
            current = c.example
            lines += ["", f"## {c.example}", "", f"Source: {c.source}", "",
                      "| quantity | unit | published | computed | difference | allowed | verdict | note |",
                      "|---|---|---|---|---|---|---|---|"]
        lines.append(f"| {c.quantity} | {c.unit} | {c.published} | {c.computed:.10g} | {c.difference:.3g} | "
                     f"±{c.allowed:.3g} | {'pass' if c.passed else '**FAIL**'} | {c.note} |")
    lines += ["", "## Sign-off", "",
              "| role | name | signature | date |", "|---|---|---|---|",
              "| prepared by (analyst) | | | |", "| checked by (supervisor) | | | |",
              "| approved by (technical manager) | | | |", "",
              f"Integrity: SHA-256 of the JSON record = `{digest}`", ""]
    return "\n".join(lines), body
