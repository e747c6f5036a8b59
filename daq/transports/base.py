"""The face every transport shows a driver: write a command, query a reply, close."""

from __future__ import annotations

from typing import Protocol


class Transport(Protocol):
    """A line-oriented message channel to one instrument.

    Implementations hold one lock per instrument, so concurrent callers never interleave a
    command with somebody else's reply.
    """

    resource: str

    async def write(self, command: str) -> None: ...

    async def query(self, command: str) -> str: ...

    async def close(self) -> None: ...
