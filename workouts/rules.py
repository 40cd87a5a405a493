"""Whole-workout rules (S8 and the guidelines), checked on raw data so they run
even when other parts of the file are broken.

Errors: a suit block of more than 25 minutes of stimulation (S8).
Warnings: a suit block under 20 minutes, a warm-up outside 5-7 minutes, no
stretching phase, a muscle group the suit layout has no channel for.
"""

from __future__ import annotations

from channels.layouts import DEFAULT_LAYOUT, SuitLayout
from channels.limits import SUIT_BLOCK_MAX_S, SUIT_BLOCK_MIN_S, WARMUP_RANGE_S
from channels.muscles import LocationError, parse_channel_key
from workouts.durations import format_duration, parse_duration

Loc = tuple[int | str, ...]
Found = list[tuple[Loc, str]]


def _seconds(value: object) -> float | None:
    try:
        return parse_duration(value)
    except ValueError:
        return None


def workout_problems(
    data: dict[str, object], layout: SuitLayout = DEFAULT_LAYOUT
) -> tuple[Found, Found]:
    """(errors, warnings) of the whole-workout rules, each as (path, message)."""
    errors: Found = []
    warnings: Found = []
    phases = data.get("phases")
    if not isinstance(phases, list):
        return errors, warnings
    suit_s = 0.0
    first_suit: Loc | None = None
    has_stretch = False
    for i, phase in enumerate(phases):
        if not isinstance(phase, dict):
            continue
        kind = phase.get("kind")
        if kind == "warmup":
            d = _seconds(phase.get("duration"))
            lo, hi = WARMUP_RANGE_S
            if d is not None and not lo <= d <= hi:
                warnings.append(
                    (
                        ("phases", i, "duration"),
                        f"a warm-up of {format_duration(d)} is outside the recommended "
                        f"{format_duration(lo)}-{format_duration(hi)}",
                    )
                )
        elif kind == "stretch":
            has_stretch = True
        elif kind == "suit":
            first_suit = first_suit or ("phases", i)
            exercises = phase.get("exercises")
            if not isinstance(exercises, list):
                continue
            for j, ex in enumerate(exercises):
                if not isinstance(ex, dict):
                    continue
                suit_s += _seconds(ex.get("duration")) or 0.0
                channels = ex.get("channels")
                if isinstance(channels, dict):
                    warnings.extend(
                        _layout_warnings(channels, layout, ("phases", i, "exercises", j))
                    )
    if first_suit is None:
        warnings.append((("phases",), "the workout has no suit block: nothing will be stimulated"))
    elif suit_s > SUIT_BLOCK_MAX_S + 1e-9:
        errors.append(
            (
                first_suit,
                f"the suit block holds {format_duration(suit_s)} of stimulation; at most "
                f"{format_duration(SUIT_BLOCK_MAX_S)} is allowed (S8)",
            )
        )
    elif suit_s < SUIT_BLOCK_MIN_S:
        warnings.append(
            (
                first_suit,
                f"the suit block is {format_duration(suit_s)}; a full session is "
                f"{format_duration(SUIT_BLOCK_MIN_S)}-{format_duration(SUIT_BLOCK_MAX_S)}",
            )
        )
    if not has_stretch:
        warnings.append((("phases",), "no stretching phase: end the class with stretching"))
    return errors, warnings


def _layout_warnings(channels: dict[str, object], layout: SuitLayout, at: Loc) -> Found:
    out: Found = []
    for name in channels:
        try:
            key = parse_channel_key(name)
        except LocationError:
            continue
        if not layout.select(key):
            out.append(
                (
                    (*at, "channels", name),
                    f"suit layout {layout.name} has no channel for {key}: "
                    "it will not be stimulated",
                )
            )
    return out
