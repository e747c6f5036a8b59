"""Fluke 5520A/5522A-class multifunction calibrator, DC voltage.

Facts the driver relies on: `OUT 10 V` sets the output, `OPER`/`STBY` switch it,
`ISR?` bit 12 is SETTLED and bit 0 is OPERATE, errors come from `ERR?` as `code,text`, and
any output above 33 V drops the instrument to standby until `OPER` is sent again.
"""

from __future__ import annotations

from daq.errors import InstrumentError
from drivers.scpi import ScpiInstrument

ISR_OPERATE = 1 << 0
ISR_SETTLED = 1 << 12
HAZARDOUS_VOLTS = 33.0

_UNIT_WORDS = {"V": "V", "MV": "MV", "UV": "UV"}
_SCALE_TO_V = {"V": 1.0, "mV": 1e-3, "uV": 1e-6, "µV": 1e-6}


class Calibrator5522A(ScpiInstrument):
    error_query = "ERR?"
    max_output = 1020.0
    functions = {"dcv": "V"}

    async def set_output(self, value: float, unit: str) -> None:
        """Set a DC voltage; the output stays in whatever operate state the instrument is in."""
        try:
            volts = value * _SCALE_TO_V[unit]
        except KeyError as exc:
            raise InstrumentError(f"{self.name}: DC output in {unit!r} not supported; use V, mV or uV") from exc
        if abs(volts) > self.max_output:
            raise InstrumentError(f"{self.name}: {volts:g} V is beyond the calibrator's {self.max_output:g} V")
        await self.transport.write(f"OUT {volts:.9g} V")
        await self.check_errors(f"OUT {volts:.9g} V")

    async def operate(self) -> None:
        await self.transport.write("OPER")
        if await self.transport.query("OPER?") != "1":
            await self.check_errors("OPER")
            raise InstrumentError(f"{self.name}: did not enter operate")

    async def standby(self) -> None:
        """Standby, confirmed: the OPER? query also makes sure the STBY has been acted on."""
        await self.transport.write("STBY")
        await self._confirm_standby("STBY")

    async def safe_state(self) -> None:
        """Standby first, then zero, so a reconnect never finds a live high voltage; then confirmed."""
        await self.transport.write("STBY")
        await self.transport.write("OUT 0 V")
        await self._confirm_standby("safe state")

    async def _confirm_standby(self, after: str) -> None:
        if await self.transport.query("OPER?") != "0":
            raise InstrumentError(f"{self.name}: still in operate after {after}")

    async def is_operating(self) -> bool:
        return await self.transport.query("OPER?") == "1"

    async def status_register(self) -> int:
        return int(await self.transport.query("ISR?"))

    async def is_settled(self) -> bool | None:
        isr = await self.status_register()
        return bool(isr & ISR_SETTLED) and bool(isr & ISR_OPERATE)

    async def output(self) -> tuple[float, str]:
        fields = (await self.transport.query("OUT?")).split(",")
        return float(fields[0]), fields[1].strip() if len(fields) > 1 else "V"
