"""One sample from one channel.

Readings are plain floats in the channel's unit: the hot path never touches pint. The
unit string is held once per channel and travels with the reading for storage.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reading:
    channel: str
    t: float
    value: float
    unit: str
    flag: bool | None = None
    """The instrument's own status for this sample (e.g. a settled bit), if it reports one."""
