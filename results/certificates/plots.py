"""Hand-written SVG plots for reports: an error plot and a stabilisation trace.

Dependency-free on purpose: a reviewer's report must render the same on any machine that can
run the runner, and a few hundred lines of SVG are easier to audit than a plotting stack. Output
is deterministic (fixed viewBox, coordinates rounded to 0.01) so two renderings of one run are
byte-identical. Tick elements carry `data-value` (in the base unit) so tests, and anyone reading
the SVG, can map plot coordinates back to values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

WIDTH, HEIGHT = 600.0, 300.0
"""The viewBox; rendered 160 mm wide, which fits an A4 page with 20-25 mm margins."""
WIDTH_MM = 160

_PREFIXES = {-15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G"}
_PREFIXABLE = {"V", "A", "Ω", "ohm", "Ohm", "Pa", "g", "W", "Hz", "s", "m", "F", "H", "S", "K", "N", "J", "L", "bar"}
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")

_FAIL_WORDS = ("fail", "reject", "out of tolerance")
_COLOURS = {"pass": "#1f5fa8", "fail": "#c0262d", "conditional": "#d9822b", "tol": "#2e7d32", "trace": "#1f5fa8"}


# -- numbers ------------------------------------------------------------------------------------------

def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Ticks at 1, 2 or 5 x 10^n covering [lo, hi]: readable numbers, not the data's arbitrary ones."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, target)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    return [_clean(i * step) for i in range(first, last + 1)]


def _clean(x: float) -> float:
    """Round away binary noise (0.30000000000000004) so tick labels and data-values are exact."""
    return 0.0 if x == 0 else float(f"{x:.12g}")


def si_scale(max_abs: float, unit: str) -> tuple[float, str]:
    """(factor, axis unit text) for values of up to `max_abs` in `unit`: µV for microvolts; for units that
    take no prefix (°C, %, ppm) a power of ten in the title instead."""
    exp3 = 0 if max_abs <= 0 or not math.isfinite(max_abs) else 3 * math.floor(math.log10(max_abs) / 3)
    exp3 = max(-15, min(9, exp3))
    factor = 10.0**exp3
    if exp3 == 0:
        return 1.0, unit
    if unit in _PREFIXABLE:
        return factor, _PREFIXES[exp3] + unit
    return factor, f"10{str(exp3).translate(_SUPERSCRIPT)} {unit}".strip()


def _tick_text(value: float, factor: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step / factor) + 1e-9)) if step > 0 else 0
    text = f"{value / factor:.{decimals}f}"
    return "0" if float(text) == 0 else text.replace("-", "−")


def _f(x: float) -> str:
    """Coordinates with two decimals: deterministic and compact."""
    return f"{round(x, 2):.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Axis:
    """A linear map from data values [lo, hi] to plot coordinates [start, end] (end < start for y)."""

    lo: float
    hi: float
    start: float
    end: float

    def map(self, value: float) -> float:
        if self.hi == self.lo:
            return (self.start + self.end) / 2
        return self.start + (value - self.lo) / (self.hi - self.lo) * (self.end - self.start)


@dataclass(frozen=True)
class _Box:
    left: float
    top: float
    right: float
    bottom: float


# -- SVG pieces ---------------------------------------------------------------------------------------

def _svg(parts: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_f(WIDTH)} {_f(HEIGHT)}" width="{WIDTH_MM}mm" '
        f'height="{WIDTH_MM * HEIGHT / WIDTH:g}mm" role="img" aria-label={quoteattr(label)} '
        f'font-family="DejaVu Sans, sans-serif" font-size="10">\n' + "\n".join(parts) + "\n</svg>\n"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "middle", size: float = 10, cls: str = "",
          extra: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return (f'<text{klass} x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}" font-size="{size:g}"{extra}>'
            f"{escape(text)}</text>")


def _line(x1: float, y1: float, x2: float, y2: float, *, cls: str, stroke: str = "#000", width: float = 1,
          dash: str = "") -> str:
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<line class="{cls}" x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" stroke="{stroke}" '
            f'stroke-width="{width:g}"{dashed}/>')


def _frame(box: _Box) -> str:
    return (f'<rect class="frame" x="{_f(box.left)}" y="{_f(box.top)}" width="{_f(box.right - box.left)}" '
            f'height="{_f(box.bottom - box.top)}" fill="none" stroke="#000" stroke-width="0.8"/>')


def _y_ticks(axis: Axis, ticks: list[float], factor: float, box: _Box) -> list[str]:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else abs(ticks[0]) or 1.0
    out = []
    for t in ticks:
        y = axis.map(t)
        out.append(f'<g class="ytick" data-value="{t!r}" data-y="{_f(y)}">'
                   + _line(box.left, y, box.right, y, cls="grid", stroke="#ddd", width=0.5)
                   + _line(box.left - 4, y, box.left, y, cls="tick")
                   + _text(box.left - 6, y + 3.5, _tick_text(t, factor, step), anchor="end", size=9) + "</g>")
    return out


def _x_ticks(axis: Axis, ticks: list[float], factor: float, box: _Box) -> list[str]:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else abs(ticks[0]) or 1.0
    out = []
    for t in ticks:
        x = axis.map(t)
        out.append(f'<g class="xtick" data-value="{t!r}" data-x="{_f(x)}">'
                   + _line(x, box.top, x, box.bottom, cls="grid", stroke="#eee", width=0.5)
                   + _line(x, box.bottom, x, box.bottom + 4, cls="tick")
                   + _text(x, box.bottom + 14, _tick_text(t, factor, step), size=9) + "</g>")
    return out


def _axis_titles(box: _Box, x_title: str, y_title: str, title: str) -> list[str]:
    out = [_text((box.left + box.right) / 2, HEIGHT - 6, x_title, cls="xtitle")]
    if y_title:
        out.append(_y_title(box, y_title))
    if title:
        out.append(_text(WIDTH / 2, 14, title, size=11, cls="title", extra=' font-weight="bold"'))
    return out


def _y_title(box: _Box, text: str) -> str:
    mid_y = (box.top + box.bottom) / 2
    return _text(14, mid_y, text, cls="ytitle", extra=f' transform="rotate(-90 14 {_f(mid_y)})"')


def _legend(entries: list[tuple[str, str]], x: float, y: float) -> list[str]:
    """Entries are (symbol SVG at the origin, label); laid out in one row from (x, y)."""
    out = ['<g class="legend">']
    for symbol, label in entries:
        out.append(f'<g transform="translate({_f(x)} {_f(y)})">{symbol}</g>')
        out.append(_text(x + 12, y + 3.5, label, anchor="start", size=9))
        x += 24 + 5.2 * len(label)
    out.append("</g>")
    return out


def _pad(lo: float, hi: float, frac: float = 0.06) -> tuple[float, float]:
    span = hi - lo
    if span <= 0:
        span = abs(hi) or 1.0
    return lo - frac * span, hi + frac * span


# -- the error plot ----------------------------------------------------------------------------------

def _decision_kind(decision: Any) -> str:
    text = str(decision or "").lower()
    if "conditional" in text:
        return "conditional"
    if any(w in text for w in _FAIL_WORDS):
        return "fail"
    return "pass"


def _marker(x: float, y: float, kind: str, index: int) -> str:
    colour = _COLOURS[kind]
    common = f'class="marker {kind}" data-index="{index}" fill="{colour}" stroke="{colour}"'
    if kind == "fail":
        return f'<rect {common} x="{_f(x - 3.5)}" y="{_f(y - 3.5)}" width="7" height="7"/>'
    if kind == "conditional":
        pts = f"{_f(x)},{_f(y - 4.5)} {_f(x + 4.5)},{_f(y)} {_f(x)},{_f(y + 4.5)} {_f(x - 4.5)},{_f(y)}"
        return f'<polygon {common} points="{pts}"/>'
    return f'<circle {common} cx="{_f(x)}" cy="{_f(y)}" r="3.5"/>'


def use_linear_x(nominals: Sequence[float]) -> bool:
    """A value axis only when the setpoints are distinct, few, of one decade-ish scale and not crowded;
    otherwise markers would pile up (or hide a 100 mV point next to 1 kV), so a category axis is used."""
    if not nominals or len(nominals) > 15 or len(set(nominals)) != len(nominals):
        return False
    span = max(nominals) - min(nominals)
    if span <= 0:
        return False
    nonzero = [abs(v) for v in nominals if v != 0]
    if nonzero and max(nonzero) / min(nonzero) > 100:
        return False
    ordered = sorted(nominals)
    return min(b - a for a, b in zip(ordered, ordered[1:], strict=False)) >= span / 12


def _steps(xs: list[float], box: _Box) -> list[tuple[float, float]]:
    """The horizontal extent each point's tolerance covers: halfway to its neighbours."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    extents: list[tuple[float, float]] = [(0.0, 0.0)] * len(xs)
    for pos, i in enumerate(order):
        left = (xs[order[pos - 1]] + xs[i]) / 2 if pos > 0 else max(box.left, xs[i] - 20)
        right = (xs[order[pos + 1]] + xs[i]) / 2 if pos + 1 < len(order) else min(box.right, xs[i] + 20)
        extents[i] = (left, right)
    return extents


