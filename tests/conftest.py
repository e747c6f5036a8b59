"""Shared test fixtures: the real services (fail in CI when missing, skip elsewhere)."""

from __future__ import annotations

import os
import socket

import pytest


def service_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if service_up(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; CI must provide it (.ci/run starts it)")
    pytest.skip(f"{message}; start it (scripts/ensure-services) to run this test")


@pytest.fixture
def mosquitto() -> tuple[str, int]:
    require_service("Mosquitto", "127.0.0.1", 1883)
    return "127.0.0.1", 1883


# -- simulated benches for integration tests --------------------------------------------------

BENCH_TOML = """
[bench]
name = "test bench"
seed = 7

[instruments.calibrator]
driver = "fluke5522a"
resource = "TCPIP::127.0.0.1::0::SOCKET"
serial = "SIM5522A-0001"

[instruments.calibrator.certificate.dcv]
k = 2.0
ranges = [
  { upto = 0.33, ppm = 15, floor = 1e-6 },
  { upto = 3.3, ppm = 9, floor = 2e-6 },
  { upto = 33, ppm = 10, floor = 20e-6 },
  { upto = 330, ppm = 15, floor = 150e-6 },
  { upto = 1020, ppm = 15, floor = 1500e-6 },
]

[instruments.calibrator.simulation]
time_constant = 0.4

[instruments.dmm]
driver = "keysight34465a"
resource = "TCPIP::127.0.0.1::0::SOCKET"
serial = "SIM34465A-0001"

[instruments.dmm.simulation]
gain_ppm = 12.0
offset_ppm_of_range = 2.0
noise_ppm_of_range = 0.4
resolution_ppm_of_range = 0.1

[[wiring]]
from = "calibrator.output"
to = "dmm.input"
"""

PROCEDURE_TOML = """
[procedure]
name = "test DCV"
repeats = 5
nplc = 10
decision_rule = "guarded"

[roles]
source = "calibrator"
uut = "dmm"

[stability]
window = 8
max_std_ppm = 1.5
max_slope_ppm_per_s = 1.0
band_ppm = 10000
min_soak = "0.5 s"
timeout = "60 s"

[[uut_spec]]
range = "1 V"
ppm_of_reading = 30
ppm_of_range = 7
[[uut_spec]]
range = "10 V"
ppm_of_reading = 30
ppm_of_range = 5
[[uut_spec]]
range = "100 V"
ppm_of_reading = 40
ppm_of_range = 6

[[points]]
range = "1 V"
setpoints = ["1 V", "-1 V"]
[[points]]
range = "10 V"
setpoints = ["0 V", "10 V", "-10 V"]
"""


@pytest.fixture
def bench_toml() -> str:
    return BENCH_TOML


@pytest.fixture
def procedure_toml() -> str:
    return PROCEDURE_TOML


@pytest.fixture
def postgres_url():
    """A fresh database on the real PostgreSQL (127.0.0.1:5432, trust auth), dropped afterwards."""
    import uuid

    require_service("PostgreSQL", "127.0.0.1", 5432)
    import asyncio

    import asyncpg

    name = f"daq_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
