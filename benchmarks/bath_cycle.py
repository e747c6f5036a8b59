"""One sampling cycle over a thermometry bench: 8 UUTs + the reference + the bath, concurrently.

The thermometry bench of `runner/data/thermometry-bench.toml` (a bath, a reference readout and
two 4-channel UUT readouts, all serial over pseudo-terminals) is served in a child process on a
RealClock with a reply latency per query. One cycle reads the reference channel, the eight UUT
channels and the bath's control sensor.

- **ours**: the thermometer-comparison procedure's cycle: `asyncio.gather` over the drivers
  (each readout's channels share one serial line, so its four queries queue on that line);
- **alternative**: the same ten queries one after another (a MET/CAL-style loop);
- **floor**: one query's latency. A 4-channel readout on one line cannot do better than four.

    python -m benchmarks.bath_cycle [--quick|--full] [--latency 0.02]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.report import Headline, mode_parser, print_headlines, print_machine, print_table, write_result
from benchmarks.served_bench import serve_bench

NAME = "bath_cycle"
BENCH_FILE = Path(__file__).resolve().parent.parent / "runner" / "data" / "thermometry-bench.toml"
SIZES = {"quick": 10, "default": 30, "full": 100}
UUTS = [("uut_a", 1), ("uut_a", 2), ("uut_a", 3), ("uut_a", 4), ("uut_b", 1), ("uut_b", 2), ("uut_b", 3),
        ("uut_b", 4)]


async def _measure(resources: dict[str, str], cycles: int) -> dict[str, list[float]]:
    from daq.bench import parse_bench
    from drivers.registry import build_driver

    bench = parse_bench(BENCH_FILE.read_text(), source=str(BENCH_FILE)).with_resources(resources)
    drivers: dict[str, Any] = {name: build_driver(entry, bench.source) for name, entry in bench.instruments.items()}
    for d in drivers.values():
        await d.connect()
    bath, reference = drivers["bath"], drivers["reference"]

    def queries() -> list[Any]:
        return [reference.read(1), *(drivers[n].read(ch) for n, ch in UUTS), bath.read_value()]

    times: dict[str, list[float]] = {"ours": [], "sequential": [], "one query": []}
    try:
        for _ in range(cycles):
            t0 = time.perf_counter()
            await asyncio.gather(*queries())
            times["ours"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for q in queries():
                await q
            times["sequential"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await reference.read(1)
            times["one query"].append(time.perf_counter() - t0)
    finally:
        for d in drivers.values():
            await d.close()
    return times


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = mode_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.02, help="reply latency of every instrument, s")
    args = parser.parse_args(argv)
    cycles = SIZES[args.mode]
    print_machine()
    print(f"{NAME}: {cycles} cycles over the thermometry bench (ptys, child process), "
          f"{args.latency * 1e3:g} ms reply latency")
    wall0 = time.perf_counter()
    with serve_bench(BENCH_FILE.read_text(), latency=args.latency) as served:
        times = asyncio.run(_measure(served.resources, cycles))
    med = {k: statistics.median(v) for k, v in times.items()}
    print_table("Median cycle", ["client", "ms", "x one query"],
                [[k, f"{v * 1e3:.1f}", f"{v / med['one query']:.2f}"] for k, v in med.items()])
    headlines = [
        Headline("bath_cycle: ours / one query (10 channels)", med["ours"] / med["one query"], "x",
                 "4 is the floor: four channels share one readout's serial line"),
        Headline("bath_cycle: sequential / ours", med["sequential"] / med["ours"], "x",
                 "> 1: ours is that many times faster"),
    ]
    print_headlines(headlines)
    if not args.no_write:
        path = write_result(NAME, mode=args.mode, wall_seconds=time.perf_counter() - wall0,
                            setup={"cycles": cycles, "latency_s": args.latency, "bench": BENCH_FILE.name,
                                   "channels": 10, "simulator": "separate process, ptys, RealClock"},
                            figures={"cycle_seconds_median": med, "cycle_seconds": times}, headlines=headlines)
        print(f"wrote {path}")
    return {"median": med}


if __name__ == "__main__":
    main()
