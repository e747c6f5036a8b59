"""Query round trips per second to one simulated 34465A over raw TCP SCPI.

Ours: `daq.transports.tcp.TcpSocketTransport` (asyncio streams, one lock per instrument).
The alternative: plain pyvisa-py, `ResourceManager("@py")`, `TCPIP::127.0.0.1::PORT::SOCKET`
with `read_termination="\\n"`, `inst.query(...)` in a loop. Also shown: our `visa = true`
path (`VisaTransport`: pyvisa-py in a one-thread executor behind an asyncio face), which a
bench file selects for instruments that only pyvisa reaches.

The simulator (a 34465A model from `start_bench` on a RealClock) runs in a separate process
by default (`--sim-in thread` to share this process), so the client's loop is not also serving.
Rounds alternate between the clients and the median round is reported.

    python -m benchmarks.tcp_query_rate [--quick|--full] [--query "*IDN?"] [--sim-in process|thread]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/tcp_query_rate.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import spread  # noqa: E402
from benchmarks.report import Headline, mode_parser, print_headlines, print_machine, print_table, write_result  # noqa: E402
from benchmarks.served_bench import serve_bench  # noqa: E402

NAME = "tcp_query_rate"

BENCH = """
[bench]
name = "one simulated 34465A"
seed = 1

[instruments.dmm]
driver = "keysight34465a"
resource = "TCPIP::127.0.0.1::0::SOCKET"
serial = "SIM34465A-0001"
"""

#: (rounds per client, seconds per round)
SIZES = {"quick": (3, 0.5), "default": (7, 1.5), "full": (15, 3.0)}


def _time_sync(query: Callable[[], str], seconds: float) -> float:
    """Round trips per second of a blocking query, over about `seconds`."""
    n = 0
    start = time.perf_counter()
    end = start + seconds
    while True:
        query()
        n += 1
        now = time.perf_counter()
        if now >= end:
            return n / (now - start)


async def _time_async(query: Callable[[], Awaitable[str]], seconds: float) -> float:
    n = 0
    start = time.perf_counter()
    end = start + seconds
    while True:
        await query()
        n += 1
        now = time.perf_counter()
        if now >= end:
            return n / (now - start)


def run(mode: str, command: str, sim_in: str) -> dict:
    import pyvisa

    from daq.transports.resource import parse_resource
    from daq.transports.tcp import TcpSocketTransport
    from daq.transports.visa import VisaTransport

    rounds, seconds = SIZES[mode]
    wall0 = time.perf_counter()
    with serve_bench(BENCH, where=sim_in) as served:
        resource = served.resources["dmm"]
        address = parse_resource(resource)
        loop = asyncio.new_event_loop()
        ours = TcpSocketTransport(address.host, address.port, timeout=5.0)
        ours_visa = VisaTransport(resource, timeout=5.0)
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(resource, read_termination="\n", write_termination="\n", timeout=5000)
        try:
            expected = inst.query(command).strip()
            got = loop.run_until_complete(ours.query(command))
            got_visa = loop.run_until_complete(ours_visa.query(command))
            if not (got == expected == got_visa):
                raise RuntimeError(f"clients disagree on {command!r}: {got!r} / {got_visa!r} / {expected!r}")
            # warm up every path once
            _time_sync(lambda: inst.query(command), 0.2)
            loop.run_until_complete(_time_async(lambda: ours.query(command), 0.2))
            loop.run_until_complete(_time_async(lambda: ours_visa.query(command), 0.2))
            rates: dict[str, list[float]] = {"ours": [], "ours_visa": [], "pyvisa": []}
            for _ in range(rounds):
                rates["ours"].append(loop.run_until_complete(_time_async(lambda: ours.query(command), seconds)))
                rates["pyvisa"].append(_time_sync(lambda: inst.query(command), seconds))
                rates["ours_visa"].append(
                    loop.run_until_complete(_time_async(lambda: ours_visa.query(command), seconds)))
        finally:
            inst.close()
            rm.close()
            loop.run_until_complete(ours.close())
            loop.run_until_complete(ours_visa.close())
            loop.close()
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {
        "wall": time.perf_counter() - wall0,
        "rates": rates,
        "median": med,
        "spread": {k: spread(v) for k, v in rates.items()},
        "reply": expected,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = mode_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--query", default="*IDN?", help="the query to time (default *IDN?)")
    parser.add_argument("--sim-in", choices=("process", "thread"), default="process",
                        help="where the simulator runs (default: a separate process)")
    args = parser.parse_args(argv)
    print_machine()
    print(f"{NAME}: {args.query!r} round trips to a simulated 34465A served in a separate {args.sim_in}")
    r = run(args.mode, args.query, args.sim_in)
    med = r["median"]
    ratio = med["ours"] / med["pyvisa"]
    ratio_visa = med["ours_visa"] / med["pyvisa"]
    rows = [
        ["ours: TcpSocketTransport (asyncio)", f"{med['ours']:,.0f}", f"{1e6 / med['ours']:.0f}",
         f"{ratio:.2f}x"],
        ["pyvisa-py TCPIP::...::SOCKET, blocking", f"{med['pyvisa']:,.0f}", f"{1e6 / med['pyvisa']:.0f}", "1.00x"],
        ["ours visa=true: VisaTransport (pyvisa-py in a thread)", f"{med['ours_visa']:,.0f}",
         f"{1e6 / med['ours_visa']:.0f}", f"{ratio_visa:.2f}x"],
    ]
    print_table(f"Median of {len(r['rates']['ours'])} rounds", ["client", "queries/s", "us/query", "vs pyvisa-py"],
                rows)
    headlines = [
        Headline("tcp_query_rate: ours / pyvisa-py (queries/s)", ratio, "x", "> 1: our asyncio transport is faster"),
        Headline("tcp_query_rate: ours visa=true / pyvisa-py", ratio_visa, "x",
                 "cost of the worker-thread hop over plain pyvisa"),
    ]
    print_headlines(headlines)
    if not args.no_write:
        path = write_result(
            NAME, mode=args.mode, wall_seconds=r["wall"],
            setup={"query": args.query, "reply": r["reply"], "simulator": f"separate {args.sim_in}, RealClock",
                   "rounds": SIZES[args.mode][0], "seconds_per_round": SIZES[args.mode][1]},
            figures={"queries_per_second_median": med, "queries_per_second_rounds": r["rates"],
                     "spread": r["spread"]},
            headlines=headlines,
            notes=["sequential round trips, one connection per client, no pipelining",
                   "rounds alternate ours / pyvisa-py / ours visa=true; the median round is reported"],
        )
        print(f"wrote {path}")
    return r


if __name__ == "__main__":
    main()
