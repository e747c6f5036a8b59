"""Monte Carlo (JCGM 101) with 10^6 trials of the GUM H.1 model: ours against a plain numpy floor.

The model and inputs are those of `uncertainty_models.py`; every input is drawn from the
distribution ours assigns it (JCGM 101 6.4): ls, d, theta normal (a "u" with a "dof" is
normal, not t), da, as_, dtheta rectangular.

- ours: `results.montecarlo.evaluate_mc(model, trials=M, seed=1, coverage=0.9545)` on a
  `MeasurementModel` built once (its default chunking), i.e. draws, the model, the estimate,
  u, and the coverage intervals;
- the floor: the same six draws written by hand with `numpy.random.default_rng`, l computed
  in one expression, then mean, std (ddof = 1) and the 2.275 % / 97.725 % quantiles
  (`np.quantile`, a partial sort): the least a script must do, with nothing checked;
- also shown: the floor drawn and evaluated 10^5 trials at a time (ours' default chunk: the
  temporaries stay in cache), and the floor with a full sort and both intervals of JCGM 101 7.7
  (probabilistically symmetric and shortest), which is the work ours is asked to do.

Time: all contenders in this process, interleaved round by round, medians. Peak memory: each
contender once in a fresh child process (`--child NAME`), after its imports and the model are
ready: the peak RSS delta (the kernel's peak-RSS mark VmHWM, reset just before the call, minus
RSS then; no tracemalloc running) and, from a second call in the same child, the tracemalloc
peak (numpy reports its array buffers to tracemalloc: the allocation peak of the call).

    python -m benchmarks.uncertainty_mc [--quick|--full] [--trials 1000000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/uncertainty_mc.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.report import Headline, mode_parser, print_headlines, print_machine, print_table, write_result  # noqa: E402
from benchmarks.uncertainty_models import COVERAGE, H1_MODEL, versions  # noqa: E402

NAME = "uncertainty_mc"
REPO = Path(__file__).resolve().parent.parent
SEED = 1
#: (trials, rounds)
SIZES = {"quick": (100_000, 3), "default": (1_000_000, 9), "full": (1_000_000, 21)}
CONTENDERS = ("ours", "floor", "floor_chunked", "floor_sorted")
LABELS = {
    "ours": "ours: evaluate_mc (draws, model, u, intervals)",
    "floor": "numpy by hand: draws, l, mean, std, np.quantile",
    "floor_chunked": "numpy by hand, 10^5 trials at a time",
    "floor_sorted": "numpy by hand + sort, symmetric and shortest",
}


def _draws(trials: int, seed: int) -> dict[str, np.ndarray]:
    inputs = H1_MODEL["inputs"]
    rng = np.random.default_rng(seed)
    out = {}
    for name, spec in inputs.items():
        if spec.get("distribution") == "rectangular":
            out[name] = rng.uniform(spec["value"] - spec["half_width"], spec["value"] + spec["half_width"], trials)
        else:
            out[name] = rng.normal(spec["value"], spec["u"], trials)
    return out


def floor(trials: int, seed: int = SEED) -> dict[str, float]:
    """The hand-written numpy Monte Carlo of the H.1 model: the practical floor."""
    x = _draws(trials, seed)
    ls, d, da, theta, as_, dtheta = (x[n] for n in ("ls", "d", "da", "theta", "as_", "dtheta"))
    y = ls + d - ls * (da * theta + as_ * dtheta)
    tail = (1.0 - COVERAGE) / 2.0
    low, high = np.quantile(y, [tail, 1.0 - tail])
    return {"value": float(y.mean()), "u": float(y.std(ddof=1)), "low": float(low), "high": float(high)}


def floor_chunked(trials: int, seed: int = SEED, chunk: int = 100_000) -> dict[str, float]:
    """The floor drawn and evaluated 10^5 trials at a time (as ours is), into one array of l."""
    inputs = H1_MODEL["inputs"]
    rng = np.random.default_rng(seed)
    y = np.empty(trials)
    for start in range(0, trials, chunk):
        n = min(chunk, trials - start)
        x = {}
        for name, spec in inputs.items():
            if spec.get("distribution") == "rectangular":
                x[name] = rng.uniform(spec["value"] - spec["half_width"], spec["value"] + spec["half_width"], n)
            else:
                x[name] = rng.normal(spec["value"], spec["u"], n)
        ls, d, da, theta, as_, dtheta = (x[k] for k in ("ls", "d", "da", "theta", "as_", "dtheta"))
        y[start:start + n] = ls + d - ls * (da * theta + as_ * dtheta)
    tail = (1.0 - COVERAGE) / 2.0
    low, high = np.quantile(y, [tail, 1.0 - tail])
    return {"value": float(y.mean()), "u": float(y.std(ddof=1)), "low": float(low), "high": float(high)}


def floor_sorted(trials: int, seed: int = SEED) -> dict[str, float]:
    """The floor plus a full sort and both JCGM 101 7.7 intervals (symmetric and shortest)."""
    x = _draws(trials, seed)
    ls, d, da, theta, as_, dtheta = (x[n] for n in ("ls", "d", "da", "theta", "as_", "dtheta"))
    y = ls + d - ls * (da * theta + as_ * dtheta)
    y.sort()
    q = int(COVERAGE * trials + 0.5)
    r = max((trials - q + 1) // 2, 1)  # JCGM 101 7.7.2, one-based
    widths = y[q:] - y[:-q]
    best = int(np.argmin(widths))
    return {"value": float(y.mean()), "u": float(y.std(ddof=1)), "low": float(y[r - 1]), "high": float(y[r + q - 1]),
            "shortest_low": float(y[best]), "shortest_high": float(y[best + q])}


def _ours_factory() -> Callable[..., Any]:
    from results.measurement_model import MeasurementModel
    from results.montecarlo import evaluate_mc

    model = MeasurementModel.from_json(H1_MODEL, source="h1.json")

    def ours(trials: int, seed: int = SEED) -> Any:
        return evaluate_mc(model, trials=trials, seed=seed, coverage=COVERAGE)

    return ours


def summary(result: Any) -> dict[str, Any]:
    """value, u and interval of output l from ours (its JSON contract) or a floor's dict."""
    if isinstance(result, dict) and "value" in result:
        return result
    data = result.to_dict() if hasattr(result, "to_dict") else result
    out = data["outputs"]["l"]
    figures = {"value": out["value"], "u": out["u"]}
    if "interval" in out:
        figures["low"], figures["high"] = out["interval"]
    for key in ("shortest_interval", "shortest"):
        if isinstance(out.get(key), list | tuple) and len(out[key]) == 2:
            figures["shortest_low"], figures["shortest_high"] = out[key]
    for key in ("trials", "dof", "k", "U"):
        if key in out:
            figures[key] = out[key]
    return figures


