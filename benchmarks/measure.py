"""Timing, memory and machine facts shared by the benchmarks.

Numbers from one benchmark are only compared with numbers taken by the same script, on the
same machine, in the same run; the machine description travels with every result file so a
ratio is never read without knowing where it was measured.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import resource
import statistics
import sys
from collections.abc import Sequence
from typing import Any

#: Packages whose versions matter to at least one benchmark.
PACKAGES = ("pyvisa", "pyvisa-py", "sqlalchemy", "aiosqlite", "qcodes", "numpy", "psutil")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """Where the numbers were taken: cores, CPU, OS, Python and library versions."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cores": affinity,
        "cpu": cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "packages": versions,
    }


def describe_machine(m: dict[str, Any]) -> str:
    return f"{m['cores']} cores, {m['cpu']}, {m['os']}, Python {m['python']}"


def rss_bytes() -> int:
    """Resident set size of this process now (psutil, else /proc/self/statm)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """The highest resident set size this process has had (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between order statistics; NaN for no values."""
    data = sorted(values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, p10, p90, min, max and count of a sample."""
    if not values:
        return {"n": 0, "median": math.nan, "p10": math.nan, "p90": math.nan, "min": math.nan, "max": math.nan}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p10": percentile(values, 10),
        "p90": percentile(values, 90),
        "min": min(values),
        "max": max(values),
    }
