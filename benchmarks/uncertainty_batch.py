"""10,000 calibration points' budgets at once: `evaluate_gum_batch` against a loop, per point.

The GUM H.1 end-gauge model (`uncertainty_models.py`) at N = 10,000 points, as a gauge-block
calibration would have them: each point its own standard length ls (1 mm to 100 mm, with
u(ls) growing with length), comparator difference d, temperature theta and dof of ls; the
other inputs as in H.1. Per point: y, u_c, nu_eff, k, U and the six budget columns.

- ours, batch: one `evaluate_gum_batch(model, values, uncertainties, dofs=...)` over all N
  points (the model built once);
- ours, loop: `evaluate_gum` point by point, on a model rebuilt for each point from the
  point's inputs (`MeasurementModel(outputs, inputs)` with the parsed expression: what the
  single-point API asks for when inputs change);
- ours, loop floor: `evaluate_gum` on one prebuilt model, N times (its cost does not depend
  on the values; no real loop can be cheaper than this with the single-point API);
- GTC, loop: six `ureal`, the arithmetic, u, dof and k per point.

Loops run over the first `--loop-points` points (the per-point cost of a loop is flat) and
the check that batch and loop agree covers the same points. Rounds alternate; medians.

    python -m benchmarks.uncertainty_batch [--quick|--full] [--points 10000] [--loop-points 1000]
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/uncertainty_batch.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.report import Headline, mode_parser, print_headlines, print_machine, print_table, write_result  # noqa: E402
from benchmarks.uncertainty_models import COVERAGE, H1_INPUTS, H1_MODEL, h1_length, versions  # noqa: E402

NAME = "uncertainty_batch"
#: (points, loop points, rounds)
SIZES = {"quick": (10_000, 200, 3), "default": (10_000, 1_000, 5), "full": (10_000, 10_000, 5)}


def make_points(n: int, seed: int = 1) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Values (nm, K), standard uncertainties and dofs of n gauge-block calibrations."""
    rng = np.random.default_rng(seed)
    nominal = rng.uniform(1.0, 100.0, n) * 1e6  # nm
    values = {"ls": nominal + rng.normal(0.0, 100.0, n), "d": rng.normal(0.0, 300.0, n),
              "theta": rng.uniform(-0.5, 0.5, n), "da": rng.uniform(-1e-6, 1e-6, n)}
    uncertainties = {"ls": 20.0 + 0.5e-6 * nominal, "d": rng.uniform(5.0, 15.0, n)}
    dofs = {"ls": rng.integers(5, 60, n).astype(float)}
    return values, uncertainties, dofs


def run(n: int, loop_n: int, rounds: int) -> dict[str, Any]:
    import GTC
    from GTC import reporting

    from results.measurement_model import MeasurementModel, evaluate_gum, evaluate_gum_batch

    model = MeasurementModel.from_json(H1_MODEL, source="h1.json")
    values, uncertainties, dofs = make_points(n)
    evaluate_gum(model, COVERAGE)
    evaluate_gum_batch(model, values, uncertainties, dofs=dofs, coverage=COVERAGE)  # warm-up

    def point_inputs(i: int) -> dict[str, Any]:
        inputs = dict(model.inputs)
        for name, array in values.items():
            inputs[name] = replace(inputs[name], value=float(array[i]))
        for name, array in uncertainties.items():
            inputs[name] = replace(inputs[name], u=float(array[i]))
        for name, array in dofs.items():
            inputs[name] = replace(inputs[name], dof=float(array[i]))
        return inputs

    def batch() -> Any:
        return evaluate_gum_batch(model, values, uncertainties, dofs=dofs, coverage=COVERAGE)

    def loop() -> list[Any]:
        return [evaluate_gum(MeasurementModel(model.outputs, point_inputs(i), source="h1.json"), COVERAGE)
                for i in range(loop_n)]

    def loop_floor() -> None:
        for _ in range(loop_n):
            evaluate_gum(model, COVERAGE)

    percent = 100.0 * COVERAGE

    def gtc() -> list[tuple[float, float, float, float]]:
        out = []
        for i in range(loop_n):
            x = {}
            for name, (v, u, df) in H1_INPUTS.items():
                v = float(values[name][i]) if name in values else v
                u = float(uncertainties[name][i]) if name in uncertainties else u
                df = float(dofs[name][i]) if name in dofs else df
                x[name] = GTC.ureal(v, u, df)
            y = h1_length(**x)
            u_y, df_y = GTC.uncertainty(y), GTC.dof(y)
            out.append((GTC.value(y), u_y, df_y, reporting.k_factor(df_y, percent)))
        return out

    per_point: dict[str, list[float]] = {"batch": [], "loop": [], "loop_floor": [], "gtc": []}
    counts = {"batch": n, "loop": loop_n, "loop_floor": loop_n, "gtc": loop_n}
    fns = {"batch": batch, "loop": loop, "loop_floor": loop_floor, "gtc": gtc}
    kept: dict[str, Any] = {}
    wall0 = time.perf_counter()
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            kept[name] = fn()
            per_point[name].append((time.perf_counter() - t0) / counts[name])
    wall = time.perf_counter() - wall0

    result, singles, gtc_out = kept["batch"], kept["loop"], kept["gtc"]
    out = result["l"]
    worst = 0.0
    for i, single in enumerate(singles):
        s = single["l"]
        for key, batch_value in (("value", out.value[i]), ("u", out.u[i]), ("dof", out.dof[i]), ("k", out.k[i]),
                                 ("U", out.U[i])):
            worst = max(worst, abs(batch_value / getattr(s, key) - 1.0))
        worst = max(worst, float(np.max(np.abs(out.contribution[i] - [line.contribution for line in s.budget])
                                        / s.u)))
    worst_gtc = max(max(abs(out.u[i] / u - 1.0), abs(out.dof[i] / df - 1.0), abs(out.k[i] / k - 1.0))
                    for i, (_v, u, df, k) in enumerate(gtc_out))
    return {"wall": wall, "per_point": per_point, "median": {k: statistics.median(v) for k, v in per_point.items()},
            "batch_vs_loop_max_relative_difference": worst, "batch_vs_gtc_max_relative_difference": worst_gtc,
            "u_range_nm": [float(out.u.min()), float(out.u.max())],
            "dof_range": [float(out.dof.min()), float(out.dof.max())]}


