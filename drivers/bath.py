"""Fluke/Hart SCPI-class temperature baths and dry-wells (6100/7100 baths, 914x/915x dry-wells).

`SOUR:SPO 30.0` sets the setpoint, `SOUR:SENS:DATA?` reads the control sensor,
`SOUR:STAB:LIM 0.05` / `SOUR:STAB:TEST?` (1/0) are the instrument's own stability test,
`OUTP:STAT 0|1` switches the heating. The stability flag only means "inside the bath's own
band": procedures require it *and* their statistical criterion.

Safe state: heating off first, then the setpoint back to `safe_setpoint` (ambient), so a
reconnect or a power-up never drives the bath back to the last point's temperature.
"""

from __future__ import annotations

from daq.errors import InstrumentError
from drivers.scpi import ScpiInstrument


class TemperatureBath(ScpiInstrument):
    """A bath or dry-well as a `Controller` (degC)."""

    error_query = "SYST:ERR?"
    safe_setpoint = 23.0
    min_setpoint = -100.0
    max_setpoint = 700.0

    async def set_setpoint(self, value: float) -> None:
        """Program the setpoint (degC) and switch the heating on."""
        if not self.min_setpoint <= value <= self.max_setpoint:
            raise InstrumentError(
                f"{self.name}: setpoint {value:g} C outside {self.min_setpoint:g}..{self.max_setpoint:g} C")
        command = f"SOUR:SPO {value:.6g}"
        await self.transport.write(command)
        await self.check_errors(command)
        await self.transport.write("OUTP:STAT 1")

    async def setpoint(self) -> float:
        reply = await self.transport.query("SOUR:SPO?")
        return self._number(reply, "SOUR:SPO?")

    async def read_value(self) -> float:
        """The control sensor's temperature, degC (`SOUR:SENS:DATA?`)."""
        return self._number(await self.transport.query("SOUR:SENS:DATA?"), "SOUR:SENS:DATA?")

    temperature = read_value

    async def set_stability_limit(self, limit: float) -> None:
        if limit <= 0:
            raise InstrumentError(f"{self.name}: stability limit must be positive, got {limit:g}")
        command = f"SOUR:STAB:LIM {limit:.6g}"
        await self.transport.write(command)
        await self.check_errors(command)

    async def is_stable(self) -> bool | None:
        reply = (await self.transport.query("SOUR:STAB:TEST?")).strip()
        if reply not in ("0", "1"):
            raise InstrumentError(f"{self.name}: unreadable reply {reply!r} to 'SOUR:STAB:TEST?'")
        return reply == "1"

    async def heating(self, on: bool) -> None:
        await self.transport.write(f"OUTP:STAT {1 if on else 0}")

    async def safe_state(self) -> None:
        """Heating off, then the setpoint to the safe (ambient) value; confirmed by `OUTP:STAT?`."""
        await self.transport.write("OUTP:STAT 0")
        await self.transport.write(f"SOUR:SPO {self.safe_setpoint:.6g}")
        if (await self.transport.query("OUTP:STAT?")).strip() != "0":
            raise InstrumentError(f"{self.name}: heating still on after OUTP:STAT 0")

    def _number(self, reply: str, command: str) -> float:
        try:
            return float(reply)
        except ValueError as exc:
            raise InstrumentError(f"{self.name}: unreadable reply {reply!r} to {command!r}") from exc
