"""What a procedure is given by whoever runs it.

Procedures never import the runner: the runner hands them this context, through which they
reach instruments, time, storage and the operator.
"""

from __future__ import annotations

from typing import Protocol

from daq.clock import Clock
from daq.reading import Reading
from daq.stability import StabilityCheck
from drivers.capabilities import Meter, Source


class OperatorDeclined(Exception):
    """The operator answered no to a prompt the procedure cannot continue without."""


class PointContext(Protocol):
    clock: Clock
    source: Source
    meter: Meter

    async def record(self, reading: Reading) -> None:
        """Store one raw reading of this attempt (batched and committed by the runner)."""
        ...

    def show(self, phase: str, check: StabilityCheck | None = None) -> None:
        """Report progress: the phase of the point and, while settling, the latest stability check."""
        ...

    async def confirm(self, question: str) -> bool:
        """Ask the operator; the answer is journalled with the run."""
        ...