def contender(name: str) -> Callable[..., Any]:
    if name == "ours":
        return _ours_factory()
    return {"floor": floor, "floor_chunked": floor_chunked, "floor_sorted": floor_sorted}[name]


def _status_bytes(field: str) -> int | None:
    """VmRSS / VmHWM of this process from /proc/self/status (Linux), in bytes."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0: clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(name: str, trials: int) -> None:
    """Run one contender once for RSS and once under tracemalloc; print the figures as JSON.

    Peak RSS: the kernel's high-water mark VmHWM, reset just before the call, minus RSS then.
    (ru_maxrss is not used: a child can start with its parent's high-water mark.)
    """
    import tracemalloc

    from benchmarks.measure import peak_rss_bytes, rss_bytes

    fn = contender(name)
    fn(10_000)  # imports, caches and the model's first evaluation happen here, not in the measured call
    reset = _reset_peak_rss()
    before = rss_bytes()
    t0 = time.perf_counter()
    fn(trials)
    seconds = time.perf_counter() - t0
    hwm = _status_bytes("VmHWM") if reset else None
    peak = hwm if hwm is not None else peak_rss_bytes()
    tracemalloc.start()
    fn(trials)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"rss_before": before, "peak_rss": peak, "peak_rss_delta": peak - before,
                      "peak_rss_source": "VmHWM after clear_refs" if hwm is not None else "ru_maxrss",
                      "tracemalloc_peak": traced_peak, "seconds": seconds}))


def memory(name: str, trials: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.uncertainty_mc", "--child", name,
                           "--trials", str(trials)], cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child for {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(trials: int, rounds: int) -> dict[str, Any]:
    fns = {name: contender(name) for name in CONTENDERS}
    results = {name: summary(fn(trials, SEED)) for name, fn in fns.items()}  # warm-up, and what each computes
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    wall0 = time.perf_counter()
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(trials, SEED)
            seconds[name].append(time.perf_counter() - t0)
    wall = time.perf_counter() - wall0
    mem = {name: memory(name, trials) for name in fns}
    return {"wall": wall, "seconds": seconds, "median": {k: statistics.median(v) for k, v in seconds.items()},
            "results": results, "memory": mem}


def main(argv: list[str] | None = None) -> dict | None:
    parser = mode_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=None, help="Monte Carlo trials (default 10^6)")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    trials_default, rounds = SIZES[args.mode]
    trials = args.trials or trials_default
    if args.child:
        child(args.child, trials)
        return None
    try:
        import results.montecarlo  # noqa: F401
    except ImportError as exc:
        sys.exit(f"uncertainty_mc needs results.montecarlo (evaluate_mc), which is not importable: {exc}")
    print_machine()
    print(f"{NAME}: GUM H.1 model, {trials:,} trials, seed {SEED}, coverage {COVERAGE}, {rounds} rounds")
    r = run(trials, rounds)
    med, mem, res = r["median"], r["memory"], r["results"]
    base = med["floor"]
    mb = 1024.0 * 1024.0
    rows = [[LABELS[k], f"{1e3 * med[k]:,.1f}", f"{med[k] / base:.2f}", f"{mem[k]['peak_rss_delta'] / mb:,.1f}",
             f"{mem[k]['tracemalloc_peak'] / mb:,.1f}", f"{res[k]['u']:.4f}",
             f"[{res[k].get('low', float('nan')):.1f}, {res[k].get('high', float('nan')):.1f}]"] for k in CONTENDERS]
    print_table(f"Median of {rounds} rounds; memory from one call each in a fresh process",
                ["contender", "ms", "/ floor", "peak RSS delta MB", "tracemalloc peak MB", "u nm", "interval nm"],
                rows)
    headlines = [
        Headline(f"uncertainty_mc: ours / numpy floor (time, {trials:,} trials)", med["ours"] / base, "x",
                 "1.0 is the floor; > 1: ours costs that much more"),
        Headline("uncertainty_mc: ours / floor chunked like ours (time)", med["ours"] / med["floor_chunked"], "x",
                 "the floor with ours' cache-friendly chunks"),
        Headline("uncertainty_mc: ours / floor with sort + both intervals", med["ours"] / med["floor_sorted"], "x",
                 "the same work as ours, by hand"),
        Headline("uncertainty_mc: ours / floor (peak RSS delta)",
                 mem["ours"]["peak_rss_delta"] / mem["floor"]["peak_rss_delta"], "x",
                 "< 1: ours needs less memory"),
        Headline("uncertainty_mc: ours / floor (tracemalloc peak)",
                 mem["ours"]["tracemalloc_peak"] / mem["floor"]["tracemalloc_peak"], "x",
                 "< 1: ours allocates less at its peak"),
    ]
    print_headlines(headlines)
    if not args.no_write:
        path = write_result(
            NAME, mode=args.mode, wall_seconds=r["wall"],
            setup={"model": H1_MODEL["outputs"]["l"], "inputs": H1_MODEL["inputs"], "trials": trials,
                   "seed": SEED, "coverage": COVERAGE, "rounds": rounds, "contenders": LABELS,
                   "versions": versions("numpy", "scipy")},
            figures={"seconds_median": med, "seconds_rounds": r["seconds"], "memory": mem, "results": res},
            headlines=headlines,
            notes=["peak RSS delta: VmHWM (reset by /proc/self/clear_refs just before the call) minus RSS then, "
                   "one call in a fresh child process with imports and the model ready; no tracemalloc running",
                   "tracemalloc peak: a second call in the same child under tracemalloc (numpy array buffers "
                   "included)",
                   "the floor draws the same distributions ours assigns (normal, rectangular); it checks nothing"],
        )
        print(f"wrote {path}")
    return r


if __name__ == "__main__":
    main()
