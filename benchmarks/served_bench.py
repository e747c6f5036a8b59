"""A simulated bench served away from the client: in a child process (default) or a thread.

A benchmark of a client must not let the client's own event loop also run the instrument
side, or every reply would queue behind the client's work and the two would share one
core's worth of interpreter. A child process (its own interpreter and GIL) is the closest
stand-in for an instrument on the other end of a cable; a thread in this process is offered
for comparison (it shares the GIL with the client).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

START_TIMEOUT = 60.0


async def _serve_until(bench_text: str, seed: int, latency: float | None, stop: Any, ready: Any) -> None:
    """Start the bench on a RealClock, report its resources with `ready`, serve until `stop()` returns."""
    from daq.bench import parse_bench
    from daq.clock import RealClock
    from simulators.bench_server import start_bench

    running = await start_bench(parse_bench(bench_text, source="<benchmark bench>"), RealClock(), seed,
                                latency=latency)
    try:
        ready(dict(running.resources))
        await stop()
    finally:
        await running.close()


def _process_main(bench_text: str, seed: int, latency: float | None, conn: Connection) -> None:
    loop_holder: dict[str, asyncio.AbstractEventLoop] = {}

    async def stop() -> None:
        loop = loop_holder["loop"]
        await loop.run_in_executor(None, conn.recv)  # any message (or EOF) means stop

    async def main() -> None:
        loop_holder["loop"] = asyncio.get_running_loop()
        await _serve_until(bench_text, seed, latency, stop, conn.send)

    try:
        asyncio.run(main())
    except (EOFError, KeyboardInterrupt):
        pass


@dataclass
class ServedBench:
    """Where the simulated instruments listen, and how to stop them."""

    resources: dict[str, str]
    where: str  # "process" or "thread"
    _stop: Any = field(repr=False, default=None)

    def close(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None

    def __enter__(self) -> ServedBench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_bench(bench_text: str, *, seed: int = 1, latency: float | None = None, where: str = "process") -> ServedBench:
    """Serve every instrument of `bench_text` (a bench TOML) on real TCP sockets, away from the caller."""
    if where == "process":
        return _serve_in_process(bench_text, seed, latency)
    if where == "thread":
        return _serve_in_thread(bench_text, seed, latency)
    raise ValueError(f"where must be 'process' or 'thread', not {where!r}")


def _serve_in_process(bench_text: str, seed: int, latency: float | None) -> ServedBench:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_process_main, args=(bench_text, seed, latency, child), daemon=True,
                       name="simulated-bench")
    proc.start()
    child.close()
    try:
        if not parent.poll(START_TIMEOUT):
            raise EOFError
        resources = parent.recv()
    except EOFError:
        proc.kill()
        raise RuntimeError("the simulated bench process did not start (see its traceback above)") from None

    def stop() -> None:
        try:
            parent.send("stop")
        except (BrokenPipeError, OSError):
            pass
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        parent.close()

    return ServedBench(resources, "process", stop)


def _serve_in_thread(bench_text: str, seed: int, latency: float | None) -> ServedBench:
    started = threading.Event()
    box: dict[str, Any] = {}

    def ready(resources: dict[str, str]) -> None:
        box["resources"] = resources
        started.set()

    async def main() -> None:
        box["loop"] = asyncio.get_running_loop()
        box["event"] = asyncio.Event()

        async def stop() -> None:
            await box["event"].wait()

        await _serve_until(bench_text, seed, latency, stop, ready)

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - report it to the waiting caller
            box["error"] = exc
            started.set()

    thread = threading.Thread(target=run, name="simulated-bench", daemon=True)
    thread.start()
    if not started.wait(START_TIMEOUT) or "error" in box:
        raise RuntimeError(f"the simulated bench thread did not start: {box.get('error')!r}")

    def stop() -> None:
        box["loop"].call_soon_threadsafe(box["event"].set)
        thread.join(10)

    return ServedBench(box["resources"], "thread", stop)