def _tolerance_parts(xs: list[float], tols: list[float | None], y: Axis, box: _Box) -> list[str]:
    """Stepped ±tolerance lines (and a light band) over runs of neighbouring points that have one."""
    extents = _steps(xs, box)
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    runs: list[list[int]] = []
    for i in order:
        if tols[i] is None:
            runs.append([])
            continue
        if not runs:
            runs.append([])
        runs[-1].append(i)
    out: list[str] = []
    for run in (r for r in runs if r):
        upper = [(x, y.map(float(tols[i] or 0))) for i in run for x in extents[i]]
        lower = [(x, y.map(-float(tols[i] or 0))) for i in run for x in extents[i]]
        band = " ".join(f"{_f(a)},{_f(b)}" for a, b in upper + lower[::-1])
        out.append(f'<polygon class="tol-band" points="{band}" fill="{_COLOURS["tol"]}" fill-opacity="0.07"/>')
        for pts in (upper, lower):
            out.append(f'<polyline class="tol" points="{" ".join(f"{_f(a)},{_f(b)}" for a, b in pts)}" '
                       f'fill="none" stroke="{_COLOURS["tol"]}" stroke-width="1.2" stroke-dasharray="5 3"/>')
    return out


def _tolerance(p: dict[str, Any]) -> float | None:
    tol = p.get("tolerance")
    if tol is None:
        return None
    tol = float(tol)
    return abs(tol) if math.isfinite(tol) else None


