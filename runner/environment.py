"""The room's conditions around every calibration point (ISO/IEC 17025 7.8.4.1).

Why the engine and not the procedures: every point of every procedure needs them, and no point
should wait for them. A bench names its monitor (`[environment] monitor = "room"`); the monitor
is read as an attempt starts, concurrently with the procedure, and again when the attempt's
repeated readings are done, so the two readings bracket them. Each reading is also kept as an
ordinary raw reading of the attempt (`env.temperature`, `env.humidity`): nothing measured is
lost. A monitor that fails never stops a calibration: the point records why, and the monitor
is re-established before its next reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from daq.bench import Bench
from daq.clock import Clock
from daq.errors import ConfigError
from daq.reading import Reading

CHANNEL_PREFIX = "env."
RAW_UNITS = {"°C": "degC"}
"""Raw readings carry the unit spelling of the store's other temperature channels."""

Record = Callable[[Reading], Awaitable[None]]


class AmbientMonitor(Protocol):
    """A driver that can read the room: `ambient_units` names its quantities ("temperature" at least)."""

    name: str
    idn: str
    ambient_units: Mapping[str, str]

    async def connect(self) -> None: ...

    async def read_ambient(self) -> dict[str, float]: ...

    async def close(self) -> None: ...


def check_environment_monitor(bench: Bench, driver_class: Callable[[str], type | None]) -> None:
    """The bench's monitor must have a driver that reads the room's temperature (before anything is opened)."""
    name = bench.environment_monitor
    if name is None:
        return
    cls = driver_class(name)
    units = getattr(cls, "ambient_units", None) or {}
    if cls is None or not callable(getattr(cls, "read_ambient", None)) or "temperature" not in units:
        driver = bench.instruments[name].driver
        raise ConfigError(bench.source, "environment.monitor",
                          f"{name} (driver {driver!r}) cannot read the room's temperature",
                          'name an instrument whose driver reads ambient conditions (e.g. driver = "vaisala_hmt330"), '
                          "or remove [environment]")


@dataclass(frozen=True)
class AmbientSample:
    t: float
    values: dict[str, float]


class EnvironmentMonitor:
    """The bench's room monitor: its failures are returned as reasons, never raised into the run."""

    def __init__(self, driver: AmbientMonitor, clock: Clock, *, fallback_source: str, connected: bool,
                 owned: bool, timeout: float) -> None:
        """`connected`: the engine already connected it (it is also an instrument of the procedure);
        `owned`: this monitor closes it; `timeout`: bound on one reading, reconnection included."""
        self.driver = driver
        self.clock = clock
        self.owned = owned
        self.timeout = timeout
        self._fallback_source = fallback_source
        self._healthy = connected  # False: re-establish (close, connect, serial check) before the next reading

    @property
    def units(self) -> Mapping[str, str]:
        return self.driver.ambient_units

    @property
    def source(self) -> str:
        """Make, model and serial as the instrument identified itself; the bench file's words until it has."""
        fields = [f.strip() for f in (self.driver.idn or "").split(",")]
        if len(fields) >= 3 and all(fields[:3]):
            return " ".join(fields[:3])
        return self._fallback_source

    async def open(self) -> str | None:
        """Connect; the reason it failed, or None. A failure here only means the first reading reconnects."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.driver.connect()
        except Exception as exc:  # noqa: BLE001 - a monitor's failure is recorded, never raised
            return f"{type(exc).__name__}: {exc}"
        self._healthy = True
        return None

    async def sample(self) -> AmbientSample | str:
        """One reading of the room, or why there is none."""
        try:
            async with asyncio.timeout(self.timeout):
                if not self._healthy:
                    with contextlib.suppress(Exception):
                        await self.driver.close()  # a late reply of a failed query must not answer this one
                    await self.driver.connect()
                    self._healthy = True
                values = await self.driver.read_ambient()
        except asyncio.CancelledError:
            self._healthy = False  # cancelled mid-query: its reply may still be on the wire
            raise
        except Exception as exc:  # noqa: BLE001 - a monitor's failure is recorded, never raised
            self._healthy = False
            return f"{type(exc).__name__}: {exc}"
        return AmbientSample(self.clock.now(), values)

    def watch(self) -> PointWatch:
        """Start watching one attempt: its start reading is taken now, concurrently."""
        return PointWatch(self)

    async def close(self) -> None:
        if self.owned:
            with contextlib.suppress(Exception):
                await self.driver.close()


class PointWatch:
    """The monitor's readings of one attempt: one as it starts (in the background), one when it is done."""

    def __init__(self, monitor: EnvironmentMonitor) -> None:
        self.monitor = monitor
        self._start: asyncio.Task[AmbientSample | str] = asyncio.get_running_loop().create_task(monitor.sample())

    def stop(self) -> None:
        """Abandon the start reading if it is still in flight; synchronous, so it never delays a safe state."""
        self._start.cancel()

    async def finish(self, record: Record) -> dict[str, Any]:
        """The end reading; both readings kept as raw readings; the point's "environment"."""
        start = await self._start
        end = await self.monitor.sample()
        samples: list[AmbientSample] = []
        failures: list[str] = []
        for when, got in (("start", start), ("end", end)):
            if isinstance(got, AmbientSample):
                await record_sample(got, self.monitor.units, record)
                samples.append(got)
            else:
                failures.append(f"{when}: {got}")
        return summarise(samples, failures, self.monitor.units, self.monitor.source)

    async def keep(self, record: Record) -> None:
        """An attempt that ends without a result keeps its start reading, if one was taken, as a raw reading."""
        self.stop()
        if self._start.done() and not self._start.cancelled():
            got = self._start.result()
            if isinstance(got, AmbientSample):
                await record_sample(got, self.monitor.units, record)


async def record_sample(sample: AmbientSample, units: Mapping[str, str], record: Record) -> None:
    for quantity, value in sample.values.items():
        unit = units.get(quantity, "")
        await record(Reading(f"{CHANNEL_PREFIX}{quantity}", sample.t, value, RAW_UNITS.get(unit, unit)))


def summarise(samples: list[AmbientSample], failures: list[str], units: Mapping[str, str],
              source: str) -> dict[str, Any]:
    """Mean, min and max of each quantity the monitor has; `failures` only when a reading failed."""
    environment: dict[str, Any] = {}
    for quantity, unit in units.items():
        values = [s.values[quantity] for s in samples if quantity in s.values]
        if values:
            environment[quantity] = {"mean": statistics.fmean(values), "min": min(values), "max": max(values),
                                     "unit": unit}
    environment["source"] = source
    if failures:
        environment["failures"] = failures
    return environment