def main(argv: list[str] | None = None) -> dict:
    parser = mode_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=None, help="points in the batch (default 10,000)")
    parser.add_argument("--loop-points", type=int, default=None, help="points the loops run over")
    args = parser.parse_args(argv)
    try:
        import GTC  # noqa: F401
    except ImportError:
        sys.exit("uncertainty_batch needs GTC for its reference row: install the bench extras "
                 "(scripts/bootstrap-venv bench, or .venv/bin/pip install -e '.[bench]')")
    n, loop_n, rounds = SIZES[args.mode]
    n = args.points or n
    loop_n = min(args.loop_points or loop_n, n)
    print_machine()
    print(f"{NAME}: GUM H.1 model at {n:,} points in one batch; loops over {loop_n:,} points; {rounds} rounds")
    r = run(n, loop_n, rounds)
    med = r["median"]
    batch = med["batch"]
    labels = {
        "batch": f"ours: evaluate_gum_batch over {n:,} points",
        "loop": "ours: evaluate_gum, model rebuilt per point",
        "loop_floor": "ours: evaluate_gum on one prebuilt model",
        "gtc": "GTC: ureal x6, arithmetic, u, dof, k per point",
    }
    rows = [[label, f"{1e6 * med[k]:,.2f}", f"{med[k] / batch:,.1f}",
             f"{n * med[k]:.3f}"] for k, label in labels.items()]
    print_table(f"Median of {rounds} rounds, time per point", ["contender", "us/point", "/ batch",
                                                                f"s for {n:,} points"], rows)
    print(f"\nbatch against the loop on the same {loop_n:,} points: largest relative difference "
          f"{r['batch_vs_loop_max_relative_difference']:.1e} (value, u, nu_eff, k, U, contributions); "
          f"against GTC (u, nu_eff, k): {r['batch_vs_gtc_max_relative_difference']:.1e}")
    headlines = [
        Headline("uncertainty_batch: batch time per point", 1e6 * batch, "us",
                 f"{n:,} budgets in one evaluate_gum_batch call"),
        Headline("uncertainty_batch: evaluate_gum loop / batch (per point)", med["loop"] / batch, "x",
                 "> 1: the batch is that many times faster"),
        Headline("uncertainty_batch: evaluate_gum prebuilt model / batch", med["loop_floor"] / batch, "x",
                 "> 1: the batch beats even the loop's floor"),
        Headline("uncertainty_batch: GTC per point / batch", med["gtc"] / batch, "x",
                 "> 1: the batch is that many times faster"),
    ]
    print_headlines(headlines)
    if not args.no_write:
        path = write_result(
            NAME, mode=args.mode, wall_seconds=r["wall"],
            setup={"model": H1_MODEL["outputs"]["l"], "points": n, "loop_points": loop_n, "rounds": rounds,
                   "coverage": COVERAGE, "varying": {"values": ["ls", "d", "theta", "da"], "uncertainties":
                                                     ["ls", "d"], "dofs": ["ls"]},
                   "contenders": labels, "versions": versions("GTC", "numpy", "scipy")},
            figures={"seconds_per_point_median": med, "seconds_per_point_rounds": r["per_point"],
                     "batch_vs_loop_max_relative_difference": r["batch_vs_loop_max_relative_difference"],
                     "batch_vs_gtc_max_relative_difference": r["batch_vs_gtc_max_relative_difference"],
                     "u_range_nm": r["u_range_nm"], "dof_range": r["dof_range"]},
            headlines=headlines,
            notes=["loops run over the first loop_points points; per-point cost of a loop is flat",
                   "the batch covers all points including input conversion, validation and the budget arrays"],
        )
        print(f"wrote {path}")
    return r


if __name__ == "__main__":
    main()
