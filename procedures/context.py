"""What a procedure is given by whoever runs it.

Procedures never import the runner: the runner hands them this context, through which they
reach instruments, time, storage and the operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from daq.clock import Clock
from daq.reading import Reading
from daq.stability import StabilityCheck


class OperatorDeclined(Exception):
    """The operator answered no to a prompt the procedure cannot continue without."""


@dataclass(frozen=True)
class OperatorTask:
    """Something the operator must do with their hands (place a weight, connect a probe).

    `text` is what a person is told; `instrument`, `action` and `arguments` say the same to a
    simulated operator, who does it to the simulated instrument (`perform(action, **arguments)`).
    """

    text: str
    instrument: str
    action: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


class PointContext(Protocol):
    clock: Clock
    instruments: Mapping[str, Any]
    """The connected drivers, by their name in the bench file."""

    async def record(self, reading: Reading) -> None:
        """Store one raw reading of this attempt (batched and committed by the runner)."""
        ...

    def show(self, phase: str, check: StabilityCheck | None = None) -> None:
        """Report progress: the phase of the point and, while settling, the latest stability check."""
        ...

    async def confirm(self, question: str) -> bool:
        """Ask the operator; the answer is journalled with the run."""
        ...

    async def instruct(self, task: OperatorTask) -> None:
        """Have the operator do `task` and wait until it is done (journalled); `OperatorDeclined` if
        they will not. Sources are in their safe state while a person works at the bench."""
        ...
