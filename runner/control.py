"""Pause, abort and operator prompts: how people steer a run while it goes.

Abort cancels the running point at once (even mid-settle); the engine's cleanup then puts
every source in its safe state before it writes anything else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


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

    async def choose(self, question: str, options: Sequence[str]) -> str:
        """One of `options` (e.g. retry / skip / abort after repeated faults at a point)."""
        ...


class AutoOperator:
    """Answers prompts without a person (demo, tests, unattended runs started with --yes).

    `confirm` gets the fixed `answer`. `choose` takes the next of the scripted `choices`;
    when the script is used up (or an answer is not among the options) it picks `default_choice`
    if offered, else "abort" if offered, else the last option: unattended, the safe way out.
    """

    def __init__(self, answer: bool = True, choices: Sequence[str] = (), default_choice: str = "abort") -> None:
        self.answer = answer
        self.asked: list[str] = []
        self.choices = list(choices)
        self.default_choice = default_choice
        self.chosen: list[tuple[str, str]] = []  # (question, answer)

    async def confirm(self, question: str) -> bool:
        self.asked.append(question)
        return self.answer

    async def choose(self, question: str, options: Sequence[str]) -> str:
        self.asked.append(question)
        answer = self.choices.pop(0) if self.choices else self.default_choice
        if answer not in options:
            answer = self.default_choice if self.default_choice in options else \
                ("abort" if "abort" in options else options[-1])
        self.chosen.append((question, answer))
        return answer


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

    async def _ask(self, ask: Callable[[], T], fallback: T, question: str) -> T:
        """Run a blocking prompt; with nobody at the terminal (stdin closed) take the safe answer."""
        if self.display is not None:
            self.display.suspend()
        try:
            return await asyncio.to_thread(ask)
        except EOFError:
            from rich.console import Console

            Console(stderr=True).print(f"[yellow]no operator at the terminal to answer {question!r}: "
                                       f"taking {fallback!r}[/]")
            return fallback
        finally:
            if self.display is not None:
                self.display.restore()

    async def confirm(self, question: str) -> bool:
        from rich.prompt import Confirm

        return await self._ask(lambda: Confirm.ask(f"[bold yellow]{question}[/]", default=False), False, question)

    async def choose(self, question: str, options: Sequence[str]) -> str:
        from rich.prompt import Prompt

        fallback = "abort" if "abort" in options else options[-1]
        return await self._ask(lambda: Prompt.ask(f"[bold yellow]{question}[/]", choices=list(options)), fallback,
                               question)


class TerminalReadings:
    """The operator reads a gauge at the terminal (a `ManualReader`), with the live display paused."""

    def __init__(self, display: LiveDisplay | None = None) -> None:
        from rich.prompt import Prompt

        from drivers.manual_entry import TerminalManualReader

        self.display = display
        self._reader = TerminalManualReader(lambda q: Prompt.ask(f"[bold yellow]{q}[/]"))

    async def read_indication(self, prompt: str, unit: str, resolution: float) -> float:
        if self.display is not None:
            self.display.suspend()
        try:
            return await self._reader.read_indication(prompt, unit, resolution)
        finally:
            if self.display is not None:
                self.display.restore()
