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
