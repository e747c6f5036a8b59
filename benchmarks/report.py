"""What every benchmark hands back: the result file, the printed table, the run-size switch.

A result file (`benchmarks/results/<name>.json`) holds the machine, the mode, the raw
figures and a list of headline ratios; `run_all` prints the headlines of all of them as
one table, and README.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.measure import describe_machine, machine

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MODES = ("quick", "default", "full")


@dataclass(frozen=True)
class Headline:
    """One ratio worth quoting: what it compares, its value, and how to read it."""

    metric: str
    value: float
    unit: str
    reading: str  # e.g. "higher is better: ours is faster"


def mode_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the shared --quick / --full switch."""
    parser = argparse.ArgumentParser(description=description)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="a smaller run (seconds), for a smoke check")
    size.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="a larger run, for tighter figures")
    parser.set_defaults(mode="default")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write the result file")
    return parser


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_result(
    name: str,
    *,
    mode: str,
    setup: dict[str, Any],
    figures: dict[str, Any],
    headlines: Sequence[Headline],
    wall_seconds: float,
    notes: Sequence[str] = (),
) -> Path:
    """Write `results/<name>.json` atomically (a `.tmp` file renamed into place)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mode": mode,
        "machine": machine(),
        "wall_seconds": round(wall_seconds, 2),
        "setup": setup,
        "figures": figures,
        "headlines": [asdict(h) for h in headlines],
        "notes": list(notes),
    }
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(payload), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_result(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def format_value(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "x":
        return f"{value:.3f} x" if abs(value) < 10 else f"{value:,.1f} x"
    magnitude = abs(value)
    text = f"{value:.3g}" if magnitude < 100 else f"{value:,.0f}"
    return f"{text}{' ' + unit if unit else ''}"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table (no colour, so it pastes into an issue as is)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                              strict=True))))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def print_headlines(headlines: Sequence[Headline]) -> None:
    print_table("Ratios", ["metric", "value", "how to read it"],
                [[h.metric, format_value(h.value, h.unit), h.reading] for h in headlines])


def print_machine() -> None:
    print(f"machine: {describe_machine(machine())}")
