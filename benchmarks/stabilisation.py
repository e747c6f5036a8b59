"""Declared-stable time against the truth, over many seeded simulated settles.

Each settle is one calibration point of `runner/data/dcv-34465a.toml` run by the real
procedure code (`DcVoltageProcedure.measure`: configure the DMM, program the calibrator,
`wait_until_stable` with the file's criteria scaled to the range, flag included) through the
real drivers over real TCP sockets to in-process simulators of `runner/data/demo-bench.toml`
on a VirtualClock. Before the point, the calibrator sits settled at a random start value
(anywhere within a random range, as a previous point would leave it); the point then steps
it to a random setpoint on a random range, so a step down may overload the DMM at first.
Seeds vary the range (100 mV, 1 V, 10 V, 100 V), the start and target values, the
calibrator's settling time constant tau (0.4 to 6.4 s) and the world's noise draws.

The oracle: the simulator knows the noise-free output v(t) (a first-order lag) and the value
it settles to; the oracle time is when |v(t) - final| first drops to <= 1 ppm of the range
(and stays, the lag being monotonic). "Early" means declared stable before the oracle time.
The fixed-soak alternative waits 5 tau after the step (tau known exactly, which flatters it).

    python -m benchmarks.stabilisation [--quick|--full] [--settles N] [--oracle-ppm 1.0]
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/stabilisation.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import percentile, spread  # noqa: E402
from benchmarks.report import Headline, mode_parser, print_headlines, print_machine, print_table, write_result  # noqa: E402

NAME = "stabilisation"
REPO = Path(__file__).resolve().parent.parent
BENCH_FILE = REPO / "runner" / "data" / "demo-bench.toml"
PROCEDURE_FILE = REPO / "runner" / "data" / "dcv-34465a.toml"
TAUS = (0.4, 0.8, 1.6, 3.2, 6.4)
SOAK_TAUS = 5.0
SECONDARY_BANDS_PPM = (0.5, 2.0, 5.0)
SIZES = {"quick": 100, "default": 500, "full": 3000}


class _SettleContext:
    """The `PointContext` the procedure sees: instruments and clock; it records nothing."""

    def __init__(self, clock: Any, instruments: dict[str, Any]) -> None:
        self.clock = clock
        self.instruments = instruments
        self.recorded = 0

    async def record(self, reading: Any) -> None:
        self.recorded += 1

    def show(self, phase: str, check: Any = None) -> None:
        pass

    async def confirm(self, question: str) -> bool:
        return True  # hazardous-voltage prompts on the 100 V range


def _bench_with_tau(bench: Any, tau: float) -> Any:
    cal = bench.instruments["calibrator"]
    cal = dataclasses.replace(cal, simulation={**cal.simulation, "time_constant": tau})
    return dataclasses.replace(bench, instruments={**bench.instruments, "calibrator": cal})


def _first_time_within(residual: Any, t_start: float, band: float, horizon: float) -> float:
    """Earliest t >= t_start with residual(t) <= band, for a residual that only decreases."""
    if residual(t_start) <= band:
        return t_start
    lo, hi = t_start, t_start + horizon
    while residual(hi) > band:
        hi += horizon
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if residual(mid) <= band:
            hi = mid
        else:
            lo = mid
    return hi


async def _one_settle(i: int, base_seed: int, bench: Any, proc: Any, oracle_ppm: float) -> dict[str, Any]:
    import numpy as np

    from daq.clock import VirtualClock
    from daq.errors import InstrumentError
    from drivers.registry import build_driver
    from procedures.dc_voltage import DcPoint, StabilityTimeout
    from simulators.bench_server import start_bench

    rng = np.random.default_rng([base_seed, i])
    ranges = sorted({p.range_ for p in proc.points})
    range_ = float(ranges[int(rng.integers(len(ranges)))])
    tau = float(TAUS[int(rng.integers(len(TAUS)))])
    start_range = float(ranges[int(rng.integers(len(ranges)))])  # the previous point's range
    start = float(rng.uniform(-start_range, start_range))
    target = float(f"{rng.uniform(-range_, range_):.4g}")
    seed = base_seed * 100_000 + i
    clock = VirtualClock()
    running = await start_bench(_bench_with_tau(bench, tau), clock, seed=seed)
    cal = build_driver(running.bench.instruments[proc.source_role])
    dmm = build_driver(running.bench.instruments[proc.uut_role])
    out: dict[str, Any] = {"i": i, "seed": seed, "range": range_, "tau": tau, "start": start, "target": target,
                           "step": target - start}
    try:
        await cal.connect()
        await dmm.connect()
        await cal.standby()
        await cal.set_output(start, "V")
        await cal.operate()
        await clock.sleep(40 * tau)  # settled at `start` (e^-40)
        point = DcPoint(0, target, "V", range_, f"{target:g} V on {range_:g} V")
        ctx = _SettleContext(clock, {proc.source_role: cal, proc.uut_role: dmm})
        out["timeout_s"] = proc.stability_ppm.timeout
        out["window_s"] = proc.stability_ppm.window * proc.nplc / 50.0
        t_step = clock.now()
        wall0 = time.perf_counter()
        try:
            data = await proc.measure(ctx, point)
            record = data.stability
            out["outcome"] = "stable"
        except StabilityTimeout as exc:
            record = exc.record
            out["outcome"] = "timeout"
        except InstrumentError as exc:
            record = None
            out["outcome"] = "error"
            out["error"] = str(exc)
        out["wall_seconds"] = time.perf_counter() - wall0
        model = running.world.calibrator(proc.source_role)
        final = model.true_output(target)

        def residual(t: float) -> float:
            return abs(model.output_at(t) - final)

        ppm = range_ * 1e-6
        out["oracle"] = _first_time_within(residual, t_step, oracle_ppm * ppm, tau) - t_step
        out["oracle_secondary"] = {str(b): _first_time_within(residual, t_step, b * ppm, tau) - t_step
                                   for b in SECONDARY_BANDS_PPM}
        out["soak"] = SOAK_TAUS * tau
        out["soak_residual_ppm"] = residual(t_step + SOAK_TAUS * tau) / ppm
        if record is not None:
            out["declared"] = record.ended_at - t_step
            out["samples"] = record.samples
            out["declared_residual_ppm"] = residual(record.ended_at) / ppm
            out["reason"] = record.reason
            out["overloaded_samples"] = sum(1 for _, v, *_ in record.trace if not math.isfinite(v))
    finally:
        for driver in (cal, dmm):
            try:
                await driver.close()
            except Exception:  # noqa: BLE001 - a close failure must not hide the figures
                pass
        await running.close()
    return out


async def _all_settles(n: int, base_seed: int, oracle_ppm: float, progress: bool) -> list[dict[str, Any]]:
    from daq.bench import load_bench
    from procedures.dc_voltage import load_procedure

    bench = load_bench(BENCH_FILE)
    proc = load_procedure(PROCEDURE_FILE)
    proc.repeats = 2  # the repeats after the settle do not affect the stability record
    results = []
    for i in range(n):
        results.append(await _one_settle(i, base_seed, bench, proc, oracle_ppm))
        if progress and (i + 1) % 50 == 0:
            print(f"  {i + 1}/{n} settles", file=sys.stderr)
    return results


def _rate(flags: list[bool]) -> float:
    return 100.0 * sum(flags) / len(flags) if flags else math.nan


def summarise(settles: list[dict[str, Any]], oracle_ppm: float) -> dict[str, Any]:
    stable = [s for s in settles if s["outcome"] == "stable"]
    moving = [s for s in stable if s["oracle"] > 0]
    ratios = [s["declared"] / s["oracle"] for s in moving]
    by_tau: dict[str, Any] = {}
    for tau in TAUS:
        group = [s for s in stable if s["tau"] == tau]
        g_moving = [s for s in group if s["oracle"] > 0]
        by_tau[f"{tau:g}"] = {
            "settles": len(group),
            "timeouts": sum(1 for s in settles if s["tau"] == tau and s["outcome"] == "timeout"),
            "early_rate_pct": _rate([s["declared"] < s["oracle"] for s in group]),
            "declared_over_oracle_median": statistics.median([s["declared"] / s["oracle"] for s in g_moving])
            if g_moving else math.nan,
            "soak_early_rate_pct": _rate([s["soak"] < s["oracle"] for s in group]),
            "max_declared_residual_ppm": max((s["declared_residual_ppm"] for s in group), default=math.nan),
            "declared_seconds_median": statistics.median([s["declared"] for s in group]) if group else math.nan,
            "oracle_seconds_median": statistics.median([s["oracle"] for s in group]) if group else math.nan,
        }
    by_range: dict[str, Any] = {}
    for rng in sorted({s["range"] for s in settles}):
        group = [s for s in stable if s["range"] == rng]
        g_moving = [s for s in group if s["oracle"] > 0]
        by_range[f"{rng:g}"] = {
            "settles": len(group),
            "early_rate_pct": _rate([s["declared"] < s["oracle"] for s in group]),
            "declared_over_oracle_median": statistics.median([s["declared"] / s["oracle"] for s in g_moving])
            if g_moving else math.nan,
            "soak_residual_ppm_median": statistics.median([s["soak_residual_ppm"] for s in group])
            if group else math.nan,
        }
    secondary = {}
    for b in SECONDARY_BANDS_PPM:
        key = str(b)
        secondary[f"{b:g} ppm of range"] = {
            "early_rate_pct": _rate([s["declared"] < s["oracle_secondary"][key] for s in stable]),
            "soak_early_rate_pct": _rate([s["soak"] < s["oracle_secondary"][key] for s in settles]),
        }
    soak_res = [s["soak_residual_ppm"] for s in settles]
    return {
        "timeout_s": settles[0]["timeout_s"],
        "window_s": settles[0]["window_s"],
        "settles": len(settles),
        "stable": len(stable),
        "timeouts": sum(s["outcome"] == "timeout" for s in settles),
        "errors": sum(s["outcome"] == "error" for s in settles),
        "settles_with_overload": sum(1 for s in settles if s.get("overloaded_samples")),
        "timeout_oracle_seconds_min": min((s["oracle"] for s in settles if s["outcome"] == "timeout"),
                                          default=math.nan),
        "error_examples": [s["error"] for s in settles if s["outcome"] == "error"][:3],
        "already_in_band": len(stable) - len(moving),
        "declared_over_oracle": spread(ratios),
        "early_rate_pct": _rate([s["declared"] < s["oracle"] for s in stable]),
        "declared_residual_ppm": spread([s["declared_residual_ppm"] for s in stable]),
        "declared_seconds": spread([s["declared"] for s in stable]),
        "oracle_seconds": spread([s["oracle"] for s in settles]),
        "declared_over_soak": spread([s["declared"] / s["soak"] for s in stable]),
        "soak_over_oracle": spread([s["soak"] / s["oracle"] for s in settles if s["oracle"] > 0]),
        "soak_early_rate_pct": _rate([s["soak"] < s["oracle"] for s in settles]),
        "soak_residual_ppm": spread(soak_res),
        "soak_residual_over_band": spread([r / oracle_ppm for r in soak_res]),
        "fixed_soak_needed_taus": max(s["oracle"] / s["tau"] for s in settles),
        "oracle_over_tau_p90": percentile([s["oracle"] / s["tau"] for s in settles], 90),
        "step_over_range_abs": spread([abs(s["step"]) / s["range"] for s in settles]),
        "by_tau": by_tau,
        "by_range": by_range,
        "other_bands": secondary,
        "wall_seconds_per_settle": spread([s["wall_seconds"] for s in settles]),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = mode_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--settles", type=int, default=None, help="number of seeded settles (>= 100 advised)")
    parser.add_argument("--seed", type=int, default=2026, help="base seed")
    parser.add_argument("--oracle-ppm", type=float, default=1.0,
                        help="oracle band: |noise-free v(t) - final| <= this many ppm of range (default 1)")
    args = parser.parse_args(argv)
    n = args.settles or SIZES[args.mode]
    print_machine()
    print(f"{NAME}: {n} seeded settles, procedure {PROCEDURE_FILE.name} on {BENCH_FILE.name}, real drivers over "
          f"TCP to in-process simulators, VirtualClock; oracle band {args.oracle_ppm:g} ppm of range")
    wall0 = time.perf_counter()
    settles = asyncio.run(_all_settles(n, args.seed, args.oracle_ppm, progress=True))
    wall = time.perf_counter() - wall0
    s = summarise(settles, args.oracle_ppm)
    d, sr, so = s["declared_over_oracle"], s["declared_residual_ppm"], s["soak_residual_ppm"]
    print(f"  {s['stable']} stable, {s['timeouts']} timed out, {s['errors']} failed; "
          f"{s['already_in_band']} already inside the band at the step; {s['settles_with_overload']} began "
          f"with DMM overloads; wall {wall:.1f} s")
    if s["timeouts"]:
        print(f"  every timed-out settle had an oracle time >= {s['timeout_oracle_seconds_min']:.0f} s (the file's "
              f"timeout is {s['timeout_s']:g} s and a window of readings takes {s['window_s']:g} s)")
    if s["error_examples"]:
        print(f"  failures, e.g.: {s['error_examples'][0]}")
    rows = [
        ["ours: wait_until_stable (file's criteria + flag)", f"{d['median']:.2f}", f"{d['p90']:.2f}",
         f"{s['early_rate_pct']:.1f} %", f"{sr['median']:.3f}", f"{sr['p90']:.3f}", f"{sr['max']:.3f}"],
        [f"fixed soak of {SOAK_TAUS:g} tau", f"{s['soak_over_oracle']['median']:.2f}",
         f"{s['soak_over_oracle']['p90']:.2f}", f"{s['soak_early_rate_pct']:.1f} %", f"{so['median']:.1f}",
         f"{so['p90']:.1f}", f"{so['max']:.1f}"],
    ]
    print_table(f"Against the oracle (noise-free residual <= {args.oracle_ppm:g} ppm of range), {n} settles",
                ["rule", "t/oracle med", "p90", "early", "residual ppm med", "p90", "max"], rows)
    tau_headers = ["tau s", "stable", "timed out", "oracle s med", "ours s med", "ours early", "ours t/oracle med",
                   "ours max residual ppm", f"{SOAK_TAUS:g} tau early"]
    tau_rows = [[k, v["settles"], v["timeouts"], f"{v['oracle_seconds_median']:.1f}",
                 f"{v['declared_seconds_median']:.1f}", f"{v['early_rate_pct']:.1f} %",
                 f"{v['declared_over_oracle_median']:.2f}", f"{v['max_declared_residual_ppm']:.2f}",
                 f"{v['soak_early_rate_pct']:.1f} %"] for k, v in s["by_tau"].items()]
    print_table("By calibrator time constant (times: stable settles)", tau_headers, tau_rows)
    print(f"  a fixed soak with no early settle over these seeds needs {s['fixed_soak_needed_taus']:.1f} tau; "
          f"ours took a median {s['declared_over_soak']['median']:.2f} x 5 tau")
    headlines = [
        Headline("stabilisation: declared / oracle time, median", d["median"], "x", "1.0 ideal; < 1 is early"),
        Headline("stabilisation: declared / oracle time, p90", d["p90"], "x", "time spent beyond the truth"),
        Headline("stabilisation: declared early (ours)", s["early_rate_pct"], "%",
                 f"declared before residual <= {args.oracle_ppm:g} ppm of range"),
        Headline("stabilisation: residual at declaration, p90", sr["p90"], "ppm of range",
                 "how far from final when declared"),
        Headline("stabilisation: timed out (ours)", 100.0 * s["timeouts"] / s["settles"], "%",
                 f"where the oracle is >= {s['timeout_oracle_seconds_min']:.0f} s of a {s['timeout_s']:g} s timeout"
                 if s["timeouts"] else "none"),
        Headline(f"stabilisation: {SOAK_TAUS:g}-tau soak early", s["soak_early_rate_pct"], "%",
                 "fixed soak ended before the oracle time"),
        Headline(f"stabilisation: {SOAK_TAUS:g}-tau soak residual / band, median",
                 s["soak_residual_over_band"]["median"], "x", "> 1: soak ends outside the band"),
        Headline(f"stabilisation: ours / {SOAK_TAUS:g}-tau soak time, median", s["declared_over_soak"]["median"],
                 "x", "time cost of ours against the soak"),
    ]
    print_headlines(headlines)
    if not args.no_write:
        path = write_result(
            NAME, mode=args.mode, wall_seconds=wall,
            setup={"settles": n, "base_seed": args.seed, "bench": str(BENCH_FILE.relative_to(REPO)),
                   "procedure": str(PROCEDURE_FILE.relative_to(REPO)), "taus_s": list(TAUS),
                   "oracle": f"first t with |v(t) - final| <= {args.oracle_ppm:g} ppm of range (noise-free)",
                   "soak": f"{SOAK_TAUS:g} x tau after the step",
                   "transport": "real drivers over TCP to in-process simulators, VirtualClock"},
            figures=s, headlines=headlines,
            notes=["each seed draws: range, tau, start value within +-(a random range), setpoint in +-range "
                   "(4 digits)",
                   "early = declared before the oracle time; a 5-tau soak knows tau exactly"],
        )
        print(f"wrote {path}")
    return s


if __name__ == "__main__":
    main()
