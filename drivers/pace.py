"""Druck PACE 5000/6000-class pressure controllers (raw TCP port 5025 or RS-232), as a `Controller`.

Every PACE reply echoes the command's header: `:SENS:PRES?` -> `:SENS:PRES 10.00012`. The
driver checks the echo, so a late reply to another query (after a timeout) is recognised
instead of being taken as a pressure.

- `set_setpoint(v)`: `:SOUR:PRES v` in the controller's unit (`unit`, set with `:UNIT:PRES` on
  connect), the error queue checked, then `:OUTP:STAT 1`.
- `is_stable()`: the in-limits flag of `:SENS:PRES:INL?` -> `:SENS:PRES:INL 10.00012, 1`,
  which means only "inside the instrument's band for its in-limits time"
  (`set_in_limits(band, seconds)`: `:SOUR:PRES:INL`, `:SOUR:PRES:INL:TIME`); procedures require
  the flag and their own statistical criterion.
- `safe_state()`: `:OUTP:STAT 0`, then vent (`:SOUR:PRES:LEV:IMM:AMPL:VENT 1`), confirmed by
  `:OUTP:STAT?` -> 0, `...:VENT?` -> 1 (venting) or 2 (vented), and an empty error queue.
  The vent status codes (0 idle, 1 venting, 2 complete) are as recalled from the PACE manual.
"""

from __future__ import annotations

from daq.errors import InstrumentError
from drivers.scpi import ScpiInstrument

VENT_COMMAND = ":SOUR:PRES:LEV:IMM:AMPL:VENT"
VENT_IDLE, VENT_VENTING, VENT_DONE = 0, 1, 2
#: Units the driver may select, as the PACE spells them.
UNITS = ("BAR", "MBAR", "HPA", "KPA", "MPA", "PA", "PSI")


class PaceController(ScpiInstrument):
    """A PACE-class pressure controller (gauge mode) as a `Controller`, in `unit` (default bar)."""

    error_query = ":SYST:ERR?"
    unit = "BAR"
    #: Setpoint limits in `unit`; set them from the module's range before use.
    min_setpoint = -1.0
    max_setpoint = 210.0

    async def connect(self) -> None:
        await super().connect()
        await self.set_unit(self.unit)

    async def set_unit(self, unit: str) -> None:
        name = unit.strip().upper()
        if name not in UNITS:
            raise InstrumentError(f"{self.name}: unknown pressure unit {unit!r}; use one of {', '.join(UNITS)}")
        command = f":UNIT:PRES {name}"
        await self.transport.write(command)
        await self.check_errors(command)
        self.unit = name

    async def errors(self) -> list[str]:
        """Drain the error queue (`:SYST:ERR -113,"Undefined header"`); an empty list means no error."""
        found: list[str] = []
        for _ in range(32):
            reply = self._echoed(await self.transport.query(self.error_query), ":SYST:ERR", self.error_query)
            code = reply.split(",", 1)[0].strip()
            if code in ("0", "+0"):
                break
            found.append(reply)
        return found

    async def set_setpoint(self, value: float) -> None:
        """Program the setpoint (in `unit`) and switch the control on."""
        if not self.min_setpoint <= value <= self.max_setpoint:
            raise InstrumentError(f"{self.name}: setpoint {value:g} {self.unit} outside "
                                  f"{self.min_setpoint:g}..{self.max_setpoint:g} {self.unit}")
        command = f":SOUR:PRES {value:.8g}"
        await self.transport.write(command)
        await self.check_errors(command)
        await self.transport.write(":OUTP:STAT 1")

    async def setpoint(self) -> float:
        return self._number(await self._query(":SOUR:PRES?"), ":SOUR:PRES?")

    async def read_value(self) -> float:
        """The controller's own sensor, in `unit` (`:SENS:PRES?`)."""
        return self._number(await self._query(":SENS:PRES?"), ":SENS:PRES?")

    pressure = read_value

    async def in_limits(self) -> tuple[float, bool]:
        """(reading, in-limits flag) from `:SENS:PRES:INL?`."""
        reply = await self._query(":SENS:PRES:INL?")
        value, sep, flag = reply.partition(",")
        if not sep or flag.strip() not in ("0", "1"):
            raise InstrumentError(f"{self.name}: unreadable reply {reply!r} to ':SENS:PRES:INL?'")
        return self._number(value, ":SENS:PRES:INL?"), flag.strip() == "1"

    async def is_stable(self) -> bool | None:
        return (await self.in_limits())[1]

    async def set_in_limits(self, band: float, seconds: float) -> None:
        """The instrument's own stability test: within `band` (in `unit`) for `seconds`."""
        if band <= 0 or seconds < 0:
            raise InstrumentError(f"{self.name}: in-limits band must be > 0 and time >= 0, got {band:g}, {seconds:g}")
        for command in (f":SOUR:PRES:INL {band:.8g}", f":SOUR:PRES:INL:TIME {seconds:.8g}"):
            await self.transport.write(command)
            await self.check_errors(command)

    async def output_on(self) -> bool:
        return (await self._query(":OUTP:STAT?")).strip() == "1"

    async def vent_status(self) -> int:
        """0 idle, 1 venting, 2 vent complete."""
        reply = (await self._query(f"{VENT_COMMAND}?")).strip()
        if reply not in ("0", "1", "2"):
            raise InstrumentError(f"{self.name}: unreadable reply {reply!r} to '{VENT_COMMAND}?'")
        return int(reply)

    async def safe_state(self) -> None:
        """Control off, then vent to atmosphere; confirmed by the output state, the vent status and the queue."""
        await self.transport.write(":OUTP:STAT 0")
        await self.transport.write(f"{VENT_COMMAND} 1")
        if await self.output_on():
            raise InstrumentError(f"{self.name}: output still on after ':OUTP:STAT 0'")
        status = await self.vent_status()
        if status not in (VENT_VENTING, VENT_DONE):
            raise InstrumentError(f"{self.name}: not venting after '{VENT_COMMAND} 1' (status {status})")
        await self.check_errors(f"{VENT_COMMAND} 1")

    async def _query(self, command: str) -> str:
        """Query and strip the echoed header (the command's header without `?`)."""
        return self._echoed(await self.transport.query(command), command.rstrip("?"), command)

    def _echoed(self, reply: str, header: str, command: str) -> str:
        text = reply.strip()
        head, _, rest = text.partition(" ")
        if head.upper() != header.upper() or not rest.strip():
            raise InstrumentError(f"{self.name}: reply {reply!r} to {command!r} does not echo {header!r}")
        return rest.strip()

    def _number(self, text: str, command: str) -> float:
        try:
            return float(text)
        except ValueError as exc:
            raise InstrumentError(f"{self.name}: unreadable value {text!r} in the reply to {command!r}") from exc
