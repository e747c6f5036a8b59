"""Live telemetry over MQTT (aiomqtt), never in the way of acquisition.

`emit` only puts the event on a bounded queue and returns; a background task publishes it.
When the broker is away the task reconnects with back-off; when a queue is full its oldest
entry is dropped and counted (the store, not the broker, is the record). Readings and
results queue apart, so a flood of readings never pushes out a point result or a status.

Topics: `<prefix>/<run_id>/status`, `/reading`, `/point`, `/phase`; JSON payloads.
Readings are published at QoS 0, results and status at QoS 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections import deque
from typing import Any
from urllib.parse import urlparse

from daq.events import Event, event_to_dict


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


class MqttSink:
    def __init__(self, url: str, prefix: str = "daq/runs", queue_size: int = 10_000) -> None:
        parsed = urlparse(url if "://" in url else f"mqtt://{url}")
        if parsed.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"MQTT URL {url!r}: use mqtt://host:port")
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 1883
        self.username = parsed.username
        self.password = parsed.password
        self.prefix = prefix.rstrip("/")
        # two bounded queues: readings (QoS 0) may be dropped, oldest first, when the broker is
        # away; results and status (QoS 1) go first and are only dropped when they alone fill theirs
        self.readings: deque[tuple[str, bytes, int]] = deque()
        self.important: deque[tuple[str, bytes, int]] = deque()
        self.queue_size = queue_size
        self._ready = asyncio.Event()
        self.dropped = 0
        self.published = 0
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: tuple[str, bytes, int] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._publish_forever())

    def emit(self, event: Event) -> None:
        data = event_to_dict(event)
        topic = f"{self.prefix}/{data['run_id']}/{data['kind']}"
        qos = 0 if data["kind"] in ("reading", "phase") else 1
        target = self.readings if qos == 0 else self.important
        if len(target) >= self.queue_size:
            target.popleft()
            self.dropped += 1
        target.append((topic, json.dumps(_jsonable(data)).encode(), qos))
        self._ready.set()

    def pending(self) -> int:
        """Messages not yet handed to the broker, the one being published included."""
        return len(self.readings) + len(self.important) + (self._in_flight is not None)

    async def _next(self) -> tuple[str, bytes, int]:
        while not self.important and not self.readings:
            self._ready.clear()
            await self._ready.wait()
        return self.important.popleft() if self.important else self.readings.popleft()

    async def _publish_forever(self) -> None:
        import aiomqtt

        backoff = 0.2
        while True:
            try:
                async with aiomqtt.Client(self.host, self.port, username=self.username, password=self.password,
                                          identifier=None, timeout=5) as client:
                    self.connected.set()
                    backoff = 0.2
                    while True:
                        if self._in_flight is None:
                            self._in_flight = await self._next()
                        topic, payload, qos = self._in_flight
                        await client.publish(topic, payload, qos=qos)
                        self._in_flight = None
                        self.published += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - any broker trouble: wait, reconnect, keep the message
                self.connected.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def aclose(self, drain_timeout: float = 2.0) -> None:
        """Give queued telemetry a moment to leave, then stop; never hangs a finished run."""
        if self._task is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_timeout
        while self.pending() and self.connected.is_set() and loop.time() < deadline:
            await asyncio.sleep(0.02)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
