"""What every simulated SCPI instrument shares: header matching, parameters, the error queue.

A real instrument does not answer a command it does not understand: it stays silent and
pushes an error onto its queue, which the controller finds only if it asks. The simulators
behave the same way, so a driver that never checks the error queue fails here as it would
on the bench.

Headers follow IEEE 488.2 / SCPI: case-insensitive, each node either in its short form
(the upper-case part of the pattern) or its long form, optional nodes in brackets, an
optional leading colon. `CONF:VOLT:DC`, `conf:volt`, `:CONFigure:VOLTage:DC` are one command.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from daq.clock import Clock
from simulators.faults import POWER_ON, FaultSchedule

# Standard SCPI error codes the simulators push (SCPI-99 volume 2, chapter 21).
UNDEFINED_HEADER = (-113, "Undefined header")
ILLEGAL_PARAMETER_VALUE = (-224, "Illegal parameter value")
DATA_OUT_OF_RANGE = (-222, "Data out of range")
PARAMETER_NOT_ALLOWED = (-108, "Parameter not allowed")
MISSING_PARAMETER = (-109, "Missing parameter")
DATA_TYPE_ERROR = (-104, "Data type error")
DATA_STALE = (-230, "Data corrupt or stale")
QUEUE_OVERFLOW = (-350, "Queue overflow")

Handler = Callable[[list[str]], "str | None | Awaitable[str | None]"]


class ScpiError(Exception):
    """Raised by a command handler; the instrument turns it into an error-queue entry."""

    def __init__(self, code_and_text: tuple[int, str], detail: str = "") -> None:
        self.code, text = code_and_text
        # SCPI allows device-dependent detail after a semicolon inside the quoted text.
        self.text = f"{text};{detail}" if detail else text
        super().__init__(f"{self.code},{self.text}")


class ErrorQueue:
    """The instrument's error/event queue: first in, first out, bounded like the real one.

    When full, the newest entry is replaced by "Queue overflow" as SCPI prescribes, so the
    controller learns that errors were lost.
    """

    def __init__(self, capacity: int = 20) -> None:
        self.capacity = capacity
        self._entries: deque[tuple[int, str]] = deque()

    def push(self, code: int, text: str) -> None:
        if len(self._entries) >= self.capacity:
            self._entries[-1] = QUEUE_OVERFLOW
            return
        self._entries.append((code, text))

    def pop(self) -> tuple[int, str] | None:
        """The oldest error, or None when the queue is empty (each model words "no error")."""
        return self._entries.popleft() if self._entries else None

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def snapshot(self) -> list[tuple[int, str]]:
        """The pending errors without consuming them (for tests)."""
        return list(self._entries)


@dataclass(frozen=True)
class _Node:
    short: str
    long: str
    optional: bool


_NODE = re.compile(r"\[:?([A-Za-z0-9]+):?\]|([A-Za-z0-9]+)")


def _keyword_forms(word: str) -> tuple[str, str]:
    """`CONFigure` -> ("CONF", "CONFIGURE"): the short form is the upper-case prefix."""
    short = ""
    for ch in word:
        if ch.isupper() or ch.isdigit():
            short += ch
        else:
            break
    return (short or word).upper(), word.upper()


class HeaderPattern:
    """One command header in SCPI notation, e.g. `[SENSe:]VOLTage[:DC]:NPLCycles?`."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.query = pattern.endswith("?")
        body = pattern[:-1] if self.query else pattern
        self.common = body.startswith("*")
        if self.common:
            self._literal = body.upper()
            self._nodes: tuple[_Node, ...] = ()
        else:
            nodes = []
            for optional_word, word in _NODE.findall(body):
                short, long = _keyword_forms(optional_word or word)
                nodes.append(_Node(short, long, bool(optional_word)))
            self._nodes = tuple(nodes)

    def matches(self, tokens: list[str], query: bool) -> bool:
        if query != self.query:
            return False
        return self._match(0, tokens, 0)

    def matches_common(self, header: str, query: bool) -> bool:
        return self.common and query == self.query and header.upper() == self._literal

    def _match(self, i: int, tokens: list[str], j: int) -> bool:
        if i == len(self._nodes):
            return j == len(tokens)
        node = self._nodes[i]
        if j < len(tokens) and tokens[j] in (node.short, node.long) and self._match(i + 1, tokens, j + 1):
            return True
        return node.optional and self._match(i + 1, tokens, j)


def keyword_is(text: str, pattern: str) -> bool:
    """True if a parameter keyword matches `pattern` in short or long form (`MAX` ~ `MAXimum`)."""
    short, long = _keyword_forms(pattern)
    return text.strip().upper() in (short, long)


