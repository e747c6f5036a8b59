"""One acquisition cycle over 16 simulated DMMs that each take 20 ms to answer.

Every instrument is a 34465A model from `start_bench` with a 20 ms reply latency (the
`latency` argument of `start_bench`) and NPLC 0.02 (0.4 ms integration), served on its own
TCP port by a separate process on a RealClock. One cycle reads every instrument once
(`READ?`).

- ours: 16 `Dmm34465A` drivers over `TcpSocketTransport`, read with `asyncio.gather`;
- ours, visa = true: the same drivers over `VisaTransport` (pyvisa-py, one thread each);
- the alternative: a sequential pyvisa-py loop, `[inst.query("READ?") for inst in insts]`;
- also shown: pyvisa-py in `concurrent.futures.ThreadPoolExecutor()` with its default size
  (cpu + 4 workers), the next thing a pyvisa user would try;
- the floor: one instrument's own time, 20 ms latency + 0.4 ms integration.

    python -m benchmarks.acquisition_cycle [--quick|--full] [--instruments 16] [--latency 0.02]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/acquisition_cycle.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import spread  # noqa: E402
from benchmarks.report import Headline, mode_parser, print_headlines, print_machine, print_table, write_result  # noqa: E402
from benchmarks.served_bench import serve_bench  # noqa: E402

NAME = "acquisition_cycle"
NPLC = 0.02
POWER_LINE_HZ = 50.0
#: cycles per client
SIZES = {"quick": 6, "default": 30, "full": 100}


def bench_text(instruments: int) -> str:
    parts = ['[bench]\nname = "many simulated DMMs"\nseed = 3\n']
    for i in range(instruments):
        parts.append(
            f'[instruments.dmm{i:02d}]\ndriver = "keysight34465a"\nresource = "TCPIP::127.0.0.1::0::SOCKET"\n'
            f'serial = "SIM34465A-{i:04d}"\n'
        )
    return "\n".join(parts)


async def _open_ours(resources: dict[str, str], serials: dict[str, str], visa: bool) -> list:
    from daq.transports.resource import open_transport
    from drivers.keysight34465a import Dmm34465A

    drivers = [Dmm34465A(name, open_transport(res, visa=visa, timeout=5.0), serials[name])
               for name, res in resources.items()]
    await asyncio.gather(*(d.connect() for d in drivers))
    await asyncio.gather(*(d.configure("dcv", 10.0, NPLC) for d in drivers))
    return drivers


async def _cycle_ours(drivers: list) -> list[float]:
    results = await asyncio.gather(*(d.read(1) for d in drivers))
    return [r[0] for r in results]


def _cycle_sequential(insts: list) -> list[float]:
    return [float(inst.query("READ?")) for inst in insts]


def _cycle_pool(pool: ThreadPoolExecutor, insts: list) -> list[float]:
    return list(pool.map(lambda inst: float(inst.query("READ?")), insts))


def run(mode: str, instruments: int, latency: float) -> dict:
    import pyvisa

    cycles = SIZES[mode]
    wall0 = time.perf_counter()
    text = bench_text(instruments)
    serials = {f"dmm{i:02d}": f"SIM34465A-{i:04d}" for i in range(instruments)}
    times: dict[str, list[float]] = {"ours": [], "ours_visa": [], "pyvisa_sequential": [], "pyvisa_pool": []}
    with serve_bench(text, latency=latency) as served:
        loop = asyncio.new_event_loop()
        ours = loop.run_until_complete(_open_ours(served.resources, serials, visa=False))
        ours_visa = loop.run_until_complete(_open_ours(served.resources, serials, visa=True))
        rm = pyvisa.ResourceManager("@py")
        insts = [rm.open_resource(res, read_termination="\n", write_termination="\n", timeout=5000)
                 for res in served.resources.values()]
        for inst in insts:
            inst.write("CONF:VOLT:DC 10")
            inst.write(f"VOLT:DC:NPLC {NPLC}")
        pool = ThreadPoolExecutor()  # the default size: min(32, cpu + 4)
        pool_workers = pool._max_workers
        try:
            def timed(fn, expected: int = instruments) -> float:
                t0 = time.perf_counter()
                values = fn()
                dt = time.perf_counter() - t0
                if len(values) != expected:
                    raise RuntimeError(f"a cycle returned {len(values)} readings, not {expected}")
                return dt

            clients = {
                "ours": lambda: loop.run_until_complete(_cycle_ours(ours)),
                "ours_visa": lambda: loop.run_until_complete(_cycle_ours(ours_visa)),
                "pyvisa_sequential": lambda: _cycle_sequential(insts),
                "pyvisa_pool": lambda: _cycle_pool(pool, insts),
            }
            for fn in clients.values():  # warm up every path
                timed(fn)
            for _ in range(cycles):
                for key, fn in clients.items():
                    times[key].append(timed(fn))
            # one instrument alone, through our driver: the practical floor of this machine
            single = [timed(lambda: loop.run_until_complete(_cycle_ours(ours[:1])), 1) for _ in range(cycles)]
        finally:
            pool.shutdown()
            for inst in insts:
                inst.close()
            rm.close()
            for d in ours + ours_visa:
                loop.run_until_complete(d.close())
            loop.close()
    return {
        "wall": time.perf_counter() - wall0,
        "times": times,
        "median": {k: statistics.median(v) for k, v in times.items()},
        "spread": {k: spread(v) for k, v in times.items()},
        "single_instrument_median": statistics.median(single),
        "pool_workers": pool_workers,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = mode_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--instruments", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.02, help="reply latency of every instrument, s")
    args = parser.parse_args(argv)
    print_machine()
    n, latency = args.instruments, args.latency
    floor = latency + NPLC / POWER_LINE_HZ
    print(f"{NAME}: {n} simulated 34465A, {latency * 1e3:g} ms reply latency + {NPLC / POWER_LINE_HZ * 1e3:g} ms "
          f"integration each, served by a separate process; floor {floor * 1e3:.1f} ms")
    r = run(args.mode, n, latency)
    med = r["median"]
    sp = r["spread"]
    ours = med["ours"]
    rows = []
    labels = {
        "ours": "ours: drivers over TcpSocketTransport, gather",
        "ours_visa": "ours visa=true: VisaTransport (thread each), gather",
        "pyvisa_sequential": "pyvisa-py, sequential loop",
        "pyvisa_pool": f"pyvisa-py, ThreadPoolExecutor() ({r['pool_workers']} workers)",
    }
    for key, label in labels.items():
        rows.append([label, f"{med[key] * 1e3:.1f}", f"{sp[key]['p90'] * 1e3:.1f}", f"{med[key] / floor:.2f}",
                     f"{med[key] / ours:.2f}"])
    rows.append(["floor: one instrument's latency + integration", f"{floor * 1e3:.1f}", "", "1.00",
                 f"{floor / ours:.2f}"])
    rows.append(["(one instrument alone, ours)", f"{r['single_instrument_median'] * 1e3:.1f}", "",
                 f"{r['single_instrument_median'] / floor:.2f}", ""])
    print_table(f"Cycle time over {n} instruments, {len(r['times']['ours'])} cycles each",
                ["client", "median ms", "p90 ms", "/ floor", "/ ours"], rows)
    headlines = [
        Headline("acquisition_cycle: ours / floor (cycle time)", ours / floor, "x",
                 "1.0 is ideal: a cycle costs the slowest instrument"),
        Headline("acquisition_cycle: sequential pyvisa-py / ours", med["pyvisa_sequential"] / ours, "x",
                 "> 1: ours is that many times faster"),
        Headline("acquisition_cycle: pyvisa-py default thread pool / ours", med["pyvisa_pool"] / ours, "x",
                 "> 1: ours is that many times faster"),
    ]
    print_headlines(headlines)
    if not args.no_write:
        path = write_result(
            NAME, mode=args.mode, wall_seconds=r["wall"],
            setup={"instruments": n, "latency_s": latency, "nplc": NPLC, "floor_s": floor, "query": "READ?",
                   "simulator": "separate process, RealClock, one TCP server per instrument",
                   "cycles": SIZES[args.mode], "thread_pool_workers": r["pool_workers"]},
            figures={"cycle_seconds_median": med, "cycle_seconds_spread": sp,
                     "single_instrument_seconds_median": r["single_instrument_median"]},
            headlines=headlines,
            notes=["clients alternate cycle by cycle on the same simulated instruments"],
        )
        print(f"wrote {path}")
    return r


if __name__ == "__main__":
    main()
