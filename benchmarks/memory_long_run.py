"""Resident memory of a long acquisition: does it stay flat from hour 1 to hour 10?

10 channels sampled at 10 Hz for 10 hours of virtual time (360 000 samples per channel,
3.6 million readings). Each channel is a simulated 34465A model (`simulators.dmm34465a`,
gain, offset, noise and quantisation) reading a slowly drifting 10 V source, generated in
this process. Every sample goes through what a run does with it: a `StabilityDetector` per
channel (the procedure file's criteria scaled to the 10 V range), then the engine's own
recording path (`benchmarks/runner_path.py`: point context -> `ReadingBuffer`, batches of
64 -> `RunStore.add_readings`) into a SQLite file. The clock is a `VirtualClock`, so 10 hours
take minutes; the wall time is reported.

RSS is sampled every virtual hour; the headline is RSS at 10 h over RSS at 1 h (the
baseline after start-up, before the first reading, is reported too).

    python -m benchmarks.memory_long_run [--quick|--full] [--hours 10] [--channels 10] [--rate 10]
"""

from __future__ import annotations

import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/memory_long_run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import peak_rss_bytes, rss_bytes  # noqa: E402
from benchmarks.report import Headline, mode_parser, print_headlines, print_machine, print_table, write_result  # noqa: E402

NAME = "memory_long_run"
REPO = Path(__file__).resolve().parent.parent
#: (hours, reference hour)
SIZES = {"quick": (3.0, 1.0), "default": (10.0, 1.0), "full": (24.0, 1.0)}
MB = 1024 * 1024
RANGE = 10.0
NPLC = 1.0  # 10 Hz sampling leaves 100 ms per reading: 1 NPLC (20 ms) fits


async def acquire(hours: float, channels: int, rate_hz: float, folder: Path, progress: bool) -> dict[str, Any]:
    from benchmarks.runner_path import PROCEDURE_FILE, RunRecorder
    from daq.clock import VirtualClock
    from daq.reading import Reading
    from daq.stability import StabilityDetector
    from procedures.dc_voltage import load_procedure
    from simulators.dmm34465a import Dmm34465A

    clock = VirtualClock()
    criteria = load_procedure(PROCEDURE_FILE).stability_ppm.scaled(RANGE * 1e-6)
    recorder = await RunRecorder.open(folder / "long-run.sqlite", clock)
    meters = [Dmm34465A(f"dmm{c}", clock, seed=c, noise_ppm_of_range=0.4) for c in range(channels)]
    for c, meter in enumerate(meters):
        # a 10 V source drifting by a few ppm over hours, different on every channel
        meter.connect_input("input", lambda t, c=c: 10.0 + 1e-3 * c + 2e-5 * math.sin(t / (3000.0 + 300 * c)))
    detectors = [StabilityDetector(criteria, target=10.0 + 1e-3 * c, started_at=clock.now()) for c in range(channels)]
    names = [f"ch{c}" for c in range(channels)]
    period = 1.0 / rate_hz
    ticks = int(round(hours * 3600 * rate_hz))
    per_hour = int(round(3600 * rate_hz))
    stable_checks = 0
    samples: list[dict[str, Any]] = [{"hour": 0.0, "rss_mb": rss_bytes() / MB, "wall_s": 0.0, "readings": 0}]
    wall0 = time.perf_counter()
    for tick in range(1, ticks + 1):
        await clock.sleep(period)
        now = clock.now()
        for c in range(channels):
            meter = meters[c]
            value = meter.indicate(meter.input_at(now), RANGE, NPLC)
            if detectors[c].add(now, value).stable:
                stable_checks += 1
            await recorder.record(Reading(names[c], now, value, "V", None))
        if tick % per_hour == 0:
            hour = tick / per_hour
            samples.append({"hour": hour, "rss_mb": rss_bytes() / MB, "wall_s": time.perf_counter() - wall0,
                            "readings": tick * channels})
            if progress:
                s = samples[-1]
                print(f"  {hour:4.1f} h virtual: RSS {s['rss_mb']:.1f} MB, {s['readings']:,} readings, "
                      f"wall {s['wall_s']:.0f} s", file=sys.stderr)
    await recorder.flush()
    wall = time.perf_counter() - wall0
    if ticks % per_hour:
        samples.append({"hour": ticks / per_hour, "rss_mb": rss_bytes() / MB, "wall_s": wall,
                        "readings": ticks * channels})
    stored = await recorder.stored_readings()
    await recorder.close()
    db_bytes = sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("long-run.sqlite"))
    return {"samples": samples, "wall": wall, "stored": stored, "expected": ticks * channels,
            "stable_fraction": stable_checks / (ticks * channels), "db_mb": db_bytes / MB,
            "virtual_hours": clock.now() / 3600}


