"""Serial ports through pyserial-asyncio-fast (the maintained successor of pyserial-asyncio).

Same lock-and-discard discipline as TCP: after a timeout the port is closed and reopened so
a late reply cannot answer the next query.
"""

from __future__ import annotations

import asyncio

from daq.errors import TransportError, TransportTimeout


class SerialTransport:
    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        timeout: float = 5.0,
        read_termination: str = "\n",
        write_termination: str = "\n",
        resource: str | None = None,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self.read_termination = read_termination.encode()
        self.write_termination = write_termination.encode()
        self.resource = resource or f"ASRL{port}::INSTR"
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _ensure_open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._writer is None or self._reader is None:
            import serial_asyncio_fast

            try:
                self._reader, self._writer = await serial_asyncio_fast.open_serial_connection(
                    url=self.port, baudrate=self.baudrate
                )
            except (OSError, ValueError) as exc:
                raise TransportError(f"{self.resource}: cannot open serial port ({exc})") from exc
        return self._reader, self._writer

    async def _drop(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()

    async def write(self, command: str) -> None:
        async with self._lock:
            _, writer = await self._ensure_open()
            writer.write(command.encode() + self.write_termination)
            await writer.drain()

    async def query(self, command: str) -> str:
        async with self._lock:
            reader, writer = await self._ensure_open()
            try:
                writer.write(command.encode() + self.write_termination)
                await writer.drain()
                async with asyncio.timeout(self.timeout):
                    line = await reader.readuntil(self.read_termination)
            except TimeoutError as exc:
                await self._drop()
                raise TransportTimeout(f"{self.resource}: no reply to {command!r} within {self.timeout} s") from exc
            except (OSError, asyncio.IncompleteReadError) as exc:
                await self._drop()
                raise TransportError(f"{self.resource}: query {command!r} failed: {exc}") from exc
            return line[: -len(self.read_termination)].decode(errors="replace").rstrip("\r")

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
