"""Live progress at the terminal (rich): which point, what phase, why it is not stable yet."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from daq.events import Event, PointPhaseEvent, PointResultEvent, RunStatusEvent


def format_si(value: float, unit: str = "V") -> str:
    a = abs(value)
    if a == 0:
        return f"0 {unit}"
    for factor, prefix in ((1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")):
        if a >= factor or factor == 1e-9:
            return f"{value / factor:.6g} {prefix}{unit}"
    return f"{value:g} {unit}"


class TerminalSink:
    def __init__(self, console: Console, total_points: int, clock_note: str) -> None:
        self.console = console
        self.total = total_points
        self.clock_note = clock_note
        self.done = 0
        self.current = ""
        self.phase = ""
        self.stability: dict[str, Any] | None = None
        self.status = "starting"
        self.results: list[dict[str, Any]] = []
        self.live = Live(self._render(), console=console, refresh_per_second=8, transient=False)

    def start(self, already_done: int = 0) -> None:
        self.done = already_done
        self.live.start()

    def emit(self, event: Event) -> None:
        if isinstance(event, PointPhaseEvent):
            self.current, self.phase, self.stability = event.label, event.phase, event.stability
        elif isinstance(event, PointResultEvent):
            self.done += 1
            self.results.append(event.result)
            self.stability = None
        elif isinstance(event, RunStatusEvent):
            self.status = f"{event.status}: {event.message}" if event.message else event.status
        else:
            return
        self.live.update(self._render())

    def _render(self) -> Group:
        head = Text.assemble(("Run ", "bold"), (self.status, "cyan"), f"   [{self.clock_note}]")
        progress = Text(f"points {self.done}/{self.total}   now: {self.current or '-'}   {self.phase}")
        lines: list[Any] = [head, progress]
        if self.stability:
            s = self.stability
            failing = ", ".join(s["failing"]) or "all criteria met"
            lines.append(Text(f"  stability: n={s['n']} std={format_si(s['std'])} "
                              f"|slope|<={format_si(s['slope_bound'])}/s settled={s['flag']}  ({failing})",
                              style="yellow"))
        if self.results:
            table = Table(show_header=True, header_style="bold", box=None)
            for col in ("point", "error", "U (k)", "decision"):
                table.add_column(col)
            for r in self.results[-6:]:
                table.add_row(str(r.get("label", "")), format_si(r["error"]), f"{format_si(r['U'])} ({r['k']:.2f})",
                              r["decision"]["outcome"])
            lines.append(table)
        return Group(*lines)

    def suspend(self) -> None:
        self.live.stop()

    def restore(self) -> None:
        self.live.start()

    async def aclose(self) -> None:
        self.live.stop()
