"""Fault injection: what goes wrong on a real bench, scheduled so a test can count on it.

A simulated instrument carries a `FaultSchedule`. A fault is armed for the next command
whose header matches (`READ?`, `CONF` for `CONF:VOLT:DC 10`, `OUT`; none: any command),
optionally after letting `after` matching commands pass, and fires for `count` matching
commands. Both line servers (TCP and pseudo-terminal) apply it, so one schedule serves an
instrument whichever transport it is reached by.

- `drop`: the command is lost; TCP: the connection is closed; pty (no connection to close):
  no reply.
- `delay`: the reply is held back `delay` seconds of wall time (driver timeouts are wall
  time); on a pty a new line arriving meanwhile discards it with -410 "Query INTERRUPTED",
  as IEEE 488.2 prescribes.
- `garbage`: the reply is replaced by unreadable bytes (terminated).
- `truncate`: half the reply, no terminator; TCP: then the connection closes; pty: silence.
- `stuck`: the command runs (time passes) but the reply repeats the last reply to that header
  (the fresh one if there was none yet).
- `error`: an entry (`code`, `message`) is pushed on the error queue, then the command runs.
- `power_cycle`: the command is lost and the instrument wakes up in its power-on state (*RST
  defaults, the error queue holding only -500 "Power on"); TCP: every connection closes.

Modbus instruments (`simulators.modbus_server`) carry the same schedule (`model.faults`) and
the same kinds; a request is matched as the command `"<function code>:<start address>"`,
decimal (`"3"`: every holding-register read, `"3:32770"`: the float PV read of a 3200), and
each kind is mapped onto the Modbus wire as described there (`error`: exception `code` if
1..255, else 4, server device failure).

Bench file (read by `start_bench`):
```toml
[instruments.dmm.simulation]
faults = [
  { kind = "drop", command = "READ?", after = 40 },
  { kind = "delay", command = "READ?", after = 60, delay = 1.0 },
  { kind = "error", command = "CONF", code = -222, message = "Data out of range" },
]
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from daq.errors import ConfigError

FAULT_KINDS = ("drop", "delay", "garbage", "truncate", "stuck", "error", "power_cycle")
#: Faults after which the line (TCP connection) is closed or, on a pty, left silent.
CONNECTION_FAULTS = ("drop", "power_cycle", "truncate")
GARBAGE_REPLY = "#?%&*!~\x7f?"
POWER_ON = (-500, "Power on")
QUERY_INTERRUPTED = (-410, "Query INTERRUPTED")
DEFAULT_ERROR = (-350, "Queue overflow")


@dataclass
class Fault:
    kind: str
    command: str | None = None
    count: int = 1
    after: int = 0
    delay: float = 1.0
    code: int = DEFAULT_ERROR[0]
    message: str = DEFAULT_ERROR[1]
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}")
        if self.count < 1 or self.after < 0 or self.delay <= 0:
            raise ValueError("a fault needs count >= 1, after >= 0 and delay > 0")

    def matches(self, command: str) -> bool:
        """True if `command`'s header is this fault's command, or starts with it followed by `:`."""
        if self.command is None:
            return True
        header = command.strip().split(None, 1)[0].lstrip(":").upper() if command.strip() else ""
        wanted = self.command.strip().lstrip(":").upper()
        if header == wanted:
            return True
        # a command prefix (`CONF`) matches the longer commands under it, never a query
        return not wanted.endswith("?") and not header.endswith("?") and header.startswith(wanted + ":")


@dataclass
class FaultSchedule:
    """The faults armed on one instrument, and a log of those that fired."""

    pending: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)  # (kind, command) of every firing

    def arm(
        self,
        kind: str,
        command: str | None = None,
        *,
        count: int = 1,
        after: int = 0,
        delay: float = 1.0,
        code: int = DEFAULT_ERROR[0],
        message: str = DEFAULT_ERROR[1],
    ) -> Fault:
        """Arm a fault for the next `count` commands matching `command` (after `after` of them pass)."""
        fault = Fault(kind, command, count, after, delay, code, message)
        self.pending.append(fault)
        return fault

    def add(self, fault: Fault) -> Fault:
        self.pending.append(fault)
        return fault

    def clear(self) -> None:
        self.pending.clear()

    def take(self, command: str) -> Fault | None:
        """The fault that fires at `command`, if any (each matching fault counts the command)."""
        hit: Fault | None = None
        for fault in list(self.pending):
            if not fault.matches(command):
                continue
            if fault.seen < fault.after:
                fault.seen += 1
                continue
            if hit is not None:
                continue
            fault.fired += 1
            if fault.fired >= fault.count:
                self.pending.remove(fault)
            hit = fault
        if hit is not None:
            self.log.append((hit.kind, command))
        return hit

    def fired(self, kind: str | None = None) -> int:
        return sum(1 for k, _ in self.log if kind is None or k == kind)


_FIELDS = ("kind", "command", "count", "after", "delay", "code", "message")
_FIX = 'write faults = [{ kind = "drop", command = "READ?", after = 10, count = 1 }]'


def parse_faults(value: Any, *, source: str, where: str) -> list[Fault]:
    """`[instruments.X.simulation] faults = [...]`, every field checked; errors name the field."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(source, where, f"expected an array of tables, got {value!r}", _FIX)
    faults: list[Fault] = []
    for i, entry in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(source, at, "must be a table", _FIX)
        unknown = sorted(set(entry) - set(_FIELDS))
        if unknown:
            raise ConfigError(source, f"{at}.{unknown[0]}", "unknown field", f"use {', '.join(_FIELDS)}")
        kind = entry.get("kind")
        if kind not in FAULT_KINDS:
            raise ConfigError(source, f"{at}.kind", f"unknown fault kind {kind!r}",
                              f"use one of {', '.join(FAULT_KINDS)}")
        command = entry.get("command")
        if command is not None and (not isinstance(command, str) or not command.strip()):
            raise ConfigError(source, f"{at}.command", f"expected a command header, got {command!r}",
                              'write e.g. command = "READ?"')
        ints = {}
        for key, low, default in (("count", 1, 1), ("after", 0, 0)):
            number = entry.get(key, default)
            if isinstance(number, bool) or not isinstance(number, int) or number < low:
                raise ConfigError(source, f"{at}.{key}", f"expected an integer >= {low}, got {number!r}",
                                  f"write e.g. {key} = {max(low, 1)}")
            ints[key] = number
        delay = entry.get("delay", 1.0)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay <= 0:
            raise ConfigError(source, f"{at}.delay", f"expected seconds > 0, got {delay!r}",
                              "write e.g. delay = 1.0 (longer than the bench's timeout)")
        code = entry.get("code", DEFAULT_ERROR[0])
        if isinstance(code, bool) or not isinstance(code, int):
            raise ConfigError(source, f"{at}.code", f"expected an integer error code, got {code!r}",
                              "write e.g. code = -222")
        message = entry.get("message", DEFAULT_ERROR[1])
        if not isinstance(message, str):
            raise ConfigError(source, f"{at}.message", f"expected a string, got {message!r}",
                              'write e.g. message = "Data out of range"')
        faults.append(Fault(kind, command, ints["count"], ints["after"], float(delay), code, message))
    return faults