def _category_labels(xs: list[float], labels: list[str], box: _Box) -> list[str]:
    cell = (box.right - box.left) / max(1, len(xs))
    rotate = max((len(s) for s in labels), default=0) * 5.2 > cell
    out = []
    for i, (x, label) in enumerate(zip(xs, labels, strict=True)):
        text = label if len(label) <= 22 else label[:21] + "…"
        out.append(_line(x, box.bottom, x, box.bottom + 4, cls="tick"))
        if rotate:
            y = box.bottom + 12
            out.append(_text(x, y, text, anchor="end", size=8.5, cls="xlabel",
                             extra=f' data-index="{i}" transform="rotate(-30 {_f(x)} {_f(y)})"'))
        else:
            out.append(_text(x, box.bottom + 14, text, size=9, cls="xlabel", extra=f' data-index="{i}"'))
    return out


def error_plot(points: list[dict[str, Any]], unit: str, *, title: str = "") -> str:
    """Error ± U at each calibration point against the ±tolerance limits, as inline SVG.

    Each point dict needs nominal, label, error, U; tolerance (None: no limit drawn) and decision
    ("fail" points get a red square, conditional ones an orange diamond) are optional."""
    box = _Box(72, 40, WIDTH - 16, HEIGHT - 62)
    if not points:
        return _svg([_text(WIDTH / 2, HEIGHT / 2, "no results", cls="empty")] + _axis_titles(box, "", "", title),
                    title or "error plot")
    errors = [float(p["error"]) for p in points]
    us = [abs(float(p["U"])) for p in points]
    tols = [_tolerance(p) for p in points]
    values = [0.0] + [e + u for e, u in zip(errors, us, strict=True)] + [e - u for e, u in zip(errors, us, strict=True)]
    values += [t for t in tols if t is not None] + [-t for t in tols if t is not None]
    ticks = nice_ticks(*_pad(min(values), max(values)))
    y = Axis(ticks[0], ticks[-1], box.bottom, box.top)
    y_factor, y_unit = si_scale(max(abs(ticks[0]), abs(ticks[-1])), unit)
    nominals = [float(p.get("nominal", math.nan)) for p in points]
    parts = [_frame(box)] + _y_ticks(y, ticks, y_factor, box)
    if use_linear_x(nominals):
        x_ticks = nice_ticks(*_pad(min(nominals), max(nominals)))
        x = Axis(x_ticks[0], x_ticks[-1], box.left, box.right)
        xs = [x.map(v) for v in nominals]
        x_factor, x_unit = si_scale(max(abs(x_ticks[0]), abs(x_ticks[-1])), unit)
        parts += _x_ticks(x, x_ticks, x_factor, box)
        x_title = f"Nominal value / {x_unit}"
    else:
        cell = (box.right - box.left) / len(points)
        xs = [box.left + cell * (i + 0.5) for i in range(len(points))]
        parts += _category_labels(xs, [str(p.get("label") or p.get("nominal", i)) for i, p in enumerate(points)],
                                  box)
        x_title = "Calibration point"
    parts += _tolerance_parts(xs, tols, y, box)
    parts.append(_line(box.left, y.map(0.0), box.right, y.map(0.0), cls="zero", stroke="#555", width=0.8))
    for i, (xp, e, u, p) in enumerate(zip(xs, errors, us, points, strict=True)):
        kind = _decision_kind(p.get("decision"))
        colour = _COLOURS[kind]
        parts.append(f'<g class="point" data-index="{i}">'
                     + _line(xp, y.map(e - u), xp, y.map(e + u), cls="ebar", stroke=colour, width=1.2)
                     + _line(xp - 4, y.map(e + u), xp + 4, y.map(e + u), cls="ecap", stroke=colour)
                     + _line(xp - 4, y.map(e - u), xp + 4, y.map(e - u), cls="ecap", stroke=colour)
                     + _marker(xp, y.map(e), kind, i) + "</g>")
    parts += _axis_titles(box, x_title, f"Error / {y_unit}", title)
    parts += _legend(_error_legend(points, tols), box.left, 28)
    return _svg(parts, title or "error plot")


