"""The muscle-group vocabulary and the places an electrode must never go (S6)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import StrEnum


class MuscleGroup(StrEnum):
    """A muscle group a suit channel can stimulate, in the trainer's words."""

    CHEST = "chest"
    ABS = "abs"
    OBLIQUES = "obliques"
    UPPER_BACK = "upper_back"
    LATS = "lats"
    LOWER_BACK = "lower_back"
    SHOULDERS = "shoulders"
    ARMS = "arms"
    BICEPS = "biceps"
    TRICEPS = "triceps"
    GLUTES = "glutes"
    QUADS = "quads"
    HAMSTRINGS = "hamstrings"
    ADDUCTORS = "adductors"
    CALVES = "calves"


#: Groups whose channels stay off when the client ate less than 1.5 h ago (S5).
ABDOMINAL_GROUPS = frozenset({MuscleGroup.ABS, MuscleGroup.OBLIQUES})

#: Locations that are never channel locations (S6), with the reason a trainer is given.
FORBIDDEN_LOCATIONS: dict[str, str] = {
    "neck": "forbidden electrode location: current across the neck can reach the carotid "
    "sinus and the vagus nerve",
    "throat": "forbidden electrode location: current across the throat can cause laryngeal "
    "spasm and affect breathing",
    "groin": "forbidden electrode location: the groin is never stimulated (sensitive "
    "tissue, large vessels and nerves)",
}

SIDES = ("left", "right")


class LocationError(ValueError):
    """A channel key that names no muscle group, or a forbidden location."""


@dataclass(frozen=True)
class ChannelKey:
    """A muscle group, optionally on one side (`chest_left`)."""

    group: MuscleGroup
    side: str | None = None

    def __str__(self) -> str:
        return self.group.value if self.side is None else f"{self.group.value}_{self.side}"


def parse_channel_key(text: str) -> ChannelKey:
    """Parse `quads`, `chest_left`; refuse forbidden locations and unknown names.

    Raises LocationError with a message a trainer understands, including a
    "did you mean" suggestion for a misspelt group.
    """
    if not isinstance(text, str):
        raise LocationError(f"a channel must be named by a muscle group, not {text!r}")
    key = text.strip().lower()
    base, side = key, None
    for s in SIDES:
        if key.endswith("_" + s):
            base, side = key[: -len(s) - 1], s
            break
    if base in FORBIDDEN_LOCATIONS or key in FORBIDDEN_LOCATIONS:
        raise LocationError(
            f"'{text}': {FORBIDDEN_LOCATIONS.get(base) or FORBIDDEN_LOCATIONS[key]}"
        )
    try:
        group = MuscleGroup(base)
    except ValueError:
        names = [g.value for g in MuscleGroup]
        names += [f"{g}_{s}" for g in names for s in SIDES]
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        raise LocationError(f"unknown muscle group '{text}'{hint}") from None
    return ChannelKey(group, side)
