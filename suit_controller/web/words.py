"""The trainer's words: body-area labels in the order trainers set them, and engine events
rewritten as messages a trainer can act on in a loud room.

One place for every face (the console, the MQTT bridge, a report): code names
(`chest_left`, `link_lost`) stay in files and APIs; what a trainer reads comes
from here. The labels and the order are those of
`/work/shared/reference/trainer-words.md` (legs first: the biggest muscles,
set first and highest). A message says what happened, to whom, and what to
do: "Ana's suit lost its connection — it stopped by itself; reconnecting",
not "SIM-02: link lost: disconnected; retrying in 0.25 s".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from channels.muscles import LocationError, MuscleGroup, parse_channel_key
from suit_controller.records import SessionEvent

G = MuscleGroup

#: Regions in the order trainers work through them, with the heading a page shows.
REGIONS: tuple[tuple[str, str], ...] = (
    ("legs", "Legs"),
    ("trunk_front", "Trunk (front)"),
    ("trunk_back", "Trunk (back)"),
    ("arms", "Shoulders & arms"),
)

#: Every muscle group: its region and its label, in the trainers' order.
_GROUPS: tuple[tuple[MuscleGroup, str, str], ...] = (
    (G.QUADS, "legs", "Thighs (front)"),
    (G.HAMSTRINGS, "legs", "Thighs (back)"),
    (G.GLUTES, "legs", "Glutes"),
    (G.CALVES, "legs", "Calves"),
    (G.ADDUCTORS, "legs", "Inner thighs"),
    (G.ABS, "trunk_front", "Abs"),
    (G.OBLIQUES, "trunk_front", "Waist (sides)"),
    (G.CHEST, "trunk_front", "Chest"),
    (G.LATS, "trunk_back", "Lats (side of the back)"),
    (G.UPPER_BACK, "trunk_back", "Upper back"),
    (G.LOWER_BACK, "trunk_back", "Lower back"),
    (G.SHOULDERS, "arms", "Shoulders"),
    (G.ARMS, "arms", "Arms"),
    (G.BICEPS, "arms", "Biceps"),
    (G.TRICEPS, "arms", "Triceps"),
)
_BY_GROUP = {g: (k, region, label) for k, (g, region, label) in enumerate(_GROUPS)}
_SIDE = {"left": " L", "right": " R"}


@dataclass(frozen=True)
class Area:
    """One channel of a suit as a trainer names it."""

    channel: str
    label: str
    region: str
    #: Position in the trainers' order (sort key).
    order: int

    def as_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "label": self.label, "region": self.region}


def area(channel: str) -> Area:
    """The area a channel code name (`chest_left`, `quads`) stands for.

    A name that is no known muscle group keeps its code name, last in the order:
    a suit maker's new channel still shows up, just not in plain words yet.
    """
    try:
        key = parse_channel_key(channel)
    except LocationError:
        return Area(channel, channel.replace("_", " ").capitalize(), "other", 1000)
    k, region, label = _BY_GROUP[key.group]
    side = _SIDE.get(key.side or "", "")
    return Area(channel, label + side, region, 2 * k + (1 if key.side == "right" else 0))


def area_label(channel: str) -> str:
    """The label a page shows for a channel code name."""
    return area(channel).label


def areas(channels: Sequence[str]) -> list[Area]:
    """The areas of a suit's channels, in the order trainers set them."""
    return sorted((area(c) for c in channels), key=lambda a: a.order)


def regions(channels: Sequence[str]) -> list[dict[str, str]]:
    """The regions a suit has channels in, in the trainers' order (`key`, `label`)."""
    present = {area(c).region for c in channels}
    out = [{"key": key, "label": label} for key, label in REGIONS if key in present]
    if "other" in present:
        out.append({"key": "other", "label": "Other"})
    return out


#: A channel code name in an engine message: `chest_left`, or a group after "on".
_CODE_NAME = re.compile(r"\b[a-z]+_[a-z_]+\b|(?<=\bon )[a-z]+\b")


