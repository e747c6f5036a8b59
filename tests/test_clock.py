import asyncio
import time

from daq.clock import ScaledClock, VirtualClock


async def test_virtual_clock_half_hour_soak_takes_milliseconds():
    clock = VirtualClock()
    t0 = time.perf_counter()
    await clock.sleep(1800.0)
    assert clock.now() == 1800.0
    assert time.perf_counter() - t0 < 0.5


async def test_virtual_clock_wakes_sleepers_in_time_order():
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, dt: float) -> None:
        await clock.sleep(dt)
        woke.append((name, clock.now()))

    await asyncio.gather(sleeper("late", 5.0), sleeper("early", 1.0), sleeper("mid", 2.5))
    assert woke == [("early", 1.0), ("mid", 2.5), ("late", 5.0)]


async def test_virtual_clock_cancelled_sleep_does_not_move_time_for_others():
    clock = VirtualClock()
    task = asyncio.create_task(clock.sleep(100.0))
    await asyncio.sleep(0)
    task.cancel()
    await clock.sleep(1.0)
    assert clock.now() == 1.0


async def test_scaled_clock_runs_faster_than_wall_time():
    clock = ScaledClock(100.0)
    start = clock.now()
    t0 = time.perf_counter()
    await clock.sleep(2.0)  # 20 ms of wall time
    assert clock.now() - start >= 1.9
    assert time.perf_counter() - t0 < 0.5


def test_scaled_clocks_with_the_same_epoch_agree():
    a = ScaledClock(50.0)
    b = ScaledClock(50.0, epoch=a.epoch)
    assert abs(a.now() - b.now()) < 0.5
