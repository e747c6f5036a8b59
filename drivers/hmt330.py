"""Vaisala HMT330-class humidity and temperature transmitters on RS-232 (Vaisala's line protocol).

On connect: `VERS` (must name an HMT33x), `SNUM` -> `Serial number : K1234567` checked against
the bench file, `SMODE POLL` (the transmitter answers only when asked). `read()` sends
`SEND` and parses `RH= 45.3 %RH  T= 23.1 'C` into (RH in %RH, T in degC). The multi-line `?`
is avoided: the transport is line-oriented and the extra lines would answer the next query.
The HMT330 has no error queue: an unknown command answers `Unknown command`, which the
driver reports.
"""

from __future__ import annotations

import re

from daq.errors import InstrumentError
from drivers.scpi import ScpiInstrument

_NUMBER = r"([-+]?\d+(?:\.\d*)?)"
_SEND_REPLY = re.compile(rf"^RH=\s*{_NUMBER}\s*%RH\s+T=\s*{_NUMBER}\s*'C$")
_SERIAL = re.compile(r"^Serial number\s*:\s*(\S+)$")


class Hmt330(ScpiInstrument):
    """An HMT330-class probe: `read()` -> (relative humidity %RH, temperature degC)."""

    display_resolution = (0.1, 0.1)
    ambient_units = {"temperature": "°C", "humidity": "%RH"}
    """What `read_ambient` reports, in which unit: a bench may name this transmitter its room monitor."""

    async def identify(self) -> str:
        version = (await self.transport.query("VERS")).strip()
        if not version.upper().startswith("HMT33"):
            raise InstrumentError(f"{self.name}: {version!r} from VERS is not an HMT330-class transmitter "
                                  f"(at {self.transport.resource})")
        reply = (await self.transport.query("SNUM")).strip()
        m = _SERIAL.match(reply)
        if not m:
            raise InstrumentError(f"{self.name}: unreadable reply {reply!r} to 'SNUM'")
        model, _, firmware = version.partition("/")
        self.idn = f"VAISALA,{model.strip()},{m.group(1)},{firmware.strip()}"
        return self.idn

    async def connect(self) -> None:
        idn = await self.identify()
        serial = idn.split(",")[2]
        if self.expected_serial is not None and serial != self.expected_serial:
            raise InstrumentError(
                f"{self.name}: serial number {serial!r} from SNUM does not match the bench file's "
                f"{self.expected_serial!r}; is the right instrument at {self.transport.resource}?")
        reply = (await self.transport.query("SMODE POLL")).strip()
        if not reply.upper().endswith("POLL"):
            raise InstrumentError(f"{self.name}: not in POLL mode after 'SMODE POLL' (reply {reply!r})")

    async def errors(self) -> list[str]:
        return []  # no error queue

    async def read(self) -> tuple[float, float]:
        """One reading: (relative humidity in %RH, temperature in degC)."""
        reply = (await self.transport.query("SEND")).strip()
        m = _SEND_REPLY.match(reply)
        if not m:
            raise InstrumentError(f"{self.name}: unreadable reply {reply!r} to 'SEND'")
        return float(m.group(1)), float(m.group(2))

    async def read_ambient(self) -> dict[str, float]:
        """The room's conditions for the environment log, from one `SEND` (both quantities of one instant)."""
        rh, temperature = await self.read()
        return {"temperature": temperature, "humidity": rh}

    async def read_humidity(self) -> float:
        return (await self.read())[0]

    async def read_temperature(self) -> float:
        return (await self.read())[1]

    def resolution(self) -> tuple[float, float]:
        """Display resolution of (RH, T)."""
        return self.display_resolution
