"""The live class view in the terminal: phase, cue, time left, every client's levels and link.

Each suit's radio column is its link health (`suit_controller.link_health`):
good, weak or lost, then frames delivered per second, the last status round
trip and the signal (dBm) when the link knows it.

Rendered as one styled `Text` (no tables or panels): the view is redrawn in
the engine's thread, and a render must cost about a millisecond, not ten,
or the engine's ticks (and at --speed, the suits' watchdogs) would notice.
"""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.text import Text

from suit_controller.commands import printable
from suit_controller.link_health import LinkFigures
from workouts.durations import format_duration

_SHORT = {
    "chest_left": "chL",
    "chest_right": "chR",
    "abs": "abs",
    "lower_back": "lBk",
    "upper_back": "uBk",
    "lats": "lat",
    "shoulders": "sho",
    "arms": "arm",
    "glutes": "glu",
    "quads": "qua",
    "hamstrings": "ham",
    "calves": "cal",
}
_STATE_STYLE = {"estopped": "bold white on red", "running": "bold green", "paused": "bold yellow"}
_LINK_STYLE = {"connected": "green", "lost": "bold red", "refused": "bold red"}
#: Link health: quiet while good, loud when weak or lost.
_HEALTH_STYLE = {"good": "dim", "weak": "bold yellow", "lost": "bold red"}
RADIO_WIDTH = 23
BAR_WIDTH = 50


def _clock(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


class ClassView:
    """A rich renderable of the newest snapshot; the engine updates `snapshot` and `events`."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.snapshot: dict[str, Any] | None = None
        self.events: list[str] = []

    def add_event(self, line: str) -> None:
        self.events = [*self.events[-5:], line]

    def __rich__(self) -> RenderableType:
        snap = self.snapshot
        if snap is None:
            return Text("connecting to the suits…")
        out = Text()
        state = snap["state"]
        out.append(f" {state.upper()} ", style=_STATE_STYLE.get(state, "bold"))
        out.append(f"  {snap['workout']}  ", style="bold")
        phase = snap["phase"] or "—"
        out.append(phase)
        if snap["exercise"]:
            out.append(f" · {snap['exercise']}", style="bold cyan")
        if snap["contracting"]:
            out.append("   ● CONTRACT", style="bold magenta")
        elif phase == "suit":
            out.append("   ○ pause", style="dim")
        out.append("\n")
        if snap["cues"]:
            out.append(f"cue: {', '.join(snap['cues'])}\n", style="italic")
        done = snap["plan_t"] / max(snap["total_s"], 1.0)
        filled = round(done * BAR_WIDTH)
        out.append("━" * filled, style="green")
        out.append("━" * (BAR_WIDTH - filled), style="grey30")
        out.append(
            f"  {_clock(snap['plan_t'])} / {_clock(snap['total_s'])} · next in "
            f"{format_duration(round(snap['segment_remaining_s']))} · {self.mode}\n\n"
        )
        head = f"{'client':<10} {'suit':<8} {'link':<10} {'batt':>4} {'radio':<{RADIO_WIDTH}} "
        head += " ".join(f"{_SHORT.get(ch, ch[:3]):>4}" for ch in snap["channels"])
        out.append(head + "  (mA)\n", style="bold")
        for c in snap["clients"]:
            name, suit = printable(c["name"])[:10], printable(c["suit"])[:8]
            out.append(f"{name:<10} {suit:<8} ")
            out.append(f"{c['link']:<10}", style=_LINK_STYLE.get(c["link"], "yellow"))
            batt = f"{c['battery_pct']}%" if c["battery_pct"] is not None else "?"
            out.append(f" {batt:>4} ")
            health = c.get("link_health")
            if health is None:
                out.append(" " * RADIO_WIDTH)
            else:
                figures = LinkFigures(**health)
                radio = f"{figures.verdict} {figures.short()}"[:RADIO_WIDTH]
                out.append(f"{radio:<{RADIO_WIDTH}}", style=_HEALTH_STYLE[figures.verdict])
            for lvl, contact in zip(c["levels_mA"], c["contact"], strict=True):
                if not contact:
                    out.append(f" {'open':>4}", style="red")
                else:
                    out.append(f" {lvl:>4.0f}", style="bold" if lvl > 0 else "dim")
            out.append("\n")
        out.append("\n")
        for line in self.events[-6:]:
            out.append(line + "\n", style="dim")
        out.append("Ctrl-C stops every suit", style="dim italic")
        return out
