"""Readings persisted per second, committed, on SQLite: our run store against QCoDeS.

The same rows go to both: 10 channels interleaved, each reading a channel name, a sequence
number, a time and a value (floats), as the runner records them.

- ours: the engine's own path (`benchmarks/runner_path.py`): the point context's
  `record(Reading)` -> `ReadingBuffer` (batches of 64, so a killed run loses at most one
  batch) -> `RunStore.add_readings`; SQLite WAL, `synchronous=NORMAL`, SQLAlchemy's asyncio
  engine as `RunStore.open` builds it (pooled: one connection kept open);
- the alternative: QCoDeS, a `Measurement` with registered parameters (t, channel, seq ->
  value) in an experiment database made by `initialise_or_create_database_at` /
  `load_or_create_experiment`, one `DataSaver.add_result` per reading, default settings
  (results kept in memory and written every `write_period` = 5 s and at exit);
- also shown: QCoDeS flushed every 64 rows (`flush_data_to_database()`, the same loss bound
  as ours), and our store over `NullPool` (a fresh connection per batch: how it first shipped,
  4 fsyncs per batch from the pragmas and the WAL checkpoint on close).

Timing covers adding every row until the last one is committed (QCoDeS: the `with` block's
exit); creating the database, run and tables is not timed. Rounds alternate; medians.

    python -m benchmarks.persist_rate [--quick|--full] [--rows 50000]
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/persist_rate.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.report import Headline, mode_parser, print_headlines, print_machine, print_table, write_result  # noqa: E402

NAME = "persist_rate"
CHANNELS = 10
BATCH = 64  # ReadingBuffer.batch_size, the runner's default
#: (rows, rounds)
SIZES = {"quick": (10_000, 1), "default": (50_000, 3), "full": (200_000, 5)}


def make_rows(n: int) -> list[tuple[str, int, float, float]]:
    """(channel, seq, t, value): 10 channels sampled together at 10 Hz, values near 10 V."""
    import numpy as np

    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, 4e-6, n)
    rows = []
    for i in range(n):
        ch, seq = i % CHANNELS, i // CHANNELS
        rows.append((f"ch{ch}", seq, seq * 0.1, 10.0 + ch * 1e-3 + float(noise[i])))
    return rows


async def _ours(rows: list[tuple[str, int, float, float]], folder: Path, pooled: bool) -> tuple[float, int]:
    from benchmarks.runner_path import RunRecorder
    from daq.clock import RealClock
    from daq.reading import Reading

    recorder = await RunRecorder.open(folder / "ours.sqlite", RealClock(), pooled=pooled)
    try:
        t0 = time.perf_counter()
        for channel, _seq, t, value in rows:
            # what the procedure hands the engine's point context for every reading
            await recorder.record(Reading(channel, t, value, "V", None))
        await recorder.flush()
        elapsed = time.perf_counter() - t0
        stored = await recorder.stored_readings()
    finally:
        await recorder.close()
    return elapsed, stored


def _qcodes(rows: list[tuple[str, int, float, float]], folder: Path, flush_every: int | None) -> tuple[float, int]:
    from qcodes.dataset import Measurement, initialise_or_create_database_at, load_or_create_experiment

    with contextlib.redirect_stdout(io.StringIO()):
        initialise_or_create_database_at(folder / "qcodes.db")
        exp = load_or_create_experiment("persist_rate", sample_name="simulated DMMs")
        meas = Measurement(exp=exp, name="readings")
        meas.register_custom_parameter("t", unit="s")
        meas.register_custom_parameter("channel", paramtype="text")
        meas.register_custom_parameter("seq")
        meas.register_custom_parameter("value", unit="V", setpoints=("t", "channel", "seq"))
        with meas.run() as saver:
            t0 = time.perf_counter()
            if flush_every is None:
                for channel, seq, t, value in rows:
                    saver.add_result(("t", t), ("channel", channel), ("seq", seq), ("value", value))
            else:
                for i, (channel, seq, t, value) in enumerate(rows, 1):
                    saver.add_result(("t", t), ("channel", channel), ("seq", seq), ("value", value))
                    if i % flush_every == 0:
                        saver.flush_data_to_database()
        elapsed = time.perf_counter() - t0
        stored = int(saver.dataset.number_of_results)
    return elapsed, stored


def run(mode: str, n: int) -> dict[str, Any]:
    import qcodes  # noqa: F401 - import cost stays out of the timings

    _, rounds = SIZES[mode]
    rows = make_rows(n)
    contenders = {
        "ours": lambda d: asyncio.run(_ours(rows, d, pooled=True)),
        "qcodes": lambda d: _qcodes(rows, d, None),
        "qcodes_flush64": lambda d: _qcodes(rows, d, BATCH),
        "ours_nullpool": lambda d: asyncio.run(_ours(rows, d, pooled=False)),
    }
    rates: dict[str, list[float]] = {k: [] for k in contenders}
    stored: dict[str, int] = {}
    wall0 = time.perf_counter()
    for _ in range(rounds):
        for key, fn in contenders.items():
            with tempfile.TemporaryDirectory(prefix="daq-bench-") as tmp:
                elapsed, count = fn(Path(tmp))
            rates[key].append(n / elapsed)
            stored[key] = count
    return {"wall": time.perf_counter() - wall0, "rates": rates, "stored": stored,
            "median": {k: statistics.median(v) for k, v in rates.items()}}


def main(argv: list[str] | None = None) -> dict:
    parser = mode_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        import qcodes  # noqa: F401
    except ImportError:
        sys.exit("persist_rate needs QCoDeS, the alternative it compares with: install the bench extras "
                 "(scripts/bootstrap-venv bench, or .venv/bin/pip install -e '.[bench]')")
    n = args.rows or SIZES[args.mode][0]
    print_machine()
    print(f"{NAME}: {n:,} readings ({CHANNELS} channels) committed to SQLite in {tempfile.gettempdir()}")
    r = run(args.mode, n)
    med = r["median"]
    ours = med["ours"]
    labels = {
        "ours": f"ours: ReadingBuffer({BATCH}) -> RunStore.add_readings",
        "qcodes": "QCoDeS DataSaver.add_result (write_period 5 s)",
        "qcodes_flush64": f"QCoDeS, flush_data_to_database every {BATCH} rows",
        "ours_nullpool": "ours over NullPool (as first shipped)",
    }
    rows = [[label, f"{med[k]:,.0f}", f"{1e6 / med[k]:.1f}", f"{med[k] / med['qcodes']:.2f}",
             "yes" if r["stored"][k] == n else f"NO ({r['stored'][k]})"] for k, label in labels.items()]
    print_table(f"Median of {len(r['rates']['ours'])} rounds", ["writer", "rows/s", "us/row", "vs QCoDeS",
                                                                  "all rows stored"], rows)
    headlines = [
        Headline("persist_rate: ours / QCoDeS default (rows/s)", ours / med["qcodes"], "x",
                 "> 1: ours commits faster"),
        Headline(f"persist_rate: ours / QCoDeS flushed every {BATCH}", ours / med["qcodes_flush64"], "x",
                 "same loss bound on a crash"),
        Headline("persist_rate: ours / ours over NullPool", ours / med["ours_nullpool"], "x",
                 "what keeping the connection open gave"),
    ]
    print_headlines(headlines)
    if not args.no_write:
        path = write_result(
            NAME, mode=args.mode, wall_seconds=r["wall"],
            setup={"rows": n, "channels": CHANNELS, "batch": BATCH, "rounds": len(r["rates"]["ours"]),
                   "database": "SQLite files in a temporary directory",
                   "ours": "engine point context -> ReadingBuffer(64) -> RunStore.add_readings "
                           "(RunStore.open: pooled engine, WAL)",
                   "qcodes": "Measurement + DataSaver.add_result, default config (WAL, write_period 5 s)"},
            figures={"rows_per_second_median": med, "rows_per_second_rounds": r["rates"],
                     "rows_stored": r["stored"]},
            headlines=headlines,
            notes=["QCoDeS keeps SQLite's default synchronous=FULL; ours sets synchronous=NORMAL (WAL)",
                   "ours writes more columns per row (run, point, attempt, seq, unit, flag) than QCoDeS (t, channel, "
                   "seq, value)",
                   "with default settings QCoDeS can lose up to write_period (5 s) of readings on a crash"],
        )
        print(f"wrote {path}")
    return r


if __name__ == "__main__":
    main()
