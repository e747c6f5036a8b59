"""The wire side of a simulated instrument: a line server over TCP or a pseudo-terminal.

Drivers must be tested against real transports, not mocks: a real socket or pty shows the
termination, buffering, reconnect and late-reply bugs a mock hides. Each server feeds
complete lines to one `ScpiInstrument`; a line may hold several commands separated by `;`,
whose query replies go back joined by `;` in one line, as an IEEE 488.2 response message.

What the server saw stays observable for tests: how many connections it accepted and the
(clock time, command) log of everything received.

Faults armed on the instrument (`instrument.faults`, see `simulators.faults`) are applied
here, command by command, the same way on both transports where the wire allows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections import deque
from dataclasses import dataclass

from simulators.faults import GARBAGE_REPLY, QUERY_INTERRUPTED
from simulators.scpi_instrument import ScpiInstrument, split_header, split_outside_quotes

TOO_MUCH_DATA = (-223, "Too much data")
MAX_LINE = 65536


@dataclass(frozen=True)
class LineOutcome:
    """What to send back for one line: the reply (None: nothing) and how a fault shapes it.

    action: "reply" (as usual), "drop" / "power_cycle" (the line is lost, the connection
    goes), "truncate" (half the reply, then the line goes dead), "delay" (the reply is held
    back `delay` seconds of wall time).
    """

    reply: str | None
    action: str = "reply"
    delay: float = 0.0


def _truncated(data: bytes) -> bytes:
    """The first half of a reply, never its terminator."""
    return data[: max(1, (len(data) - 1) // 2)]


class ScpiLineExecutor:
    """Runs received lines against an instrument; shared by the TCP and pty servers."""

    def __init__(
        self, instrument: ScpiInstrument, *, latency: float | None = None, log_limit: int = 100_000
    ) -> None:
        self.instrument = instrument
        self.latency = instrument.reply_latency if latency is None else latency
        self.commands: deque[tuple[float, str]] = deque(maxlen=log_limit)
        self.replies_sent = 0
        #: Client connections accepted so far; a pseudo-terminal is one permanent line.
        self.connections_accepted = 0

    @property
    def open_connections(self) -> int:
        return 0

    async def execute_line(self, raw: bytes | str) -> str | None:
        """Execute every command of one line; the joined query replies, or None if none."""
        return (await self.execute(raw)).reply

    async def execute(self, raw: bytes | str) -> LineOutcome:
        """Execute every command of one line, applying any fault armed on the instrument."""
        line = raw.decode("ascii", errors="replace") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n").replace("\r", "")
        replies: list[str] = []
        action, delay = "reply", 0.0
        instrument = self.instrument
        async with instrument.lock:
            for command in split_outside_quotes(line, ";"):
                command = command.strip()
                if not command:
                    continue
                self.commands.append((instrument.clock.now(), command))
                fault = instrument.faults.take(command)
                kind = fault.kind if fault is not None else ""
                if fault is not None and kind in ("drop", "power_cycle"):
                    if kind == "power_cycle":
                        instrument.power_on()
                    return LineOutcome(None, kind)
                if fault is not None and kind == "error":
                    instrument.errors.push(fault.code, fault.message)
                reply = await instrument.handle(command)
                if reply is not None:
                    header = split_header(command)[0].upper()
                    if kind == "stuck":
                        reply = instrument.last_replies.get(header, reply)
                    else:
                        instrument.last_replies[header] = reply
                    if kind == "garbage":
                        reply = GARBAGE_REPLY
                    replies.append(reply)
                if fault is not None and kind in ("delay", "truncate"):
                    action, delay = kind, fault.delay
            if not replies:
                return LineOutcome(None)
            if self.latency > 0:
                await instrument.clock.sleep(self.latency)
        self.replies_sent += 1
        return LineOutcome(";".join(replies), action, delay)

    def too_much_data(self) -> None:
        self.instrument.errors.push(*TOO_MUCH_DATA)


class ScpiTcpServer(ScpiLineExecutor):
    """An instrument on a raw TCP socket (`TCPIP::host::port::SOCKET`, like port 5025)."""

    def __init__(
        self,
        instrument: ScpiInstrument,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float | None = None,
        log_limit: int = 100_000,
    ) -> None:
        super().__init__(instrument, latency=latency, log_limit=log_limit)
        self.host = host
        self.requested_port = port
        self.port = port
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def resource(self) -> str:
        return f"TCPIP::{self.host}::{self.port}::SOCKET"

    @property
    def open_connections(self) -> int:
        return len(self._writers)

    async def start(self) -> ScpiTcpServer:
        """Listen; with port 0 the system picks a free port, reported in `port`/`resource`."""
        self._server = await asyncio.start_server(
            self._session, self.host, self.requested_port, limit=MAX_LINE
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        self._writers.add(writer)
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as exc:
                    if exc.partial.strip():
                        await self._answer(writer, exc.partial)
                    break
                except asyncio.LimitOverrunError as exc:
                    await reader.readexactly(exc.consumed)
                    self.too_much_data()
                    continue
                if not await self._answer(writer, line):
                    break  # a fault closed the connection
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            # Closed by `drop_connections`/`close`. Python 3.11's stream server calls
            # task.exception() on the finished session, which raises for a cancelled task.
            pass
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._sessions.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _answer(self, writer: asyncio.StreamWriter, line: bytes) -> bool:
        """Execute one line and send its reply; False when the connection must close (a fault)."""
        outcome = await self.execute(line)
        if outcome.action == "drop":
            return False
        if outcome.action == "power_cycle":
            self._drop_others(writer)
            return False
        if outcome.reply is None:
            return True
        data = outcome.reply.encode("ascii", errors="replace") + b"\n"
        if outcome.action == "truncate":
            if not writer.is_closing():
                writer.write(_truncated(data))
                await writer.drain()
            return False
        if outcome.action == "delay":
            await asyncio.sleep(outcome.delay)  # wall time: driver timeouts are wall time
        if not writer.is_closing():
            writer.write(data)
            await writer.drain()
        return True

    def _drop_others(self, keep: asyncio.StreamWriter) -> None:
        """Close every other connection (a power cycle ends them all); the caller closes its own."""
        current = asyncio.current_task()
        for writer in list(self._writers):
            if writer is not keep:
                writer.close()
        for task in list(self._sessions):
            if task is not current:
                task.cancel()

    async def drop_connections(self) -> None:
        """Close every client connection (fault injection: the instrument reboots or the link drops)."""
        for writer in list(self._writers):
            writer.close()
        for task in list(self._sessions):
            task.cancel()
        if self._sessions:
            await asyncio.gather(*self._sessions, return_exceptions=True)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self.drop_connections()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None


class ScpiPtyServer(ScpiLineExecutor):
    """An instrument on a pseudo-terminal: the client opens `path` as if it were a serial port.

    The slave end is put in raw mode and kept open by the server, so a client closing and
    reopening the port does not hang up the master side.
    """

    def __init__(
        self, instrument: ScpiInstrument, *, latency: float | None = None, log_limit: int = 100_000
    ) -> None:
        super().__init__(instrument, latency=latency, log_limit=log_limit)
        self.path = ""
        self._master = -1
        self._slave = -1
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._buffer = b""
        self._outgoing = bytearray()
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._line_arrived = asyncio.Event()

    @property
    def resource(self) -> str:
        return f"ASRL{self.path}::INSTR"

    @property
    def open_connections(self) -> int:
        return 1 if self._master >= 0 else 0

    async def start(self) -> ScpiPtyServer:
        self._loop = asyncio.get_running_loop()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._loop.add_reader(self._master, self._readable)
        self.connections_accepted = 1
        self._worker = self._loop.create_task(self._work())
        return self

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            # The pty is gone (EIO); stop watching it rather than spin on a dead descriptor.
            if self._loop is not None:
                self._loop.remove_reader(self._master)
            return
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self._inbox.put_nowait(line)
            self._line_arrived.set()
        if len(self._buffer) > MAX_LINE:
            self._buffer = b""
            self.too_much_data()

    async def _work(self) -> None:
        while True:
            line = await self._inbox.get()
            outcome = await self.execute(line)
            if outcome.reply is None or outcome.action in ("drop", "power_cycle"):
                continue  # a serial line has no connection to close: the command is just lost
            data = outcome.reply.encode("ascii", errors="replace") + b"\n"
            if outcome.action == "truncate":
                self._send(_truncated(data))  # and then silence: the driver times out
                continue
            if outcome.action == "delay" and not await self._quiet_for(outcome.delay):
                # IEEE 488.2: a new message before the reply was read discards the reply
                self.instrument.errors.push(*QUERY_INTERRUPTED)
                continue
            self._send(data)

    async def _quiet_for(self, seconds: float) -> bool:
        """Wait `seconds` of wall time; False as soon as a new line arrives."""
        self._line_arrived.clear()
        if not self._inbox.empty():
            return False
        try:
            await asyncio.wait_for(self._line_arrived.wait(), seconds)
        except TimeoutError:
            return True
        return False

    def _send(self, data: bytes) -> None:
        self._outgoing += data
        self._flush()

    def _flush(self) -> None:
        assert self._loop is not None
        while self._outgoing:
            try:
                written = os.write(self._master, self._outgoing)
            except BlockingIOError:
                break
            except OSError:
                self._outgoing.clear()
                break
            del self._outgoing[:written]
        if self._outgoing:
            self._loop.add_writer(self._master, self._flush)
        else:
            self._loop.remove_writer(self._master)

    async def close(self) -> None:
        if self._loop is not None and self._master >= 0:
            self._loop.remove_reader(self._master)
            self._loop.remove_writer(self._master)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1
