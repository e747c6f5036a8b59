"""The simulated bench's side of the operator, for `daq sim` in its own process.

A run in another process asks a person to read a dial gauge or to place a weight. With the
instruments simulated, that person needs the simulated dial and hands: `daq sim` shows every
MANUAL instrument's indication (the dial, "read by eye" from this terminal) and takes typed
tasks for the simulated instruments:

    place balance R100 [centre|front|back|left|right]
    remove balance [R100]
    clear balance
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import threading
from typing import Any, TextIO

USAGE = "tasks: place INSTRUMENT WEIGHT [POSITION] | remove INSTRUMENT [WEIGHT] | clear INSTRUMENT"


def perform_typed_task(world: Any, line: str) -> str:
    """Do one typed task on the simulated world; returns what happened (or why not) as one line."""
    words = shlex.split(line)
    if not words:
        return ""
    action, args = words[0].lower(), words[1:]
    if action not in ("place", "remove", "clear", "lift_pan") or not args:
        return f"? {line.strip()!r}: {USAGE}"
    instrument = args[0]
    if instrument not in world:
        return f"? no instrument {instrument!r} on this bench"
    model = world[instrument]
    if not hasattr(model, "perform"):
        return f"? {instrument} takes no hands-on tasks"
    arguments: dict[str, Any] = {}
    if action == "place":
        if len(args) < 2:
            return f"? which weight? {USAGE}"
        arguments = {"weight": args[1], "position": args[2] if len(args) > 2 else "centre"}
    elif action == "remove" and len(args) > 1:
        arguments = {"weight": args[1]}
    try:
        model.perform(action, **arguments)
    except (ValueError, KeyError) as exc:
        return f"? {exc}"
    return f"done: {line.strip()}"


async def show_manual_indications(world: Any, bench: Any, clock: Any, out: TextIO, period: float = 2.0) -> None:
    """Print each MANUAL instrument's current indication every `period` seconds (wall time)."""
    manual = [name for name, entry in bench.instruments.items() if entry.address.kind == "manual"]
    if not manual:
        return
    while True:
        for name in manual:
            model = world[name]
            value = model.indication_at(clock.now())
            print(f"[{name}] reads {value:g} {getattr(model, 'unit', '')}", file=out, flush=True)
        await asyncio.sleep(period)


async def take_typed_tasks(world: Any, out: TextIO) -> None:
    """Read tasks from stdin until it closes, in a daemon thread (a blocked read must never keep
    the simulator from stopping), doing each on the event loop's thread."""
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()

    def do(line: str) -> None:
        reply = perform_typed_task(world, line)
        if reply:
            print(reply, file=out, flush=True)

    def read_lines() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(do, line)
        loop.call_soon_threadsafe(closed.set)

    threading.Thread(target=read_lines, name="operator-console", daemon=True).start()
    await closed.wait()
