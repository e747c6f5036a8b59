"""SCPI header matching, parameter splitting and the error queue of the simulators, without a wire."""

from __future__ import annotations

import pytest

from daq.clock import VirtualClock
from simulators.scpi_instrument import (
    ErrorQueue,
    HeaderPattern,
    ScpiInstrument,
    split_header,
    split_outside_quotes,
)


def tokens(header: str) -> list[str]:
    return header.lstrip(":").upper().split(":")


@pytest.mark.parametrize(
    "header",
    ["CONF:VOLT:DC", "CONFIGURE:VOLTAGE:DC", "conf:volt", "Configure:Volt:Dc", "CONF:VOLTAGE"],
)
def test_short_and_long_forms_match(header: str) -> None:
    assert HeaderPattern("CONFigure:VOLTage[:DC]").matches(tokens(header), query=False)


@pytest.mark.parametrize("header", ["CON:VOLT:DC", "CONFI:VOLT", "CONF:VOLT:DC:DC", "CONF", "VOLT:DC"])
def test_partial_forms_and_extra_nodes_do_not_match(header: str) -> None:
    assert not HeaderPattern("CONFigure:VOLTage[:DC]").matches(tokens(header), query=False)


def test_optional_leading_node_and_query_flag() -> None:
    pattern = HeaderPattern("[SENSe:]VOLTage[:DC]:NPLCycles?")
    assert pattern.matches(tokens("SENS:VOLT:DC:NPLC"), query=True)
    assert pattern.matches(tokens("VOLT:NPLCYCLES"), query=True)
    assert not pattern.matches(tokens("VOLT:DC:NPLC"), query=False)


def test_split_header_keeps_units_and_commas() -> None:
    assert split_header("OUT 1 V, 1 KHZ") == ("OUT", ["1 V", "1 KHZ"])
    assert split_header("CONF:VOLT:DC 10,1E-6") == ("CONF:VOLT:DC", ["10", "1E-6"])
    assert split_header("*IDN?") == ("*IDN?", [])
    assert split_outside_quotes('DISP:TEXT "a;b";*IDN?', ";") == ['DISP:TEXT "a;b"', "*IDN?"]


def test_error_queue_is_fifo_and_reports_overflow() -> None:
    queue = ErrorQueue(capacity=3)
    for code in (-1, -2, -3, -4, -5):
        queue.push(code, "x")
    assert queue.snapshot() == [(-1, "x"), (-2, "x"), (-350, "Queue overflow")]
    assert queue.pop() == (-1, "x")
    queue.clear()
    assert queue.pop() is None


async def test_unknown_header_and_bad_parameter_go_to_the_error_queue() -> None:
    instrument = ScpiInstrument("box", VirtualClock())
    instrument.add_command("*IDN?", lambda p: "ACME,BOX,1,1")
    assert await instrument.handle("*idn?") == "ACME,BOX,1,1"
    assert await instrument.handle("FOO:BAR 1") is None
    assert await instrument.handle(":*IDN?") is None
    assert instrument.errors.snapshot() == [(-113, "Undefined header"), (-113, "Undefined header")]
