"""Seeds that depend only on what they describe, never on call order or process.

A simulated standard must show the same deviation at 10 V today, after a restart and in
the other process of a demo, or results could not be compared run to run. Python's `hash`
is salted per process, so seeds are derived from SHA-256 of the parts instead.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from the textual form of `parts` (same parts, same seed, everywhere)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def stable_rng(*parts: object) -> np.random.Generator:
    """A numpy generator seeded by `stable_seed(*parts)`."""
    return np.random.default_rng(stable_seed(*parts))


def draw_certified_errors(points: tuple[tuple[float, float, float], ...], k: float, seed: int,
                          *key: object) -> tuple[tuple[float, float], ...]:
    """A simulated standard's true error at each certificate point: what the certificate says
    (-correction) plus the deviation it allows, drawn ~ Normal(0, U/k), seeded per point, so one
    world always has the same standard and a fresh seed is a fresh one, honest at its stated rate."""
    drawn = []
    for at, correction, expanded in points:
        rng = stable_rng(seed, *key, f"{at:.6g}")
        drawn.append((at, -correction + float(rng.normal(0.0, expanded / k))))
    return tuple(drawn)
