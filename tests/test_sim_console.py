"""`daq sim` in its own process: the dial gauge read by eye from its terminal, weights placed by typing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "runner" / "data"
pytestmark = pytest.mark.slow


def _start(bench: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "runner.cli", "sim", "--bench", str(DATA / bench), "--scale", "20"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(stream, pattern: str, timeout: float = 30.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        m = re.search(pattern, line)
        if m:
            return m
    raise AssertionError(f"no line matching {pattern!r}")


def test_the_dial_gauge_shows_its_indication_on_the_simulator_terminal():
    sim = _start("pressure-bench.toml")
    try:
        m = _wait_for(sim.stderr, r"\[gauge\] reads (\S+) bar")
        assert float(m.group(1)) == pytest.approx(0.0, abs=0.1)  # vented: the dial near zero
    finally:
        sim.terminate()
        sim.wait(10)


def test_a_typed_task_places_a_weight_on_the_simulated_balance():
    sim = _start("balance-bench.toml")
    try:
        resource = _wait_for(sim.stdout, r"balance (ASRL\S+::INSTR)").group(1)
        device = resource[len("ASRL"):-len("::INSTR")]
        sim.stdin.write("place balance R100\n")
        sim.stdin.flush()
        assert _wait_for(sim.stderr, r"done: place balance R100")
        fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        try:
            os.write(fd, b"S\r\n")
            reply = b""
            deadline = time.monotonic() + 30
            while not reply.endswith(b"\n") and time.monotonic() < deadline:
                reply += os.read(fd, 100)
        finally:
            os.close(fd)
        grams = float(reply.split()[2])
        assert grams == pytest.approx(100.0, abs=0.01)
    finally:
        sim.terminate()
        sim.wait(10)
