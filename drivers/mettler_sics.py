"""Mettler Toledo balances over MT-SICS (RS-232 9600 8N1, every command and reply closed by CR LF).

Every MT-SICS command is answered at once with one line whose first word echoes the command:
`S` -> `S S   100.0000 g` (stable), `S I` (busy or no stability within the balance's timeout),
`S +` / `S -` (over/underload); `SI` -> `S S ...` or `S D ...` (dynamic); `Z` -> `Z A`;
`T` -> `T S <tare> g`; `I4` -> `I4 A "<serial>"`. A command the balance cannot take is answered
with a general error instead: `ES` (syntax: not understood), `ET` (transmission: parity,
framing, a corrupted line), `EL` (logical: understood but not executable). There is no error
queue to poll: each reply is checked as it comes.

The serial number (`I4`) is checked against the bench file's on connect, as for SCPI
instruments. There is no `safe_state()`: a balance energises nothing, so the runner has
nothing to put safe.

Termination: the registry opens transports with LF; this driver sets its transport to write
CR LF as MT-SICS requires, and reads up to LF (the transports strip the CR).
"""

from __future__ import annotations

import re

from daq.errors import InstrumentError
from daq.transports.base import Transport
from drivers.capabilities import BalanceNotStable, BalanceOverload, BalanceUnderload
from drivers.scpi import ScpiInstrument

GENERAL_ERRORS = {
    "ES": "syntax error (the balance did not recognise the command)",
    "ET": "transmission error (parity, framing or a corrupted command on the line)",
    "EL": "logical error (the command was understood but cannot be executed)",
}
_WEIGHT = re.compile(r"^S ([SD])\s+([-+]?\d+(?:\.(\d*))?)\s+(\S+)$")
_SERIAL = re.compile(r'^I4 A "([^"]*)"$')
_TARE = re.compile(r"^T S\s+([-+]?\d+(?:\.\d*)?)\s+(\S+)$")


def _use_crlf(transport: Transport) -> None:
    """MT-SICS needs CR LF after each command; the serial/TCP/VISA transports take it as an attribute."""
    current = getattr(transport, "write_termination", None)
    if isinstance(current, bytes):
        transport.write_termination = b"\r\n"  # type: ignore[attr-defined]
    elif isinstance(current, str):
        transport.write_termination = "\r\n"  # type: ignore[attr-defined]


class MettlerSicsBalance(ScpiInstrument):
    """An MT-SICS balance (XPR/XS/MS class): the `Balance` capability, masses in g.

    A subclass of the SCPI base only for the registry's sake (name, transport, expected serial,
    `close`); every command it sends is MT-SICS.
    """

    def __init__(self, name: str, transport: Transport, expected_serial: str | None = None) -> None:
        super().__init__(name, transport, expected_serial)
        self.serial = ""
        #: Scale interval d in g, learnt from the decimals of the readings (until then this default).
        self.scale_interval = 0.0001
        _use_crlf(transport)

    async def _query(self, command: str) -> str:
        reply = (await self.transport.query(command)).strip()
        if reply in GENERAL_ERRORS:
            raise InstrumentError(f"{self.name}: {reply} {GENERAL_ERRORS[reply]} in reply to {command!r}")
        return reply

    def _unreadable(self, command: str, reply: str) -> InstrumentError:
        return InstrumentError(f"{self.name}: unreadable reply {reply!r} to {command!r}")

    async def identify(self) -> str:
        """`I4`: the serial number, as `METTLER TOLEDO,<serial>`."""
        reply = await self._query("I4")
        m = _SERIAL.match(reply)
        if not m:
            raise self._unreadable("I4", reply)
        self.serial = m.group(1)
        self.idn = f"METTLER TOLEDO,{self.serial}"
        return self.idn

    async def connect(self) -> None:
        """Check the serial number against the bench file's (nothing is reset or zeroed)."""
        await self.identify()
        if self.expected_serial is not None and self.serial != self.expected_serial:
            raise InstrumentError(
                f"{self.name}: serial number {self.serial!r} from I4 does not match the bench file's "
                f"{self.expected_serial!r}; is the right balance at {self.transport.resource}?"
            )

    async def errors(self) -> list[str]:
        return []  # MT-SICS has no error queue: every reply is checked as it arrives

    def _weight(self, command: str, reply: str) -> tuple[float, bool]:
        if reply == "S +":
            raise BalanceOverload(f"{self.name}: overload (S +): more than the capacity is on the pan")
        if reply == "S -":
            raise BalanceUnderload(f"{self.name}: underload (S -): is the pan in place?")
        if reply == "S I":
            raise BalanceNotStable(
                f"{self.name}: no stable weight (S I): the balance was busy or did not settle within its timeout")
        m = _WEIGHT.match(reply)
        if not m:
            raise self._unreadable(command, reply)
        if m.group(4) != "g":
            raise InstrumentError(f"{self.name}: weight in {m.group(4)!r}, expected g: {reply!r}")
        decimals = len(m.group(3) or "")
        self.scale_interval = 10.0 ** -decimals
        return float(m.group(2)), m.group(1) == "S"

    async def read_stable(self) -> float:
        """`S`: the next stable net weight in g (the balance holds the reply until it is stable)."""
        value, stable = self._weight("S", await self._query("S"))
        if not stable:
            raise self._unreadable("S", f"S D {value}")
        return value

    async def read_immediate(self) -> tuple[float, bool]:
        """`SI`: the net weight now, g, and the balance's stable flag."""
        return self._weight("SI", await self._query("SI"))

    async def zero(self) -> None:
        """`Z`: zero (waits for stability; clears the tare)."""
        reply = await self._query("Z")
        if reply == "Z A":
            return
        if reply == "Z I":
            raise BalanceNotStable(f"{self.name}: not zeroed (Z I): busy or no stability within its timeout")
        if reply in ("Z +", "Z -"):
            side = "above" if reply == "Z +" else "below"
            raise InstrumentError(f"{self.name}: not zeroed ({reply}): the load is {side} the zero-setting range; "
                                  "clear the pan")
        raise self._unreadable("Z", reply)

    async def tare(self) -> float:
        """`T`: tare the present load (waits for stability); the tare weight, g."""
        reply = await self._query("T")
        m = _TARE.match(reply)
        if m and m.group(2) == "g":
            return float(m.group(1))
        if reply == "T I":
            raise BalanceNotStable(f"{self.name}: not tared (T I): busy or no stability within its timeout")
        if reply == "T +":
            raise BalanceOverload(f"{self.name}: not tared (T +): beyond the taring range")
        if reply == "T -":
            raise BalanceUnderload(f"{self.name}: not tared (T -): below the taring range")
        raise self._unreadable("T", reply)

    async def clear_tare(self) -> None:
        """`TAC`: clear the tare."""
        reply = await self._query("TAC")
        if reply != "TAC A":
            raise self._unreadable("TAC", reply)

    def resolution(self) -> float:
        return self.scale_interval