def _plain(match: re.Match[str]) -> str:
    try:
        parse_channel_key(match.group(0))
    except LocationError:
        return match.group(0)
    return area_label(match.group(0))


#: What a suit's own fault flags mean to a trainer (contact shows per area instead).
SUIT_FAULTS: dict[str, str] = {
    "LOW_BATTERY": "Battery low: charge it after the class",
    "WATCHDOG": "Stopped by itself since it started (missed the controller)",
    "LEVEL_CLAMPED": "Held a level at the suit's own maximum",
    "BAD_FRAME": "Dropped a damaged message from the controller",
}


def suit_fault_words(faults: Sequence[str]) -> list[str]:
    """A suit's fault flags (`ClientSnapshot.faults`) in words; electrode contact is left
    out (each area shows it)."""
    return [
        SUIT_FAULTS.get(f, f.replace("_", " ").capitalize())
        for f in faults
        if f != "ELECTRODE_OPEN"
    ]


Severity = Literal["stop", "warning", "info"]


@dataclass(frozen=True)
class TrainerMessage:
    """An event as a trainer reads it: what happened (to whom), and what to do."""

    t: float
    kind: str
    severity: Severity
    #: The client it is about, None for the whole class.
    client: str | None
    text: str
    action: str

    def as_json(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 3),
            "kind": self.kind,
            "severity": self.severity,
            "client": self.client,
            "text": self.text,
            "action": self.action,
        }


def _whose(client: str | None, thing: str) -> str:
    """ "Ana's suit", or "A suit" when the event names no client."""
    if client is None:
        return f"A {thing}"
    return f"{client}'s {thing}"


def _simulated_fault(e: SessionEvent) -> tuple[str, str]:
    kind = e.data.get("fault")
    params: dict[str, Any] = e.data.get("params") or {}
    suit = _whose(e.client, "suit") if e.client else "Every suit"
    if kind == "drop":
        how_long = f" for {params['for']}" if "for" in params else ""
        return f"Practice fault: {suit} drops its connection{how_long}", (
            "Watch the card: it shows the suit as lost, then reconnecting"
        )
    if kind == "battery":
        pct = f" to {params['pct']} %" if "pct" in params else ""
        return f"Practice fault: {suit} battery set{pct}", "Watch the battery on the card"
    if kind in ("latency", "loss"):
        return f"Practice fault: {suit} radio made poor", (
            "Watch the delivered bars and the connection on the card"
        )
    if kind == "detach":
        where = f" on {area_label(str(params['channel']))}" if "channel" in params else ""
        return f"Practice fault: {suit} electrode comes off{where}", (
            "Watch for “no contact” on the card"
        )
    return "Practice fault in the simulated class", "Nothing to do: this is a simulation"


