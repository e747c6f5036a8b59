"""Eurotherm 3200-class PID temperature controller over Modbus TCP or RTU (a `Controller`).

Facts the driver relies on (holding registers, protocol addresses): 1 PV, 2 target setpoint,
3 output %, 5 working setpoint, as scaled int16 with the instrument's decimal-point setting
(one decimal by default: 253 = 25.3 degC); the same parameters as IEEE float32 at
0x8000 + 2*addr, high word first. The driver uses the float registers by default (full
resolution, independent of the display's decimal point); `use_float=False` uses the scaled
ones with `decimals` places, for gateways that cannot reach 0x8000.

Safe state, as a calibration lab expects it from a heater controller: the target setpoint
goes to `safe_setpoint` (ambient, 20 degC by default), so the oven or block cools to a
temperature that can be touched and nothing is left heating unattended. Not 0 degC: on a
controller that also drives cooling that would chill the load and wet it with condensation.
Manual mode with 0 % output is not used: the mode register differs between 3200 firmware
versions and a controller left in manual does not come back by itself on the next run.
"""

from __future__ import annotations

from daq.errors import InstrumentError
from daq.transports.modbus import ModbusTransport

PV = 1
TARGET_SP = 2
OUTPUT = 3
WORKING_SP = 5
FLOAT_BASE = 0x8000


def float_address(parameter: int) -> int:
    return FLOAT_BASE + 2 * parameter


class Eurotherm3200:
    """Satisfies `drivers.capabilities.Controller` (plus `read_pv`, `output`, `working_setpoint`)."""

    unit = "degC"

    def __init__(
        self,
        name: str,
        transport: ModbusTransport,
        expected_serial: str | None = None,
        *,
        safe_setpoint: float = 20.0,
        use_float: bool = True,
        decimals: int = 1,
        setpoint_limits: tuple[float, float] = (-50.0, 500.0),
    ) -> None:
        self.name = name
        self.transport = transport
        self.expected_serial = expected_serial  # the 3200 has no serial number over Modbus: kept for the record
        self.safe_setpoint = safe_setpoint
        self.use_float = use_float
        self.scale = 10.0 ** -decimals
        self.setpoint_limits = setpoint_limits
        self.idn = ""

    @property
    def max_output(self) -> float:
        return self.setpoint_limits[1]

    async def _read(self, parameter: int) -> float:
        if self.use_float:
            return await self.transport.read_float32(float_address(parameter))
        return round(await self.transport.read_int(parameter, scale=self.scale), 6)

    async def identify(self) -> str:
        """There is no *IDN? on Modbus: a PV read proves the unit answers at this address."""
        pv = await self._read(PV)
        self.idn = f"Eurotherm,3200,{self.expected_serial or ''},{self.transport.resource} (PV {pv:g} degC)"
        return self.idn

    async def connect(self) -> None:
        await self.identify()

    async def set_setpoint(self, value: float) -> None:
        low, high = self.setpoint_limits
        if not low <= value <= high:
            raise InstrumentError(f"{self.name}: setpoint {value:g} degC outside {low:g}..{high:g} degC")
        if self.use_float:
            await self.transport.write_float32(float_address(TARGET_SP), value)
        else:
            await self.transport.write_int(TARGET_SP, value, scale=self.scale)

    async def setpoint(self) -> float:
        """The target setpoint."""
        return await self._read(TARGET_SP)

    async def working_setpoint(self) -> float:
        """Where the controller is heading now (differs from the target while ramping)."""
        return await self._read(WORKING_SP)

    async def read_pv(self) -> float:
        return await self._read(PV)

    async def read_value(self) -> float:
        return await self.read_pv()

    async def output(self) -> float:
        """Output power, %."""
        return await self._read(OUTPUT)

    async def is_stable(self) -> bool | None:
        """The 3200 has no stable flag in this register map: the software criterion decides."""
        return None

    async def safe_state(self) -> None:
        """Target setpoint to `safe_setpoint` (ambient), read back: a write that did not take is an error."""
        await self.set_setpoint(self.safe_setpoint)
        now = await self.setpoint()
        if abs(now - self.safe_setpoint) > 0.11:  # one display step of the scaled register
            raise InstrumentError(f"{self.name}: safe setpoint {self.safe_setpoint:g} not taken (reads {now:g})")

    async def close(self) -> None:
        await self.transport.close()
