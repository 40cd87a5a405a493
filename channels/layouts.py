"""Suit layouts: which channel drives which muscle group, over how much electrode area."""

from __future__ import annotations

from dataclasses import dataclass

from channels.limits import DEVICE_MAX_MA
from channels.muscles import FORBIDDEN_LOCATIONS, ChannelKey, MuscleGroup


@dataclass(frozen=True)
class Channel:
    """One electrode pair of a suit.

    `area_cm2` is the contact area of one electrode of the pair: current
    density is computed over it. `max_mA` is the layout's cap for the channel.
    """

    name: str
    group: MuscleGroup
    side: str | None
    area_cm2: float
    max_mA: float

    def __post_init__(self) -> None:
        if self.name.split("_")[0] in FORBIDDEN_LOCATIONS:
            raise ValueError(f"channel {self.name}: forbidden electrode location")
        if not 0 < self.max_mA <= DEVICE_MAX_MA:
            raise ValueError(f"channel {self.name}: max_mA must be in (0, {DEVICE_MAX_MA}]")
        if self.area_cm2 <= 0:
            raise ValueError(f"channel {self.name}: area_cm2 must be positive")

    def matches(self, key: ChannelKey) -> bool:
        """True if a workout's channel key (`chest` or `chest_left`) selects this channel."""
        return key.group == self.group and (key.side is None or key.side == self.side)


@dataclass(frozen=True)
class SuitLayout:
    """The channels of one suit model, in the order the suit numbers them."""

    name: str
    channels: tuple[Channel, ...]

    def __post_init__(self) -> None:
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            raise ValueError(f"layout {self.name}: duplicate channel names")

    def __len__(self) -> int:
        return len(self.channels)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    def index(self, name: str) -> int:
        """The channel number of `name` (raises KeyError)."""
        for i, c in enumerate(self.channels):
            if c.name == name:
                return i
        raise KeyError(name)

    def select(self, key: ChannelKey) -> list[int]:
        """Channel numbers a workout key selects (empty if the suit has none)."""
        return [i for i, c in enumerate(self.channels) if c.matches(key)]


def _ch(
    name: str, group: MuscleGroup, area: float, max_mA: float, side: str | None = None
) -> Channel:
    return Channel(name, group, side, area, max_mA)


G = MuscleGroup
#: The default 12-channel whole-body suit. Areas are one electrode of each pair.
DEFAULT_LAYOUT = SuitLayout(
    "standard-12",
    (
        _ch("chest_left", G.CHEST, 60.0, 100.0, "left"),
        _ch("chest_right", G.CHEST, 60.0, 100.0, "right"),
        _ch("abs", G.ABS, 120.0, 110.0),
        _ch("lower_back", G.LOWER_BACK, 100.0, 110.0),
        _ch("upper_back", G.UPPER_BACK, 100.0, 110.0),
        _ch("lats", G.LATS, 90.0, 110.0),
        _ch("shoulders", G.SHOULDERS, 50.0, 90.0),
        _ch("arms", G.ARMS, 70.0, 100.0),
        _ch("glutes", G.GLUTES, 150.0, 120.0),
        _ch("quads", G.QUADS, 180.0, 120.0),
        _ch("hamstrings", G.HAMSTRINGS, 150.0, 120.0),
        _ch("calves", G.CALVES, 80.0, 110.0),
    ),
)

LAYOUTS: dict[str, SuitLayout] = {DEFAULT_LAYOUT.name: DEFAULT_LAYOUT}