def parse_number(text: str) -> float:
    """A SCPI decimal numeric parameter; anything else is a data type error."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ScpiError(DATA_TYPE_ERROR, f"not a number: {text.strip()}") from None
    if not math.isfinite(value):
        raise ScpiError(DATA_TYPE_ERROR, f"not a finite number: {text.strip()}")
    return value


def parse_switch(text: str) -> bool:
    """A boolean parameter: ON/OFF/1/0."""
    word = text.strip().upper()
    if word in ("ON", "1"):
        return True
    if word in ("OFF", "0"):
        return False
    raise ScpiError(ILLEGAL_PARAMETER_VALUE, f"expected ON or OFF, got {text.strip()}")


def expect_params(params: list[str], at_most: int, at_least: int = 0) -> list[str]:
    """Check the parameter count the way an instrument does: too many or too few is an error."""
    if len(params) > at_most:
        raise ScpiError(PARAMETER_NOT_ALLOWED)
    if len(params) < at_least:
        raise ScpiError(MISSING_PARAMETER)
    return params


def split_header(command: str) -> tuple[str, list[str]]:
    """`CONF:VOLT:DC 10,1E-6` -> ("CONF:VOLT:DC", ["10", "1E-6"])."""
    text = command.strip()
    parts = text.split(None, 1)
    if not parts:
        return "", []
    header = parts[0]
    if len(parts) == 1 or not parts[1].strip():
        return header, []
    return header, [p.strip() for p in split_outside_quotes(parts[1], ",")]


def split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split on `separator` except inside double-quoted strings (SCPI string parameters)."""
    pieces: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == separator and not quoted:
            pieces.append("".join(current))
            current = []
        else:
            current.append(ch)
    pieces.append("".join(current))
    return pieces


class ScpiInstrument:
    """Base of the simulated instrument models: a command table and an error queue.

    Subclasses register handlers with `add_command(pattern, handler)`; a handler gets the
    comma-separated parameters (stripped strings) and returns the reply text for a query, or
    None. A handler may be a coroutine so it can spend time on the injected clock (an
    integration, a settling wait) exactly as the real instrument keeps the bus waiting.

    `lock` serialises commands arriving over several connections or transports: a real
    instrument executes one command at a time.
    """

    #: Output terminals other instruments can be wired from, and input terminals to.
    output_terminals: tuple[str, ...] = ()
    input_terminals: tuple[str, ...] = ()

    def __init__(self, name: str, clock: Clock, *, reply_latency: float = 0.0) -> None:
        self.name = name
        self.clock = clock
        self.reply_latency = reply_latency
        self.errors = ErrorQueue()
        self.lock = asyncio.Lock()
        self._commands: list[tuple[HeaderPattern, Handler]] = []
        #: Faults to inject (see `simulators.faults`); applied by the line servers.
        self.faults = FaultSchedule()
        #: The last reply to each query header, which a stuck instrument repeats.
        self.last_replies: dict[str, str] = {}
        self.power_cycles = 0

    #: How the error query answers: the header it echoes (e.g. ":SYST:ERR "), the text of "no
    #: error" and whether the code carries its sign ("+0"), which differ between makers.
    error_reply_prefix = ""
    no_error_text = "No error"
    signed_error_codes = False

    def _cls(self, params: list[str]) -> None:
        """`*CLS`: clear the error queue."""
        expect_params(params, 0)
        self.errors.clear()

    def _err(self, params: list[str]) -> str:
        """The error query: the oldest entry of the queue, or "no error", in this maker's format."""
        expect_params(params, 0)
        entry = self.errors.pop()
        code, text = (0, self.no_error_text) if entry is None else entry
        number = f"{code:+d}" if self.signed_error_codes else f"{code}"
        return f'{self.error_reply_prefix}{number},"{text}"'

    def add_command(self, pattern: str, handler: Handler) -> None:
        self._commands.append((HeaderPattern(pattern), handler))

    def add_commands(self, table: Iterable[tuple[str, Handler]]) -> None:
        for pattern, handler in table:
            self.add_command(pattern, handler)

    def _lookup(self, header: str) -> Handler:
        query = header.endswith("?")
        bare = header[:-1] if query else header
        if bare.startswith("*"):
            for pattern, handler in self._commands:
                if pattern.matches_common(bare, query):
                    return handler
            raise ScpiError(UNDEFINED_HEADER)
        tokens = bare.lstrip(":").upper().split(":")
        if not all(tokens):
            raise ScpiError(UNDEFINED_HEADER)
        for pattern, handler in self._commands:
            if not pattern.common and pattern.matches(tokens, query):
                return handler
        raise ScpiError(UNDEFINED_HEADER)

    async def handle(self, command: str) -> str | None:
        """Execute one command (no `;`); return the reply line for a query, else None.

        Errors never reply: they go to the error queue, as on the real instrument.
        """
        header, params = split_header(command)
        if not header:
            return None
        try:
            handler = self._lookup(header)
            result = handler(params)
            if inspect.isawaitable(result):
                result = await result
            return result
        except ScpiError as exc:
            self.errors.push(exc.code, exc.text)
            return None

    def power_on(self) -> None:
        """Power-cycle: back to the power-on state (*RST defaults), the error queue holding only
        the power-on event. Subclasses with state *RST does not reset override this."""
        self.stop()
        for pattern, handler in self._commands:
            if pattern.matches_common("*RST", False):
                result = handler([])
                if inspect.isawaitable(result):
                    close = getattr(result, "close", None)
                    if callable(close):
                        close()
                break
        self.errors.clear()
        self.errors.push(*POWER_ON)
        self.last_replies.clear()
        self.power_cycles += 1

    def stop(self) -> None:
        """Cancel background work (a triggered acquisition) when the bench is closed."""

    def connect_input(self, terminal: str, source: Callable[[float], float]) -> None:
        """Wire `source` (volts as a function of clock time) to an input terminal."""
        raise KeyError(terminal)

    def output_source(self, terminal: str) -> Callable[[float], float]:
        """The function of clock time that an output terminal presents to the world."""
        raise KeyError(terminal)
