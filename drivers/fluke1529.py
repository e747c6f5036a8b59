"""Fluke/Hart 1529-class (and 1524) thermometer readouts, and the Hart 1502A single-channel readout.

1529: `FETC? <ch>` returns the channel's latest reading as a bare number (`25.0312`),
`MEAS? <ch>` a fresh one, `UNIT:TEMP C` selects the unit, errors come from `SYST:ERR?`.
1502A: Hart's own terse commands, `t` -> `t:  25.0012 C`, `u=c`; it has no error queue.

Channels are safe to read concurrently: every query holds the transport's lock, so
`asyncio.gather(read(1), read(2), ...)` never interleaves a command with another's reply;
the readings of one readout are taken one after the other, several readouts in parallel.
"""

from __future__ import annotations

import re

from daq.errors import InstrumentError
from drivers.scpi import ScpiInstrument

_HART_READING = re.compile(r"^t:\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*([CFK])$")


def _parse_float(name: str, command: str, reply: str) -> float:
    try:
        return float(reply)
    except ValueError as exc:
        raise InstrumentError(f"{name}: unreadable reply {reply!r} to {command!r}") from exc


class Readout1529(ScpiInstrument):
    """Fluke/Hart 1529-class 4-channel readout (degC)."""

    error_query = "SYST:ERR?"
    channels: tuple[int, ...] = (1, 2, 3, 4)
    display_resolution = 0.0001

    async def connect(self) -> None:
        await super().connect()
        await self.transport.write("UNIT:TEMP C")
        await self.check_errors("UNIT:TEMP C")

    def _check_channel(self, channel: int) -> None:
        if channel not in self.channels:
            raise InstrumentError(f"{self.name}: no channel {channel}; this readout has {self.channels}")

    async def read(self, channel: int) -> float:
        """The channel's latest reading, degC (`FETC? <ch>`)."""
        self._check_channel(channel)
        command = f"FETC? {channel}"
        return _parse_float(self.name, command, await self.transport.query(command))

    async def measure(self, channel: int) -> float:
        """A fresh reading of the channel, degC (`MEAS? <ch>`; takes the readout's measurement time)."""
        self._check_channel(channel)
        command = f"MEAS? {channel}"
        return _parse_float(self.name, command, await self.transport.query(command))

    def resolution(self) -> float:
        return self.display_resolution


class Readout1502A(ScpiInstrument):
    """Hart 1502A-class single-channel readout on Hart's commands (degC)."""

    channels: tuple[int, ...] = (1,)
    display_resolution = 0.0001

    async def connect(self) -> None:
        idn = await self.identify()
        fields = [f.strip() for f in idn.split(",")]
        serial = fields[2] if len(fields) > 2 else ""
        if self.expected_serial is not None and serial != self.expected_serial:
            raise InstrumentError(
                f"{self.name}: serial number {serial!r} from *IDN? does not match the bench file's "
                f"{self.expected_serial!r} (reply was {idn!r}); is the right instrument at {self.transport.resource}?"
            )
        await self.transport.write("u=c")
        unit = await self.transport.query("u")
        if unit.strip() != "u: C":
            raise InstrumentError(f"{self.name}: unit not set to C (reply to 'u' was {unit!r})")

    async def errors(self) -> list[str]:
        return []  # the 1502A has no error queue

    async def read(self, channel: int = 1) -> float:
        if channel not in self.channels:
            raise InstrumentError(f"{self.name}: no channel {channel}; the 1502A has one")
        reply = await self.transport.query("t")
        m = _HART_READING.match(reply.strip())
        if not m:
            raise InstrumentError(f"{self.name}: unreadable reply {reply!r} to 't'")
        if m.group(2) != "C":
            raise InstrumentError(f"{self.name}: reading in {m.group(2)}, expected C: {reply!r}")
        return float(m.group(1))

    def resolution(self) -> float:
        return self.display_resolution
