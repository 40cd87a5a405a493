"""The report's strip pictures (SVG written by hand): peaks kept, every client drawn, and the
report a single file that opens offline."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

from sim.area_panels import Panel, column_range, render_panels
from sim.report import render_report
from sim.strip_picture import ROW_GAP, ROW_H, TOP, Strip, StripPicture, column_peaks

from .test_report import planned  # noqa: F401  (the fixture: a real `sim plan`)


def _heights(svg: str) -> list[float]:
    """The height each strip's path reaches, in units of its row (1 = the top value)."""
    out = []
    for i, d in enumerate(re.findall(r"<path d='([^']*)'", svg)):
        base = TOP + i * (ROW_H + ROW_GAP) + ROW_H
        ys = [float(y) for y in re.findall(r"[ML][-\d.]+,([-\d.]+)", d)]
        out.append((base - min(ys)) / ROW_H)
    return out


def test_a_one_tick_spike_keeps_its_height_in_a_35_minute_class() -> None:
    ticks = 35 * 60 * 40  # 84,000 ticks at 40 Hz, far more than the picture's columns
    t = np.arange(ticks) / 40
    flat = np.full(ticks, 10.0)
    spiky = flat.copy()
    spiky[51_234] = 80.0  # one tick at 80 mA
    edges, peaks = column_peaks(t, spiky, 0.0, ticks / 40, 760)
    assert edges.size == peaks.size + 1 == 761 and peaks.max() == 80.0
    svg = StripPicture("levels", t, [Strip("flat", flat), Strip("spike", spiky)], 80.0).svg()
    flat_h, spike_h = _heights(svg)
    assert abs(flat_h - 10 / 80) < 0.01 and abs(spike_h - 1.0) < 0.01
    # where it happened: 51,234 / 40 s of 2,100 s across the strip
    assert "spike" in svg and svg.count("<path") == 2


def test_few_samples_are_drawn_as_they_are() -> None:
    t = np.arange(5.0)
    edges, vals = column_peaks(t, np.array([0, 3, 0, 0, 5.0]), 0.0, 5.0, 760)
    assert edges.tolist() == [0, 1, 2, 3, 4, 5] and vals.tolist() == [0, 3, 0, 0, 5]
    # an empty strip is a flat line, not an error
    edges, vals = column_peaks(np.array([]), np.array([]), 0.0, 60.0, 760)
    assert vals.tolist() == [0.0]


def test_every_client_has_its_levels_and_the_report_is_one_file(planned: Path) -> None:  # noqa: F811
    page = (planned / "report.html").read_text()
    pictures = re.findall(r'alt="Levels of ([^"]+)" src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert [who for who, _ in pictures] == ["client-1", "client-2", "client-3"]
    for who, data in pictures:
        svg = base64.b64decode(data).decode()
        assert svg.startswith("<svg") and who in svg and "Thighs (front)" in svg
        assert svg.count("<path") == 12  # one strip per area of the layout
    # self-contained: nothing fetched from anywhere (no links, scripts or fonts from outside)
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", page)
    assert "@import" not in page and "url(" not in page


def test_the_report_without_the_trainers_words_draws_the_levels_too() -> None:
    doc = {
        "workout": "w",
        "channels": ["quads", "glutes"],
        "segments": [{"start_s": 0, "end_s": 4, "kind": "suit", "name": "x"}],
        "body": {
            "clients": [{"client": "ann", "channels": {}, "max_cr10": 2.0}],
            "warnings": [],
            "requests": [],
            "timeline": {
                "t": [0, 1, 2, 3],
                "levels_mA": [[[0, 0]], [[30, 0]], [[0, 5]], [[0, 0]]],
                "force_N": [[[0, 0]], [[3, 0]], [[0, 1]], [[0, 0]]],
                "fatigue": [[[1, 1]], [[0.9, 1]], [[0.9, 1]], [[0.9, 1]]],
                "cr10": [[0], [2], [1], [0]],
            },
        },
    }
    page = render_report(doc)
    svg = base64.b64decode(re.findall(r"data:image/svg\+xml;base64,([^\"]+)", page)[0]).decode()
    assert "peak 30 mA" in svg and _heights(svg) == pytest.approx([1.0, 5 / 30], abs=0.01)


def test_an_area_panel_keeps_a_one_tick_peak_and_dip() -> None:
    t = np.arange(84_000) / 40
    force = np.full(t.size, 20.0)
    force[40_001] = 150.0  # one tick of a strong contraction
    left = np.full(t.size, 0.9)
    left[60_002] = 0.1  # one tick of nearly no force left
    xs, ys = column_range(t, force, 0.0, 2100.0, 300)
    assert xs.size == ys.size == 600 and ys.max() == 150.0 and ys.min() == 20.0
    svg = render_panels("force", t, [Panel("Thighs (front): up to 150 N", force, left)])
    force_line, left_line = re.findall(r"<polyline points='([^']*)'", svg)
    heights = [float(p.split(",")[1]) for p in force_line.split()]
    dips = [float(p.split(",")[1]) for p in left_line.split()]
    # the plot's 70 px: the peak reaches the top, the dip goes down to 0.1 of 1.05
    assert max(heights) - min(heights) == pytest.approx(70 * (130 / 150), abs=0.2)
    assert max(dips) - min(dips) == pytest.approx(70 * 0.8 / 1.05, abs=0.2)
    assert "Thighs (front): up to 150 N" in svg
