"""Procedure files name their kind; this is where a kind finds its procedure class."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daq.errors import ConfigError
from procedures import balance_test, dc_voltage, pressure_gauge, thermometer_comparison
from procedures.base import Procedure

PARSERS: dict[str, Callable[..., Any]] = {
    "dc_voltage": dc_voltage.parse_procedure,
    "dmm_multifunction": dc_voltage.parse_procedure,  # DC/AC voltage and resistance (same procedure class)
    "thermometer_comparison": thermometer_comparison.parse_procedure,
    "pressure_gauge": pressure_gauge.parse_procedure,
    "balance_test": balance_test.parse_procedure,
}


def parse_procedure(text: str, *, source: str = "<procedure>") -> Procedure:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "(syntax)", str(exc), "fix the TOML syntax at the line shown") from exc
    head = data.get("procedure", {})
    kind = head.get("kind", "dc_voltage") if isinstance(head, dict) else None
    if kind not in PARSERS:
        raise ConfigError(source, "procedure.kind", f"unknown procedure kind {kind!r}",
                          f"use one of {', '.join(sorted(PARSERS))}")
    procedure: Procedure = PARSERS[kind](text, source=source)
    return procedure


def load_procedure(path: str | Path) -> Procedure:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), "(file)", f"cannot read: {exc.strerror}",
                          "give the path of a procedure TOML file") from exc
    return parse_procedure(text, source=str(p))