def main(argv: list[str] | None = None) -> dict:
    parser = mode_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=None, help="virtual hours to acquire (default 10)")
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--rate", type=float, default=10.0, help="samples per second per channel")
    args = parser.parse_args(argv)
    hours, ref_hour = SIZES[args.mode]
    if args.hours is not None:
        hours = args.hours
    print_machine()
    print(f"{NAME}: {args.channels} channels x {args.rate:g} Hz x {hours:g} h virtual "
          f"= {int(hours * 3600 * args.rate * args.channels):,} readings through StabilityDetector + "
          f"ReadingBuffer + RunStore (SQLite), VirtualClock")
    with tempfile.TemporaryDirectory(prefix="daq-bench-") as tmp:
        r = asyncio.run(acquire(hours, args.channels, args.rate, Path(tmp), progress=True))
    samples = r["samples"]
    by_hour = {s["hour"]: s for s in samples}
    ref = by_hour.get(ref_hour, samples[1] if len(samples) > 1 else samples[0])
    end = samples[-1]
    ratio = end["rss_mb"] / ref["rss_mb"]
    rows = [[f"{s['hour']:g} h", f"{s['readings']:,}", f"{s['rss_mb']:.1f}", f"{s['rss_mb'] / ref['rss_mb']:.3f}",
             f"{s['wall_s']:.0f}"] for s in samples]
    print_table(f"RSS by virtual hour (reference: {ref['hour']:g} h)", ["virtual time", "readings", "RSS MB",
                                                                        f"/ RSS at {ref['hour']:g} h", "wall s"],
                rows)
    print(f"  stored {r['stored']:,} of {r['expected']:,} readings; database {r['db_mb']:.0f} MB; "
          f"peak RSS {peak_rss_bytes() / MB:.1f} MB; wall {r['wall']:.0f} s "
          f"({r['expected'] / r['wall']:,.0f} readings/s)")
    headlines = [
        Headline(f"memory_long_run: RSS at {end['hour']:g} h / RSS at {ref['hour']:g} h", ratio, "x",
                 "1.0 is flat; > 1 means memory grows with run length"),
    ]
    print_headlines(headlines)
    if not args.no_write:
        path = write_result(
            NAME, mode=args.mode, wall_seconds=r["wall"],
            setup={"channels": args.channels, "rate_hz": args.rate, "virtual_hours": hours,
                   "reference_hour": ref_hour, "readings": r["expected"], "clock": "VirtualClock",
                   "path": "Dmm34465A model -> StabilityDetector -> engine point context -> ReadingBuffer(64) "
                           "-> RunStore.add_readings",
                   "criteria": "runner/data/dcv-34465a.toml [stability], scaled to 10 V"},
            figures={"rss_by_hour": samples, "rss_ratio": ratio, "growth_mb": end["rss_mb"] - ref["rss_mb"],
                     "baseline_rss_mb": samples[0]["rss_mb"], "peak_rss_mb": peak_rss_bytes() / MB,
                     "rows_stored": r["stored"], "database_mb": r["db_mb"],
                     "readings_per_wall_second": r["expected"] / r["wall"],
                     "stable_fraction_of_checks": r["stable_fraction"]},
            headlines=headlines,
            notes=[f"wall time {r['wall']:.0f} s for {hours:g} virtual hours",
                   "RSS via psutil (else /proc/self/statm); the database file is on disk, not counted"],
        )
        print(f"wrote {path}")
    return r


if __name__ == "__main__":
    main()
