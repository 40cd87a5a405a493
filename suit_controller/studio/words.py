"""The words a trainer reads: body-area labels in the order trainers set them, and states.

Code names (`quads`, `chest_left`) stay in files and APIs; pages show these
labels (see the trainer-words reference: legs first, then trunk, then arms).
"""

from __future__ import annotations

#: Body areas in the order trainers set them, with the label to show.
AREA_LABELS: dict[str, str] = {
    "quads": "Thighs (front)",
    "hamstrings": "Thighs (back)",
    "glutes": "Glutes",
    "calves": "Calves",
    "adductors": "Inner thighs",
    "abs": "Abs",
    "obliques": "Waist (sides)",
    "chest": "Chest",
    "chest_left": "Chest L",
    "chest_right": "Chest R",
    "lats": "Lats (side of the back)",
    "upper_back": "Upper back",
    "lower_back": "Lower back",
    "shoulders": "Shoulders",
    "arms": "Arms",
    "biceps": "Biceps",
    "triceps": "Triceps",
}

#: A class's state as a trainer says it.
STATE_WORDS = {
    "ready": "Ready to start",
    "running": "Running",
    "paused": "Paused",
    "estopped": "Stopped (emergency): reset, then resume",
    "finished": "Finished",
    "stopped": "Ended",
    "interrupted": "Interrupted",
}
#: How a class or session in the records ended (a record's status is its state when it ended:
#: one ended during an emergency stop has nothing left to reset or resume).
RECORD_WORDS = {**STATE_WORDS, "estopped": "Ended during an emergency stop"}


def area_label(channel: str) -> str:
    """The label of a channel's body area (the code name, tidied, when it has none)."""
    return AREA_LABELS.get(channel, channel.replace("_", " ").capitalize())


def in_trainer_order(channels: list[str]) -> list[str]:
    """`channels` sorted as trainers set them (unknown ones last, as given)."""
    order = list(AREA_LABELS)
    return sorted(channels, key=lambda c: order.index(c) if c in order else len(order))
