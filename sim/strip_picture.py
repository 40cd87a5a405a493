"""Strip pictures for the report: one filled strip per row over the class, as SVG.

A client's levels (one strip per body area) and the group's sensation (one
strip per client) are the report's biggest pictures: 20 clients × 12 areas
drawn with matplotlib took 20 s of CPU, nearly all of it creating ticks.
Here each picture is one SVG document written by hand: a strip is one
`<path>`, the phases are shaded rectangles, the minutes are drawn once.

Peaks are kept: a strip has one column per pixel and each column holds the
*highest* value of the samples that start in it, so a single-tick spike
shows at its full height however long the class.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

PHASE_COLOURS = {"warmup": "#fde68a", "suit": "#bfdbfe", "stretch": "#bbf7d0"}

#: The picture's width in CSS pixels (the report scales it to the page).
WIDTH = 1000
#: Left margin, for the row labels.
LEFT = 200
#: Right margin, for each row's highest value.
RIGHT = 80
#: Height of one strip and the gap below it.
ROW_H = 28
ROW_GAP = 6
TOP = 38
BOTTOM = 46
FONT = "font-family='system-ui, sans-serif'"


@dataclass(frozen=True)
class Line:
    """A level marked across every strip, labelled on the last one (e.g. CR10 7)."""

    value: float
    label: str
    colour: str = "#b91c1c"


@dataclass(frozen=True)
class Strip:
    """One row: its label on the left, its values over time, what it reached on the right."""

    label: str
    values: FloatArray
    note: str = ""


@dataclass
class StripPicture:
    """One picture: a title, shared minutes below, rows of strips with a shared height."""

    title: str
    t_s: FloatArray
    strips: list[Strip]
    top_value: float
    segments: Sequence[dict[str, Any]] = ()
    colour: str = "#1d4ed8"
    lines: list[Line] = field(default_factory=list)

    def svg(self) -> str:
        """The picture as a standalone SVG document."""
        return render(self)


def column_peaks(t_s: FloatArray, values: FloatArray, start: float, end: float, columns: int
                 ) -> tuple[FloatArray, FloatArray]:  # fmt: skip
    """Edges (in seconds, one more than values) and values of a step strip at picture resolution.

    Each sample holds its value until the next one starts. With no more samples than
    columns they are returned as they are; otherwise each column gets the highest value
    of the samples starting in it, so no peak is lost.
    """
    t_s = np.asarray(t_s, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if t_s.size == 0:
        return np.array([start, end]), np.zeros(1)
    step = float(t_s[1] - t_s[0]) if t_s.size > 1 else 1.0
    if t_s.size <= columns:
        edges = np.append(t_s, t_s[-1] + step)
        return edges, values
    span = max(end - start, 1e-9)
    col = np.clip(((t_s - start) / span * columns).astype(np.int64), 0, columns - 1)
    peaks = np.full(columns, -np.inf)
    np.maximum.at(peaks, col, values)
    # a column no sample starts in holds the value of the sample before it
    filled = np.flatnonzero(np.isfinite(peaks))
    idx = np.maximum.accumulate(np.where(np.isfinite(peaks), np.arange(columns), 0))
    peaks = np.where(np.isfinite(peaks), peaks, peaks[idx])
    peaks[: filled[0]] = 0.0
    columns_at: FloatArray = start + np.arange(columns + 1, dtype=np.float64) * (span / columns)
    return columns_at, peaks


def _step_path(xs: FloatArray, ys: FloatArray, base: float) -> str:
    """A closed path of a step curve: from `base` up to each value over its edges, back down."""
    keep = np.concatenate(([True], np.diff(ys) != 0))  # one corner per change of value
    starts = xs[:-1][keep]
    levels = ys[keep]
    ends = np.append(starts[1:], xs[-1])
    parts = [f"M{xs[0]:.1f},{base:.1f}"]
    parts.extend(
        f"L{a:.1f},{y:.1f}L{b:.1f},{y:.1f}" for a, b, y in zip(starts, ends, levels, strict=True)
    )
    parts.append(f"L{xs[-1]:.1f},{base:.1f}Z")
    return "".join(parts)


def minute_step(minutes: float) -> int:
    for step in (1, 2, 5, 10, 15, 20, 30, 60):
        if minutes / step <= 12:
            return step
    return 120


def render(pic: StripPicture) -> str:
    """Draw `pic` as SVG (see the module's docstring)."""
    t = np.asarray(pic.t_s, dtype=np.float64)
    start = 0.0
    step = float(t[1] - t[0]) if t.size > 1 else 1.0
    end = max(float(t[-1]) + step if t.size else 1.0, 1.0)
    for seg in pic.segments:
        end = max(end, float(seg["end_s"]))
    plot_w = WIDTH - LEFT - RIGHT
    n = len(pic.strips)
    height = TOP + n * (ROW_H + ROW_GAP) + BOTTOM
    top_value = max(pic.top_value, 1e-9)

    def x_of(s: FloatArray | float) -> Any:
        return LEFT + (np.asarray(s) - start) / (end - start) * plot_w

    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        f"viewBox='0 0 {WIDTH} {height}' {FONT}>",
        f"<title>{html.escape(pic.title)}</title>",
        "<rect width='100%' height='100%' fill='white'/>",
        f"<text x='{WIDTH / 2:.0f}' y='22' font-size='17' text-anchor='middle'>"
        f"{html.escape(pic.title)}</text>",
    ]
    rows_top, rows_bottom = TOP, TOP + n * (ROW_H + ROW_GAP) - ROW_GAP
    for seg in pic.segments:  # phases shaded behind every strip at once
        x0, x1 = x_of(float(seg["start_s"])), x_of(float(seg["end_s"]))
        colour = PHASE_COLOURS.get(str(seg["kind"]), "#eeeeee")
        out.append(
            f"<rect x='{x0:.1f}' y='{rows_top}' width='{max(x1 - x0, 0):.1f}' "
            f"height='{rows_bottom - rows_top}' fill='{colour}' fill-opacity='0.35'/>"
        )
    for i, strip in enumerate(pic.strips):
        y0 = TOP + i * (ROW_H + ROW_GAP)
        base = y0 + ROW_H
        edges, vals = column_peaks(t, strip.values, start, end, plot_w)
        ys = base - np.clip(vals, 0, top_value) / top_value * ROW_H
        out.append(f"<path d='{_step_path(x_of(edges), ys, base)}' fill='{pic.colour}'/>")
        out.append(f"<line x1='{LEFT}' y1='{base}' x2='{LEFT + plot_w}' y2='{base}' "
                   "stroke='#999' stroke-width='0.5'/>")  # fmt: skip
        out.append(
            f"<text x='{LEFT - 8}' y='{y0 + ROW_H / 2 + 5:.0f}' font-size='15' "
            f"text-anchor='end'>{html.escape(strip.label)}</text>"
        )
        if strip.note:
            out.append(
                f"<text x='{LEFT + plot_w + 6}' y='{y0 + ROW_H / 2 + 5:.0f}' font-size='14' "
                f"fill='#444'>{html.escape(strip.note)}</text>"
            )
        for line in pic.lines:
            if line.value > top_value:
                continue
            y = base - line.value / top_value * ROW_H
            out.append(
                f"<line x1='{LEFT}' y1='{y:.1f}' x2='{LEFT + plot_w}' y2='{y:.1f}' "
                f"stroke='{line.colour}' stroke-width='0.8' stroke-dasharray='4 3'/>"
            )
            if i == 0:
                out.append(
                    f"<text x='{LEFT + plot_w}' y='{y - 2:.1f}' font-size='13' "
                    f"text-anchor='end' fill='{line.colour}'>{html.escape(line.label)}</text>"
                )
    every = minute_step((end - start) / 60)
    axis_y = rows_bottom + 4
    for m in range(0, int((end - start) // 60) + 1, every):
        x = x_of(start + m * 60.0)
        out.append(f"<line x1='{x:.1f}' y1='{axis_y}' x2='{x:.1f}' y2='{axis_y + 5}' "
                   "stroke='#333'/>")  # fmt: skip
        out.append(f"<text x='{x:.1f}' y='{axis_y + 20}' font-size='14' "
                   f"text-anchor='middle'>{m}</text>")  # fmt: skip
    out.append(f"<text x='{LEFT + plot_w / 2:.0f}' y='{height - 6}' font-size='15' "
               "text-anchor='middle'>minutes</text>")  # fmt: skip
    out.append("</svg>")
    return "".join(out)