def _error_legend(points: list[dict[str, Any]], tols: list[float | None]) -> list[tuple[str, str]]:
    kinds = {_decision_kind(p.get("decision")) for p in points}
    entries = [(_line(0, -5, 0, 5, cls="legend-bar", stroke=_COLOURS["pass"], width=1.2)
                + '<circle cx="0" cy="0" r="3" fill="#1f5fa8"/>', "error ± U")]
    if "fail" in kinds:
        entries.append(('<rect x="-3" y="-3" width="6" height="6" fill="#c0262d"/>', "fail"))
    if "conditional" in kinds:
        entries.append(('<polygon points="0,-4 4,0 0,4 -4,0" fill="#d9822b"/>', "conditional"))
    if any(t is not None for t in tols):
        entries.append((_line(-6, 0, 6, 0, cls="legend-tol", stroke=_COLOURS["tol"], width=1.2, dash="5 3"),
                        "± tolerance"))
    return entries


# -- the stabilisation trace ------------------------------------------------------------------------------

def _polyline(readings: Sequence[tuple[float, float]], x: Axis, y: Axis, cls: str) -> str:
    pts = " ".join(f"{_f(x.map(t))},{_f(y.map(v))}" for t, v in readings)
    return f'<polyline class="{cls}" points="{pts}" fill="none" stroke="{_COLOURS["trace"]}" stroke-width="1"/>'


def _shade(window: tuple[float, float] | None, x: Axis, box: _Box) -> list[str]:
    if window is None:
        return []
    a, b = sorted((max(x.lo, window[0]), min(x.hi, window[1])))
    left, right = x.map(a), x.map(b)
    return [f'<rect class="window" x="{_f(left)}" y="{_f(box.top)}" width="{_f(max(right - left, 1.0))}" '
            f'height="{_f(box.bottom - box.top)}" fill="#2e7d32" fill-opacity="0.15"/>']


def _stable_line(stable_at: float | None, x: Axis, box: _Box) -> list[str]:
    if stable_at is None or not x.lo <= stable_at <= x.hi:
        return []
    xs = x.map(stable_at)
    return [_line(xs, box.top, xs, box.bottom, cls="stable-at", stroke="#c0262d", width=1.2, dash="4 2")]


