"""What a screen or a broker shows of a class, as typed values: the faces' one view of the engine.

Faces (the console, the MQTT bridge, the terminal view) read a
`ClassSnapshot` and change the class only through commands, so the engine
could move to a thread or process of its own without a face changing.
`as_json()` is the wire form the console and MQTT publish, key for key the
same as `ClassSession.snapshot()` (a test pins the two together).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import trio

from suit_controller.driver import LinkState, SuitDriver
from suit_controller.link_health import NOT_LINKED, LinkFigures
from suit_controller.protocol.connection import ConnectionState

if TYPE_CHECKING:
    from suit_controller.session import ClassSession, ClassState

#: Class states in which the engine sends each ready suit a frame every tick.
_FRAMES_EXPECTED = ("ready", "running", "paused")


def _link_of(driver: SuitDriver) -> LinkState:
    """The suit's link as the trainer sees it: a linked suit that refused us (a key mismatch,
    an old version) is shown refused, not connected; it is sent nothing."""
    if driver.state is LinkState.CONNECTED and driver.connection.state is ConnectionState.REFUSED:
        return LinkState.REFUSED
    return driver.state


@dataclass(frozen=True)
class ClientSnapshot:
    """One client and their suit. Per-channel tuples follow the class's `channels`, in mA."""

    name: str
    suit: str
    link: LinkState
    battery_pct: int | None
    #: The suit's own state as it last reported it (e.g. "ARMED"), None before any report.
    suit_state: str | None
    faults: tuple[str, ...]
    #: Whether each electrode touches the skin (an impedance was measured).
    contact: tuple[bool, ...]
    #: What the engine sends each channel now.
    levels_mA: tuple[float, ...]
    #: The client's set intensity (moves towards the target in 1 mA steps, S2).
    set_mA: tuple[float, ...]
    target_mA: tuple[float, ...]
    #: What the suit last reported applying (not part of the JSON form).
    suit_levels_mA: tuple[float, ...]
    #: How many times the suit's link was lost this class (not part of the JSON form).
    drops: int = 0
    #: The link's health: frames delivered per second, status round trip, RSSI; good/weak/lost.
    link_health: LinkFigures = NOT_LINKED

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "suit": self.suit,
            "link": self.link.value,
            "battery_pct": self.battery_pct,
            "suit_state": self.suit_state,
            "faults": list(self.faults),
            "contact": list(self.contact),
            "levels_mA": list(self.levels_mA),
            "set_mA": list(self.set_mA),
            "target_mA": list(self.target_mA),
            "link_health": self.link_health.as_json(),
        }


@dataclass(frozen=True)
class TimelineEntry:
    """One segment of the plan, for a timeline on a screen. Times in s of plan time."""

    name: str
    #: "warmup", "suit" or "stretch".
    phase: str
    start_s: float
    end_s: float
    #: True when this segment stimulates (a program with a channel on).
    stimulates: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phase": self.phase,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "stimulates": self.stimulates,
        }


@dataclass(frozen=True)
class ClassSnapshot:
    """The class at one moment: where it is in the plan, and every client. Times in s."""

    #: The class session's id (MQTT consumers tell classes apart by it).
    session_id: str
    state: ClassState
    workout: str
    plan_t: float
    total_s: float
    remaining_s: float
    #: "warmup", "suit" or "stretch"; None outside the plan.
    phase: str | None
    exercise: str | None
    cues: tuple[str, ...]
    segment_remaining_s: float
    contracting: bool
    channels: tuple[str, ...]
    clients: tuple[ClientSnapshot, ...]
    #: The next segment's exercise (or phase) name, None in the last one (not in the JSON form).
    next: str | None
    #: Every segment of the plan, in order (not in the JSON form).
    timeline: tuple[TimelineEntry, ...] = ()

    @classmethod
    def of(cls, session: ClassSession) -> ClassSnapshot:
        """Take a snapshot of `session` now."""
        plan = session.plan
        plan_t = session.clock.plan_time() if session.clock.started_at is not None else 0.0
        seg = plan.segment_at(plan_t)
        nxt: str | None = None
        if seg is not None:
            i = plan.segments.index(seg)
            if i + 1 < len(plan.segments):
                after = plan.segments[i + 1]
                nxt = after.name if after.exercise_index is not None else after.kind.value
        clients = []
        try:
            now: float | None = trio.current_time()
        except RuntimeError:  # read outside Trio (after the class): no rate to sample
            now = None
        # frames go out every tick while a class goes on and nothing holds the suit
        going_on = now is not None and session.state.value in _FRAMES_EXPECTED
        for i, c in enumerate(session.clients):
            driver = session.drivers[i]
            view = driver.connection.view
            expecting = going_on and driver.ready and not driver.held
            clients.append(
                ClientSnapshot(
                    name=c.name,
                    suit=driver.link.address,
                    link=_link_of(driver),
                    battery_pct=view.battery_pct,
                    suit_state=view.state.name if view.state is not None else None,
                    faults=tuple(str(f.name) for f in type(view.faults) if f and f in view.faults),
                    contact=tuple(imp is not None for imp in view.impedance_ohm),
                    levels_mA=tuple(float(v) for v in session.output_mA[i]),
                    set_mA=tuple(float(v) for v in session.board.set_mA[i]),
                    target_mA=tuple(float(v) for v in session.board.target_mA[i]),
                    suit_levels_mA=tuple(view.levels_mA),
                    drops=driver.drops,
                    link_health=driver.health.figures(
                        now or 0.0,
                        connected=driver.state is LinkState.CONNECTED,
                        rate_hz=session.rate_hz if expecting else None,
                        rssi_dbm=getattr(driver.link, "rssi_dbm", None),
                    ),
                )
            )
        return cls(
            session_id=session.session_id,
            state=session.state,
            workout=plan.workout.name,
            plan_t=round(plan_t, 3),
            total_s=plan.total_s,
            remaining_s=round(max(0.0, plan.total_s - plan_t), 3),
            phase=seg.kind.value if seg else None,
            exercise=seg.name if seg and seg.exercise_index is not None else None,
            cues=tuple(seg.cues) if seg else (),
            segment_remaining_s=round(seg.end_s - plan_t, 3) if seg else 0.0,
            contracting=bool(np.any(session.relative > 0)),
            channels=tuple(session.layout.names),
            clients=tuple(clients),
            next=nxt,
            timeline=tuple(
                TimelineEntry(
                    name=s.name if s.exercise_index is not None else s.kind.value,
                    phase=s.kind.value,
                    start_s=round(s.start_s, 3),
                    end_s=round(s.end_s, 3),
                    stimulates=s.stimulates,
                )
                for s in plan.segments
            ),
        )

    def as_json(self) -> dict[str, Any]:
        """The wire form (plain JSON-able data) the console and MQTT publish."""
        return {
            "session_id": self.session_id,
            "state": self.state.value,
            "workout": self.workout,
            "plan_t": self.plan_t,
            "total_s": self.total_s,
            "remaining_s": self.remaining_s,
            "phase": self.phase,
            "exercise": self.exercise,
            "cues": list(self.cues),
            "segment_remaining_s": self.segment_remaining_s,
            "contracting": self.contracting,
            "channels": list(self.channels),
            "clients": [c.as_json() for c in self.clients],
        }
