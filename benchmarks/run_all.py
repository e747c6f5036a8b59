"""Run every benchmark in sequence, each in its own process, then print one table of ratios.

    python -m benchmarks.run_all [--quick|--full] [--only tcp_query_rate,persist_rate] [--markdown]

Each benchmark writes `benchmarks/results/<name>.json`; the summary is read back from those
files, so it shows exactly what was recorded. A benchmark that fails is reported and the
others still run; the exit status is non-zero if any failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/run_all.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import describe_machine, machine  # noqa: E402
from benchmarks.report import format_value, mode_parser, print_table, read_result  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
#: In the order they run: fast ones first, the long memory run last.
BENCHMARKS = ("tcp_query_rate", "acquisition_cycle", "stabilisation", "persist_rate", "uncertainty_budget",
              "uncertainty_batch", "uncertainty_mc", "bath_cycle", "memory_long_run")


def main(argv: list[str] | None = None) -> int:
    parser = mode_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated names to run (default: all)")
    parser.add_argument("--markdown", action="store_true", help="also print the summary as a Markdown table")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    flags = [] if args.mode == "default" else [f"--{args.mode}"]
    if args.no_write:
        flags.append("--no-write")
    status: dict[str, tuple[int, float]] = {}
    for name in names:
        print(f"\n=== {name} {' '.join(flags)}".rstrip(), flush=True)
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}", *flags], cwd=REPO)
        status[name] = (code, time.perf_counter() - t0)
    failed = any(code for code, _ in status.values())
    if args.no_write:
        print("\n(--no-write: no result files were written, so there is no summary to read back)")
        return 1 if failed else 0
    rows = []
    for name in names:
        code, wall = status[name]
        result = read_result(name)
        if code != 0 or result is None:
            rows.append([name, "FAILED" if code else "no result file", "", f"{wall:.0f}"])
            continue
        for i, h in enumerate(result["headlines"]):
            rows.append([h["metric"], format_value(h["value"], h["unit"]), h["reading"],
                         f"{wall:.0f}" if i == 0 else ""])
    print(f"\nmachine: {describe_machine(machine())}; mode: {args.mode}")
    print_table("Summary of ratios", ["metric", "value", "how to read it", "wall s"], rows)
    if args.markdown:
        print("\n| metric | value | how to read it |\n|---|---|---|")
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
