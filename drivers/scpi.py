"""What every SCPI instrument shares: identification with a serial-number check, and the error queue.

The serial check on connect (as an equipment register would) stops a calibration from being
recorded against the wrong unit when two instruments swap addresses.
"""

from __future__ import annotations

from daq.errors import InstrumentError
from daq.transports.base import Transport


class ScpiInstrument:
    error_query = "SYST:ERR?"
    no_error_codes = ("0", "+0")

    def __init__(self, name: str, transport: Transport, expected_serial: str | None = None) -> None:
        self.name = name
        self.transport = transport
        self.expected_serial = expected_serial
        self.idn = ""

    async def identify(self) -> str:
        self.idn = await self.transport.query("*IDN?")
        return self.idn

    async def connect(self) -> None:
        idn = await self.identify()
        fields = [f.strip() for f in idn.split(",")]
        if self.expected_serial is not None:
            serial = fields[2] if len(fields) > 2 else ""
            if serial != self.expected_serial:
                raise InstrumentError(
                    f"{self.name}: serial number {serial!r} from *IDN? does not match the bench file's "
                    f"{self.expected_serial!r} (reply was {idn!r}); is the right instrument at "
                    f"{self.transport.resource}?"
                )
        await self.transport.write("*CLS")

    async def errors(self) -> list[str]:
        """Drain the error queue; an empty list means no error."""
        found: list[str] = []
        for _ in range(32):
            reply = await self.transport.query(self.error_query)
            code = reply.split(",", 1)[0].strip()
            if code in self.no_error_codes:
                break
            found.append(reply)
        return found

    async def check_errors(self, after: str) -> None:
        found = await self.errors()
        if found:
            raise InstrumentError(f"{self.name}: instrument reported {'; '.join(found)} after {after!r}")

    async def close(self) -> None:
        await self.transport.close()
