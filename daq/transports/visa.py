"""VISA through pyvisa, for any resource string (GPIB, USB, VXI-11, serial, sockets).

PyVISA has no async API and blocks; each instrument gets its own one-thread executor. The
default pool (cpu + 4 threads) would serialise a bench of many instruments.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from daq.errors import TransportError, TransportTimeout


class VisaTransport:
    def __init__(
        self,
        resource: str,
        *,
        timeout: float = 5.0,
        backend: str = "@py",
        read_termination: str = "\n",
        write_termination: str = "\n",
    ) -> None:
        self.resource = resource
        self.timeout = timeout
        self.backend = backend
        self.read_termination = read_termination
        self.write_termination = write_termination
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"visa:{resource}")
        self._lock = asyncio.Lock()
        self._rm: Any = None
        self._inst: Any = None

    def _open_blocking(self) -> Any:
        import pyvisa

        if self._inst is None:
            self._rm = pyvisa.ResourceManager(self.backend)
            inst = self._rm.open_resource(self.resource)
            inst.timeout = int(self.timeout * 1000)
            inst.read_termination = self.read_termination
            inst.write_termination = self.write_termination
            self._inst = inst
        return self._inst

    def _call(self, op: str, command: str) -> str:
        import pyvisa

        try:
            inst = self._open_blocking()
            if op == "write":
                inst.write(command)
                return ""
            return str(inst.query(command)).rstrip("\r\n")
        except pyvisa.errors.VisaIOError as exc:
            if exc.abbreviation == "VI_ERROR_TMO":
                self._close_blocking()
                raise TransportTimeout(f"{self.resource}: no reply to {command!r} within {self.timeout} s") from exc
            self._close_blocking()
            raise TransportError(f"{self.resource}: {exc}") from exc
        except (OSError, ValueError) as exc:
            self._close_blocking()
            raise TransportError(f"{self.resource}: {exc}") from exc

    def _close_blocking(self) -> None:
        inst, self._inst = self._inst, None
        rm, self._rm = self._rm, None
        for obj in (inst, rm):
            if obj is not None:
                try:
                    obj.close()
                except Exception:  # noqa: BLE001 - closing a broken session must not mask the cause
                    pass

    async def write(self, command: str) -> None:
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._call, "write", command)

    async def query(self, command: str) -> str:
        async with self._lock:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, "query", command)

    async def close(self) -> None:
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_blocking)
        self._executor.shutdown(wait=False)
