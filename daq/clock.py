"""Injected time: every wait in the program goes through a `Clock`.

Three clocks share one face:
- `RealClock` for the bench;
- `ScaledClock` runs the simulated world faster than life; a simulator process given the
  same factor agrees on how long things take;
- `VirtualClock` for tests: time moves only when every waiting task is asleep on the
  clock, so a 30-minute soak takes milliseconds and stays ordered.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    """Seconds on this clock's time line, and a sleep measured on it."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall time, monotonic."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def describe(self) -> str:
        return "real time"


class ScaledClock:
    """Time that runs `factor` times faster than the wall clock.

    `epoch` is a `time.time()` value; two processes given the same epoch and factor read the
    same clock, which is how a simulator process and the runner share a time line.
    """

    def __init__(self, factor: float, epoch: float | None = None) -> None:
        if factor <= 0:
            raise ValueError("time scale factor must be positive")
        self.factor = float(factor)
        self.epoch = time.time() if epoch is None else float(epoch)
        self._mono0 = time.monotonic() - (time.time() - self.epoch)

    def now(self) -> float:
        return (time.monotonic() - self._mono0) * self.factor

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.factor)

    def describe(self) -> str:
        return f"scaled time, x{self.factor:g}"


class VirtualClock:
    """Simulated time for tests: advances to the next wake-up when the loop has gone quiet.

    A task that is doing real I/O (a query in flight to an in-process simulator) is not a
    sleeper; the advancer lets the loop run a few idle turns before it jumps, so replies that
    are already on their way are delivered first.
    """

    def __init__(self, start: float = 0.0, idle_turns: int = 8) -> None:
        self._now = float(start)
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._advancer: asyncio.Task[None] | None = None
        self._idle_turns = idle_turns

    def now(self) -> float:
        return self._now

    def describe(self) -> str:
        return "virtual time"

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._heap, (self._now + seconds, next(self._seq), fut))
        if self._advancer is None or self._advancer.done():
            self._advancer = loop.create_task(self._advance())
        await fut

    def advance(self, seconds: float) -> None:
        """Move time by hand (for tests that drive a detector without sleeping)."""
        self._now += seconds

    async def _advance(self) -> None:
        while self._heap:
            for _ in range(self._idle_turns):
                await asyncio.sleep(0)
            wake, _, fut = heapq.heappop(self._heap)
            if fut.cancelled():
                continue
            self._now = max(self._now, wake)
            fut.set_result(None)