def trainer_message(e: SessionEvent) -> TrainerMessage | None:
    """The message a trainer reads for an engine event; None for events a trainer needs
    no message for (commands carried out, segment changes: the page shows those)."""
    who = e.client
    kind = e.kind
    severity: Severity = "warning"
    if kind == "estop":
        severity = "stop"
        text = "Emergency stop: every suit is at zero"
        action = "When everyone is safe: Reset, then Resume"
    elif kind == "link_lost":
        text = f"{_whose(who, 'suit')} lost its connection — it stopped by itself; reconnecting"
        action = "Bring them closer to the controller and check the suit is switched on"
    elif kind == "link_up":
        severity = "info"
        text = f"{_whose(who, 'suit')} is connected"
        action = "Its levels start again from zero; raise them step by step"
    elif kind == "suit_safe_state":
        text = f"{_whose(who, 'suit')} stopped by itself for a moment (it missed the controller)"
        action = "Its levels start again from zero; raise them step by step"
    elif kind == "client_request":
        name = who or "A client"
        channel = e.data.get("channel")
        where = f" on {area_label(str(channel))}" if channel else ""
        feels = e.data.get("cr10")
        feeling = f" (feels {feels} of 10)" if feels is not None else ""
        text = f"{name} asks for less{where}{feeling}"
        action = f"Lower {area_label(str(channel))} a step (−)" if channel else "Lower a step (−)"
    elif kind == "limit":
        channel = e.data.get("channel")
        where = area_label(str(channel)) if channel else "An area"
        cap = e.data.get("cap_mA")
        at = f" ({cap:g} mA)" if isinstance(cap, int | float) else ""
        text = f"{_whose(who, where)} is held at the most allowed for this exercise{at}"
        action = "It cannot go higher now; nothing to do"
        if who is None:
            text = f"{where} is held at the most allowed for this exercise{at}"
    elif kind == "command_refused":
        reason = _CODE_NAME.sub(_plain, e.message.split(" refused: ", 1)[-1])
        text = f"Not done: {reason}"
        action = "Check the state of the class and try again"
    elif kind == "suit_refused":
        severity = "stop"
        text = f"{_whose(who, 'suit')} cannot be used with this controller"
        if "version 1" in e.message:
            text += " (its software is too old)"
            action = "Give them another suit; have this suit's firmware updated"
        elif "MTU" in e.message:
            text += " (its Bluetooth link is too small)"
            action = "Give them another suit, or use another Bluetooth adapter"
        else:
            action = "Give them another suit"
    elif kind == "suit_key_mismatch":
        severity = "stop"
        text = (
            f"{_whose(who, 'suit')} does not recognise this studio — it was reset, or "
            "enrolled in another studio, or the studio's records of it were lost"
        )
        action = (
            "Give them another suit. After the class: factory reset this suit (its reset "
            "button), forget it on the Suits page, then enroll it again with its setup code"
        )
    elif kind == "controller_late":
        whose = f"{who}'s suit" if who else "a suit"
        what = (
            f"{whose} stopped by itself, sent nothing in time"
            if "sent the suit nothing" in e.message
            else f"it heard {whose} late"
        )
        text = f"This computer is falling behind: {what} (the suit is not at fault)"
        action = "Close other programs and pages watching the class; if it repeats, end the class"
    elif kind == "program_unconfirmed":
        text = f"{_whose(who, 'suit')} did not take this exercise's settings — held at zero"
        action = "Keep them close to the controller; if it stays at zero, change the suit"
    elif kind == "suit_clamped":
        text = f"{_whose(who, 'suit')} limited a level by itself (its own safety limit)"
        action = "Lower their levels a step; tell the studio manager if it repeats"
    elif kind == "bad_notification":
        text = f"{_whose(who, 'suit')} sent a message the controller could not read (ignored)"
        action = "If it keeps happening, change the suit after the exercise"
    elif kind == "fault":
        severity = "info"
        if "fault" in e.data:
            text, action = _simulated_fault(e)
        else:
            text, action = "A practice fault was skipped: this suit has no such area", "Nothing"
    elif kind == "slowed_down":
        before, after = e.data.get("previous_speed"), e.data.get("speed")
        text = (
            f"This computer cannot keep up with the practice class at {before:g}× speed: "
            f"it now runs at {after:g}×"
            if isinstance(before, int | float) and isinstance(after, int | float)
            else "This computer cannot keep up: the practice class now runs slower"
        )
        action = "Nothing to do: the whole class still plays; close other programs to go faster"
    elif kind == "ended":
        severity = "info"
        ending = e.data.get("ending")
        text = {
            "finished": "The class has finished",
            "stopped": "The class was ended",
            "estopped": "The class was ended after an emergency stop",
        }.get(str(ending), "The class has stopped; every suit was told to stop")
        action = "Take the suits off"
    else:
        return None
    return TrainerMessage(e.t, kind, severity, who, text, action)


__all__ = [
    "REGIONS",
    "Area",
    "TrainerMessage",
    "area",
    "area_label",
    "areas",
    "regions",
    "suit_fault_words",
    "trainer_message",
]
