"""Fluke 5520A/5522A-class multifunction calibrator: DC voltage, AC voltage, resistance.

Facts the driver relies on: `OUT 10 V` sets a DC output, `OUT 1 V, 1 KHZ` an AC one (RMS,
frequency in HZ/KHZ/MHZ), `OUT 100 OHM` a resistance; `OPER`/`STBY` switch it,
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
_SCALE_TO_OHM = {"ohm": 1.0, "Ω": 1.0, "OHM": 1.0, "kohm": 1e3, "kΩ": 1e3, "Mohm": 1e6, "MΩ": 1e6}
MAX_AC_VOLTS = 1020.0
MIN_AC_VOLTS = 1e-3
MAX_FREQUENCY_HZ = 500e3
MIN_FREQUENCY_HZ = 10.0
MAX_OHMS = 1100e6


class Calibrator5522A(ScpiInstrument):
    error_query = "ERR?"
    max_output = 1020.0
    max_ac_output = MAX_AC_VOLTS
    min_ac_output = MIN_AC_VOLTS
    frequency_limits = (MIN_FREQUENCY_HZ, MAX_FREQUENCY_HZ)
    max_ohms = MAX_OHMS
    functions = {"dcv": "V", "acv": "V", "ohms": "ohm"}

    async def set_output(self, value: float, unit: str, frequency: float | None = None) -> None:
        """Set a DC voltage (`unit` V, mV, uV), an AC voltage RMS at `frequency` Hz, or a resistance
        (`unit` ohm, kohm, Mohm; no frequency). The output stays in whatever operate state the
        instrument is in (the instrument itself drops to standby on a change of function)."""
        if unit in _SCALE_TO_OHM:
            if frequency is not None:
                raise InstrumentError(f"{self.name}: a resistance output takes no frequency")
            ohms = value * _SCALE_TO_OHM[unit]
            if not 0.0 <= ohms <= self.max_ohms:
                raise InstrumentError(f"{self.name}: {ohms:g} ohm is outside the calibrator's 0..{self.max_ohms:g} ohm")
            command = f"OUT {ohms:.9g} OHM"
        else:
            try:
                volts = value * _SCALE_TO_V[unit]
            except KeyError as exc:
                raise InstrumentError(f"{self.name}: output in {unit!r} not supported; "
                                      "use V, mV or uV (DC or AC) or ohm, kohm, Mohm") from exc
            if frequency is None:
                if abs(volts) > self.max_output:
                    raise InstrumentError(f"{self.name}: {volts:g} V is beyond the calibrator's {self.max_output:g} V")
                command = f"OUT {volts:.9g} V"
            else:
                if not self.min_ac_output <= volts <= self.max_ac_output:
                    raise InstrumentError(f"{self.name}: {volts:g} V AC is outside the calibrator's "
                                          f"{self.min_ac_output:g}..{self.max_ac_output:g} V")
                low, high = self.frequency_limits
                if not low <= frequency <= high:
                    raise InstrumentError(f"{self.name}: {frequency:g} Hz is outside the calibrator's "
                                          f"{low:g}..{high:g} Hz")
                command = f"OUT {volts:.9g} V, {frequency:.9g} HZ"
        await self.transport.write(command)
        await self.check_errors(command)

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
        """The programmed output and its unit as the instrument names it (`V`, `OHM`)."""
        fields = (await self.transport.query("OUT?")).split(",")
        return float(fields[0]), fields[1].strip() if len(fields) > 1 else "V"

    async def output_setting(self) -> tuple[float, str, float]:
        """The programmed output, its unit (`V`, `OHM`) and its frequency in Hz (0 for DC and ohms)."""
        fields = [f.strip() for f in (await self.transport.query("OUT?")).split(",")]
        try:
            frequency = float(fields[4]) if len(fields) > 4 else 0.0
            return float(fields[0]), fields[1] if len(fields) > 1 else "V", frequency
        except ValueError as exc:
            raise InstrumentError(f"{self.name}: unreadable reply {','.join(fields)!r} to OUT?") from exc
