"""Small panels for the report, one per body area: force (solid) and force left (dashed), as SVG.

The group's force and fatigue per area drawn with matplotlib (12 axes and their
twins) cost about 2 s of CPU, most of it ticks; here a panel is two polylines.
A line keeps its peaks and dips: with more samples than pixel columns, each
column draws the lowest and the highest sample in it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.strip_picture import FONT, PHASE_COLOURS, FloatArray, minute_step

WIDTH = 1000
COLUMNS = 3
PANEL_W = 300
PANEL_GAP_X = 30
PANEL_TITLE = 24
PLOT_H = 70
PANEL_GAP_Y = 38
TOP = 38
LEFT = 20


@dataclass(frozen=True)
class Panel:
    """One area: its title, its force (scaled to its own highest) and force left (0..1)."""

    title: str
    force: FloatArray
    left: FloatArray


def column_range(t_s: FloatArray, values: FloatArray, start: float, end: float, columns: int
                 ) -> tuple[FloatArray, FloatArray]:  # fmt: skip
    """Points (seconds, value) of a line at picture resolution, keeping its peaks and dips.

    With no more than two samples per column they are returned as they are; otherwise
    each column gives its lowest then its highest sample, at the column's middle.
    """
    t_s = np.asarray(t_s, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if t_s.size <= 2 * columns:
        return t_s, values
    span = max(end - start, 1e-9)
    col = np.clip(((t_s - start) / span * columns).astype(np.int64), 0, columns - 1)
    lo = np.full(columns, np.inf)
    hi = np.full(columns, -np.inf)
    np.minimum.at(lo, col, values)
    np.maximum.at(hi, col, values)
    used = np.flatnonzero(np.isfinite(lo))
    mid = start + (used + 0.5) * (span / columns)
    xs: FloatArray = np.repeat(mid, 2)
    ys: FloatArray = np.column_stack((lo[used], hi[used])).ravel()
    return xs, ys


def _polyline(xs: FloatArray, ys: FloatArray, style: str) -> str:
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    return f"<polyline points='{pts}' fill='none' {style}/>"


def render_panels(title: str, t_s: FloatArray, panels: list[Panel],
                  segments: Sequence[dict[str, Any]] = ()) -> str:  # fmt: skip
    """The panels in rows of three under one title, as a standalone SVG document."""
    t = np.asarray(t_s, dtype=np.float64)
    step = float(t[1] - t[0]) if t.size > 1 else 1.0
    end = max(float(t[-1]) + step if t.size else 1.0, 1.0)
    for seg in segments:
        end = max(end, float(seg["end_s"]))
    rows = max(1, -(-len(panels) // COLUMNS))
    panel_h = PANEL_TITLE + PLOT_H + PANEL_GAP_Y
    height = TOP + rows * panel_h
    every = minute_step(end / 60)
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        f"viewBox='0 0 {WIDTH} {height}' {FONT}>",
        f"<title>{html.escape(title)}</title>",
        "<rect width='100%' height='100%' fill='white'/>",
        f"<text x='{WIDTH / 2:.0f}' y='22' font-size='17' text-anchor='middle'>"
        f"{html.escape(title)}</text>",
    ]
    for k, panel in enumerate(panels):
        x0 = LEFT + (k % COLUMNS) * (PANEL_W + PANEL_GAP_X)
        y0 = TOP + (k // COLUMNS) * panel_h
        top, base = y0 + PANEL_TITLE, y0 + PANEL_TITLE + PLOT_H

        def x_of(s: FloatArray | float, x0: float = x0) -> Any:
            return x0 + np.asarray(s) / end * PANEL_W

        out.append(f"<text x='{x0}' y='{y0 + 17}' font-size='15'>{html.escape(panel.title)}</text>")
        for seg in segments:
            a, b = x_of(float(seg["start_s"])), x_of(float(seg["end_s"]))
            colour = PHASE_COLOURS.get(str(seg["kind"]), "#eeeeee")
            out.append(
                f"<rect x='{a:.1f}' y='{top}' width='{max(b - a, 0):.1f}' height='{PLOT_H}' "
                f"fill='{colour}' fill-opacity='0.35'/>"
            )
        out.append(f"<line x1='{x0}' y1='{base}' x2='{x0 + PANEL_W}' y2='{base}' "
                   "stroke='#999' stroke-width='0.5'/>")  # fmt: skip
        force = np.asarray(panel.force, dtype=np.float64)
        highest = max(float(force.max()) if force.size else 0.0, 1e-9)
        xs, ys = column_range(t, force, 0.0, end, PANEL_W)
        out.append(_polyline(x_of(xs), base - ys / highest * PLOT_H,
                             "stroke='#1d3557' stroke-width='1'"))  # fmt: skip
        xs, ys = column_range(t, np.asarray(panel.left, dtype=np.float64), 0.0, end, PANEL_W)
        dashed = "stroke='#e76f51' stroke-width='1.2' stroke-dasharray='5 3'"
        out.append(_polyline(x_of(xs), base - np.clip(ys, 0, 1.05) / 1.05 * PLOT_H, dashed))
        one = base - 1 / 1.05 * PLOT_H
        out.append(
            f"<text x='{x0 + PANEL_W + 3}' y='{one + 4:.1f}' font-size='13' fill='#e76f51'>1</text>"
            f"<text x='{x0 + PANEL_W + 3}' y='{base + 4}' font-size='13' fill='#e76f51'>0</text>"
        )
        for m in range(0, int(end // 60) + 1, every):
            x = x_of(m * 60.0)
            out.append(f"<line x1='{x:.1f}' y1='{base}' x2='{x:.1f}' y2='{base + 4}' "
                       "stroke='#333'/>")  # fmt: skip
            out.append(f"<text x='{x:.1f}' y='{base + 18}' font-size='13' "
                       f"text-anchor='middle'>{m}</text>")  # fmt: skip
    out.append(f"<text x='{WIDTH / 2:.0f}' y='{height - 4}' font-size='15' "
               "text-anchor='middle'>minutes</text>")  # fmt: skip
    out.append("</svg>")
    return "".join(out)
