"""Live events over the real Mosquitto broker, and acquisition that never waits for it."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid

import aiomqtt

from daq.bench import parse_bench
from daq.clock import VirtualClock
from procedures.dc_voltage import parse_procedure
from runner.session import SessionOptions, run_session
from runner.sinks.mqtt import MqttSink
from simulators.bench_server import start_bench


async def _run_with(sink, tmp_path, bench_toml, procedure_toml):
    clock = VirtualClock()
    running = await start_bench(parse_bench(bench_toml, source="bench.toml"), clock)
    try:
        return await run_session(running.bench, parse_procedure(procedure_toml, source="proc.toml"),
                                 SessionOptions(db=str(tmp_path / "m.sqlite"), live=False, assume_yes=True),
                                 clock=clock, sinks=[sink])
    finally:
        await running.close()


async def test_readings_results_and_status_reach_the_broker(mosquitto, tmp_path, bench_toml, procedure_toml):
    host, port = mosquitto
    prefix = f"test/{uuid.uuid4().hex}"
    received: list[tuple[str, dict]] = []
    async with aiomqtt.Client(host, port) as sub:
        await sub.subscribe(f"{prefix}/#", qos=1)

        async def collect():
            async for msg in sub.messages:
                received.append((str(msg.topic), json.loads(msg.payload)))

        collector = asyncio.create_task(collect())
        sink = MqttSink(f"mqtt://{host}:{port}", prefix=prefix)
        sink.start()
        outcome = await _run_with(sink, tmp_path, bench_toml, procedure_toml)
        await sink.aclose(drain_timeout=5)
        for _ in range(200):  # results go first, readings after: wait for both
            done = any(t.endswith("/status") and m["status"] == "completed" for t, m in received)
            if done and len(received) >= sink.published:  # everything the sink handed to the broker
                break
            await asyncio.sleep(0.05)
        collector.cancel()
    assert outcome.status == "completed"
    readings = [m for t, m in received if t.endswith("/reading")]
    assert sum(m["channel"] in ("uut", "ref") for m in readings) == 5 * 2 * 5  # 5 points x (uut, ref) x 5 repeats
    assert any(m["channel"] == "settle" for m in readings)  # the stabilisation is visible live too
    points = [m for t, m in received if t.endswith("/point")]
    assert [p["point_index"] for p in points] == [0, 1, 2, 3, 4]
    assert points[0]["result"]["U"] == outcome.results[0]["U"]
    statuses = [m["status"] for t, m in received if t.endswith("/status")]
    assert statuses[0] == "running" and statuses[-1] == "completed"
    assert all(t.startswith(f"{prefix}/{outcome.run_id}/") for t, _ in received)
    assert sink.dropped == 0


async def test_an_unreachable_broker_never_blocks_acquisition(tmp_path, bench_toml, procedure_toml):
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    sink = MqttSink(f"mqtt://127.0.0.1:{dead_port}", prefix="test/dead", queue_size=16)
    sink.start()
    outcome = await asyncio.wait_for(_run_with(sink, tmp_path, bench_toml, procedure_toml), 60)
    await sink.aclose(drain_timeout=0.1)
    assert outcome.status == "completed"
    assert sink.published == 0
    assert sink.dropped > 0  # oldest readings dropped, acquisition went on
    # ...but never a result or a status while readings could go instead: all kept for the broker
    kinds = [json.loads(payload)["kind"] for _, payload, _ in sink.important]
    assert kinds.count("point") == 5 and kinds.count("status") == 2
