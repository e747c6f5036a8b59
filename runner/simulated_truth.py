"""What a simulated world knows and a real bench never does: each UUT's true error at each point.

Some truths depend on when the UUT was read (a bath still moving, a gauge's direction of
approach), and simulators answer for *now*; so the truth is taken as results arrive, from the
times the UUT's readings were taken, while the world still holds that point. The CLI prints it
beside the measured errors; the tests compare against it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from daq.events import Event, PointResultEvent, ReadingEvent


class SimulatedTruth:
    """An event sink: records reading times, and at each point result the UUT's true error."""

    def __init__(self, world: Any, procedure: Any) -> None:
        self.world = world
        self.procedure = procedure
        self.times: dict[tuple[int, str], list[float]] = defaultdict(list)
        self.truth: dict[tuple[int, str], float] = {}

    def emit(self, event: Event) -> None:
        if isinstance(event, ReadingEvent):
            self.times[(event.point_index, event.channel)].append(event.t)
        elif isinstance(event, PointResultEvent):
            channel = str(event.result.get("channel", ""))
            value = self._truth_now(event.point_index, channel, int(event.result["n"]))
            if value is not None:
                self.truth[(event.point_index, channel)] = value

    def truth_for(self, point_index: int, channel: str = "") -> float | None:
        """The true error of `channel` at `point_index`; for a DC point it needs no history."""
        if (point_index, channel) in self.truth:
            return self.truth[(point_index, channel)]
        if self.procedure.kind == "dc_voltage":
            point = self.procedure.points[point_index]
            return float(self.world.true_error(self.procedure.instrument_names()[1], point.nominal, point.range_))
        return None

    def _truth_now(self, index: int, channel: str, n: int) -> float | None:
        kind = self.procedure.kind
        if kind == "dc_voltage":
            return self.truth_for(index, channel)
        if kind == "thermometer_comparison":
            name, ch = channel.rsplit(".", 1)
            readout = self.world[name]
            times = self.times[(index, f"uut:{channel}")][-n:]
            return _mean(readout.true_error(int(ch), readout.temperature_at(int(ch), t)) for t in times)
        if kind == "pressure_gauge":
            gauge = self.world[self.procedure.uut_role]
            times = self.times[(index, "uut")][-n:]
            return _mean(gauge.true_error(gauge.value_at(t), gauge.ascending_at(t)) for t in times)
        return None

    async def aclose(self) -> None:
        pass


def _mean(values: Any) -> float:
    items = list(values)
    return math.fsum(items) / len(items)
