"""The events a run emits, as a stream of small documents.

Sinks (terminal, MQTT, web) take them without blocking: the store is written by the run
itself, because the database is the record and telemetry is only a view of it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class RunStatusEvent:
    run_id: int
    status: str
    message: str = ""
    kind: str = field(default="status", init=False)


@dataclass(frozen=True)
class PointPhaseEvent:
    run_id: int
    point_index: int
    label: str
    phase: str
    stability: dict[str, Any] | None = None
    kind: str = field(default="phase", init=False)


@dataclass(frozen=True)
class ReadingEvent:
    run_id: int
    point_index: int
    channel: str
    t: float
    value: float
    unit: str
    kind: str = field(default="reading", init=False)


@dataclass(frozen=True)
class PointResultEvent:
    run_id: int
    point_index: int
    result: dict[str, Any]
    kind: str = field(default="point", init=False)


Event = RunStatusEvent | PointPhaseEvent | ReadingEvent | PointResultEvent


def event_to_dict(event: Event) -> dict[str, Any]:
    return asdict(event)


class EventSink(Protocol):
    def emit(self, event: Event) -> None:
        """Take the event and return at once; never blocks acquisition."""
        ...

    async def aclose(self) -> None: ...
