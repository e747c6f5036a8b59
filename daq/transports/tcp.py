"""Raw TCP SCPI on asyncio streams: the fast path for `TCPIP::host::port::SOCKET`.

One lock per instrument keeps query/reply pairs whole. After a timeout the connection is
dropped and reopened on next use: a late reply would otherwise be taken as the answer to
the next query, which is the classic silent bug of socket SCPI.
"""

from __future__ import annotations

import asyncio

from daq.errors import TransportError, TransportTimeout


class TcpSocketTransport:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 5.0,
        read_termination: str = "\n",
        write_termination: str = "\n",
        resource: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.read_termination = read_termination.encode()
        self.write_termination = write_termination.encode()
        self.resource = resource or f"TCPIP::{host}::{port}::SOCKET"
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.reconnects = 0

    async def _ensure_open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._writer is None or self._reader is None or self._writer.is_closing():
            try:
                async with asyncio.timeout(self.timeout):
                    self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            except (OSError, TimeoutError) as exc:
                raise TransportError(f"{self.resource}: cannot connect ({exc or 'timeout'})") from exc
        assert self._reader is not None and self._writer is not None
        return self._reader, self._writer

    async def _drop(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ConnectionError):
                pass
        self.reconnects += 1

    async def write(self, command: str) -> None:
        async with self._lock:
            _, writer = await self._ensure_open()
            try:
                writer.write(command.encode() + self.write_termination)
                await writer.drain()
            except (OSError, ConnectionError) as exc:
                await self._drop()
                raise TransportError(f"{self.resource}: write {command!r} failed: {exc}") from exc

    async def query(self, command: str) -> str:
        async with self._lock:
            reader, writer = await self._ensure_open()
            try:
                writer.write(command.encode() + self.write_termination)
                await writer.drain()
                async with asyncio.timeout(self.timeout):  # cheaper than wait_for: no extra task per query
                    line = await reader.readuntil(self.read_termination)
            except TimeoutError as exc:
                await self._drop()
                raise TransportTimeout(f"{self.resource}: no reply to {command!r} within {self.timeout} s") from exc
            except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                await self._drop()
                raise TransportError(f"{self.resource}: query {command!r} failed: {exc}") from exc
            return line[: -len(self.read_termination)].decode(errors="replace").rstrip("\r")

    async def close(self) -> None:
        async with self._lock:
            if self._writer is not None:
                await self._drop()
                self.reconnects -= 1
