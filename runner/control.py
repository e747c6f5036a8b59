"""Pause, abort and operator prompts: how people steer a run while it goes.

Abort cancels the running point at once (even mid-settle); the engine's cleanup then puts
every source in its safe state before it writes anything else.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class RunAborted(Exception):
    pass


class RunControl:
    def __init__(self) -> None:
        self._running = asyncio.Event()
        self._running.set()
        self.abort_reason: str | None = None
        self._task: asyncio.Task[object] | None = None

    def bind(self, task: asyncio.Task[object]) -> None:
        self._task = task

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def abort(self, reason: str = "aborted by operator") -> None:
        """Request an abort; the first request cancels the running point, later ones change nothing."""
        if self.abort_reason is not None:
            return
        self.abort_reason = reason
        self._running.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait_if_paused(self) -> None:
        await self._running.wait()
        if self.abort_reason is not None:
            raise RunAborted(self.abort_reason)


class Operator(Protocol):
    async def confirm(self, question: str) -> bool: ...


class AutoOperator:
    """Answers every prompt with a fixed answer (demo, tests, unattended runs started with --yes)."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.asked: list[str] = []

    async def confirm(self, question: str) -> bool:
        self.asked.append(question)
        return self.answer


class LiveDisplay(Protocol):
    def suspend(self) -> None: ...

    def restore(self) -> None: ...


class TerminalOperator:
    """Asks at the terminal; the blocking prompt runs in a thread so telemetry tasks keep going.

    The live progress display is suspended while the question is on screen, or it would
    overwrite it.
    """

    def __init__(self, display: LiveDisplay | None = None) -> None:
        self.display = display

    async def confirm(self, question: str) -> bool:
        from rich.prompt import Confirm

        if self.display is not None:
            self.display.suspend()
        try:
            return await asyncio.to_thread(Confirm.ask, f"[bold yellow]{question}[/]", default=False)
        finally:
            if self.display is not None:
                self.display.restore()