def _panel(readings: Sequence[tuple[float, float]], box: _Box, *, unit: str, offset: float, stable_at: float | None,
           window: tuple[float, float] | None, t_range: tuple[float, float], cls: str,
           y_label: str) -> tuple[list[str], Axis]:
    vals = [v - offset for _, v in readings]
    ticks = nice_ticks(*_pad(min(vals), max(vals)), target=4)
    y = Axis(ticks[0], ticks[-1], box.bottom, box.top)
    factor, y_unit = si_scale(max(abs(ticks[0]), abs(ticks[-1])), unit)
    t_ticks = nice_ticks(*t_range)
    x = Axis(t_ticks[0], t_ticks[-1], box.left, box.right)
    shifted = [(t, v - offset) for t, v in readings]
    parts = [f'<g class="panel {cls}" data-unit={quoteattr(y_unit)}>', _frame(box)]
    parts += _shade(window, x, box) + _y_ticks(y, ticks, factor, box) + _x_ticks(x, t_ticks, 1.0, box)
    parts += _stable_line(stable_at, x, box)
    parts += [_polyline(shifted, x, y, "trace")]
    parts += [f'<circle class="sample" cx="{_f(x.map(t))}" cy="{_f(y.map(v))}" r="1.3" fill="{_COLOURS["trace"]}"/>'
              for t, v in shifted]
    parts.append(_y_title(box, f"{y_label} / {y_unit}"))
    parts.append("</g>")
    return parts, x


def _zoom_start(readings: Sequence[tuple[float, float]], stable_at: float | None,
                window: tuple[float, float] | None, zoom_from: float | None) -> float:
    """Where the zoomed panel begins: as long before the stability decision as the decision-to-end span, so
    the readings the detector judged and the readings taken after it are both visible."""
    if zoom_from is not None:
        return max(readings[0][0], zoom_from)
    end = readings[-1][0]
    anchor = stable_at if stable_at is not None else (window[0] if window else end)
    return max(readings[0][0], anchor - max(end - anchor, (end - readings[0][0]) * 0.1))


def stability_trace(readings: list[tuple[float, float]], *, unit: str, stable_at: float | None,
                    window: tuple[float, float] | None, title: str = "", zoom_from: float | None = None) -> str:
    """Value against time through settling, with the instant stability was declared (red dashed line)
    and the repeated readings' window shaded, as inline SVG.

    When the settling swing dwarfs the scatter at the end (a 2 V step against µV noise), a second panel
    shows the tail (from `zoom_from`, e.g. the start of the detector's window) as the deviation from its
    mean, so the reviewer can see what the detector judged."""
    if not readings:
        return _svg([_text(WIDTH / 2, HEIGHT / 2, "no stabilisation readings", cls="empty")],
                    title or "stabilisation trace")
    readings = sorted(((float(t), float(v)) for t, v in readings), key=lambda r: r[0])
    t_range = (readings[0][0], max(readings[-1][0], window[1] if window else readings[-1][0]))
    start = _zoom_start(readings, stable_at, window, zoom_from)
    tail = [r for r in readings if r[0] >= start]
    full_span = max(v for _, v in readings) - min(v for _, v in readings)
    tail_span = max(v for _, v in tail) - min(v for _, v in tail)
    zoom = len(tail) >= 3 and full_span > 20 * tail_span
    top = _Box(72, 40, WIDTH - 16, 140 if zoom else HEIGHT - 40)
    parts, _ = _panel(readings, top, unit=unit, offset=0.0, stable_at=stable_at, window=window, t_range=t_range,
                      cls="full", y_label="Value")
    if zoom:
        ref = math.fsum(v for _, v in tail) / len(tail)
        bottom = _Box(72, 172, WIDTH - 16, HEIGHT - 40)
        more, _ = _panel(tail, bottom, unit=unit, offset=ref, stable_at=stable_at, window=window,
                         t_range=(tail[0][0], t_range[1]), cls="zoom", y_label="Deviation")
        parts += more
        parts.append(_text(bottom.left, bottom.top - 6, f"tail, as deviation from its mean {ref:.9g} {unit}",
                           anchor="start", size=9, cls="zoom-title"))
    parts += _axis_titles(top, "Time / s", "", title)
    legend = [(_line(0, -5, 0, 5, cls="legend-stable", stroke="#c0262d", width=1.2, dash="4 2"), "declared stable")]
    if window is not None:
        legend.append(('<rect x="-5" y="-5" width="10" height="10" fill="#2e7d32" fill-opacity="0.15"/>',
                       "repeated readings"))
    parts += _legend(legend, top.left, 28)
    return _svg(parts, title or "stabilisation trace")
