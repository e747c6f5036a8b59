"""Time per uncertainty budget of the GUM H.1 end-gauge model: ours against GTC and `uncertainties`.

One budget = from the six inputs (value, standard uncertainty, dof) to y, u_c(y) and, where the
library has them, nu_eff, k and U (see `uncertainty_models.py` for the model and its inputs).
All contenders run in this process, interleaved round by round; each round times a loop of
many budgets per contender, and the median round is reported.

- ours, evaluate only: `evaluate_gum(model)` on a `MeasurementModel` built once (parsing,
  unit checks and the symbolic derivatives are done; the derivatives are cached in the model
  after its first evaluation): y, u_c, nu_eff, k, U and the budget lines;
- ours, parse + evaluate: `evaluate_gum(MeasurementModel.from_json(H1))` every time, i.e. a
  model file read from scratch: parse the expression, check names and units, differentiate;
- ours, JSON in / JSON out: `evaluate_json(H1)`, what `daq uncertainty evaluate --json` does
  after reading the file (parse + evaluate + the result dict);
- GTC: six `ureal(x, u, df)`, the model as Python arithmetic on them, `value`, `uncertainty`,
  `dof`, and `reporting.k_factor` for k and U; also shown with `reporting.budget(l)`;
- uncertainties: six `ufloat(x, u)`, the same arithmetic, `nominal_value` and `std_dev`
  (no degrees of freedom, so no nu_eff and no k from Student's t); also shown with
  `error_components()`, its per-input budget.

    python -m benchmarks.uncertainty_budget [--quick|--full]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/uncertainty_budget.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import spread  # noqa: E402
from benchmarks.report import Headline, mode_parser, print_headlines, print_machine, print_table, write_result  # noqa: E402
from benchmarks.uncertainty_models import COVERAGE, H1_INPUTS, H1_MODEL, h1_length, versions  # noqa: E402

NAME = "uncertainty_budget"
#: (rounds, seconds of loop per contender and round)
SIZES = {"quick": (3, 0.1), "default": (9, 0.3), "full": (21, 0.5)}


def contenders() -> dict[str, Callable[[], dict[str, float]]]:
    """name -> one budget, returning its figures (so the numbers can be compared too)."""
    import GTC
    import uncertainties
    from GTC import reporting

    from results.measurement_model import MeasurementModel, evaluate_gum, evaluate_json

    model = MeasurementModel.from_json(H1_MODEL, source="h1.json")
    evaluate_gum(model, COVERAGE)  # the first evaluation differentiates; later ones reuse it

    def ours(m: MeasurementModel) -> dict[str, float]:
        out = evaluate_gum(m, COVERAGE)["l"]
        return {"value": out.value, "u": out.u, "dof": out.dof, "k": out.k, "U": out.U}

    def ours_json() -> dict[str, float]:
        out = evaluate_json(H1_MODEL, source="h1.json")["outputs"]["l"]
        return {key: out[key] for key in ("value", "u", "dof", "k", "U")}

    percent = 100.0 * COVERAGE

    def gtc(with_budget: bool) -> dict[str, float]:
        x = {name: GTC.ureal(v, u, df, label=name) for name, (v, u, df) in H1_INPUTS.items()}
        y = h1_length(**x)
        u, df = GTC.uncertainty(y), GTC.dof(y)
        k = reporting.k_factor(df, percent)
        if with_budget:
            reporting.budget(y)
        return {"value": GTC.value(y), "u": u, "dof": df, "k": k, "U": k * u}

    def unc(with_components: bool) -> dict[str, float]:
        x = {name: uncertainties.ufloat(v, u, tag=name) for name, (v, u, _df) in H1_INPUTS.items()}
        y = h1_length(**x)
        if with_components:
            y.error_components()
        return {"value": y.nominal_value, "u": y.std_dev}

    return {
        "ours_evaluate": lambda: ours(model),
        "ours_parse_evaluate": lambda: ours(MeasurementModel.from_json(H1_MODEL, source="h1.json")),
        "ours_json": ours_json,
        "gtc": lambda: gtc(False),
        "gtc_budget": lambda: gtc(True),
        "uncertainties": lambda: unc(False),
        "uncertainties_components": lambda: unc(True),
    }


LABELS = {
    "ours_evaluate": "ours: evaluate_gum(model), model built once",
    "ours_parse_evaluate": "ours: MeasurementModel.from_json + evaluate_gum",
    "ours_json": "ours: evaluate_json (JSON in, dict out)",
    "gtc": "GTC: ureal x6, arithmetic, u, dof, k",
    "gtc_budget": "GTC: the same + reporting.budget",
    "uncertainties": "uncertainties: ufloat x6, arithmetic, std_dev",
    "uncertainties_components": "uncertainties: the same + error_components",
}


def calibrate(fn: Callable[[], Any], seconds: float) -> int:
    """How many calls fill about `seconds` (from the fastest of a few timed calls)."""
    best = min(_timed(fn, 1) for _ in range(5))
    return max(5, int(seconds / max(best, 1e-7)))


def _timed(fn: Callable[[], Any], reps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return time.perf_counter() - t0


def run(mode: str) -> dict[str, Any]:
    rounds, seconds = SIZES[mode]
    fns = contenders()
    figures = {name: fn() for name, fn in fns.items()}  # warm-up; also what each one computes
    reps = {name: calibrate(fn, seconds) for name, fn in fns.items()}
    per_call: dict[str, list[float]] = {name: [] for name in fns}
    wall0 = time.perf_counter()
    for _ in range(rounds):
        for name, fn in fns.items():
            per_call[name].append(_timed(fn, reps[name]) / reps[name])
    return {"wall": time.perf_counter() - wall0, "reps": reps, "per_call": per_call, "results": figures,
            "median": {name: statistics.median(v) for name, v in per_call.items()}}


def main(argv: list[str] | None = None) -> dict:
    parser = mode_parser(__doc__.split("\n\n")[0])
    args = parser.parse_args(argv)
    try:
        import GTC  # noqa: F401
        import uncertainties  # noqa: F401
    except ImportError:
        sys.exit("uncertainty_budget needs GTC and uncertainties, the alternatives it compares with: install the "
                 "bench extras (scripts/bootstrap-venv bench, or .venv/bin/pip install -e '.[bench]')")
    print_machine()
    print(f"{NAME}: GUM H.1 end gauge, l = {H1_MODEL['outputs']['l']}, coverage {COVERAGE}")
    r = run(args.mode)
    med, res = r["median"], r["results"]
    ours = med["ours_evaluate"]

    def fmt(value: float | None, digits: str) -> str:
        return "-" if value is None else format(value, digits)

    rows = [[LABELS[name], f"{1e6 * med[name]:,.1f}", f"{med[name] / ours:.2f}",
             f"{med[name] / med['gtc']:.2f}", fmt(res[name].get("u"), ".4f"), fmt(res[name].get("dof"), ".3f"),
             fmt(res[name].get("k"), ".4f")] for name in LABELS]
    print_table(f"Median of {len(r['per_call']['gtc'])} rounds, time per budget",
                ["contender", "us/budget", "/ ours eval", "/ GTC", "u_c nm", "nu_eff", "k"], rows)
    headlines = [
        Headline("uncertainty_budget: ours evaluate / GTC (time per budget)", ours / med["gtc"], "x",
                 "< 1: ours is faster"),
        Headline("uncertainty_budget: ours parse + evaluate / GTC", med["ours_parse_evaluate"] / med["gtc"], "x",
                 "< 1: ours is faster, model file read every time"),
        Headline("uncertainty_budget: ours evaluate / uncertainties", ours / med["uncertainties"], "x",
                 "< 1: ours is faster (uncertainties has no dof, k)"),
        Headline("uncertainty_budget: ours parse + evaluate / uncertainties",
                 med["ours_parse_evaluate"] / med["uncertainties"], "x", "< 1: ours is faster"),
    ]
    print_headlines(headlines)
    agree = {name: abs(res[name]["u"] / res["ours_evaluate"]["u"] - 1.0) for name in res}
    print(f"\nlargest relative difference of u_c from ours: {max(agree.values()):.1e}; "
          f"nu_eff ours {res['ours_evaluate']['dof']:.4f}, GTC {res['gtc']['dof']:.4f}")
    if not args.no_write:
        path = write_result(
            NAME, mode=args.mode, wall_seconds=r["wall"],
            setup={"model": H1_MODEL["outputs"]["l"], "inputs": H1_MODEL["inputs"], "coverage": COVERAGE,
                   "rounds": len(r["per_call"]["gtc"]), "budgets_per_round": r["reps"], "contenders": LABELS,
                   "versions": versions("GTC", "uncertainties", "numpy", "scipy", "pint")},
            figures={"seconds_per_budget_median": med, "seconds_per_budget_spread":
                     {name: spread(v) for name, v in r["per_call"].items()},
                     "results": res, "u_relative_difference_from_ours": agree},
            headlines=headlines,
            notes=["times are per budget, in one process, contenders interleaved round by round",
                   "ours_evaluate reuses the model's cached symbolic derivatives (built by the first evaluation)",
                   "uncertainties has no degrees of freedom: no nu_eff, no Student-t k"],
        )
        print(f"wrote {path}")
    return r


if __name__ == "__main__":
    main()
